"""Scenes and rendering of the toy world: validity, serialisation, held-out split, exact deterministic pixels."""

from __future__ import annotations

import hashlib
import itertools
import math
import random

import pytest

from visplay.data.codec import png_bytes
from visplay.world.render import BACKGROUND, IMAGE_SIZE, PALETTE, object_box, render
from visplay.world.scenes import (
    CELL,
    GRID,
    JITTER,
    MAX_OBJECTS,
    Obj,
    Scene,
    describe,
    is_heldout,
    sample_scene,
    scene_for,
)


def _scenes(n: int, seed: int = 0) -> list[Scene]:
    rng = random.Random(seed)
    return [sample_scene(rng) for _ in range(n)]


def test_sampled_scenes_are_valid_and_from_the_training_split():
    scenes = _scenes(500)
    sizes = {len(s) for s in scenes}
    assert sizes == set(range(1, MAX_OBJECTS + 1))
    for s in scenes:
        assert len({o.cell for o in s.objects}) == len(s)
        assert all(abs(o.dx) <= JITTER and abs(o.dy) <= JITTER for o in s.objects)
        assert not is_heldout(s)


def test_heldout_split_is_about_one_in_sixteen():
    scenes = [sample_scene(random.Random(i), split="any") for i in range(3000)]
    share = sum(map(is_heldout, scenes)) / len(scenes)
    assert 0.04 < share < 0.09
    heldout = sample_scene(random.Random(1), split="heldout")
    assert is_heldout(heldout)


def test_json_round_trip_and_validation():
    for s in _scenes(200, seed=1):
        assert Scene.from_json(s.to_json()) == s
        assert Scene.from_dict(s.to_dict()) == s
    good = Obj("circle", "red", "large", 0, 0)
    bad_scenes = [
        (good, Obj("square", "blue", "small", 0, 0)),  # shared cell
        (Obj("circle", "pink", "large", 0, 0),),  # unknown colour
        (Obj("circle", "red", "large", 4, 0),),  # outside the grid
        (Obj("circle", "red", "large", 0, 0, dx=3),),  # jitter too large
        (),  # empty
        tuple(Obj("circle", "red", "large", r, c) for r in range(2) for c in range(4)),  # 8 objects
    ]
    for objects in bad_scenes:
        with pytest.raises(ValueError):
            Scene(objects)
    with pytest.raises(ValueError):
        Scene.from_dict({"objects": [{"shape": "circle"}]})


def test_scene_for_is_a_pure_function_of_seed_and_index():
    assert scene_for(3, 10) == scene_for(3, 10)
    assert len({scene_for(3, i).to_json() for i in range(50)}) == 50
    assert scene_for(3, 10) != scene_for(4, 10)
    # Tripwire: the unlabeled images (and the base model trained on this world) depend on this mapping.
    assert hashlib.sha256(scene_for(0, 0).to_json().encode()).hexdigest()[:12] == _GOLDEN_SCENE


def test_describe_reads_in_order_counting_from_one():
    s = Scene((Obj("triangle", "green", "small", 3, 3), Obj("circle", "red", "large", 0, 1)))
    assert describe(s) == "large red circle at row 1 col 2; small green triangle at row 4 col 4"


def test_palette_is_saturated_and_well_separated():
    colours = list(PALETTE.values())
    assert len(set(colours)) == len(PALETTE) == 6
    assert min(math.dist(a, b) for a, b in itertools.combinations(colours, 2)) >= 90
    assert min(math.dist(c, BACKGROUND) for c in colours) >= 150


def test_pixels_are_background_or_the_objects_colour_inside_its_own_cell():
    for s in _scenes(100, seed=2):
        img = render(s)
        assert img.size == (IMAGE_SIZE, IMAGE_SIZE) and img.mode == "RGB"
        px = img.load()
        by_cell = {o.cell: o for o in s.objects}
        for r, c in itertools.product(range(GRID), repeat=2):
            obj = by_cell.get((r, c))
            colours = {px[x, y] for y in range(r * CELL, (r + 1) * CELL) for x in range(c * CELL, (c + 1) * CELL)}
            if obj is None:
                assert colours == {BACKGROUND}
                continue
            assert colours == {BACKGROUND, PALETTE[obj.color]}  # no antialiasing, nothing else
            # a 1 px background frame around every cell: objects never touch
            frame = [(c * CELL + i, r * CELL) for i in range(CELL)] + [(c * CELL, r * CELL + i) for i in range(CELL)]
            frame += [(c * CELL + i, r * CELL + CELL - 1) for i in range(CELL)]
            frame += [(c * CELL + CELL - 1, r * CELL + i) for i in range(CELL)]
            assert {px[p] for p in frame} == {BACKGROUND}
            x0, y0, x1, y1 = object_box(obj)
            assert px[(x0 + x1) // 2, (y0 + y1) // 2 + 2] == PALETTE[obj.color]


def test_shapes_and_sizes_differ_in_pixel_area():
    def area(shape: str, size: str) -> int:
        img = render(Scene((Obj(shape, "blue", size, 1, 1),)))
        return sum(count for count, colour in img.getcolors() if colour != BACKGROUND)

    for size in ("small", "large"):
        a = {shape: area(shape, size) for shape in ("circle", "square", "triangle")}
        assert a["triangle"] < a["circle"] < a["square"]
    assert area("square", "small") * 3 < area("square", "large")


def test_same_scene_same_bytes():
    for i in range(20):
        a, b = render(scene_for(7, i)), render(scene_for(7, i))
        assert a.tobytes() == b.tobytes()
        assert png_bytes(a) == png_bytes(b)
    # Tripwire: a change here changes what every trained toy model sees.
    pixels = b"".join(render(scene_for(0, i)).tobytes() for i in range(10))
    assert hashlib.sha256(pixels).hexdigest()[:12] == _GOLDEN_PIXELS


_GOLDEN_SCENE = "048aca23ee5a"
_GOLDEN_PIXELS = "8db62429942d"
