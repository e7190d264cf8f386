"""Answer balancing of the reasoner's training questions (``reasoner.balance_answers``): a departure.

Why: the questions a questioner writes about an image follow the image, not a balanced prior. On the toy
world's unlabeled images the world's own question generator answers "yes" to 78% of existence questions,
"1" to 44% of counting questions and "0" to 40% of arithmetic ones (the questioner learned to ask like
it), while the held-out benchmark's answers are uniform per question. GRPO on such questions rewards the
prior as much as the skill: with the oracle's true answers, held-out accuracy fell (README, Status). The
paper trains on the kept questions as they come; with ``balance_answers`` the reasoner's prompts for a
stage are drawn with replacement so that, within each question form (the question's opening words: "is
there", "how many", ...), every answer value is equally likely and each form keeps its share. It reads
only the questions and their silver answers, so it stays label-free.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from visplay.selfplay.answers import answer_kind


def question_form(question: str | None) -> str:
    """The opening two words of a question, lowercased: "Is there", "How many", "Are there", "What color".

    What the question asks, read from its text alone (so balancing stays label-free).

    >>> question_form("Is there a red circle?"), question_form("How many  Squares?"), question_form(None)
    ('is there', 'how many', '')
    """
    words = re.findall(r"[a-z]+", (question or "").lower())
    return " ".join(words[:2])


def balance_weights(answers: Sequence[str | None], groups: Sequence[str] | None = None) -> list[float]:
    """Sampling weight of each question: its group's share / (answer values in the group x questions with
    its group and value). Groups default to the answer kind; the reasoner stage groups by
    :func:`question_form`, so that "Is there ...?" questions are balanced between yes and no on their own
    (balancing all yes/no answers together would still leave existence questions mostly "yes").

    A weighted draw then returns every answer value of a group equally often and each group as often as it
    occurs. Questions without an answer weigh 0.

    >>> [round(w, 3) for w in balance_weights(["yes", "yes", "yes", "no", "2", "3"])]
    [0.111, 0.111, 0.111, 0.333, 0.167, 0.167]
    """
    from visplay.selfplay.answers import answer_key

    keys = [answer_key(a) if a is not None else None for a in answers]
    groups = list(groups) if groups is not None else [answer_kind(a) for a in answers]
    if len(groups) != len(keys):
        raise ValueError("one group per answer")
    valid = [k is not None and g is not None for k, g in zip(keys, groups)]
    per_value = Counter((g, k) for g, k, ok in zip(groups, keys, valid) if ok)
    per_group = Counter(g for g, ok in zip(groups, valid) if ok)
    values_of_group = Counter(g for g, _ in per_value)
    total = sum(per_group.values())
    return [0.0 if not ok else (per_group[g] / total) / (values_of_group[g] * per_value[(g, k)])
            for g, k, ok in zip(groups, keys, valid)]


def balanced_sample(answers: Sequence[str | None], k: int, seed: int,
                    groups: Sequence[str] | None = None) -> list[int]:
    """Indices of ``k`` questions drawn with replacement by :func:`balance_weights` (seeded).

    >>> picks = balanced_sample(["yes"] * 9 + ["no"], 1000, seed=0)
    >>> 400 < sum(p == 9 for p in picks) < 600   # "no" is drawn half the time, not a tenth
    True
    """
    weights = balance_weights(answers, groups)
    if not any(weights):
        return []
    return random.Random(seed).choices(range(len(answers)), weights=weights, k=k)
