"""Rewards for both roles, as pure functions that return every component (all of them are logged).

Questioner, for a question whose reasoner vote has confidence c (largest cluster / m samples):

- uncertainty ``r_unc = 1 - |2c - 1|`` (paper; 1 at c = 0.5, 0 at c = 0 or 1);
  ``min(c, 1 - c)`` in the authors' code (half the paper's value);
- diversity: ``share = |C_k| / size`` of the question's BLEU cluster (:mod:`visplay.selfplay.diversity`)
  over the clustering scope: ``image`` = the G questions sampled for one image (paper), ``batch`` = the
  whole rollout batch (authors' code); the penalty is ``lam * share``;
- validity: 1 if the question parsed, else 0;
- total, ``paper``: ``valid * max(0, r_unc - lam * share)``;
  ``official`` (authors' code): ``min(c, 1 - c) - lam * share``, or ``-1 - lam * share`` when unparsed.

Reasoner, for one response against the silver answer:

- ``paper``: 1 if the last ``\\boxed{}`` is :func:`~visplay.selfplay.answers.same_answer` as the silver
  answer, else 0;
- ``official``: ``0.9 * accuracy + 0.1 * format``, format = the whole reply is a ``<think>...</think>``
  block followed by ``\\boxed{...}`` (after the authors' whitespace normalisation around ``<``, ``>``, ``/``).

G = 4 questions about one image: a duplicated pair at c = 0.5 (share 2/4), an unparsed one, an easy one:

>>> [round(r.total, 3) for r in questioner_rewards(
...     ["How many red cubes ?", "How many red cubes ?", None, "Is the cone left of the ball ?"],
...     [0.5, 0.5, None, 0.9], group_ids=[0, 0, 0, 0])]
[0.5, 0.5, 0.0, 0.0]

Where this departs from the paper / authors' code (the one place that says so):

- The paper gives no value for lambda; we default to 1 (R-Zero's paper), and ``lam`` scales the penalty
  in the ``official`` variant too (the authors' code has no lambda, i.e. 1).
- Unparsed questions enter the BLEU clustering as the empty string, as in the authors' code; the empty
  string is a singleton (BLEU 0 against everything), so its share is 1 / size.
- The authors score format on the whitespace-normalised reply and also extract the answer from it; we
  extract the answer from the reply as written (``same_answer`` ignores those spaces anyway).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from visplay.selfplay.answers import extract_boxed, same_answer
from visplay.selfplay.diversity import bleu_clusters, bleu_clusters_by_group
from visplay.selfplay.prompts import normalise_tags

__all__ = [
    "QuestionerReward",
    "ReasonerReward",
    "diversity_shares",
    "official_format",
    "official_uncertainty",
    "questioner_reward",
    "questioner_rewards",
    "reasoner_reward",
    "reasoner_rewards",
    "uncertainty",
]

Variant = Literal["paper", "official"]
Scope = Literal["image", "batch"]
_VARIANTS = ("paper", "official")
_SCOPES = ("image", "batch")
FORMAT_WEIGHT = 0.1  # authors' reasoner reward: (1 - w) * accuracy + w * format


def uncertainty(confidence: float) -> float:
    """The paper's difficulty reward ``1 - |2c - 1|``.

    >>> uncertainty(0.5), uncertainty(0.75), uncertainty(1.0), uncertainty(0.0)
    (1.0, 0.5, 0.0, 0.0)
    """
    return 1.0 - abs(2.0 * confidence - 1.0)


def official_uncertainty(confidence: float) -> float:
    """The authors' code: ``min(c, 1 - c)`` (half the paper's value).

    >>> official_uncertainty(0.5), official_uncertainty(0.8)
    (0.5, 0.19999999999999996)
    """
    return min(confidence, 1.0 - confidence)


@dataclass(frozen=True)
class QuestionerReward:
    """One question's reward and its parts (``diversity`` is the penalty actually subtracted)."""

    total: float
    uncertainty: float
    diversity: float
    validity: float
    share: float
    cluster: int
    confidence: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def questioner_reward(
    confidence: float | None, share: float, valid: bool, variant: Variant = "paper", lam: float = 1.0,
    cluster: int = 0,
) -> QuestionerReward:
    """The reward of one question from its vote confidence and its cluster share.

    >>> questioner_reward(0.5, 0.125, True).total          # paper: max(0, 1 - 0.125)
    0.875
    >>> questioner_reward(0.9, 0.5, True).total            # paper: max(0, 0.2 - 0.5) -> 0
    0.0
    >>> round(questioner_reward(0.9, 0.5, True, "official").total, 3)   # official: 0.1 - 0.5, no floor
    -0.4
    >>> questioner_reward(None, 0.25, False, "official").total          # unparsed: -1 - share
    -1.25
    """
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
    if valid and confidence is None:
        raise ValueError("a parsed question needs the confidence of its reasoner vote")
    penalty = lam * share
    if variant == "paper":
        unc = uncertainty(confidence) if valid else 0.0
        total = max(0.0, unc - penalty) if valid else 0.0
    else:
        unc = official_uncertainty(confidence) if valid else 0.0
        total = (unc if valid else -1.0) - penalty
    return QuestionerReward(total, unc, penalty, 1.0 if valid else 0.0, share, cluster, confidence)


def diversity_shares(
    questions: Sequence[str | None],
    group_ids: Sequence[Hashable] | None = None,
    scope: Scope = "image",
    threshold: float = 0.5,
) -> tuple[list[float], list[int]]:
    """Each question's cluster share ``|C_k| / size`` within its scope, and its cluster label.

    ``image`` clusters each group (same ``group_ids`` value: the G questions of one image) on its own;
    ``batch`` clusters everything together (labels are then batch-wide). ``None`` questions are clustered
    as the empty string (always alone).

    >>> diversity_shares(["a b c d e", "a b c d e", "x y z w v", None], ["img1", "img1", "img1", "img2"])
    ([0.6666666666666666, 0.6666666666666666, 0.3333333333333333, 1.0], [0, 0, 1, 0])
    >>> diversity_shares(["a b c d e", "a b c d e", "x y z w v", None], scope="batch")[0]
    [0.5, 0.5, 0.25, 0.25]
    """
    if scope not in _SCOPES:
        raise ValueError(f"scope must be one of {_SCOPES}, got {scope!r}")
    texts = [q if q is not None else "" for q in questions]
    if scope == "batch":
        labels = bleu_clusters(texts, threshold=threshold)
        sizes = Counter(labels)
        return [sizes[label] / len(texts) for label in labels], labels
    if group_ids is None or len(group_ids) != len(texts):
        raise ValueError("scope='image' needs one group id (the image) per question")
    labels = bleu_clusters_by_group(texts, group_ids, threshold=threshold)
    group_size = Counter(group_ids)
    cluster_size = Counter(zip(group_ids, labels))
    shares = [cluster_size[g, label] / group_size[g] for g, label in zip(group_ids, labels)]
    return shares, labels


def questioner_rewards(
    questions: Sequence[str | None],
    confidences: Sequence[float | None],
    group_ids: Sequence[Hashable] | None = None,
    variant: Variant = "paper",
    scope: Scope = "image",
    lam: float = 1.0,
    threshold: float = 0.5,
) -> list[QuestionerReward]:
    """Rewards for a questioner rollout batch.

    ``questions[i]`` is the parsed question text or ``None`` (unparsed: validity 0); ``confidences[i]``
    the reasoner vote's c for it (ignored when unparsed); ``group_ids[i]`` the image it was asked about
    (needed for ``scope="image"``).
    """
    if len(confidences) != len(questions):
        raise ValueError("one confidence per question")
    shares, labels = diversity_shares(questions, group_ids, scope, threshold)
    return [
        questioner_reward(conf, share, bool(question), variant, lam, label)
        for question, conf, share, label in zip(questions, confidences, shares, labels)
    ]


# ----------------------------------------------------------------------------------------------------
# reasoner
# ----------------------------------------------------------------------------------------------------

_OFFICIAL_FORMAT = re.compile(r"<think>.*?</think>\s*\\boxed\{.*?\}\s*$", re.DOTALL)


def official_format(response: str) -> float:
    """The authors' format reward: ``<think>...</think>`` then ``\\boxed{...}`` and nothing else.

    >>> official_format("<think>2 + 2</think> \\\\boxed{4}"), official_format("< think >hm</ think >\\\\boxed{4}")
    (1.0, 1.0)
    >>> official_format("\\\\boxed{4}"), official_format("<think>a</think> so \\\\boxed{4}.")
    (0.0, 0.0)
    """
    return 1.0 if _OFFICIAL_FORMAT.fullmatch(normalise_tags(response or "")) else 0.0


@dataclass(frozen=True)
class ReasonerReward:
    """One response's reward and its parts (``format`` is computed in both variants, for logging)."""

    total: float
    accuracy: float
    format: float
    answer: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def reasoner_reward(response: str, silver_answer: str | None, variant: Variant = "paper") -> ReasonerReward:
    """Score one reasoner response against the silver answer.

    >>> reasoner_reward("<think>half</think> \\\\boxed{0.5}", "\\\\frac{1}{2}").total
    1.0
    >>> reasoner_reward("<think>half</think> \\\\boxed{0.5}", "1/2", "official").total
    1.0
    >>> reasoner_reward("it is \\\\boxed{3}", "3", "official").total   # right, wrong format: 0.9
    0.9
    >>> reasoner_reward("<think>?</think> \\\\boxed{4}", "3", "official").total
    0.1
    """
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
    answer = extract_boxed(response)
    accuracy = 1.0 if same_answer(answer, silver_answer) else 0.0
    fmt = official_format(response)
    total = accuracy if variant == "paper" else (1.0 - FORMAT_WEIGHT) * accuracy + FORMAT_WEIGHT * fmt
    return ReasonerReward(total, accuracy, fmt, answer)


def reasoner_rewards(
    responses: Sequence[str], silver_answers: Sequence[str | None], variant: Variant = "paper"
) -> list[ReasonerReward]:
    """:func:`reasoner_reward` for a batch (one silver answer per response)."""
    if len(responses) != len(silver_answers):
        raise ValueError("one silver answer per response")
    return [reasoner_reward(r, s, variant) for r, s in zip(responses, silver_answers)]


def self_consistency_rewards(responses: Sequence[str], group_ids: Sequence[int], silver_answers: Sequence[str | None],
                             gamma: float = 0.5) -> list[ReasonerReward]:
    """EvoLMM's continuous self-consistency reward (Thawakar et al., 2025), a departure from the paper's 1/0
    agreement with the silver answer: each response scores ``p ** gamma``, where ``p`` is the share of its own
    group (the G samples of one prompt) whose answer equals its answer; an unparsed response scores 0. The
    silver answer is not used for the reward, only logged as ``accuracy`` (agreement with it).

    >>> rs = self_consistency_rewards(["\\\\boxed{1}", "\\\\boxed{1}", "\\\\boxed{2}", "no box"], [0, 0, 0, 0],
    ...                               ["1"] * 4, gamma=1.0)
    >>> [r.total for r in rs], [r.accuracy for r in rs]
    ([0.5, 0.5, 0.25, 0.0], [1.0, 1.0, 0.0, 0.0])
    >>> [round(r.total, 3) for r in self_consistency_rewards(["\\\\boxed{1}", "\\\\boxed{2}"], [0, 0], [None] * 2)]
    [0.707, 0.707]
    """
    if not len(responses) == len(group_ids) == len(silver_answers):
        raise ValueError("one group id and one silver answer per response")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    answers = [extract_boxed(r) for r in responses]
    members: dict[int, list[int]] = {}
    for k, g in enumerate(group_ids):
        members.setdefault(g, []).append(k)
    out = []
    for k, (response, answer) in enumerate(zip(responses, answers)):
        group = members[group_ids[k]]
        share = 0.0 if answer is None else sum(same_answer(answers[m], answer) for m in group) / len(group)
        accuracy = 1.0 if same_answer(answer, silver_answers[k]) else 0.0
        out.append(ReasonerReward(share ** gamma, accuracy, official_format(response), answer))
    return out

