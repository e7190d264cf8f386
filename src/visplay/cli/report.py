"""``visplay report RUN``: write RUN/report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write RUN/report.html (iterations, training curves, sample questions)")
    p.add_argument("run", type=Path, help="run folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.report import write_report

    path = write_report(args.run)
    print(f"wrote {path}")
    return 0
