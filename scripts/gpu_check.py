"""GPU check: one self-evolution iteration of a Qwen2.5-VL-3B-shaped model with vLLM rollouts, vLLM votes and
bf16, per-phase times, and vote throughput of vLLM vs HF on the same requests (run by scripts/gpu_check.sh).

The model has Qwen2.5-VL-3B-Instruct's architecture and shape (36 layers of width 2048, 16 heads / 2 KV heads,
MLP 11008; a 32-block vision tower of width 1280 with full attention in blocks 7, 15, 23, 31), randomly
initialised in code: nothing is downloaded. Its tokenizer is the built-in byte-level one of
:mod:`visplay.engines.tiny`, so the vocabulary (and so the embedding and output layer) is that tokenizer's
size instead of 151,936: a random model must be able to emit only ids its tokenizer can decode. A random
model never writes a parseable question or a boxed answer on purpose, so the iteration runs with
``curation.on_too_few=continue`` and measures the machinery, not learning.

Budget (one 80-141 GB GPU): the iteration uses 2 GRPO steps per stage of 8 prompts x G 8, short completions
and votes, and eager vLLM engines (no CUDA-graph capture: several engines start in 8 minutes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

QWEN2_5_VL_3B = dict(text_hidden=2048, text_layers=36, text_ffn=11008, text_heads=16, text_kv_heads=2,
                     vision_hidden=1280, vision_layers=32, vision_heads=16, vision_ffn=3420)


def fail_without_gpu() -> None:
    """Exit 2 with one line when there is no CUDA GPU or no vLLM (before any work)."""
    if importlib.util.find_spec("vllm") is None:
        raise SystemExit("gpu_check: vllm is not installed (pip install -e '.[gpu]')")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU")


def model_config_3b(tokenizer):
    """Qwen2.5-VL-3B-Instruct's config (shape, rope, window attention) with ``tokenizer``'s vocabulary."""
    from visplay.engines.tiny import TinySize, tiny_config

    config = tiny_config("qwen2_5_vl", tokenizer, TinySize(**QWEN2_5_VL_3B))
    config.vision_config.fullatt_block_indexes = [7, 15, 23, 31]
    config.vision_config.window_size = 112
    text = config.text_config
    text.max_position_embeddings = 128000
    text.rope_parameters = dict(text.rope_parameters, rope_theta=1000000.0)
    text.rms_norm_eps = 1e-6
    return config


def build_model(out_dir: Path) -> Path:
    """Write the randomly initialised 3B-shaped checkpoint (bf16) with the tiny tokenizer and a Qwen image
    processor using the authors' pixel bounds."""
    import torch
    from transformers import AutoModelForImageTextToText

    from visplay.engines.loading import save_vlm
    from visplay.engines.processors import IMAGE_ONLY_PROCESSORS
    from visplay.engines.tiny import CHAT_TEMPLATE, tiny_image_processor, train_tokenizer

    tokenizer = train_tokenizer()
    config = model_config_3b(tokenizer)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    image_processor = tiny_image_processor("qwen2_5_vl", 448)
    image_processor.size = {"shortest_edge": 3136, "longest_edge": 448 * 448}
    _, processor_cls = IMAGE_ONLY_PROCESSORS["qwen2_5_vl"]
    processor = processor_cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    save_vlm(model, processor, out_dir)
    params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    print(f"model: {params / 1e9:.2f} B parameters (Qwen2.5-VL-3B shape, vocabulary {len(tokenizer)})", flush=True)
    return out_dir


def check_config(model_dir: Path, images: Path, out: Path):
    """The evolve config of the check (validated like any run's)."""
    from visplay.config import load_evolve_config

    grpo = {"steps": 2, "prompts_per_step": 8, "group_size": 8, "prompts_per_rollout": None, "micro_batch_size": 8,
            "bf16": True, "gradient_checkpointing": True, "use_vllm": True, "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": 0.15}
    base = {
        "out": str(out), "iterations": 1, "seed": 0, "preset": "paper",
        "model": {"path": str(model_dir), "prompt_style": "paper", "dtype": "bfloat16"},
        "data": {"images": str(images)},
        "sampler": {"backend": "vllm", "gpu_memory_utilization": 0.15, "enforce_eager": True, "max_model_len": 2048},
        "questioner": {"grpo": dict(grpo, max_completion_length=96), "votes": 10, "vote_sampling": {"max_tokens": 128}},
        "curation": {"images": 32, "samples_per_image": 4, "votes": 9, "question_sampling": {"max_tokens": 96},
                     "vote_sampling": {"max_tokens": 128}, "min_kept": 1,
                     "on_too_few": "continue", "band": [0.0, 1.0]},
        "reasoner": {"grpo": dict(grpo, max_completion_length=128)},
    }
    return load_evolve_config(None, base=base)


def vote_requests(run: Path, images: Path, count: int):
    """``count`` vote requests as curation builds them: the questions the run wrote (or a fixed question
    where the random questioner wrote none), each on its image."""
    import pyarrow.parquet as pq
    from PIL import Image

    from visplay.engines.sampler import SampleRequest
    from visplay.selfplay.prompts import reasoner_messages

    rows = pq.read_table(run / "iter_01" / "questions.parquet", columns=["image_id", "question"]).to_pylist()
    requests = []
    for k in range(count):
        row = rows[k % len(rows)]
        question = row["question"] or "How many objects are in the picture?"
        requests.append(SampleRequest(reasoner_messages(question, "paper"), [Image.open(images / row["image_id"])]))
    return requests


def print_phases(run: Path) -> None:
    state = json.loads((run / "state.json").read_text())["iterations"]["1"]
    print("\nper-phase times (s):")
    for stage in ("questioner", "curation", "reasoner"):
        info = state.get(stage, {})
        phases = ", ".join(f"{k.split('/', 1)[1]} {v:.1f}" for k, v in info.items() if k.startswith("time/"))
        print(f"  {stage:<11} {phases}  (processes {info.get('processes')})")
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for stage in ("iter01/questioner", "iter01/reasoner"):
        records = [r for r in steps if r.get("event") == "step" and r.get("stage") == stage]
        keys = sorted({k for r in records for k in r if k.startswith("time")})
        means = ", ".join(f"{k} {sum(r.get(k) or 0 for r in records) / max(1, len(records)):.2f}" for k in keys)
        print(f"  {stage} per GRPO step: {means}")


def vote_throughput(cfg, model_dir: Path, requests, n: int, max_new_tokens: int) -> None:
    """Votes per second of the vllm and hf backends on the same requests and settings."""
    from visplay.engines.loading import free_memory, load_vlm
    from visplay.engines.sampler import HFSampler
    from visplay.engines.sampler_vllm import VLLMSampler

    settings = dict(n=n, temperature=1.0, top_p=0.99, max_new_tokens=max_new_tokens, seed=0)
    votes = len(requests) * n
    print(f"\nvote throughput: {len(requests)} questions x {n} votes x {max_new_tokens} tokens (a random model "
          "never stops early)")
    sampler = VLLMSampler(model_dir, gpu_memory_utilization=0.5, enforce_eager=True, max_model_len=2048,
                          dtype="bfloat16", progress=False)
    sampler.sample(requests[:2], **dict(settings, n=2))  # warm-up
    t0 = time.perf_counter()
    sampler.sample(requests, **settings)
    t_vllm = time.perf_counter() - t0
    sampler.close()
    loaded = load_vlm(model_dir, dtype="bfloat16")
    hf = HFSampler(loaded, max_batch_tokens=cfg.sampler.max_batch_tokens, max_batch_rows=cfg.sampler.max_batch_rows,
                   progress=False)
    t0 = time.perf_counter()
    hf.sample(requests, **settings)
    t_hf = time.perf_counter() - t0
    del loaded, hf
    free_memory()
    print(f"  vllm  {t_vllm:7.1f} s  {votes / t_vllm:8.1f} votes/s")
    print(f"  hf    {t_hf:7.1f} s  {votes / t_hf:8.1f} votes/s   (vllm {t_hf / t_vllm:.1f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (model, images, run)")
    parser.add_argument("--vote-questions", type=int, default=32)
    parser.add_argument("--vote-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    fail_without_gpu()
    import torch

    from visplay.cli.progress import setup_logging
    from visplay.evolve import evolve
    from visplay.world.images import write_images

    setup_logging()
    work = args.out or Path(tempfile.mkdtemp(prefix="visplay-gpu-check-"))
    started = time.perf_counter()
    print(f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB; "
          f"work folder {work}", flush=True)
    try:
        t0 = time.perf_counter()
        model_dir = build_model(work / "model")
        images = write_images(work / "images", 64, seed=0)
        print(f"build: {time.perf_counter() - t0:.1f} s", flush=True)
        cfg = check_config(model_dir, images, work / "run")
        t0 = time.perf_counter()
        evolve(cfg, work / "run")
        print(f"iteration: {time.perf_counter() - t0:.1f} s", flush=True)
        print_phases(work / "run")
        vote_throughput(cfg, model_dir, vote_requests(work / "run", images, args.vote_questions), 10, args.vote_tokens)
        print(f"\ngpu_check finished in {time.perf_counter() - started:.0f} s")
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
