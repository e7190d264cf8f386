"""The GRPO engine on a tiny random Qwen2.5-VL, on CPU: it trains, logs, saves, and keeps groups whole."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from PIL import Image, ImageDraw

from visplay.config import GRPOSettings
from visplay.engines.grpo import grpo_config, train_grpo
from visplay.engines.grpo_rewards import ROW_COLUMN, RewardAdapter
from visplay.errors import UserError
from visplay.selfplay.prompts import reasoner_messages

GROUP = 4
PROMPTS = 2


def _image(i: int) -> Image.Image:
    im = Image.new("RGB", (112, 112), (245, 245, 245))
    draw = ImageDraw.Draw(im)
    draw.ellipse([10 + 8 * i, 20, 50 + 8 * i, 60], fill=(200, 30, 30))
    draw.rectangle([60, 60 + 5 * i, 90, 90], fill=(30, 30, 200))
    return im


def _examples(n: int = 3) -> list[dict]:
    # Fewer examples (3) than the run needs (2 steps x 2 prompts = 4): exercises the cycling path.
    return [{"prompt": reasoner_messages(f"How many shapes are there? ({i})"), "image": _image(i),
             "image_id": f"img{i}", "silver_answer": str(i)} for i in range(n)]


class RecordingReward:
    """Deterministic reward: longer completions score higher; records what it was given."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, completions, columns, group_ids):
        self.calls.append({"completions": list(completions), "columns": columns, "group_ids": list(group_ids)})
        return [{"total": len(c) / 100.0, "length": float(len(c)), "has_a": float("a" in c)} for c in completions]


def _settings(**overrides) -> GRPOSettings:
    values = dict(steps=2, group_size=GROUP, prompts_per_step=PROMPTS, max_completion_length=12,
                  learning_rate=1e-3, weight_decay=0.0, seed=7)  # no decay: parameters move only by gradients
    values.update(overrides)
    return GRPOSettings.tiny("reasoner", **values)


def _state(path):
    from visplay.engines.loading import load_vlm

    return {k: v.detach().clone() for k, v in load_vlm(path, device="cpu").model.state_dict().items()}


def _changed(before: dict, after: dict, vision: bool) -> list[str]:
    return [k for k in before if ("visual" in k) == vision and not torch.equal(before[k], after[k])]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from visplay.engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("grpo") / "base")


@pytest.fixture(scope="module")
def run(base):
    root = base.parent
    reward = RecordingReward()
    out = train_grpo(base, root / "trained", _examples(), reward, _settings(), metrics_path=root / "metrics.jsonl",
                     stage_name="iter_01/reasoner", progress=False)
    return {"out": out, "reward": reward, "metrics": root / "metrics.jsonl", "base": base}


def test_checkpoint_reloads_and_parameters_changed(run):
    from transformers import AutoModelForImageTextToText

    from visplay.engines.loading import load_vlm

    loaded = load_vlm(run["out"], device="cpu")
    assert loaded.processor.image_processor is not None
    auto = AutoModelForImageTextToText.from_pretrained(run["out"])
    assert type(auto).__name__ == "Qwen2_5_VLForConditionalGeneration"
    before, after = _state(run["base"]), _state(run["out"])
    assert _changed(before, after, vision=False), "language model did not change"
    assert _changed(before, after, vision=True), "vision tower did not change (train_vision=True)"
    # Only weights change: the starting checkpoint's configs are kept.
    for name in ("config.json", "generation_config.json"):
        assert (run["out"] / name).read_text() == (run["base"] / name).read_text()
    info = json.loads((run["out"] / "visplay_grpo.json").read_text())
    assert info["optimizer_steps"] == 2 and info["settings"]["group_size"] == GROUP


def test_metrics_lines(run):
    lines = [json.loads(line) for line in run["metrics"].read_text().splitlines()]
    steps = [r for r in lines if r["event"] == "step"]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        for key in ("stage", "reward_mean", "reward_std", "frac_reward_zero_std", "kl", "completion_length",
                    "learning_rate", "loss", "time_step", "time_generate", "time_reward_fn", "reward_length",
                    "reward_has_a"):
            assert key in r, key
        assert r["stage"] == "iter_01/reasoner"
        assert 0.0 <= r["frac_reward_zero_std"] <= 1.0
    end = lines[-1]
    assert end["event"] == "grpo_end" and end["optimizer_steps"] == 2 and end["reward_calls"] == 2


def test_reward_fn_gets_whole_groups_and_columns(run):
    calls = run["reward"].calls
    assert len(calls) == 2  # one generation round per step; the requested steps all ran despite 3 examples
    for call in calls:
        assert len(call["completions"]) == GROUP * PROMPTS
        assert set(Counter(call["group_ids"]).values()) == {GROUP}
        assert call["group_ids"] == sorted(call["group_ids"])
        columns = call["columns"]
        assert {"image", "image_id", "silver_answer"} <= set(columns) and ROW_COLUMN not in columns
        assert all(len(v) == len(call["completions"]) for v in columns.values())
        assert all(isinstance(im, Image.Image) for im in columns["image"])
        for g in set(call["group_ids"]):
            ids = {columns["image_id"][i] for i, gid in enumerate(call["group_ids"]) if gid == g}
            assert len(ids) == 1  # one group = one prompt


def test_frozen_vision_and_seeded_sampling(run, tmp_path):
    reward = RecordingReward()
    out = train_grpo(run["base"], tmp_path / "frozen", _examples(), reward, _settings(steps=1, train_vision=False),
                     progress=False)
    before, after = _state(run["base"]), _state(out)
    assert _changed(before, after, vision=False)
    assert not _changed(before, after, vision=True)
    # Same seed, same starting model: the first rollout is identical to the first run's.
    assert reward.calls[0]["completions"] == run["reward"].calls[0]["completions"]


def test_settings_validation():
    with pytest.raises(UserError, match="more than one sample per prompt"):
        GRPOSettings(group_size=1)
    with pytest.raises(UserError, match="more than one sample per prompt"):
        GRPOSettings.tiny("questioner", group_size=1)
    with pytest.raises(UserError, match="dual_clip"):
        GRPOSettings(dual_clip=1.2)
    with pytest.raises(UserError, match="multiple of prompts_per_step"):
        GRPOSettings(prompts_per_step=128, prompts_per_rollout=200)
    with pytest.raises(UserError, match="top_p"):
        GRPOSettings(top_p=1.5)
    with pytest.raises(UserError, match="role"):
        GRPOSettings.paper("critic")
    with pytest.raises(UserError, match="report_to"):
        GRPOSettings(report_to="mlflow")
    with pytest.raises(UserError, match="empty"):
        train_grpo("unused", "unused", [], RecordingReward(), _settings())


def test_paper_preset_maps_to_trl(tmp_path):
    s = GRPOSettings.paper("reasoner")
    assert (s.steps, s.updates_per_rollout, s.optimizer_steps) == (20, 4, 80)
    cfg = grpo_config(s, tmp_path)
    assert cfg.num_generations == 8 and cfg.max_completion_length == 4096
    assert cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps == 128 * 8  # one update
    assert cfg.generation_batch_size == 512 * 8  # one rollout round
    assert cfg.max_steps == 80 and cfg.num_iterations == 1
    assert (cfg.beta, cfg.epsilon, cfg.epsilon_high, cfg.delta) == (0.01, 0.2, 0.3, 3.0)
    # The authors: verl token-mean with one sequence per micro-batch = mean of per-sequence token means,
    # and verl's low_var_kl gradient (TRL 1.16's default multiplies k3 by pi/pi_old: off).
    assert cfg.loss_type == "grpo" and cfg.per_device_train_batch_size == 1 and cfg.scale_rewards == "group"
    assert cfg.use_bias_correction_kl is False
    assert (cfg.top_k, cfg.repetition_penalty) == (0, 1.0)
    assert (cfg.learning_rate, cfg.weight_decay, cfg.max_grad_norm) == (1e-6, 0.01, 1.0)
    assert getattr(cfg.lr_scheduler_type, "value", cfg.lr_scheduler_type) == "constant"
    assert (cfg.temperature, cfg.top_p) == (1.0, 0.99)
    assert GRPOSettings.paper("questioner").max_completion_length == 2048
    assert GRPOSettings.tiny("reasoner").loss == "seq-mean-token-mean"
    # The other aggregation and TRL's KL correction stay one setting away.
    other = grpo_config(GRPOSettings.paper("reasoner", loss="token-mean", kl_bias_correction=True), tmp_path)
    assert other.loss_type == "dapo" and other.use_bias_correction_kl is True


def test_warmup_is_honoured_by_every_schedule(tmp_path):
    """transformers' "constant" schedule ignores warmup_steps: a warm-up on the default schedule must become
    "constant_with_warmup", and the learning rate must really ramp up."""
    import torch
    from transformers import get_scheduler

    def schedule(**kw):
        cfg = grpo_config(GRPOSettings.tiny("reasoner", **kw), tmp_path)
        name = getattr(cfg.lr_scheduler_type, "value", cfg.lr_scheduler_type)
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = get_scheduler(name, optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=10)
        lrs = []
        for _ in range(5):
            lrs.append(round(scheduler.get_last_lr()[0], 2))
            optimizer.step()
            scheduler.step()
        return name, lrs

    assert schedule() == ("constant", [1.0] * 5)
    assert schedule(warmup_steps=4) == ("constant_with_warmup", [0.0, 0.25, 0.5, 0.75, 1.0])
    assert schedule(warmup_steps=4, lr_schedule="linear")[1][:2] == [0.0, 0.25]


def test_reward_adapter_protocol():
    seen = []

    def reward_fn(completions, columns, group_ids):
        seen.append((completions, columns, group_ids))
        return [{"total": float(len(c)), "validity": 1.0} for c in completions]

    metrics = {}
    adapter = RewardAdapter(reward_fn, group_size=2)
    completions = [[{"role": "assistant", "content": t}] for t in ("a", "bb", "ccc", "dddd")]
    out = adapter(prompts=[None] * 4, completions=completions, completion_ids=None, image_id=["x", "x", "y", "y"],
                  **{ROW_COLUMN: [0, 0, 1, 1]}, trainer_state=None, log_extra=None,
                  log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert out == [1.0, 2.0, 3.0, 4.0]
    assert seen[0][0] == ["a", "bb", "ccc", "dddd"] and seen[0][2] == [0, 0, 1, 1]
    assert seen[0][1] == {"image_id": ["x", "x", "y", "y"]}
    assert metrics["reward/validity"] == 1.0 and "time/reward_fn" in metrics
    with pytest.raises(RuntimeError, match="groups were split"):
        adapter(completions=completions, **{ROW_COLUMN: [0, 1, 1, 2]})
    with pytest.raises(ValueError, match="'total'"):
        RewardAdapter(lambda c, cols, g: [{"x": 1.0}] * len(c), 2)(completions=completions)


@pytest.mark.parametrize("rank", [0, 1])
def test_reward_adapter_gathers_straddling_group(monkeypatch, rank):
    """Two processes, G=4, two completions each: the group straddles them; both see the whole group."""
    import accelerate
    import accelerate.utils

    local = {"texts": ["aa", "b"] if rank == 0 else ["cccc", "ddd"], "rows": [5, 5], "ids": ["x", "x"]}
    other = {"texts": ["cccc", "ddd"] if rank == 0 else ["aa", "b"], "rows": [5, 5], "ids": ["x", "x"]}
    # What the other process contributes, in the adapter's call order: sizes, texts, then columns by name.
    payloads = iter([[2], other["texts"], other["rows"], other["ids"]])

    def gather_object(obj):
        theirs = list(next(payloads))
        return (list(obj) + theirs) if rank == 0 else (theirs + list(obj))

    full = {}

    def broadcast_object_list(box, from_process=0):
        if rank != 0:
            box[0] = [{"total": float(len(t)), "length": float(len(t))} for t in ["aa", "b", "cccc", "ddd"]]
        full["results"] = box[0]

    class FakeState:
        num_processes, process_index, is_main_process = 2, rank, rank == 0

    monkeypatch.setattr(accelerate, "PartialState", FakeState)
    monkeypatch.setattr(accelerate.utils, "gather_object", gather_object)
    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast_object_list)
    seen = []

    def reward_fn(completions, columns, group_ids):
        seen.append((completions, group_ids, columns))
        return [{"total": float(len(c)), "length": float(len(c))} for c in completions]

    metrics = {}
    out = RewardAdapter(reward_fn, group_size=4)(
        completions=[[{"role": "assistant", "content": t}] for t in local["texts"]],
        image_id=local["ids"], **{ROW_COLUMN: local["rows"]}, log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert out == ([2.0, 1.0] if rank == 0 else [4.0, 3.0])
    if rank == 0:  # only the main process runs the reward function, on the whole group
        assert seen == [(["aa", "b", "cccc", "ddd"], [0, 0, 0, 0], {"image_id": ["x"] * 4})]
    else:
        assert seen == []
    assert metrics["reward/length"] == 2.5


def test_one_rollout_feeds_several_updates(run, tmp_path):
    """The authors' geometry in small: 2 prompts per rollout, 1 per update, micro-batches of 1 completion."""
    reward = RecordingReward()
    metrics = tmp_path / "metrics.jsonl"
    settings = _settings(steps=1, group_size=2, prompts_per_step=1, prompts_per_rollout=2, micro_batch_size=1,
                         max_completion_length=8)
    assert (settings.updates_per_rollout, settings.optimizer_steps) == (2, 2)
    train_grpo(run["base"], tmp_path / "out", _examples(), reward, settings, metrics_path=metrics, progress=False)
    assert [len(c["completions"]) for c in reward.calls] == [4]  # one generation round of 2 prompts x G=2
    steps = [json.loads(line) for line in metrics.read_text().splitlines()][:-1]
    assert [(r["step"], r["rollout_step"]) for r in steps] == [(1, 1), (2, 1)]
    assert steps[1]["kl"] > 0  # the second update starts from weights the first one changed
