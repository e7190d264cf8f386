"""Console output shared by commands: logging set-up and the per-iteration table."""

from __future__ import annotations

import logging
import math


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


def _fmt(value, kind: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "f2":
        return f"{value:.2f}"
    if kind == "s":
        return f"{value:.0f}s"
    return str(value)


COLUMNS = [
    ("iter", "iteration", ""),
    ("toy acc", "toy_accuracy", "pct"),
    ("pseudo-label acc", "pseudo_label_accuracy", "pct"),
    ("kept", "kept", ""),
    ("candidates", "candidates", ""),
    ("parsed q", "validity", "pct"),
    ("oracle-valid q", "oracle_valid_rate", "pct"),
    ("mean conf", "mean_confidence", "f2"),
    ("time", "seconds", "s"),
]


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    present = [c for c in columns if any(r.get(c[1]) is not None for r in rows) or c[1] == "iteration"]
    cells = [[title for title, _, _ in present]] + [[_fmt(r.get(key), kind) for _, key, kind in present] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(present))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_iteration_table(rows: list[dict]) -> None:
    print(format_table(rows))
