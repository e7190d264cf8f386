"""Trainer callbacks of the GRPO engine: one JSON line per logged step, and a console progress bar.

The metrics file is the run folder's ``metrics.jsonl`` contract: each line is one JSON object, appended and
flushed as soon as the step is logged, so a crash loses at most the step in flight. Step lines carry
``"event": "step"``; the engine adds one ``"event": "grpo_end"`` line when the stage's training finishes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

# append_jsonl is the one metrics.jsonl writer (visplay.io); re-exported because the engine imports it from here.
from visplay.io import append_jsonl, json_safe

__all__ = ["TRL_KEYS", "MetricsCallback", "ProgressCallback", "append_jsonl", "step_record"]

# TRL's log key -> the name written to metrics.jsonl. Keys not listed here are not written (TRL logs many
# min/max variants); reward components arrive as "reward/<name>" and become "reward_<name>".
TRL_KEYS = {
    "reward": "reward_mean",
    "reward_std": "reward_std",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "kl": "kl",
    "entropy": "entropy",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "completions/mean_length": "completion_length",
    "completions/max_length": "completion_length_max",
    "completions/clipped_ratio": "truncated_ratio",
    "clip_ratio/region_mean": "clip_ratio",
    "clip_ratio/low_mean": "clip_ratio_low",
    "clip_ratio/high_mean": "clip_ratio_high",
    "num_tokens": "num_tokens",
    "step_time": "time_train_step",
    "time/generate": "time_generate",
    "time/reward": "time_reward",
    "time/reward_fn": "time_reward_fn",
    "time/rollout": "time_rollout",
}


def step_record(logs: dict[str, Any]) -> dict[str, Any]:
    """Map one TRL log dict to the metrics.jsonl field names.

    >>> step_record({"reward": 0.5, "reward/validity": 1.0, "completions/mean_length": 12.0, "epoch": 1})
    {'reward_mean': 0.5, 'completion_length': 12.0, 'reward_validity': 1.0}
    """
    record: dict[str, Any] = {}
    for key, name in TRL_KEYS.items():
        if key in logs:
            record[name] = json_safe(logs[key])
    for key, value in logs.items():
        if key.startswith("reward/"):
            record["reward_" + key.removeprefix("reward/")] = json_safe(value)
    # Update time = the optimizer step's compute time minus the rollout done inside it (generation,
    # old/reference log-probs and rewards happen inside the step that starts a generation round; later
    # updates of the same round only update).
    if record.get("time_train_step") is not None:
        record["time_update"] = max(0.0, record["time_train_step"] - (record.get("time_rollout") or 0.0))
    return record


class MetricsCallback(TrainerCallback):
    """Writes one metrics.jsonl line per logged step (main process only) and keeps the last record."""

    def __init__(self, path: Path | None, stage: str, updates_per_rollout: int = 1):
        self.path = Path(path) if path is not None else None
        self.stage = stage
        self.updates_per_rollout = updates_per_rollout
        self.records: list[dict[str, Any]] = []
        self._t_last = 0.0
        self._wall_since_log = 0.0
        self._steps_since_log = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t_last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self._wall_since_log += now - self._t_last
        self._steps_since_log += 1
        self._t_last = now

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "reward" not in logs and "loss" not in logs:
            return  # the trainer's end-of-training summary (train_runtime, ...), not a step
        record = {"event": "step", "stage": self.stage, "step": state.global_step,
                  "rollout_step": (state.global_step - 1) // self.updates_per_rollout + 1}
        record.update(step_record(logs))
        if self._steps_since_log:
            record["time_step"] = self._wall_since_log / self._steps_since_log
        self._wall_since_log, self._steps_since_log = 0.0, 0
        self.records.append(record)
        if self.path is not None and state.is_world_process_zero:
            append_jsonl(self.path, record)


class ProgressCallback(TrainerCallback):
    """A tqdm bar over optimizer steps showing reward, KL and completion length."""

    def __init__(self, total: int, desc: str):
        self.total = total
        self.desc = desc
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit="step", dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs or "reward" not in logs:
            return
        postfix = {"reward": f"{logs['reward']:.3f}"}
        if logs.get("kl") is not None:
            postfix["kl"] = f"{logs['kl']:.4f}"
        if logs.get("frac_reward_zero_std") is not None:
            postfix["flat"] = f"{logs['frac_reward_zero_std']:.2f}"
        if logs.get("completions/mean_length") is not None:
            postfix["len"] = f"{logs['completions/mean_length']:.0f}"
        self.bar.set_postfix(postfix, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
