"""The shared low-level paths: one metrics.jsonl writer, one image decoder and PNG encoder, image_root."""

from __future__ import annotations

import base64
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.data.codec import ImageDecodeError, data_uri, decode_image, png_bytes
from visplay.data.images import open_image_source
from visplay.io import append_jsonl, json_safe


def _png(color=(200, 30, 30), size=(8, 8)) -> bytes:
    return png_bytes(Image.new("RGB", size, color))


# --- metrics.jsonl ----------------------------------------------------------------------------------


def test_append_jsonl_writes_nan_and_inf_as_null_at_any_depth(tmp_path):
    import numpy as np

    path = tmp_path / "sub" / "metrics.jsonl"
    append_jsonl(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -math.inf}, "e": np.float32("nan"),
                        "f": np.int64(3), "g": tmp_path})
    append_jsonl(path, {"step": 2})
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])  # strict JSON: no NaN literal
    assert first == {"a": None, "b": [1.0, None], "c": {"d": None}, "e": None, "f": 3, "g": str(tmp_path)}
    assert "NaN" not in lines[0] and "Infinity" not in lines[0]


def test_runfolder_and_grpo_callbacks_share_the_writer(tmp_path):
    from visplay.engines import grpo_callbacks
    from visplay.runfolder import RunFolder

    assert grpo_callbacks.append_jsonl is append_jsonl
    run = RunFolder(tmp_path)
    run.log_metrics({"event": "step", "reward_mean": float("nan")})
    grpo_callbacks.append_jsonl(run.metrics_path, {"event": "grpo_end", "kl": float("inf")})
    assert run.read_metrics() == [{"event": "step", "reward_mean": None}, {"event": "grpo_end", "kl": None}]
    assert grpo_callbacks.step_record({"reward": float("nan"), "reward/x": float("-inf")}) == \
        {"reward_mean": None, "reward_x": None}


def test_json_safe_keeps_finite_values():
    assert json_safe({"a": 1, "b": 0.5, "c": "x", "d": None, "e": (1, 2)}) == {"a": 1, "b": 0.5, "c": "x", "d": None,
                                                                                "e": [1, 2]}


# --- decode_image -----------------------------------------------------------------------------------


def test_decode_image_accepts_every_reference_kind(tmp_path):
    raw = _png()
    (tmp_path / "a.png").write_bytes(raw)
    b64 = base64.b64encode(raw).decode()
    refs = [raw, bytearray(raw), {"bytes": raw, "path": None}, {"bytes": None, "path": str(tmp_path / "a.png")},
            [raw], tmp_path / "a.png", str(tmp_path / "a.png"), data_uri(raw), b64, Image.open(tmp_path / "a.png")]
    for ref in refs:
        assert decode_image(ref).convert("RGB").getpixel((0, 0)) == (200, 30, 30), type(ref)
    assert decode_image("a.png", base_dir=tmp_path).size == (8, 8)  # relative to the data file's folder


@pytest.mark.parametrize("ref, message", [
    (b"garbage", "undecodable image (UnidentifiedImageError)"),
    (b"", "undecodable image"),
    ({"bytes": None, "path": None}, "neither bytes nor path"),
    ([], "empty image list"),
    (None, "unsupported image reference of type NoneType"),
    (3, "unsupported image reference of type int"),
    ("nope/missing.png", "not found"),
    ("data:image/png;base64,!!!notbase64", "without valid base64"),
    ("data:image/png;base64,aGVsbG8gd29ybGQ=", "undecodable image"),
    ("data:image/png;base64", "without valid base64"),
])
def test_decode_image_raises_one_error_type_with_a_reason(ref, message):
    with pytest.raises(ImageDecodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_image(ref)


def test_decode_image_refuses_images_over_the_pixel_limit(monkeypatch):
    import visplay.data.codec as codec

    monkeypatch.setattr(codec, "MAX_IMAGE_PIXELS", 63)
    with pytest.raises(ImageDecodeError, match="8x8 pixels is too large"):
        decode_image(_png())


def test_decode_image_errors_are_value_errors_and_name_the_item_in_evaluation(tmp_path):
    from visplay.errors import UserError
    from visplay.evaluation.base import Item
    from visplay.evaluation.data import item_images

    assert issubclass(ImageDecodeError, ValueError)
    with pytest.raises(UserError, match=r"^item q7: undecodable image"):
        item_images(Item(id="q7", question="?", gold="1", images=[b"garbage"]))


def test_png_bytes_is_lossless_and_deterministic():
    image = Image.new("RGB", (5, 3), (1, 2, 3))
    image.putpixel((4, 2), (250, 0, 9))
    assert png_bytes(image) == png_bytes(image.copy())
    assert decode_image(png_bytes(image)).tobytes() == image.tobytes()


# --- image_root -------------------------------------------------------------------------------------


def test_image_root_is_the_folder_only_for_a_folder_of_files(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png())
    assert open_image_source(folder).image_root == folder

    parquet = tmp_path / "imgs.parquet"
    pq.write_table(pa.table({"image": [_png()]}), parquet)
    assert open_image_source(parquet).image_root is None

    # A folder holding one parquet file (no images) reads the parquet: its images are not files.
    holder = tmp_path / "holder"
    holder.mkdir()
    pq.write_table(pa.table({"image": [_png()]}), holder / "data.parquet")
    assert open_image_source(holder).image_root is None


def test_image_root_of_a_saved_dataset_is_none(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": [{"bytes": _png(), "path": None}]},
                                    features=datasets.Features({"image": datasets.Image()}))
    ds.save_to_disk(str(tmp_path / "ds"))
    source = open_image_source(tmp_path / "ds")
    assert source.image_root is None  # a folder without parquet files, but its images are not files
    assert source.load_images(list(source))[0][1].size == (8, 8)


# --- toy accuracy: one benchmark path --------------------------------------------------------------------


def test_rows_built_in_memory_become_the_same_items_as_the_written_benchmark(tmp_path):
    """world check scores rows it builds itself; they must be the items the demo's evaluation reads."""
    from visplay.evaluation.benchmarks import get_benchmark
    from visplay.evaluation.data import benchmark_from_rows, load_benchmark
    from visplay.world.benchmark import build_benchmark, write_benchmark

    rows = build_benchmark(n=12, seed=0)
    write_benchmark(tmp_path / "toy.parquet", n=12, seed=0)
    built = benchmark_from_rows(get_benchmark("toy"), rows, tmp_path / "built")
    read = load_benchmark("toy", tmp_path / "toy.parquet")
    strip = lambda item: (item.id, item.question, item.gold, item.kind, item.meta.get("category"))  # noqa: E731
    assert [strip(i) for i in built.items] == [strip(i) for i in read.items]
    assert [decode_image(i.images).tobytes() for i in built.items] == [decode_image(i.images).tobytes() for i in read.items]
