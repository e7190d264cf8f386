"""The shifted toy world end to end: a study under a (gradual) shift reports both domains, the oracle-sft arm
learns the oracle-rlvr arm's very questions from their true completions, and bad shifts are refused."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from visplay.analysis.study import format_study, parse_arms, run_study
from visplay.errors import UserError

GRPO = "{steps: 2, prompts_per_step: 2, group_size: 4}"
TINY = [f"questioner.grpo={GRPO}", f"reasoner.grpo={GRPO}", "questioner.votes=4", "curation.votes=4",
        "curation.images=8", "curation.samples_per_image=3", "curation.min_kept=1", "curation.on_too_few=continue",
        "curation.band=[0.0,1.0]"]


@pytest.mark.slow
def test_gradual_shift_study_reports_both_domains_and_oracle_sft_learns_the_rlvr_questions(tmp_path):
    from visplay.world.base_data import reasoner_output, reasoner_thought
    from visplay.world.images import scene_of_image
    from visplay.world.oracle import oracle_answer, parse_question

    root = tmp_path / "study"
    study = run_study(root, parse_arms("oracle-sft,oracle-rlvr,no-training"), [0], iterations=2, overrides=TINY,
                      log=lambda m: None, n_images=12, benchmark_items=30, shift="contrast:0.5>0.25")
    assert study["shift"] == "contrast:0.5>contrast:0.25"
    world = root / "world"
    # One images folder per stage, the benchmark under the final stage and clean.
    assert (world / "images_seed0_contrast0.5").is_dir() and (world / "images_seed0_contrast0.25").is_dir()
    clean = pq.read_table(world / "benchmark.parquet").to_pylist()
    shifted = pq.read_table(world / "benchmark_contrast0.25.parquet").to_pylist()
    assert [(r["id"], r["question"], r["answer"]) for r in clean] == [(r["id"], r["question"], r["answer"])
                                                                       for r in shifted]
    assert all(a["image"] != b["image"] for a, b in zip(clean, shifted))
    # Every row of study.json carries both domains; no-training keeps both exactly.
    for run in study["runs"]:
        for row in run["rows"]:
            assert row["toy_accuracy"] is not None and row["toy_clean_accuracy"] is not None
    arms = {a["name"]: a for a in study["arms"]}
    assert arms["no-training"]["iterations"][2]["delta"][0] == 0.0
    assert arms["no-training"]["iterations"][2]["clean_delta"][0] == 0.0
    base = study["runs"][0]["rows"][0]
    assert base["toy_clean_accuracy"] != base["toy_accuracy"] or len(clean) < 50  # a shift shows, or too few items
    assert "clean Δ iter 2" in format_study(study) and "the same on the clean render" in format_study(study)
    # state.json of a run carries both, as the demo table does.
    state = json.loads((root / "oracle-sft" / "seed_0" / "state.json").read_text())
    assert {"toy_accuracy", "toy_clean_accuracy"} <= set(state["iterations"]["1"]["eval"])
    # The run's report shows both domains: the table's clean column and a per-family section for each.
    report = (root / "oracle-sft" / "seed_0" / "report.html").read_text()
    assert "clean acc" in report and "<h3>toy</h3>" in report and "<h3>toy_clean</h3>" in report
    # The gradual schedule: iteration i reads the i-th stage's images.
    config = (root / "oracle-rlvr" / "seed_0" / "config.yaml").read_text()
    assert "images_seed0_contrast0.5" in config and "images_seed0_contrast0.25" in config
    # oracle-sft: the same questions as oracle-rlvr (same pool, same draws), with their true completions.
    for i in (1, 2):
        sft = pq.read_table(root / "oracle-sft" / "seed_0" / f"iter_{i:02d}" / "questions.parquet").to_pylist()
        rlvr = pq.read_table(root / "oracle-rlvr" / "seed_0" / f"iter_{i:02d}" / "questions.parquet").to_pylist()
        assert [(r["image_id"], r["question"], r["silver_answer"]) for r in sft] == \
            [(r["image_id"], r["question"], r["silver_answer"]) for r in rlvr]
        for r in sft:
            scene = scene_of_image(r["image_id"], 0)
            truth = oracle_answer(r["question"], scene)
            assert truth.valid and truth.answer == r["silver_answer"]
            assert r["true_completion"] == reasoner_output(reasoner_thought(parse_question(r["question"]), scene),
                                                           truth.answer)
    sft_state = state["iterations"]["1"]["reasoner"]
    assert sft_state["objective"] == "sft" and sft_state["optimizer_steps"] == 2 and sft_state["examples"] == 24
    lines = [json.loads(x) for x in (root / "oracle-sft" / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x.get("stage") == "iter01/reasoner" and x.get("event") == "step"] == [1, 2]
    # A rerun under another shift is refused before anything is written.
    with pytest.raises(UserError, match="holds a study under --shift"):
        run_study(root, parse_arms("no-training"), [0], iterations=2, overrides=TINY, log=lambda m: None,
                  n_images=12, benchmark_items=30, shift="faded")


@pytest.mark.parametrize("spec", ["blur:x", "wobble:1", "contrast:-1", "contrast:0.5>0.4>0.3"])
def test_study_refuses_a_bad_shift_before_writing(tmp_path, spec):
    with pytest.raises(UserError, match="--shift"):
        run_study(tmp_path / "s", parse_arms("no-training"), [0], iterations=2, log=lambda m: None, shift=spec)
    assert not (tmp_path / "s").exists()


def test_images_by_iteration_gives_each_iteration_its_source(tmp_path):
    from visplay.config import load_evolve_config
    from visplay.evolve import image_paths

    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    base = {"model": {"path": str(tmp_path)}, "data": {"images": str(tmp_path / "a")}, "iterations": 4}
    cfg = load_evolve_config(None, [f"data.images_by_iteration=[{tmp_path / 'b'}, {tmp_path / 'c'}]"], base=base)
    assert image_paths(cfg) == [str(tmp_path / p) for p in ("b", "c", "c", "c")]
    assert image_paths(load_evolve_config(None, None, base=base)) == [str(tmp_path / "a")] * 4
    with pytest.raises(UserError, match="images_by_iteration"):
        load_evolve_config(None, [f"data.images_by_iteration=[{tmp_path / 'missing'}]"], base=base)


def test_a_recipe_config_sets_the_run_but_not_the_world(tmp_path):
    from pathlib import Path

    from visplay.cli.main import main
    from visplay.demo import demo_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "toy_shift.yaml"
    world = {"base": tmp_path, "images": tmp_path, "benchmark": tmp_path}
    cfg = demo_config(tmp_path / "run", world, 3, 0, ["reasoner.grpo.steps=5"], recipe)
    assert (cfg.reasoner.grpo.trainable, cfg.reasoner.grpo.learning_rate, cfg.curation.images) == ("embed-norms", 1e-3,
                                                                                                    256)
    assert cfg.reasoner.grpo.steps == 5 and cfg.model.path == str(tmp_path)  # --set wins; the world stays
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  images: /elsewhere\n")
    with pytest.raises(UserError, match="data is set by the demo's toy world"):
        demo_config(tmp_path / "run", world, 3, 0, None, bad)
    assert main(["demo", "--config", str(bad), "--out", str(tmp_path / "demo")]) == 2
    assert main(["study", "--config", str(bad), "--arms", "no-training", "--out", str(tmp_path / "study")]) == 2
    assert main(["demo", "--shift", "blur:x", "--out", str(tmp_path / "demo")]) == 2
    assert not (tmp_path / "demo").exists() and not (tmp_path / "study").exists()
