"""Benchmark: the frozen reasoner's votes with the HF sampler, shared prefill vs the expanded reference.

Run:  python benchmarks/bench_votes.py [--requests 4] [--votes 10] [--image-size 448] [--max-new-tokens 32]

A tiny random Qwen2.5-VL (built in code, offline; its image processor allowed up to 448 x 448 px) answers
``--requests`` questions about different ``--image-size`` px images, ``--votes`` samples each (the
questioner stage's m = 10), at the paper's vote settings (temperature 1.0, top_p 0.99), in one batch:

- reference: ``generate(num_return_sequences=n)``, the HF sampler's previous path: transformers repeats
  every input n times before the forward pass, so the vision tower and the prompt prefill run n times per
  question (:func:`reference_votes`, kept here only);
- fast: :class:`visplay.engines.sampler.HFSampler`, which prefills each (image, prompt) once, repeats the
  key/value cache n times and continues ``generate`` from it.

Both are seeded the same way and draw from the same random stream, so they must give identical votes; the
benchmark checks it and prints votes per second for both, side by side (best of ``--repeats``). A random
model never stops early, so every vote is ``--max-new-tokens`` long; a real reasoner's votes run longer
(up to 4096 tokens), which shrinks the share of the prefill and so the speed-up, while larger images or
longer prompts grow it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from visplay.engines.loading import load_vlm, set_pixel_bounds
from visplay.engines.sampler import HFSampler, SampleRequest, explicit_generation_config
from visplay.engines.tiny import build_tiny_model
from visplay.selfplay.prompts import reasoner_messages


@torch.no_grad()
def reference_votes(sampler: HFSampler, requests, n: int, temperature: float, top_p: float, max_new_tokens: int,
                    seed: int) -> list[list[str]]:
    """The previous HF sampler path for one batch: inputs expanded n times by ``generate`` itself.

    Same prompts, same seed formula (batch 0 of seed ``seed``) and same generation config as
    :meth:`HFSampler.sample`; nothing is shared with the fast path (no cache object, no rope offsets reused).
    """
    loaded = sampler.loaded
    prepared = [sampler._prompt(r) for r in requests]
    # The sampler's batch order (longest prompt first): rows must meet the random stream in the same order.
    plan = sampler.plan([sampler._prompt_length(t, imgs) for t, imgs in prepared], n, max_new_tokens)
    if len(plan) != 1:
        raise ValueError("the reference handles one batch; raise the sampler's batch budgets")
    order = plan[0]
    texts = [prepared[i][0] for i in order]
    images = [img for i in order for img in prepared[i][1]]
    inputs = loaded.processor(text=texts, images=images, padding=True, return_tensors="pt").to(loaded.device)
    config = explicit_generation_config(loaded.tokenizer, do_sample=True, temperature=temperature, top_p=top_p,
                                        max_new_tokens=max_new_tokens, num_return_sequences=n)
    torch.manual_seed((seed * 1_000_003 + 0) % (2**63))
    output = loaded.model.generate(**inputs, generation_config=config)
    decoded = loaded.processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    results: list[list[str]] = [[] for _ in requests]
    for j, i in enumerate(order):
        results[i] = decoded[j * n:(j + 1) * n]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="questions (one image each)")
    parser.add_argument("--votes", type=int, default=10, help="samples per question (m)")
    parser.add_argument("--image-size", type=int, default=448, help="image side in pixels")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each path (best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        loaded = load_vlm(model_dir, device="cpu")
    set_pixel_bounds(loaded.processor, max_pixels=args.image_size ** 2)
    # One batch for both paths: the budgets never split the requests.
    sampler = HFSampler(loaded, max_batch_tokens=10**9, max_batch_rows=10**6, progress=False)
    rng = np.random.default_rng(args.seed)
    requests = [SampleRequest(reasoner_messages(f"How many red circles are there in picture {i}?"),
                              [Image.fromarray(rng.integers(0, 256, (args.image_size, args.image_size, 3),
                                                            dtype=np.uint8))])
                for i in range(args.requests)]
    settings = dict(n=args.votes, temperature=1.0, top_p=0.99, max_new_tokens=args.max_new_tokens, seed=args.seed)
    tokens = loaded.processor(text=[sampler._prompt(requests[0])[0]], images=[sampler._prompt(requests[0])[1][0]],
                              return_tensors="pt")["input_ids"].shape[1]
    print(f"{args.requests} questions x {args.votes} votes, {args.image_size} px images ({tokens} prompt tokens "
          f"each), {args.max_new_tokens} new tokens per vote, {torch.get_num_threads()} CPU threads")

    def timed(fn):
        best, out = float("inf"), None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best, out

    t_ref, ref = timed(lambda: reference_votes(sampler, requests, settings["n"], settings["temperature"],
                                               settings["top_p"], settings["max_new_tokens"], settings["seed"]))
    t_fast, fast = timed(lambda: sampler.sample(requests, **settings))
    votes = args.requests * args.votes
    print(f"{'path':<44}{'seconds':>10}{'votes/s':>10}")
    print(f"{'reference: generate(num_return_sequences=n)':<44}{t_ref:>10.2f}{votes / t_ref:>10.2f}")
    print(f"{'fast: one prefill, cache repeated n times':<44}{t_fast:>10.2f}{votes / t_fast:>10.2f}")
    same = sum(a == b for ra, rb in zip(ref, fast) for a, b in zip(ra, rb))
    print(f"speed-up {t_ref / t_fast:.2f}x; identical votes for seed {args.seed}: {same}/{votes}")
    if same != votes:
        raise SystemExit("votes differ between the two paths")


if __name__ == "__main__":
    main()
