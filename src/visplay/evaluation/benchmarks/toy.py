"""The toy benchmark: held-out labeled questions on the toy world's rendered scenes.

Layout (``visplay world benchmark --out FILE``): id, question, answer, image (PNG bytes), family, qtype.
Scored with ``same_answer`` (the reward's equivalence), with accuracy per question family, and the
toy world's blind baseline (answering from question priors alone) and chance level beside it.
"""

from __future__ import annotations

from visplay.evaluation.base import Benchmark, Item, Scored


class Toy(Benchmark):
    name = "toy"
    title = "Toy"
    sources = "visplay world benchmark --out FILE"
    native_columns = ("question", "answer", "image")
    combined_names = ("toy",)
    default_prompt_style = "compact"
    # Tiny models answer in a few tokens with the compact prompt; a long budget only costs CPU time.
    max_new_tokens_by_style = {"paper": 4096, "compact": 48}
    default_max_new_tokens = 48

    def item_from_row(self, row: dict, index: int) -> Item:
        answer = str(row.get("answer") if row.get("answer") is not None else "").strip()
        return Item(id=str(row.get("id", f"toy_{index}")), question=str(row.get("question") or "").strip(),
                    gold=answer, images=row.get("image"), gold_text=answer,
                    meta={"category": row.get("family"), "qtype": row.get("qtype")})

    def aggregate(self, scored: list[Scored]) -> dict:
        result = super().aggregate(scored)
        if scored:
            try:
                from visplay.world.benchmark import blind_baseline

                rows = [{"question": s.item.question, "answer": s.item.golds[0], "family": s.item.meta.get("category")}
                        for s in scored]
                blind = blind_baseline(rows)
                result["metrics"] = {"blind": 100.0 * blind.accuracy, "chance": 100.0 * blind.chance}
            except (ImportError, ValueError, KeyError):  # rows outside the toy grammar: no baseline
                pass
        return result
