"""Questioner stage: GRPO on Q_{i-1}, rewarded through the frozen reasoner R_{i-1}'s votes.

Per image the questioner samples G questions (the GRPO group). For the whole rollout batch at once, every
parsed question is answered ``votes`` times by the frozen reasoner in ONE batched sampler call; the
majority vote gives each question's confidence c, and the reward (paper or official variant, diversity
over the image's group or the whole batch) follows from :mod:`visplay.selfplay.rewards`.

Which replies count as valid is ``reward.validity`` (lenient: any non-empty ``<question>``; strict: the
authors' full type/question/answer triple). The votes use ``questioner.vote_prompt``: the reasoner's own
prompt (default; the paper does not say), or the authors' server prompt (boxed answer only, with the type).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from visplay.config import EvolveConfig
from visplay.data.images import ImageSource
from visplay.engines.grpo import train_grpo
from visplay.engines.sampler import SampleRequest
from visplay.errors import UserError
from visplay.runfolder import RunFolder
from visplay.selfplay.answers import extract_boxed, majority_vote
from visplay.selfplay.prompts import parse_question, questioner_messages, voter_messages
from visplay.selfplay.rewards import questioner_rewards
from visplay.stages.common import StageTimer, pick_images
from visplay.stages.sampling import frozen_sampler

log = logging.getLogger(__name__)


class VoteReward:
    """The questioner's reward function: parse, vote with the frozen reasoner, score. Whole groups in.

    Collective: in a multi-process run every rank calls it with the gathered batch, and the sampler splits
    the votes across ranks (:class:`visplay.engines.grpo_rewards.RewardAdapter` honours ``collective``).
    """

    collective = True

    def __init__(self, sampler, cfg: EvolveConfig, seed: int):
        self.sampler = sampler
        self.cfg = cfg
        self.calls = itertools.count()
        self.seed = seed

    def __call__(self, completions: list[str], columns: dict[str, list], group_ids: list[int]) -> list[dict]:
        cfg, style = self.cfg, self.cfg.model.prompt_style
        qc = cfg.questioner
        parsed = [parse_question(text, strict=cfg.reward.validity == "strict") for text in completions]
        asked = [k for k, p in enumerate(parsed) if p is not None]
        requests = [SampleRequest(voter_messages(parsed[k].question, parsed[k].qtype, style, qc.vote_prompt),
                                  [columns["image"][k]]) for k in asked]
        answers = self.sampler.sample(
            requests, n=qc.votes, **qc.vote_sampling.kwargs(),
            seed=self.seed * 7919 + next(self.calls), desc="reasoner votes",
        )
        confidences: list[float | None] = [None] * len(completions)
        for k, samples in zip(asked, answers):
            confidences[k] = majority_vote([extract_boxed(s) for s in samples]).confidence
        questions = [p.question if p is not None else None for p in parsed]
        rewards = questioner_rewards(
            questions, confidences, group_ids, variant=cfg.reward.variant, scope=cfg.reward.diversity_scope,
            lam=cfg.reward.diversity_lambda, threshold=cfg.reward.bleu_threshold,
        )
        out = []
        for reward in rewards:
            # "cluster" is a label, not a quantity: averaging it into the metrics would mean nothing.
            out.append({k: v for k, v in reward.as_dict().items() if k != "cluster"})
        return out


def run_questioner_stage(cfg: EvolveConfig, run: RunFolder, iteration: int, questioner_in: Path,
                         reasoner_frozen: Path, images: ImageSource) -> dict:
    """Train Q_{iteration} from ``questioner_in`` and write it to RUN/iter_XX/questioner."""
    timer = StageTimer()
    settings = cfg.questioner.grpo
    seed = cfg.seed * 1000 + iteration
    with timer.phase("load"):
        items = pick_images(images, settings.prompts_needed, cfg.seed, f"questioner-{iteration}")
        pixels = images.load_images(items)
        if not pixels:
            raise UserError(f"no readable images in {images.description}")
    examples = [{"prompt": questioner_messages(cfg.model.prompt_style), "image": image, "image_id": item.image_id}
                for item, image in pixels]
    # The GRPO step bar already shows progress: no nested bar for the votes.
    with frozen_sampler(cfg, reasoner_frozen, f"iter{iteration:02d}_questioner_votes", run.root / "logs",
                        progress=False) as sampler:
        reward = VoteReward(sampler, cfg, seed)
        with timer.phase("train"):
            train_grpo(questioner_in, run.questioner_dir(iteration), examples, reward, settings,
                       metrics_path=run.metrics_path, stage_name=f"iter{iteration:02d}/questioner",
                       min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    summary = {"images": len(pixels), "skipped_images": len(images.skipped), **timer.as_metrics()}
    run.log_metrics({"stage": f"iter{iteration:02d}/questioner", "event": "stage_done", "iteration": iteration, **summary})
    return summary
