"""Questioner and reasoner rewards, both variants, on hand-computed numbers (visplay.selfplay.rewards)."""

from __future__ import annotations

import pytest

from visplay.selfplay.rewards import (
    QuestionerReward,
    diversity_shares,
    official_format,
    official_uncertainty,
    questioner_reward,
    questioner_rewards,
    reasoner_reward,
    reasoner_rewards,
    uncertainty,
)


@pytest.mark.parametrize(
    "c, paper, official",
    [(0.0, 0.0, 0.0), (0.1, 0.2, 0.1), (0.25, 0.5, 0.25), (0.5, 1.0, 0.5), (0.7, 0.6, 0.3), (1.0, 0.0, 0.0)],
)
def test_uncertainty(c, paper, official):
    assert uncertainty(c) == pytest.approx(paper)
    assert official_uncertainty(c) == pytest.approx(official)


def test_paper_total_is_valid_times_relu():
    r = questioner_reward(0.5, 0.25, True, "paper", lam=1.0)  # 1 - 0.25
    assert (r.total, r.uncertainty, r.diversity, r.validity) == (0.75, 1.0, 0.25, 1.0)
    r = questioner_reward(0.7, 0.25, True, "paper", lam=2.0)  # 0.6 - 0.5
    assert r.total == pytest.approx(0.1) and r.diversity == 0.5
    r = questioner_reward(1.0, 0.125, True, "paper")  # 0 - 0.125 -> floored at 0
    assert r.total == 0.0 and r.uncertainty == 0.0
    r = questioner_reward(None, 0.125, False, "paper")  # unparsed: validity 0 -> 0
    assert (r.total, r.validity, r.uncertainty) == (0.0, 0.0, 0.0)


def test_official_total_has_no_floor_and_minus_one_when_unparsed():
    r = questioner_reward(0.5, 0.25, True, "official")  # min(0.5, 0.5) - 0.25
    assert (r.total, r.uncertainty, r.diversity) == (0.25, 0.5, 0.25)
    r = questioner_reward(0.9, 0.5, True, "official")  # 0.1 - 0.5
    assert r.total == pytest.approx(-0.4)
    r = questioner_reward(None, 1 / 8, False, "official")  # -1 - 1/8
    assert r.total == -1.125 and r.validity == 0.0


def test_questioner_reward_rejects_bad_input():
    with pytest.raises(ValueError):
        questioner_reward(None, 0.1, True)  # parsed but no confidence
    with pytest.raises(ValueError):
        questioner_reward(0.5, 0.1, True, "other")


def test_diversity_shares_image_and_batch_scopes():
    questions = [
        "how many red cubes are in the image ?",
        "how many red cubes are in the image ?",
        "what color is the sphere left of the cone ?",
        None,
        "how many red cubes are in the image ?",
        "is the cone larger than the cube ?",
    ]
    groups = ["a", "a", "a", "a", "b", "b"]
    shares, labels = diversity_shares(questions, groups, "image")
    assert shares == [0.5, 0.5, 0.25, 0.25, 0.5, 0.5]
    assert labels == [0, 0, 1, 2, 0, 1]
    shares, labels = diversity_shares(questions, scope="batch")
    assert shares == pytest.approx([3 / 6, 3 / 6, 1 / 6, 1 / 6, 3 / 6, 1 / 6])
    assert labels == [0, 0, 1, 2, 0, 3]
    with pytest.raises(ValueError):
        diversity_shares(questions, None, "image")
    with pytest.raises(ValueError):
        diversity_shares(questions, groups, "everything")


def test_unparsed_questions_are_singletons_even_together():
    shares, _ = diversity_shares([None, None, "", "a b c d e"], scope="batch")
    assert shares == [0.25, 0.25, 0.25, 0.25]


def test_questioner_rewards_batch_both_variants():
    questions = ["how many red cubes are in the image ?"] * 2 + [None, "is the cone larger than the cube ?"]
    confidences = [0.5, 0.5, None, 0.8]
    groups = [0, 0, 0, 0]
    paper = questioner_rewards(questions, confidences, groups, "paper")
    assert [r.total for r in paper] == pytest.approx([0.5, 0.5, 0.0, 0.15])  # 1 - 2/4; 0.4 - 1/4
    official = questioner_rewards(questions, confidences, groups, "official", lam=1.0)
    assert [r.total for r in official] == pytest.approx([0.0, 0.0, -1.25, -0.05])  # 0.5 - 0.5; -1 - 0.25; 0.2 - 0.25
    assert all(isinstance(r, QuestionerReward) for r in paper)
    fields = {"total", "uncertainty", "diversity", "validity", "share", "cluster", "confidence"}
    assert set(paper[0].as_dict()) == fields
    batch = questioner_rewards(questions, confidences, scope="batch", lam=0.5)
    assert batch[3].diversity == pytest.approx(0.5 * 1 / 4)
    with pytest.raises(ValueError):
        questioner_rewards(questions, confidences[:2], groups)


@pytest.mark.parametrize(
    "response, expected",
    [
        ("<think>count: 3</think>\\boxed{3}", 1.0),
        ("<think>a\nb</think>\n\n\\boxed{3}\n", 1.0),
        ("< think >a</ think > \\boxed{3}", 1.0),  # the authors' whitespace normalisation
        ("<think>a</think>The answer is \\boxed{3}", 0.0),  # text between think and box
        ("<think>a</think>\\boxed{3}.", 0.0),  # text after the box
        ("Sure! <think>a</think>\\boxed{3}", 0.0),  # text before think
        ("\\boxed{3}", 0.0),
        ("<think>a</think>", 0.0),
        ("", 0.0),
    ],
)
def test_official_format(response, expected):
    assert official_format(response) == expected


def test_reasoner_reward_both_variants():
    good = "<think>half of it</think> \\boxed{\\frac{1}{2}}"
    r = reasoner_reward(good, "0.5", "paper")
    assert (r.total, r.accuracy, r.format, r.answer) == (1.0, 1.0, 1.0, "\\frac{1}{2}")
    r = reasoner_reward(good, "0.5", "official")
    assert r.total == pytest.approx(1.0)
    r = reasoner_reward("it is \\boxed{0.5}", "1/2", "official")
    assert (r.accuracy, r.format) == (1.0, 0.0) and r.total == pytest.approx(0.9)
    r = reasoner_reward("<think>x</think>\\boxed{3}", "4", "official")
    assert r.total == pytest.approx(0.1)
    r = reasoner_reward("no box at all", "4", "paper")
    assert (r.total, r.answer) == (0.0, None)
    r = reasoner_reward("\\boxed{B}", "(B)", "paper")
    assert r.total == 1.0
    assert reasoner_reward("\\boxed{cat}", "act").total == 0.0


def test_reasoner_rewards_batch():
    out = reasoner_rewards(["\\boxed{1}", "\\boxed{2}"], ["1", "1"], "paper")
    assert [r.total for r in out] == [1.0, 0.0]
    assert reasoner_rewards(["\\boxed{1}"], [None])[0].total == 0.0
    with pytest.raises(ValueError):
        reasoner_rewards(["\\boxed{1}"], ["1", "2"])
    with pytest.raises(ValueError):
        reasoner_reward("\\boxed{1}", "1", "both")
