"""MM-Vet (218 questions): open-ended integrated capabilities; scored only by an LLM judge.

Layout (``lmms-lab/MMVet``, split test; also ``whyu/mm-vet``): question_id ("v1_0"), image, question,
answer (may join several accepted elements with ``<AND>`` / ``<OR>``), capability ("rec,ocr,...").
Rules cannot grade free-form explanations, so without a judge MM-Vet reports N/A. The judge gives 0.0 to
1.0 partial credit (MM-Vet's protocol); the authors' script asked its judge for 1/0 here too.
"""

from __future__ import annotations

from visplay.evaluation.base import JUDGED, Benchmark, Item


class MMVet(Benchmark):
    name = "mmvet"
    title = "MM-Vet"
    sources = "lmms-lab/MMVet (split test) or whyu/mm-vet"
    official_sizes = {"test": 218}
    default_split = "test"
    native_columns = ("question", "answer", "image")
    combined_names = ("mmvet",)
    grading = "partial"

    def item_from_row(self, row: dict, index: int) -> Item:
        answer = str(row.get("answer") or "")
        capability = row.get("capability")
        if isinstance(capability, (list, tuple)):
            capability = ",".join(str(c) for c in capability)
        return Item(
            id=str(row.get("question_id") or row.get("id") or f"mmvet_{index}"),
            question=str(row.get("question") or "").strip(),
            gold=answer,
            images=row.get("image"),
            kind=JUDGED,
            gold_text=answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> "),
            meta={"capability": capability},
        )

    def item_from_combined(self, row: dict, index: int) -> Item:
        item = super().item_from_combined(row, index)
        item.kind, item.letters, item.choices = JUDGED, [], []
        item.gold = item.gold_text = str(row.get("answer") or "")
        return item
