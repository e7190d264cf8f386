"""MATH-Vision (test 3,040 / testmini 304): competition math problems with diagrams.

Layout (``MathLLMs/MathVision``): id, question (may hold an ``<image1>`` placeholder), options (a list,
empty for free-form), image (a relative path), decoded_image (the image itself), answer (an option letter
or a value), solution, level, subject. Options are appended to the question as "A. ..." lines.
"""

from __future__ import annotations

import re

from visplay.evaluation.base import CHOICE, LETTERS, Benchmark, Item
from visplay.evaluation.rules import gold_letter, parse_list


class MathVision(Benchmark):
    name = "mathvision"
    title = "MATH-Vision"
    sources = "MathLLMs/MathVision (split test, or testmini)"
    official_sizes = {"test": 3040, "testmini": 304}
    default_split = "test"
    native_columns = ("question", "options", "answer")
    combined_names = ("mathvision", "mathv")

    def item_from_row(self, row: dict, index: int) -> Item:
        question = re.sub(r"<image\d*>", "", str(row.get("question") or "")).strip()
        options = [str(o) for o in parse_list(row.get("options"))]
        if options:
            question += "\nChoices:\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        answer = str(row.get("answer") or "").strip()
        image = row.get("decoded_image") if row.get("decoded_image") is not None else row.get("image")
        item = Item(id=str(row.get("id", f"mathvision_{index}")), question=question, gold=answer, images=image,
                    gold_text=answer, meta={"category": row.get("subject"), "level": row.get("level")})
        letter = gold_letter(answer, LETTERS[: len(options)]) if options else None
        if letter:
            item.kind, item.gold, item.letters, item.choices = CHOICE, letter, LETTERS[: len(options)], options
            item.gold_text = f"{letter}. {options[LETTERS.index(letter)]}"
        return item
