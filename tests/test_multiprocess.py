"""Multi-process runs with real processes on CPU (gloo): torchrun runs one iteration of the tiny preset with 2
ranks, and accelerate launch runs curation with 2 ranks; both give the questions a single process gives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from visplay.world.base import build_base
    from visplay.world.images import write_images

    root = tmp_path_factory.mktemp("world")
    build_base(root / "base", rebuild=False, check=False, log=lambda m: None)
    write_images(root / "images", 12, seed=3)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(world: Path, out: Path) -> dict:
    grpo = {"steps": 1, "prompts_per_step": 2, "group_size": 4, "max_completion_length": 24}
    return {
        "preset": "tiny", "out": str(out), "iterations": 1, "seed": 1,
        "model": {"path": str(world / "base")},
        "data": {"images": str(world / "images")},
        # Small generation batches, so that both ranks get some of them.
        "sampler": {"max_batch_rows": 8},
        "questioner": {"votes": 4, "vote_sampling": {"max_tokens": 24}, "grpo": grpo},
        "curation": {"images": 6, "samples_per_image": 2, "votes": 4, "min_kept": 1, "on_too_few": "continue",
                     "band": [0.0, 1.0], "question_sampling": {"max_tokens": 32},
                     "vote_sampling": {"max_tokens": 24}},
        "reasoner": {"grpo": grpo},
    }


def _env(tmp_path: Path) -> dict:
    # HF_HOME elsewhere: no accelerate default config of this machine leaks into the launch.
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf"))


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_torchrun_two_ranks_run_one_iteration(world, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_config(world, run)))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         "-m", "visplay", "evolve", str(config)],
        capture_output=True, text=True, timeout=1200, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(2 processes)" in result.stdout and result.stdout.count("VisPlay:") == 1  # rank 0 alone prints
    state = json.loads((run / "state.json").read_text())["iterations"]["1"]
    assert {stage: state[stage]["processes"] for stage in ("questioner", "curation", "reasoner")} == {
        "questioner": 2, "curation": 2, "reasoner": 2}
    for role in ("questioner", "reasoner"):
        assert (run / "iter_01" / role / "model.safetensors").is_file()
    assert not list(run.rglob(".*.tmp"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("event") == "step"]
    # Training ran as ONE 2-process job per stage (each rank alone would log its own step and end lines).
    assert sorted(r["stage"] for r in steps) == ["iter01/questioner", "iter01/reasoner"]
    assert sorted(r["stage"] for r in records if r.get("event") == "grpo_end") == ["iter01/questioner",
                                                                                    "iter01/reasoner"]
    assert len(_rows(run / "iter_01" / "questions.parquet")) == 6 * 2

    # The same curation in ONE process, from the same checkpoints and seeds: the same questions, votes and
    # kept set (each generation batch has the same rows and seed whichever rank ran it).
    import torch

    from visplay.config import load_evolve_config
    from visplay.data.images import open_image_source
    from visplay.stages.curation import curate

    def one_process(cfg, out: Path, seed: int, salt: str) -> list[dict]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in each rank: the same kernels, the same floating-point sums
        try:
            curate(cfg, run / "iter_01" / "questioner", world / "base", open_image_source(world / "images"), out,
                   seed=seed, salt=salt)
        finally:
            torch.set_num_threads(threads)
        return _rows(out)

    cfg = load_evolve_config(None, base=_config(world, run))
    assert one_process(cfg, tmp_path / "one.parquet", cfg.seed * 1000 + 1, "curation-1") == _rows(
        run / "iter_01" / "questions.parquet")

    # accelerate launch: --multi_gpu selects the launcher that starts several processes (also on CPU).
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()), "-m", "visplay", "curate",
         "--questioner", str(run / "iter_01" / "questioner"), "--reasoner", str(world / "base"),
         "--images", str(world / "images"), "--out", str(tmp_path / "two.parquet"), "--config", str(config),
         "--set", "seed=5"],
        capture_output=True, text=True, timeout=900, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote 12 candidates") == 1  # rank 0 alone reports
    cfg5 = load_evolve_config(config, ["seed=5"])
    assert one_process(cfg5, tmp_path / "one5.parquet", 5, "curation") == _rows(tmp_path / "two.parquet")
