"""The curation filter: which (image, question, silver answer) triples train the reasoner.

A candidate is kept when its question parsed, the reasoner's vote produced an answer, and the vote's
confidence c lies in the band, both ends included: paper ``0.25 <= c <= 0.75`` (informative: neither
trivial nor hopeless), authors' code ``0.3 <= c <= 0.8``. Missing answers (no box) never win a vote
(:func:`visplay.selfplay.answers.majority_vote`), so a vote whose samples all lack a box has no answer.

Where this departs from the authors' code (the one place that says so): they drop silver answers equal to
``""`` or ``"None"`` after the vote, because their extractor turned a missing box into the string
``"None"``, which could then win. Here a missing box is ``None`` and never wins, so the string check is
off by default; ``drop_none_string=True`` (the ``official`` preset) restores it for a reasoner that
literally answers "None". Their extra filters (questions containing "box", answers containing "text")
are not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence

from visplay.selfplay.answers import Vote, same_answer

__all__ = ["OFFICIAL_BAND", "PAPER_BAND", "REASONS", "drop_reason", "drop_reasons", "keep"]

PAPER_BAND = (0.25, 0.75)
OFFICIAL_BAND = (0.3, 0.8)
REASONS = ("unparsed", "no_answer", "none_answer", "too_easy", "too_hard", "disagreement")


def drop_reason(
    parsed: object | None,
    vote: Vote | None,
    band: tuple[float, float] = PAPER_BAND,
    drop_none_string: bool = False,
    agreement: bool = False,
    questioner_answer: str | None = None,
) -> str | None:
    """Why a candidate is dropped (one of :data:`REASONS`), or ``None`` when it is kept.

    ``parsed`` is the questioner output as parsed (:func:`visplay.selfplay.prompts.parse_question`),
    ``None`` when it did not parse; ``vote`` the reasoner's majority vote on the question. With
    ``agreement`` a candidate in the band is kept only when ``questioner_answer`` (the answer the questioner
    wrote with its question) equals the vote's answer: two views of the image that agree (co-training, Blum
    and Mitchell 1998), a departure from the paper, which keeps by confidence alone.

    >>> from visplay.selfplay.answers import majority_vote
    >>> drop_reason(None, None)
    'unparsed'
    >>> drop_reason(("numerical", "How many?", "3"), majority_vote([None, None, None, None]))
    'no_answer'
    >>> [drop_reason("q", majority_vote(["3"] * k + ["4"] * (4 - k))) for k in range(1, 5)]
    [None, None, None, 'too_easy']
    >>> drop_reason("q", majority_vote(["1", "2", "3", "4", "5"]))   # c = 0.2 < 0.25
    'too_hard'
    >>> drop_reason("q", majority_vote(["None", "None", "3"]), OFFICIAL_BAND, drop_none_string=True)
    'none_answer'
    >>> [drop_reason("q", majority_vote(["3", "3", "4"]), agreement=True, questioner_answer=a) for a in ("3", "4", None)]
    [None, 'disagreement', 'disagreement']
    """
    low, high = band
    if not low <= high:
        raise ValueError(f"band must be (low, high) with low <= high, got {band}")
    if parsed is None:
        return "unparsed"
    if vote is None or vote.answer is None:
        return "no_answer"
    if drop_none_string and vote.answer.strip().lower() == "none":
        return "none_answer"
    if vote.confidence > high:
        return "too_easy"
    if vote.confidence < low:
        return "too_hard"
    if agreement and not same_answer(questioner_answer, vote.answer):
        return "disagreement"
    return None


def keep(vote: Vote | None, band: tuple[float, float] = PAPER_BAND) -> bool:
    """Whether a vote passes the band (inclusive at both ends) with an actual answer.

    >>> from visplay.selfplay.answers import majority_vote
    >>> keep(majority_vote(["a", "a", "b", "c"])), keep(majority_vote(["a"] * 4))
    (True, False)
    >>> keep(majority_vote(["a", "a", "a", "b", "c", "d", "e", "f", "g", "h"]), OFFICIAL_BAND)   # c = 0.3
    True
    """
    return drop_reason(True, vote, band) is None


def drop_reasons(
    parsed: Sequence[object | None],
    votes: Sequence[Vote | None],
    band: tuple[float, float] = PAPER_BAND,
    drop_none_string: bool = False,
) -> list[str | None]:
    """:func:`drop_reason` for every candidate of a curation pool."""
    if len(parsed) != len(votes):
        raise ValueError("one vote per candidate")
    return [drop_reason(p, v, band, drop_none_string) for p, v in zip(parsed, votes)]
