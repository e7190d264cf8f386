"""The rule layer every benchmark shares: pure functions that find an answer in a reply and compare it.

Answer extraction and equivalence come from :mod:`visplay.selfplay.answers` (``extract_boxed``,
``same_answer``), so the reward code and the benchmark code never disagree on what "the same answer" means.
This module adds what benchmarks need on top: ``<think>`` stripping, "Answer:" lines, option letters and
option texts, yes/no, and numbers at an item's precision. The order the rules apply in is
:meth:`visplay.evaluation.base.Benchmark.extract`'s.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from visplay.evaluation.items import LETTERS, Extraction

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
        if not choices or same_text(rest, choices[[x.upper() for x in letters].index(letter)]):
            return letter
        hit = _unique_choice(rest, letters, choices)
        return hit or letter
    if choices:
        return _unique_choice(value, letters, choices)
    return None


def same_text(a: str, b: str) -> bool:
    """Whether an answer and a reference are the same answer (:func:`visplay.selfplay.answers.same_answer`),
    falling back to a case-insensitive comparison when either side cannot be parsed."""
    from visplay.selfplay.answers import same_answer

    try:
        return bool(same_answer(str(a), str(b)))
    except Exception:  # a malformed LaTeX string in either side must not abort a whole benchmark
        return str(a).strip().lower() == str(b).strip().lower()


def _unique_choice(value: str, letters: list[str], choices: list[str]) -> str | None:
    hits = [letters[i].upper() for i, choice in enumerate(choices) if choice and same_text(value, choice)]
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
            ok = not rest or same_text(rest, choices[upper.index(letter)])
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
