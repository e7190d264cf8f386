"""``visplay demo``: the embedded default, end to end on a laptop (toy world + tiny base VLM)."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="self-evolve the tiny toy-world VLM from unlabeled toy images (CPU, minutes) and score each iteration",
        description="Run VisPlay end to end on the toy world: the shipped tiny base VLM, unlabeled toy images, "
        "N self-evolution iterations, and after each iteration the held-out toy benchmark (greedy) and the "
        "pseudo-label accuracy of the curated questions against the world's oracle (measurement only).",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: runs/demo)")
    p.add_argument("--iterations", type=int, default=3, help="self-evolution iterations (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the images and sampling (default: 0)")
    p.add_argument("--shift", default=None, metavar="SPEC",
                   help="render the unlabeled images and a copy of the held-out items under a shift, e.g. faded "
                        "(= contrast:0.25), blur:3, contrast:0.5>0.25 (a gradual shift over iterations); none = the "
                        "clean world (docs/shifts.md; default: none, the clean world)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo in --out")
    p.add_argument("--config", type=Path, default=None, metavar="FILE.yaml",
                   help="a recipe: config keys over the demo's tiny preset, before --set (e.g. configs/toy_shift.yaml, "
                        "the recipe measured on the shifted world); the toy world's own keys (model.path, data, "
                        "eval.benchmarks, out, iterations, seed) stay the demo's")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of the run, as in `visplay evolve` (repeatable)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.errors import UserError

    if args.iterations < 1:
        raise UserError("--iterations must be at least 1")
    from visplay.cli.progress import RowPrinter, format_table, setup_logging
    from visplay.demo import check_recipe, demo_shift, explain, run_demo
    from visplay.evolve import RunStopped

    if args.config is not None:
        check_recipe(args.config)
    schedule = demo_shift(args.shift, args.iterations)

    setup_logging()
    started = time.perf_counter()
    rows: list[dict] = []
    printer = RowPrinter()

    def show(row: dict) -> None:  # each iteration's row as it finishes, under one header
        rows.append(row)
        print()
        print(printer.lines(row), flush=True)
        print()

    world = "the clean toy world" if schedule.is_none else f"the toy world under the shift {schedule.spec()}"
    print(f"VisPlay demo -> {args.out} ({args.iterations} iterations on {world}; row 0 is the base model)", flush=True)
    try:
        run_demo(args.out, iterations=args.iterations, seed=args.seed, resume=args.resume,
                 overrides=args.overrides, on_iteration=show, shift=schedule.spec(), config=args.config)
    except RunStopped as exc:
        print(f"visplay: stopped: {exc}", file=sys.stderr)
        return 1
    from visplay.analysis.audit import audit_run, format_audit

    print(format_table(rows))  # the whole table once, now that every row is in
    print()
    print(format_audit(audit_run(args.out)))
    print()
    print(textwrap.fill(explain(rows, shift=schedule.final.spec()), width=110))
    print()
    print(f"demo finished in {time.perf_counter() - started:.0f} s; report: {args.out / 'report.html'}")
    return 0
