"""The command line: help, tiny-model, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

from visplay.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visplay", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("tiny-model",):
        assert command in out


def test_tiny_model_command_writes_loadable_checkpoint(tmp_path):
    from transformers import AutoModelForImageTextToText

    result = _run("tiny-model", "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert "wrote a tiny qwen2_5_vl model" in result.stdout
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    assert model.config.model_type == "qwen2_5_vl"


def test_tiny_model_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = _run("tiny-model", "--out", str(tmp_path / "mine"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_unknown_arch_is_an_argparse_error(tmp_path):
    result = _run("tiny-model", "--out", str(tmp_path / "m"), "--arch", "gpt2")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_demo_prints_each_row_as_it_finishes_and_the_table_once(tmp_path, monkeypatch, capsys):
    """One header, a line per iteration as it finishes, then the whole table once (the run itself is faked)."""
    import visplay.analysis.audit as audit
    import visplay.demo as demo
    from visplay.report.iteration_table import format_table

    rows = [{"iteration": 0, "toy_accuracy": 0.625, "toy_clean_accuracy": 0.625},
            {"iteration": 1, "toy_accuracy": 0.6, "toy_clean_accuracy": 0.6, "pseudo_label_accuracy": 0.5, "kept": 12, "candidates": 40,
             "validity": 1.0, "oracle_valid_rate": 0.8, "mean_confidence": 0.66, "seconds": 50.0},
            {"iteration": 2, "toy_accuracy": 0.58, "toy_clean_accuracy": 0.58, "pseudo_label_accuracy": 0.45, "kept": 9, "candidates": 40,
             "validity": 0.95, "oracle_valid_rate": 0.75, "mean_confidence": 0.7, "seconds": 52.0}]
    printed_by_then = []

    def fake_run_demo(out, on_iteration, **kw):
        for row in rows:
            on_iteration(row)
            printed_by_then.append(capsys.readouterr().out)
        return rows

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    monkeypatch.setattr(audit, "audit_run", lambda out: None)
    monkeypatch.setattr(audit, "format_audit", lambda result: "AUDIT")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--iterations", "2"]) == 0
    rest = capsys.readouterr().out
    table = format_table(rows)
    header = table.splitlines()[0]
    assert header in printed_by_then[0] and all(header not in text for text in printed_by_then[1:])
    for text, line in zip(printed_by_then, table.splitlines()[2:]):  # each row printed as it came in
        assert text.rstrip().splitlines()[-1] == line
    assert rest.count(header) == 1 and rest.index(table) < rest.index("AUDIT")
