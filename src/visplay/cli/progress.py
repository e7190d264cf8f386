"""Console output shared by commands: logging set-up and the per-iteration table."""

from __future__ import annotations

import logging

# The table's columns live in visplay.report.iteration_table, shared with the HTML report (one naming for both).
from visplay.report.iteration_table import COLUMNS, RowPrinter, format_table  # noqa: F401  (re-exported for the commands)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # transformers and datasets are chatty at INFO; keep their warnings.
    try:  # the per-file "Loading weights" bars add nothing at our model sizes
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    for noisy in ("transformers", "datasets", "httpx", "urllib3", "filelock", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_iteration_table(rows: list[dict]) -> None:
    print(format_table(rows))
