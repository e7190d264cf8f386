"""The toy world's warm-started tiny base VLM: recipe, training loop, and the shipped checkpoint.

The base model is a tiny Qwen2.5-VL (from :func:`visplay.engines.tiny.build_tiny_model`, size ``S``, about
1.4 M parameters) trained by supervised fine-tuning on fresh world scenes every step, for both self-play roles
with the compact prompts of :mod:`visplay.selfplay.prompts`:

- questioner: image -> ``<type>T</type><question>Q</question><answer>A</answer>``, learned from questions
  that are valid on the very scene it sees (:func:`visplay.world.examples.generate_question`), mostly of the
  families that are valid on any scene (see ``BaseRecipe.questioner_families``);
- reasoner: image + question -> ``<think>groups</think> \\boxed{A}``: the count of every group the question
  names (or the one object it refers to, or the cells of the objects it relates), then the answer
  (:func:`reasoner_thought`);
- an auxiliary describe-the-scene task (image + "Describe the image." -> :func:`visplay.world.scenes.describe`).

What makes it see (measured on 2 CPU cores; numbers in the README's Status and the issue thread):

1. **No higher learning rate for the vision tower.** AdamW's steps do not depend on gradient size, so a 3x
   vision learning rate (the probe's idea) blew the merged-token norms up from 0.5 to ~50 in 50 steps and
   the model described every image the same way after 400 steps. One learning rate for all.
2. **Perception warm-up**: the first ``perception_steps`` steps are describe-only on 1-2 object scenes,
   before the roles' answer priors can take over.
3. **A cell probe** (training-only, dropped afterwards): a cosine classifier on each merged vision token
   predicts its 28 px cell's content (empty or one of 36 object types). The features become linearly
   decodable within 50 steps; describe colour accuracy at step 250 rose from 42% to 80% with it. A plain
   linear probe instead rewarded ever larger features (norm 60) and did not help.
4. Balanced answers per question string (the world's sampler), so priors alone sit near chance.

What is known about where it fails: on the previous base model's merged vision tokens (2000 steps) a
logistic-regression probe read each cell's object type (shape, colour, size) with 100% accuracy on fresh
scenes, but the cell itself (position) only 13% (chance 6%): the vision tower is translation-equivariant and
the background is zero, so position reaches the language model only through M-RoPE. The errors were on the
language side: at 1200 steps the reasoner often copied the question's group wrongly into its thought
("purple objects" -> "orange objects"). On the shipped model, comparison stays at the blind level: both
counts of its thought were exact on 59 of 200 held-out items, and the yes/no drawn from exact counts was
right on only 31 of those 59. Things tried at 1200 steps that gave no
measurable gain (all within +3 to +6 points of lift, the noise of a 300-item check): the question before
the image, an auxiliary per-image-token "is this asked about" probe, faint per-cell background tints that
make position visible to the vision tower.

The model is imperfect on purpose (short training), so self-evolution has headroom. :func:`build_base`
copies the shipped checkpoint (``assets/base``) or, with ``rebuild=True``, trains it afresh from
:data:`RECIPE`; the recipe hash (config + training code) is stored beside it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from visplay.engines.tiny import TinySize

ASSET_DIR = Path(__file__).parent / "assets" / "base"
HASH_FILE = "visplay_recipe.json"
DESCRIBE_PROMPT = "Describe the image."


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that determines the base model; its hash is stored beside the shipped checkpoint."""

    seed: int = 0
    """Seeds the model init, the scene stream and the task mix."""
    arch: str = "qwen2_5_vl"
    """Architecture handed to the tiny model factory."""
    size: TinySize = TinySize()
    """Model widths (the factory's ``S`` by default)."""
    steps: int = 3400
    """Optimizer steps (the build is budgeted by steps, not seconds: CPU step time varies +-30%)."""
    batch_size: int = 32
    """Sequences per step (each with its own fresh scene)."""
    lr: float = 1e-3
    """Peak AdamW learning rate of the text model."""
    vision_lr_mult: float = 1.0
    """Learning-rate multiplier of the vision tower and merger. Keep 1: with AdamW a 3x rate blew the vision
    features up (token norm 0.5 -> 50 in 50 steps) and the model stopped seeing."""
    warmup_steps: int = 50
    """Linear warm-up, then cosine decay to 10% of the peak."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    perception_steps: int = 300
    """Warm-up: the first ``perception_steps`` steps are describe-the-scene only (vision before grammar)."""
    describe_start: float = 0.4
    """Share of the batch spent on describe-the-scene after the warm-up ..."""
    describe_end: float = 0.1
    """... decaying linearly to this share at the last step."""
    questioner_share: float = 0.5
    """Share of the role examples (those not spent on describe) that train the questioner; the rest, the reasoner."""
    easy_steps: int = 400
    """Curriculum: scenes of 1-2 objects for the first ``easy_steps`` steps, then the world's own mix."""
    reasoner_think: str = "groups"
    """What the reasoner's ``<think>`` holds: "groups" (the count of every group the question names, or the
    one object it refers to, then the answer: see :func:`reasoner_thought`), "count" (``I see N objects.``)
    or "describe" (the scene's description)."""
    questioner_source: str = "scene"
    """Where questioner examples come from: "scene" (:func:`visplay.world.examples.generate_question` on a
    fresh scene: questions valid on the image it sees) or "balanced" (the reasoner's answer-balanced sampler,
    whose attribute and spatial questions fit the scene only by construction)."""
    questioner_families: tuple = (("counting", 0.2), ("existence", 0.2), ("comparison", 0.2),
                                  ("arithmetic", 0.2), ("attribute", 0.12), ("spatial", 0.08))
    """Family weights of the questioner's examples (source "scene"). Counting, existence, comparison and
    arithmetic questions are valid on every scene; attribute and spatial ones only when the model sees which
    object is unique, so they get less weight."""
    questioner_max_words: int = 0
    """The questioner is trained only on questions of at most this many words (0 = all): a smaller language
    to learn, so its samples at temperature 1 stay well-formed (valid for the oracle). Keeps counting,
    existence, attribute and comparison, and some arithmetic and spatial questions."""
    threads: int = 2
    """CPU threads for training: fixed, so a rebuild reduces in the same order (bit-for-bit as far as CPU
    torch allows). On an idle 2-core machine 2 threads ran a step in 0.27 s against 0.45 s for 1, with
    identical losses; on a busy one they thrash (measured 3-10x slower under load): build on an idle one."""
    vocab_size: int = 1024
    """Tokenizer vocabulary (trained offline on the world's texts so words are single tokens)."""
    probe_weight: float = 1.0
    """Weight of the auxiliary cell probe: a cosine classifier on each merged vision token predicts its
    cell's content (empty or one of the 36 object types). Dense, direct supervision of the vision tower; the
    head is dropped after training (the checkpoint is a plain Qwen2.5-VL)."""
    probe_steps: int = 10**9
    """The probe loss is used for this many steps."""

    def __post_init__(self) -> None:
        if self.reasoner_think not in ("groups", "count", "describe"):
            raise ValueError(f"reasoner_think must be groups, count or describe, not {self.reasoner_think!r}")
        if self.questioner_source not in ("scene", "balanced"):
            raise ValueError(f"questioner_source must be scene or balanced, not {self.questioner_source!r}")
        from visplay.world.grammar import FAMILIES

        unknown = [f for f, _ in self.questioner_families if f not in FAMILIES]
        if unknown or not self.questioner_families or any(w < 0 for _, w in self.questioner_families):
            raise ValueError(f"questioner_families must give families of {FAMILIES} non-negative weights")

    def to_dict(self) -> dict:
        return asdict(self)


RECIPE = BaseRecipe()


# --- the world, behind a tiny adapter ------------------------------------------------------------------

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
    """The reasoner's short output: one perceptual fact (the object count), then the boxed answer.

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


from visplay.world.scenes import COLORS, GRID, SHAPES, SIZES  # noqa: E402  (the world's own vocabulary)

EASY_OBJECTS = (1, 2)
EASY_RANGE = (EASY_OBJECTS[0], EASY_OBJECTS[-1])  # the same, as sample_example's n_objects range
PROBE_SCALE = 10.0


def cell_labels(scene) -> list[int]:
    """Per merged vision token (4x4 cells, row-major): 0 = empty, else 1 + the object's type index."""
    labels = [0] * (GRID * GRID)
    for o in _objects(scene):
        labels[o.row * GRID + o.col] = 1 + (SIZES.index(o.size) * len(COLORS) + COLORS.index(o.color)) * len(SHAPES) + SHAPES.index(o.shape)
    return labels


# --- batches --------------------------------------------------------------------------------------------

@dataclass
class Item:
    messages: list
    image: object
    target: str
    task: str
    scene: object = None


def reasoner_thought(query, scene) -> str:
    """The reasoner's short chain of thought for ``query`` on ``scene`` (recipe ``reasoner_think="groups"``).

    Every counting-like family (counting, existence, comparison, arithmetic) goes through one shared
    skill, counting the objects of a described group, and the answer then follows from the counts in
    text; an attribute question first names the one object it refers to, in full; a spatial one names
    the cells of the objects it relates. The intent: one skill trained by four families, and more than
    the answer token's one bit of supervision per example. (The shipped model, with this thought and 3400
    steps, lifts five families by 10+ points; the previous one, with ``I see N objects.`` and 2000 steps,
    three. The two changes were not measured apart.)

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
    """One questioner training example (an ``Example``), from ``recipe.questioner_source``, at most
    ``recipe.questioner_max_words`` words long (0 = any length)."""
    families, weights = zip(*recipe.questioner_families)
    while True:
        if recipe.questioner_source == "scene":
            scene = world.sample_scene(rng, rng.choice(EASY_OBJECTS) if easy else None)
            try:
                ex = world.generate_question(rng, scene, rng.choices(families, weights)[0])
            except ValueError:  # e.g. spatial on a one-object scene
                continue
        else:
            ex = world.sample_example(rng, n_objects=EASY_RANGE if easy else None)
        if not recipe.questioner_max_words or len(ex.question.split()) <= recipe.questioner_max_words:
            return ex


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
    if recipe.reasoner_think == "groups":
        target = reasoner_output(reasoner_thought(ex.query, ex.scene), ex.answer)
    elif recipe.reasoner_think == "describe":
        target = reasoner_output(world.describe(ex.scene), ex.answer)
    else:
        target = reasoner_target(_n_objects(ex.scene), ex.answer)
    return Item(reasoner_messages(ex.question, "compact"), world.render(ex.scene), target, task, ex.scene)


def collate(processor, items: list[Item]) -> dict:
    """Right-padded inputs (via the processor, so ``mm_token_type_ids`` is right) and labels.

    Labels are -100 on the prompt and padding; the target and its ``<|im_end|>`` are in the loss.
    """
    tok = processor.tokenizer
    prompts = [processor.apply_chat_template(it.messages, add_generation_prompt=True, tokenize=False) for it in items]
    texts = [p + it.target + "<|im_end|>" for p, it in zip(prompts, items)]
    old_side = tok.padding_side
    tok.padding_side = "right"
    try:
        batch = processor(text=texts, images=[it.image for it in items], padding=True, return_tensors="pt")
    finally:
        tok.padding_side = old_side
    ids = batch["input_ids"]
    labels = ids.clone()
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    head = len(tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"])
    for r in range(ids.shape[0]):
        starts = (ids[r] == im_start).nonzero().flatten()
        labels[r, : int(starts[-1]) + head] = -100
    labels[batch["attention_mask"] == 0] = -100
    batch["labels"] = labels
    return dict(batch)


# --- training -------------------------------------------------------------------------------------------

def recipe_hash(recipe: BaseRecipe = RECIPE) -> str:
    """Hash of the recipe config and of the code that turns it into weights (targets, batches, the loop).

    The training functions are hashed as syntax trees without their docstrings: editing a docstring, a
    comment or the layout keeps the hash; changing what the code does changes it.
    """
    h = hashlib.sha256()
    h.update(json.dumps(recipe.to_dict(), sort_keys=True).encode())
    for fn in (questioner_target, reasoner_target, reasoner_thought, reasoner_output, tokenizer_corpus,
               questioner_example, make_item, collate, cell_labels, _task_mix, _lr_factor, train_base, _train):
        h.update(source_fingerprint(inspect.getsource(fn)).encode())
    return h.hexdigest()[:16]


def source_fingerprint(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text: blind to docstrings, comments and layout.

    >>> source_fingerprint("def f(x):\\n    'Doc.'\\n    return x + 1  # why") == source_fingerprint("def f(x): return x + 1")
    True
    >>> source_fingerprint('def f(x): return x + 1') == source_fingerprint('def f(x): return x + 2')
    False
    """
    import ast
    import textwrap

    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def shipped_recipe() -> dict:
    """The recipe record stored beside the shipped checkpoint (hash, recipe, build time)."""
    return json.loads((ASSET_DIR / HASH_FILE).read_text())


def build_base(out_dir: str | Path, rebuild: bool = False, seed: int | None = None, steps: int | None = None,
               check: bool = True, log: Callable[[str], None] = print) -> dict:
    """Write the base model to ``out_dir``: the shipped checkpoint, or (``rebuild``) one trained afresh.

    With ``check`` the toy-world check (:func:`visplay.world.check.check_model`) runs at the end and its
    table is logged. Returns ``{"path", "recipe_hash", "rebuilt", "seconds", "check"}`` (check: the report
    dict or None). ``seed`` / ``steps`` override the recipe (only with ``rebuild``).
    """
    from visplay.errors import UserError
    from visplay.io import atomic_dir

    out_dir = Path(out_dir)
    t0 = time.time()
    if not rebuild:
        if seed is not None or steps is not None:
            raise UserError("--seed/--steps change the recipe; use them with --rebuild")
        if not (ASSET_DIR / HASH_FILE).is_file():
            raise UserError(f"no shipped base model in {ASSET_DIR}; run with --rebuild to train one")
        with atomic_dir(out_dir) as tmp:
            for f in ASSET_DIR.iterdir():
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
        digest = shipped_recipe()["recipe_hash"]
        log(f"copied the shipped base model (recipe {digest}) to {out_dir}")
    else:
        recipe = RECIPE
        if seed is not None:
            recipe = replace(recipe, seed=seed)
        if steps is not None:
            recipe = replace(recipe, steps=steps)
        digest = recipe_hash(recipe)
        log(f"training the base model from the recipe (hash {digest}): {recipe.steps} steps of {recipe.batch_size}")
        with atomic_dir(out_dir) as tmp:
            train_base(tmp, recipe, log=log)
        log(f"trained in {time.time() - t0:.0f}s; written to {out_dir}")
    report = None
    if check:
        from visplay.world.check import check_model, format_check_report

        report = check_model(out_dir, log=log)
        log(format_check_report(report))
    return {"path": out_dir, "recipe_hash": digest, "rebuilt": rebuild, "seconds": round(time.time() - t0, 1),
            "check": report}


def _task_mix(recipe: BaseRecipe, step: int) -> tuple[float, float]:
    """(describe share, questioner share) of the batch at ``step``."""
    if step < recipe.perception_steps:
        return 1.0, 0.0
    frac = (step - recipe.perception_steps) / max(1, recipe.steps - recipe.perception_steps - 1)
    describe = recipe.describe_start + (recipe.describe_end - recipe.describe_start) * frac
    return describe, recipe.questioner_share * (1 - describe)


def _lr_factor(recipe: BaseRecipe, step: int) -> float:
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    t = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))


def train_base(out_dir: str | Path, recipe: BaseRecipe = RECIPE, log: Callable[[str], None] = print,
               world=None, eval_every: int = 0, eval_fn: Callable | None = None) -> Path:
    """Build a fresh tiny model and train it with ``recipe``; write the checkpoint to ``out_dir``.

    ``eval_fn(model, processor, step)`` runs every ``eval_every`` steps (experiments; not part of the recipe).
    """
    world = world or _world()
    # Hashed before training: the hash reads the source files, which may be edited while a build runs.
    digest = recipe_hash(recipe)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _train(out_dir, recipe, log, world, eval_every, eval_fn, digest)
    finally:
        torch.set_num_threads(threads)


def _train(out_dir, recipe, log, world, eval_every, eval_fn, digest) -> Path:
    import tempfile

    from tqdm.auto import tqdm

    from visplay.engines.loading import load_vlm, save_vlm
    from visplay.engines.tiny import build_tiny_model

    torch.manual_seed(recipe.seed)
    with tempfile.TemporaryDirectory() as tmp:
        init = build_tiny_model(Path(tmp) / "init", arch=recipe.arch, size=recipe.size, seed=recipe.seed,
                                vocab_size=recipe.vocab_size, extra_text=tokenizer_corpus(world))
        loaded = load_vlm(init, device="cpu", dtype=torch.float32)
    model, processor = loaded.model, loaded.processor
    model.train()
    visual = [p for n, p in model.named_parameters() if "visual" in n]
    visual_ids = {id(p) for p in visual}
    other = [p for p in model.parameters() if id(p) not in visual_ids]
    n_classes = 1 + len(SHAPES) * len(COLORS) * len(SIZES)
    probe = torch.nn.Linear(model.config.text_config.hidden_size, n_classes)
    visual = visual + list(probe.parameters())
    opt = torch.optim.AdamW([{"params": other, "lr": recipe.lr}, {"params": visual, "lr": recipe.lr * recipe.vision_lr_mult}],
                            weight_decay=recipe.weight_decay, betas=(0.9, 0.98))
    base_lrs = [g["lr"] for g in opt.param_groups]
    # The probe reads the merged vision tokens of the model's own forward pass (no second vision pass).
    captured = {}
    hook = model.model.visual.register_forward_hook(lambda mod, inp, out: captured.__setitem__("feats", out.pooler_output))
    rng = random.Random(recipe.seed)
    t0 = time.time()
    bar = tqdm(range(recipe.steps), desc="base model", unit="step", leave=False)
    smooth = None
    probe_loss, probe_acc = torch.tensor(float("nan")), float("nan")
    for step in bar:
        describe_p, questioner_p = _task_mix(recipe, step)
        items = []
        for _ in range(recipe.batch_size):
            u = rng.random()
            task = "describe" if u < describe_p else "questioner" if u < describe_p + questioner_p else "reasoner"
            items.append(make_item(world, rng, task, step < recipe.easy_steps, recipe))
        batch = collate(processor, items)
        for g, base in zip(opt.param_groups, base_lrs):
            g["lr"] = base * _lr_factor(recipe, step)
        out = model(**batch)
        total = out.loss
        if recipe.probe_weight > 0 and step < recipe.probe_steps:
            feats = captured.pop("feats")  # (batch * 16, hidden), cells in row-major order
            target = torch.tensor([c for it in items for c in cell_labels(it.scene)])
            # A cosine classifier on unit-norm features: a plain linear probe rewards ever larger features
            # (measured: token norms 0.5 -> 60 in 50 steps, and no colour learned).
            logits = PROBE_SCALE * torch.nn.functional.normalize(feats, dim=-1) @ torch.nn.functional.normalize(probe.weight, dim=-1).T
            probe_loss = torch.nn.functional.cross_entropy(logits, target)
            total = total + recipe.probe_weight * probe_loss
            probe_acc = (logits.argmax(-1) == target).float().mean().item()
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = out.loss.item()
        smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
        bar.set_postfix(loss=f"{smooth:.3f}")
        if step % 10 == 0 or step == recipe.steps - 1:
            log(f"step {step:5d}/{recipe.steps}  loss {loss:.4f}  (avg {smooth:.4f})  cell probe {probe_loss.item():.3f}"
                f" acc {probe_acc:.2f}  {time.time() - t0:6.0f}s")
        if eval_fn is not None and eval_every and (step + 1) % eval_every == 0:
            model.eval()
            eval_fn(model, processor, step + 1)
            model.train()
    bar.close()
    hook.remove()
    model.eval()
    out_dir = Path(out_dir)
    save_vlm(model, processor, out_dir)
    (out_dir / HASH_FILE).write_text(json.dumps({"recipe_hash": digest, "recipe": recipe.to_dict(),
                                                 "train_seconds": round(time.time() - t0, 1)}, indent=2) + "\n")
    return out_dir
