"""The one exception type that means "the user did something wrong".

The command line turns a :class:`UserError` into a one-line message on stderr and exit code 2, with no
traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix: a missing path, a bad config value, unreadable data, an incompatible model."""

    exit_code = 2
