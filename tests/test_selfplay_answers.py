"""Answer extraction, equivalence and the majority vote (visplay.selfplay.answers)."""

from __future__ import annotations

import itertools
import random

import pytest
from references import majority_vote_reference, same_answer_uncached

from visplay.selfplay.answers import (
    Vote,
    answer_key,
    clear_caches,
    extract_boxed,
    majority_vote,
    same_answer,
)

# ---- extract_boxed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"The answer is \boxed{42}.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}}} done", r"\sqrt{\frac{a}{b}}"),
        (r"first \boxed{1} then \boxed{2}", "2"),  # the last box
        (r"\boxed { 7 }", "7"),  # a space before the brace, spaces inside
        (r"\boxed{3} and a cut-off \boxed{\frac{1}{", "3"),  # an unclosed last box does not count
        (r"\boxed{\boxed{5}}", "5"),  # nested: the innermost starts last
        (r"\boxed{}", ""),
        ("no box at all", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


# ---- keys: one normalisation per case ----------------------------------------------------------


@pytest.mark.parametrize(
    "answer, key",
    [
        ("Red", "t:red"),  # case
        ("  red  ", "t:red"),  # surrounding spaces
        ("red.", "t:red"),  # trailing period
        ("New   York", "t:new york"),  # inner spaces collapse
        ("$12$", "n:12"),  # dollar signs
        (r"\text{red}", "t:red"),  # \text{}
        (r"\textbf{\text{B}}", "o:b"),  # nested wrappers
        ("(B)", "o:b"),
        ("B.", "o:b"),
        ("B) 42 apples", "o:b"),
        ("b", "o:b"),
        ("Option B", "o:b"),
        ("a dog", "t:a dog"),  # an article is not an option letter
        ("Yes", "y:yes"),
        ("yes, it is.", "y:yes"),
        ("TRUE", "y:yes"),
        ("No.", "y:no"),
        ("None", "t:none"),  # not "no"
        ("Not sure", "t:not sure"),
        ("12.", "n:12"),
        ("12.0", "n:12"),
        ("1,000", "n:1000"),
        ("-0.5", r"n:-\frac{1}{2}"),
        ("1/2", r"n:\frac{1}{2}"),
        (r"\dfrac{1}{2}", r"n:\frac{1}{2}"),
        (r"\frac12", r"n:\frac{1}{2}"),
        ("50%", "n:50"),  # percent sign dropped (MATH / mathruler normalisation)
        (r"50\%", "n:50"),
        (r"30^\circ", "n:30"),
        ("30°", "n:30"),
        ("12 cm", "n:12"),
        ("twelve", "n:12"),
        ("1e3", "n:1000"),
        ("x + 1", "m:x+1"),
        (r"\pi r^2", r"m:\pi r^2"),  # the space between two letters stays
        ("2 cats", "t:2 cats"),  # a number with a word is text, not algebra
        ("cat", "t:cat"),
        ("", None),
        ("   ", None),
        ("$", None),
        (None, None),
    ],
)
def test_answer_key(answer, key):
    assert answer_key(answer) == key


# ---- equivalence ---------------------------------------------------------------------------------

SAME = [
    ("1/2", "0.5"),
    ("0.5", r"\frac{1}{2}"),
    (r"\frac{1}{2}", "1/2"),
    ("$0.50$", r"\dfrac{1}{2}"),
    ("(B)", "B"),
    ("B.", "b"),
    ("B) 12", "(b)"),
    ("Yes", "yes."),
    ("yes, there is one.", "True"),
    ("No", "no."),
    ("Red", r"\text{red}"),
    ("two", "2"),
    ("50%", "50"),
    (r"\sqrt{2}", "2^{1/2}"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
    (r"3\sqrt{2}", r"\sqrt{18}"),
    (r"\frac{\pi}{4}", r"\pi/4"),
    ("x^2+1", "1 + x^2"),
    ("x = 4", "4"),  # an assignment is its right-hand side (math-verify agrees)
    (r"\log_{2} 8", "3"),
    ("(1, 2)", "(1,2)"),
]

DIFFERENT = [
    ("cat", "act"),  # math-verify alone would read both as c*a*t
    ("2 cats", "2 acts"),  # words are never algebra, even next to a number
    ("dog", "god"),
    ("50%", "0.5"),  # the percent sign is dropped, not divided by 100
    ("0.333", "1/3"),  # plain numbers are exact rationals
    ("1/3", "0.333333"),
    (r"\pi", "3.14"),
    (r"\sqrt{2}", "1.414"),
    (r"\sqrt{2}", r"\sqrt{3}"),
    ("x^2+1", "x^2+2"),
    ("2x+3", r"\sqrt{2}"),  # a number is never an expression in variables
    ("(1, 2)", "3"),
    ("x = 4", "5"),
    ("A", "B"),
    ("A. 5", "B. 5"),
    ("yes", "no"),
    ("None", "no"),
    ("12", "12 apples"),
    ("red", "reds"),
    (None, None),  # missing answers match nothing, not even each other
    (None, "3"),
]


@pytest.mark.parametrize("a, b", SAME)
def test_same(a, b):
    assert same_answer(a, b) and same_answer(b, a)
    assert same_answer_uncached(a, b) and same_answer_uncached(b, a)


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_different(a, b):
    assert not same_answer(a, b) and not same_answer(b, a)
    assert not same_answer_uncached(a, b) and not same_answer_uncached(b, a)


def test_same_answer_is_symmetric_and_reflexive_on_a_mixed_set():
    answers = [a for pair in SAME + DIFFERENT for a in pair if a is not None]
    for a, b in itertools.combinations(sorted(set(answers)), 2):
        assert same_answer(a, b) == same_answer(b, a), (a, b)
    for a in answers:
        assert same_answer(a, a)


def test_shortcuts_agree_with_math_verify_on_mathematical_pairs():
    """Where same_answer decides without math-verify's verify (values, probes), verify agrees."""
    from math_verify import parse, verify

    pairs = [(a, b) for a, b in SAME + DIFFERENT if a and b and answer_key(a)[0] in "nm" and answer_key(b)[0] in "nm"]
    pairs = [(a, b) for a, b in pairs if not (answer_key(a)[0] == answer_key(b)[0] == "n")]
    assert len(pairs) >= 10
    for a, b in pairs:
        pa, pb = parse(f"${answer_key(a)[2:]}$"), parse(f"${answer_key(b)[2:]}$")
        assert same_answer(a, b) == bool(verify(pa, pb) or verify(pb, pa)), (a, b)


# ---- majority vote -------------------------------------------------------------------------------


def test_vote_hand_computed():
    vote = majority_vote(["3", "three", None, "4", "3.0", "", "4", "5", "(C)"])
    assert vote.answer == "3"
    assert vote.confidence == pytest.approx(3 / 9)  # missing answers count in the denominator
    assert [(c.answer, c.count, c.indices) for c in vote.clusters] == [
        ("3", 3, (0, 1, 4)),
        ("4", 2, (3, 6)),
        ("5", 1, (7,)),
        ("(C)", 1, (8,)),
    ]
    assert (vote.total, vote.missing) == (9, 2)


def test_vote_without_missing_in_denominator_as_the_authors_curation():
    vote = majority_vote(["3", "3", None, None, "4"], count_missing=False)
    assert vote.confidence == pytest.approx(2 / 3)


def test_missing_answers_never_win():
    vote = majority_vote([None, None, None, None, "7"])
    assert vote.answer == "7" and vote.confidence == pytest.approx(0.2)
    empty = majority_vote([None, " ", None])
    assert empty.answer is None and empty.confidence == 0.0 and empty.clusters == ()
    assert majority_vote([]) == Vote(None, 0.0, (), 0, 0)


def test_ties_go_to_the_first_seen_cluster():
    assert majority_vote(["b", "a", "a", "b"]).answer == "b"
    assert majority_vote(["no", "yes", "Yes.", "No."]).answer == "no"
    assert majority_vote(["2", "1/2", "0.5", "2.0"]).confidence == 0.5


def test_representative_is_the_first_seen_form():
    assert majority_vote([" 0.5 ", r"\frac{1}{2}", "1/2"]).answer == "0.5"


def _random_pool(n: int, seed: int) -> list[list[str | None]]:
    rng = random.Random(seed)
    forms = [
        ["3", "three", "3.0", "$3$"], ["4", "4.", "four"], ["1/2", "0.5", r"\frac{1}{2}"], ["0.25", "1/4"],
        [r"\sqrt{2}", "2^{1/2}"], [r"2\sqrt{2}", r"\sqrt{8}"], ["x^2+1", "1+x^2"], ["x=3"], ["(1, 2)", "(1,2)"],
        ["A", "(A)", "A."], ["B", "b", "B) 4"], ["Yes", "yes.", "True"], ["No", "no"], ["red", "Red", r"\text{red}"],
        ["cat"], ["act"], ["50%", "50"], ["0.5%"],
    ]
    pool = []
    for _ in range(n):
        groups = rng.sample(forms, rng.randint(1, 3))
        pool.append([None if rng.random() < 0.1 else rng.choice(rng.choice(groups)) for _ in range(9)])
    return pool


def test_fast_vote_equals_greedy_reference_on_a_random_pool():
    pool = _random_pool(300, seed=0)
    clear_caches()
    fast = [majority_vote(answers) for answers in pool]
    slow = [majority_vote_reference(answers) for answers in pool]
    warm = [majority_vote_reference(answers, same=same_answer) for answers in pool]
    assert fast == slow == warm
    for count_missing in (True, False):
        assert [majority_vote(a, count_missing) for a in pool[:50]] == [
            majority_vote_reference(a, count_missing) for a in pool[:50]
        ]
