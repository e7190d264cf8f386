"""Reasoner stage: GRPO on R_{i-1} over the kept (image, question, silver answer) triples -> R_i.

The reward compares each sampled answer with the silver answer (paper: 1/0; official: 0.9 accuracy +
0.1 format). Only pixels, the question and the silver answer reach training: the toy world's oracle
column is never read here.
"""

from __future__ import annotations

from pathlib import Path

from visplay.config import EvolveConfig
from visplay.engines.grpo import train_grpo
from visplay.runfolder import RunFolder
from visplay.selfplay.balance import balanced_sample, question_form
from visplay.selfplay.prompts import reasoner_messages
from visplay.selfplay.rewards import reasoner_rewards, self_consistency_rewards
from visplay.stages.common import StageTimer, decode_once


class SilverReward:
    def __init__(self, variant: str, gamma: float = 0.5):
        self.variant = variant
        self.gamma = gamma

    def __call__(self, completions: list[str], columns: dict[str, list], group_ids: list[int]) -> list[dict]:
        if self.variant == "self-consistency":  # EvoLMM's continuous reward: agreement within the group
            rewards = self_consistency_rewards(completions, group_ids, columns["silver_answer"], self.gamma)
        else:
            rewards = reasoner_rewards(completions, columns["silver_answer"], variant=self.variant)
        # Numeric components only: they are averaged into metrics.jsonl (the extracted answer is not).
        return [{k: v for k, v in r.as_dict().items() if k != "answer"} for r in rewards]


def run_reasoner_stage(cfg: EvolveConfig, run: RunFolder, iteration: int, reasoner_in: Path, kept: list[dict]) -> dict:
    """Train R_{iteration} from ``reasoner_in`` on ``kept`` rows and write it to RUN/iter_XX/reasoner."""
    timer = StageTimer()
    balanced = {}
    if cfg.reasoner.balance_answers:
        picks = balanced_sample([row["silver_answer"] for row in kept], cfg.reasoner.grpo.prompts_needed,
                                seed=cfg.seed * 1000 + iteration, groups=[question_form(row["question"]) for row in kept])
        balanced = {"balanced_from": len(kept), "balanced_distinct": len(set(picks))}
        kept = [kept[i] for i in picks]
    with timer.phase("load"):
        examples = [{"prompt": reasoner_messages(row["question"], cfg.model.prompt_style), "image": image,
                     "silver_answer": row["silver_answer"], "image_id": row["image_id"]}
                    for row, image in zip(kept, decode_once(kept))]
    with timer.phase("train"):
        reward = SilverReward(cfg.reward.reasoner_variant, cfg.reward.consistency_gamma)
        train_grpo(reasoner_in, run.reasoner_dir(iteration), examples, reward, cfg.reasoner.grpo,
                   metrics_path=run.metrics_path, stage_name=f"iter{iteration:02d}/reasoner",
                   min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    summary = {"examples": len(examples), **balanced, **timer.as_metrics()}
    run.log_metrics({"stage": f"iter{iteration:02d}/reasoner", "event": "stage_done", "iteration": iteration, **summary})
    return summary
