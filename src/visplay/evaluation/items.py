"""What a benchmark is reduced to: its items, an extracted answer, a scored prediction, and their kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How an item is scored: an option letter, yes/no, a free-form answer, or only by a judge (MM-Vet).
CHOICE, YESNO, OPEN, JUDGED = "choice", "yesno", "open", "judged"
LETTERS = [chr(ord("A") + i) for i in range(26)]

# How a prediction was scored (the ``scored_by`` field of predictions.jsonl).
RULE, JUDGE, UNPARSED, UNSCORED = "rule", "judge", "unparsed", "unscored"


@dataclass
class Item:
    """One benchmark question, in the form every benchmark is reduced to.

    Attributes:
        id: unique id within the benchmark (the release's own id where it has one).
        question: text placed in the reasoner prompt's ``{question}`` (options included).
        gold: reference answer; for multiple choice the option letter; a list when several are accepted.
        images: raw image references (bytes, paths, HF ``{"bytes", "path"}`` structs, PIL images),
            decoded only when the item is sent to the model.
        kind: ``choice``, ``yesno``, ``open`` or ``judged`` (no rule can score it: MM-Vet).
        letters: option letters of a multiple-choice item, in order.
        choices: option texts aligned with ``letters`` (empty when only the letters are known).
        gold_text: the reference as shown to a judge (e.g. "B. 8/11").
        meta: benchmark-specific fields (precision, answer type, category, HallusionBench group keys).
    """

    id: str
    question: str
    gold: str | list[str]
    images: list[Any] = field(default_factory=list)
    kind: str = OPEN
    letters: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    gold_text: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def golds(self) -> list[str]:
        return [str(g) for g in self.gold] if isinstance(self.gold, list) else [str(self.gold)]


@dataclass
class Extraction:
    """The answer a rule found in a response (``None``: no rule found one) and which rule found it."""

    answer: str | None
    how: str  # boxed | answer_line | option_letter | option_phrase | option_text | yes_no | direct | none


@dataclass
class Scored:
    """One scored prediction: what :meth:`Benchmark.aggregate` reads."""

    item: Item
    response: str
    extraction: Extraction
    score: float | None  # 1/0 (partial credit in [0, 1] for MM-Vet); None = not scored
    scored_by: str  # rule | judge | unparsed | unscored
    judge_reply: str | None = None
