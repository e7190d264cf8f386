"""The self-evolution loop end to end on the toy world's tiny base model (CPU, about a minute).

Checks the run folder contract (files, parquet columns, checkpoints that reload), that both stages
changed parameters, resume after SIGKILL in the middle of a stage, and that training never sees
oracle labels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file

QUESTION_COLUMNS = {"image_id", "image", "raw", "question", "qtype", "questioner_answer", "votes", "silver_answer",
                    "confidence", "kept", "reason"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from visplay.world.base import build_base
    from visplay.world.images import write_images

    root = tmp_path_factory.mktemp("world")
    build_base(root / "base", rebuild=False, check=False, log=lambda m: None)
    write_images(root / "images", 24, seed=3)
    return root


def _config(world: Path, out: Path, steps: int = 2) -> dict:
    grpo = {"steps": steps, "prompts_per_step": 2, "group_size": 4}
    return {
        "preset": "tiny",
        "out": str(out),
        "iterations": 1,
        "seed": 1,
        "model": {"path": str(world / "base")},
        "data": {"images": str(world / "images")},
        "questioner": {"votes": 4, "grpo": grpo},
        "curation": {"images": 8, "samples_per_image": 3, "votes": 4, "min_kept": 1, "on_too_few": "continue",
                     "band": [0.0, 1.0]},
        "reasoner": {"grpo": grpo},
    }


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def _changed(a: dict, b: dict, prefix: str) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if prefix in k)


def _check_contract(run: Path, base: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from visplay.engines.loading import load_vlm

    for name in ("config.yaml", "state.json", "metrics.jsonl"):
        assert (run / name).is_file(), name
    state = json.loads((run / "state.json").read_text())
    assert set(state["iterations"]["1"]) >= {"questioner", "curation", "reasoner"}
    table = pq.read_table(run / "iter_01" / "questions.parquet")
    assert QUESTION_COLUMNS <= set(table.column_names)
    assert table.num_rows == 8 * 3
    for role in ("questioner", "reasoner"):
        folder = run / "iter_01" / role
        AutoModelForImageTextToText.from_pretrained(folder)
        load_vlm(folder, device="cpu")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("event") == "step"]
    assert {r["stage"] for r in steps} >= {"iter01/questioner", "iter01/reasoner"}
    assert all("frac_reward_zero_std" in r for r in steps)
    assert any("reward_validity" in r for r in steps if r["stage"] == "iter01/questioner")
    start = _weights(base)
    for role in ("questioner", "reasoner"):
        trained = _weights(run / "iter_01" / role)
        assert _changed(start, trained, "model.layers."), f"{role} language model did not change"
        assert _changed(start, trained, "visual"), f"{role} vision tower did not change"


def test_one_iteration_writes_the_run_folder_contract(world, tmp_path, monkeypatch):
    """One iteration of 2 steps per stage; also records everything handed to GRPO to prove that training
    sees prompts, pixels and silver answers only, never the oracle (which fills an analysis column)."""
    from PIL import Image

    import visplay.stages.questioner as questioner_stage
    import visplay.stages.reasoner as reasoner_stage
    from visplay.config import load_evolve_config
    from visplay.demo import toy_hooks
    from visplay.evolve import evolve
    from visplay.runfolder import RunFolder

    seen: list[list[dict]] = []

    def recording(real):
        def train(model_dir, out_dir, examples, reward_fn, settings, **kwargs):
            seen.append(examples)
            return real(model_dir, out_dir, examples, reward_fn, settings, **kwargs)
        return train

    monkeypatch.setattr(questioner_stage, "train_grpo", recording(questioner_stage.train_grpo))
    monkeypatch.setattr(reasoner_stage, "train_grpo", recording(reasoner_stage.train_grpo))
    cfg = load_evolve_config(None, base=_config(world, tmp_path / "run"))
    hooks = toy_hooks(RunFolder(tmp_path / "run"), image_seed=3, cfg=cfg)
    hooks.evaluate = None  # no benchmark here; the demo test covers evaluation
    rows = evolve(cfg, tmp_path / "run", hooks=hooks)
    assert len(rows) == 1 and rows[0]["candidates"] == 24
    _check_contract(tmp_path / "run", world / "base")
    table = pq.read_table(tmp_path / "run" / "iter_01" / "questions.parquet")
    assert "oracle_answer" in table.column_names
    rows = table.to_pylist()
    kept = [r for r in rows if r["kept"]]
    assert kept, "the base model should write some answerable questions"
    assert any(r["oracle_answer"] is not None for r in rows)
    for row in rows:
        assert (row["reason"] == "") == row["kept"]
        if row["question"] is None:
            assert row["reason"] == "unparsed"
        assert row["image"]["path"] and Path(row["image"]["path"]).is_file()

    assert len(seen) == 2  # questioner stage, reasoner stage
    allowed = {"prompt", "image", "image_id", "silver_answer"}
    for examples in seen:
        for ex in examples:
            assert set(ex) <= allowed, set(ex) - allowed
            assert isinstance(ex["image"], Image.Image)
    silver = {(ex["image_id"], ex["silver_answer"]) for ex in seen[1]}
    assert silver == {(r["image_id"], r["silver_answer"]) for r in kept}


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_resume_after_sigkill_mid_stage(world, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_config(world, run, steps=3)))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "visplay", "evolve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)

    def reasoner_stage_started() -> bool:
        metrics = run / "metrics.jsonl"
        return metrics.exists() and '"stage": "iter01/reasoner"' in metrics.read_text()

    try:
        _wait_for(reasoner_stage_started, 600, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = json.loads((run / "state.json").read_text())
    assert "reasoner" not in state["iterations"]["1"]  # killed inside the reasoner stage
    assert not (run / "iter_01" / "reasoner").exists()
    questions_before = (run / "iter_01" / "questions.parquet").read_bytes()
    questioner_before = (run / "iter_01" / "questioner" / "model.safetensors").read_bytes()

    result = subprocess.run([sys.executable, "-m", "visplay", "evolve", str(config), "--resume"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    _check_contract(run, world / "base")
    # Finished stages were not redone: their files are byte-identical.
    assert (run / "iter_01" / "questions.parquet").read_bytes() == questions_before
    assert (run / "iter_01" / "questioner" / "model.safetensors").read_bytes() == questioner_before
    assert not list(run.rglob(".*.tmp"))


def test_resume_refuses_a_changed_config(world, tmp_path):
    from visplay.config import load_evolve_config
    from visplay.errors import UserError
    from visplay.evolve import prepare_run

    cfg = load_evolve_config(None, base=_config(world, tmp_path / "run"))
    prepare_run(cfg, tmp_path / "run", resume=False)
    changed = load_evolve_config(None, ["curation.votes=5"], base=_config(world, tmp_path / "run"))
    with pytest.raises(UserError, match="curation.votes differs"):
        prepare_run(changed, tmp_path / "run", resume=True)
    with pytest.raises(UserError, match="already holds a run"):
        prepare_run(cfg, tmp_path / "run", resume=False)


def test_resume_accepts_a_run_written_before_a_key_existed(world, tmp_path):
    """A run folder whose config.yaml predates a key (here curation.agreement) ran with that key's default:
    it resumes under the default, and is refused under another value."""
    import yaml

    from visplay.config import load_evolve_config
    from visplay.errors import UserError
    from visplay.evolve import prepare_run

    cfg = load_evolve_config(None, base=_config(world, tmp_path / "run"))
    prepare_run(cfg, tmp_path / "run", resume=False)
    config_file = tmp_path / "run" / "config.yaml"
    stored = yaml.safe_load(config_file.read_text())
    del stored["curation"]["agreement"]
    config_file.write_text(yaml.safe_dump(stored))
    prepare_run(cfg, tmp_path / "run", resume=True)
    config_file.write_text(yaml.safe_dump(stored))
    changed = load_evolve_config(None, ["curation.agreement=true"], base=_config(world, tmp_path / "run"))
    with pytest.raises(UserError, match="curation.agreement differs"):
        prepare_run(changed, tmp_path / "run", resume=True)


def test_image_source_carries_pixels_only(world):
    """What the stages get from a data source: an id and pixels, nothing else."""
    from PIL import Image

    from visplay.data.images import ImageItem, open_image_source

    source = open_image_source(world / "images")
    assert len(source) == 24
    item = source[0]
    assert isinstance(item, ImageItem)
    assert set(item.__dataclass_fields__) == {"image_id", "_loader"}
    assert isinstance(item.load(), Image.Image)
    assert sorted(p.suffix for p in (world / "images").iterdir()) == [".png"] * 24  # no labels beside the pixels


def test_world_oracle_source_needs_the_toy_worlds_hook(world, tmp_path):
    """curation.source=world-oracle (the oracle-rlvr arm) on a run without the toy world's hooks is refused
    before anything is written."""
    from visplay.config import load_evolve_config
    from visplay.errors import UserError
    from visplay.evolve import evolve

    cfg = load_evolve_config(None, ["curation.source=world-oracle"], base=_config(world, tmp_path / "run"))
    with pytest.raises(UserError, match="world-oracle needs the toy world"):
        evolve(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
