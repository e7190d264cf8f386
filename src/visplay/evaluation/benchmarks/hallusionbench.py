"""HallusionBench (image questions: 951): yes/no questions on original and edited figures.

Layout (``lmms-lab/HallusionBench``, split image): category ("VD" visual dependent / "VS" visual
supplement), subcategory, visual_input, set_id, figure_id, question_id, question, gt_answer ("1" = yes,
"0" = no), gt_answer_details, image. Metrics (HallusionBench's definitions):
- aAcc: accuracy over all questions (the headline number, as in the paper's table);
- fAcc: share of figures (category, subcategory, set_id, figure_id) whose questions are all correct;
- qAcc: share of questions (category, subcategory, set_id, question_id) answered correctly on every figure.
An unparsed reply counts as wrong in all three. Rows without an image (visual_input "0") are skipped.
"""

from __future__ import annotations

from collections import defaultdict

from visplay.evaluation.base import YESNO, Benchmark, Item, Scored


class HallusionBench(Benchmark):
    name = "hallusionbench"
    title = "HallusionBench"
    sources = "lmms-lab/HallusionBench (split image)"
    official_sizes = {"image": 951}
    default_split = "image"
    native_columns = ("question", "gt_answer")
    combined_names = ("hallusionbench", "hallusion")

    def filter_rows(self, rows: list[dict], subset: str | None) -> tuple[list[dict], str | None]:
        rows, _ = super().filter_rows(rows, subset)
        return [r for r in rows if str(r.get("visual_input", "1")) != "0"], None

    def item_from_row(self, row: dict, index: int) -> Item:
        gold = "yes" if str(row.get("gt_answer")).strip() in ("1", "yes", "Yes", "True") else "no"
        keys = {k: str(row.get(k)) for k in ("category", "subcategory", "set_id", "figure_id", "question_id")}
        has_keys = all(row.get(k) is not None for k in keys)
        item_id = "_".join(keys.values()) if has_keys else f"hallusionbench_{index}"
        details = str(row.get("gt_answer_details") or "").strip()
        return Item(id=item_id, question=str(row.get("question") or "").strip(), gold=gold,
                    images=row.get("image"), kind=YESNO, gold_text=f"{gold} ({details})" if details else gold,
                    meta={"category": row.get("category"), "groups": keys if has_keys else None})

    def item_from_combined(self, row: dict, index: int) -> Item:
        item = super().item_from_combined(row, index)
        answer = str(row.get("answer") or "").strip().lower()
        item.kind, item.letters, item.choices = YESNO, [], []
        item.gold = {"1": "yes", "0": "no", "true": "yes", "false": "no"}.get(answer, answer)
        item.gold_text = item.gold
        return item

    def aggregate(self, scored: list[Scored]) -> dict:
        result = super().aggregate(scored)
        result["metrics"] = hallusion_metrics(scored)
        return result


def hallusion_metrics(scored: list[Scored]) -> dict:
    """aAcc, fAcc, qAcc in percent (fAcc and qAcc ``None`` when the rows lack the group keys)."""
    n = len(scored)
    metrics: dict = {"aAcc": 100.0 * sum(s.score or 0.0 for s in scored) / n if n else None, "fAcc": None, "qAcc": None}
    if not n or any(s.item.meta.get("groups") is None for s in scored):
        return metrics
    figures: dict[tuple, list[bool]] = defaultdict(list)
    questions: dict[tuple, list[bool]] = defaultdict(list)
    for s in scored:
        g = s.item.meta["groups"]
        ok = (s.score or 0.0) >= 1.0
        if not (g["category"] == "VS" and g["figure_id"] == "0"):  # a VS question without its figure
            figures[(g["category"], g["subcategory"], g["set_id"], g["figure_id"])].append(ok)
        questions[(g["category"], g["subcategory"], g["set_id"], g["question_id"])].append(ok)
    metrics["fAcc"] = 100.0 * sum(all(v) for v in figures.values()) / len(figures) if figures else None
    metrics["qAcc"] = 100.0 * sum(all(v) for v in questions.values()) / len(questions) if questions else None
    return metrics
