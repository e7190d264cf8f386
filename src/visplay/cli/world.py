"""``visplay world ...``: the toy world's unlabeled images and labeled benchmark.

    visplay world images --out DIR --n N [--seed S]       unlabeled PNGs (DIR must be absent or empty)
    visplay world benchmark --out FILE [--n N] [--seed S]  the held-out labeled benchmark (parquet)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visplay.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("world", help="the toy world: unlabeled images, labeled benchmark")
    world = parser.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")
    parser.set_defaults(handler=lambda args: _help(parser))

    images = world.add_parser("images", help="write unlabeled toy images (PNGs only) to a new folder")
    images.add_argument("--out", required=True, type=Path, help="folder to create (absent or empty)")
    images.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    images.add_argument("--seed", type=int, default=0, help="image i shows scene_for(seed, i) (default 0)")
    images.set_defaults(handler=_images)

    bench = world.add_parser("benchmark", help="write the held-out labeled toy benchmark (parquet)")
    bench.add_argument("--out", required=True, type=Path, help="parquet file to write")
    bench.add_argument("--n", type=int, default=None, help="number of questions (default 840, 140 per family)")
    bench.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    bench.set_defaults(handler=_benchmark)

    # --- room for `visplay world base` (the warm-started tiny base model) and `visplay world check`
    # (the same measurements for any model); another part of issue 6 registers them here.


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _images(args: argparse.Namespace) -> int:
    from visplay.world.images import write_images

    if args.n < 1:
        raise UserError(f"--n must be at least 1, not {args.n}")
    try:
        write_images(args.out, args.n, seed=args.seed, progress=args.n >= 200)
    except FileExistsError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {args.n} unlabeled images to {args.out} (image i shows scene_for({args.seed}, i))")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from visplay.world.benchmark import DEFAULT_SIZE, blind_baseline, family_counts, write_benchmark

    n = DEFAULT_SIZE if args.n is None else args.n
    if n < 1:
        raise UserError(f"--n must be at least 1, not {n}")
    if args.out.is_dir():
        raise UserError(f"--out must be a file path, and {args.out} is a folder")
    rows = write_benchmark(args.out, n=n, seed=args.seed)
    mix = ", ".join(f"{family} {count}" for family, count in family_counts(rows).items())
    print(f"wrote {len(rows)} questions to {args.out} ({mix})")
    print(f"  {blind_baseline(rows)}")
    return 0
