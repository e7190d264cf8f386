"""The question grammar: structured questions (queries), their English phrasings, and a scene-free sampler.

A *query* is the meaning of a question, a small frozen dataclass; :func:`to_text` phrases it in one of
several ways; ``visplay.world.oracle.parse_question`` reads any phrasing back to the same query. Six
families, each with a question type (what the questioner writes in ``<type>``):

===========  ==================================================  ==================  ===============
family       example                                             answer              qtype
===========  ==================================================  ==================  ===============
counting     How many small blue squares are there?              a number            numerical
existence    Is there a green triangle?                          yes / no            multiple choice
attribute    What color is the large triangle?                   a colour/shape/size open
comparison   Are there more circles than squares?                yes / no            multiple choice
spatial      Is the red circle left of the blue square?          yes / no            multiple choice
             What color is the object above the red circle?      a colour/shape/size open
arithmetic   How many more red objects than blue objects ...?    a number            numerical
===========  ==================================================  ==================  ===============

Spatial relations compare cells: "left of" is a strictly smaller column (any row), "above" a strictly
smaller row (any column), and so on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from visplay.world.scenes import DIMENSIONS, Obj

FAMILIES: tuple[str, ...] = ("counting", "existence", "attribute", "comparison", "spatial", "arithmetic")
QTYPES: tuple[str, ...] = ("numerical", "multiple choice", "open")
RELATIONS: tuple[str, ...] = ("left", "right", "above", "below")
COMPARE_OPS: tuple[str, ...] = ("more", "fewer", "same")
ARITH_OPS: tuple[str, ...] = ("total", "diff")
DIMS: tuple[str, ...] = tuple(DIMENSIONS)  # ("size", "color", "shape"): also the adjective order in text


@dataclass(frozen=True)
class Desc:
    """A description of objects: any of size, colour, shape (``None`` = any).

    >>> d = Desc(size="large", shape="circle")
    >>> d.singular(), d.plural(), Desc(color="orange").with_article()
    ('large circle', 'large circles', 'an orange object')
    """

    size: str | None = None
    color: str | None = None
    shape: str | None = None

    def get(self, dim: str) -> str | None:
        return getattr(self, dim)

    def dims(self) -> tuple[str, ...]:
        """The dimensions this description fixes."""
        return tuple(d for d in DIMS if getattr(self, d) is not None)

    def matches(self, obj: Obj) -> bool:
        return (
            (self.size is None or self.size == obj.size)
            and (self.color is None or self.color == obj.color)
            and (self.shape is None or self.shape == obj.shape)
        )

    def matches_type(self, t: tuple[str, str, str]) -> bool:
        """Whether an object type ``(size, color, shape)`` fits this description."""
        size, color, shape = t
        return (
            (self.size is None or self.size == size)
            and (self.color is None or self.color == color)
            and (self.shape is None or self.shape == shape)
        )

    def singular(self) -> str:
        words = [w for w in (self.size, self.color) if w is not None]
        return " ".join(words + [self.shape or "object"])

    def plural(self) -> str:
        return self.singular() + "s"

    def with_article(self) -> str:
        text = self.singular()
        return ("an " if text[0] in "aeiou" else "a ") + text


def disjoint(a: Desc, b: Desc) -> bool:
    """Whether no object can fit both descriptions (they fix one dimension to different values).

    >>> disjoint(Desc(color="red"), Desc(color="blue")), disjoint(Desc(color="red"), Desc(shape="circle"))
    (True, False)
    """
    return any(a.get(d) is not None and b.get(d) is not None and a.get(d) != b.get(d) for d in DIMS)


# --- queries: the meaning of a question -------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    desc: Desc


@dataclass(frozen=True)
class Exist:
    desc: Desc


@dataclass(frozen=True)
class Attribute:
    dim: str  # what is asked: "color", "shape" or "size"
    desc: Desc  # the one object it is asked about


@dataclass(frozen=True)
class Compare:
    op: str  # "more": count(a) > count(b); "fewer": <; "same": ==
    a: Desc
    b: Desc


@dataclass(frozen=True)
class Relation:
    rel: str  # is the object a <rel> the object b?
    a: Desc
    b: Desc


@dataclass(frozen=True)
class RelQuery:
    dim: str  # what is asked about the one object fitting `subject` that lies <rel> the `anchor` object
    subject: Desc
    rel: str
    anchor: Desc


@dataclass(frozen=True)
class Arith:
    op: str  # "total": count(a) + count(b) (a, b disjoint); "diff": count(a) - count(b) (must be >= 0)
    a: Desc
    b: Desc


Query = Count | Exist | Attribute | Compare | Relation | RelQuery | Arith

_FAMILY = {
    Count: "counting",
    Exist: "existence",
    Attribute: "attribute",
    Compare: "comparison",
    Relation: "spatial",
    RelQuery: "spatial",
    Arith: "arithmetic",
}
_QTYPE = {
    Count: "numerical",
    Arith: "numerical",
    Exist: "multiple choice",
    Compare: "multiple choice",
    Relation: "multiple choice",
    Attribute: "open",
    RelQuery: "open",
}


def family_of(query: Query) -> str:
    return _FAMILY[type(query)]


def qtype_of(query: Query) -> str:
    """ "numerical" for number answers, "multiple choice" for yes/no, "open" for word answers."""
    return _QTYPE[type(query)]


# --- phrasing ---------------------------------------------------------------------------------------------
# Every template here must be read back by a pattern in oracle.py; the round-trip test enforces it.

_COUNT = (
    "How many {p} are there?",
    "How many {p} are in the image?",
    "How many {p} can you see?",
    "What is the number of {p}?",
    "How many {p} are there in the picture?",
)
_EXIST = (
    "Is there {a}?",
    "Are there any {p}?",
    "Does the image contain {a}?",
    "Is there at least one {s}?",
)
_ATTRIBUTE = ("What {d} is the {s}?", "What is the {d} of the {s}?", "Which {d} does the {s} have?")
_ATTRIBUTE_SIZE = _ATTRIBUTE + ("Is the {s} small or large?",)
_COMPARE = {
    "more": ("Are there more {a} than {b}?", "Is the number of {a} greater than the number of {b}?"),
    "fewer": ("Are there fewer {a} than {b}?", "Is the number of {a} smaller than the number of {b}?"),
    "same": ("Are there as many {a} as {b}?", "Is the number of {a} equal to the number of {b}?"),
}
_REL_WORDS = {
    "left": ("left of", "to the left of"),
    "right": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below", "under"),
}
_RELATION = ("Is the {a} {r} the {b}?",)
_RELQUERY = ("What {d} is the {s} {r} the {b}?", "What is the {d} of the {s} {r} the {b}?")
_ARITH = {
    "total": (
        "How many {a} and {b} are there in total?",
        "What is the total number of {a} and {b}?",
        "How many {a} and {b} are there altogether?",
    ),
    # Both say count(a) - count(b): "fewer" swaps the order of the two groups in the sentence.
    "diff": ("How many more {a} than {b} are there?", "How many fewer {b} than {a} are there?"),
}


def phrasings(query: Query) -> list[str]:
    """Every phrasing of ``query``, in a fixed order.

    >>> phrasings(Exist(Desc(color="orange", shape="circle")))[:2]
    ['Is there an orange circle?', 'Are there any orange circles?']
    """
    if isinstance(query, Count):
        return [t.format(p=query.desc.plural()) for t in _COUNT]
    if isinstance(query, Exist):
        d = query.desc
        return [t.format(a=d.with_article(), p=d.plural(), s=d.singular()) for t in _EXIST]
    if isinstance(query, Attribute):
        templates = _ATTRIBUTE_SIZE if query.dim == "size" else _ATTRIBUTE
        return [t.format(d=query.dim, s=query.desc.singular()) for t in templates]
    if isinstance(query, Compare):
        return [t.format(a=query.a.plural(), b=query.b.plural()) for t in _COMPARE[query.op]]
    if isinstance(query, Relation):
        return [
            t.format(a=query.a.singular(), r=r, b=query.b.singular()) for t in _RELATION for r in _REL_WORDS[query.rel]
        ]
    if isinstance(query, RelQuery):
        return [
            t.format(d=query.dim, s=query.subject.singular(), r=r, b=query.anchor.singular())
            for t in _RELQUERY
            for r in _REL_WORDS[query.rel]
        ]
    if isinstance(query, Arith):
        return [t.format(a=query.a.plural(), b=query.b.plural()) for t in _ARITH[query.op]]
    raise TypeError(f"not a query: {query!r}")


def n_variants(query: Query) -> int:
    return len(phrasings(query))


def to_text(query: Query, variant: int = 0) -> str:
    """Phrasing number ``variant`` of ``query`` (wraps around).

    >>> to_text(Count(Desc(size="small", color="blue", shape="square")))
    'How many small blue squares are there?'
    >>> to_text(Arith("diff", Desc(color="red"), Desc(color="blue")), 1)
    'How many fewer blue objects than red objects are there?'
    """
    variants = phrasings(query)
    return variants[variant % len(variants)]


# --- scene-free sampling ---------------------------------------------------------------------------------


def random_desc(rng: random.Random, n_attrs: int, dims: tuple[str, ...] = DIMS) -> Desc:
    """A description fixing ``n_attrs`` of ``dims`` to uniform values."""
    chosen = rng.sample(dims, n_attrs)
    return Desc(**{d: rng.choice(DIMENSIONS[d]) for d in chosen})


def _n_attrs(rng: random.Random, weights: dict[int, float]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _pair(rng: random.Random) -> tuple[Desc, Desc]:
    """Two disjoint groups differing in one dimension, sometimes sharing a qualifier: "red circles" / "blue circles"."""
    dim = rng.choice(DIMS)
    v1, v2 = rng.sample(DIMENSIONS[dim], 2)
    shared = {}
    if rng.random() < 0.4:
        other = rng.choice([d for d in DIMS if d != dim])
        shared[other] = rng.choice(DIMENSIONS[other])
    return Desc(**{dim: v1}, **shared), Desc(**{dim: v2}, **shared)


def sample_query(rng: random.Random, family: str) -> Query:
    """A random well-formed query of ``family``, chosen without looking at any scene.

    Every query returned here can be made true-or-false / any-answer by some scene (the example sampler
    relies on it): unique references fix at least one attribute, compared groups are disjoint, and a
    spatial subject can always differ from its anchor.
    """
    if family == "counting":
        return Count(random_desc(rng, _n_attrs(rng, {0: 0.1, 1: 0.45, 2: 0.3, 3: 0.15})))
    if family == "existence":
        return Exist(random_desc(rng, _n_attrs(rng, {1: 0.5, 2: 0.35, 3: 0.15})))
    if family == "attribute":
        dim = rng.choice(DIMS)
        others = tuple(d for d in DIMS if d != dim)
        return Attribute(dim, random_desc(rng, _n_attrs(rng, {1: 0.6, 2: 0.4}), others))
    if family == "comparison":
        return Compare(rng.choice(COMPARE_OPS), *_pair(rng))
    if family == "arithmetic":
        return Arith(rng.choice(ARITH_OPS), *_pair(rng))
    if family == "spatial":
        rel = rng.choice(RELATIONS)
        if rng.random() < 0.5:
            while True:
                a = random_desc(rng, rng.randint(1, 2))
                b = random_desc(rng, rng.randint(1, 2))
                if disjoint(a, b):  # so each can be unique while the other is present
                    return Relation(rel, a, b)
        dim = rng.choice(DIMS)
        others = tuple(d for d in DIMS if d != dim)
        subject = Desc() if rng.random() < 0.6 else random_desc(rng, 1, others)
        while True:
            anchor = random_desc(rng, rng.randint(1, 2))
            # The subject must be able to differ from the anchor whatever value `dim` takes.
            if any(anchor.get(d) is not None and subject.get(d) != anchor.get(d) for d in others):
                return RelQuery(dim, subject, rel, anchor)
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
