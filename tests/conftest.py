"""Shared fixtures: everything offline, tiny models built in code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The slow reference implementations (the authors' algorithms) live beside the benchmarks that time them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint, built once per test session."""
    from visplay.engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", arch="qwen2_5_vl", seed=0)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    from visplay.engines.loading import load_vlm

    return load_vlm(tiny_model_dir, device="cpu")
