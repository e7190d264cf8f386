"""MMStar (1,500 questions): vision-indispensable multiple choice; the authors' validation set.

Layout (``Lin-Chen/MMStar``, split val): index, question (ends with "Options: A: ..., B: ..."), image,
answer (a letter), category, l2_category, meta_info.
"""

from __future__ import annotations

from visplay.evaluation.base import CHOICE, LETTERS, Benchmark, Item
from visplay.evaluation.rules import gold_letter, parse_options


class MMStar(Benchmark):
    name = "mmstar"
    title = "MMStar"
    sources = "Lin-Chen/MMStar (split val)"
    official_sizes = {"val": 1500}
    default_split = "val"
    native_columns = ("question", "answer", "image", "category")
    combined_names = ("mmstar",)

    def item_from_row(self, row: dict, index: int) -> Item:
        question = str(row.get("question") or "").strip()
        answer = str(row.get("answer") or "").strip()
        letters, choices = parse_options(question)
        item = Item(id=str(row.get("index", f"mmstar_{index}")), question=question, gold=answer,
                    images=row.get("image"), gold_text=answer,
                    meta={"category": row.get("category"), "l2_category": row.get("l2_category")})
        letter = gold_letter(answer, letters or LETTERS[:4])
        if letter:
            item.kind, item.gold = CHOICE, letter
            item.letters, item.choices = letters or LETTERS[:4], choices
            if choices and letter in letters:
                item.gold_text = f"{letter}. {choices[letters.index(letter)]}"
        return item
