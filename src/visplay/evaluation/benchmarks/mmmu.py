"""MMMU (validation, 900 questions): college-level multi-discipline questions, up to 7 images each.

Layout (``MMMU/MMMU`` per-subject configs, or ``lmms-lab/MMMU``): id ("validation_Art_Theory_12"),
question, options (a Python-list string), answer (a letter; for open questions a value or a list
string), question_type ("multiple-choice" / "open"), image_1 ... image_7. Questions and options refer to
images by ``<image k>``; the images are sent in order of k and the placeholders stay in the text.
Scoring: option letter for multiple choice; ``same_answer`` against any accepted value for open questions
(MMMU's own script accepts a normalised substring match, slightly looser).
"""

from __future__ import annotations

import re

from visplay.evaluation.base import CHOICE, LETTERS, Benchmark, Item
from visplay.evaluation.rules import parse_list


class MMMU(Benchmark):
    name = "mmmu"
    title = "MMMU"
    sources = "MMMU/MMMU (30 subject configs) or lmms-lab/MMMU, split validation"
    official_sizes = {"validation": 900}
    default_split = "validation"
    native_columns = ("question", "options", "answer", "image_1")
    combined_names = ("mmmu", "mmmuval", "mmmuvalidation")

    def item_from_row(self, row: dict, index: int) -> Item:
        question = str(row.get("question") or "").strip()
        options = [str(o) for o in parse_list(row.get("options"))]
        qtype = str(row.get("question_type") or ("multiple-choice" if options else "open"))
        text = question
        if qtype == "multiple-choice" and options:
            text = question + "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        numbers = sorted({int(k) for k in re.findall(r"<image (\d+)>", text)})
        if not numbers:
            numbers = [k for k in range(1, 8) if row.get(f"image_{k}") is not None]
        images = [row.get(f"image_{k}") for k in numbers if row.get(f"image_{k}") is not None]
        answer = row.get("answer")
        is_list = isinstance(answer, str) and answer.strip().startswith("[")
        gold = [str(a) for a in parse_list(answer)] if is_list else str(answer)
        if isinstance(gold, list) and len(gold) == 1:
            gold = gold[0]
        item_id = str(row.get("id") or f"mmmu_{index}")
        item = Item(id=item_id, question=text, gold=gold, images=images,
                    gold_text=gold if isinstance(gold, str) else " or ".join(gold), meta={"category": _subject(item_id)})
        if qtype == "multiple-choice" and options:
            item.kind = CHOICE
            item.letters = LETTERS[: len(options)]
            item.choices = options
            golds = [gold] if isinstance(gold, str) else gold
            item.gold_text = " or ".join(f"{g}. {options[LETTERS.index(g)]}" if g in item.letters else g for g in golds)
        return item


def _subject(item_id: str) -> str | None:
    """"validation_Art_Theory_12" -> "Art_Theory".

    >>> _subject("validation_Art_Theory_12")
    'Art_Theory'
    """
    m = re.match(r"^[a-z]+_(.+?)_\d+$", item_id)
    return m.group(1) if m else None
