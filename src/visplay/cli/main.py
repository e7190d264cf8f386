"""The ``visplay`` command: parses, validates, prints. No logic of its own.

Each subcommand lives in its own module in this package and exposes ``register(subparsers)``, which adds
its parser and sets ``handler`` (a function taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from visplay import __version__
from visplay.distributed import is_main_process
from visplay.errors import UserError

# Order is the order shown in --help.
SUBCOMMAND_MODULES = [
    "visplay.cli.demo",
    "visplay.cli.evolve",
    "visplay.cli.curate",
    "visplay.cli.eval",
    "visplay.cli.report",
    "visplay.cli.diagnose",
    "visplay.cli.audit",
    "visplay.cli.study",
    "visplay.cli.world",
    "visplay.cli.tiny_model",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visplay",
        description="VisPlay: self-evolving vision-language models from unlabeled images.",
    )
    parser.add_argument("--version", action="version", version=f"visplay {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Offline by design: weights and data come from local folders only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    # In a multi-process run every rank meets the same error; rank 0 alone says it.
    say = is_main_process()
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        _close_progress_bars()
        if say:
            print(f"visplay: error: {_one_line(str(exc))}", file=sys.stderr)
        return UserError.exit_code
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        # The machine refused a write the checks at the start could not foresee (the disk filled up,
        # a folder became read-only mid-run): say so in one line; what was written is complete.
        _close_progress_bars()
        where = f": {exc.filename}" if exc.filename else ""
        if say:
            print(f"visplay: error: {exc.strerror or exc}{where} (everything written before is complete; "
                  "fix this and rerun, or use --resume)", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        _close_progress_bars()
        if say:
            print("visplay: interrupted; everything already written is complete (use --resume to go on)",
                  file=sys.stderr)
        return 130


# errno values that mean "the machine, not VisPlay": permissions, read-only or full disks, paths that
# cross a file. Anything else stays a traceback: it is a bug to report.
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                      errno.EISDIR, errno.ENAMETOOLONG}


def _one_line(message: str) -> str:
    """The promise is one line: a message carrying a newline (from a library) is folded."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _close_progress_bars() -> None:
    """Clear any open progress bar, so the error starts on its own line instead of after the bar's text."""
    tqdm_module = sys.modules.get("tqdm.std")
    if tqdm_module is None:
        return
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the error
            pass


if __name__ == "__main__":
    sys.exit(main())
