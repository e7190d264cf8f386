"""The GRPO engine: TRL's ``GRPOTrainer`` driving a Hugging Face VLM on (image, chat prompt) examples.

Both VisPlay roles train through :func:`train_grpo`; only the examples and the reward function differ. The
stage code hands over plain data (chat messages with one image part, a PIL image, any extra columns its
reward needs) and a reward function that sees the WHOLE generation batch: every completion of every group.

Settings follow the authors' recipe (docs/faithfulness.md; an EasyR1/verl run); the
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

Neighbours: the settings are :class:`visplay.config.grpo.GRPOSettings`; the whole-group reward adapter is
:mod:`visplay.engines.grpo_rewards`; the dataset :mod:`visplay.engines.grpo_data`; what reaches into TRL's
private API :mod:`visplay.engines.grpo_trainer`; the metrics callbacks :mod:`visplay.engines.grpo_callbacks`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from visplay.config.grpo import GRPOSettings, check_trackers_installed, trackers
from visplay.engines.grpo_data import build_dataset
from visplay.engines.grpo_rewards import RewardAdapter, RewardFn
from visplay.engines.grpo_trainer import check_reference, trainer_class
from visplay.errors import UserError

_LOSS_TYPES = {"token-mean": "dapo", "seq-mean-token-mean": "grpo"}


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
    extra_trackers = [t for t in trackers(settings.report_to) if t != "tensorboard"]  # tensorboard: own callback
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
        # transformers' "constant" schedule ignores warmup_steps; "constant_with_warmup" is the constant one that
        # honours it (found when a warm-up variant trained bit for bit like the default).
        lr_scheduler_type="constant_with_warmup" if settings.lr_schedule == "constant" and settings.warmup_steps
        else settings.lr_schedule,
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
        report_to=extra_trackers or "none",
        disable_tqdm=True,
        save_strategy="no",
        eval_strategy="no",
        log_completions=False,
    )


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
    from visplay.engines.loading import carry_configs_and_markers, expose_special_token_ids, load_vlm, save_vlm
    from visplay.engines.trainable import apply_trainable
    from visplay.io import atomic_dir

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
    try:
        apply_trainable(model, settings.trainable_parameters)
    except ValueError as exc:
        raise UserError(f"{exc} ({model_dir})") from None

    work_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.trl.", dir=_ensure_dir(out_dir.parent)))
    adapter = RewardAdapter(reward_fn, settings.group_size, tokenizer)
    metrics_cb = MetricsCallback(metrics_path, stage_name, settings.updates_per_rollout)
    callbacks: list = [metrics_cb]
    if progress:
        callbacks.append(ProgressCallback(settings.optimizer_steps, desc=stage_name or "GRPO"))
    if "tensorboard" in trackers(settings.report_to):
        callbacks.append(_tensorboard_callback(settings, out_dir, stage_name))
    try:
        args = grpo_config(settings, work_dir, state.num_processes, stage_name)
        trainer = trainer_class()(
            model=model,
            reward_funcs=[adapter],
            args=args,
            train_dataset=dataset,
            processing_class=processor,  # never let TRL call AutoProcessor (it returns a bare tokenizer here)
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; the bar and metrics.jsonl suffice
        if settings.kl_coef > 0:
            check_reference(trainer, model_dir)
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
                carry_configs_and_markers(model_dir, tmp)
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
