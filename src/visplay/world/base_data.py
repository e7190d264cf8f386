"""What the toy base model is trained on: targets for each task, fresh examples, and padded batches.

Three tasks on fresh world scenes, each with the compact prompts of :mod:`visplay.selfplay.prompts`:
questioner (image -> ``<type>T</type><question>Q</question><answer>A</answer>``), reasoner (image +
question -> ``<think>groups</think> \\boxed{A}``, see :func:`reasoner_thought`) and describe-the-scene
(image + "Describe the image." -> :func:`visplay.world.scenes.describe`). Every function here that shapes
a training example is part of the recipe hash (:func:`visplay.world.base_training.recipe_hash`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from visplay.engines.sft import collate  # noqa: F401  (part of the recipe: base_training hashes it)
from visplay.world.recipe import RECIPE, BaseRecipe
from visplay.world.scenes import COLORS, GRID, SHAPES, SIZES

DESCRIBE_PROMPT = "Describe the image."
EASY_OBJECTS = (1, 2)
EASY_RANGE = (EASY_OBJECTS[0], EASY_OBJECTS[-1])  # the same, as sample_example's n_objects range


def _world():
    """The world's modules as one namespace (scenes, render, grammar)."""
    import types

    from visplay.world import examples, grammar, render, scenes

    return types.SimpleNamespace(sample_scene=scenes.sample_scene, render=render.render, describe=scenes.describe,
                                 sample_example=examples.sample_example, generate_question=examples.generate_question,
                                 FAMILIES=grammar.FAMILIES)



def questioner_target(qtype: str, question: str, answer: str) -> str:
    """The questioner's output for one example.

    >>> questioner_target("numerical", "How many red objects are there?", "2")
    '<type>numerical</type><question>How many red objects are there?</question><answer>2</answer>'
    """
    return f"<type>{qtype}</type><question>{question}</question><answer>{answer}</answer>"


def reasoner_target(n_objects: int, answer: str) -> str:
    """The previous base model's reasoner output (the object count, then the boxed answer). No longer a
    training target; its lines stay in the tokenizer corpus, which shapes the shipped tokenizer.

    >>> reasoner_target(3, "red")
    '<think>I see 3 objects.</think> \\\\boxed{red}'
    """
    return reasoner_output(f"I see {n_objects} object{'' if n_objects == 1 else 's'}.", answer)


def tokenizer_corpus(world, n: int = 3000, seed: int = 12345) -> list[str]:
    """World texts for the tokenizer (so colours, shapes and question words are single tokens)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        ex = world.sample_example(rng)
        lines.append(questioner_target(ex.qtype, ex.question, ex.answer))
        lines.append(reasoner_target(_n_objects(ex.scene), ex.answer))
        lines.append(reasoner_output(reasoner_thought(ex.query, ex.scene), ex.answer))
        if i % 3 == 0:
            lines.append(world.describe(ex.scene))
    lines.append(DESCRIBE_PROMPT)
    return lines


def _n_objects(scene) -> int:
    return len(scene.objects) if hasattr(scene, "objects") else len(scene)


def _objects(scene):
    return scene.objects if hasattr(scene, "objects") else scene



def cell_labels(scene) -> list[int]:
    """Per merged vision token (4x4 cells, row-major): 0 = empty, else 1 + the object's type index."""
    labels = [0] * (GRID * GRID)
    for o in _objects(scene):
        labels[o.row * GRID + o.col] = 1 + (SIZES.index(o.size) * len(COLORS) + COLORS.index(o.color)) * len(SHAPES) + SHAPES.index(o.shape)
    return labels



@dataclass
class Item:
    messages: list
    image: object
    target: str
    task: str
    scene: object = None


def reasoner_thought(query, scene) -> str:
    """The reasoner's short chain of thought for ``query`` on ``scene``, the ``<think>`` of its target.

    Every counting-like family (counting, existence, comparison, arithmetic) goes through one shared
    skill, counting the objects of a described group, and the answer then follows from the counts in
    text; an attribute question first names the one object it refers to, in full; a spatial one names
    the cells of the objects it relates (why: docs/toy_base_model.md).

    >>> from visplay.world.grammar import Arith, Attribute, Count, Desc, Relation
    >>> from visplay.world.scenes import Obj, Scene
    >>> s = Scene((Obj("circle", "red", "large", 0, 1), Obj("square", "blue", "small", 2, 0)))
    >>> reasoner_thought(Count(Desc(color="red")), s)
    'red objects: 1'
    >>> reasoner_thought(Arith("total", Desc(shape="circle"), Desc(shape="triangle")), s)
    'circles: 1, triangles: 0'
    >>> reasoner_thought(Attribute("color", Desc(shape="square")), s)
    'the square: small blue square'
    >>> reasoner_thought(Relation("left", Desc(shape="square"), Desc(color="red")), s)
    'square: row 3 col 1, red object: row 1 col 2'
    """
    from visplay.world.grammar import Arith, Attribute, Compare, Count, Exist, Relation, RelQuery
    from visplay.world.oracle import in_relation

    objects = _objects(scene)

    def count(desc) -> str:
        return f"{desc.plural()}: {sum(desc.matches(o) for o in objects)}"

    def name(o) -> str:
        return f"{o.size} {o.color} {o.shape}"

    def where(desc) -> str:
        found = [o for o in objects if desc.matches(o)]
        cells = " and ".join(f"row {o.row + 1} col {o.col + 1}" for o in found) or "none"
        return f"{desc.singular()}: {cells}"

    if isinstance(query, (Count, Exist)):
        return count(query.desc)
    if isinstance(query, (Compare, Arith)):
        return f"{count(query.a)}, {count(query.b)}"
    if isinstance(query, Attribute):
        found = [name(o) for o in objects if query.desc.matches(o)]
        return f"the {query.desc.singular()}: {' and '.join(found) or 'none'}"
    if isinstance(query, Relation):
        return f"{where(query.a)}, {where(query.b)}"
    if isinstance(query, RelQuery):
        anchors = [o for o in objects if query.anchor.matches(o)]
        hits = [name(o) for o in objects if anchors and query.subject.matches(o) and o is not anchors[0]
                and in_relation(o, query.rel, anchors[0])]
        return f"{where(query.anchor)}, {query.rel} it: {' and '.join(hits) or 'none'}"
    raise TypeError(f"not a query: {query!r}")


def reasoner_output(thought: str, answer: str) -> str:
    """``<think>thought</think> \\boxed{answer}``.

    >>> reasoner_output("red objects: 1", "1")
    '<think>red objects: 1</think> \\\\boxed{1}'
    """
    return f"<think>{thought}</think> \\boxed{{{answer}}}"


def questioner_example(world, rng: random.Random, easy: bool, recipe: BaseRecipe = RECIPE):
    """One questioner training example (an ``Example``): a question of a family drawn from
    ``recipe.questioner_families`` that is valid on the fresh scene it shows."""
    families, weights = zip(*recipe.questioner_families)
    while True:
        scene = world.sample_scene(rng, rng.choice(EASY_OBJECTS) if easy else None)
        try:
            return world.generate_question(rng, scene, rng.choices(families, weights)[0])
        except ValueError:  # e.g. spatial on a one-object scene
            continue


def make_item(world, rng: random.Random, task: str, easy: bool, recipe: BaseRecipe = RECIPE) -> Item:
    """One training sequence of ``task`` on a fresh scene (1-2 objects when ``easy``)."""
    from visplay.selfplay.prompts import questioner_messages, reasoner_messages

    if task == "describe":
        scene = world.sample_scene(rng, rng.choice(EASY_OBJECTS) if easy else None)
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": DESCRIBE_PROMPT}]}]
        return Item(msgs, world.render(scene), world.describe(scene), task, scene)
    if task == "questioner":
        ex = questioner_example(world, rng, easy, recipe)
        return Item(questioner_messages("compact"), world.render(ex.scene),
                    questioner_target(ex.qtype, ex.question, ex.answer), task, ex.scene)
    ex = world.sample_example(rng, n_objects=EASY_RANGE if easy else None)
    target = reasoner_output(reasoner_thought(ex.query, ex.scene), ex.answer)
    return Item(reasoner_messages(ex.question, "compact"), world.render(ex.scene), target, task, ex.scene)
