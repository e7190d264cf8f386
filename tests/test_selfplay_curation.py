"""The curation filter (visplay.selfplay.curation): band edges, reasons, non-answers."""

from __future__ import annotations

import pytest

from visplay.selfplay.answers import majority_vote
from visplay.selfplay.curation import OFFICIAL_BAND, PAPER_BAND, REASONS, drop_reason, drop_reasons, keep
from visplay.selfplay.prompts import parse_question

PARSED = parse_question("<type>numerical</type><question>How many cubes?</question><answer>3</answer>")


def _vote(k: int, m: int):
    """A vote with confidence k / m (k votes for "3", the rest all different)."""
    return majority_vote(["3"] * k + [str(100 + i) for i in range(m - k)])


@pytest.mark.parametrize(
    "k, m, paper, official",
    [
        (1, 4, True, False),  # 0.25: paper's lower edge, included
        (3, 4, True, True),  # 0.75: paper's upper edge, included
        (4, 4, False, False),  # 1.0: too easy
        (2, 9, False, False),  # 0.222
        (3, 10, True, True),  # 0.3: official lower edge, included
        (8, 10, False, True),  # 0.8: official upper edge, included; too easy for the paper
        (7, 9, False, True),  # 0.778
        (5, 9, True, True),
    ],
)
def test_band_edges_are_inclusive(k, m, paper, official):
    vote = _vote(k, m)
    assert vote.confidence == pytest.approx(k / m)
    assert keep(vote, PAPER_BAND) is paper
    assert keep(vote, OFFICIAL_BAND) is official


def test_drop_reasons():
    assert drop_reason(None, _vote(2, 4)) == "unparsed"
    assert drop_reason(PARSED, None) == "no_answer"
    assert drop_reason(PARSED, majority_vote([None] * 9)) == "no_answer"
    assert drop_reason(PARSED, _vote(9, 9)) == "too_easy"
    assert drop_reason(PARSED, _vote(1, 9)) == "too_hard"
    assert drop_reason(PARSED, _vote(4, 9)) is None
    none_vote = majority_vote(["None", "none", "3", "4"])
    assert drop_reason(PARSED, none_vote) is None
    assert drop_reason(PARSED, none_vote, OFFICIAL_BAND, drop_none_string=True) == "none_answer"
    assert set(drop_reasons([PARSED, None], [_vote(9, 9), None])) <= set(REASONS) | {None}
    with pytest.raises(ValueError):
        drop_reason(PARSED, _vote(2, 4), band=(0.8, 0.2))
    with pytest.raises(ValueError):
        drop_reasons([PARSED], [])


def test_missing_boxes_never_make_a_silver_answer():
    # Six of nine samples have no box: the 3 boxed answers win with c = 3/9, never "no answer".
    vote = majority_vote([None] * 6 + ["7", "7", "7"])
    assert vote.answer == "7" and vote.confidence == pytest.approx(1 / 3)
    assert keep(vote) and drop_reason(PARSED, vote) is None

