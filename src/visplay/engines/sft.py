"""Supervised fine-tuning of a VLM on (prompt, image, target completion) triples: the base recipe's loss.

Two users: the toy base model's recipe (:mod:`visplay.world.base_training`, which hashes :func:`collate`
as part of the recipe) and the ``oracle-sft`` study arm (``reasoner.objective: sft``), the yardstick of
what any reward could teach with a given set of questions. The loss is the next-token cross-entropy on the
target and its ``<|im_end|>`` only, as in the base recipe.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch


class Item(Protocol):
    """One training sequence: chat ``messages`` with one image part, the ``image``, and the ``target`` text."""

    messages: list
    image: object
    target: str


@dataclass
class SFTExample:
    messages: list
    image: object
    target: str


@dataclass(frozen=True)
class SFTSettings:
    """One SFT stage: ``steps`` AdamW updates of ``batch_size`` examples each (examples cycled in a seeded
    order), constant learning rate after a linear warmup, gradient norm clipped."""

    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.01
    warmup_steps: int = 0
    grad_clip: float = 1.0
    trainable: str = "all"
    seed: int = 0


def collate(processor, items: list[Item]) -> dict:
    """Right-padded inputs (via the processor, so ``mm_token_type_ids`` is right) and labels.

    Labels are -100 on the prompt and padding; the target and its ``<|im_end|>`` are in the loss.
    """
    tok = processor.tokenizer
    prompts = [processor.apply_chat_template(it.messages, add_generation_prompt=True, tokenize=False) for it in items]
    texts = [p + it.target + "<|im_end|>" for p, it in zip(prompts, items)]
    old_side = tok.padding_side
    tok.padding_side = "right"
    try:
        batch = processor(text=texts, images=[it.image for it in items], padding=True, return_tensors="pt")
    finally:
        tok.padding_side = old_side
    ids = batch["input_ids"]
    labels = ids.clone()
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    head = len(tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    for r in range(ids.shape[0]):
        starts = (ids[r] == im_start).nonzero().flatten()
        labels[r, : int(starts[-1]) + head] = -100
    labels[batch["attention_mask"] == 0] = -100
    batch["labels"] = labels
    return dict(batch)



def batches(n_examples: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Example indices of each step: every example once in a seeded order, then again in another, and so on.

    >>> batches(5, 3, 2, 0)
    [[2, 1], [0, 4], [3, 0]]
    """
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        epoch = list(range(n_examples))
        rng.shuffle(epoch)
        order += epoch
    return [order[k * batch_size:(k + 1) * batch_size] for k in range(steps)]


def train_sft(model_dir: str | Path, out_dir: str | Path, examples: Sequence[SFTExample], settings: SFTSettings,
              metrics_path: str | Path | None = None, stage_name: str = "", progress: bool = True,
              min_pixels: int | None = None, max_pixels: int | None = None) -> dict:
    """Fine-tune the VLM in ``model_dir`` on ``examples`` and save it to ``out_dir`` (atomically); return a
    summary. One process (the toy world's arm); metrics.jsonl gets one ``step`` line per update (``loss``)."""
    from tqdm.auto import tqdm

    from visplay.engines.loading import carry_configs_and_markers, load_vlm, save_vlm
    from visplay.engines.trainable import apply_trainable
    from visplay.io import append_jsonl, atomic_dir

    if not examples:
        raise ValueError("SFT needs at least one example")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    torch.manual_seed(settings.seed)
    loaded = load_vlm(model_dir, device="cpu", dtype=torch.float32, min_pixels=min_pixels, max_pixels=max_pixels)
    model, processor = loaded.model, loaded.processor
    trainable = apply_trainable(model, settings.trainable)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    losses = []
    bar = tqdm(batches(len(examples), settings.steps, settings.batch_size, settings.seed), desc=stage_name or "SFT",
               unit="step", disable=not progress, leave=False)
    for step, indices in enumerate(bar, start=1):
        lr = settings.learning_rate * min(1.0, step / (settings.warmup_steps + 1)) if settings.warmup_steps else \
            settings.learning_rate
        optimizer.param_groups[0]["lr"] = lr
        loss = model(**collate(processor, [examples[i] for i in indices])).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if metrics_path is not None:
            append_jsonl(metrics_path, {"event": "step", "stage": stage_name, "step": step, "loss": losses[-1],
                                        "grad_norm": float(grad_norm), "learning_rate": lr})
    bar.close()
    model.eval()
    with atomic_dir(out_dir) as tmp:
        save_vlm(model, processor, tmp)
        carry_configs_and_markers(model_dir, tmp)
    third = max(1, len(losses) // 3)
    return {"optimizer_steps": len(losses), "examples": len(examples), "trainable_parameters": trainable,
            "loss_first_third": sum(losses[:third]) / third, "loss_last_third": sum(losses[-third:]) / third}
