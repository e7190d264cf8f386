"""The training examples of a GRPO stage as a dataset: checked, and put in a seeded training order."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from visplay.config.grpo import ROLES, GRPOSettings
from visplay.engines.grpo_rewards import ROW_COLUMN
from visplay.engines.messages import count_image_parts
from visplay.errors import UserError

log = logging.getLogger(__name__)


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
        n_image_parts = count_image_parts(prompt)
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
