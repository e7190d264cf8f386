"""Answer balancing of the reasoner's training questions (``reasoner.balance_answers``): a departure.

Why: the questions a questioner writes about an image follow the image, not a balanced prior. On the toy
world's unlabeled images the world's own question generator answers "yes" to 78% of existence questions,
"1" to 44% of counting questions and "0" to 40% of arithmetic ones (the questioner learned to ask like
it), while the held-out benchmark's answers are uniform per question. GRPO on such questions rewards the
prior as much as the skill: with the oracle's true answers, held-out accuracy fell (README, Status). The
paper trains on the kept questions as they come; with ``balance_answers`` the reasoner's prompts for a
stage are drawn with replacement so that, within each answer kind (yes/no, number, word), every answer
value is equally likely and each kind keeps its share. It reads only the silver answers, so it stays
label-free.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

ANSWER_KINDS = ("yes/no", "number", "word")


def answer_kind(answer: str | None) -> str | None:
    """yes/no, number or word (anything else that is not empty); None for a missing answer.

    >>> [answer_kind(a) for a in ("Yes", "no", "3", "-2.5", "\\\\frac{1}{2}", "red", "top left", None, " ")]
    ['yes/no', 'yes/no', 'number', 'number', 'number', 'word', 'word', None, None]
    """
    if answer is None or not answer.strip():
        return None
    from visplay.selfplay.answers import answer_key

    key = answer_key(answer)
    if key is None:
        return None
    if key.startswith("y:"):
        return "yes/no"
    if key.startswith("n:"):
        return "number"
    return "word"


def balance_weights(answers: Sequence[str | None]) -> list[float]:
    """Sampling weight of each question: its kind's share / (values of the kind x questions with its value).

    A weighted draw then returns every answer value of a kind equally often and each kind as often as it
    occurs. Questions without an answer weigh 0.

    >>> [round(w, 3) for w in balance_weights(["yes", "yes", "yes", "no", "2", "3"])]
    [0.111, 0.111, 0.111, 0.333, 0.167, 0.167]
    """
    from visplay.selfplay.answers import answer_key

    keys = [answer_key(a) if a is not None else None for a in answers]
    kinds = [answer_kind(a) for a in answers]
    per_value = Counter(k for k in keys if k is not None)
    per_kind = Counter(k for k in kinds if k is not None)
    values_of_kind = Counter(kind for kind, _ in {(kd, ky) for kd, ky in zip(kinds, keys) if ky is not None})
    total = sum(per_kind.values())
    return [0.0 if key is None or kind is None else
            (per_kind[kind] / total) / (values_of_kind[kind] * per_value[key]) for key, kind in zip(keys, kinds)]


def balanced_sample(answers: Sequence[str | None], k: int, seed: int) -> list[int]:
    """Indices of ``k`` questions drawn with replacement by :func:`balance_weights` (seeded).

    >>> picks = balanced_sample(["yes"] * 9 + ["no"], 1000, seed=0)
    >>> 400 < sum(p == 9 for p in picks) < 600   # "no" is drawn half the time, not a tenth
    True
    """
    weights = balance_weights(answers)
    if not any(weights):
        return []
    return random.Random(seed).choices(range(len(answers)), weights=weights, k=k)
