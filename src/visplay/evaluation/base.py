"""The benchmark interface (load, prompt, extract, score, aggregate) and the rule layer every benchmark shares.

Answer extraction and equivalence come from :mod:`visplay.selfplay.answers` (``extract_boxed``,
``same_answer``): the reward code and the benchmark code can never disagree on what "the same answer"
means. This module adds only what benchmarks need on top: ``<think>`` stripping, "Answer:" lines,
option letters and option texts, yes/no, and numbers at an item's precision.

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

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


# --------------------------------------------------------------------------------------------------
# Rule helpers (pure functions)
# --------------------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_think(text: str) -> str:
    """Remove reasoning blocks; what is left is the visible answer.

    A reply that opens ``<think>`` and never closes it ran out of tokens while thinking: it has no answer.
    A lone ``</think>`` (the template opened the block) keeps only what follows it.

    >>> strip_think("<think>maybe 3</think> The answer is \\\\boxed{4}.")
    'The answer is \\\\boxed{4}.'
    >>> strip_think("so 3 </think> \\\\boxed{4}")
    '\\\\boxed{4}'
    >>> strip_think("<think>still thinking \\\\boxed{3}")
    ''
    """
    text = _THINK_BLOCK.sub(" ", text or "")
    low = text.lower()
    if "</think>" in low:
        text = text[low.rindex("</think>") + len("</think>"):]
        low = text.lower()
    if "<think>" in low:
        text = text[: low.index("<think>")]
    return text.strip()


_ANSWER_LINE = re.compile(
    r"^[ \t>*#_-]*(?:\*\*)?(?:the\s+)?(?:final\s+)?answer(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def answer_line(text: str) -> str | None:
    """The content of the last "Answer: ..." (or "Final answer: ...") line.

    >>> answer_line("Let me count.\\nAnswer: 12 apples.")
    '12 apples'
    >>> answer_line("**Final Answer:** (B)")
    '(B)'
    >>> answer_line("no answer here") is None
    True
    """
    matches = _ANSWER_LINE.findall(text or "")
    if not matches:
        return None
    value = matches[-1].strip().strip("*").strip()
    value = re.sub(r"[.。]+$", "", value).strip()
    return value or None


def final_answer(text: str) -> Extraction:
    """Rules 1-2: the last ``\\boxed{}``, else the last "Answer:" line (``text`` already think-stripped)."""
    from visplay.selfplay.answers import extract_boxed

    boxed = extract_boxed(text)
    if boxed is not None and boxed.strip():
        return Extraction(boxed.strip(), "boxed")
    line = answer_line(text)
    if line is not None:
        return Extraction(line, "answer_line")
    return Extraction(None, "none")


def _clean_candidate(value: str) -> str:
    """Strip LaTeX text wrappers, markdown and outer punctuation from an answer candidate."""
    value = value.strip()
    for _ in range(3):
        m = re.fullmatch(r"\\(?:text|textbf|mathrm|mathbf)\{(.*)\}", value, re.DOTALL)
        if not m:
            break
        value = m.group(1).strip()
    value = value.strip("*`$ \t\n")
    value = re.sub(r"^(?:option|choice)\s+", "", value, flags=re.IGNORECASE)
    return value.rstrip(".。").strip()


def match_option(candidate: str, letters: list[str], choices: list[str]) -> str | None:
    """Map an extracted answer to an option letter, or ``None`` when it names no option.

    Accepts a bare letter (any case), "(B)", "B.", "B)", "B:", "B. text", "Option B", or a candidate equal
    (``same_answer``) to exactly one option text.

    >>> match_option("(b)", ["A", "B", "C"], [])
    'B'
    >>> match_option("C. 8/11", ["A", "B", "C"], ["1", "2", "8/11"])
    'C'
    >>> match_option("Option A", ["A", "B"], ["cat", "dog"])
    'A'
    >>> match_option("E", ["A", "B"], []) is None
    True
    """
    if not letters:
        return None
    value = _clean_candidate(candidate)
    upper = {letter.upper() for letter in letters}
    m = re.fullmatch(r"\(?([A-Za-z])\)?", value)
    if m and m.group(1).upper() in upper:
        return m.group(1).upper()
    m = re.match(r"^\(?([A-Za-z])\s*[.):：]\s*(.+)$", value, re.DOTALL)
    if m and m.group(1).upper() in upper:
        letter = m.group(1).upper()
        rest = m.group(2).strip()
        # "B. 8/11": the letter counts when the text after it is that option's text (or none is known).
        if not choices or _same(rest, choices[[x.upper() for x in letters].index(letter)]):
            return letter
        hit = _unique_choice(rest, letters, choices)
        return hit or letter
    if choices:
        return _unique_choice(value, letters, choices)
    return None


def _same(a: str, b: str) -> bool:
    from visplay.selfplay.answers import same_answer

    try:
        return bool(same_answer(str(a), str(b)))
    except Exception:  # a malformed LaTeX string in either side must not abort a whole benchmark
        return str(a).strip().lower() == str(b).strip().lower()


def _unique_choice(value: str, letters: list[str], choices: list[str]) -> str | None:
    hits = [letters[i].upper() for i, choice in enumerate(choices) if choice and _same(value, choice)]
    return hits[0] if len(set(hits)) == 1 else None


# An answer declaration ("the answer is B", "correct option: (B)"); a bare "option D is a distractor" is not one.
_PHRASE = re.compile(
    r"\b(?:answer|(?:correct|best|right) (?:option|choice))\b\s*(?:is|:|would be|should be)?\s*[:\s]*"
    r"\(?\s*([A-Za-z])\s*\)?(?![A-Za-z])",
    re.IGNORECASE,
)


def find_option(text: str, letters: list[str], choices: list[str]) -> Extraction:
    """Rule 3 for multiple choice when no box or Answer: line: only unambiguous evidence counts.

    >>> find_option("B", ["A", "B"], []).answer
    'B'
    >>> find_option("Comparing both, the answer is (B).", ["A", "B"], []).answer
    'B'
    >>> find_option("So the answer is C. Option D is a distractor.", ["A", "B", "C", "D"], []).answer
    'C'
    >>> find_option("I think (A) fits better than nothing.", ["A", "B"], []).answer
    'A'
    >>> find_option("(A) is wrong and (B) too.", ["A", "B"], []).answer is None
    True
    >>> find_option("B. 8/11", ["A", "B"], ["3/11", "8/11"]).answer
    'B'
    >>> find_option("It shows a dog.", ["A", "B"], ["a cat", "a dog"]).how
    'option_text'
    """
    if not letters:
        return Extraction(None, "none")
    upper = [x.upper() for x in letters]
    whole = _clean_candidate(text).strip("()[] ").rstrip(".").strip()
    if len(whole) == 1 and whole.upper() in upper:
        return Extraction(whole.upper(), "option_letter")
    # A reply that is "(B) text" / "B. text": the text must be that option's (or short, when unknown).
    m = re.fullmatch(r"(?:\(([A-Za-z])\)|([A-Za-z])[.):])\s*(.*)", whole, re.DOTALL)
    if m and (m.group(1) or m.group(2)).upper() in upper:
        letter, rest = (m.group(1) or m.group(2)).upper(), m.group(3).strip()
        if choices:
            ok = not rest or _same(rest, choices[upper.index(letter)])
        else:
            ok = len(rest) <= 40 and "\n" not in rest and not re.search(r"\([A-Za-z]\)", rest)
        if ok:
            return Extraction(letter, "option_letter")
    # Only capital letters count in phrases: "the answer is a dog" must not read as option A.
    phrases = [p for p in _PHRASE.findall(text) if p.isupper() and p in upper]
    if phrases:
        return Extraction(phrases[-1], "option_phrase")
    bracketed = {b.upper() for b in re.findall(r"\(([A-Za-z])\)", text) if b.upper() in upper}
    if len(bracketed) == 1:
        return Extraction(bracketed.pop(), "option_letter")
    if choices:
        low = text.lower()
        found = {upper[i] for i, c in enumerate(choices) if len(c.strip()) >= 2 and _mentions(low, c.lower().strip())}
        if len(found) == 1:
            return Extraction(found.pop(), "option_text")
    return Extraction(None, "none")


def _mentions(text: str, phrase: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(phrase) + r"(?![A-Za-z0-9])", text) is not None


def yes_no(text: str, whole_reply: bool) -> str | None:
    """"yes" / "no" from a candidate (``whole_reply=False``) or a whole reply, or ``None``.

    >>> yes_no("Yes.", False)
    'yes'
    >>> yes_no("\\\\text{No}", False)
    'no'
    >>> yes_no("No, the line is longer.", True)
    'no'
    >>> yes_no("Looking closely, the answer is yes.", True)
    'yes'
    >>> yes_no("Hard to say: yes or no.", True) is None
    True
    """
    value = _clean_candidate(text).lower()
    first = re.match(r"^\W*(yes|no|true|false)\b", value)
    if first:
        return {"true": "yes", "false": "no"}.get(first.group(1), first.group(1))
    if not whole_reply:
        return None
    words = set(re.findall(r"\b(yes|no)\b", value))
    return words.pop() if len(words) == 1 else None


def direct_answer(text: str, max_chars: int = 40) -> str | None:
    """Rule 5: a reply that is one short line is itself the answer (models that answer directly).

    >>> direct_answer("  12  ")
    '12'
    >>> direct_answer("There are several objects here and I need to count them all carefully.") is None
    True
    """
    value = (text or "").strip()
    if not value or "\n" in value or len(value) > max_chars:
        return None
    return value.rstrip(".").strip() or None


_OPTION_LINE = re.compile(r"^\s*\(?([A-J])\s*[.):：]\s*(.+?)\s*$", re.MULTILINE)


def parse_options(text: str) -> tuple[list[str], list[str]]:
    """Option letters and texts written in a question: "A. x" / "(A) x" / "A: x" lines, or "A: x, B: y".

    >>> parse_options("Which?\\nA. red\\nB. blue")
    (['A', 'B'], ['red', 'blue'])
    >>> parse_options("Which?\\nOptions: A: a cat, B: a dog, C: none")
    (['A', 'B', 'C'], ['a cat', 'a dog', 'none'])
    >>> parse_options("How many?")
    ([], [])
    """
    text = text or ""
    found = _OPTION_LINE.findall(text)
    letters = [m[0] for m in found]
    if len(found) >= 2 and letters == LETTERS[: len(letters)]:
        return letters, [m[1] for m in found]
    m = re.search(r"(?:Options|Choices)\s*:\s*(.+)$", text, re.IGNORECASE | re.DOTALL)
    if m:
        parts = re.split(r"(?:^|,\s*|\s+)\(?([A-J])\)?\s*[:.]\s+", m.group(1).strip())
        if len(parts) >= 5:
            letters = parts[1::2]
            texts = [p.strip().rstrip(",").strip() for p in parts[2::2]]
            if letters == LETTERS[: len(letters)]:
                return letters, texts
    return [], []


def parse_list(value: Any) -> list:
    """A list stored as a list, a numpy array, or its Python/JSON repr ("['a', 'b']").

    >>> parse_list("['$6', '$7']")
    ['$6', '$7']
    >>> parse_list(None)
    []
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return []
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return [value]
        return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")


def to_number(value: str) -> float | None:
    """A candidate read as one number ("12", "1,234.5", "$3.50", "45%", "12 cm"); ``None`` if not exactly one.

    >>> to_number("1,234.5")
    1234.5
    >>> to_number("\\\\$3.50")
    3.5
    >>> to_number("3 or 4") is None
    True
    """
    value = _clean_candidate(str(value)).replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    value = re.sub(r"\\(?:text|mathrm)\{([^{}]*)\}", r"\1", value)
    numbers = _NUMBER.findall(value)
    if len(numbers) != 1:
        return None
    try:
        return float(numbers[0].replace(",", ""))
    except ValueError:
        return None


def equal_at_precision(pred: str, gold: str, precision: int | None) -> bool | None:
    """Numbers compared after rounding both to ``precision`` decimals; ``None`` when either is not a number.

    >>> equal_at_precision("3.14159", "3.14", 2)
    True
    >>> equal_at_precision("3.2", "3.1", 1)
    False
    """
    a, b = to_number(pred), to_number(gold)
    if a is None or b is None:
        return None
    if precision is None:
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return round(a, int(precision)) == round(b, int(precision))


def clean_question(text: str) -> str:
    """Drop bare ``<image>`` placeholders (the chat messages carry the images) and surrounding blanks."""
    return re.sub(r"<image>\s*", "", text or "").strip()


def gold_letter(gold: str, letters: list[str]) -> str | None:
    """The option letter a gold answer names: "B", "(b)", "(c) 3 hours" -> "C".

    >>> gold_letter("(c) 3 hours and 55 minutes", ["A", "B", "C", "D"])
    'C'
    >>> gold_letter("12", ["A", "B"]) is None
    True
    """
    m = re.match(r"^\s*\(?([A-Za-z])\)?(?:\s*[.:)]|\s|$)", str(gold))
    if m and m.group(1).upper() in {x.upper() for x in letters}:
        return m.group(1).upper()
    return None


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------


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
        return float(any(_same(answer, g) for g in item.golds))

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
