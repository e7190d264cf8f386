"""What VisPlay reaches into TRL's ``GRPOTrainer`` for: private methods and attributes of ``trl==1.16.0``.

Everything here depends on TRL internals that may change in any release (hence the exact pin in
pyproject.toml); tests/test_grpo_trainer.py checks each one against the installed TRL, so an upgrade fails
there, by name, instead of in the middle of a run.

- :func:`trainer_class`: per-phase timing (generation, rewards, the whole rollout) added to the trainer's
  metrics by wrapping ``_generate``, ``_calculate_rewards`` and ``_generate_and_score_completions`` and
  appending to ``_metrics``;
- :func:`check_reference`: the KL reference TRL built (``ref_model``) is the stage's starting checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

TRL_VERSION = "1.16.0"
# The private methods wrapped below, with their parameters after ``self``.
WRAPPED = {
    "_generate": ("prompts",),
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
    "_generate_and_score_completions": ("inputs",),
}


def trainer_class():
    """GRPOTrainer plus per-phase timing (``time/generate``, ``time/reward``, ``time/rollout``) in its metrics."""
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        def _time(self, key: str, seconds: float) -> None:
            self._metrics["train" if self.model.training else "eval"][key].append(seconds)

        def _generate(self, prompts):
            t0 = time.perf_counter()
            out = super()._generate(prompts)
            self._time("time/generate", time.perf_counter() - t0)
            return out

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            t0 = time.perf_counter()
            out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._time("time/reward", time.perf_counter() - t0)
            return out

        def _generate_and_score_completions(self, inputs):
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            self._time("time/rollout", time.perf_counter() - t0)
            return out

    return TimedGRPOTrainer


def check_reference(trainer, model_dir: Path) -> None:
    """Refuse a KL reference loaded from anywhere but ``model_dir`` (TRL loads it from the policy's
    ``config._name_or_path``)."""
    ref = trainer.ref_model
    ref_path = getattr(getattr(ref, "config", None), "_name_or_path", None) if ref is not None else None
    if ref_path is None or Path(ref_path).resolve() != Path(model_dir).resolve():
        raise RuntimeError(f"KL reference was loaded from {ref_path!r}, expected the starting checkpoint {model_dir}")
