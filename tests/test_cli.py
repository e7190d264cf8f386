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
