"""Answer balancing of the reasoner's prompts (reasoner.balance_answers), on hand-computed values."""

from __future__ import annotations

from collections import Counter

import pytest

from visplay.selfplay.balance import balance_weights, balanced_sample


def test_weights_make_values_uniform_within_a_kind_and_keep_each_kinds_share():
    answers = ["yes"] * 6 + ["no"] * 2 + ["1"] * 3 + ["2"] + ["red", None]
    weights = balance_weights(answers)
    # kinds: yes/no 8 of 13 answered, number 4, word 1; per value: kind share / (values x count).
    assert weights[0] == pytest.approx((8 / 13) / (2 * 6))
    assert weights[6] == pytest.approx((8 / 13) / (2 * 2))
    assert weights[8] == pytest.approx((4 / 13) / (2 * 3))
    assert weights[11] == pytest.approx((4 / 13) / (2 * 1))
    assert weights[12] == pytest.approx(1 / 13)
    assert weights[13] == 0.0  # no answer: never drawn
    assert sum(weights) == pytest.approx(1.0)
    # equivalent answers are one value ("Yes" and "yes", "2" and "2.0")
    assert balance_weights(["Yes", "yes", "no"]) == pytest.approx([0.25, 0.25, 0.5])
    assert balance_weights(["2", "2.0", "3"]) == pytest.approx([0.25, 0.25, 0.5])


def test_balanced_sample_is_seeded_and_balances_a_skewed_pool():
    answers = ["yes"] * 78 + ["no"] * 22 + ["1"] * 44 + ["0"] * 40 + ["2"] * 16
    picks = balanced_sample(answers, 4000, seed=3)
    assert picks == balanced_sample(answers, 4000, seed=3) != balanced_sample(answers, 4000, seed=4)
    drawn = Counter(answers[i] for i in picks)
    assert abs(drawn["yes"] - drawn["no"]) < 250            # about 1000 each (half of the yes/no half)
    assert abs(drawn["yes"] + drawn["no"] - 2000) < 250     # yes/no keep their share of the pool (100 of 200)
    assert all(abs(drawn[v] - 667) < 150 for v in ("0", "1", "2"))
    assert balanced_sample([None, None], 5, seed=0) == []


def test_groups_balance_each_question_form_on_its_own():
    """Existence mostly "yes", comparison mostly "no": balancing yes/no together leaves both skewed; balancing
    per question form makes each form half yes."""
    from visplay.selfplay.balance import question_form

    questions = ["Is there a red circle?"] * 8 + ["Are there more squares than circles?"] * 8
    answers = ["yes"] * 7 + ["no"] + ["no"] * 7 + ["yes"]
    forms = [question_form(q) for q in questions]
    assert set(forms) == {"is there", "are there"}
    weights = balance_weights(answers, forms)
    assert weights[0] == pytest.approx(0.5 / (2 * 7)) and weights[7] == pytest.approx(0.5 / 2)
    by_kind = balance_weights(answers)  # one yes/no group: 8 yes, 8 no -> nothing changes
    assert by_kind == pytest.approx([1 / 16] * 16)
    with pytest.raises(ValueError):
        balance_weights(answers, forms[:3])
