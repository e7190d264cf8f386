"""The recipe of the toy world's tiny base VLM: every setting that determines its weights.

Its hash (:func:`visplay.world.base_training.recipe_hash`: these settings plus the training code) is stored
beside the shipped checkpoint in ``HASH_FILE``. Why each value is what it is: docs/toy_base_model.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from visplay.engines.tiny import TinySize

# The recipe record (hash, recipe, build time) written beside a trained checkpoint.
HASH_FILE = "visplay_recipe.json"


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
