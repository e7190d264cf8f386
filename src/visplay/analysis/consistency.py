"""Self-consistency statistics, as pure functions: no model, no files.

Two questions are asked of every self-play run:

- *Is there anything for majority-vote training to teach?* (``visplay diagnose``) A labeled item gives a
  greedy score, M sampled scores and the score of the majority answer. **Headroom** is majority-of-M
  accuracy minus greedy accuracy: the most that training greedy decoding towards its own majority vote can
  gain. Majority minus mean single-sample accuracy says how much the vote corrects independent sampling
  errors. Accuracy per confidence bin says whether the vote's confidence is calibrated (the band keeps
  0.25 <= c <= 0.75).
- *How good are the silver labels?* (the audit) A curated question with an oracle answer gives the label's
  correctness and, per vote, whether its pseudo-reward (vote == silver answer) equals its true reward
  (vote == oracle answer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from visplay.selfplay.answers import ANSWER_KINDS, answer_kind  # noqa: F401  (re-exported: audit, tests)

# Confidence bins: the paper's band [0.25, 0.75] is exactly the middle two.
BINS = ("[0, .25)", "[.25, .5)", "[.5, .75]", "(.75, 1)", "1")


def confidence_bin(c: float) -> str:
    """The bin of a confidence c in [0, 1].

    >>> [confidence_bin(c) for c in (0.0, 0.2, 0.25, 0.5, 0.75, 0.8, 1.0)]
    ['[0, .25)', '[0, .25)', '[.25, .5)', '[.5, .75]', '[.5, .75]', '(.75, 1)', '1']
    """
    if c < 0.25:
        return BINS[0]
    if c < 0.5:
        return BINS[1]
    if c <= 0.75:
        return BINS[2]
    if c < 1.0:
        return BINS[3]
    return BINS[4]


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the non-missing values (sd None for fewer than two).

    >>> mean_sd([0.5, 0.7, None])
    (0.6, 0.14142135623730948)
    >>> mean_sd([None]), mean_sd([0.3])
    ((None, None), (0.3, None))
    """
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


# --------------------------------------------------------------------------------------------------
# diagnose: greedy vs samples vs majority
# --------------------------------------------------------------------------------------------------


@dataclass
class ItemDiagnosis:
    """One labeled item: greedy score, the M sampled scores, the majority answer's score and confidence."""

    category: str | None
    greedy: float
    samples: list[float]
    majority: float
    confidence: float


def headroom_summary(items: Sequence[ItemDiagnosis]) -> dict:
    """Accuracies (fractions), their differences and calibration per confidence bin.

    >>> items = [ItemDiagnosis("a", 1.0, [1.0, 1.0, 0.0], 1.0, 2 / 3),
    ...          ItemDiagnosis("a", 0.0, [1.0, 1.0, 1.0], 1.0, 1.0),
    ...          ItemDiagnosis("b", 0.0, [0.0, 1.0, 0.0], 0.0, 2 / 3),
    ...          ItemDiagnosis("b", 1.0, [0.0, 0.0, 1.0], 0.0, 1 / 3)]
    >>> s = headroom_summary(items)
    >>> s["n"], s["greedy"], s["majority"], round(s["sample_mean"], 4), s["headroom"]
    (4, 0.5, 0.5, 0.5833, 0.0)
    >>> s["pass_at_m"], s["pass_minus_greedy"]   # any of the M samples right: all four items
    (1.0, 0.5)
    >>> s["bins"]["[.5, .75]"], s["bins"]["1"]
    ({'n': 2, 'share': 0.5, 'majority_accuracy': 0.5}, {'n': 1, 'share': 0.25, 'majority_accuracy': 1.0})
    """
    n = len(items)
    if n == 0:
        return {"n": 0}
    greedy = _mean(i.greedy for i in items)
    sample_mean = _mean(_mean(i.samples) or 0.0 for i in items)
    majority = _mean(i.majority for i in items)
    # pass@M: the share of items where at least one sample is right (full credit). What RL with a true
    # reward can at best teach is bounded by it: an item no sample answers gives every rollout reward 0.
    pass_at_m = _mean(float(any(v >= 1.0 for v in i.samples)) for i in items)
    bins = {}
    for label in BINS:
        members = [i for i in items if confidence_bin(i.confidence) == label]
        bins[label] = {"n": len(members), "share": len(members) / n,
                       "majority_accuracy": _mean(i.majority for i in members)}
    return {
        "n": n, "greedy": greedy, "sample_mean": sample_mean, "majority": majority,
        "headroom": majority - greedy,  # what majority-vote training can at best teach greedy decoding
        "majority_minus_sample": majority - sample_mean,
        "pass_at_m": pass_at_m,
        "pass_minus_greedy": pass_at_m - greedy,  # the headroom of RL with true rewards
        "mean_confidence": _mean(i.confidence for i in items),
        "bins": bins,
    }


def diagnose_summary(items: Sequence[ItemDiagnosis]) -> dict:
    """:func:`headroom_summary` overall and per category."""
    categories = sorted({i.category for i in items if i.category is not None})
    return {
        "overall": headroom_summary(items),
        "categories": {c: headroom_summary([i for i in items if i.category == c]) for c in categories},
    }


# --------------------------------------------------------------------------------------------------
# audit: silver labels against the oracle
# --------------------------------------------------------------------------------------------------

@dataclass
class AuditCounts:
    """Running totals of one group of curated questions."""

    parsed: int = 0
    invalid: int = 0  # the oracle cannot answer the question (ill-formed, refers to no or several objects)
    labelled: int = 0  # valid questions with a silver answer
    label_correct: int = 0
    votes: int = 0  # votes on valid questions
    reward_correct: int = 0  # votes whose pseudo-reward equals their true reward
    extra: dict = field(default_factory=dict)

    def add(self, valid: bool, label_right: bool | None, vote_agreement: tuple[int, int]) -> None:
        self.parsed += 1
        if not valid:
            self.invalid += 1
            return
        if label_right is not None:
            self.labelled += 1
            self.label_correct += int(label_right)
        agree, total = vote_agreement
        self.reward_correct += agree
        self.votes += total

    def as_dict(self) -> dict:
        return {
            "n": self.parsed,
            "invalid_rate": self.invalid / self.parsed if self.parsed else None,
            "label_accuracy": self.label_correct / self.labelled if self.labelled else None,
            "reward_accuracy": self.reward_correct / self.votes if self.votes else None,
        }


SameAnswer = Callable[[str | None, str | None], bool]


def vote_reward_agreement(votes: Sequence[str | None], silver: str | None, oracle: str,
                          same: SameAnswer) -> tuple[int, int]:
    """(votes whose pseudo-reward equals their true reward, votes). A missing vote scores 0 both ways.

    >>> eq = lambda a, b: a is not None and b is not None and a == b
    >>> vote_reward_agreement(["2", "2", "3", None], "2", "3", eq)   # 2: 1 vs 0, 3: 0 vs 1, None: 0 vs 0
    (1, 4)
    >>> vote_reward_agreement(["yes", "no", "no"], "no", "no", eq)
    (3, 3)
    """
    agree = 0
    for vote in votes:
        pseudo = vote is not None and silver is not None and same(vote, silver)
        true = vote is not None and same(vote, oracle)
        agree += int(pseudo == true)
    return agree, len(votes)


def audit_questions(rows: Sequence[dict], same: SameAnswer) -> dict:
    """Audit one iteration's curated questions (rows of questions.parquet with ``oracle_answer``).

    Only parsed questions that were voted on count. Groups: ``all``, ``kept``, one per confidence bin, and
    one per answer kind of the silver answer among kept questions (``kept/yes/no`` ...).

    >>> eq = lambda a, b: a is not None and b is not None and a == b
    >>> rows = [dict(question="q1", votes=["2", "2", "3"], silver_answer="2", confidence=2 / 3, kept=True,
    ...              oracle_answer="3"),
    ...         dict(question="q2", votes=["yes", "yes", "yes"], silver_answer="yes", confidence=1.0, kept=False,
    ...              oracle_answer="yes"),
    ...         dict(question="q3", votes=["red", "blue", None], silver_answer="red", confidence=1 / 3, kept=True,
    ...              oracle_answer=None)]
    >>> a = audit_questions(rows, eq)
    >>> a["all"]
    {'n': 3, 'invalid_rate': 0.3333333333333333, 'label_accuracy': 0.5, 'reward_accuracy': 0.5}
    >>> a["kept"], a["kept/number"]["label_accuracy"]
    ({'n': 2, 'invalid_rate': 0.5, 'label_accuracy': 0.0, 'reward_accuracy': 0.0}, 0.0)
    """
    groups: dict[str, AuditCounts] = {"all": AuditCounts(), "kept": AuditCounts()}
    groups.update({f"bin {label}": AuditCounts() for label in BINS})
    groups.update({f"kept/{kind}": AuditCounts() for kind in ANSWER_KINDS})
    for row in rows:
        votes = row.get("votes")
        if not row.get("question") or votes is None or row.get("confidence") is None:
            continue
        oracle, silver = row.get("oracle_answer"), row.get("silver_answer")
        valid = oracle is not None
        label_right = same(silver, oracle) if valid and silver is not None else None
        agreement = vote_reward_agreement(votes, silver, oracle, same) if valid else (0, 0)
        names = ["all", f"bin {confidence_bin(row['confidence'])}"]
        if row.get("kept"):
            names.append("kept")
            kind = answer_kind(silver)
            if kind is not None:
                names.append(f"kept/{kind}")
        for name in names:
            groups[name].add(valid, label_right, agreement)
    return {name: counts.as_dict() for name, counts in groups.items()}
