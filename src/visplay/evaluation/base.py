"""The benchmark interface: load, prompt, extract, score, aggregate (the rules themselves: ``rules.py``).

Rule order for one response (after removing ``<think>`` blocks):
1. the last brace-balanced ``\\boxed{...}``;
2. else the last "Answer: ..." / "Final answer: ..." line;
3. multiple choice only: the whole reply being a letter, an "answer is (X)" phrase, exactly one distinct
   bracketed letter "(X)", or exactly one option text mentioned;
4. yes/no questions only: the reply's first word, or exactly one of "yes"/"no" mentioned;
5. open questions only: a reply that is one short line is taken as the answer.
Nothing is ever guessed: a reply no rule understands is "unparsed", scored 0 and counted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from visplay.evaluation.items import (  # noqa: F401  (the interface's types, imported from here by benchmarks)
    CHOICE,
    JUDGE,
    JUDGED,
    LETTERS,
    OPEN,
    RULE,
    UNPARSED,
    UNSCORED,
    YESNO,
    Extraction,
    Item,
    Scored,
)
from visplay.evaluation.rules import (
    clean_question,
    direct_answer,
    final_answer,
    find_option,
    gold_letter,
    match_option,
    parse_options,
    same_text,
    strip_think,
    yes_no,
)


class Benchmark:
    """One benchmark: how to read its rows, prompt for an item, extract and score answers, aggregate.

    Subclasses set the class attributes and implement :meth:`item_from_row` for the benchmark's own
    Hugging Face layout; the authors' combined layout (problem, answer, images, file_name) is handled
    here. Override :meth:`score` or :meth:`aggregate` only where the benchmark's protocol differs.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # Where the files come from (documentation and error messages).
    sources: ClassVar[str] = ""
    # Official sizes (split or variant -> row count); a loaded file of another size triggers a warning.
    official_sizes: ClassVar[dict[str, int]] = {}
    # When --data is a folder of parquet shards, files of this split are read.
    default_split: ClassVar[str | None] = None
    # Columns that identify the benchmark's own layout.
    native_columns: ClassVar[tuple[str, ...]] = ("question", "answer")
    # file_name values (lowercase, letters and digits only) selecting this benchmark in the combined layout.
    combined_names: ClassVar[tuple[str, ...]] = ()
    default_prompt_style: ClassVar[str] = "paper"
    # Generation budget per prompt style, used when --max-new-tokens is not given: the paper prompt asks for
    # reasoning (the authors' reasoner was trained with 4096-token responses); the compact prompt asks
    # tiny toy-world models for a short thought and a box (15-35 tokens), where 4096 only burns CPU time.
    max_new_tokens_by_style: ClassVar[dict[str, int]] = {"paper": 4096, "compact": 64}
    # The budget for the benchmark's default prompt style.
    default_max_new_tokens: ClassVar[int] = 4096

    def default_budget(self, prompt_style: str) -> int:
        """New-token budget for ``prompt_style`` when none is given."""
        return self.max_new_tokens_by_style.get(prompt_style, self.default_max_new_tokens)
    # "binary" (1/0 per item) or "partial" (0..1 credit, MM-Vet).
    grading: ClassVar[str] = "binary"

    # ---- load ----------------------------------------------------------------------------------
    def filter_rows(self, rows: list[dict], subset: str | None) -> tuple[list[dict], str | None]:
        """Keep the rows of the evaluated variant; returns (rows, variant name for the size check)."""
        if subset:
            from visplay.errors import UserError

            raise UserError(f"{self.name} has no subsets (got --subset {subset!r})")
        return rows, None

    def item_from_row(self, row: dict, index: int) -> Item:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_from_combined(self, row: dict, index: int) -> Item:
        """An item from the authors' combined layout: problem, answer, images (list), file_name."""
        problem = str(row.get("problem") or row.get("question") or "")
        question = clean_question(problem)
        answer = row.get("answer")
        answer = "" if answer is None else str(answer).strip()
        images = row.get("images", row.get("image"))
        letters, choices = parse_options(question)
        item = Item(id=str(row.get("id", row.get("pid", index))), question=question, gold=answer,
                    images=images, gold_text=answer)
        letter = gold_letter(answer, letters or LETTERS[:5]) if len(answer) <= 3 or letters else None
        # Without options in the text, only a capital letter reads as an option ("x" may be a value).
        if letter and (letters or (len(answer.strip("()")) == 1 and answer.strip("()").isupper())):
            item.kind, item.gold = CHOICE, letter
            item.letters = letters or LETTERS[: max(4, LETTERS.index(letter) + 1)]
            item.choices = choices
        elif answer.lower() in ("yes", "no"):
            item.kind, item.gold = YESNO, answer.lower()
        return item

    # ---- prompt --------------------------------------------------------------------------------
    def prompt(self, item: Item, style: str) -> list[dict]:
        """The reasoner's chat messages for ``item``: one image part per image, then the instruction text.

        Built from :func:`visplay.selfplay.prompts.reasoner_messages` (same wording as training); for k
        images its single image part is repeated k times.
        """
        from visplay.engines.messages import is_image_part
        from visplay.selfplay.prompts import reasoner_messages

        messages = reasoner_messages(item.question, style=style)
        n = len(item.images)
        if n == 1:
            return messages
        out = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                new_content = []
                for part in content:
                    if is_image_part(part):
                        new_content.extend({"type": "image"} for _ in range(n))
                        n = 0  # only the first image part is expanded
                    else:
                        new_content.append(part)
                message = dict(message, content=new_content)
            out.append(message)
        return out

    # ---- extract -------------------------------------------------------------------------------
    def extract(self, item: Item, response: str) -> Extraction:
        """The answer the rules find in ``response`` (rules in the module docstring)."""
        text = strip_think(response)
        found = final_answer(text)
        if item.kind == CHOICE:
            if found.answer is not None:
                letter = match_option(found.answer, item.letters, item.choices)
                return Extraction(letter or found.answer, found.how)
            return find_option(text, item.letters, item.choices)
        if item.kind == YESNO:
            if found.answer is not None:
                yn = yes_no(found.answer, whole_reply=False)
                return Extraction(yn or found.answer, found.how)
            yn = yes_no(text, whole_reply=True)
            return Extraction(yn, "yes_no") if yn else Extraction(None, "none")
        if found.answer is not None:
            return found
        direct = direct_answer(text)
        return Extraction(direct, "direct") if direct else Extraction(None, "none")

    # ---- score ---------------------------------------------------------------------------------
    def score(self, item: Item, answer: str) -> float | None:
        """1.0 / 0.0 for an extracted answer, or ``None`` when rules cannot decide (a judge must)."""
        if item.kind == JUDGED:
            return None
        if item.kind == CHOICE:
            letter = match_option(answer, item.letters, item.choices) or answer.strip().upper()
            return float(letter in {g.upper() for g in item.golds})
        if item.kind == YESNO:
            return float((yes_no(answer, whole_reply=False) or answer.strip().lower()) in item.golds)
        return float(any(same_text(answer, g) for g in item.golds))

    def decided(self, item: Item, answer: str) -> bool:
        """Whether the rules' verdict on ``answer`` is final: an answer that names no option (or is
        neither yes nor no) is scored wrong by rules, but ``--judge fallback`` sends it to the judge."""
        if item.kind == CHOICE:
            return match_option(answer, item.letters, item.choices) is not None
        if item.kind == YESNO:
            return yes_no(answer, whole_reply=False) is not None
        return True

    # ---- aggregate -----------------------------------------------------------------------------
    def category(self, item: Item) -> str | None:
        """The breakdown key of an item (subject, family, ...), or ``None``."""
        return item.meta.get("category")

    def aggregate(self, scored: list[Scored]) -> dict:
        """n, accuracy (%), unparsed count and rate, judged count, and a per-category breakdown."""
        n = len(scored)
        unscored = sum(1 for s in scored if s.score is None)
        total = sum(s.score or 0.0 for s in scored)
        result: dict[str, Any] = {
            "n": n,
            "accuracy": None if unscored or n == 0 else 100.0 * total / n,
            "correct": total,
            "unparsed": sum(1 for s in scored if s.scored_by == UNPARSED),
            "judged": sum(1 for s in scored if s.scored_by == JUDGE),
            "unscored": unscored,
        }
        result["unparsed_rate"] = result["unparsed"] / n if n else 0.0
        groups: dict[str, list[Scored]] = defaultdict(list)
        for s in scored:
            key = self.category(s.item)
            if key is not None:
                groups[str(key)].append(s)
        if groups and not unscored:
            result["breakdown"] = {
                key: {"n": len(group), "accuracy": 100.0 * sum(s.score or 0.0 for s in group) / len(group)}
                for key, group in sorted(groups.items())
            }
        return result
