"""The oracle-sft study arm's reasoner stage: supervised fine-tuning on the world's true completions.

With ``reasoner.objective: sft`` (which needs ``curation.source: world-oracle``) this stage replaces the
reasoner's GRPO: the same questions the oracle-rlvr arm trains on (questions.parquet of the world-questions
stage), each with its true completion (the base recipe's thought and the boxed true answer), as many
prompts as the GRPO stage would consume (``steps x prompts_per_step`` updates of ``prompts_per_step``), at
its own learning rate (``reasoner.sft_learning_rate``). It is the yardstick of what any reward could teach
with that data, not self-evolution; with the world-questions stage it is where the oracle reaches training.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from visplay.config import EvolveConfig
from visplay.engines.sft import SFTExample, SFTSettings, train_sft
from visplay.runfolder import RunFolder
from visplay.selfplay.prompts import reasoner_messages
from visplay.stages.common import StageTimer, decode_once


def sft_settings(cfg: EvolveConfig) -> SFTSettings:
    """The reasoner's GRPO geometry (updates, prompts per update, warmup, trainable parameters, seed) with the
    SFT learning rate: the same prompts, seen once each by a supervised update instead of G rollouts."""
    grpo = cfg.reasoner.grpo
    return SFTSettings(steps=grpo.optimizer_steps, batch_size=grpo.prompts_per_step,
                       learning_rate=cfg.reasoner.sft_learning_rate, weight_decay=grpo.weight_decay,
                       warmup_steps=grpo.warmup_steps, grad_clip=grpo.grad_clip,
                       trainable=grpo.trainable_parameters, seed=grpo.seed)


def run_world_sft_stage(cfg: EvolveConfig, run: RunFolder, iteration: int, reasoner_in: Path) -> dict:
    """Train R_{iteration} from ``reasoner_in`` on the iteration's world questions and their true completions.
    Runs on rank 0 alone (a toy-world arm)."""
    timer = StageTimer()
    with timer.phase("load"):
        rows = pq.read_table(run.questions_path(iteration),
                             columns=["image_id", "image", "question", "true_completion"]).to_pylist()
        examples = [SFTExample(reasoner_messages(row["question"], cfg.model.prompt_style), image,
                               row["true_completion"]) for row, image in zip(rows, decode_once(rows))]
    with timer.phase("train"):
        result = train_sft(reasoner_in, run.reasoner_dir(iteration), examples, sft_settings(cfg),
                           metrics_path=run.metrics_path, stage_name=f"iter{iteration:02d}/reasoner",
                           min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    summary = {**result, "objective": "sft", **timer.as_metrics()}
    run.log_metrics({"stage": f"iter{iteration:02d}/reasoner", "event": "stage_done", "iteration": iteration,
                     **summary})
    return summary
