"""Scenes of the toy world: a few shapes in a 4x4 grid of 28 px cells, seeded and JSON-serialisable.

Why a grid of 28 px cells: the Qwen2.5-VL vision tower cuts a 112 px image into 14 px patches and merges
them 2x2, so one merged vision token sees exactly one 28x28 cell. With at most one object per cell, one
token sees one object, which is what a tiny model can learn to read.

Positions are 0-based ``(row, col)`` cells, row 0 at the top, col 0 at the left. Text meant for models
(:func:`describe`) says ``row 1 col 1`` for the top-left cell (1-based, as people count).

Held-out split: every scene belongs to exactly one split, decided by a stable hash of its content (cells
and attributes, not the pixel jitter): one scene layout in :data:`HELDOUT_MODULUS` is held out. Every
training-side sampler (:func:`sample_scene`, :func:`scene_for`, and ``sample_example`` by default) rejects
held-out scenes; the benchmark uses only held-out ones. So no benchmark scene layout can ever appear in
training or among the unlabeled images, whatever seeds either side uses.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES: tuple[str, ...] = ("small", "large")
#: The three attribute dimensions and their values, in a fixed order used everywhere.
DIMENSIONS: dict[str, tuple[str, ...]] = {"size": SIZES, "color": COLORS, "shape": SHAPES}
#: Every (size, color, shape) an object can have: 2 x 6 x 3 = 36.
OBJECT_TYPES: tuple[tuple[str, str, str], ...] = tuple(
    (size, color, shape) for size in SIZES for color in COLORS for shape in SHAPES
)

_TYPE_SET = frozenset(OBJECT_TYPES)

GRID = 4  # cells per side
CELL = 28  # pixels per cell side: one merged vision token
MIN_OBJECTS, MAX_OBJECTS = 1, 6
JITTER = 2  # max pixel offset of an object's centre from its cell's centre, per axis
HELDOUT_MODULUS = 16  # 1 scene layout in 16 is held out for the benchmark

SPLITS = ("train", "heldout", "any")


@dataclass(frozen=True)
class Obj:
    """One object: its attributes, its cell, and a small pixel offset (``dx``, ``dy``) used only to render."""

    shape: str
    color: str
    size: str
    row: int
    col: int
    dx: int = 0
    dy: int = 0

    @property
    def cell(self) -> tuple[int, int]:
        return (self.row, self.col)

    def get(self, dim: str) -> str:
        """The value of attribute ``dim`` ("size", "color" or "shape")."""
        return getattr(self, dim)


@dataclass(frozen=True)
class Scene:
    """A scene: objects in distinct cells, kept sorted by cell so equal scenes compare equal.

    >>> s = Scene((Obj("square", "blue", "small", 2, 0), Obj("circle", "red", "large", 0, 1)))
    >>> [o.cell for o in s.objects]
    [(0, 1), (2, 0)]
    >>> Scene.from_json(s.to_json()) == s
    True
    """

    objects: tuple[Obj, ...]

    def __post_init__(self) -> None:
        objects = tuple(sorted(self.objects, key=_cell_order))
        object.__setattr__(self, "objects", objects)
        _validate(objects)

    @classmethod
    def _trusted(cls, objects: list[Obj]) -> Scene:
        """Skip validation for objects built here from known types and distinct cells (the hot path)."""
        scene = object.__new__(cls)
        object.__setattr__(scene, "objects", tuple(sorted(objects, key=_cell_order)))
        return scene

    def __len__(self) -> int:
        return len(self.objects)

    def to_dict(self) -> dict:
        return {"objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        try:
            return cls(tuple(Obj(**o) for o in data["objects"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a toy-world scene: {exc}") from exc

    def to_json(self) -> str:
        """Compact, canonical JSON (same scene -> same string)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Scene:
        return cls.from_dict(json.loads(text))


def _cell_order(obj: Obj) -> tuple[int, int]:
    return (obj.row, obj.col)


def _validate(objects: tuple[Obj, ...]) -> None:
    if not MIN_OBJECTS <= len(objects) <= MAX_OBJECTS:
        raise ValueError(f"a scene holds {MIN_OBJECTS} to {MAX_OBJECTS} objects, not {len(objects)}")
    cells = set()
    for o in objects:
        if o.shape not in SHAPES or o.color not in COLORS or o.size not in SIZES:
            raise ValueError(f"unknown attribute in {o}")
        if not (0 <= o.row < GRID and 0 <= o.col < GRID):
            raise ValueError(f"cell out of the {GRID}x{GRID} grid: {o}")
        if abs(o.dx) > JITTER or abs(o.dy) > JITTER:
            raise ValueError(f"jitter beyond {JITTER} px: {o}")
        cells.add(o.cell)
    if len(cells) != len(objects):
        raise ValueError("two objects share a cell")


def scene_key(scene: Scene) -> str:
    """The content of a scene without its jitter: what the held-out split is decided on."""
    return ";".join(f"{o.row}{o.col}{o.size[0]}{o.color}{o.shape[0]}" for o in scene.objects)


def is_heldout(scene: Scene) -> bool:
    """Whether this scene layout belongs to the held-out (benchmark) split. Stable across processes."""
    return zlib.crc32(scene_key(scene).encode()) % HELDOUT_MODULUS == 0


def in_split(scene: Scene, split: str) -> bool:
    """Whether ``scene`` belongs to ``split`` ("train", "heldout", or "any")."""
    if split == "any":
        return True
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return is_heldout(scene) == (split == "heldout")


def make_scene(rng: random.Random, types: Iterable[tuple[str, str, str]], cells: Iterable[int]) -> Scene:
    """A scene from object types ``(size, color, shape)`` and distinct flat cells (``row * GRID + col``).

    Jitter is drawn from ``rng`` so that equal seeds give equal pixels.

    >>> describe(make_scene(random.Random(0), [("small", "red", "circle")], [5]))
    'small red circle at row 2 col 2'
    """
    types, cells = list(types), list(cells)
    if (
        len(types) != len(cells)
        or not MIN_OBJECTS <= len(cells) <= MAX_OBJECTS
        or len(set(cells)) != len(cells)
        or not all(0 <= c < GRID * GRID for c in cells)
        or not all(t in _TYPE_SET for t in types)
    ):
        raise ValueError(f"need {MIN_OBJECTS}..{MAX_OBJECTS} known object types in distinct cells: {types}, {cells}")
    objects = []
    span = 2 * JITTER + 1
    for (size, color, shape), cell in zip(types, cells):
        row, col = divmod(cell, GRID)
        dx, dy = divmod(rng.randrange(span * span), span)  # one draw for both offsets: this is a hot path
        objects.append(Obj(shape, color, size, row, col, dx - JITTER, dy - JITTER))
    return Scene._trusted(objects)  # valid by the checks above; skipping _validate doubles sampler speed


def sample_scene(rng: random.Random, n_objects: int | None = None, split: str = "train") -> Scene:
    """A random scene: ``n_objects`` (default uniform 1..6) objects of uniform types in distinct random cells.

    >>> s = sample_scene(random.Random(0), n_objects=3)
    >>> len(s), is_heldout(s)
    (3, False)
    """
    if n_objects is not None and not MIN_OBJECTS <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in {MIN_OBJECTS}..{MAX_OBJECTS}, not {n_objects}")
    while True:
        n = n_objects if n_objects is not None else rng.randint(MIN_OBJECTS, MAX_OBJECTS)
        types = [rng.choice(OBJECT_TYPES) for _ in range(n)]
        scene = make_scene(rng, types, rng.sample(range(GRID * GRID), n))
        if in_split(scene, split):
            return scene


def scene_for(seed: int, index: int) -> Scene:
    """The scene of unlabeled image number ``index`` written with ``seed`` (see ``write_images``).

    A pure function of ``(seed, index)``: analysis can recover any unlabeled image's scene from its file
    name and the seed, while the image folder itself holds pixels only. Always a training-split scene.

    >>> scene_for(0, 7) == scene_for(0, 7) != scene_for(1, 7)
    True
    """
    # A string seed goes through SHA-512 in `random`, so it is stable across processes and Python builds.
    return sample_scene(random.Random(f"visplay/world/images/{seed}/{index}"))


def describe(scene: Scene) -> str:
    """A short canonical description, objects in reading order, rows and columns counted from 1.

    >>> describe(Scene((Obj("circle", "red", "large", 0, 1), Obj("square", "blue", "small", 2, 0))))
    'large red circle at row 1 col 2; small blue square at row 3 col 1'
    """
    return "; ".join(f"{o.size} {o.color} {o.shape} at row {o.row + 1} col {o.col + 1}" for o in scene.objects)
