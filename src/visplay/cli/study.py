"""``visplay study``: the toy demo once per (arm, seed), one table of mean±sd over seeds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from visplay.analysis.study import ARMS, DEFAULT_ARMS

    arms = "; ".join(f"{a.name}: {a.description}" for a in ARMS.values())
    p = subparsers.add_parser(
        "study",
        help="ablation arms over seeds on the toy world: where does the gain (or loss) come from?",
        description="Runs the toy demo once per (arm, seed) under OUT/<arm>/seed_<S>/ (resumable: rerun the same "
        "command), then prints held-out toy accuracy per iteration as mean±sd over seeds, per-family changes, "
        "pseudo-label accuracy and kept counts; writes OUT/study.json and OUT/report.html. Arms: " + arms + ".",
    )
    p.add_argument("--arms", default=None,
                   help="comma list of the arms to run, in that order: built-in ones and those defined with --arm "
                        f"(default: the --arm arms when any are given, else {DEFAULT_ARMS})")
    p.add_argument("--arm", action="append", default=[], metavar="'NAME=BASE key=value ...'",
                   help="define another arm from a known one with --set style overrides (repeatable), e.g. "
                        "--arm 't07=paper questioner.vote_sampling.temperature=0.7'; without --arms only the "
                        "defined arms run (--arms t07,paper runs it beside paper)")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default: 0,1,2)")
    p.add_argument("--iterations", type=int, default=3, help="iterations per run (default: 3)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE.yaml",
                   help="a recipe: config keys over the demo's tiny preset, before --set (e.g. configs/toy_shift.yaml, "
                        "the recipe measured on the shifted world); the toy world's own keys (model.path, data, "
                        "eval.benchmarks, out, iterations, seed) stay the demo's")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override applied to every arm (repeatable)")
    p.add_argument("--shift", default=None, metavar="SPEC",
                   help="render every run's images and a copy of the held-out items under a shift (as visplay demo "
                        "--shift; default: the demo's); the table then shows both domains")
    p.add_argument("--out", type=Path, default=Path("runs/study"), help="study folder (default: runs/study)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.analysis.study import format_study, parse_arms, parse_seeds, run_study
    from visplay.cli.progress import setup_logging
    from visplay.demo import demo_shift
    from visplay.errors import UserError

    arms = parse_arms(args.arms, args.arm)
    seeds = parse_seeds(args.seeds)
    if args.iterations < 1:
        raise UserError("--iterations must be at least 1")
    demo_shift(args.shift, args.iterations)
    for item in args.overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
    from visplay.preflight import check_output_dir

    check_output_dir(args.out)
    setup_logging()
    started = time.perf_counter()
    study = run_study(args.out, arms, seeds, iterations=args.iterations, overrides=args.overrides,
                      log=lambda m: print(m, flush=True), shift=args.shift, config=args.config)
    print()
    print(format_study(study))
    print(f"\nstudy finished in {time.perf_counter() - started:.0f} s; {args.out / 'study.json'}, "
          f"{args.out / 'report.html'}")
    return 0
