"""The SFT engine (the oracle-sft arm's learner) and the named trainable-parameter settings, on the shipped toy
base: it learns its targets, saves a loadable checkpoint, and freezes exactly what the setting says."""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from visplay.engines.loading import load_vlm
from visplay.engines.sft import SFTExample, SFTSettings, batches, train_sft
from visplay.engines.trainable import TRAINABLE, apply_trainable
from visplay.selfplay.prompts import reasoner_messages
from visplay.world.base import ASSET_DIR
from visplay.world.base_data import reasoner_output, reasoner_thought
from visplay.world.examples import sample_example
from visplay.world.render import render


def _examples(n: int, seed: int = 0) -> list[SFTExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ex = sample_example(rng)
        out.append(SFTExample(reasoner_messages(ex.question, "compact"), render(ex.scene),
                              reasoner_output(reasoner_thought(ex.query, ex.scene), ex.answer)))
    return out


def test_batches_cover_every_example_before_repeating():
    steps = batches(7, 5, 3, seed=1)
    flat = [i for step in steps for i in step]
    assert len(steps) == 5 and all(len(s) == 3 for s in steps)
    assert sorted(flat[:7]) == list(range(7)) and sorted(flat[7:14]) == list(range(7))
    assert batches(7, 5, 3, seed=1) == steps != batches(7, 5, 3, seed=2)


@pytest.mark.parametrize("setting", TRAINABLE)
def test_trainable_settings_freeze_what_they_say(setting):
    model = load_vlm(ASSET_DIR, device="cpu", dtype=torch.float32).model
    n = apply_trainable(model, setting)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    vision = {name for name in dict(model.named_parameters()) if ".visual." in f".{name}"}
    total = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for name, p in model.named_parameters() if name in trainable)
    if setting == "all":
        assert n == total
    elif setting == "language":
        assert trainable and not trainable & vision
    elif setting == "vision":
        assert trainable == vision
    else:  # embed-norms: the patch embedding and the vision norms, nothing else (~75 k of 1.4 M)
        assert trainable and trainable <= vision
        assert all("patch_embed" in name or "norm" in name or "ln_q" in name for name in trainable)
        assert any("patch_embed" in name for name in trainable) and any("norm" in name for name in trainable)
        assert 50_000 < n < 100_000


def test_apply_trainable_refuses_unknown_settings():
    model = load_vlm(ASSET_DIR, device="cpu", dtype=torch.float32).model
    with pytest.raises(ValueError, match="trainable must be one of"):
        apply_trainable(model, "decoder")


def test_sft_learns_its_targets_and_trains_only_the_chosen_parameters(tmp_path):
    examples = _examples(8)
    settings = SFTSettings(steps=12, batch_size=4, learning_rate=1e-3, trainable="embed-norms", seed=0)
    metrics = tmp_path / "metrics.jsonl"
    summary = train_sft(ASSET_DIR, tmp_path / "out", examples, settings, metrics_path=metrics, stage_name="t",
                        progress=False)
    assert summary["optimizer_steps"] == 12 and summary["examples"] == 8
    # Eight examples seen three times each: the loss on them must fall.
    assert summary["loss_last_third"] < summary["loss_first_third"]
    before = load_file(ASSET_DIR / "model.safetensors")
    after = load_file(tmp_path / "out" / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("patch_embed" in k or "norm" in k or "ln_q" in k for k in changed)
    assert any("patch_embed" in k for k in changed)
    lines = metrics.read_text().splitlines()
    assert len(lines) == 12 and '"loss"' in lines[0]
    load_vlm(tmp_path / "out", device="cpu")  # a complete checkpoint


def test_sft_refuses_no_examples(tmp_path):
    with pytest.raises(ValueError, match="at least one example"):
        train_sft(ASSET_DIR, tmp_path / "out", [], SFTSettings(steps=1, batch_size=1, learning_rate=1e-4))
    assert not (tmp_path / "out").exists()
