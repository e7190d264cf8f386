"""``visplay tiny-model``: a tiny random VLM built offline (tests and the toy world start from it)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from visplay.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from visplay.engines.tiny import ARCHITECTURES, SIZES

    p = subparsers.add_parser(
        "tiny-model",
        help="build a tiny random VLM (Qwen-VL architecture, tokenizer trained locally), fully offline",
        description="Build a tiny random VLM checkpoint that transformers and VisPlay load directly. "
        "No download: the tokenizer is trained here and the weights are random.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (replaced if it holds a previous tiny model)")
    p.add_argument("--arch", default="qwen2_5_vl", choices=ARCHITECTURES, help="model architecture (default: qwen2_5_vl)")
    p.add_argument("--size", default="S", choices=sorted(SIZES), help="model width preset (default: S, about 1.4 M parameters)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.engines.tiny import build_tiny_model
    from visplay.preflight import check_output_dir

    out: Path = args.out
    check_output_dir(out)  # a file, a folder under a file, a read-only place: one line before any work
    if out.is_dir() and any(out.iterdir()) and not (out / "visplay_tiny.json").exists():
        raise UserError(f"--out {out} is a non-empty folder that is not a tiny model; refusing to replace it")
    build_tiny_model(out, arch=args.arch, size=args.size, seed=args.seed)
    from visplay.engines.loading import read_model_config

    config = read_model_config(out)
    n_params = _count_params(out)
    print(f"wrote a tiny {config['model_type']} model ({n_params / 1e6:.2f} M parameters) to {out}")
    return 0


def _count_params(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in path.glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as handle:
            for name in handle.keys():
                total += math.prod(handle.get_slice(name).get_shape())
    return total

