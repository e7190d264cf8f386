"""Labeled examples, balanced per question string, and scene-aware questions for unlabeled scenes.

Why balance: a tiny model learns the answer priors of a grammar long before it learns to see (see
docs/toy_base_model.md, "The bands": in a first probe a blind baseline reached 44%). So :func:`sample_example` draws a family,
then a question string, then the answer *uniformly from that question's answer space*, and only then
builds a scene where the oracle gives that answer. For every exact question string the answers are
uniform, so a blind model (the most frequent answer per question string) sits at chance.

Scenes are built constructively, not by rejection: the answer fixes how many objects fit each described
group (or which cells the related objects take), everything else is filled with objects that fit none
of the groups. Each example is checked by the oracle before it is returned, so a bug fails loudly.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

from visplay.world.grammar import (
    COMPARE_OPS,
    DIMS,
    FAMILIES,
    RELATIONS,
    Arith,
    Attribute,
    Compare,
    Count,
    Desc,
    Exist,
    Query,
    Relation,
    RelQuery,
    disjoint,
    family_of,
    phrasings,
    qtype_of,
    sample_query,
)
from visplay.world.oracle import evaluate, in_relation
from visplay.world.scenes import (
    DIMENSIONS,
    GRID,
    MAX_OBJECTS,
    MIN_OBJECTS,
    OBJECT_TYPES,
    Obj,
    Scene,
    in_split,
    make_scene,
)

NObjects = int | tuple[int, int] | None


@dataclass(frozen=True)
class Example:
    """One labeled question on one scene. ``query`` is the question's structured meaning."""

    scene: Scene
    question: str
    answer: str
    family: str
    qtype: str
    query: Query


class _NoScene(Exception):
    """No scene of the requested split was found for this question and answer (tiny plans only)."""


def object_range(n_objects: NObjects) -> tuple[int, int]:
    """``n_objects`` as an inclusive ``(lo, hi)`` range: None = 1..6, an int = exactly that many.

    >>> object_range(None), object_range(3), object_range((1, 2))
    ((1, 6), (3, 3), (1, 2))
    """
    if n_objects is None:
        lo, hi = MIN_OBJECTS, MAX_OBJECTS
    elif isinstance(n_objects, int):
        lo = hi = n_objects
    else:
        lo, hi = n_objects
    if not MIN_OBJECTS <= lo <= hi <= MAX_OBJECTS:
        raise ValueError(f"n_objects must lie in {MIN_OBJECTS}..{MAX_OBJECTS}, got {n_objects!r}")
    return lo, hi


# --- object types and cells -------------------------------------------------------------------------------


@functools.cache
def _matching(desc: Desc) -> tuple[tuple[str, str, str], ...]:
    return tuple(t for t in OBJECT_TYPES if desc.matches_type(t))


@functools.cache
def _avoiding(descs: tuple[Desc, ...]) -> tuple[tuple[str, str, str], ...]:
    """Object types that fit none of ``descs``: the filler that cannot change any answer."""
    return tuple(t for t in OBJECT_TYPES if not any(d.matches_type(t) for d in descs))


def _with(desc: Desc, dim: str, value: str) -> Desc:
    fields = {d: desc.get(d) for d in DIMS}
    fields[dim] = value
    return Desc(**fields)


_CELLS = tuple(range(GRID * GRID))
_PROBE = {c: Obj("circle", "red", "small", *divmod(c, GRID)) for c in _CELLS}  # only the cell matters
# _REGION[rel][c]: cells lying `rel` of cell c; _PAIRS[rel][flag]: ordered cell pairs (x, y) where
# "x is rel of y" equals flag.
_REGION = {r: {c: tuple(x for x in _CELLS if in_relation(_PROBE[x], r, _PROBE[c])) for c in _CELLS} for r in ("left", "right", "above", "below")}
_PAIRS = {
    r: {
        flag: tuple((x, y) for x, y in itertools.permutations(_CELLS, 2) if in_relation(_PROBE[x], r, _PROBE[y]) == flag)
        for flag in (True, False)
    }
    for r in _REGION
}


# --- answer spaces ----------------------------------------------------------------------------------------
# A plan says how to build a scene for one answer; answer_space = the answers that have a plan. Building
# plans and scenes from the same enumeration keeps the two consistent.


@functools.lru_cache(maxsize=65536)
def _plans(query: Query, lo: int, hi: int) -> dict[str, tuple]:
    """answer -> tuple of plans, each a tuple of ints whose meaning depends on the query kind."""
    plans: dict[str, list] = {}

    def add(answer: str, plan: tuple) -> None:
        plans.setdefault(answer, []).append(plan)

    if isinstance(query, Count):
        universal = not _avoiding((query.desc,))
        for k in range(0, hi + 1):
            n_min, n_max = max(lo, k, 1), (k if universal else hi)
            if n_min <= n_max:
                add(str(k), (k, n_min, n_max))
    elif isinstance(query, Exist):
        if _avoiding((query.desc,)):
            add("no", (0, lo, hi))
        add("yes", (1, lo, hi))
    elif isinstance(query, Attribute):
        if query.desc.get(query.dim) is None:
            n_max = hi if _avoiding((query.desc,)) else 1
            for value in DIMENSIONS[query.dim]:
                if lo <= n_max:
                    add(value, (lo, n_max))
    elif isinstance(query, (Compare, Arith)):
        if disjoint(query.a, query.b):  # the sampler only builds groups no object can share
            cover = not _avoiding((query.a, query.b))
            for ca in range(hi + 1):
                for cb in range(hi + 1 - ca):
                    n_min, n_max = max(lo, ca + cb, 1), (ca + cb if cover else hi)
                    if n_min > n_max:
                        continue
                    if isinstance(query, Compare):
                        holds = {"more": ca > cb, "fewer": ca < cb, "same": ca == cb}[query.op]
                        add("yes" if holds else "no", (ca, cb, n_min, n_max))
                    elif query.op == "total":
                        add(str(ca + cb), (ca, cb, n_min, n_max))
                    elif ca >= cb:
                        add(str(ca - cb), (ca, cb, n_min, n_max))
    elif isinstance(query, Relation):
        n_min, n_max = max(lo, 2), (2 if not _avoiding((query.a, query.b)) else hi)
        if disjoint(query.a, query.b) and n_min <= n_max:
            add("yes", (n_min, n_max))
            add("no", (n_min, n_max))
    elif isinstance(query, RelQuery):
        n_min, n_max = max(lo, 2), (2 if not _avoiding((query.anchor,)) else hi)
        if query.subject.get(query.dim) is None and _matching(query.anchor) and n_min <= n_max:
            for value in DIMENSIONS[query.dim]:
                subject = _with(query.subject, query.dim, value)
                if any(not query.anchor.matches_type(t) for t in _matching(subject)):
                    add(value, (n_min, n_max))
    return {answer: tuple(p) for answer, p in plans.items()}


def answer_space(query: Query, n_objects: NObjects = None) -> tuple[str, ...]:
    """Every answer some scene (with ``n_objects`` objects) can give ``query``, in canonical order.

    >>> answer_space(Count(Desc(color="red")))
    ('0', '1', '2', '3', '4', '5', '6')
    >>> answer_space(Count(Desc()), n_objects=(2, 3)), answer_space(Exist(Desc(shape="circle")))
    (('2', '3'), ('no', 'yes'))
    """
    return tuple(_plans(query, *object_range(n_objects)))


# --- building a scene for a chosen answer -----------------------------------------------------------------


def _types(rng: random.Random, pool: tuple, k: int) -> list:
    if k and not pool:
        raise AssertionError("no object type fits the plan")  # _plans rules this out
    return [rng.choice(pool) for _ in range(k)]


def _build(rng: random.Random, query: Query, answer: str, plan: tuple) -> Scene:
    """A scene following ``plan``; the caller checks the answer with the oracle."""
    if isinstance(query, (Count, Exist)):
        k, n_min, n_max = plan
        n = rng.randint(n_min, n_max)
        if isinstance(query, Exist) and k:
            k = rng.randint(1, n)  # "yes" scenes hold 1..n fitting objects
        types = _types(rng, _matching(query.desc), k) + _types(rng, _avoiding((query.desc,)), n - k)
        rng.shuffle(types)  # so the fitting objects do not always take the first cells
        return make_scene(rng, types, rng.sample(_CELLS, n))
    if isinstance(query, Attribute):
        n = rng.randint(*plan)
        types = _types(rng, _matching(_with(query.desc, query.dim, answer)), 1)
        types += _types(rng, _avoiding((query.desc,)), n - 1)
        rng.shuffle(types)
        return make_scene(rng, types, rng.sample(_CELLS, n))
    if isinstance(query, (Compare, Arith)):
        ca, cb, n_min, n_max = plan
        n = rng.randint(n_min, n_max)
        types = _types(rng, _matching(query.a), ca) + _types(rng, _matching(query.b), cb)
        types += _types(rng, _avoiding((query.a, query.b)), n - ca - cb)
        rng.shuffle(types)
        return make_scene(rng, types, rng.sample(_CELLS, n))
    if isinstance(query, Relation):
        n = rng.randint(*plan)
        cell_a, cell_b = rng.choice(_PAIRS[query.rel][answer == "yes"])
        free = [c for c in _CELLS if c not in (cell_a, cell_b)]
        types = _types(rng, _matching(query.a), 1) + _types(rng, _matching(query.b), 1)
        types += _types(rng, _avoiding((query.a, query.b)), n - 2)
        return make_scene(rng, types, [cell_a, cell_b] + rng.sample(free, n - 2))
    if isinstance(query, RelQuery):
        return _build_relquery(rng, query, answer, plan)
    raise TypeError(f"not a query: {query!r}")


def _build_relquery(rng: random.Random, query: RelQuery, answer: str, plan: tuple) -> Scene:
    # The anchor is unique; exactly one object fitting the subject lies in the relation's region;
    # other objects never fit the anchor, and those fitting the subject stay outside the region.
    n = rng.randint(*plan)
    subject = _with(query.subject, query.dim, answer)
    anchor_type = _types(rng, _matching(query.anchor), 1)[0]
    subject_type = rng.choice([t for t in _matching(subject) if not query.anchor.matches_type(t)])
    others = _types(rng, _avoiding((query.anchor,)), n - 2)
    near = [t for t in others if query.subject.matches_type(t)]  # must stay out of the region
    far = [t for t in others if not query.subject.matches_type(t)]
    region = _REGION[query.rel]
    anchors = [c for c in _CELLS if region[c] and GRID * GRID - 1 - len(region[c]) >= len(near)]
    cell_anchor = rng.choice(anchors)
    cell_subject = rng.choice(region[cell_anchor])
    outside = [c for c in _CELLS if c != cell_anchor and c not in region[cell_anchor]]
    cells_near = rng.sample(outside, len(near))
    used = {cell_anchor, cell_subject, *cells_near}
    cells_far = rng.sample([c for c in _CELLS if c not in used], len(far))
    types = [anchor_type, subject_type] + near + far
    return make_scene(rng, types, [cell_anchor, cell_subject] + cells_near + cells_far)


def _scene_for_answer(rng: random.Random, query: Query, answer: str, lo: int, hi: int, split: str) -> Scene:
    plans = _plans(query, lo, hi)[answer]
    # Only the split is rejected here, never the answer: 1 in 16 layouts is held out, so "train" takes
    # ~1.07 tries and "heldout" ~16. A plan with very few layouts may have none held out: give up then.
    for _ in range(2000):
        scene = _build(rng, query, answer, rng.choice(plans))
        if in_split(scene, split):
            return scene
    raise _NoScene(f"no {split} scene for {query} = {answer}")


# --- public samplers --------------------------------------------------------------------------------------


def families_for(n_objects: NObjects = None) -> tuple[str, ...]:
    """The families that can be asked with ``n_objects`` objects (spatial needs two)."""
    return _families_for(*object_range(n_objects))


@functools.cache
def _families_for(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f for f in FAMILIES if f != "spatial" or hi >= 2)


def sample_example(
    rng: random.Random, family: str | None = None, n_objects: NObjects = None, split: str = "train"
) -> Example:
    """A labeled example, balanced per question string: family -> question -> uniform answer -> scene.

    ``family``: one of FAMILIES, or None for uniform over those possible. ``n_objects``: None (1..6), an
    int, or an inclusive ``(lo, hi)`` range (for an easy-scenes curriculum). ``split``: "train" never
    returns a benchmark scene; the benchmark itself uses "heldout". Questions whose answer the range
    already fixes (e.g. "How many objects are there?" with exactly 3 objects) are never asked.

    >>> ex = sample_example(random.Random(0), family="existence")
    >>> ex.family, ex.qtype, ex.answer in ("yes", "no")
    ('existence', 'multiple choice', True)
    """
    lo, hi = object_range(n_objects)
    allowed = _families_for(lo, hi)
    if family is not None and family not in allowed:
        raise ValueError(f"family must be one of {allowed} for {lo}..{hi} objects, not {family!r}")
    while True:
        fam = family if family is not None else rng.choice(allowed)
        query = sample_query(rng, fam)
        space = tuple(_plans(query, lo, hi))
        if len(space) < 2:
            continue  # the answer would be known without looking
        question = rng.choice(phrasings(query))
        answer = rng.choice(space)
        try:
            scene = _scene_for_answer(rng, query, answer, lo, hi, split)
        except _NoScene:
            continue
        result = evaluate(query, scene)
        if result.answer != answer:
            raise AssertionError(f"sampler bug: {question!r} on {scene.to_json()} gives {result}, wanted {answer!r}")
        return Example(scene, question, answer, fam, qtype_of(query), query)


# --- questions about a given scene ------------------------------------------------------------------------


def _subsets(rng: random.Random, dims: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Non-empty subsets of ``dims``, smaller first, shuffled within each size."""
    out: list[tuple[str, ...]] = []
    for k in range(1, len(dims) + 1):
        group = list(itertools.combinations(dims, k))
        rng.shuffle(group)
        out += group
    return out


def unique_desc(rng: random.Random, obj: Obj, scene: Scene, exclude: str | None = None) -> Desc | None:
    """A shortest description fitting ``obj`` and no other object of ``scene`` (not using ``exclude``)."""
    for dims in _subsets(rng, tuple(d for d in DIMS if d != exclude)):
        desc = Desc(**{d: obj.get(d) for d in dims})
        if sum(desc.matches(o) for o in scene.objects) == 1:
            return desc
    return None


def _scene_query(rng: random.Random, scene: Scene, family: str) -> Query | None:
    objects = scene.objects
    if family in ("counting", "existence"):
        if rng.random() < 0.6:  # about an object that is there, so answers are not mostly 0 / "no"
            obj = rng.choice(objects)
            k = rng.randint(0 if family == "counting" else 1, 3)
            desc = Desc(**{d: obj.get(d) for d in rng.sample(DIMS, k)})
            return Count(desc) if family == "counting" else Exist(desc)
        return sample_query(rng, family)
    if family == "attribute":
        obj, dim = rng.choice(objects), rng.choice(DIMS)
        desc = unique_desc(rng, obj, scene, exclude=dim)
        return Attribute(dim, desc) if desc is not None else None
    if family == "spatial":
        if len(objects) < 2:
            return None
        a, b = rng.sample(objects, 2)
        rel = rng.choice(("left", "right", "above", "below"))
        desc_b = unique_desc(rng, b, scene)
        if desc_b is None:
            return None
        if rng.random() < 0.5:
            desc_a = unique_desc(rng, a, scene)
            return Relation(rel, desc_a, desc_b) if desc_a is not None else None
        dim = rng.choice(DIMS)
        others = tuple(d for d in DIMS if d != dim)
        subject = Desc()
        if rng.random() < 0.4:
            qualifier = rng.choice(others)
            subject = Desc(**{qualifier: a.get(qualifier)})
        return RelQuery(dim, subject, rel, desc_b)
    return sample_query(rng, family)  # comparison, arithmetic: every scene answers most of them


def generate_question(rng: random.Random, scene: Scene, family: str | None = None) -> Example:
    """A valid question about ``scene`` (its answer from the oracle), for unlabeled scenes.

    Unlike :func:`sample_example`, the answers here follow the scene, not a balanced prior: use it where
    the question matters more than its answer (e.g. teaching a questioner what valid questions look like).
    Raises ValueError when ``family`` has no valid question on this scene (spatial with one object).

    >>> from visplay.world.scenes import Obj, Scene
    >>> scene = Scene((Obj("circle", "red", "large", 0, 0), Obj("square", "blue", "small", 1, 3)))
    >>> ex = generate_question(random.Random(1), scene, "attribute")
    >>> ex.family, ex.qtype
    ('attribute', 'open')
    """
    families = [family] if family is not None else [f for f in FAMILIES if f != "spatial" or len(scene) >= 2]
    for _ in range(400):
        fam = rng.choice(families)
        query = _scene_query(rng, scene, fam)
        if query is None:
            continue
        result = evaluate(query, scene)
        if result.valid:
            question = rng.choice(phrasings(query))
            return Example(scene, question, result.answer, family_of(query), qtype_of(query), query)
    raise ValueError(f"no valid {family or 'any-family'} question found for this scene")


# --- answer-balanced questions about a given scene ---------------------------------------------------------
# generate_question's answers follow the scene (on random train scenes ~78% of existence answers are "yes",
# most counts are 1): a model trained on them learns the prior instead of looking. With the image fixed the
# answers can still be balanced, by choosing the answer first and then a question about this image that has it.

_SAMPLE_DRAWS = 8  # scene-free pair draws per call (comparison, arithmetic), as many again from the scene
# How often a counted / looked-for description fixes 0..3 attributes: the weights of grammar.sample_query.
_SPECIFICITY = {"counting": {0: 0.1, 1: 0.45, 2: 0.3, 3: 0.15}, "existence": {1: 0.5, 2: 0.35, 3: 0.15}}
#: Every description: each of size, colour, shape either fixed or left open (3 * 7 * 4 = 84).
_ALL_DESCS: tuple[Desc, ...] = tuple(
    Desc(size, color, shape)
    for size in (None, *DIMENSIONS["size"])
    for color in (None, *DIMENSIONS["color"])
    for shape in (None, *DIMENSIONS["shape"])
)


def _scene_pair(rng: random.Random, scene: Scene) -> tuple[Desc, Desc]:
    """A disjoint pair like grammar's ("red circles" / "blue circles"); the first group holds an object of ``scene``."""
    obj, dim = rng.choice(scene.objects), rng.choice(DIMS)
    v2 = rng.choice([v for v in DIMENSIONS[dim] if v != obj.get(dim)])
    shared = {}
    if rng.random() < 0.4:
        other = rng.choice([d for d in DIMS if d != dim])
        shared[other] = obj.get(other)
    return Desc(**{dim: obj.get(dim)}, **shared), Desc(**{dim: v2}, **shared)


def _candidate_queries(rng: random.Random, scene: Scene, family: str) -> list[Query]:
    """Queries of ``family`` about ``scene`` covering its answer space (not yet checked by the oracle)."""
    objects = scene.objects
    out: list[Query] = []
    if family == "counting":
        out += [Count(d) for d in _ALL_DESCS]  # every description: all reachable counts, 0 included
    elif family == "existence":
        out += [Exist(d) for d in _ALL_DESCS if d.dims()]  # "Is there an object?" is always "yes"
    elif family == "attribute":
        for obj in objects:  # every (object, asked dimension) with a unique reference
            for dim in DIMS:
                desc = unique_desc(rng, obj, scene, exclude=dim)
                if desc is not None:
                    out.append(Attribute(dim, desc))
    elif family == "spatial":
        named = [(o, d) for o, d in ((o, unique_desc(rng, o, scene)) for o in objects) if d is not None]
        # every ordered pair of uniquely named objects, every relation: both "yes" and "no" for each pair
        out += [Relation(rel, a, b) for (_, a), (_, b) in itertools.permutations(named, 2) for rel in RELATIONS]
        # what is asked of the one object (of those sharing one attribute) lying <rel> a named anchor
        for anchor, anchor_desc in named:
            for rel in RELATIONS:
                region = [o for o in objects if o is not anchor and in_relation(o, rel, anchor)]
                subjects = [Desc()] + [Desc(**{q: o.get(q)}) for o in region for q in DIMS]
                for subject in dict.fromkeys(subjects):
                    if sum(subject.matches(o) for o in region) == 1:
                        out += [RelQuery(dim, subject, rel, anchor_desc) for dim in DIMS if subject.get(dim) is None]
    elif family in ("comparison", "arithmetic"):
        pairs = [_pair_of(sample_query(rng, family)) for _ in range(_SAMPLE_DRAWS)]
        pairs += [_scene_pair(rng, scene) for _ in range(_SAMPLE_DRAWS)]
        for a, b in pairs:  # both orders and every operation, so "yes" and "no" (or several numbers) occur
            if family == "comparison":
                out += [Compare(op, x, y) for x, y in ((a, b), (b, a)) for op in COMPARE_OPS]
            else:
                out += [Arith("total", a, b), Arith("total", b, a), Arith("diff", a, b), Arith("diff", b, a)]
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return out


def _pair_of(query: Query) -> tuple[Desc, Desc]:
    """The two groups a comparison or sum is about."""
    assert isinstance(query, (Compare, Arith))
    return query.a, query.b


def _form_key(query: Query, answer: str) -> tuple[str, str, str, int]:
    """(question type, asked dimension, answer, attributes described): the levels chosen one after the other.

    The dimension is "" unless an open question asks one; the number of attributes is 0 unless the question
    counts or looks for a described group.
    """
    dim = query.dim if isinstance(query, (Attribute, RelQuery)) else ""
    n_attrs = len(query.desc.dims()) if isinstance(query, (Count, Exist)) else 0
    return (qtype_of(query), dim, answer, n_attrs)


def _valid_answers(rng: random.Random, scene: Scene, family: str) -> dict[Query, str]:
    """Distinct oracle-valid candidate queries of ``family`` on ``scene`` and their answers, in draw order."""
    found: dict[Query, str] = {}
    for query in _candidate_queries(rng, scene, family):
        if query not in found:
            result = evaluate(query, scene)
            if result.valid:
                found[query] = result.answer
    return found


def balanced_question(rng: random.Random, scene: Scene, family: str | None = None) -> Example:
    """A valid question about ``scene`` whose answer is drawn uniformly from the answers this scene offers.

    With the image fixed, a questioner can still balance answers: pick a form and a target answer
    uniformly, then a question about this image with that answer. Steps:

    1. family (the form): ``family``, or uniform over the families with at least one valid question on
       this scene (spatial needs two objects; attribute and spatial need an object named uniquely).
    2. candidates covering the scene's answer space, kept where the oracle calls them valid. Counting and
       existence: every description (0..3 attributes fixed), so every reachable count 0..k, every present
       and every absent group; attribute: every (object, asked dimension) with a shortest unique reference;
       spatial: every ordered pair of uniquely named objects under all four relations (so "yes" and "no"),
       and every "What <dim> is the [<attr>] object <rel> the <anchor>?" with exactly one such object;
       comparison and arithmetic: 8 pairs of groups drawn scene-free and 8 holding one of the scene's objects,
       each in both orders under every operation (more / fewer / same, total / diff).
    3. level by level, each uniform over what the valid candidates offer: the question type (spatial:
       yes/no or open), the asked dimension (open questions), the answer; then, for counting and existence,
       the number of attributes described, weighted as in ``grammar.sample_query`` (so "no" is not mostly
       the three-attribute questions); then a distinct query and one of its phrasings, uniformly.

    So yes/no forms answer "yes" half the time on every scene where both answers occur, and a count is
    uniform over the counts the scene offers. Per question *string* the answers are not balanced (the
    image is given; :func:`sample_example` balances those). Deterministic given ``rng``'s state;
    0.4-0.6 ms a call (spatial ~1 ms). Raises ValueError when ``family`` has no valid question on this
    scene (spatial with one object) or is not a family.

    >>> from visplay.world.scenes import Obj, Scene
    >>> scene = Scene((Obj("circle", "red", "large", 0, 0), Obj("square", "blue", "small", 1, 3)))
    >>> ex = balanced_question(random.Random(0), scene, "existence")
    >>> ex.family, ex.qtype, evaluate(ex.query, scene).answer == ex.answer
    ('existence', 'multiple choice', True)
    >>> balanced_question(random.Random(0), Scene(scene.objects[:1]), "spatial")
    Traceback (most recent call last):
    ...
    ValueError: no valid spatial question on this scene
    """
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    families = [family] if family is not None else [f for f in FAMILIES if f != "spatial" or len(scene) >= 2]
    while families:
        fam = rng.choice(families)
        found = _valid_answers(rng, scene, fam)
        if not found:
            families.remove(fam)  # e.g. attribute when no object can be named uniquely
            continue
        pool = [(_form_key(q, a), q) for q, a in found.items()]
        for level in range(4):
            values = sorted({key[level] for key, _ in pool})
            if level == 3 and fam in _SPECIFICITY:
                value = rng.choices(values, weights=[_SPECIFICITY[fam][k] for k in values])[0]
            else:
                value = rng.choice(values)
            pool = [(key, q) for key, q in pool if key[level] == value]
        query = rng.choice(pool)[1]
        answer = found[query]
        return Example(scene, rng.choice(phrasings(query)), answer, family_of(query), qtype_of(query), query)
    raise ValueError(f"no valid {family or 'any-family'} question on this scene")
