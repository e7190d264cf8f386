"""The question grammar and the labeled-example sampler: round trip, answer spaces, per-question balance."""

from __future__ import annotations

import collections
import random

import pytest

import visplay.world.examples as examples_module
from visplay.world.examples import answer_space, generate_question, sample_example
from visplay.world.grammar import (
    DIMS,
    FAMILIES,
    Arith,
    Compare,
    Count,
    Desc,
    Exist,
    family_of,
    phrasings,
    qtype_of,
    sample_query,
)
from visplay.world.oracle import evaluate, oracle_answer, parse_question
from visplay.world.scenes import COLORS, SHAPES, SIZES, Obj, Scene, is_heldout, sample_scene

_WORDS = set(COLORS) | set(SHAPES) | set(SIZES)


def _answer_fits_qtype(answer: str, qtype: str) -> bool:
    return {
        "numerical": answer.isdigit(),
        "multiple choice": answer in ("yes", "no"),
        "open": answer in _WORDS,
    }[qtype]


@pytest.fixture(scope="module")
def examples():
    rng = random.Random(0)
    out = [sample_example(rng) for _ in range(3000)]
    out += [sample_example(rng, family=f, n_objects=(1, 2)) for f in FAMILIES for _ in range(100)]
    out += [sample_example(rng, n_objects=6) for _ in range(200)]
    return out


def test_every_generated_question_parses_back_to_itself(examples):
    for ex in examples:
        assert parse_question(ex.question) == ex.query, ex.question
        result = oracle_answer(ex.question, ex.scene)
        assert (result.answer, result.valid, result.family) == (ex.answer, True, ex.family), ex.question
        assert ex.qtype == qtype_of(ex.query) and _answer_fits_qtype(ex.answer, ex.qtype)
        assert not is_heldout(ex.scene)


def test_every_phrasing_of_every_query_parses_back():
    rng = random.Random(1)
    for family in FAMILIES:
        for _ in range(150):
            query = sample_query(rng, family)
            assert family_of(query) == family
            for text in phrasings(query):
                assert parse_question(text) == query, text
                assert parse_question(text.upper().rstrip("?") + " ?!") == query, text


def test_families_are_sampled_evenly_and_n_objects_is_respected(examples):
    counts = collections.Counter(ex.family for ex in examples[:3000])
    assert set(counts) == set(FAMILIES)
    assert min(counts.values()) > 3000 / len(FAMILIES) * 0.8
    assert all(1 <= len(ex.scene) <= 2 for ex in examples[3000:3600])
    assert all(len(ex.scene) == 6 for ex in examples[3600:])
    with pytest.raises(ValueError):
        sample_example(random.Random(0), family="spatial", n_objects=1)  # needs two objects
    with pytest.raises(ValueError):
        sample_example(random.Random(0), family="colour")


def test_answer_space_covers_every_answer_the_oracle_gives():
    # If the answer space missed a reachable answer, the "uniform over the space" balance would be a lie.
    rng = random.Random(2)
    scenes = [sample_scene(rng, split="any") for _ in range(300)]
    for family in FAMILIES:
        for _ in range(25):
            query = sample_query(rng, family)
            space = set(answer_space(query))
            seen = {r.answer for r in (evaluate(query, s) for s in scenes) if r.valid}
            assert seen <= space, (query, seen - space)


@pytest.mark.parametrize(
    "query, space",
    [
        (Count(Desc(color="red")), [str(k) for k in range(7)]),
        (Exist(Desc(shape="circle", size="small")), ["no", "yes"]),
        (Compare("same", Desc(size="small"), Desc(size="large")), ["yes", "no"]),
        (Arith("total", Desc(size="small"), Desc(size="large")), [str(k) for k in range(1, 7)]),  # covers all
        (Arith("diff", Desc(color="red"), Desc(color="blue")), [str(k) for k in range(7)]),
    ],
)
def test_answer_spaces(query, space):
    assert sorted(answer_space(query)) == sorted(space)


@pytest.mark.parametrize(
    "query",
    [
        Count(Desc(color="red")),
        Count(Desc()),  # "How many objects are there?": 1..6
        Exist(Desc(color="green", shape="triangle")),
        Compare("more", Desc(shape="circle"), Desc(shape="square")),
        Arith("diff", Desc(color="red", shape="circle"), Desc(color="blue", shape="circle")),
    ],
)
def test_answers_are_uniform_per_question_string(monkeypatch, query):
    # Pin the question so that every example asks one of its phrasings, then look at each exact string.
    monkeypatch.setattr(examples_module, "sample_query", lambda rng, family: query)
    rng = random.Random(3)
    per_string: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for _ in range(400 * len(phrasings(query))):
        ex = sample_example(rng, family=family_of(query))
        per_string[ex.question][ex.answer] += 1
    space = answer_space(query)
    assert set(per_string) == set(phrasings(query))
    for counts in per_string.values():
        assert set(counts) == set(space)
        top_share = max(counts.values()) / sum(counts.values())
        assert top_share < 1 / len(space) + 0.09, counts  # 400 draws: a few points of noise at most


def test_yes_no_answers_are_balanced_in_every_family(examples):
    for family in ("existence", "comparison", "spatial"):
        answers = [ex.answer for ex in examples[:3000] if ex.family == family and ex.qtype == "multiple choice"]
        assert 0.42 < answers.count("yes") / len(answers) < 0.58, family


def test_sampling_is_deterministic():
    a = [sample_example(random.Random(5)) for _ in range(3)]
    b = [sample_example(random.Random(5)) for _ in range(3)]
    assert a == b


def test_generate_question_gives_valid_questions_on_any_scene():
    rng = random.Random(4)
    families = collections.Counter()
    for _ in range(400):
        scene = sample_scene(rng)
        ex = generate_question(rng, scene)
        assert oracle_answer(ex.question, scene) == evaluate(ex.query, scene)
        assert oracle_answer(ex.question, scene).answer == ex.answer
        families[ex.family] += 1
    assert set(families) == set(FAMILIES)
    lonely = Scene((Obj("circle", "red", "large", 1, 1),))
    with pytest.raises(ValueError):
        generate_question(rng, lonely, "spatial")
    for family in FAMILIES[:-2] + ("arithmetic",):
        assert generate_question(rng, lonely, family).family == family


def test_grammar_only_uses_known_words():
    assert DIMS == ("size", "color", "shape")
    assert Desc(size="small", color="orange", shape="triangle").with_article() == "a small orange triangle"


def test_describe_names_each_object_once():
    from visplay.world.render import describe

    assert describe(sample_scene(random.Random(0), n_objects=1)).count(" at row ") == 1
