"""`visplay eval` end to end on the tiny random model: plumbing (files, counts, unparsed rate), resume,
the run-folder table, re-scoring, and one-line user errors. A random tiny model writes garbage, so
accuracy is not checked here (test_eval_rules.py checks scoring)."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.cli.main import main


def _toy_file(path, n=6):
    """A file in the toy benchmark's layout (id, question, answer, image PNG bytes, family, qtype)."""
    rows = []
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (112, 112), (245, 245, 245) if i % 2 else (200, 30, 30)).save(buf, format="PNG")
        rows.append({"id": f"toy_{i:03d}", "question": "How many red circles are there?", "answer": str(i % 3),
                     "image": buf.getvalue(), "family": "counting" if i % 2 else "existence", "qtype": "numerical"})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_eval_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, capsys):
    data = _toy_file(tmp_path / "toy.parquet")
    out = tmp_path / "out"
    args = ["eval", "--model", str(tiny_model_dir), "--benchmark", "toy", "--data", str(data), "--limit", "3",
            "--out", str(out), "--max-new-tokens", "8", "--batch-size", "2"]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "toy" in printed.out and "accuracy" in printed.out and "unparsed" in printed.out
    predictions = [json.loads(line) for line in (out / "toy" / "predictions.jsonl").read_text().splitlines()]
    summary = json.loads((out / "toy" / "summary.json").read_text())
    assert [p["id"] for p in predictions] == ["toy_000", "toy_001", "toy_002"]
    for p in predictions:
        assert set(p) >= {"id", "benchmark", "response", "extracted", "gold", "correct", "scored_by"}
        assert p["scored_by"] in ("rule", "unparsed") and p["benchmark"] == "toy"
    unparsed = sum(p["scored_by"] == "unparsed" for p in predictions)
    assert summary["n"] == 3 and summary["n_loaded"] == 6 and summary["unparsed"] == unparsed
    assert summary["unparsed_rate"] == pytest.approx(unparsed / 3)
    assert summary["prompt_style"] == "compact" and summary["decoding"] == "greedy" and summary["max_new_tokens"] == 8
    assert summary["judge_model"] is None and summary["protocol"].startswith("rules")
    assert 0.0 <= summary["accuracy"] <= 100.0
    # A rerun reuses the saved generations instead of generating again.
    assert main(args) == 0
    assert "reusing 3 response(s)" in capsys.readouterr().err
    # Re-scoring the saved predictions without a model gives the same numbers.
    assert main(["eval", "score", "--benchmark", "toy", "--data", str(data),
                 "--predictions", str(out / "toy" / "predictions.jsonl"), "--out", str(tmp_path / "rescored")]) == 0
    rescored = json.loads((tmp_path / "rescored" / "summary.json").read_text())
    assert rescored["accuracy"] == summary["accuracy"] and rescored["model"] == str(tiny_model_dir)


def test_eval_run_folder_prints_one_table(tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "iter_01").mkdir(parents=True)
    (run / "iter_01" / "reasoner").symlink_to(tiny_model_dir, target_is_directory=True)
    (run / "iter_02").mkdir()  # an unfinished iteration (no reasoner yet) is skipped
    (run / "config.yaml").write_text(f"model:\n  path: {tiny_model_dir}\n")
    data = _toy_file(tmp_path / "toy.parquet")
    assert main(["eval", "--run", str(run), "--benchmark", "toy", "--data", str(data), "--limit", "2",
                 "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["benchmark", "base", "iter_01"]
    table = json.loads((run / "eval" / "table.json").read_text())
    assert table["models"] == ["base", "iter_01"] and set(table["accuracy"]["toy"]) == {"base", "iter_01"}
    assert (run / "eval" / "base" / "toy" / "predictions.jsonl").is_file()
    assert (run / "eval" / "iter_01" / "toy" / "summary.json").is_file()
    assert "| toy |" in (run / "eval" / "table.md").read_text()


def test_multi_image_mmmu_items_generate(tiny_model_dir, tmp_path, capsys):
    def png(color, size):
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}

    rows = [{"id": f"validation_Math_{i}", "question": "Compare <image 1> with <image 2>.", "options": "['left', 'right']",
             "answer": "A", "question_type": "multiple-choice", "image_1": png((200, 0, 0), (64, 48)),
             "image_2": png((0, 0, 200), (300, 90))} for i in range(2)]
    data = tmp_path / "mmmu.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    assert main(["eval", "--model", str(tiny_model_dir), "--benchmark", "mmmu", "--data", str(data),
                 "--out", str(tmp_path / "out"), "--max-new-tokens", "4"]) == 0
    assert "official size is validation 900" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "mmmu" / "summary.json").read_text())
    assert summary["n"] == 2 and summary["prompt_style"] == "paper" and summary["max_new_tokens"] == 4


@pytest.mark.parametrize("argv, message", [
    (["eval", "--benchmark", "toy", "--data", "x.parquet"], "give --model DIR or --run RUN"),
    (["eval", "--model", "no-such-model", "--benchmark", "toy", "--data", "x.parquet"], "does not exist"),
    (["eval", "--model", "m", "--benchmark", "toy", "--benchmark", "mmmu", "--data", "a", "--data", "b", "--data", "c"],
     "2 --benchmark but 3 --data"),
    (["eval", "--model", "m", "--benchmark", "imagenet", "--data", "x"], "unknown benchmark"),
    (["eval", "score", "--benchmark", "toy", "--data", "x", "--predictions", "nope.jsonl"], "does not exist"),
])
def test_user_mistakes_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_toy_benchmark_reads_the_world_writer(tmp_path):
    benchmark = pytest.importorskip("visplay.world.benchmark")
    from visplay.evaluation import load_benchmark

    path = tmp_path / "toy.parquet"
    benchmark.write_benchmark(path, 6, 0)
    data = load_benchmark("toy", path)
    assert len(data.items) == 6 and all(len(item.images) == 1 for item in data.items)
    assert all(item.meta.get("category") for item in data.items)  # the family, for the per-family breakdown
