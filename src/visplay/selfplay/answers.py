"""Answers: extraction from a reply, equivalence of two answers, and the majority vote.

One module serves the reasoner reward, the curation vote and benchmark scoring, so training and scoring
can never disagree about what "the same answer" means.

How equivalence works. Every answer is first reduced to a *key*, a short string ``"<kind>:<value>"``:

- ``n:`` a plain number, as an exact rational in LaTeX form: ``0.5``, ``1/2``, ``\\frac{1}{2}`` and
  ``$0.50$`` are all ``n:\\frac{1}{2}``;
- ``y:`` yes / no (``Yes.``, ``yes, it is``, ``True``);
- ``o:`` an option letter (``B``, ``(B)``, ``B.``, ``B) 42``, ``option B``);
- ``m:`` something mathematical that is not a plain number (``\\sqrt{2}``, ``x^2+1``, ``(1, 2)``);
- ``t:`` anything else: words, compared as normalised text only.

Two answers are the same when their keys are equal or, when both keys are ``n:``/``m:`` and at least one
is ``m:``, when they are mathematically equivalent: math-verify parses the LaTeX; two closed-form numbers
(``\\sqrt{2}``, ``2^{1/2}``, ``\\frac{\\pi}{4}``, ``0.5``) are equal when their values agree to 12
digits (evaluated to 30), and an assignment ``x = 4`` counts as its right-hand side; a number is never
an expression in variables or an interval; two expressions in variables that differ at one of two fixed
probe points are different; what is left (``x^2+1`` vs ``1+x^2``, two equations, sets, tuples) goes to
math-verify's ``verify``, in both directions. Text never reaches math-verify, because math-verify reads
``cat`` as the product ``c*a*t`` and would call it equal to ``act``.

Speed. :func:`majority_vote` groups answers by key first (one key per distinct raw string, cached) and
compares only distinct keys, each pair once (memoised), with math-verify parses cached; it returns exactly
what the authors' greedy pairwise vote returns (``benchmarks/references.py``), because :func:`same_answer`
is a function of the two keys alone (``benchmarks/bench_silver_labels.py`` times both).

Where this departs from the paper / authors' code (the one place that says so):

- The authors compare answers with ``mathruler.grade_answer`` (a normalising sympy grader, 10 s timeouts;
  each call is one-directional, and they call it both ways, ``grade(a, b) or grade(b, a)``) plus a crude
  ``'no ' in a and 'no ' in b`` check; we use the key normalisation above and math-verify in both
  directions, so the relation is symmetric.
- Two plain numbers are equal only when they are exactly the same rational: ``0.333`` is not ``1/3``
  (math-verify would round floats to 6 decimals). ``50%`` is the number 50, not 0.5, as in the MATH /
  mathruler normalisation the authors use; degree signs and a few spelled-out units after a number are
  dropped the same way. Number words ``zero`` .. ``twenty`` are numbers.
- Closed-form numbers are compared by value rather than by math-verify's ``verify`` (which rounds
  floats to 6 decimals and otherwise needs sympy's ``simplify`` to prove an identity, ~50 ms a pair);
  numbers vs expressions in variables or intervals, and expressions that differ at a probe point, are
  declared different without ``verify``. Same verdicts as ``verify`` on ordinary answers (a test checks
  them), cheap, and exact where ``simplify`` gives up.
- Missing answers (no box) never form a cluster and never win; by default they count in the confidence's
  denominator (``count_missing=False`` leaves them out). In the authors' code a missing box becomes the
  string ``"None"`` (mathruler's ``extract_boxed_content``); it is truthy, so it survives both their
  server's and their curation script's "skip empty answers" filters, is counted in the denominator, can
  form a cluster and win the vote, and their curation drops "None" silver answers only afterwards
  (``curation.drop_none_answers``).
"""

from __future__ import annotations

import cmath
import math
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "Cluster",
    "Vote",
    "answer_key",
    "clear_caches",
    "extract_boxed",
    "majority_vote",
    "same_answer",
]

# ----------------------------------------------------------------------------------------------------
# extraction
# ----------------------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\boxed\s*\{")


def extract_boxed(text: str | None) -> str | None:
    """The content of the last complete ``\\boxed{...}`` in ``text`` (braces balanced), stripped.

    ``None`` when there is no complete box (a box cut off by the length limit does not count; an earlier
    complete one then does). An empty box gives ``""``.

    >>> extract_boxed(r"so x = \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"\\boxed{3} no wait \\boxed{ 4 }")
    '4'
    >>> extract_boxed(r"first \\boxed{3}, then cut off: \\boxed{\\frac{1}{")
    '3'
    >>> extract_boxed("no box here") is None
    True
    >>> extract_boxed(r"\\boxed{}")
    ''
    """
    if not text or "\\boxed" not in text:
        return None
    for match in reversed(list(_BOXED.finditer(text))):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            char = text[i]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


# ----------------------------------------------------------------------------------------------------
# normalisation to a key
# ----------------------------------------------------------------------------------------------------

_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_SPACES = re.compile(r"\\[,;:! ]|\\q?quad\b|\\displaystyle\b|\\left\b|\\right\b")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b")
_PERCENT = re.compile(r"\\?%")
_OPTION_PAREN = re.compile(r"^[(\[]\s*([A-Za-z])\s*[)\]](?:\s.*)?$", re.DOTALL)
_OPTION_PUNCT = re.compile(r"^([A-Z])\s*[.):](?:\s.*)?$", re.DOTALL)
_OPTION_WORD = re.compile(r"^(?:option|choice|answer)\s*:?\s*[(\[]?\s*([a-z])\s*[)\]]?$")
_YESNO = re.compile(r"^(yes|no|true|false)(?:[,.;:!]\s*.*)?$", re.DOTALL)
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_DECIMAL = re.compile(r"^([-+]?)(\d+)(?:\.(\d*))?$")
_HAS_DIGIT = re.compile(r"\d")
_PLAIN = re.compile(rf"^{_NUMBER}(?:e[-+]?\d{{1,3}})?$")
_SLASH = re.compile(rf"^({_NUMBER})/({_NUMBER})$")
_FRAC = re.compile(rf"^([-+]?)\\frac\{{({_NUMBER})\}}\{{({_NUMBER})\}}$")
_FRAC_SHORT = re.compile(r"^([-+]?)\\frac(\d)(\d)$")
_UNITS = (
    r"cm|mm|km|m|meters?|metres?|kg|g|grams?|mg|lbs?|pounds?|s|sec|seconds?|mins?|minutes?|h|hrs?|hours?|"
    r"days?|weeks?|months?|years?|degrees?|deg|inch(?:es)?|in|ft|feet|foot|yards?|miles?|mph|km/h|units?|"
    r"dollars?|cents?|euros?|people|persons?|times"
)
_WITH_UNIT = re.compile(rf"^({_NUMBER})\s+(?:{_UNITS})$")
_COMMAND = re.compile(r"(\\[A-Za-z]+)")
_TRAILING_DOTS = re.compile(r"[.。]+$")
_SPACES = re.compile(r"\s+")
_NOISE_SPACES = re.compile(r"(?<![A-Za-z])\s+|\s+(?![A-Za-z])")
_DIGIT_OR_COMMAND = re.compile(r"[\d\\]")
_OPERATOR = re.compile(r"[=+\-*/^_<>]")
_TOKENS = re.compile(r"\\[A-Za-z]+|[A-Za-z]+")
_MATH_WORDS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp sqrt pi infty inf e i "
    "mod max min lim sum prod det gcd lcm".split()
)
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_YES = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}


def _lower_outside_commands(text: str) -> str:
    """Lowercase everything except LaTeX command names (``\\Delta`` is not ``\\delta``)."""
    if "\\" not in text:
        return text.lower()
    parts = _COMMAND.split(text)
    return "".join(part if part.startswith("\\") else part.lower() for part in parts)


def _number_key(value: Fraction) -> str:
    """The ``n:`` key of an exact rational, in a form math-verify parses (``n:-\\frac{3}{4}``)."""
    if value.denominator == 1:
        return f"n:{value.numerator}"
    sign = "-" if value < 0 else ""
    return f"n:{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _as_number(text: str) -> Fraction | None:
    """An exact rational for a plain number written as decimal, ``a/b`` or ``\\frac{a}{b}``; else None."""
    try:
        m = _DECIMAL.match(text)
        if m:  # the common case, without Fraction's string parser
            sign, whole, decimals = m.groups()
            value = Fraction(int(whole + decimals), 10 ** len(decimals)) if decimals else Fraction(int(whole))
            return -value if sign == "-" else value
        if _PLAIN.match(text):
            return Fraction(text)
        m = _SLASH.match(text)
        if m:
            den = Fraction(m.group(2))
            return Fraction(m.group(1)) / den if den else None
        m = _FRAC.match(text) or _FRAC_SHORT.match(text)
        if m:
            den = Fraction(m.group(3))
            if not den:
                return None
            value = Fraction(m.group(2)) / den
            return -value if m.group(1) == "-" else value
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _looks_mathematical(text: str) -> bool:
    """Digits, LaTeX, or an expression in one-letter variables, and no English word in it."""
    words = [tok for tok in _TOKENS.findall(text) if not tok.startswith("\\")]
    if any(len(word) > 1 and word not in _MATH_WORDS for word in words):
        return False
    if _DIGIT_OR_COMMAND.search(text):
        return True
    return bool(words) and bool(_OPERATOR.search(text))


def answer_key(answer: str | None) -> str | None:
    """The normalised key of an answer; two answers with the same key are always the same answer.

    ``None`` for a missing or blank answer.

    >>> [answer_key(a) for a in ["0.5", "1/2", "$\\\\frac{1}{2}$", "\\\\dfrac12", "50\\\\%"]]
    ['n:\\\\frac{1}{2}', 'n:\\\\frac{1}{2}', 'n:\\\\frac{1}{2}', 'n:\\\\frac{1}{2}', 'n:50']
    >>> [answer_key(a) for a in ["(B)", "B.", "b", "B) 42", "Option B"]]
    ['o:b', 'o:b', 'o:b', 'o:b', 'o:b']
    >>> [answer_key(a) for a in ["Yes.", "yes, it is", "TRUE", "No"]]
    ['y:yes', 'y:yes', 'y:yes', 'y:no']
    >>> [answer_key(a) for a in ["\\\\text{Red} ", "two", "1,000", "x + 1", "2 cats", "  "]]
    ['t:red', 'n:2', 'n:1000', 'm:x+1', 't:2 cats', None]
    """
    if answer is None:
        return None
    text = str(answer).strip()
    if not text:
        return None
    if text.isdigit() and text.isascii():  # the most common answer, and what the general path gives it
        return f"n:{int(text)}"
    text = text.replace("$", "").replace("−", "-")
    if "\\" in text:
        text = text.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
        text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
        for _ in range(3):  # nested wrappers: \text{\textbf{B}}
            unwrapped = _WRAPPERS.sub(r"\1", text)
            if unwrapped == text:
                break
            text = unwrapped
        text = _LATEX_SPACES.sub(" ", text)
    # (The ``in`` tests below only skip regexes that could not match: keys are the same without them.)
    text = text.replace("{,}", ",").replace("~", " ")
    if "°" in text or "circ" in text or "degree" in text:
        text = _DEGREES.sub("", text)
    if "%" in text:
        text = _PERCENT.sub("", text)
    text = text.strip().strip("*`\"'").strip()
    if text.endswith((".", "。")):
        text = _TRAILING_DOTS.sub("", text).strip()
    if not text:
        return None
    # Option letters are recognised before lowercasing: "A. dog" is option A, "a dog" is text.
    m = _OPTION_PAREN.match(text) if text[0] in "([" else _OPTION_PUNCT.match(text) if text[0].isupper() else None
    if m:
        return "o:" + m.group(1).lower()
    text = _SPACES.sub(" ", _lower_outside_commands(text))
    m = _OPTION_WORD.match(text) if text.startswith(("option", "choice", "answer")) else None
    if m:
        return "o:" + m.group(1)
    if len(text) == 1 and text.isalpha():
        return "o:" + text
    m = _YESNO.match(text) if text.startswith(("yes", "no", "true", "false")) else None
    if m:
        return "y:" + _YES[m.group(1)]
    if text in _NUMBER_WORDS:
        return _number_key(Fraction(_NUMBER_WORDS[text]))
    if not _HAS_DIGIT.search(text):  # every number form below has a digit
        return "m:" + _NOISE_SPACES.sub("", text) if _looks_mathematical(text) else "t:" + text
    m = _WITH_UNIT.match(text) if " " in text else None
    if m:
        text = m.group(1)
    compact = text.replace(" ", "")
    if "," in compact and _THOUSANDS.match(compact):
        compact = compact.replace(",", "")
    value = _as_number(compact.lstrip("+") if compact.startswith("+") else compact)
    if value is not None:
        return _number_key(value)
    if _looks_mathematical(text):
        # Spaces only matter between two letters ("\pi r"); elsewhere they are noise ("x + 1").
        return "m:" + _NOISE_SPACES.sub("", text)
    return "t:" + text


# ----------------------------------------------------------------------------------------------------
# mathematical equivalence (math-verify), cached and uncached
# ----------------------------------------------------------------------------------------------------

_RELATIVE_TOLERANCE = 1e-12  # two closed-form numbers evaluated to 30 digits: equal or not, never close


def _timeout() -> int | None:
    # math-verify's timeouts use signal.alarm, which only works in the main thread.
    return 5 if threading.current_thread() is threading.main_thread() else None


@dataclass(frozen=True)
class _Parsed:
    """math-verify's parse of one key, with what the cheap comparisons need."""

    parsed: list  # math-verify's [sympy object, string], or [] when it does not parse
    kind: str = "other"  # number | assignment (x = number) | expr (has variables) | interval | other
    value: complex | None = None  # a number's value, or an assignment's right-hand side (30 digits)
    probes: tuple[complex, ...] | None = None  # an expression's values at two fixed points


def _probe_value(name: str, point: int) -> float:
    """A fixed, irrational-looking value for variable ``name`` at probe ``point`` (same in every call)."""
    return 0.5 + (zlib.crc32(f"{name}|{point}".encode()) % 100_003) / 50_000.0 + point * math.sqrt(2) / 7


def _parse_math(latex: str) -> _Parsed:
    """Parse ``latex`` with math-verify and classify the result for the cheap comparisons."""
    from math_verify import parse

    parsed = parse(f"${latex}$", parsing_timeout=_timeout())
    try:
        import sympy

        expr = parsed[0] if parsed else None
        if isinstance(expr, sympy.Interval):
            return _Parsed(parsed, "interval")
        if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol) and expr.rhs.is_number:
            return _Parsed(parsed, "assignment", value=complex(expr.rhs.evalf(30)))
        if not isinstance(expr, sympy.Expr):
            return _Parsed(parsed)
        if expr.is_number:
            return _Parsed(parsed, "number", value=complex(expr.evalf(30)))
        symbols = sorted(expr.free_symbols, key=lambda symbol: symbol.name)
        probes = tuple(
            complex(expr.subs({sym: _probe_value(sym.name, point) for sym in symbols}).evalf(30)) for point in (1, 2)
        )
        return _Parsed(parsed, "expr", probes=probes if all(map(cmath.isfinite, probes)) else None)
    except Exception:  # odd objects (or values too large) lose the shortcuts, never the comparison
        return _Parsed(parsed)


_parse_math_cached = lru_cache(maxsize=1 << 16)(_parse_math)


def _close(a: complex, b: complex) -> bool:
    return abs(a - b) <= _RELATIVE_TOLERANCE * max(1.0, abs(a), abs(b))


def _shortcut(a: _Parsed, b: _Parsed) -> bool | None:
    """The verdict on two parsed answers when it needs no ``verify`` (None: ask math-verify)."""
    kinds = {a.kind, b.kind}
    if kinds <= {"number", "assignment"} and kinds != {"assignment"}:
        return _close(a.value, b.value)  # "x = 4" is 4, as math-verify reads an assignment
    if "expr" in kinds and kinds & {"number", "assignment", "interval"}:
        return False  # a number (or an interval) is never an expression in variables
    if "interval" in kinds and kinds & {"number", "assignment"}:
        return False
    if kinds == {"expr"} and a.probes is not None and b.probes is not None:
        if not all(map(_close, a.probes, b.probes)):
            return False  # different values at a probe point: different functions
    return None


def _math_equal_with(key_a: str, key_b: str, parse_math: Callable[[str], _Parsed]) -> bool:
    """Equivalence of two different ``n:``/``m:`` keys (not both ``n:``), ``key_a < key_b``.

    Decided by :func:`_shortcut` when it can; otherwise math-verify's ``verify``, in both directions.
    """
    from math_verify import verify

    parts = []
    for key in (key_a, key_b):
        try:  # an n: key's value needs no parse
            number = complex(_as_number(key[2:])) if key[0] == "n" else None
        except (OverflowError, TypeError):
            number = None
        parts.append(_Parsed([], "number", value=number) if number is not None else parse_math(key[2:]))
    verdict = _shortcut(*parts)
    if verdict is not None:
        return verdict
    a = parts[0] if parts[0].parsed else parse_math(key_a[2:])
    b = parts[1] if parts[1].parsed else parse_math(key_b[2:])
    if not a.parsed or not b.parsed:
        return False
    timeout = _timeout()
    return bool(
        verify(a.parsed, b.parsed, timeout_seconds=timeout) or verify(b.parsed, a.parsed, timeout_seconds=timeout)
    )


@lru_cache(maxsize=1 << 18)
def _math_equal_cached(key_a: str, key_b: str) -> bool:
    return _math_equal_with(key_a, key_b, _parse_math_cached)


def _keys_match(key_a: str | None, key_b: str | None, math_equal: Callable[[str, str], bool]) -> bool:
    """The equivalence on keys; :func:`same_answer` is exactly this on the two answers' keys."""
    if key_a is None or key_b is None:
        return False
    if key_a == key_b:
        return True
    kind_a, kind_b = key_a[0], key_b[0]
    if kind_a not in "nm" or kind_b not in "nm" or (kind_a == "n" and kind_b == "n"):
        return False  # text, yes/no and letters match by key only; two plain numbers are exact rationals
    # One argument order, so the relation is symmetric even if math-verify times out.
    return math_equal(key_a, key_b) if key_a < key_b else math_equal(key_b, key_a)


_answer_key_cached = lru_cache(maxsize=1 << 18)(answer_key)


@lru_cache(maxsize=1 << 18)
def _keys_match_cached(key_a: str, key_b: str) -> bool:
    return _keys_match(key_a, key_b, _math_equal_cached)


def same_answer(a: str | None, b: str | None) -> bool:
    """Whether two extracted answers are the same answer (symmetric; missing answers match nothing).

    Normalised string match first (case, spaces, trailing period, ``$``, ``\\text{}``, option letters,
    yes/no variants, number words), then mathematical equivalence only where both sides look numeric or
    LaTeX.

    >>> same_answer("(B)", "b.") and same_answer("Yes.", "yes") and same_answer(" Red ", "\\\\text{red}")
    True
    >>> same_answer("1/2", "0.5") and same_answer("\\\\frac{1}{2}", "0.5") and same_answer("two", "2")
    True
    >>> same_answer("cat", "act") or same_answer("50%", "0.5") or same_answer("0.333", "1/3")
    False
    >>> same_answer("\\\\frac{\\\\sqrt{2}}{2}", "\\\\frac{1}{\\\\sqrt{2}}"), same_answer(None, None)
    (True, False)
    """
    key_a, key_b = _answer_key_cached(a), _answer_key_cached(b)
    if key_a is None or key_b is None:
        return False
    if key_b < key_a:
        key_a, key_b = key_b, key_a
    return _keys_match_cached(key_a, key_b)


def clear_caches() -> None:
    """Empty the key / parse / equivalence caches (benchmarks time a cold start with this)."""
    for cached in (_answer_key_cached, _keys_match_cached, _math_equal_cached, _parse_math_cached):
        cached.cache_clear()


# ----------------------------------------------------------------------------------------------------
# majority vote
# ----------------------------------------------------------------------------------------------------


class Cluster(NamedTuple):
    """Answers judged the same: the first one seen represents them all."""

    answer: str
    count: int
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Vote:
    """The majority vote over one question's sampled answers.

    ``answer`` is the representative (first-seen, stripped) of the largest cluster, ``None`` when no
    sample had an answer; ``confidence`` is the paper's c = largest cluster / number of samples; clusters
    are listed in order of first appearance; ``missing`` counts samples without an answer.
    """

    answer: str | None
    confidence: float
    clusters: tuple[Cluster, ...]
    total: int
    missing: int


def _finish(answers: Sequence[str | None], groups: list[list], count_missing: bool) -> Vote:
    """Build the Vote from clusters ``[representative index, count, indices]`` in creation order."""
    missing = len(answers) - sum(count for _, count, _ in groups)
    denominator = len(answers) if count_missing else len(answers) - missing
    clusters = tuple(Cluster(str(answers[rep]).strip(), count, tuple(idx)) for rep, count, idx in groups)
    if not clusters or denominator <= 0:
        return Vote(None, 0.0, clusters, len(answers), missing)
    # max() keeps the first of equal counts: ties go to the cluster seen first (as in the authors' dict).
    best = max(clusters, key=lambda c: c.count)
    return Vote(best.answer, best.count / denominator, clusters, len(answers), missing)


def majority_vote(answers: Sequence[str | None], count_missing: bool = True) -> Vote:
    """Cluster the answers with :func:`same_answer` and take the largest cluster.

    Missing answers (``None`` or blank: no box) never join or win a cluster; with ``count_missing`` (the
    paper's c, default) they still count in the denominator. Ties go to the cluster seen first.

    Exactly the result of the authors' greedy pairwise vote (each answer joins the first cluster whose
    representative it matches; ``benchmarks/references.py``), computed on distinct keys with memoised
    comparisons.

    >>> v = majority_vote(["\\\\frac{1}{2}", "0.5", None, "1/2", "3", "3"])
    >>> v.answer, round(v.confidence, 3), [(c.answer, c.count) for c in v.clusters]
    ('\\\\frac{1}{2}', 0.5, [('\\\\frac{1}{2}', 3), ('3', 2)])
    >>> majority_vote(["A", "B", "b", "a"]).answer   # a tie: the first-seen cluster wins
    'A'
    >>> majority_vote([None, None]).answer is None, majority_vote([None, "x", None]).confidence
    (True, 0.3333333333333333)
    >>> majority_vote([None, "x", None], count_missing=False).confidence
    1.0
    """
    by_key: dict[str, list[int]] = {}  # key -> indices, in order of first appearance
    for index, key in enumerate(map(_answer_key_cached, answers)):
        if key is not None:
            indices = by_key.get(key)
            if indices is None:
                by_key[key] = [index]
            else:
                indices.append(index)
    clusters: list[list] = []  # [representative key, indices of its first key group, indices or None]
    for key, indices in by_key.items():
        for cluster in clusters:
            rep = cluster[0]
            if _keys_match_cached(key, rep) if key <= rep else _keys_match_cached(rep, key):
                cluster[2] = (cluster[2] or cluster[1]) + indices
                break
        else:
            clusters.append([key, indices, None])
    groups = [[first[0], len(merged or first), sorted(merged) if merged else first] for _, first, merged in clusters]
    return _finish(answers, groups, count_missing)


ANSWER_KINDS = ("yes/no", "number", "word")


def answer_kind(answer: str | None) -> str | None:
    """yes/no, number or word (anything else that is not empty); None for a missing answer.

    >>> [answer_kind(a) for a in ("Yes", "no", "3", "-2.5", "\\\\frac{1}{2}", "red", "top left", None, " ")]
    ['yes/no', 'yes/no', 'number', 'number', 'number', 'word', 'word', None, None]
    """
    if answer is None or not answer.strip():
        return None
    key = answer_key(answer)
    if key is None:
        return None
    if key.startswith("y:"):
        return "yes/no"
    if key.startswith("n:"):
        return "number"
    return "word"
