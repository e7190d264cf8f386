"""scripts/gpu_check.sh on a CPU machine: it refuses at once, and what it would run is valid (its config, and
a model of Qwen2.5-VL-3B's shape, built on the meta device: no memory, no weights)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_fails_fast_without_a_gpu():
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    started = time.perf_counter()
    result = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "no NVIDIA GPU" in result.stderr
    assert time.perf_counter() - started < 10
    assert result.stdout == ""


def test_gpu_check_config_and_model_shape(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from visplay.engines.tiny import train_tokenizer

    check = _gpu_check()
    (tmp_path / "images").mkdir()
    cfg = check.check_config(tiny_model_dir, tmp_path / "images", tmp_path / "run")
    assert cfg.sampler.backend == "vllm" and cfg.sampler.enforce_eager
    for grpo in (cfg.questioner.grpo, cfg.reasoner.grpo):
        assert grpo.use_vllm and grpo.bf16 and grpo.steps == 2
    assert cfg.curation.on_too_few == "continue"

    config = check.model_config_3b(train_tokenizer())
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    text, vision = model.model.language_model, model.model.visual
    # Qwen2.5-VL-3B-Instruct's published shape.
    assert len(text.layers) == 36 and len(vision.blocks) == 32
    attention = text.layers[0].self_attn
    assert tuple(attention.q_proj.weight.shape) == (2048, 2048) and tuple(attention.k_proj.weight.shape) == (256, 2048)
    assert tuple(text.layers[0].mlp.gate_proj.weight.shape) == (11008, 2048)
    assert tuple(vision.blocks[0].attn.qkv.weight.shape) == (3 * 1280, 1280)
    assert tuple(vision.blocks[0].mlp.gate_proj.weight.shape) == (3420, 1280)
    assert config.vision_config.fullatt_block_indexes == [7, 15, 23, 31]
    assert config.text_config.rope_parameters["rope_theta"] == 1000000.0
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    # 3.75 B for the 3B with its 151,936-token vocabulary; this one differs only in the tied embedding.
    assert abs(params - embedding + 151936 * 2048 - 3.75e9) < 0.02e9
