"""The HTML run report: built from the run folder's files; model output is escaped, never trusted."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from visplay.runfolder import RunFolder
from visplay.stages.curation import SCHEMA

EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def _run_folder(root):
    run = RunFolder(root)
    root.mkdir()
    run.config_path.write_text("iterations: 1\n")
    run.mark_done(1, "questioner", {"images": 4})
    run.mark_done(1, "curation", {"candidates": 2, "kept": 1, "validity": 0.5, "mean_confidence": float("nan")})
    for step in (1, 2):
        run.log_metrics({"event": "step", "stage": "iter01/questioner", "step": step, "reward_mean": 0.1 * step,
                         "frac_reward_zero_std": 0.5, "reward_validity": 1.0})
    rows = [
        {"image_id": "a.png", "image": {"bytes": None, "path": "a.png"}, "raw": EVIL, "question": None, "qtype": None,
         "questioner_answer": None, "votes": None, "silver_answer": None, "confidence": None, "kept": False,
         "reason": "unparsed"},
        {"image_id": "b.png", "image": {"bytes": None, "path": "b.png"}, "raw": "<question>How many?</question>",
         "question": "How many & which?", "qtype": "numerical", "questioner_answer": "2", "votes": ["2", None, EVIL],
         "silver_answer": "2", "confidence": 0.5, "kept": True, "reason": ""},
    ]
    run.iter_dir(1).mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), run.questions_path(1))
    return run


def test_report_escapes_model_output(tmp_path):
    from visplay.report import write_report

    run = _run_folder(tmp_path / "run")
    html = write_report(run.root).read_text()
    assert "<script>" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "How many &amp; which?" in html
    assert "data:image/png;base64," in html  # training curves embedded
    assert "unparsed" in html


def test_state_json_stays_valid_json_with_nan(tmp_path):
    run = _run_folder(tmp_path / "run")
    state = json.loads(run.state_path.read_text())  # strict JSON: NaN was written as null
    assert state["iterations"]["1"]["curation"]["mean_confidence"] is None


def test_report_command_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "visplay", "report", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr and result.stderr.count("\n") == 1


def test_pseudo_label_accuracy_counts_only_answerable_kept_questions(tmp_path):
    from visplay.evolve import questions_oracle_accuracy

    base = {"image_id": "a.png", "image": {"bytes": None, "path": "a.png"}, "raw": "", "qtype": None,
            "questioner_answer": None, "votes": [], "confidence": 0.5, "reason": ""}
    rows = [
        dict(base, question="q1", silver_answer="2", kept=True, oracle_answer="2"),     # right
        dict(base, question="q2", silver_answer="yes", kept=True, oracle_answer="no"),  # wrong
        dict(base, question="q3", silver_answer="red", kept=True, oracle_answer=None),  # not answerable
        dict(base, question="q4", silver_answer="1", kept=False, oracle_answer="1", reason="too_easy"),
        dict(base, question=None, silver_answer=None, kept=False, oracle_answer=None, reason="unparsed"),
    ]
    schema = SCHEMA.append(pa.field("oracle_answer", pa.string()))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "q.parquet")
    result = questions_oracle_accuracy(tmp_path / "q.parquet")
    assert result == {"pseudo_label_accuracy": 0.5, "kept_valid_rate": 2 / 3, "oracle_valid_rate": 3 / 4}
