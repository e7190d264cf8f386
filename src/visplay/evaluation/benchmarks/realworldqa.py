"""RealWorldQA (765 questions): real-world spatial understanding, mostly driving scenes.

Layout (``lmms-lab/RealWorldQA`` split test, or ``xai-org/RealworldQA``): image, question, answer.
Questions carry their options as "A. ..." lines and end with a direct-answer instruction ("Please answer
directly with only the letter ..."), which is removed here because the reasoner prompt asks for
reasoning and a boxed answer. Answers are an option letter, or a word or number ("three" = "3").
"""

from __future__ import annotations

import re

from visplay.evaluation.base import CHOICE, Benchmark, Item
from visplay.evaluation.rules import gold_letter, parse_options, same_text

_DIRECT = re.compile(r"\s*Please answer directly[^\n]*$", re.IGNORECASE | re.MULTILINE)
_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10"}


class RealWorldQA(Benchmark):
    name = "realworldqa"
    title = "RealWorldQA"
    sources = "lmms-lab/RealWorldQA (split test) or xai-org/RealworldQA"
    official_sizes = {"test": 765}
    default_split = "test"
    native_columns = ("question", "answer", "image")
    combined_names = ("realworldqa",)

    def item_from_row(self, row: dict, index: int) -> Item:
        question = _DIRECT.sub("", str(row.get("question") or "")).strip()
        answer = str(row.get("answer") or "").strip()
        item = Item(id=str(row.get("id", row.get("index", f"realworldqa_{index}"))), question=question,
                    gold=answer, images=row.get("image"), gold_text=answer)
        letters, choices = parse_options(question)
        letter = gold_letter(answer, letters) if letters and len(answer) <= 3 else None
        if letter:
            item.kind, item.gold, item.letters, item.choices = CHOICE, letter, letters, choices
            item.gold_text = f"{letter}. {choices[letters.index(letter)]}"
        return item

    def item_from_combined(self, row: dict, index: int) -> Item:
        item = super().item_from_combined(row, index)
        item.question = _DIRECT.sub("", item.question).strip()
        return item

    def score(self, item: Item, answer: str) -> float | None:
        if item.kind != CHOICE:
            words = _NUMBER_WORDS.get(answer.strip().lower().rstrip("."))
            if words is not None and any(same_text(words, g) for g in item.golds):
                return 1.0
        return super().score(item, answer)
