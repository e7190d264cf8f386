"""The toy base model's training loop, and the recipe hash that covers it.

Supervised fine-tuning of a fresh tiny Qwen2.5-VL on fresh world scenes every step (tasks and batches
from :mod:`visplay.world.base_data`), with a perception warm-up, an easy-scene curriculum and a
training-only cell probe on the merged vision tokens (docs/toy_base_model.md says why each).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch

from visplay.world.base_data import (
    _world,
    cell_labels,
    collate,
    make_item,
    questioner_example,
    questioner_target,
    reasoner_output,
    reasoner_target,
    reasoner_thought,
    tokenizer_corpus,
)
from visplay.world.recipe import HASH_FILE, RECIPE, BaseRecipe
from visplay.world.scenes import COLORS, SHAPES, SIZES

# Cosine-classifier temperature of the cell probe.
PROBE_SCALE = 10.0


def recipe_hash(recipe: BaseRecipe = RECIPE) -> str:
    """Hash of the recipe config and of the code that turns it into weights (targets, batches, the loop).

    The training functions are hashed as syntax trees without their docstrings: editing a docstring, a
    comment or the layout keeps the hash; changing what the code does changes it.
    """
    h = hashlib.sha256()
    h.update(json.dumps(recipe.to_dict(), sort_keys=True).encode())
    for fn in (questioner_target, reasoner_target, reasoner_thought, reasoner_output, tokenizer_corpus,
               questioner_example, make_item, collate, cell_labels, _task_mix, _lr_factor, train_base, _train):
        h.update(source_fingerprint(inspect.getsource(fn)).encode())
    return h.hexdigest()[:16]


def source_fingerprint(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text: blind to docstrings, comments and layout.

    >>> source_fingerprint("def f(x):\\n    'Doc.'\\n    return x + 1  # why") == source_fingerprint("def f(x): return x + 1")
    True
    >>> source_fingerprint('def f(x): return x + 1') == source_fingerprint('def f(x): return x + 2')
    False
    """
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _task_mix(recipe: BaseRecipe, step: int) -> tuple[float, float]:
    """(describe share, questioner share) of the batch at ``step``."""
    if step < recipe.perception_steps:
        return 1.0, 0.0
    frac = (step - recipe.perception_steps) / max(1, recipe.steps - recipe.perception_steps - 1)
    describe = recipe.describe_start + (recipe.describe_end - recipe.describe_start) * frac
    return describe, recipe.questioner_share * (1 - describe)


def _lr_factor(recipe: BaseRecipe, step: int) -> float:
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    t = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))


def train_base(out_dir: str | Path, recipe: BaseRecipe = RECIPE, log: Callable[[str], None] = print) -> Path:
    """Build a fresh tiny model and train it with ``recipe``; write the checkpoint to ``out_dir``."""
    # Hashed before training: the hash reads the source files, which may be edited while a build runs.
    digest = recipe_hash(recipe)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _train(out_dir, recipe, log, _world(), digest)
    finally:
        torch.set_num_threads(threads)


def _train(out_dir, recipe, log, world, digest) -> Path:
    import tempfile

    from tqdm.auto import tqdm

    from visplay.engines.loading import load_vlm, save_vlm
    from visplay.engines.tiny import build_tiny_model

    torch.manual_seed(recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        init = build_tiny_model(Path(tmp) / "init", arch=recipe.arch, size=recipe.size, seed=recipe.seed,
                                vocab_size=recipe.vocab_size, extra_text=tokenizer_corpus(world))
        loaded = load_vlm(init, device="cpu", dtype=torch.float32)
    model, processor = loaded.model, loaded.processor
    model.train()
    n_classes = 1 + len(SHAPES) * len(COLORS) * len(SIZES)
    probe = torch.nn.Linear(model.config.text_config.hidden_size, n_classes)
    # One learning rate for all: a higher one for the vision tower blew its features up.
    opt = torch.optim.AdamW(list(model.parameters()) + list(probe.parameters()), lr=recipe.lr,
                            weight_decay=recipe.weight_decay, betas=(0.9, 0.98))
    # The probe reads the merged vision tokens of the model's own forward pass (no second vision pass).
    captured = {}
    hook = model.model.visual.register_forward_hook(lambda mod, inp, out: captured.__setitem__("feats", out.pooler_output))
    rng = random.Random(recipe.seed)
    t0 = time.time()
    bar = tqdm(range(recipe.steps), desc="base model", unit="step", leave=False)
    smooth = None
    probe_loss, probe_acc = torch.tensor(float("nan")), float("nan")
    for step in bar:
        describe_p, questioner_p = _task_mix(recipe, step)
        items = []
        for _ in range(recipe.batch_size):
            u = rng.random()
            task = "describe" if u < describe_p else "questioner" if u < describe_p + questioner_p else "reasoner"
            items.append(make_item(world, rng, task, step < recipe.easy_steps, recipe))
        batch = collate(processor, items)
        opt.param_groups[0]["lr"] = recipe.lr * _lr_factor(recipe, step)
        out = model(**batch)
        total = out.loss
        if recipe.probe_weight > 0:
            feats = captured.pop("feats")  # (batch * 16, hidden), cells in row-major order
            target = torch.tensor([c for it in items for c in cell_labels(it.scene)])
            # A cosine classifier on unit-norm features: a plain linear probe rewards ever larger features
            # (measured: token norms 0.5 -> 60 in 50 steps, and no colour learned).
            logits = PROBE_SCALE * torch.nn.functional.normalize(feats, dim=-1) @ torch.nn.functional.normalize(probe.weight, dim=-1).T
            probe_loss = torch.nn.functional.cross_entropy(logits, target)
            total = total + recipe.probe_weight * probe_loss
            probe_acc = (logits.argmax(-1) == target).float().mean().item()
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = out.loss.item()
        smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
        bar.set_postfix(loss=f"{smooth:.3f}")
        if step % 10 == 0 or step == recipe.steps - 1:
            log(f"step {step:5d}/{recipe.steps}  loss {loss:.4f}  (avg {smooth:.4f})  cell probe {probe_loss.item():.3f}"
                f" acc {probe_acc:.2f}  {time.time() - t0:6.0f}s")
    bar.close()
    hook.remove()
    model.eval()
    out_dir = Path(out_dir)
    save_vlm(model, processor, out_dir)
    (out_dir / HASH_FILE).write_text(json.dumps({"recipe_hash": digest, "recipe": recipe.to_dict(),
                                                 "train_seconds": round(time.time() - t0, 1)}, indent=2) + "\n")
    return out_dir
