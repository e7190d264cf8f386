"""GRPO settings of one stage (``questioner.grpo`` / ``reasoner.grpo``) and their presets.

Defaults are the authors' recipe (docs/faithfulness.md, "The authors' GRPO recipe"); each role has its own
(``paper(role)``, ``tiny(role)``): the questioner's completions are capped at 2048 tokens, the reasoner's at
4096. How these map onto TRL lives in :func:`visplay.engines.grpo.grpo_config`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from visplay.config.base import Bool, Float, Int, Section, fail
from visplay.errors import UserError

ROLES = ("questioner", "reasoner")
TRACKERS = ("tensorboard", "wandb")


class GRPOSettings(Section):
    """Everything one GRPO stage needs; defaults are the authors' recipe for real models."""

    model_config = ConfigDict(allow_inf_nan=False)

    group_size: Int = Field(8, description="completions sampled per prompt (G); advantages are normalised within "
                            "each group")
    prompts_per_step: Int = Field(128, ge=1, description="prompts per optimizer update (authors: 128); each brings "
                                  "group_size completions")
    prompts_per_rollout: Int | None = Field(512, ge=1, description="prompts per generation round (authors: 512, i.e. "
                                            "4 updates per round); null = prompts_per_step (fully on-policy); must be "
                                            "a multiple of prompts_per_step")
    steps: Int = Field(20, ge=1, description="rollout steps per stage, the authors' unit: one generation round, then "
                       "prompts_per_rollout / prompts_per_step optimizer updates (paper: 20 for 3B, 10 for 7B)")
    learning_rate: Float = Field(1e-6, gt=0.0, description="AdamW learning rate")
    weight_decay: Float = Field(0.01, ge=0.0, description="AdamW weight decay")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="learning-rate schedule after warmup (authors: constant)")
    warmup_steps: Int = Field(0, ge=0, description="optimizer steps of linear warmup")
    kl_coef: Float = Field(0.01, ge=0.0, description="weight of the KL loss term (k3 estimator) to the stage's "
                           "starting checkpoint; 0 = no KL and no reference model")
    clip_low: Float = Field(0.2, gt=0.0, lt=1.0, description="PPO ratio clip below 1 (ratio >= 1 - clip_low)")
    clip_high: Float = Field(0.3, gt=0.0, description="PPO ratio clip above 1 (ratio <= 1 + clip_high)")
    dual_clip: Float | None = Field(3.0, ge=1.0, description="dual-clip bound c for negative advantages (loss <= "
                                    "-A*c), TRL's delta; null = off; must exceed 1 + clip_high")
    kl_bias_correction: Bool = Field(False, description="multiply each token's k3 KL value by pi/pi_old (TRL's "
                                     "use_bias_correction_kl, its default); false = verl's low_var_kl gradient "
                                     "(authors)")
    loss: Literal["token-mean", "seq-mean-token-mean"] = Field(
        "seq-mean-token-mean", description="loss aggregation: seq-mean-token-mean = mean over sequences of "
        "per-sequence token means (authors: verl token-mean with one sequence per micro-batch); token-mean = token "
        "mean over the update")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="advantage denominator: group std (GRPO, authors), batch std, or none (Dr. GRPO)")
    grad_clip: Float = Field(1.0, gt=0.0, description="max gradient norm")
    temperature: Float = Field(1.0, gt=0.0, description="rollout sampling temperature (> 0: greedy groups are all "
                               "equal)")
    top_p: Float = Field(0.99, gt=0.0, le=1.0, description="rollout nucleus sampling")
    top_k: Int = Field(0, ge=0, description="rollout top-k sampling; 0 = off (authors: off)")
    repetition_penalty: Float = Field(1.0, ge=0.0, description="rollout repetition penalty; 1.0 = none (authors: "
                                      "none)")
    max_completion_length: Int = Field(2048, ge=1, description="max new tokens per completion (authors: questioner "
                                       "2048, reasoner 4096)")
    mask_truncated_completions: Bool = Field(False, description="leave completions cut at max_completion_length out "
                                             "of the loss (DAPO); authors: off")
    micro_batch_size: Int | None = Field(None, ge=1, description="completions per device per forward/backward pass; "
                                         "gradient accumulation fills the update; null = the whole update in one pass")
    seed: Int = Field(0, description="seed for sampling, example order and initialisation")
    train_vision: Bool = Field(True, description="train the vision tower too (authors: yes); false freezes it (the "
                               "same as trainable: language)")
    trainable: Literal["all", "language", "vision", "embed-norms"] = Field(
        "all", description="which parameters train: all (authors), language (vision tower frozen), vision (the vision "
        "tower alone), embed-norms (the vision tower's patch embedding and norms only, about 5% of the toy base: "
        "a departure after TENT, for a shifted image domain)")
    bf16: Bool | None = Field(None, description="bf16 mixed precision (fp32 master weights); null = on when a "
                              "bf16-capable GPU is used")
    gradient_checkpointing: Bool | None = Field(None, description="recompute activations in the backward pass to save "
                                                "memory; null = on on GPU, off on CPU")
    use_vllm: Bool = Field(False, description="generate rollouts with vLLM (GPU only; needs the gpu extra); false = "
                           "transformers generate")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="vLLM in the training process (colocate) or a separate `trl vllm-serve` server")
    vllm_gpu_memory_utilization: Float = Field(0.3, ge=0.0, le=1.0, description="share of GPU memory vLLM may take "
                                               "in colocate mode")
    report_to: str = Field("none", description="extra trackers: none, tensorboard, wandb, or a comma list; each must "
                           "be installed")
    log_dir: str | None = Field(None, description="tensorboard folder; null = <out_dir's parent>/tensorboard/<stage>")
    logging_steps: Int = Field(1, ge=1, description="optimizer steps between metric lines")

    @field_validator("group_size")
    @classmethod
    def _whole_groups(cls, value: int) -> int:
        if value < 2:
            raise PydanticCustomError("visplay", f"GRPO needs more than one sample per prompt (got {value})")
        return value

    @field_validator("report_to")
    @classmethod
    def _known_trackers(cls, value: str) -> str:
        for tracker in trackers(value):
            if tracker not in TRACKERS:
                raise PydanticCustomError("visplay", f"unknown tracker {tracker!r}; use none, tensorboard, wandb or "
                                          "a comma list")
        return value

    @model_validator(mode="after")
    def _batch_geometry(self) -> GRPOSettings:
        if self.dual_clip is not None and self.dual_clip <= 1 + self.clip_high:
            raise fail("dual_clip", f"must exceed 1 + clip_high = {1 + self.clip_high:g}, got {self.dual_clip!r}")
        if self.prompts_per_rollout is not None and self.prompts_per_rollout % self.prompts_per_step:
            raise fail("prompts_per_rollout", f"{self.prompts_per_rollout} must be a multiple of prompts_per_step "
                       f"({self.prompts_per_step})")
        update = self.prompts_per_step * self.group_size
        if self.micro_batch_size is not None and update % self.micro_batch_size:
            raise fail("micro_batch_size", f"{self.micro_batch_size} must divide the completions of one update "
                       f"(prompts_per_step x group_size = {update})")
        return self

    @model_validator(mode="after")
    def _one_trainable_setting(self) -> GRPOSettings:
        if not self.train_vision and self.trainable not in ("all", "language"):
            raise fail("trainable", f"{self.trainable} trains vision parameters, but train_vision is false; set one "
                       "of the two")
        return self

    @property
    def trainable_parameters(self) -> str:
        """The ``trainable`` setting with the older ``train_vision: false`` folded in."""
        return "language" if not self.train_vision else self.trainable

    # --- presets ------------------------------------------------------------------------------------
    @classmethod
    def paper(cls, role: str, **overrides: Any) -> GRPOSettings:
        """The authors' recipe for a 3B model: G=8, 512 prompts per rollout, 128 per update, 20 steps."""
        return cls(**{**paper_values(role), **overrides})

    @classmethod
    def tiny(cls, role: str, **overrides: Any) -> GRPOSettings:
        """The toy world's CPU preset (see :func:`tiny_values`)."""
        return cls(**{**tiny_values(role), **overrides})

    # --- derived quantities -------------------------------------------------------------------------
    @property
    def rollout_prompts(self) -> int:
        """Prompts per generation round."""
        return self.prompts_per_rollout or self.prompts_per_step

    @property
    def updates_per_rollout(self) -> int:
        return self.rollout_prompts // self.prompts_per_step

    @property
    def optimizer_steps(self) -> int:
        return self.steps * self.updates_per_rollout

    @property
    def prompts_needed(self) -> int:
        """Prompts the whole stage consumes (examples are cycled up to this)."""
        return self.steps * self.rollout_prompts

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")


def paper_values(role: str) -> dict[str, Any]:
    """What the paper preset sets over the class defaults for ``role``.

    >>> paper_values("reasoner")["max_completion_length"], paper_values("questioner")["max_completion_length"]
    (4096, 2048)
    """
    _check_role(role)
    return dict(
        group_size=8, prompts_per_step=128, prompts_per_rollout=512, steps=20,
        max_completion_length=2048 if role == "questioner" else 4096,
        # The authors' example config and solver scripts update with one sequence per GPU per pass.
        micro_batch_size=1, loss="seq-mean-token-mean",
    )


def tiny_values(role: str) -> dict[str, Any]:
    """What the tiny preset sets over the class defaults for ``role``: the toy world's tiny models on 2 CPU cores.

    Kept from the paper: G = 8 (fewer samples make more groups all-equal, i.e. no signal), the KL,
    clip and loss-aggregation settings, temperature 1.0. Changed, and why:
    - 4 prompts per update (32 completions), one update per rollout (on-policy): a step is about a
      second or two of CPU, so a stage of 10-20 steps fits the demo's time budget;
    - completions of at most 48 (questioner) / 64 (reasoner) tokens: toy questions and answers take
      15-35 tokens with the tiny tokenizer, so this leaves room without paying for runaway samples;
    - learning rate 1e-5 instead of 1e-6: Adam moves each weight by about lr per step whatever the
      model size, and 1e-6 x 20 steps is invisible next to a tiny model's weights (std ~0.02-0.05).
      3e-5 (the earlier choice) was destructive: even with the oracle's labels (`visplay study`, arm
      oracle-labels, questioner frozen, seed 0) two iterations took held-out toy accuracy from 62.5% to
      59.3% at 3e-5 and to 63.0% at 1e-5; 30 steps instead of 10 at 1e-5 gave 61.5%;
    - no gradient checkpointing, no bf16 (CPU), no vLLM.
    """
    _check_role(role)
    return dict(
        group_size=8, prompts_per_step=4, prompts_per_rollout=None, steps=10,
        learning_rate=1e-5, max_completion_length=48 if role == "questioner" else 64,
        micro_batch_size=None, bf16=False, gradient_checkpointing=False, use_vllm=False,
    )


def trackers(report_to: str) -> list[str]:
    """The tracker names of a ``report_to`` value.

    >>> trackers("none"), trackers("tensorboard, wandb")
    ([], ['tensorboard', 'wandb'])
    """
    names = [t.strip() for t in (report_to or "none").split(",") if t.strip()]
    return [t for t in names if t != "none"]


def missing_tracker(report_to: str) -> str | None:
    """The first tracker of ``report_to`` whose package is not installed, or None."""
    for tracker in trackers(report_to):
        if tracker in TRACKERS and importlib.util.find_spec(tracker) is None:
            return tracker
    return None


def tracker_advice(tracker: str) -> str:
    """(tensorboard: the package itself, which ``torch.utils.tensorboard`` needs; tensorboardX is not enough.)"""
    return f'{tracker} is not installed; install it with pip install -e ".[{tracker}]" (or pip install {tracker})'


def check_trackers_installed(report_to: str, key: str = "report_to") -> None:
    """Refuse a tracker whose package is missing, naming the extra that installs it."""
    tracker = missing_tracker(report_to)
    if tracker is not None:
        raise UserError(f"{key}: {tracker_advice(tracker)}")
