"""Loading benchmark files in every supported layout, size warnings, images, and prompts with images.

Every fixture file is written by the test itself (parquet via pyarrow, JSONL by hand)."""

from __future__ import annotations

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.errors import UserError
from visplay.evaluation import get_benchmark, load_benchmark
from visplay.evaluation.data import item_images


def png(color=(255, 0, 0), size=(20, 10), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def struct(data: bytes) -> dict:
    """How `datasets` stores an Image feature in parquet."""
    return {"bytes": data, "path": None}


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def mmmu_rows(n=2):
    rows = []
    for i in range(n):
        rows.append({"id": f"validation_Math_{i}", "question": "Compare <image 1> and <image 2>. Which is larger?",
                     "options": "['<image 1>', '<image 2>', 'equal']", "answer": "A",
                     "question_type": "multiple-choice", "subfield": "x",
                     "image_1": struct(png((255, 0, 0), (30, 20))), "image_2": struct(png((0, 0, 255), (10, 40))),
                     "image_3": None})
    return rows


def test_mmmu_parquet_with_image_structs_and_two_images(tmp_path):
    path = write_parquet(tmp_path / "mmmu.parquet", mmmu_rows())
    data = load_benchmark("mmmu", path)
    assert data.layout == "native" and len(data.items) == 2
    item = data.items[0]
    assert len(item.images) == 2
    images = item_images(item)
    assert [im.size for im in images] == [(30, 20), (10, 40)]
    # Two image parts, then the paper's reasoner instruction around the question with its lettered options.
    messages = get_benchmark("mmmu").prompt(item, "paper")
    parts = messages[-1]["content"]
    assert [p["type"] for p in parts] == ["image", "image", "text"]
    assert "A. <image 1>" in parts[-1]["text"] and "\\boxed{}" in parts[-1]["text"]
    # Official size is 900: a 2-row file warns.
    assert any("official size" in w and "900" in w for w in data.warnings)


def test_single_image_prompt_is_exactly_the_reasoner_messages(tmp_path):
    from visplay.selfplay.prompts import reasoner_messages

    rows = [{"id": "a", "question": "How many?", "answer": "2", "image": png(), "family": "counting", "qtype": "n"}]
    data = load_benchmark("toy", write_parquet(tmp_path / "toy.parquet", rows))
    bench = data.benchmark
    assert bench.prompt(data.items[0], "compact") == reasoner_messages("How many?", style="compact")
    assert bench.prompt(data.items[0], "paper") == reasoner_messages("How many?", style="paper")
    assert data.warnings == []  # the toy benchmark has no official size


def test_folder_of_shards_reads_the_benchmark_split(tmp_path):
    root = tmp_path / "MMMU"
    write_parquet(root / "Math" / "validation-00000-of-00001.parquet", mmmu_rows(2))
    write_parquet(root / "Math" / "dev-00000-of-00001.parquet", mmmu_rows(5))
    write_parquet(root / "Art" / "validation-00000-of-00001.parquet", mmmu_rows(1))
    data = load_benchmark("mmmu", root)
    assert len(data.items) == 3
    assert len({item.id for item in data.items}) == 3  # duplicate ids across shards are made unique
    assert len(load_benchmark("mmmu", root, split="dev").items) == 5
    with pytest.raises(UserError, match="no 'test' files"):
        load_benchmark("mmmu", root, split="test")


def test_jsonl_with_relative_image_paths_mmvet(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "images" / "v1_0.png")
    rows = [{"question_id": "v1_0", "question": "What color?", "answer": "green", "capability": "rec",
             "image": "images/v1_0.png"}]
    data = load_benchmark("mmvet", write_jsonl(tmp_path / "mmvet.jsonl", rows))
    assert item_images(data.items[0])[0].getpixel((0, 0)) == (0, 255, 0)
    assert any("218" in w for w in data.warnings)
    rows[0]["image"] = "images/missing.png"
    data = load_benchmark("mmvet", write_jsonl(tmp_path / "bad.jsonl", rows))
    with pytest.raises(UserError, match="item v1_0: image file 'images/missing.png' not found"):
        item_images(data.items[0])


def test_combined_layout_selects_by_file_name(tmp_path):
    b64 = base64.b64encode(png((1, 2, 3), (12, 12))).decode()
    rows = [
        {"problem": "<image>Which is closer?\nA. the car\nB. the tree", "answer": "B",
         "images": [struct(png((1, 2, 3), (12, 12)))], "file_name": "realWorldQA"},
        {"problem": "<image>What is written here?", "answer": "stop", "images": [struct(png())], "file_name": "mm-vet"},
        {"problem": "<image>Is the left line longer?", "answer": "yes", "images": [struct(png())],
         "file_name": "hallusionbench"},
        {"problem": "<image>Pick one.\nA. 1\nB. 2", "answer": "A", "images": [struct(png())], "file_name": "mmmu-pro"},
        {"problem": "<image>Which angle?\nOptions: (a) 30° (b) 60°", "answer": "(b) 60°", "images": [struct(png())],
         "file_name": "VisNumBench"},
    ]
    path = write_parquet(tmp_path / "test.parquet", rows)
    rwqa = load_benchmark("realworldqa", path)
    assert rwqa.layout == "combined" and len(rwqa.items) == 1
    item = rwqa.items[0]
    assert item.question.startswith("Which is closer?") and item.kind == "choice" and item.gold == "B"
    assert item_images(item)[0].getpixel((0, 0)) == (1, 2, 3)
    # The same rows as JSONL, images as base64 strings (the authors' inspection script's form).
    as_json = [dict(r, images=[b64]) for r in rows]
    item = load_benchmark("realworldqa", write_jsonl(tmp_path / "test.jsonl", as_json)).items[0]
    assert item_images(item)[0].getpixel((0, 0)) == (1, 2, 3)
    assert load_benchmark("mmvet", path).items[0].kind == "judged"
    hb = load_benchmark("hallusionbench", path).items[0]
    assert hb.kind == "yesno" and hb.gold == "yes"
    vis = load_benchmark("visnumbench", path).items[0]
    assert (vis.kind, vis.gold, vis.choices) == ("choice", "B", ["30°", "60°"])
    with pytest.raises(UserError, match="no rows with file_name for mmmu"):
        load_benchmark("mmmu", path)  # mmmu-pro is another benchmark


def test_mathverse_keeps_vision_only_unless_asked(tmp_path):
    versions = ["Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only"]
    rows = [{"sample_index": str(i), "problem_index": "1", "problem_version": v, "question": "" if v == "Vision Only" else "Q?",
             "image": struct(png()), "answer": "A", "question_type": "multi-choice", "query_cot": "See image."}
            for i, v in enumerate(versions)]
    path = write_parquet(tmp_path / "mathverse.parquet", rows)
    data = load_benchmark("mathverse", path)
    assert [item.id for item in data.items] == ["4"] and data.variant == "visiononly"
    assert any("788" in w for w in data.warnings)
    assert len(load_benchmark("mathverse", path, subset="all").items) == 5
    assert len(load_benchmark("mathverse", path, subset="Text Lite").items) == 1
    with pytest.raises(UserError, match="no rows of version"):
        load_benchmark("mathverse", path, subset="vision heavy")


def test_hallusionbench_skips_questions_without_image_and_limit(tmp_path):
    rows = [{"category": "VS", "subcategory": "chart", "set_id": 1, "figure_id": f, "question_id": 0,
             "visual_input": str(f), "question": "Is it so?", "gt_answer": "1", "gt_answer_details": "",
             "image": struct(png()) if f else None} for f in (0, 1, 2)]
    path = write_parquet(tmp_path / "hb.parquet", rows)
    data = load_benchmark("hallusionbench", path)
    assert [item.id for item in data.items] == ["VS_chart_1_1_0", "VS_chart_1_2_0"]
    limited = load_benchmark("hallusionbench", path, limit=1)
    assert len(limited.items) == 1 and limited.n_loaded == 2


def test_images_of_any_mode_and_visnumbench_fields(tmp_path):
    rows = [{"class": "Real", "id": "1_Angle", "question": "Angle?", "option": "(a) 10° (b) 20°", "answer": "(b) 20°",
             "task_class": "value estimation", "Attributes": "Angle", "image": struct(png((0, 0, 0, 0), mode="RGBA"))}]
    data = load_benchmark("visnumbench", write_parquet(tmp_path / "v.parquet", rows))
    assert item_images(data.items[0])[0].mode == "RGBA"  # the sampler converts; loading keeps it intact
    assert data.items[0].gold == "B" and "Options: (a) 10° (b) 20°" in data.items[0].question


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_benchmark("mmmu", tmp_path / "nope.parquet")
    bad = write_jsonl(tmp_path / "x.jsonl", [{"foo": 1}])
    with pytest.raises(UserError, match="missing column"):
        load_benchmark("mmstar", bad)
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match="not valid JSON"):
        load_benchmark("toy", tmp_path / "broken.jsonl")
    with pytest.raises(UserError, match="unknown benchmark"):
        get_benchmark("imagenet")
    assert get_benchmark("MM-Vet").name == "mmvet" and get_benchmark("MATH-Vision").name == "mathvision"
