"""Prompt templates and the questioner-output parser (visplay.selfplay.prompts)."""

from __future__ import annotations

import pytest

from visplay.selfplay.prompts import (
    AUTHORS_VOTER_PROMPT,
    COMPACT_QUESTIONER_PROMPT,
    PAPER_QUESTIONER_PROMPT,
    PAPER_REASONER_PROMPT,
    ParsedQuestion,
    parse_question,
    questioner_messages,
    reasoner_messages,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "<type>numerical</type>\n<question>How many red cubes?</question>\n<answer>3</answer>",
            ("numerical", "How many red cubes?", "3"),
        ),
        (  # Qwen2.5-VL-32B style spaces around the tag characters
            "< type > Multiple Choice </ type >\n< question >Is it red? A. yes B. no</ question >< answer >A</answer >",
            ("multiple choice", "Is it red? A. yes B. no", "A"),
        ),
        ("<question>What is 3 / 4 of 8?</question>", (None, "What is 3/4 of 8?", None)),  # paper format
        ("<type>counting</type><question>How many?</question><answer></answer>", ("counting", "How many?", None)),
        ("<type></type><question>How many?</question>", (None, "How many?", None)),
        (  # an echoed example before the real output: the last block wins
            "e.g. <question>Example?</question> ... "
            "<type>numerical</type><question>Real one?</question><answer>2</answer>",
            ("numerical", "Real one?", "2"),
        ),
        ("<type>`Numerical`</type><question>  spaced   out  </question>", ("numerical", "spaced   out", None)),
    ],
)
def test_parse_question(text, expected):
    parsed = parse_question(text)
    assert parsed == expected
    assert isinstance(parsed, ParsedQuestion)


@pytest.mark.parametrize(
    "text",
    [None, "", "How many cubes are there?", "<question></question>", "<question>   </question><answer>3</answer>",
     "<question>never closed", "<type>numerical</type><answer>3</answer>"],
)
def test_parse_question_rejects_missing_or_empty_question(text):
    assert parse_question(text) is None


def test_strict_mode_is_the_authors_reward_parser():
    full = "<type>numerical</type><question>How many?</question><answer>3</answer>"
    assert parse_question(full, strict=True) == ("numerical", "How many?", "3")
    assert parse_question("<question>How many?</question><answer>3</answer>", strict=True) is None
    assert parse_question("<type>numerical</type><question>How many?</question><answer> </answer>", strict=True) is None
    # The authors take the first complete triple.
    two = full + "<type>regression</type><question>Second?</question><answer>1.5</answer>"
    assert parse_question(two, strict=True).question == "How many?"
    assert parse_question(two).question == "Second?"


def test_templates():
    for part in ("<type>", "<question>", "<answer>", "multiple choice", "numerical", "regression"):
        assert part in PAPER_QUESTIONER_PROMPT
    assert parse_question(PAPER_QUESTIONER_PROMPT) == ("numerical", "How many clubs are there in Florida?", "5.7M")
    assert PAPER_REASONER_PROMPT.format(question="Q?") == (
        "Q?\nPlease reason step by step, and put your final answer within \\boxed{}."
    )
    assert AUTHORS_VOTER_PROMPT.format(question="Q?", qtype="numerical").startswith(
        "This is a question: Q?. The question type is: numerical."
    )


@pytest.mark.parametrize("style, text", [("compact", COMPACT_QUESTIONER_PROMPT), ("paper", PAPER_QUESTIONER_PROMPT)])
def test_messages(style, text):
    (message,) = questioner_messages(style)
    assert message["role"] == "user"
    assert message["content"] == [{"type": "image"}, {"type": "text", "text": text}]
    (message,) = reasoner_messages("What is {x}?", style)
    assert message["content"][0] == {"type": "image"}
    assert message["content"][1]["text"].startswith("What is {x}?")
