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
    """Peak AdamW learning rate, one for every parameter (a higher one for the vision tower blew its
    features up: docs/toy_base_model.md)."""
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
    questioner_families: tuple = (("counting", 0.2), ("existence", 0.2), ("comparison", 0.2),
                                  ("arithmetic", 0.2), ("attribute", 0.12), ("spatial", 0.08))
    """Family weights of the questioner's examples (questions valid on the scene it sees). Counting,
    existence, comparison and arithmetic questions are valid on every scene; attribute and spatial ones only
    when the model sees which object is unique, so they get less weight."""
    threads: int = 2
    """CPU threads for training: fixed, so a rebuild reduces in the same order (bit-for-bit as far as CPU
    torch allows); build on an idle machine (2 threads thrash on a busy one)."""
    vocab_size: int = 1024
    """Tokenizer vocabulary (trained offline on the world's texts so words are single tokens)."""
    probe_weight: float = 1.0
    """Weight of the auxiliary cell probe: a cosine classifier on each merged vision token predicts its
    cell's content (empty or one of the 36 object types). Dense, direct supervision of the vision tower; the
    head is dropped after training (the checkpoint is a plain Qwen2.5-VL)."""

    def __post_init__(self) -> None:
        from visplay.world.grammar import FAMILIES

        unknown = [f for f, _ in self.questioner_families if f not in FAMILIES]
        if unknown or not self.questioner_families or any(w < 0 for _, w in self.questioner_families):
            raise ValueError(f"questioner_families must give families of {FAMILIES} non-negative weights")

    def to_dict(self) -> dict:
        return asdict(self)


RECIPE = BaseRecipe()
