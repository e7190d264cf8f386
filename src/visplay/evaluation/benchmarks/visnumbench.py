"""VisNumBench (1,913 questions): visual number sense (angle, length, scale, quantity, depth, area, volume).

Layout (``GML-FMGroup/VisNumBench``, split train): class, id ("101_Scale"), question, option
("(a) 30° (b) 60° (c) 90° (d) 120°"), answer ("(c) 90°"), task_class, Attributes, image. Every question is
multiple choice; the gold letter is the answer's "(x)" prefix (the official script compares exactly that).
"""

from __future__ import annotations

import re

from visplay.evaluation.base import CHOICE, Benchmark, Item
from visplay.evaluation.rules import gold_letter

_OPTION = re.compile(r"\(([a-hA-H])\)\s*(.*?)(?=\s*\([a-hA-H]\)\s|\s*$)", re.DOTALL)


def parse_visnum_options(option: str) -> tuple[list[str], list[str]]:
    """Letters (upper case) and texts of a VisNumBench option string.

    >>> parse_visnum_options("(a) (1 h, 2 h) (b) 3 hours (c) 4")
    (['A', 'B', 'C'], ['(1 h, 2 h)', '3 hours', '4'])
    """
    found = _OPTION.findall(option or "")
    return [letter.upper() for letter, _ in found], [text.strip() for _, text in found]


class VisNumBench(Benchmark):
    name = "visnumbench"
    title = "VisNumBench"
    sources = "GML-FMGroup/VisNumBench (split train: Synthetic + Real)"
    official_sizes = {"all": 1913}
    native_columns = ("question", "option", "answer", "image")
    combined_names = ("visnumbench",)

    def item_from_row(self, row: dict, index: int) -> Item:
        option = str(row.get("option") or "")
        letters, choices = parse_visnum_options(option)
        answer = str(row.get("answer") or "").strip()
        question = str(row.get("question") or "").strip()
        if option:
            question = f"{question}\nOptions: {option}"
        item = Item(id=str(row.get("id") or f"visnumbench_{index}"), question=question, gold=answer,
                    images=row.get("image"), gold_text=answer,
                    meta={"category": row.get("Attributes"), "task_class": row.get("task_class"), "class": row.get("class")})
        letter = gold_letter(answer, letters)
        if letter:
            item.kind, item.gold, item.letters, item.choices = CHOICE, letter, letters, choices
        return item

    def item_from_combined(self, row: dict, index: int) -> Item:
        item = super().item_from_combined(row, index)
        letters, choices = parse_visnum_options(item.question)
        letter = gold_letter(str(row.get("answer") or ""), letters)
        if letter:
            item.kind, item.gold, item.letters, item.choices = CHOICE, letter, letters, choices
        return item
