"""MathVista (testmini: 1,000 questions): math reasoning in visual contexts.

Layout (``AI4Math/MathVista``, split testmini): pid, question, image (a relative path), decoded_image,
choices (a list, or null for free-form), unit, precision, answer (for multiple choice the option TEXT),
question_type ("multi_choice" / "free_form"), answer_type ("text", "integer", "float", "list"), metadata.
Free-form numbers are compared as MathVista does: integers as integers, floats rounded to the item's
precision, lists element by element. MathVista's own script lets GPT extract the answer first; here the
rules extract it (boxed / Answer: line).
"""

from __future__ import annotations

from visplay.evaluation.base import CHOICE, LETTERS, Benchmark, Item
from visplay.evaluation.rules import equal_at_precision, parse_list, same_text, to_number


class MathVista(Benchmark):
    name = "mathvista"
    title = "MathVista"
    sources = "AI4Math/MathVista (split testmini)"
    official_sizes = {"testmini": 1000}
    default_split = "testmini"
    native_columns = ("question", "answer", "question_type")
    combined_names = ("mathvista", "mathvistatestmini")

    def item_from_row(self, row: dict, index: int) -> Item:
        question = str(row.get("question") or "").strip()
        choices = [str(c) for c in parse_list(row.get("choices"))]
        answer = str(row.get("answer") or "").strip()
        answer_type = str(row.get("answer_type") or "text")
        precision = row.get("precision")
        precision = int(precision) if precision not in (None, "") and precision == precision else None
        metadata = row.get("metadata") or {}
        if choices:
            question += "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        elif answer_type == "float" and precision is not None:
            question += f"\nAnswer with a number with {precision} decimal place{'s' if precision != 1 else ''}."
        elif answer_type == "integer":
            question += "\nAnswer with an integer."
        elif answer_type == "list":
            question += "\nAnswer with a Python list, e.g. [1, 2, 3]."
        image = row.get("decoded_image") if row.get("decoded_image") is not None else row.get("image")
        item = Item(id=str(row.get("pid", f"mathvista_{index}")), question=question, gold=answer, images=image,
                    gold_text=answer,
                    meta={"answer_type": answer_type, "precision": precision, "unit": row.get("unit"),
                          "category": metadata.get("category") if isinstance(metadata, dict) else None})
        if choices and str(row.get("question_type", "multi_choice")) == "multi_choice":
            letters = LETTERS[: len(choices)]
            hits = [letters[i] for i, c in enumerate(choices) if c.strip() == answer]
            if hits:
                item.kind, item.gold, item.letters, item.choices = CHOICE, hits[0], letters, choices
                item.gold_text = f"({hits[0]}) {answer}"
        return item

    def score(self, item: Item, answer: str) -> float | None:
        if item.kind == CHOICE:
            return super().score(item, answer)
        answer_type = item.meta.get("answer_type")
        gold = item.golds[0]
        if answer_type == "integer":
            a, b = to_number(answer), to_number(gold)
            if a is not None and b is not None:
                return float(int(a) == int(b))
        if answer_type == "float":
            same = equal_at_precision(answer, gold, item.meta.get("precision"))
            if same is not None:
                return float(same)
        if answer_type == "list":
            pred, ref = parse_list(answer.strip()), parse_list(gold)
            if len(pred) == len(ref) and ref:
                return float(all(same_text(str(p), str(r)) for p, r in zip(pred, ref)))
        return super().score(item, answer)
