"""``visplay world ...``: the toy world's unlabeled images and labeled benchmark.

    visplay world images --out DIR --n N [--seed S] [--shift SPEC]       unlabeled PNGs (DIR absent or empty)
    visplay world benchmark --out FILE [--n N] [--seed S] [--shift SPEC]  the held-out labeled benchmark (parquet)

``--shift`` renders the same scenes through a different camera (``visplay.world.shift``, docs/shifts.md):
``none`` (default), ``faded``, or ``KIND:AMOUNT[,KIND:AMOUNT...]``. One stage only: a folder or a file has
one camera, so a schedule (``a>b``) is written as one folder or file per stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visplay.errors import UserError
from visplay.preflight import check_output_dir, check_output_file


def _shift_help() -> str:
    from visplay.world.shift import NAMED_SHIFTS, SHIFT_KINDS

    names = ", ".join(f"{name} = {spec}" for name, spec in NAMED_SHIFTS.items())
    kinds = "; ".join(SHIFT_KINDS.values())
    return (f"render the scenes through a shifted camera: none (default), a name ({names}), or "
            f"KIND:AMOUNT[,KIND:AMOUNT...] applied left to right; kinds: {kinds}. One stage only (no '>')"
            ).replace("%", "%%")  # argparse formats help with %


def _one_shift(spec: str, what: str):
    """The single-stage shift ``--shift`` names; UserError (one line) for a bad spec or a schedule."""
    from visplay.world.shift import parse_shift

    try:
        schedule = parse_shift(spec)
    except ValueError as exc:
        raise UserError(f"--shift: {exc}") from None
    if schedule.is_gradual:
        per_stage = ", ".join(f"--shift {stage.spec()}" for stage in schedule.stages)
        raise UserError(f"--shift {spec!r} is a schedule of {len(schedule.stages)} stages, and {what} has one "
                        f"camera; write one per stage ({per_stage})")
    return schedule.final


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("world", help="the toy world: unlabeled images, labeled benchmark")
    world = parser.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")
    parser.set_defaults(handler=lambda args: _help(parser))

    images = world.add_parser("images", help="write unlabeled toy images (PNGs only) to a new folder")
    images.add_argument("--out", required=True, type=Path, help="folder to create (absent or empty)")
    images.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    images.add_argument("--seed", type=int, default=0, help="image i shows scene_for(seed, i) (default 0)")
    images.add_argument("--shift", default="none", metavar="SPEC", help=_shift_help())
    images.set_defaults(handler=_images)

    bench = world.add_parser("benchmark", help="write the held-out labeled toy benchmark (parquet)")
    bench.add_argument("--out", required=True, type=Path, help="parquet file to write")
    bench.add_argument("--n", type=int, default=None, help="number of questions (default 840, 140 per family)")
    bench.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    bench.add_argument("--questions", choices=("balanced", "images"), default="balanced",
                       help="balanced (default): the held-out benchmark, answers uniform per question; images: the "
                       "in-distribution check, the world's question generator on scenes drawn like the unlabeled "
                       "images (answers follow the scene, as the loop's questions do)")
    bench.add_argument("--shift", default="none", metavar="SPEC",
                       help=_shift_help() + "; the same items as without it, only the images change")
    bench.set_defaults(handler=_benchmark)

    base = world.add_parser("base", help="write the warm-started tiny base VLM (the shipped one, or --rebuild)",
                            description="Copy the tiny base VLM shipped with VisPlay (or train it afresh with "
                            "--rebuild, up to about 20 minutes on 2 cores), then measure it with the world check.")
    base.add_argument("--out", required=True, type=Path, help="folder to write the checkpoint to")
    base.add_argument("--rebuild", action="store_true", help="train afresh from the recipe instead of copying")
    base.add_argument("--seed", type=int, default=None, help="recipe seed override (only with --rebuild)")
    base.add_argument("--steps", type=int, default=None, help="training steps override (only with --rebuild)")
    base.add_argument("--no-check", action="store_true", help="skip the measurements at the end")
    base.set_defaults(handler=_base)

    check = world.add_parser("check", help="measure any model on the toy world (own vs swapped images, "
                             "confidence spread, question validity)")
    check.add_argument("--model", required=True, type=Path, help="model folder")
    check.add_argument("--items", type=int, default=0, help="benchmark items for the greedy accuracies (0 = all)")
    check.add_argument("--benchmark", type=Path, default=None, help="benchmark parquet (default: the world's)")
    check.set_defaults(handler=_check)


def _base(args: argparse.Namespace) -> int:
    from visplay.world.base import build_base

    if (args.seed is not None or args.steps is not None) and not args.rebuild:
        raise UserError("--seed and --steps only apply with --rebuild")
    check_output_dir(args.out)
    if args.out.exists() and (not args.out.is_dir() or (any(args.out.iterdir()) and not (args.out / "config.json").exists())):
        raise UserError(f"--out {args.out} exists and is not a model folder; choose a new folder")
    result = build_base(args.out, rebuild=args.rebuild, seed=args.seed, steps=args.steps, check=not args.no_check)
    print(f"wrote the toy base model to {result['path']} (recipe {result['recipe_hash']}, "
          f"{'trained' if result['rebuilt'] else 'copied'} in {result['seconds']:.0f} s)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from visplay.engines.loading import read_model_config
    from visplay.world.check import check_model, format_check_report

    read_model_config(args.model)
    if args.benchmark is not None:
        if not args.benchmark.is_file():
            raise UserError(f"--benchmark {args.benchmark} does not exist")
        if args.benchmark.suffix != ".parquet":
            raise UserError(f"--benchmark {args.benchmark} must be a .parquet file (visplay world benchmark writes one)")
        import pyarrow.parquet as pq

        from visplay.evaluation.data import check_images, load_benchmark

        data = load_benchmark("toy", args.benchmark)  # readable, with question, answer and image columns
        check_images(data)
        if "family" not in pq.read_schema(args.benchmark).names:
            raise UserError(f"--benchmark {args.benchmark} has no family column (visplay world benchmark writes one)")
    report = check_model(args.model, n_items=args.items, benchmark=args.benchmark)
    print(format_check_report(report))
    return 0


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _images(args: argparse.Namespace) -> int:
    from visplay.world.images import write_images

    shift = _one_shift(args.shift, "an image folder")
    if args.n < 1:
        raise UserError(f"--n must be at least 1, not {args.n}")
    check_output_dir(args.out)
    try:
        write_images(args.out, args.n, seed=args.seed, progress=args.n >= 200, shift=shift)
    except FileExistsError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {args.n} unlabeled images to {args.out} (image i shows scene_for({args.seed}, i); "
          f"shift {shift.spec()})")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from visplay.world.benchmark import DEFAULT_SIZE, blind_baseline, family_counts, write_benchmark

    shift = _one_shift(args.shift, "a benchmark file")
    n = DEFAULT_SIZE if args.n is None else args.n
    if n < 1:
        raise UserError(f"--n must be at least 1, not {n}")
    if args.out.is_dir():
        raise UserError(f"--out must be a file path, and {args.out} is a folder")
    check_output_file(args.out, overwrite=True)  # the benchmark is the same for the same arguments
    rows = write_benchmark(args.out, n=n, seed=args.seed, questions=args.questions, shift=shift)
    mix = ", ".join(f"{family} {count}" for family, count in family_counts(rows).items())
    print(f"wrote {len(rows)} questions to {args.out} ({mix}; shift {shift.spec()})")
    print(f"  {blind_baseline(rows)}")
    return 0
