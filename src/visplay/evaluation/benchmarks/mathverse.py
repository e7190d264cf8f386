"""MathVerse (testmini, vision-only version: 788 questions): math problems whose text lives in the diagram.

Layout (``AI4Math/MathVerse`` config testmini, 3,940 rows over five versions; or lmms-lab's
``CaraJ/MathVerse-lmmseval`` split vision_only): sample_index, problem_index, problem_version ("Vision
Only", "Text Dominant", ...), question, image, answer, question_type ("multi-choice" / "free-form"),
query_cot. Only "Vision Only" rows are kept unless ``--subset all`` (or another version name) is given.
A vision-only row has no question text: the prompt is MathVerse's own chain-of-thought query, which tells
the model the question is in the image. Published MathVerse numbers use a judge; rules here are exact
letter / ``same_answer`` matches and will read lower on free-form answers with units.
"""

from __future__ import annotations

import re

from visplay.errors import UserError
from visplay.evaluation.base import CHOICE, LETTERS, Benchmark, Item
from visplay.evaluation.rules import gold_letter, parse_options

_VISION_ONLY_FALLBACK = "Answer the question shown in the image (give the option letter if it has options)."


def _version(value: str) -> str:
    return re.sub(r"[^a-z]", "", str(value).lower())


class MathVerse(Benchmark):
    name = "mathverse"
    title = "MathVerse"
    sources = "AI4Math/MathVerse (config testmini) or CaraJ/MathVerse-lmmseval (vision_only)"
    official_sizes = {"testmini vision-only": 788, "testmini all versions": 3940}
    default_split = "testmini"
    native_columns = ("question", "answer", "image")
    combined_names = ("mathverse", "mathversevisiononly", "mathversetestmini")

    def filter_rows(self, rows: list[dict], subset: str | None) -> tuple[list[dict], str | None]:
        if not rows or "problem_version" not in rows[0]:
            return rows, subset
        wanted = _version(subset or "vision only")
        if wanted == "all":
            return rows, "all"
        kept = [r for r in rows if _version(r.get("problem_version", "")) == wanted]
        if not kept:
            versions = sorted({str(r.get("problem_version")) for r in rows})
            raise UserError(
                f"mathverse: no rows of version {subset or 'Vision Only'!r} (versions: {', '.join(versions)}; or 'all')"
            )
        return kept, wanted

    def item_from_row(self, row: dict, index: int) -> Item:
        question = str(row.get("question") or "").strip()
        if not question:
            question = str(row.get("query_cot") or "").strip() or _VISION_ONLY_FALLBACK
        answer = str(row.get("answer") or "").strip()
        item = Item(id=str(row.get("sample_index", f"mathverse_{index}")), question=question, gold=answer,
                    images=row.get("image"), gold_text=answer,
                    meta={"category": row.get("problem_version"), "question_type": row.get("question_type")})
        if str(row.get("question_type", "")).startswith("multi"):
            letters, choices = parse_options(question)
            letter = gold_letter(answer, letters or LETTERS[:8])
            if letter:
                item.kind, item.gold = CHOICE, letter
                item.letters = letters or LETTERS[: max(4, LETTERS.index(letter) + 1)]
                item.choices = choices
        return item
