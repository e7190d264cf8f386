"""The held-out toy benchmark, the blind baseline, the unlabeled image folder and the `visplay world` commands."""

from __future__ import annotations

import collections
import io

import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.cli.main import main
from visplay.world.benchmark import (
    COLUMNS,
    DEFAULT_SIZE,
    blind_baseline,
    build_benchmark,
    family_counts,
    read_benchmark,
    write_benchmark,
)
from visplay.world.grammar import FAMILIES
from visplay.world.images import image_index, scene_of_image, write_images
from visplay.world.oracle import oracle_answer
from visplay.world.render import render
from visplay.world.scenes import Scene, is_heldout, scene_for


@pytest.fixture(scope="module")
def full_benchmark():
    return build_benchmark()  # the default: what every toy evaluation scores on


def test_default_benchmark_is_balanced_over_families(full_benchmark):
    assert len(full_benchmark) == DEFAULT_SIZE >= 600
    assert family_counts(full_benchmark) == {f: DEFAULT_SIZE // len(FAMILIES) for f in FAMILIES}
    assert len({r["id"] for r in full_benchmark}) == DEFAULT_SIZE


def test_benchmark_rows_are_correct_and_held_out(full_benchmark):
    for row in full_benchmark:
        scene = Scene.from_json(row["scene"])
        assert is_heldout(scene)  # never a layout any training-side sampler can produce
        assert oracle_answer(row["question"], scene).answer == row["answer"]
        image = Image.open(io.BytesIO(row["image"]))
        assert image.size == (112, 112)
    first = Scene.from_json(full_benchmark[0]["scene"])
    assert Image.open(io.BytesIO(full_benchmark[0]["image"])).convert("RGB").tobytes() == render(first).tobytes()


def test_blind_baseline_sits_near_chance(full_benchmark):
    blind = blind_baseline(full_benchmark)
    # chance = mean 1/|answer space|: ~0.34 with this family mix (yes/no 0.5, counts 1/7, colours 1/6...)
    assert 0.25 < blind.chance < 0.45
    assert blind.accuracy < blind.chance + 0.06, blind
    assert set(blind.per_family) == set(FAMILIES)
    for family in ("existence", "comparison"):  # pure yes/no families: a blind model gets half
        assert blind.per_family[family] < 0.62, blind.per_family


def test_answers_are_balanced_within_question_types(full_benchmark):
    yes_no = [r["answer"] for r in full_benchmark if r["qtype"] == "multiple choice"]
    assert 0.42 < yes_no.count("yes") / len(yes_no) < 0.58
    counts = collections.Counter(r["answer"] for r in full_benchmark if r["family"] == "counting")
    assert max(counts.values()) / sum(counts.values()) < 0.25  # 7 answers (0..6): 1/7 = 0.14 expected


def test_blind_baseline_catches_priors():
    # A benchmark whose answers follow the question string is solved blind: the helper must say so.
    rows = [{"question": "Is there a red circle?", "answer": "yes", "family": "existence"}] * 9
    rows += [{"question": "How many circles are there?", "answer": "2", "family": "counting"}] * 9
    blind = blind_baseline(rows, prior=rows)
    assert blind.accuracy == 1.0 and blind.n_prior == 18 and blind.correct == (True,) * 18
    assert blind.chance == pytest.approx((0.5 + 1 / 7) / 2)


def test_benchmark_is_deterministic_to_the_byte(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_benchmark(a, n=24, seed=3)
    write_benchmark(b, n=24, seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert build_benchmark(n=24, seed=4) != build_benchmark(n=24, seed=3)
    table = pq.read_table(a)
    assert tuple(table.column_names) == COLUMNS
    assert str(table.schema.field("image").type) == "binary"
    rows = read_benchmark(a)
    assert rows == build_benchmark(n=24, seed=3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_write_images_writes_pngs_only_and_scenes_are_recoverable(tmp_path):
    out = tmp_path / "imgs"
    write_images(out, n=5, seed=9)
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"image_{i:05d}.png" for i in range(5)]
    for path in sorted(out.iterdir()):
        pixels = Image.open(path).convert("RGB").tobytes()
        assert pixels == render(scene_for(9, image_index(path))).tobytes()
        assert scene_of_image(path, 9) == scene_for(9, image_index(path))
        assert not is_heldout(scene_of_image(path, 9))
    with pytest.raises(FileExistsError):
        write_images(out, n=2, seed=1)  # never mix two seeds in one folder
    empty = tmp_path / "empty"
    empty.mkdir()
    write_images(empty, n=1, seed=0)
    assert [p.name for p in empty.iterdir()] == ["image_00000.png"]


def test_cli_images_and_benchmark(tmp_path, capsys, monkeypatch):
    # Only this command's module: the others import torch, which costs seconds and is not under test here.
    monkeypatch.setattr("visplay.cli.main.SUBCOMMAND_MODULES", ["visplay.cli.world"])
    out = tmp_path / "imgs"
    assert main(["world", "images", "--out", str(out), "--n", "3", "--seed", "2"]) == 0
    assert len(list(out.iterdir())) == 3
    assert main(["world", "images", "--out", str(out), "--n", "3"]) == 2  # refuses a non-empty folder
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["world", "images", "--out", str(tmp_path / "x"), "--n", "0"]) == 2
    bench = tmp_path / "bench.parquet"
    assert main(["world", "benchmark", "--out", str(bench), "--n", "12", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 12 questions" in printed and "blind" in printed
    assert read_benchmark(bench) == build_benchmark(n=12, seed=1)
    assert main(["world", "benchmark", "--out", str(tmp_path), "--n", "12"]) == 2


def test_images_questions_follow_the_scene_and_are_valid(tmp_path, monkeypatch):
    """--questions images: the in-distribution check. Every question is valid on its (training-split)
    scene with the oracle's answer, families in turn, and the answers follow the scenes: skewed, unlike
    the balanced benchmark's."""
    from visplay.world.scenes import Scene, is_heldout

    monkeypatch.setattr("visplay.cli.main.SUBCOMMAND_MODULES", ["visplay.cli.world"])
    path = tmp_path / "images.parquet"
    assert main(["world", "benchmark", "--out", str(path), "--n", "240", "--questions", "images"]) == 0
    rows = read_benchmark(path)
    assert [r["family"] for r in rows[:6]] == list(FAMILIES)
    for row in rows:
        scene = Scene.from_json(row["scene"])
        assert not is_heldout(scene)
        assert oracle_answer(row["question"], scene).answer == row["answer"]
    existence = collections.Counter(r["answer"] for r in rows if r["family"] == "existence")
    assert existence["yes"] > 2 * existence["no"]  # balanced benchmark: about equal
    assert rows != build_benchmark(n=240)
    with pytest.raises(SystemExit) as exc:  # argparse: usage and the error, exit code 2
        main(["world", "benchmark", "--out", str(path), "--questions", "uniform"])
    assert exc.value.code == 2
