"""The exact oracle: reads a question as text (what a questioner model writes) and answers it on a scene.

Parsing is case-, spacing- and punctuation-insensitive ("colour" and "color" both work, the "?" may be
missing) and accepts more phrasings than the grammar writes. A question is *invalid* (``answer=None``)
with one of these reasons:

==================  =========================================================================
``unparsed``        no pattern reads it (unknown words, unsupported construction)
``no_object``       a unique reference ("the red circle") fits no object in the scene
``ambiguous``       a unique reference fits several objects
``same_object``     a spatial question relates an object to itself
``same_groups``     a comparison or sum uses the same group twice
``self_answering``  asks for an attribute the question already states ("What color is the red circle?")
``overlap``         a total over two groups one object could belong to both of ("circles and red objects")
``negative``        "how many more A than B" when there are fewer A than B
==================  =========================================================================

Answers are canonical strings: digits ("2"), "yes"/"no", or a colour, shape or size word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from visplay.world import grammar
from visplay.world.scenes import COLORS, SHAPES, SIZES, Obj, Scene

REASONS: tuple[str, ...] = (
    "ok",
    "unparsed",
    "no_object",
    "ambiguous",
    "same_object",
    "same_groups",
    "self_answering",
    "overlap",
    "negative",
)


@dataclass(frozen=True)
class OracleResult:
    answer: str | None  # canonical answer, None when invalid
    valid: bool
    reason: str  # "ok" when valid, else one of REASONS
    family: str | None  # None only when the question does not parse


# --- normalisation and noun phrases -----------------------------------------------------------------------

_CONTRACTIONS = {"what's": "what is", "whats": "what is", "there's": "there is", "how's": "how is"}
_NOUNS = {"object": None, "thing": None, "item": None, "shape": None}
_NOUNS.update({s: s for s in SHAPES})
_ADJECTIVES: dict[str, tuple[str, str]] = {c: ("color", c) for c in COLORS}
_ADJECTIVES.update({s: ("size", s) for s in SIZES})
_ADJECTIVES.update({"big": ("size", "large"), "little": ("size", "small"), "tiny": ("size", "small")})
_ARTICLES = {"a", "an", "the", "any", "some"}


def normalize(text: str) -> str:
    """Lower case, British spellings and contractions unified, punctuation dropped, spaces collapsed.

    >>> normalize("  What COLOUR is the   large triangle ?? ")
    'what color is the large triangle'
    >>> normalize("What's the size of the red-circle")
    'what is the size of the red circle'
    """
    text = text.lower().replace("colour", "color").replace("\u2019", "'")
    for short, full in _CONTRACTIONS.items():
        text = re.sub(rf"\b{re.escape(short)}\b", full, text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def parse_desc(text: str) -> grammar.Desc | None:
    """A noun phrase ("the large red circle", "red objects", "squares") as a :class:`Desc`, or None.

    >>> parse_desc("the big red circles")
    Desc(size='large', color='red', shape='circle')
    >>> parse_desc("objects"), parse_desc("pink circle")
    (Desc(size=None, color=None, shape=None), None)
    """
    words = text.split()
    if words and words[0] in _ARTICLES:
        words = words[1:]
    if not words:
        return None
    noun = words[-1]
    if noun not in _NOUNS and noun.endswith("s") and noun[:-1] in _NOUNS:
        noun = noun[:-1]  # number agreement is not checked: "a red circles" still means red circles
    if noun not in _NOUNS:
        return None
    fields: dict[str, str] = {}
    if _NOUNS[noun] is not None:
        fields["shape"] = _NOUNS[noun]
    for word in words[:-1]:
        if word not in _ADJECTIVES:
            return None
        dim, value = _ADJECTIVES[word]
        if dim in fields:
            return None  # "red blue circle"
        fields[dim] = value
    return grammar.Desc(**fields)


# --- question patterns ------------------------------------------------------------------------------------
# Each pattern is matched against the whole normalised question; its groups are noun phrases (a, b),
# an asked dimension (d) and a relation (r). A pattern whose noun phrases do not parse is skipped, so
# "how many more circles than squares are there" falls through the counting pattern to the arithmetic one.

_WHERE = r"(?: (?:in|on) (?:the|this) (?:image|picture|scene|photo))?"
_NP = r"(?P<a>.+?)"
_NP2 = r"(?P<b>.+?)"
_DIM = r"(?P<d>color|shape|size)"
_REL = r"(?P<r>(?:to the |on the )?left of|(?:to the |on the )?right of|above|over|below|under|beneath)"
_REL_CANON = {"left": "left", "right": "right", "above": "above", "over": "above", "below": "below"}
_REL_CANON.update({"under": "below", "beneath": "below"})
_MORE = r"(?:more|greater|larger|bigger|higher)"
_FEWER = r"(?:fewer|less|smaller|lower)"


def _p(pattern: str) -> re.Pattern:
    return re.compile(pattern + _WHERE)


_PATTERNS: list[tuple[re.Pattern, str, dict]] = [
    # counting
    (_p(rf"how many {_NP} (?:are|is) there"), "count", {}),
    (_p(rf"how many {_NP} (?:are|is) (?:in|shown in|visible in|present in) (?:the|this) (?:image|picture|scene)"), "count", {}),
    (_p(rf"how many {_NP} (?:can you see|do you see|are visible|are shown)"), "count", {}),
    (_p(rf"(?:what is )?the number of {_NP}"), "count", {}),
    (_p(rf"count the (?:number of )?{_NP}"), "count", {}),
    # existence
    (_p(rf"is there (?:at least one )?{_NP}"), "exist", {}),
    (_p(rf"are there (?:any )?{_NP}"), "exist", {}),
    (_p(rf"(?:does|do) (?:the|this) (?:image|picture|scene) (?:contain|have|show|include) {_NP}"), "exist", {}),
    (_p(rf"(?:can|do) you see {_NP}"), "exist", {}),
    # attribute of one object
    (_p(rf"what {_DIM} is {_NP}"), "attribute", {}),
    (_p(rf"what is the {_DIM} of {_NP}"), "attribute", {}),
    (_p(rf"(?:which|what) {_DIM} does {_NP} have"), "attribute", {}),
    (_p(rf"(?:which|what) {_DIM} is {_NP}"), "attribute", {}),
    (_p(rf"is {_NP} (?:small or large|large or small|small or big|big or small)"), "attribute", {"d": "size"}),
    # comparison of two counts
    (_p(rf"are there {_MORE} {_NP} than {_NP2}"), "compare", {"op": "more"}),
    (_p(rf"are there {_FEWER} {_NP} than {_NP2}"), "compare", {"op": "fewer"}),
    (_p(rf"are there as many {_NP} as {_NP2}"), "compare", {"op": "same"}),
    (_p(rf"are there the same number of {_NP} (?:and|as) {_NP2}"), "compare", {"op": "same"}),
    (_p(rf"is the number of {_NP} {_MORE} than the number of {_NP2}"), "compare", {"op": "more"}),
    (_p(rf"is the number of {_NP} {_FEWER} than the number of {_NP2}"), "compare", {"op": "fewer"}),
    (_p(rf"is the number of {_NP} (?:equal to|the same as) the number of {_NP2}"), "compare", {"op": "same"}),
    (_p(rf"do the {_NP} outnumber the {_NP2}"), "compare", {"op": "more"}),
    # spatial: yes/no relation, or an attribute of the one object in a relation
    (_p(rf"is {_NP} (?:located |positioned |placed )?{_REL} {_NP2}"), "relation", {}),
    (_p(rf"what {_DIM} is {_NP} (?:that is |which is )?{_REL} {_NP2}"), "relquery", {}),
    (_p(rf"what is the {_DIM} of {_NP} (?:that is |which is )?{_REL} {_NP2}"), "relquery", {}),
    # small arithmetic over counts
    (_p(rf"how many {_NP} and {_NP2} are there(?: in total| altogether| combined)?"), "arith", {"op": "total"}),
    (_p(rf"what is the total number of {_NP} and {_NP2}"), "arith", {"op": "total"}),
    (_p(rf"how many {_MORE} {_NP} than {_NP2} are there"), "arith", {"op": "diff"}),
    (_p(rf"how many {_MORE} {_NP} are there than {_NP2}"), "arith", {"op": "diff"}),
    (_p(rf"how many {_FEWER} {_NP} than {_NP2} are there"), "arith", {"op": "diff", "swap": True}),
    (_p(rf"how many {_FEWER} {_NP} are there than {_NP2}"), "arith", {"op": "diff", "swap": True}),
    (_p(rf"by how many do the {_NP} outnumber the {_NP2}"), "arith", {"op": "diff"}),
]


def _build(kind: str, groups: dict, extra: dict) -> grammar.Query | None:
    a = parse_desc(groups["a"])
    b = parse_desc(groups["b"]) if groups.get("b") is not None else None
    if a is None or ("b" in groups and b is None):
        return None
    dim = groups.get("d") or extra.get("d")
    if kind == "count":
        return grammar.Count(a)
    if kind == "exist":
        return grammar.Exist(a)
    if kind == "attribute":
        return grammar.Attribute(dim, a)
    if kind == "compare":
        return grammar.Compare(extra["op"], a, b)
    rel = None
    if groups.get("r") is not None:
        rel = _REL_CANON[groups["r"].split()[-2] if groups["r"].endswith(" of") else groups["r"]]
    if kind == "relation":
        return grammar.Relation(rel, a, b)
    if kind == "relquery":
        return grammar.RelQuery(dim, a, rel, b)
    if kind == "arith":
        return grammar.Arith(extra["op"], b, a) if extra.get("swap") else grammar.Arith(extra["op"], a, b)
    raise AssertionError(kind)


def parse_question(text: str) -> grammar.Query | None:
    """The query a question means, or None when no pattern reads it.

    >>> parse_question("what colour is the LARGE triangle")
    Attribute(dim='color', desc=Desc(size='large', color=None, shape='triangle'))
    >>> parse_question("How many pink objects are there?") is None
    True
    """
    norm = normalize(text)
    for pattern, kind, extra in _PATTERNS:
        m = pattern.fullmatch(norm)
        if m is not None:
            query = _build(kind, m.groupdict(), extra)
            if query is not None:
                return query
    return None


# --- evaluation -------------------------------------------------------------------------------------------


def _count(desc: grammar.Desc, scene: Scene) -> int:
    return sum(1 for o in scene.objects if desc.matches(o))


def _unique(desc: grammar.Desc, scene: Scene) -> tuple[Obj | None, str]:
    found = [o for o in scene.objects if desc.matches(o)]
    if not found:
        return None, "no_object"
    if len(found) > 1:
        return None, "ambiguous"
    return found[0], "ok"


def in_relation(obj: Obj, rel: str, anchor: Obj) -> bool:
    """Whether ``obj`` lies ``rel`` of ``anchor``, by cells: "left" = strictly smaller column, and so on."""
    if rel == "left":
        return obj.col < anchor.col
    if rel == "right":
        return obj.col > anchor.col
    if rel == "above":
        return obj.row < anchor.row
    if rel == "below":
        return obj.row > anchor.row
    raise ValueError(f"unknown relation {rel!r}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def evaluate(query: grammar.Query, scene: Scene) -> OracleResult:
    """The answer to a structured query on ``scene`` (see the module docstring for invalid reasons)."""
    family = grammar.family_of(query)

    def invalid(reason: str) -> OracleResult:
        return OracleResult(None, False, reason, family)

    def ok(answer: str) -> OracleResult:
        return OracleResult(answer, True, "ok", family)

    if isinstance(query, grammar.Count):
        return ok(str(_count(query.desc, scene)))
    if isinstance(query, grammar.Exist):
        return ok(_yes(_count(query.desc, scene) > 0))
    if isinstance(query, grammar.Attribute):
        if query.desc.get(query.dim) is not None:
            return invalid("self_answering")
        obj, reason = _unique(query.desc, scene)
        return ok(obj.get(query.dim)) if obj is not None else invalid(reason)
    if isinstance(query, (grammar.Compare, grammar.Arith)) and query.a == query.b:
        return invalid("same_groups")
    if isinstance(query, grammar.Compare):
        ca, cb = _count(query.a, scene), _count(query.b, scene)
        return ok(_yes({"more": ca > cb, "fewer": ca < cb, "same": ca == cb}[query.op]))
    if isinstance(query, grammar.Arith):
        ca, cb = _count(query.a, scene), _count(query.b, scene)
        if query.op == "total":
            # A sum over groups that can share an object has no single reading (count it once or twice?).
            return ok(str(ca + cb)) if grammar.disjoint(query.a, query.b) else invalid("overlap")
        return ok(str(ca - cb)) if ca >= cb else invalid("negative")
    if isinstance(query, grammar.Relation):
        a, reason_a = _unique(query.a, scene)
        b, reason_b = _unique(query.b, scene)
        if a is None or b is None:
            return invalid(reason_a if a is None else reason_b)
        if a is b:
            return invalid("same_object")
        return ok(_yes(in_relation(a, query.rel, b)))
    if isinstance(query, grammar.RelQuery):
        if query.subject.get(query.dim) is not None:
            return invalid("self_answering")
        anchor, reason = _unique(query.anchor, scene)
        if anchor is None:
            return invalid(reason)
        found = [
            o for o in scene.objects if o is not anchor and query.subject.matches(o) and in_relation(o, query.rel, anchor)
        ]
        if len(found) != 1:
            return invalid("no_object" if not found else "ambiguous")
        return ok(found[0].get(query.dim))
    raise TypeError(f"not a query: {query!r}")


def oracle_answer(question: str, scene: Scene) -> OracleResult:
    """Answer a question written as text on ``scene``.

    >>> from visplay.world.scenes import Obj, Scene
    >>> scene = Scene((Obj("circle", "red", "large", 0, 0), Obj("square", "blue", "small", 1, 3)))
    >>> oracle_answer("Is the red circle left of the blue square?", scene).answer
    'yes'
    >>> oracle_answer("what shape is the BLUE object", scene).answer
    'square'
    >>> oracle_answer("What color is the triangle?", scene)
    OracleResult(answer=None, valid=False, reason='no_object', family='attribute')
    >>> oracle_answer("Tell me a story", scene).reason
    'unparsed'
    """
    query = parse_question(question)
    if query is None:
        return OracleResult(None, False, "unparsed", None)
    return evaluate(query, scene)


__all__ = [
    "REASONS",
    "OracleResult",
    "evaluate",
    "in_relation",
    "normalize",
    "oracle_answer",
    "parse_desc",
    "parse_question",
]
