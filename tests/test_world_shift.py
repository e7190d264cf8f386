"""Shifted renders (visplay.world.shift): the grammar, the pixels, and the world's writers and commands."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.cli.main import main
from visplay.world.benchmark import (
    COLUMNS,
    benchmark_shift,
    build_benchmark,
    read_benchmark,
    shift_benchmark,
    write_benchmark,
)
from visplay.world.images import image_name, write_images
from visplay.world.render import BACKGROUND, PALETTE, render
from visplay.world.scenes import Obj, Scene, scene_for
from visplay.world.shift import NAMED_SHIFTS, SHIFT_KINDS, Shift, ShiftSchedule, parse_shift, scene_key

RED_SCENE = Scene((Obj("square", "red", "large", 0, 0), Obj("circle", "blue", "small", 2, 3)))


def _shift(spec: str) -> Shift:
    schedule = parse_shift(spec)
    assert not schedule.is_gradual
    return schedule.final


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


# --- grammar ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical, steps", [
    ("none", "none", ()),
    ("", "none", ()),
    ("  ", "none", ()),
    ("NONE", "none", ()),
    ("contrast:0.25", "contrast:0.25", (("contrast", 0.25),)),
    ("faded", "contrast:0.25", (("contrast", 0.25),)),
    ("blur:3", "blur:3", (("blur", 3.0),)),
    ("blur:0", "blur:0", (("blur", 0.0),)),
    ("noise:.06", "noise:0.06", (("noise", 0.06),)),
    ("dim:1", "dim:1", (("dim", 1.0),)),
    (" Blur : 1.50 , noise:0.06 ", "blur:1.5,noise:0.06", (("blur", 1.5), ("noise", 0.06))),
    ("noise:0.06,blur:1.5", "noise:0.06,blur:1.5", (("noise", 0.06), ("blur", 1.5))),  # order is kept
    ("faded,blur:1", "contrast:0.25,blur:1", (("contrast", 0.25), ("blur", 1.0))),
])
def test_single_stage_specs_parse_to_their_steps_and_canonical_text(text, canonical, steps):
    schedule = parse_shift(text)
    assert schedule.stages == (Shift(steps),)
    assert schedule.spec() == schedule.final.spec() == canonical
    assert not schedule.is_gradual
    assert schedule.is_none == (steps == ())
    assert parse_shift(canonical) == schedule  # the canonical text round-trips


def test_schedules_shorthand_and_names():
    full = parse_shift("contrast:0.5>contrast:0.25")
    assert parse_shift("contrast:0.5>0.25") == parse_shift("contrast:0.5>faded") == full
    assert full.spec() == "contrast:0.5>contrast:0.25" and full.is_gradual and not full.is_none
    assert full.final == Shift((("contrast", 0.25),))
    assert [full.for_iteration(i).spec() for i in (1, 2, 3, 10)] == ["contrast:0.5", "contrast:0.25",
                                                                      "contrast:0.25", "contrast:0.25"]
    three = parse_shift("none>blur:1>2>3")
    assert three.spec() == "none>blur:1>blur:2>blur:3" and not three.is_none and three.final.spec() == "blur:3"
    assert three.for_iteration(1).is_none
    assert parse_shift("faded>0.2").spec() == "contrast:0.25>contrast:0.2"  # a name has one kind: shorthand works
    assert parse_shift("none>none").is_none and parse_shift("none>none").is_gradual
    with pytest.raises(ValueError, match="from 1"):
        full.for_iteration(0)
    with pytest.raises(ValueError):
        ShiftSchedule(())


def test_every_named_shift_and_kind_is_documented():
    assert NAMED_SHIFTS == {"faded": "contrast:0.25"}
    assert set(SHIFT_KINDS) >= {"contrast", "blur", "noise", "dim"}
    for kind, help_text in SHIFT_KINDS.items():
        assert help_text.startswith(f"{kind}:") and "\n" not in help_text


def test_amounts_round_trip_beyond_six_digits():
    schedule = parse_shift("blur:1.23456789")
    assert schedule.final.steps == (("blur", 1.23456789),)
    assert parse_shift(schedule.spec()) == schedule


@pytest.mark.parametrize("text, problem", [
    ("wobble:1", "unknown kind 'wobble'"),
    ("blur:x", "not a number"),
    ("blur:", "not a number"),
    ("noise:nan", "not a finite number"),
    ("contrast:-1", "negative"),
    ("blur:-0.5", "negative"),
    ("noise:-0.1", "negative"),
    ("dim:-1", "negative"),
    ("contrast:0", "out of range"),
    ("contrast:1.01", "out of range"),
    ("dim:0", "out of range"),
    ("dim:1.5", "out of range"),
    ("contrast", "no colon"),
    ("faded>blur", "no colon"),
    ("contrast:0.5>", "empty stage"),
    (">contrast:0.5", "empty stage"),
    ("contrast:0.5>>0.25", "empty stage"),
    ("contrast:0.5,", "empty step"),
    ("0.5", "the first stage"),
    ("blur:1,noise:0.1>0.2", "exactly one kind"),
    ("none>0.5", "exactly one kind"),
    ("contrast:0.5>-0.2", "negative"),
    ("contrast:0.5,contrast:0.4", "appears twice"),
    ("faded,contrast:0.5", "appears twice"),
    ("none,blur:1", "whole stage"),
])
def test_bad_specs_fail_in_one_line_naming_the_problem_and_the_grammar(text, problem):
    with pytest.raises(ValueError) as info:
        parse_shift(text)
    message = str(info.value)
    assert "\n" not in message
    assert problem in message and repr(text) in message
    assert "KIND:AMOUNT" in message and "contrast, blur, noise, dim" in message and "faded" in message


# --- pixels -----------------------------------------------------------------------------------------------


def test_contrast_blends_toward_the_background_by_hand():
    # Red (215, 25, 35) at 0.25: 245 - 0.25*30 = 237.5 -> 238 (halves round up), 245 - 0.25*220 = 190,
    # 245 - 0.25*210 = 192.5 -> 193. Blue (30, 70, 220) at 0.5: 137.5 -> 138, 157.5 -> 158, 232.5 -> 233.
    clean = render(RED_SCENE)
    faded = _shift("faded").apply(clean, scene_key(RED_SCENE))
    assert faded.getpixel((5, 5)) == (238, 190, 193)
    assert faded.getpixel((0, 0)) == BACKGROUND  # the background does not move
    half = _shift("contrast:0.5").apply(clean, scene_key(RED_SCENE))
    blue_at = next(xy for xy in ((x, y) for x in range(112) for y in range(112)) if clean.getpixel(xy) == PALETTE["blue"])
    assert half.getpixel(blue_at) == (138, 158, 233)
    assert clean.getpixel((5, 5)) == PALETTE["red"]  # the input is untouched


def test_dim_scales_every_pixel_by_hand():
    # 245*0.6 = 147; red: 129, 15, 21 (exact); at 0.5: 107.5 -> 108, 12.5 -> 13, 17.5 -> 18 (halves up).
    clean = render(RED_SCENE)
    dim = _shift("dim:0.6").apply(clean, "k")
    assert dim.getpixel((0, 0)) == (147, 147, 147) and dim.getpixel((5, 5)) == (129, 15, 21)
    assert _shift("dim:0.5").apply(clean, "k").getpixel((5, 5)) == (108, 13, 18)


def test_steps_apply_left_to_right():
    # Red's R. contrast then dim: 238*0.5 = 119; dim then contrast: 107.5 -> 108, then 245 + 0.25*(108 - 245)
    # = 210.75 -> 211.
    clean = render(RED_SCENE)
    assert _shift("contrast:0.25,dim:0.5").apply(clean, "k").getpixel((5, 5))[0] == 119
    assert _shift("dim:0.5,contrast:0.25").apply(clean, "k").getpixel((5, 5))[0] == 211


@pytest.mark.parametrize("spec", ["none", "contrast:1", "dim:1", "blur:0", "noise:0", "blur:0,noise:0,contrast:1"])
def test_identity_amounts_leave_the_pixels_unchanged(spec):
    clean = render(RED_SCENE)
    out = _shift(spec).apply(clean, scene_key(RED_SCENE))
    assert out is not clean and out.mode == "RGB" and out.size == clean.size
    assert out.tobytes() == clean.tobytes()


@pytest.mark.parametrize("spec", ["blur:1.5", "noise:0.06", "blur:1,noise:0.1", "faded,noise:0.25"])
def test_blur_and_noise_are_deterministic_per_scene(spec):
    shift = _shift(spec)
    a, b = scene_for(0, 1), scene_for(0, 2)
    first = shift.apply(render(a), scene_key(a)).tobytes()
    assert shift.apply(render(a), scene_key(a)).tobytes() == first  # same scene, same key: same bytes
    assert first != render(a).tobytes()
    if "noise" in spec:
        # Same pixels under two keys: different noise (the key, not the image, seeds it).
        other = shift.apply(render(a), scene_key(b)).tobytes()
        assert other != first


def test_noise_has_the_asked_spread_and_is_the_same_in_another_process():
    shift = _shift("noise:0.06")
    clean = render(RED_SCENE)
    noisy = shift.apply(clean, scene_key(RED_SCENE))
    diff = _pixels(noisy).astype(float) - _pixels(clean).astype(float)
    background = (_pixels(clean) == BACKGROUND).all(axis=2)
    # sd 0.06*255 = 15.3; clipping at 255 halves the upward side on the 245 background, so test the objects.
    assert 13.5 < diff[~background].std() < 17
    code = ("import sys; from visplay.world.shift import parse_shift, scene_key; from visplay.world.render import render;"
            "from visplay.world.scenes import Scene; s = Scene.from_json(sys.argv[1]);"
            "sys.stdout.write(parse_shift('noise:0.06').final.apply(render(s), scene_key(s)).tobytes().hex())")
    out = subprocess.run([sys.executable, "-c", code, RED_SCENE.to_json()], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONHASHSEED": "123"})  # another str hash()
    assert out.returncode == 0, out.stderr
    assert bytes.fromhex(out.stdout) == noisy.tobytes()


def test_scene_key_is_the_scenes_canonical_json():
    assert scene_key(RED_SCENE) == RED_SCENE.to_json() == scene_key(Scene.from_json(RED_SCENE.to_json()))


# --- writers ----------------------------------------------------------------------------------------------


def test_write_images_with_a_shift_changes_only_the_pixels(tmp_path):
    clean = write_images(tmp_path / "clean", 6, seed=2)
    same = write_images(tmp_path / "none", 6, seed=2, shift=_shift("none"))
    faded = write_images(tmp_path / "faded", 6, seed=2, shift=_shift("faded"))
    names = sorted(p.name for p in clean.iterdir())
    assert names == sorted(p.name for p in faded.iterdir()) == [image_name(i, 6) for i in range(6)]
    for index, name in enumerate(names):
        assert (same / name).read_bytes() == (clean / name).read_bytes()
        scene = scene_for(2, index)
        shifted = Image.open(faded / name)
        assert shifted.size == (112, 112) and shifted.mode == "RGB"
        assert shifted.tobytes() == _shift("faded").apply(render(scene), scene_key(scene)).tobytes()
        assert shifted.tobytes() != Image.open(clean / name).convert("RGB").tobytes()


def test_benchmark_with_a_shift_has_the_same_rows_but_the_images():
    clean = build_benchmark(n=18, seed=1)
    assert build_benchmark(n=18, seed=1, shift=_shift("none")) == clean
    shifted = build_benchmark(n=18, seed=1, shift=_shift("blur:1,noise:0.06"))
    assert [list(r) for r in shifted] == [list(COLUMNS)] * 18
    for a, b in zip(clean, shifted):
        assert {k: v for k, v in a.items() if k != "image"} == {k: v for k, v in b.items() if k != "image"}
        assert a["image"] != b["image"]
        scene = Scene.from_json(b["scene"])
        shown = Image.open(io.BytesIO(b["image"]))
        assert shown.tobytes() == _shift("blur:1,noise:0.06").apply(render(scene), scene_key(scene)).tobytes()


def test_shift_benchmark_equals_writing_the_benchmark_shifted(tmp_path):
    shift = _shift("faded,noise:0.06")
    written = write_benchmark(tmp_path / "direct.parquet", n=24, seed=5, shift=shift)
    clean = write_benchmark(tmp_path / "clean.parquet", n=24, seed=5)
    copied = shift_benchmark(tmp_path / "clean.parquet", tmp_path / "copy.parquet", shift)
    assert copied == written == read_benchmark(tmp_path / "copy.parquet")
    assert (tmp_path / "copy.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()
    assert pq.read_schema(tmp_path / "copy.parquet").names == list(COLUMNS)
    assert benchmark_shift(tmp_path / "copy.parquet") == "contrast:0.25,noise:0.06"
    assert benchmark_shift(tmp_path / "clean.parquet") == "none"
    # Re-rendered from the scenes: shifting a shifted copy back to none gives the clean file, byte for byte.
    back = shift_benchmark(tmp_path / "copy.parquet", tmp_path / "back.parquet", None)
    assert back == clean
    assert (tmp_path / "back.parquet").read_bytes() == (tmp_path / "clean.parquet").read_bytes()
    # In place is safe (the whole file is read before the atomic replace).
    shift_benchmark(tmp_path / "clean.parquet", tmp_path / "clean.parquet", shift)
    assert (tmp_path / "clean.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()


# --- command line -----------------------------------------------------------------------------------------


def test_world_commands_write_shifted_images_and_benchmarks(tmp_path, capsys):
    assert main(["world", "images", "--out", str(tmp_path / "img"), "--n", "3", "--seed", "4", "--shift", "faded"]) == 0
    assert "shift contrast:0.25" in capsys.readouterr().out
    scene = scene_for(4, 0)
    assert Image.open(tmp_path / "img" / image_name(0, 3)).tobytes() == \
        _shift("faded").apply(render(scene), scene_key(scene)).tobytes()
    assert main(["world", "benchmark", "--out", str(tmp_path / "b.parquet"), "--n", "6", "--shift", "blur:1.5"]) == 0
    assert "shift blur:1.5" in capsys.readouterr().out
    assert read_benchmark(tmp_path / "b.parquet") == build_benchmark(n=6, shift=_shift("blur:1.5"))


@pytest.mark.parametrize("command", ["images", "benchmark"])
@pytest.mark.parametrize("spec, problem", [
    ("blur:x", "not a number"),
    ("wobble:1", "unknown kind"),
    ("contrast:-1", "negative"),
    ("contrast:0.5>0.25", "one per stage"),
])
def test_bad_shift_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, command, spec, problem):
    out = tmp_path / "images" if command == "images" else tmp_path / "sub" / "b.parquet"
    assert main(["world", command, "--out", str(out), "--n", "2", "--shift", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("visplay: error: --shift") and "\n" not in err and problem in err
    assert list(tmp_path.iterdir()) == []


def test_bad_shift_through_the_real_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "visplay", "world", "images", "--out", str(tmp_path / "x"),
                             "--shift", "blur:x"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "blur:x" in result.stderr
    assert list(tmp_path.iterdir()) == []
