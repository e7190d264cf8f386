"""SIGKILL `visplay demo --iterations 1` at 8 moments spread over its run, resume after each, and check that the
finished folder equals an uninterrupted run's: same metrics lines (no line of a killed attempt left), same
questions, same weights, same evaluation answers, no temporary file left behind.

The kills are chained in one folder: the run is killed at the first moment, resumed, killed again at the next
moment in the resumed process, and so on; the ninth start finishes. Moments are events seen on disk (a file
appears, state.json marks a stage done), so each kill lands in the same phase on a fast or a slow machine:
two before config.yaml exists (world setup, base evaluation), one right after it, two inside GRPO stages,
curation, evaluation, and the report. The settings are shrunk with --set so one run takes about half a
minute on 2 cores; the run is deterministic on CPU, so "equal" means equal values, not close ones.
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

pytestmark = pytest.mark.slow

SMALL = [
    "questioner.grpo.steps=2", "questioner.grpo.group_size=2", "questioner.grpo.prompts_per_step=2",
    "questioner.votes=2", "questioner.vote_sampling.max_tokens=16", "curation.vote_sampling.max_tokens=16",
    "questioner.grpo.max_completion_length=32",
    "reasoner.grpo.steps=2", "reasoner.grpo.group_size=2", "reasoner.grpo.prompts_per_step=2",
    "reasoner.grpo.max_completion_length=16",
    "curation.images=4", "curation.samples_per_image=2", "curation.votes=2", "curation.min_kept=1",
    "curation.on_too_few=continue", "curation.band=[0,1]", "eval.max_new_tokens=4",
]
RUN_TIMEOUT = 600


def _command(out: Path, resume: bool) -> list[str]:
    sets = [arg for key in SMALL for arg in ("--set", key)]
    return [sys.executable, "-m", "visplay", "demo", "--out", str(out), "--iterations", "1", *sets] + (
        ["--resume"] if resume else [])


def _env() -> dict:
    return dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def _state(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())["iterations"].get("1", {})
    except (OSError, ValueError):
        return {}


def _stepped(run: Path, stage: str) -> bool:
    try:
        return f'"stage": "{stage}"' in (run / "metrics.jsonl").read_text()
    except OSError:
        return False


# (what the process is doing when it is killed, the event on disk that triggers the kill)
MOMENTS = [
    ("world setup, before config.yaml", lambda run: (run / "world" / "base" / "config.json").exists()),
    ("base evaluation, before config.yaml", lambda run: (run / "eval" / "base" / "toy" / "responses.jsonl").exists()),
    ("config.yaml just written", lambda run: (run / "config.yaml").exists()),
    ("questioner GRPO, after its first step", lambda run: _stepped(run, "iter01/questioner")),
    ("curation (questioner done)", lambda run: "questioner" in _state(run)),
    ("reasoner GRPO, after its first step", lambda run: _stepped(run, "iter01/reasoner")),
    ("evaluation (reasoner done)", lambda run: "reasoner" in _state(run)),
    ("report (evaluation done)", lambda run: "eval" in _state(run)),
]


def _kill_when(out: Path, resume: bool, moment, log: Path) -> None:
    # stderr goes to a file: progress bars would fill a pipe nobody reads and block the run.
    with open(log, "w") as err:
        proc = subprocess.Popen(_command(out, resume), stdout=subprocess.DEVNULL, stderr=err, env=_env())
        deadline = time.time() + RUN_TIMEOUT
        try:
            while not moment(out):
                if proc.poll() is not None:
                    raise AssertionError(f"the run ended (exit {proc.returncode}) before the moment: "
                                         f"{log.read_text()[-3000:]}")
                if time.time() > deadline:
                    raise AssertionError("timed out waiting for the moment")
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _finish(out: Path, resume: bool) -> None:
    result = subprocess.run(_command(out, resume), capture_output=True, text=True, env=_env(), timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def _untimed(record: dict) -> dict:
    """A metrics or state record without what depends on the clock."""
    return {k: v for k, v in record.items() if not k.startswith("time") and k != "finished_at"}


def _questions(run: Path) -> list[dict]:
    rows = pq.read_table(run / "iter_01" / "questions.parquet").to_pylist()
    for row in rows:  # folder images are stored by path: compare them relative to the run
        row["image"]["path"] = os.path.relpath(row["image"]["path"], run)
    return rows


def _compare(reference: Path, resumed: Path) -> None:
    leftovers = [p for p in resumed.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    assert not leftovers, leftovers
    ref_metrics = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    new_metrics = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert len(new_metrics) == len(ref_metrics), "metrics lines of a killed attempt were left behind"
    assert [_untimed(r) for r in new_metrics] == [_untimed(r) for r in ref_metrics]
    ref_state, new_state = _state(reference), _state(resumed)
    assert set(new_state) == {"questioner", "curation", "reasoner", "eval"} == set(ref_state)
    for stage in ref_state:
        assert _untimed(new_state[stage]) == _untimed(ref_state[stage]), stage
    assert _questions(resumed) == _questions(reference)
    for path in ("iter_01/questioner/model.safetensors", "iter_01/reasoner/model.safetensors",
                 "eval/base/toy/predictions.jsonl", "iter_01/eval/toy/predictions.jsonl"):
        assert (resumed / path).read_bytes() == (reference / path).read_bytes(), path
    config = (resumed / "config.yaml").read_text().replace(str(resumed), "RUN")
    assert config == (reference / "config.yaml").read_text().replace(str(reference), "RUN")
    assert "<h2 id='iter1'>Iteration 1</h2>" in (resumed / "report.html").read_text()


def test_demo_resumes_after_sigkill_at_eight_moments(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    started = time.perf_counter()
    _finish(reference, resume=False)
    reference_seconds = time.perf_counter() - started
    seen = []
    for index, (label, moment) in enumerate(MOMENTS):
        _kill_when(resumed, resume=index > 0, moment=moment, log=tmp_path / f"attempt-{index}.log")
        done = sorted(_state(resumed))
        seen.append((label, (resumed / "config.yaml").exists(), done, (resumed / "report.html").exists()))
    # The moments landed where they were meant to: two before config.yaml, the last before the report.
    assert [config for _, config, _, _ in seen[:2]] == [False, False], seen
    assert seen[-1][2] == ["curation", "eval", "questioner", "reasoner"] and not seen[-1][3], seen
    _finish(resumed, resume=True)
    print(f"\nuninterrupted run {reference_seconds:.0f} s; killed and resumed at: " +
          "; ".join(f"{label} (stages done: {', '.join(done) or 'none'})" for label, _, done, _ in seen))
    _compare(reference, resumed)
