"""The ``visplay`` command: parses, validates, prints. No logic of its own.

Each subcommand lives in its own module in this package and exposes ``register(subparsers)``, which adds
its parser and sets ``handler`` (a function taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from visplay import __version__
from visplay.errors import UserError

# Order is the order shown in --help. A module that is missing (a feature not built yet) is skipped.
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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
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
    say = os.environ.get("RANK", "0") == "0"
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if say:
            print(f"visplay: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        if say:
            print("visplay: interrupted; everything already written is complete (use --resume to go on)",
                  file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
