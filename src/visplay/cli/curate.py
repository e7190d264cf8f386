"""``visplay curate``: the curation stage alone (questioner + reasoner + images -> question set)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "curate",
        help="write a curated question set: a questioner asks, a reasoner votes, the confidence band filters",
        description="Run the curation stage alone. Every candidate is written to the parquet file with its "
        "votes, silver answer, confidence and whether (or why not) it was kept. Settings come from the "
        "curation and sampler sections of an evolve config (optional) and --set.",
    )
    p.add_argument("--questioner", required=True, type=Path, help="questioner checkpoint folder")
    p.add_argument("--reasoner", required=True, type=Path, help="reasoner checkpoint folder (votes)")
    p.add_argument("--images", required=True, type=Path, help="image folder, .parquet file or saved HF dataset")
    p.add_argument("--out", required=True, type=Path, help="output parquet file (an existing one only with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already exists")
    p.add_argument("--config", type=Path, help="evolve config YAML to take curation/sampler/model settings from")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set curation.images=200 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of image choice and sampling (default: 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.config import load_evolve_config
    from visplay.data.images import open_image_source
    from visplay.engines.loading import read_model_config
    from visplay.errors import UserError
    from visplay.preflight import check_output_file
    from visplay.stages.curation import curate, pool_size_warning

    if args.out.suffix != ".parquet":
        raise UserError(f"--out {args.out} must end in .parquet")
    # Every input is checked before the first model loads: the curation itself can take hours.
    check_output_file(args.out, "--out", overwrite=args.overwrite)
    for flag, path in (("--questioner", args.questioner), ("--reasoner", args.reasoner)):
        try:
            read_model_config(path)
        except UserError as exc:
            raise UserError(f"{flag}: {exc}") from None
    base = {"model": {"path": str(args.questioner)}, "data": {"images": str(args.images)}, "seed": args.seed}
    cfg = load_evolve_config(args.config, args.overrides, base=base)
    images = open_image_source(args.images, cfg.data.image_column)
    images.require_readable()
    from visplay import distributed

    if (warning := pool_size_warning(cfg, len(images))) is not None and distributed.is_main_process():
        print(f"visplay: warning: {warning}", file=sys.stderr)
    from visplay.stages.sampling import check_sampler_environment

    check_sampler_environment(cfg.sampler)
    ranks = distributed.init_from_env()  # under torchrun: the sampling is split across the ranks
    summary = curate(cfg, args.questioner, args.reasoner, images, args.out, seed=cfg.seed)
    if not ranks.is_main:
        return 0
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["drop_reasons"].items())) or "none"
    print(f"wrote {summary['candidates']} candidates to {args.out}: kept {summary['kept']} "
          f"(valid questions {100 * summary['validity']:.1f}%, mean confidence "
          f"{summary['mean_confidence'] if summary['mean_confidence'] == summary['mean_confidence'] else float('nan'):.2f}; "
          f"dropped: {reasons})")
    return 0
