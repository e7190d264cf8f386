"""The GRPO engine: TRL's ``GRPOTrainer`` driving a Hugging Face VLM on (image, chat prompt) examples.

Both VisPlay roles train through :func:`train_grpo`; only the examples and the reward function differ. The
stage code hands over plain data (chat messages with one image part, a PIL image, any extra columns its
reward needs) and a reward function that sees the WHOLE generation batch: every completion of every group.

Settings follow the authors' recipe (PAPER.md "GRPO settings used by the authors", an EasyR1/verl run); the
mapping onto TRL 1.16 lives in one place, :func:`grpo_config`. Where TRL cannot do exactly what verl does:

- **Dual-clip** (verl ``clip_ratio_dual`` = 3.0) maps to TRL's ``delta`` (INTELLECT-2 two-sided clipping).
  verl bounds the loss of a negative-advantage token at ``-A * c`` (``torch.where(A < 0, min(max(-A r,
  -A clip(r)), -A c), ...)``); TRL clamps the ratio itself, ``r <- min(r, delta)``, for every token, before
  the usual clipped min. For ``A < 0`` both give the loss ``-A * min(max(r, clip(r)), c)`` with zero
  gradient once ``r > c``; for ``A > 0`` the clipped branch already caps the ratio at ``1 + clip_high <
  delta``, so TRL's clamp changes nothing. Values and gradients therefore agree whenever
  ``dual_clip > 1 + clip_high`` (validated); what differs is only bookkeeping (TRL reports no dual-clip
  fraction). Clipping of any kind only acts when a rollout batch feeds several updates
  (``prompts_per_rollout > prompts_per_step``): with one update per rollout the ratio is exactly 1.
- **Loss aggregation.** verl/EasyR1's ``token-mean`` takes the token mean of each micro-batch and averages
  the micro-batches. The authors update with ONE sequence per micro-batch
  (``micro_batch_size_per_device_for_update: 1`` in their example config and solver scripts), so what they
  optimise is a mean over sequences of per-sequence token means: TRL's ``loss_type="grpo"``, our
  ``loss: seq-mean-token-mean`` (the paper preset, with ``micro_batch_size: 1``). ``loss: token-mean``
  (TRL ``"dapo"``: token losses summed and divided by the average update's token count) is the other
  aggregation, one setting away.
- **Advantage** is ``(r - group mean) / (group std + 1e-4)``: TRL's epsilon is 1e-4 where the authors use
  1e-6 (only matters for groups whose rewards are nearly, not exactly, equal).
- **KL** is TRL's k3 estimator ``exp(ref - logp) - (ref - logp) - 1`` added to the per-token loss with
  ``beta = kl_coef``. TRL 1.16 defaults ``use_bias_correction_kl=True``, which multiplies each token's k3
  by the differentiable ratio pi/pi_old, so the KL gradient becomes (log pi - log pi_ref) grad log pi;
  verl's ``low_var_kl`` gradient is (1 - pi_ref/pi) grad log pi. ``kl_bias_correction: false`` (default,
  the authors' behaviour) turns TRL's correction off. Departure: verl also clamps each token's k3 value to
  [-10, 10] (and the log-ratio to [-20, 20] before ``exp``); TRL computes k3 inline in ``_compute_loss``
  with no clamp option, so this cannot be done without patching TRL. The clamp only acts on a token whose
  log-probability moved more than about 2.6 nats above (or 11 below) the reference's.
  The reference model is TRL's, loaded from ``model.config._name_or_path``, i.e. the stage's starting
  checkpoint (checked after the trainer is built).
- **Weight decay** skips biases and norm weights (transformers' default grouping); the authors' AdamW
  decays every parameter.
- **vLLM rollouts** (GPU, opt-in with ``use_vllm``) run without TRL's importance-sampling correction,
  as the authors' verl setup does (old log-probs come from the trained model, not from vLLM).
- **Small example sets**: the authors' loader silently never reached the last steps when the curated set
  was smaller than the steps asked for. Here the examples are cycled (each pass a fresh seeded
  permutation, every example used before any repeats) to exactly ``steps x prompts_per_rollout`` prompts,
  with a warning, and the run fails loudly if fewer optimizer steps ran than requested.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch

from visplay.errors import UserError

log = logging.getLogger(__name__)

ROLES = ("questioner", "reasoner")

# reward_fn(completions, columns, group_ids) -> one dict per completion with "total" and any components.
RewardFn = Callable[[list[str], dict[str, list], list[int]], list[dict[str, float]]]

# Internal dataset column: the example's index. Every completion of one group carries the same value,
# which lets the reward adapter check that the groups it hands over are whole.
ROW_COLUMN = "_visplay_row"

_LOSS_TYPES = {"token-mean": "dapo", "seq-mean-token-mean": "grpo"}


@dataclass
class GRPOSettings:
    """Everything one GRPO stage needs; defaults are the authors' recipe for real models."""

    group_size: int = field(default=8, metadata={
        "help": "completions sampled per prompt (G); advantages are normalised within each group", "min": 2})
    prompts_per_step: int = field(default=128, metadata={
        "help": "prompts per optimizer update (authors: 128); each brings group_size completions", "min": 1})
    prompts_per_rollout: int | None = field(default=512, metadata={
        "help": "prompts per generation round (authors: 512, i.e. 4 updates per round); null = prompts_per_step "
                "(fully on-policy); must be a multiple of prompts_per_step", "min": 1})
    steps: int = field(default=20, metadata={
        "help": "rollout steps per stage, the authors' unit: one generation round, then "
                "prompts_per_rollout / prompts_per_step optimizer updates (paper: 20 for 3B, 10 for 7B)", "min": 1})
    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate", "min": 0.0})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay", "min": 0.0})
    lr_schedule: Literal["constant", "linear", "cosine"] = field(default="constant", metadata={
        "help": "learning-rate schedule after warmup (authors: constant)",
        "choices": ("constant", "linear", "cosine")})
    warmup_steps: int = field(default=0, metadata={"help": "optimizer steps of linear warmup", "min": 0})
    kl_coef: float = field(default=0.01, metadata={
        "help": "weight of the KL loss term (k3 estimator) to the stage's starting checkpoint; 0 = no KL and no "
                "reference model", "min": 0.0})
    clip_low: float = field(default=0.2, metadata={
        "help": "PPO ratio clip below 1 (ratio >= 1 - clip_low)", "min": 0.0, "max": 1.0})
    clip_high: float = field(default=0.3, metadata={
        "help": "PPO ratio clip above 1 (ratio <= 1 + clip_high)", "min": 0.0})
    dual_clip: float | None = field(default=3.0, metadata={
        "help": "dual-clip bound c for negative advantages (loss <= -A*c), TRL's delta; null = off; "
                "must exceed 1 + clip_high", "min": 1.0})
    kl_bias_correction: bool = field(default=False, metadata={
        "help": "multiply each token's k3 KL value by pi/pi_old (TRL's use_bias_correction_kl, its default); "
                "false = verl's low_var_kl gradient (authors)"})
    loss: Literal["token-mean", "seq-mean-token-mean"] = field(default="seq-mean-token-mean", metadata={
        "help": "loss aggregation: seq-mean-token-mean = mean over sequences of per-sequence token means (authors: "
                "verl token-mean with one sequence per micro-batch); token-mean = token mean over the update",
        "choices": tuple(_LOSS_TYPES)})
    scale_rewards: Literal["group", "batch", "none"] = field(default="group", metadata={
        "help": "advantage denominator: group std (GRPO, authors), batch std, or none (Dr. GRPO)",
        "choices": ("group", "batch", "none")})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm", "min": 0.0})
    temperature: float = field(default=1.0, metadata={"help": "rollout sampling temperature", "min": 0.0})
    top_p: float = field(default=0.99, metadata={"help": "rollout nucleus sampling", "min": 0.0, "max": 1.0})
    top_k: int = field(default=0, metadata={"help": "rollout top-k sampling; 0 = off (authors: off)", "min": 0})
    repetition_penalty: float = field(default=1.0, metadata={
        "help": "rollout repetition penalty; 1.0 = none (authors: none)", "min": 0.0})
    max_completion_length: int = field(default=2048, metadata={
        "help": "max new tokens per completion (authors: questioner 2048, reasoner 4096)", "min": 1})
    mask_truncated_completions: bool = field(default=False, metadata={
        "help": "leave completions cut at max_completion_length out of the loss (DAPO); authors: off"})
    micro_batch_size: int | None = field(default=None, metadata={
        "help": "completions per device per forward/backward pass; gradient accumulation fills the update; "
                "null = the whole update in one pass", "min": 1})
    seed: int = field(default=0, metadata={"help": "seed for sampling, example order and initialisation"})
    train_vision: bool = field(default=True, metadata={
        "help": "train the vision tower too (authors: yes); false freezes it"})
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 mixed precision (fp32 master weights); null = on when a bf16-capable GPU is used"})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "recompute activations in the backward pass to save memory; null = on on GPU, off on CPU"})
    use_vllm: bool = field(default=False, metadata={
        "help": "generate rollouts with vLLM (GPU only; needs the gpu extra); false = transformers generate"})
    vllm_mode: Literal["colocate", "server"] = field(default="colocate", metadata={
        "help": "vLLM in the training process (colocate) or a separate `trl vllm-serve` server",
        "choices": ("colocate", "server")})
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={
        "help": "share of GPU memory vLLM may take in colocate mode", "min": 0.0, "max": 1.0})
    report_to: str = field(default="none", metadata={
        "help": "extra trackers: none, tensorboard, wandb, or a comma list; each must be installed"})
    log_dir: str | None = field(default=None, metadata={
        "help": "tensorboard folder; null = <out_dir's parent>/tensorboard/<stage>"})
    logging_steps: int = field(default=1, metadata={"help": "optimizer steps between metric lines", "min": 1})

    def __post_init__(self) -> None:
        self.validate()

    # --- presets ------------------------------------------------------------------------------------
    @classmethod
    def paper(cls, role: str, **overrides: Any) -> GRPOSettings:
        """The authors' recipe for a 3B model: G=8, 512 prompts per rollout, 128 per update, 20 steps."""
        _check_role(role)
        values: dict[str, Any] = dict(
            group_size=8, prompts_per_step=128, prompts_per_rollout=512, steps=20,
            max_completion_length=2048 if role == "questioner" else 4096,
            # The authors' example config and solver scripts update with one sequence per GPU per pass.
            micro_batch_size=1, loss="seq-mean-token-mean",
        )
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, role: str, **overrides: Any) -> GRPOSettings:
        """A preset for the toy world's tiny models on 2 CPU cores.

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
        values: dict[str, Any] = dict(
            group_size=8, prompts_per_step=4, prompts_per_rollout=None, steps=10,
            learning_rate=1e-5, max_completion_length=48 if role == "questioner" else 64,
            micro_batch_size=None, bf16=False, gradient_checkpointing=False, use_vllm=False,
        )
        values.update(overrides)
        return cls(**values)

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

    # --- validation ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field; raise :class:`UserError` naming the field."""
        if not isinstance(self.group_size, int) or self.group_size < 2:
            raise UserError(f"group_size: GRPO needs more than one sample per prompt (got {self.group_size!r})")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            if value is None:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise UserError(f"{f.name}: must be a finite number, got {value!r}")
                if "min" in meta and value < meta["min"]:
                    raise UserError(f"{f.name}: must be >= {meta['min']}, got {value!r}")
                if "max" in meta and value > meta["max"]:
                    raise UserError(f"{f.name}: must be <= {meta['max']}, got {value!r}")
            if "choices" in meta and value not in meta["choices"]:
                raise UserError(f"{f.name}: must be one of {', '.join(meta['choices'])}, got {value!r}")
        self.check()

    def check(self) -> None:
        """Cross-field rules (also called by ``visplay.configuration.validate``)."""
        if self.learning_rate <= 0:
            raise UserError(f"learning_rate: must be > 0, got {self.learning_rate!r}")
        if self.temperature <= 0:
            raise UserError(f"temperature: must be > 0 (greedy groups are all equal), got {self.temperature!r}")
        if self.top_p <= 0:
            raise UserError(f"top_p: must be in (0, 1], got {self.top_p!r}")
        if self.grad_clip <= 0:
            raise UserError(f"grad_clip: must be > 0, got {self.grad_clip!r}")
        if not 0 < self.clip_low < 1:
            raise UserError(f"clip_low: must be in (0, 1), got {self.clip_low!r}")
        if self.clip_high <= 0:
            raise UserError(f"clip_high: must be > 0, got {self.clip_high!r}")
        if self.dual_clip is not None and self.dual_clip <= 1 + self.clip_high:
            raise UserError(f"dual_clip: must exceed 1 + clip_high = {1 + self.clip_high:g}, got {self.dual_clip!r}")
        if self.prompts_per_rollout is not None and self.prompts_per_rollout % self.prompts_per_step:
            raise UserError(f"prompts_per_rollout ({self.prompts_per_rollout}) must be a multiple of "
                            f"prompts_per_step ({self.prompts_per_step})")
        if self.micro_batch_size is not None and (self.prompts_per_step * self.group_size) % self.micro_batch_size:
            raise UserError(f"micro_batch_size ({self.micro_batch_size}) must divide the completions of one update "
                            f"(prompts_per_step x group_size = {self.prompts_per_step * self.group_size})")
        for tracker in _trackers(self.report_to):
            if tracker not in ("tensorboard", "wandb"):
                raise UserError(f"report_to: unknown tracker {tracker!r}; use none, tensorboard, wandb or a comma list")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")


def _trackers(report_to: str) -> list[str]:
    names = [t.strip() for t in (report_to or "none").split(",") if t.strip()]
    return [t for t in names if t != "none"]


def check_trackers_installed(report_to: str, key: str = "report_to") -> None:
    """Refuse a tracker whose package is missing, naming the extra that installs it.

    (tensorboard: the package itself, which ``torch.utils.tensorboard`` needs; tensorboardX is not enough.)
    """
    for tracker in _trackers(report_to):
        if tracker in ("tensorboard", "wandb") and importlib.util.find_spec(tracker) is None:
            raise UserError(f'{key}: {tracker} is not installed; install it with pip install -e ".[{tracker}]" '
                            f"(or pip install {tracker})")


# --- reward adapter ----------------------------------------------------------------------------------
_CONTROL_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments", "prompts", "completions",
                   "completion_ids")


def _completion_text(completion: Any) -> str:
    """Text of one TRL completion: a string (plain prompts) or a list of chat messages (chat prompts).

    >>> _completion_text([{"role": "assistant", "content": "x = 1"}])
    'x = 1'
    >>> _completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"},
    ...                                                      {"type": "text", "text": "b"}]}])
    'ab'
    >>> _completion_text("plain")
    'plain'
    """
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text") or "" for p in content if isinstance(p, dict))
    return "".join(parts)


class RewardAdapter:
    """Turns a VisPlay ``reward_fn`` into a TRL reward function.

    TRL calls reward functions per process with that process's slice of the generation batch, and one
    group of G completions may straddle two processes. VisPlay's rewards need whole groups (the
    questioner's diversity penalty, its per-question vote), so the adapter:

    1. decodes the completion token ids (the exact generated text, special tokens removed);
    2. on multi-process runs gathers texts and columns from every process with accelerate's
       ``gather_object`` (process order = the generation batch's order, so groups are consecutive runs of
       G completions), calls ``reward_fn`` once on the main process, broadcasts the results with
       ``broadcast_object_list`` and returns this process's slice (a reward function with a true
       ``collective`` attribute is called on EVERY process with the gathered batch, so that it can split
       its own work across them, e.g. the questioner's votes; process 0's results are still the ones used);
    3. checks that every group is whole (all its completions come from the same prompt row) and that the
       reward function returned one finite ``total`` per completion;
    4. logs the batch mean of every component as ``reward/<name>`` and the time spent inside
       ``reward_fn`` as ``time/reward_fn``.

    Single process (the CPU path) skips the gather and broadcast.
    """

    __name__ = "visplay"  # TRL logs this reward as rewards/visplay/*

    def __init__(self, reward_fn: RewardFn, group_size: int, tokenizer=None):
        self.reward_fn = reward_fn
        self.group_size = group_size
        self.tokenizer = tokenizer
        self.calls = 0
        self.seconds_in_fn = 0.0

    def _texts(self, completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None) -> list[str]:
        if completion_ids is not None and self.tokenizer is not None:
            return self.tokenizer.batch_decode([list(ids) for ids in completion_ids], skip_special_tokens=True)
        return [_completion_text(c) for c in completions]

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        from accelerate import PartialState

        log_metric = kwargs.get("log_metric")
        columns = {k: list(v) for k, v in kwargs.items() if k not in _CONTROL_KWARGS}
        texts = self._texts(completions, completion_ids)
        state = PartialState()
        if state.num_processes > 1:
            from accelerate.utils import broadcast_object_list, gather_object

            sizes = gather_object([len(texts)])
            all_texts = gather_object(texts)
            all_columns = {k: gather_object(v) for k, v in sorted(columns.items())}
        else:
            sizes, all_texts, all_columns = [len(texts)], texts, columns
        group_ids = self._group_ids(all_texts, all_columns)
        user_columns = {k: v for k, v in all_columns.items() if k != ROW_COLUMN}

        results = None
        seconds = 0.0
        if state.is_main_process or getattr(self.reward_fn, "collective", False):
            t0 = time.perf_counter()
            results = self.reward_fn(list(all_texts), user_columns, group_ids)
            seconds = time.perf_counter() - t0
            self._check_results(results, len(all_texts))
        if state.num_processes > 1:
            box = [results]
            broadcast_object_list(box, from_process=0)
            results = box[0]
        self.calls += 1
        self.seconds_in_fn += seconds

        if log_metric is not None:
            for name, mean in component_means(results).items():
                log_metric(f"reward/{name}", mean)
            if state.is_main_process:
                log_metric("time/reward_fn", seconds)
        start = sum(sizes[: state.process_index])
        return [float(r["total"]) for r in results[start: start + len(texts)]]

    def _group_ids(self, texts: list[str], columns: dict[str, list]) -> list[int]:
        n, g = len(texts), self.group_size
        if n % g:
            raise RuntimeError(f"reward batch of {n} completions is not a whole number of groups of {g}")
        group_ids = [i // g for i in range(n)]
        rows = columns.get(ROW_COLUMN)
        if rows is not None:
            for start in range(0, n, g):
                if len(set(rows[start: start + g])) != 1:
                    raise RuntimeError(f"completions {start}..{start + g - 1} do not form one group "
                                       f"(example indices {rows[start: start + g]}); groups were split")
        return group_ids

    @staticmethod
    def _check_results(results: Any, n: int) -> None:
        if not isinstance(results, list) or len(results) != n:
            got = len(results) if isinstance(results, list) else type(results).__name__
            raise ValueError(f"reward_fn must return a list of {n} dicts (one per completion), got {got}")
        for i, r in enumerate(results):
            if not isinstance(r, dict) or "total" not in r:
                raise ValueError(f"reward_fn result {i} must be a dict with a 'total' key, got {r!r}")
            total = r["total"]
            if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total):
                raise ValueError(f"reward_fn result {i}: 'total' must be a finite number, got {total!r}")


def component_means(results: list[dict[str, Any]]) -> dict[str, float]:
    """Batch mean of each reward component except ``total`` (None/NaN entries skipped; all-missing -> NaN).

    >>> component_means([{"total": 1, "validity": 1.0, "confidence": None},
    ...                  {"total": 0, "validity": 0.0, "confidence": 0.5}])
    {'validity': 0.5, 'confidence': 0.5}
    """
    sums: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.items():
            if k == "total":
                continue
            bucket = sums.setdefault(k, [0.0, 0])
            if v is None:
                continue
            v = float(v)
            if math.isfinite(v):
                bucket[0] += v
                bucket[1] += 1
    return {k: (s / c if c else float("nan")) for k, (s, c) in sums.items()}


# --- data ------------------------------------------------------------------------------------------
def training_order(num_examples: int, needed: int, seed: int) -> list[int]:
    """Indices of ``needed`` prompts: seeded permutations of the examples, concatenated (every example is
    used once before any is used twice).

    >>> order = training_order(3, 7, seed=0)
    >>> len(order), sorted(order[:3]), sorted(order[3:6])
    (7, [0, 1, 2], [0, 1, 2])
    """
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < needed:
        perm = list(range(num_examples))
        rng.shuffle(perm)
        order.extend(perm)
    return order[:needed]


def _check_examples(examples: Sequence[dict]) -> None:
    from PIL import Image

    if not examples:
        raise UserError("no training examples for GRPO (the example list is empty)")
    keys = set(examples[0])
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict):
            raise UserError(f"GRPO example {i} is not a dict")
        if set(ex) != keys:
            raise UserError(f"GRPO example {i} has columns {sorted(ex)}, example 0 has {sorted(keys)}")
        prompt = ex.get("prompt")
        if not isinstance(prompt, list) or not prompt or not all(isinstance(m, dict) for m in prompt):
            raise UserError(f"GRPO example {i}: 'prompt' must be a non-empty list of chat messages")
        n_image_parts = sum(
            1 for m in prompt if isinstance(m.get("content"), list)
            for p in m["content"] if isinstance(p, dict) and p.get("type") == "image"
        )
        if n_image_parts != 1:
            raise UserError(f"GRPO example {i}: the prompt must hold exactly one image part, found {n_image_parts}")
        if not isinstance(ex.get("image"), Image.Image):
            raise UserError(f"GRPO example {i}: 'image' must be a PIL image, got {type(ex.get('image')).__name__}")
    if ROW_COLUMN in keys:
        raise UserError(f"GRPO examples must not use the reserved column {ROW_COLUMN!r}")


def build_dataset(examples: Sequence[dict], settings: GRPOSettings, stage_name: str = ""):
    """The training dataset: ``examples`` in training order, exactly ``settings.prompts_needed`` rows.

    Each example is stored once (images as PNG, decoded back to PIL on access) and the training order is
    an index mapping over them, so cycling a small set or subsetting a large one copies no images.
    """
    from datasets import Dataset

    _check_examples(examples)
    needed = settings.prompts_needed
    n = len(examples)
    # Say why the count differs: a stage's length is set in steps, not in passes over the examples.
    role = stage_name.rsplit("/", 1)[-1] if stage_name.rsplit("/", 1)[-1] in ROLES else "<role>"
    where = f"GRPO {stage_name}" if stage_name else "GRPO"
    if n < needed:
        log.warning("%s: %d examples for %d steps x %d prompts = %d prompts; cycling through them %.1f times "
                    "(seeded reshuffle each pass)", where, n, settings.steps, settings.rollout_prompts, needed, needed / n)
    elif n > needed:
        log.info("%s: training on %d of the %d examples, because a stage runs a fixed number of steps: %s.grpo.steps "
                 "%d x %d prompts per step = %d prompts, each example at most once (seeded shuffle); raise "
                 "%s.grpo.steps to use more", where, needed, n, role, settings.steps, settings.rollout_prompts, needed,
                 role)
    try:
        dataset = Dataset.from_list([dict(ex, **{ROW_COLUMN: i}) for i, ex in enumerate(examples)])
    except (TypeError, ValueError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError are ValueError / TypeError
        raise UserError(f"GRPO examples: a column holds values of different types across examples "
                        f"({str(exc).splitlines()[0]})") from None
    return dataset.select(training_order(n, needed, settings.seed))


# --- trainer -----------------------------------------------------------------------------------------
def _trainer_class():
    """GRPOTrainer plus per-phase timing (generation, rewards, the whole rollout) in its metrics."""
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


def resolve_device_options(settings: GRPOSettings) -> dict[str, bool]:
    """bf16 / gradient checkpointing / vLLM for this machine; refuse GPU-only options on CPU."""
    cuda = torch.cuda.is_available()
    bf16 = settings.bf16
    if bf16 is None:
        bf16 = cuda and torch.cuda.is_bf16_supported()
    if bf16 and not cuda:
        raise UserError("bf16: needs a GPU; on CPU set bf16 to false (or leave it null)")
    if settings.use_vllm:
        if not cuda:
            raise UserError("use_vllm: vLLM rollouts need a GPU; on CPU set use_vllm to false")
        if importlib.util.find_spec("vllm") is None:
            raise UserError("use_vllm: vllm is not installed (pip install 'visplay[gpu]')")
    checkpointing = settings.gradient_checkpointing
    if checkpointing is None:
        checkpointing = cuda
    check_trackers_installed(settings.report_to)
    return {"bf16": bool(bf16), "gradient_checkpointing": bool(checkpointing), "use_vllm": settings.use_vllm}


def grpo_config(settings: GRPOSettings, work_dir: Path, num_processes: int = 1, stage_name: str = ""):
    """Map :class:`GRPOSettings` onto TRL's ``GRPOConfig`` (the one place where the mapping lives)."""
    from trl import GRPOConfig

    device = resolve_device_options(settings)
    update_completions = settings.prompts_per_step * settings.group_size
    micro = settings.micro_batch_size or max(1, update_completions // num_processes)
    if update_completions % (micro * num_processes):
        raise UserError(f"micro_batch_size {micro} x {num_processes} processes must divide the {update_completions} "
                        "completions of one update")
    grad_accum = update_completions // (micro * num_processes)
    trackers = [t for t in _trackers(settings.report_to) if t != "tensorboard"]  # tensorboard: own callback
    ref_kwargs = {"dtype": "bfloat16"} if device["bf16"] and settings.kl_coef > 0 else None
    return GRPOConfig(
        output_dir=str(work_dir),
        run_name=stage_name or None,
        seed=settings.seed,
        data_seed=settings.seed,
        # batch geometry: an update = prompts_per_step x G completions; a generation round feeds
        # updates_per_rollout updates of grad_accum micro-batches each.
        num_generations=settings.group_size,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=grad_accum,
        steps_per_generation=grad_accum * settings.updates_per_rollout,
        num_iterations=1,  # 1 PPO epoch
        max_steps=settings.optimizer_steps,
        shuffle_dataset=False,  # the dataset is already in (seeded) training order
        remove_unused_columns=False,  # the reward function needs the extra columns
        # objective
        beta=settings.kl_coef,
        use_bias_correction_kl=settings.kl_bias_correction,
        epsilon=settings.clip_low,
        epsilon_high=settings.clip_high,
        delta=settings.dual_clip,
        loss_type=_LOSS_TYPES[settings.loss],
        scale_rewards=settings.scale_rewards,
        mask_truncated_completions=settings.mask_truncated_completions,
        disable_dropout=True,
        # optimizer
        optim="adamw_torch",
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_schedule,
        warmup_steps=settings.warmup_steps,
        max_grad_norm=settings.grad_clip,
        # rollout
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        repetition_penalty=settings.repetition_penalty,
        max_completion_length=settings.max_completion_length,
        use_vllm=device["use_vllm"],
        vllm_mode=settings.vllm_mode,
        vllm_gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
        vllm_importance_sampling_correction=False,
        # precision and memory
        bf16=device["bf16"],
        fp16=False,
        gradient_checkpointing=device["gradient_checkpointing"],
        model_init_kwargs=ref_kwargs,  # only the reference model is built from these (policy is passed in)
        dataloader_pin_memory=torch.cuda.is_available(),
        # logging and saving: metrics go through our callbacks; the checkpoint is saved by train_grpo
        logging_steps=settings.logging_steps,
        report_to=trackers or "none",
        disable_tqdm=True,
        save_strategy="no",
        eval_strategy="no",
        log_completions=False,
    )


def _vision_module(model) -> torch.nn.Module | None:
    for owner in (model, getattr(model, "model", None)):
        if owner is None:
            continue
        for name in ("visual", "vision_tower", "vision_model"):
            module = getattr(owner, name, None)
            if isinstance(module, torch.nn.Module):
                return module
    return None


class _SaveWithStateDict:
    """Lets ``save_vlm`` write a gathered (FSDP/ZeRO) state dict through the model's own save_pretrained."""

    def __init__(self, model, state_dict):
        self.model, self.state_dict = model, state_dict

    def save_pretrained(self, out_dir, **kwargs):
        return self.model.save_pretrained(out_dir, state_dict=self.state_dict, **kwargs)


def train_grpo(
    model_dir: str | Path,
    out_dir: str | Path,
    examples: Sequence[dict],
    reward_fn: RewardFn,
    settings: GRPOSettings,
    metrics_path: str | Path | None = None,
    stage_name: str = "",
    progress: bool = True,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> Path:
    """Train the VLM in ``model_dir`` with GRPO on ``examples`` and save it to ``out_dir``; return ``out_dir``.

    Args:
        model_dir: starting checkpoint; also the KL reference.
        out_dir: where the trained model and processor go (written atomically: complete or absent).
        examples: dicts with ``prompt`` (chat messages with one ``{"type": "image"}`` part), ``image`` (PIL)
            and any extra columns the reward needs (all examples share the same columns).
        reward_fn: ``reward_fn(completions, columns, group_ids) -> [{"total": ..., <component>: ...}, ...]``
            called with the whole generation batch: decoded completion texts, every dataset column except
            ``prompt`` aligned with them (including ``image``), and a group id per completion (the G
            completions of one prompt share an id and are consecutive).
        settings: :class:`GRPOSettings` (``GRPOSettings.paper(role)`` or ``GRPOSettings.tiny(role)``).
        metrics_path: metrics.jsonl to append one line per logged step, plus a final ``grpo_end`` line.
        stage_name: written into every metrics line (e.g. ``iter_01/questioner``) and shown on the bar.
        progress: show a progress bar with the reward.
        min_pixels, max_pixels: image-area bounds of the processor (None = its own).
    """
    from accelerate import PartialState
    from transformers import PrinterCallback, set_seed

    from visplay.engines.grpo_callbacks import MetricsCallback, ProgressCallback, append_jsonl
    from visplay.engines.loading import expose_special_token_ids, load_vlm, save_vlm
    from visplay.io import atomic_dir

    settings.validate()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    metrics_path = Path(metrics_path) if metrics_path is not None else None
    state = PartialState()
    t_start = time.perf_counter()
    set_seed(settings.seed)

    dataset = build_dataset(examples, settings, stage_name)
    # Policy in float32 on CPU: TRL/accelerate place it, and on GPU bf16 autocast runs over fp32 master
    # weights (pure bf16 weights would round away updates of lr 1e-6).
    loaded = load_vlm(model_dir, device="cpu", dtype=torch.float32, min_pixels=min_pixels, max_pixels=max_pixels)
    model, processor = loaded.model, loaded.processor
    tokenizer = processor.tokenizer
    # Generation pads on the left; TRL left-pads its own tensors but the processor call that builds the
    # image features pads with the tokenizer's side. Truncation (if any) keeps the end of the prompt.
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    expose_special_token_ids(model.config)  # what the Trainer compares with the tokenizer (see there)
    if not settings.train_vision:
        vision = _vision_module(model)
        if vision is None:
            raise UserError(f"train_vision is false but no vision tower was found in {model_dir}")
        vision.requires_grad_(False)

    work_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.trl.", dir=_ensure_dir(out_dir.parent)))
    adapter = RewardAdapter(reward_fn, settings.group_size, tokenizer)
    metrics_cb = MetricsCallback(metrics_path, stage_name, settings.updates_per_rollout)
    callbacks: list = [metrics_cb]
    if progress:
        callbacks.append(ProgressCallback(settings.optimizer_steps, desc=stage_name or "GRPO"))
    if "tensorboard" in _trackers(settings.report_to):
        callbacks.append(_tensorboard_callback(settings, out_dir, stage_name))
    try:
        args = grpo_config(settings, work_dir, state.num_processes, stage_name)
        trainer = _trainer_class()(
            model=model,
            reward_funcs=[adapter],
            args=args,
            train_dataset=dataset,
            processing_class=processor,  # never let TRL call AutoProcessor (it returns a bare tokenizer here)
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; the bar and metrics.jsonl suffice
        if settings.kl_coef > 0:
            ref = trainer.ref_model
            ref_path = getattr(getattr(ref, "config", None), "_name_or_path", None) if ref is not None else None
            if ref_path is None or Path(ref_path).resolve() != model_dir.resolve():
                raise RuntimeError(f"KL reference was loaded from {ref_path!r}, expected the starting checkpoint "
                                   f"{model_dir}")
        trainer.train()
        if trainer.state.global_step != settings.optimizer_steps:
            raise RuntimeError(f"GRPO ran {trainer.state.global_step} optimizer steps, {settings.optimizer_steps} were "
                               "requested; refusing to save a short stage")

        unwrapped = trainer.accelerator.unwrap_model(trainer.model)
        to_save = unwrapped
        if state.num_processes > 1:
            to_save = _SaveWithStateDict(unwrapped, trainer.accelerator.get_state_dict(trainer.model))
        if state.is_main_process:
            with atomic_dir(out_dir) as tmp:
                save_vlm(to_save, processor, tmp)
                # GRPO changes weights only. Training flips config fields (use_cache, token ids aligned to
                # the tokenizer, TRL's eos list), so the starting checkpoint's configs and VisPlay markers
                # are copied back as they were.
                for name in ("config.json", "generation_config.json"):
                    if (model_dir / name).is_file():
                        shutil.copy2(model_dir / name, tmp / name)
                for marker in model_dir.glob("visplay_*.json"):
                    if marker.name != "visplay_grpo.json":
                        shutil.copy2(marker, tmp / marker.name)
                (tmp / "visplay_grpo.json").write_text(json.dumps({
                    "stage": stage_name, "started_from": str(model_dir), "settings": settings.to_dict(),
                    "optimizer_steps": trainer.state.global_step, "examples": len(examples),
                }, indent=2) + "\n")
            if metrics_path is not None:
                append_jsonl(metrics_path, {
                    "event": "grpo_end", "stage": stage_name, "steps": settings.steps,
                    "optimizer_steps": trainer.state.global_step, "examples": len(examples),
                    "prompts": settings.prompts_needed, "reward_calls": adapter.calls,
                    "time_reward_fn_total": round(adapter.seconds_in_fn, 3),
                    "time_total": round(time.perf_counter() - t_start, 3),
                })
        state.wait_for_everyone()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return out_dir


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tensorboard_callback(settings: GRPOSettings, out_dir: Path, stage_name: str):
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    log_dir = Path(settings.log_dir) if settings.log_dir else out_dir.parent / "tensorboard" / (
        stage_name.replace("/", "_") or out_dir.name)
    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(log_dir)))
