"""Rule scoring of hand-written responses: every extraction path, every benchmark, the unparsed count,
and HallusionBench's three metrics on a hand-computed example. No files, no model."""

from __future__ import annotations

import pytest

from visplay.evaluation import get_benchmark
from visplay.evaluation.base import CHOICE, JUDGED, OPEN, YESNO
from visplay.evaluation.data import BenchmarkData
from visplay.evaluation.rules import find_option, match_option, strip_think
from visplay.evaluation.runner import score_responses, summarize


def _data(name: str, rows: list[dict]) -> BenchmarkData:
    bench = get_benchmark(name)
    items = [bench.item_from_row(row, i) for i, row in enumerate(rows)]
    return BenchmarkData(bench, items, path=__import__("pathlib").Path(f"{name}.parquet"), layout="native",
                         n_loaded=len(items))


def _score(name: str, rows: list[dict], responses: list[str]):
    """Score one response per row (repeating the rows when there are more responses than rows)."""
    data = _data(name, [rows[i % len(rows)] | {"_k": i} for i in range(len(responses))])
    for i, item in enumerate(data.items):
        item.id = f"{item.id}-{i}"
    scored = score_responses(data, {item.id: r for item, r in zip(data.items, responses)})
    return data, scored


def _check(scored, expected: list[tuple]):
    """expected: one (score, scored_by, extracted_by) per response."""
    got = [(s.score, s.scored_by, s.extraction.how) for s in scored]
    assert got == expected, "\n".join(f"{s.response!r}: {g}" for s, g in zip(scored, got))


# --------------------------------------------------------------------------------------------------
# The shared helpers
# --------------------------------------------------------------------------------------------------


def test_strip_think_variants():
    assert strip_think("<think>\\boxed{1}</think>\\boxed{2}") == "\\boxed{2}"
    assert strip_think("<THINK>a</THINK> b <think>c</think> d") == "b   d"
    assert strip_think("<think>never closed \\boxed{3}") == ""
    assert strip_think("reasoning </think> \\boxed{5}") == "\\boxed{5}"


def test_match_option_never_guesses():
    assert match_option("B) 8/11", ["A", "B"], ["3/11", "8/11"]) == "B"
    assert match_option("8/11", ["A", "B"], ["3/11", "8/11"]) == "B"
    assert match_option("0.727", ["A", "B"], ["3/11", "8/11"]) is None
    assert find_option("A or B, hard to say (A) (B)", ["A", "B"], []).answer is None
    assert find_option("the answer is a dog", ["A", "B"], []).answer is None  # lowercase "a" is an article


# --------------------------------------------------------------------------------------------------
# One test per benchmark: hand-written responses with known correctness
# --------------------------------------------------------------------------------------------------


def test_mmmu_multiple_choice_every_path():
    row = {"id": "validation_Art_1", "question": "<image 1> Which shape is drawn?",
           "options": "['a circle', 'a square', 'a triangle', 'a hexagon']", "answer": "C",
           "question_type": "multiple-choice", "image_1": b"png"}
    responses = [
        "It has three sides, so \\boxed{C}.",                   # boxed letter
        "Three sides: \\boxed{\\text{a triangle}}",             # boxed option text
        "Three sides.\nAnswer: (C)",                             # Answer: line
        "C",                                                     # the whole reply is a letter
        "Counting sides, the answer is B.",                      # phrase, wrong
        "I pick (C) because of the three corners.",              # one bracketed letter
        "The drawing clearly shows a triangle with equal sides.",  # one option text
        "<think>\\boxed{A}</think> Final: \\boxed{C}",           # think stripped
        "<think>It might be \\boxed{C} but I ran out of tok",    # unclosed think: nothing visible
        "I cannot tell which one it is.",                        # nothing parses
    ]
    data, scored = _score("mmmu", [row], responses)
    assert data.items[0].kind == CHOICE and data.items[0].question.endswith("C. a triangle\nD. a hexagon")
    _check(scored, [
        (1.0, "rule", "boxed"), (1.0, "rule", "boxed"), (1.0, "rule", "answer_line"), (1.0, "rule", "option_letter"),
        (0.0, "rule", "option_phrase"), (1.0, "rule", "option_letter"), (1.0, "rule", "option_text"),
        (1.0, "rule", "boxed"), (0.0, "unparsed", "none"), (0.0, "unparsed", "none"),
    ])
    summary = summarize(data, scored, "never", None)
    assert summary["n"] == 10 and summary["unparsed"] == 2 and summary["unparsed_rate"] == pytest.approx(0.2)
    assert summary["accuracy"] == pytest.approx(70.0) and summary["judged"] == 0
    assert summary["breakdown"] == {"Art": {"n": 10, "accuracy": pytest.approx(70.0)}}
    assert summary["protocol"].startswith("rules")


def test_mmmu_open_question_accepts_any_listed_answer():
    row = {"id": "validation_Physics_3", "question": "<image 1> Speed in m/s?", "options": "[]",
           "answer": "['12', '12.0']", "question_type": "open", "image_1": b"png"}
    _, scored = _score("mmmu", [row], ["\\boxed{12.00}", "Answer: 13", "12", "The car moves very fast indeed on the road."])
    assert scored[0].item.kind == OPEN and scored[0].item.gold == ["12", "12.0"]
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "answer_line"), (1.0, "rule", "direct"),
                    (0.0, "unparsed", "none")])


def test_mmvet_without_judge_is_not_scored():
    row = {"question_id": "v1_0", "question": "What is x?", "answer": "-1<AND>-5", "image": b"png", "capability": "math"}
    data, scored = _score("mmvet", [row], ["x = -1 or x = -5, so \\boxed{-1, -5}", "no idea", "<think>only thinking"])
    assert data.items[0].kind == JUDGED
    assert [s.scored_by for s in scored] == ["unscored", "unscored", "unparsed"]
    summary = summarize(data, scored, "never", None)
    assert summary["accuracy"] is None and "needs an LLM judge" in summary["protocol"]


def test_realworldqa_letters_words_and_numbers():
    mc = {"question": "Which is closer?\nA. the car\nB. the tree\nPlease answer directly with only the letter of "
                      "the correct option and nothing else.", "answer": "B", "image": b"png"}
    num = {"question": "How many lanes are there?\nPlease answer directly with a single word or number.",
           "answer": "3", "image": b"png"}
    data, scored = _score("realworldqa", [mc], ["\\boxed{B}", "The tree is closer. \\boxed{\\text{the tree}}", "A"])
    assert "Please answer directly" not in data.items[0].question and data.items[0].letters == ["A", "B"]
    _check(scored, [(1.0, "rule", "boxed"), (1.0, "rule", "boxed"), (0.0, "rule", "option_letter")])
    _, scored = _score("realworldqa", [num], ["Answer: three", "\\boxed{4}"])
    _check(scored, [(1.0, "rule", "answer_line"), (0.0, "rule", "boxed")])


def test_visnumbench_option_string():
    row = {"id": "7_Angle", "question": "What is the angle?", "option": "(a) 30° (b) 60° (c) 90° (d) 120°",
           "answer": "(c) 90°", "image": b"png", "Attributes": "Angle", "task_class": "value estimation"}
    data, scored = _score("visnumbench", [row], ["\\boxed{(c)}", "\\boxed{90°}", "\\boxed{c}", "\\boxed{(a) 30°}", "hmm"])
    assert data.items[0].gold == "C" and data.items[0].choices == ["30°", "60°", "90°", "120°"]
    _check(scored, [(1.0, "rule", "boxed"), (1.0, "rule", "boxed"), (1.0, "rule", "boxed"), (0.0, "rule", "boxed"),
                    (0.0, "unparsed", "none")])


def test_mathverse_vision_only_letters_and_values():
    mc = {"sample_index": "1", "problem_version": "Vision Only", "question": "", "question_type": "multi-choice",
          "query_cot": "According to the question shown in the image, reason and give the option letter.",
          "answer": "B", "image": b"png"}
    free = {"sample_index": "2", "problem_version": "Vision Only", "question": "", "question_type": "free-form",
            "query_cot": "According to the question shown in the image, reason and give the value.",
            "answer": "\\frac{3}{2}", "image": b"png"}
    data, scored = _score("mathverse", [mc], ["\\boxed{B}", "\\boxed{(A)}"])
    assert data.items[0].question.startswith("According to the question shown")
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "boxed")])
    _, scored = _score("mathverse", [free], ["\\boxed{1.5}", "Answer: 3/2", "\\boxed{2}"])
    _check(scored, [(1.0, "rule", "boxed"), (1.0, "rule", "answer_line"), (0.0, "rule", "boxed")])


def test_mathvision_choices_and_free_form():
    mc = {"id": "5", "question": "<image1>\nWhich cube is it?", "options": ["1", "2", "3", "4", "5"], "answer": "D",
          "decoded_image": b"png", "subject": "solid geometry"}
    free = {"id": "6", "question": "How many dots?", "options": [], "answer": "14", "decoded_image": b"png"}
    data, scored = _score("mathvision", [mc], ["\\boxed{D}", "Answer: 4", "\\boxed{E}"])
    assert "<image1>" not in data.items[0].question and "D. 4" in data.items[0].question
    _check(scored, [(1.0, "rule", "boxed"), (1.0, "rule", "answer_line"), (0.0, "rule", "boxed")])
    _, scored = _score("mathvision", [free], ["\\boxed{14}", "\\boxed{15}"])
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "boxed")])


def test_mathvista_choice_text_and_precision():
    mc = {"pid": "1", "question": "What fraction is blue?", "choices": ["3/11", "8/11", "6/11", "3/5"],
          "answer": "8/11", "question_type": "multi_choice", "answer_type": "text", "precision": None, "decoded_image": b"p"}
    flt = {"pid": "2", "question": "What is the fraction of females?", "choices": None, "answer": "1.2",
           "question_type": "free_form", "answer_type": "float", "precision": 1.0, "decoded_image": b"p"}
    integer = {"pid": "3", "question": "Volume of the cup?", "choices": None, "answer": "1000", "unit": "g",
               "question_type": "free_form", "answer_type": "integer", "precision": None, "decoded_image": b"p"}
    lst = {"pid": "4", "question": "Peak years?", "choices": None, "answer": "[2007, 2008]",
           "question_type": "free_form", "answer_type": "list", "precision": None, "decoded_image": b"p"}
    data, scored = _score("mathvista", [mc], ["\\boxed{8/11}", "\\boxed{B}", "(A) 3/11"])
    assert data.items[0].gold == "B" and "(B) 8/11" in data.items[0].question
    _check(scored, [(1.0, "rule", "boxed"), (1.0, "rule", "boxed"), (0.0, "rule", "option_letter")])
    data, scored = _score("mathvista", [flt], ["\\boxed{1.23}", "\\boxed{1.3}", "Answer: 1.2"])
    assert "1 decimal place" in data.items[0].question
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "boxed"), (1.0, "rule", "answer_line")])
    _, scored = _score("mathvista", [integer], ["Answer: 1,000 g", "\\boxed{999}"])
    _check(scored, [(1.0, "rule", "answer_line"), (0.0, "rule", "boxed")])
    _, scored = _score("mathvista", [lst], ["\\boxed{[2007, 2008]}", "\\boxed{[2007, 2009]}"])
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "boxed")])


def test_mmstar_inline_options():
    row = {"index": 3, "question": "What animal is shown?\nOptions: A: a cat, B: a dog, C: a bird, D: a fish",
           "answer": "B", "image": b"png", "category": "coarse perception", "l2_category": "x"}
    data, scored = _score("mmstar", [row], ["It is a dog.", "\\boxed{A}", "Answer: B", "Either a cat or a dog."])
    assert data.items[0].choices == ["a cat", "a dog", "a bird", "a fish"]
    _check(scored, [(1.0, "rule", "option_text"), (0.0, "rule", "boxed"), (1.0, "rule", "answer_line"),
                    (0.0, "unparsed", "none")])


def test_toy_same_answer_and_family_breakdown():
    rows = [{"id": "t1", "question": "How many red circles?", "answer": "3", "image": b"p", "family": "counting", "qtype": "numerical"},
            {"id": "t2", "question": "Is there a blue square?", "answer": "yes", "image": b"p", "family": "existence", "qtype": "yes/no"}]
    data = _data("toy", rows)
    responses = {"t1": "<think>I count 3.</think> \\boxed{three}", "t2": "no"}
    scored = score_responses(data, responses)
    _check(scored, [(1.0, "rule", "boxed"), (0.0, "rule", "direct")])
    summary = summarize(data, scored, "never", None)
    assert summary["breakdown"] == {"counting": {"n": 1, "accuracy": 100.0}, "existence": {"n": 1, "accuracy": 0.0}}
    assert get_benchmark("toy").default_prompt_style == "compact"


def test_hallusionbench_three_metrics_hand_computed():
    def row(cat, sub, set_id, fig, q, gold):
        return {"category": cat, "subcategory": sub, "set_id": set_id, "figure_id": fig, "question_id": q,
                "visual_input": "1", "question": f"Is claim {q} true?", "gt_answer": gold, "gt_answer_details": "",
                "image": b"png"}

    rows = [row("VD", "illusion", 0, 0, 0, "1"), row("VD", "illusion", 0, 0, 1, "0"),
            row("VD", "illusion", 0, 1, 0, "0"), row("VD", "illusion", 0, 1, 1, "1"),
            row("VS", "chart", 1, 1, 0, "1"), row("VS", "chart", 1, 2, 0, "0")]
    responses = ["Yes, it is.", "\\boxed{No}", "Answer: yes", "yes", "\\boxed{yes}", "It depends on the scale."]
    data = _data("hallusionbench", rows)
    scored = score_responses(data, {item.id: r for item, r in zip(data.items, responses)})
    _check(scored, [(1.0, "rule", "yes_no"), (1.0, "rule", "boxed"), (0.0, "rule", "answer_line"),
                    (1.0, "rule", "yes_no"), (1.0, "rule", "boxed"), (0.0, "unparsed", "none")])
    assert data.items[0].kind == YESNO
    metrics = summarize(data, scored, "never", None)["metrics"]
    # 4 of 6 correct; figures: (VD,0,0) ok, (VD,0,1) not, (VS,1,1) ok, (VS,1,2) not; questions: only VD q1 ok on all figures.
    assert metrics["aAcc"] == pytest.approx(400 / 6)
    assert metrics["fAcc"] == pytest.approx(50.0)
    assert metrics["qAcc"] == pytest.approx(100 / 3)
