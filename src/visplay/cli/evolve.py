"""``visplay evolve CONFIG.yaml [--set key=value ...] [--resume]``: the full loop on your model and images."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evolve",
        help="run the self-evolution loop on a base VLM and a pile of unlabeled images",
        description="Run VisPlay's self-evolution iterations (questioner GRPO, curation, reasoner GRPO). "
        "Settings come from defaults < CONFIG.yaml < --set; see --help-config for every key.",
    )
    p.add_argument("config", nargs="?", type=Path,
                   help="YAML config file (optional: every key can come from --set, e.g. configs/tiny_cpu.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set curation.band=[0.3,0.8] (repeatable)")
    p.add_argument("--out", type=Path, help="run folder (same as --set out=DIR)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in its folder")
    p.add_argument("--help-config", action="store_true",
                   help="list every config key with the value a run would use (after the preset, CONFIG.yaml and "
                        "--set, e.g. --help-config --set preset=tiny) and its help")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.config import describe_values, load_evolve_config, preview_evolve_config

    overrides = list(args.overrides) + ([f"out={args.out}"] if args.out else [])
    if args.help_config:
        cfg = preview_evolve_config(args.config, overrides)
        source = " < ".join(["defaults", f"preset {cfg.preset}"] + ([str(args.config)] if args.config else [])
                            + (["--set"] if overrides else []))
        print(f"Every config key with the value a run would use ({source}):")
        for key, type_name, value, help_text in describe_values(cfg):
            print(f"{key:45s} {type_name:28s} {value:18s} {help_text}")
        return 0
    cfg = load_evolve_config(args.config, overrides)
    from visplay import distributed
    from visplay.cli.progress import print_iteration_table, setup_logging
    from visplay.evolve import RunStopped, evolve
    from visplay.stages.sampling import check_sampler_environment

    check_sampler_environment(cfg.sampler)
    # Under torchrun / accelerate launch: join the other ranks (a no-op for a single process).
    ranks = distributed.init_from_env()
    setup_logging(logging.INFO if ranks.is_main else logging.WARNING)
    if ranks.is_main:
        print(f"VisPlay: {cfg.iterations} iteration(s) of {cfg.model.path} on {cfg.data.images} -> {cfg.out}"
              + (f" ({ranks.world} processes)" if ranks.world > 1 else ""))
    try:
        rows = evolve(cfg, Path(cfg.out), resume=args.resume)
    except RunStopped as exc:
        if ranks.is_main:
            print(f"visplay: stopped: {exc}", file=sys.stderr)
        return 1
    if ranks.is_main:
        print_iteration_table(rows)
    return 0
