"""The oracle on hand-built scenes: every family, ties, absent objects, ambiguous references, bad parses.

The scene used throughout (rows top to bottom, cols left to right):

    row 0:  large red circle (col 0)      small red square (col 2)
    row 1:  small blue square (col 1)
    row 2:  large green triangle (col 3)
    row 3:  small yellow circle (col 0)
"""

from __future__ import annotations

import pytest

from visplay.world.oracle import REASONS, OracleResult, oracle_answer
from visplay.world.scenes import Obj, Scene

SCENE = Scene(
    (
        Obj("circle", "red", "large", 0, 0),
        Obj("square", "red", "small", 0, 2),
        Obj("square", "blue", "small", 1, 1),
        Obj("triangle", "green", "large", 2, 3),
        Obj("circle", "yellow", "small", 3, 0),
    )
)


def ask(question: str) -> OracleResult:
    return oracle_answer(question, SCENE)


@pytest.mark.parametrize(
    "question, answer",
    [
        ("How many red objects are there?", "2"),
        ("How many circles are there?", "2"),
        ("How many small blue squares are in the image?", "1"),
        ("How many purple objects are there?", "0"),  # absent: zero, not invalid
        ("How many objects are there?", "5"),
        ("Count the large objects.", "2"),
        ("What is the number of small circles?", "1"),
        ("How many triangles can you see?", "1"),
        ("How many big things are there in the picture?", "2"),
    ],
)
def test_counting(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "counting")


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Is there a green triangle?", "yes"),
        ("Is there a green circle?", "no"),
        ("Are there any purple objects?", "no"),
        ("Are there any red squares?", "yes"),
        ("Does the image contain an orange object?", "no"),
        ("Is there at least one small circle?", "yes"),
        ("Is there a large blue square?", "no"),  # blue squares exist, but only small
    ],
)
def test_existence(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "existence")


@pytest.mark.parametrize(
    "question, answer",
    [
        ("What color is the large triangle?", "green"),
        ("What shape is the blue object?", "square"),
        ("What size is the yellow circle?", "small"),
        ("What is the size of the red circle?", "large"),
        ("Which color does the large circle have?", "red"),
        ("Is the yellow circle small or large?", "small"),
        ("What shape is the green object?", "triangle"),
    ],
)
def test_attribute(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "attribute")


@pytest.mark.parametrize(
    "question, reason",
    [
        ("What color is the circle?", "ambiguous"),  # two circles
        ("What shape is the red object?", "ambiguous"),
        ("What color is the large square?", "no_object"),  # squares here are small
        ("What size is the purple object?", "no_object"),
        ("What color is the red circle?", "self_answering"),
    ],
)
def test_attribute_invalid(question, reason):
    assert ask(question) == OracleResult(None, False, reason, "attribute")


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Are there more circles than squares?", "no"),  # 2 vs 2: a tie is not "more"
        ("Are there fewer circles than squares?", "no"),
        ("Are there as many circles as squares?", "yes"),
        ("Are there fewer triangles than squares?", "yes"),
        ("Is the number of red objects greater than the number of blue objects?", "yes"),
        ("Is the number of large objects equal to the number of small objects?", "no"),
        ("Are there more purple objects than orange objects?", "no"),  # 0 vs 0
        ("Are there as many purple objects as orange objects?", "yes"),
    ],
)
def test_comparison(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "comparison")


def test_comparison_of_a_group_with_itself_is_invalid():
    assert ask("Are there more circles than circles?") == OracleResult(None, False, "same_groups", "comparison")


@pytest.mark.parametrize(
    "question, answer",
    [
        ("Is the red circle left of the blue square?", "yes"),
        ("Is the red circle to the right of the blue square?", "no"),
        ("Is the blue square above the green triangle?", "yes"),  # different column: rows decide
        ("Is the green triangle below the yellow circle?", "no"),
        ("Is the red square above the red circle?", "no"),  # same row: strictly above only
        ("Is the yellow circle left of the large circle?", "no"),  # same column
        ("Is the yellow circle under the blue square?", "yes"),
        ("What color is the object right of the red square?", "green"),
        ("What shape is the object below the green triangle?", "circle"),
        ("What color is the circle below the blue square?", "yellow"),  # the subject filters candidates
        ("What color is the square to the right of the blue square?", "red"),  # the triangle is no square
        ("What is the size of the triangle to the right of the red circle?", "large"),
    ],
)
def test_spatial(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "spatial")


@pytest.mark.parametrize(
    "question, reason",
    [
        ("Is the circle left of the triangle?", "ambiguous"),
        ("Is the red circle left of the square?", "ambiguous"),
        ("Is the purple circle left of the blue square?", "no_object"),
        ("Is the red circle left of the large circle?", "same_object"),  # both name the same object
        ("What color is the object left of the red square?", "ambiguous"),  # three objects lie left of it
        ("What color is the object above the red circle?", "no_object"),  # nothing above row 0
        ("What color is the object right of the circle?", "ambiguous"),  # the anchor itself is ambiguous
        ("What color is the red object left of the green triangle?", "self_answering"),
    ],
)
def test_spatial_invalid(question, reason):
    assert ask(question) == OracleResult(None, False, reason, "spatial")


@pytest.mark.parametrize(
    "question, answer",
    [
        ("How many circles and squares are there in total?", "4"),
        ("What is the total number of red objects and blue objects?", "3"),
        ("How many purple objects and orange objects are there altogether?", "0"),
        ("How many more red objects than blue objects are there?", "1"),
        ("How many fewer blue objects than red objects are there?", "1"),
        ("How many more circles than squares are there?", "0"),
        ("How many more small objects than large objects are there?", "1"),
    ],
)
def test_arithmetic(question, answer):
    assert ask(question) == OracleResult(answer, True, "ok", "arithmetic")


@pytest.mark.parametrize(
    "question, reason",
    [
        ("How many more blue objects than red objects are there?", "negative"),
        ("How many fewer red objects than blue objects are there?", "negative"),
        ("How many red objects and circles are there in total?", "overlap"),  # the red circle: once or twice?
        ("How many circles and circles are there in total?", "same_groups"),
    ],
)
def test_arithmetic_invalid(question, reason):
    assert ask(question) == OracleResult(None, False, reason, "arithmetic")


@pytest.mark.parametrize(
    "question",
    [
        "How many red objects are there?",
        "how many red objects are there",
        "  HOW   many RED objects are there ?!",
        "How many red objects are there in this picture?",
        "How many red objects are there in the image",
        "how many red things are there...",
        "How many red object are there?",  # number agreement is not checked
    ],
)
def test_case_spacing_and_punctuation_do_not_matter(question):
    assert ask(question).answer == "2"


@pytest.mark.parametrize(
    "question",
    ["What colour is the large triangle", "what's the color of the LARGE triangle?", "What color is the big triangle"],
)
def test_spelling_variants(question):
    assert ask(question).answer == "green"


@pytest.mark.parametrize(
    "question",
    [
        "",
        "?",
        "What is the meaning of life?",
        "How many pink objects are there?",  # colour outside the world
        "How many red blue circles are there?",  # two colours for one object
        "Is the red circle near the blue square?",  # relation outside the grammar
        "Is there a red circle left of the blue square?",  # existence with a relation: not supported
        "How many hexagons are there?",
        "What color is",
    ],
)
def test_unparsed(question):
    assert ask(question) == OracleResult(None, False, "unparsed", None)


def test_every_reason_is_listed():
    reasons = {
        ask(q).reason
        for q in (
            "How many circles are there?",
            "Tell me",
            "What color is the large square?",
            "What color is the circle?",
            "Is the red circle left of the large circle?",
            "Are there more circles than circles?",
            "What color is the red circle?",
            "How many red objects and circles are there in total?",
            "How many more blue objects than red objects are there?",
        )
    }
    assert reasons == set(REASONS)
