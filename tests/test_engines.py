"""The model engine: tiny factory, offline load/save, batched sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from visplay.engines.loading import load_vlm, save_vlm
from visplay.engines.sampler import HFSampler, SampleRequest
from visplay.errors import UserError
from visplay.selfplay.prompts import reasoner_messages


def _inputs(loaded, image):
    messages = reasoner_messages("How many red circles are there?")
    text = loaded.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return loaded.processor(text=[text], images=[image], return_tensors="pt")


def _scene_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    array = np.full((112, 112, 3), 245, dtype=np.uint8)
    for _ in range(3):
        r, c = rng.integers(0, 4, size=2)
        array[r * 28 + 6:r * 28 + 22, c * 28 + 6:c * 28 + 22] = rng.integers(0, 255, size=3)
    return Image.fromarray(array)


def test_processor_places_image_tokens(tiny_loaded):
    inputs = _inputs(tiny_loaded, _scene_image(0))
    image_token = tiny_loaded.model.config.image_token_id
    # 112 px / 14 px patches = 8x8 patches, merged 2x2 -> 16 image tokens.
    assert int((inputs["input_ids"] == image_token).sum()) == 16
    assert "mm_token_type_ids" in inputs and "pixel_values" in inputs


def test_save_load_round_trip_gives_identical_logits(tiny_loaded, tmp_path):
    out = save_vlm(tiny_loaded.model, tiny_loaded.processor, tmp_path / "copy")
    again = load_vlm(out, device="cpu")
    inputs = _inputs(tiny_loaded, _scene_image(1))
    with torch.no_grad():
        a = tiny_loaded.model(**inputs).logits
        b = again.model(**inputs).logits
    assert torch.equal(a, b)
    assert type(again.processor) is type(tiny_loaded.processor)
    # Written under the upstream class name so AutoProcessor elsewhere builds the full processor.
    assert json.loads((out / "processor_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"


def test_transformers_auto_class_loads_and_generates(tiny_model_dir, tiny_loaded):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    inputs = _inputs(tiny_loaded, _scene_image(2))
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5 or out.shape[1] <= inputs["input_ids"].shape[1] + 5
    text = tiny_loaded.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert isinstance(text[0], str)


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen3_vl"])
def test_other_architectures_build_load_and_sample(arch, tmp_path):
    from visplay.engines.tiny import build_tiny_model

    path = build_tiny_model(tmp_path / arch, arch=arch, size="XS")
    loaded = load_vlm(path, device="cpu")
    assert loaded.model.config.model_type == arch
    out = HFSampler(loaded).sample([SampleRequest(reasoner_messages("Is it red?"), [_scene_image(3)])], n=2,
                                   temperature=1.0, max_new_tokens=4, seed=0)
    assert len(out) == 1 and len(out[0]) == 2


def test_sampler_returns_n_strings_and_is_deterministic(tiny_loaded):
    sampler = HFSampler(tiny_loaded)
    requests = [SampleRequest(reasoner_messages(f"Question {i}?"), [_scene_image(i)]) for i in range(5)]
    a = sampler.sample(requests, n=3, temperature=1.0, top_p=0.99, max_new_tokens=8, seed=7)
    b = sampler.sample(requests, n=3, temperature=1.0, top_p=0.99, max_new_tokens=8, seed=7)
    c = sampler.sample(requests, n=3, temperature=1.0, top_p=0.99, max_new_tokens=8, seed=8)
    assert [len(x) for x in a] == [3] * 5 and all(isinstance(s, str) for x in a for s in x)
    assert a == b
    assert a != c


def test_batched_greedy_matches_one_at_a_time(tiny_loaded):
    sampler = HFSampler(tiny_loaded, max_batch_tokens=10**6)
    requests = [SampleRequest(reasoner_messages("What color" + "?" * i), [_scene_image(i)]) for i in range(4)]
    batched = sampler.sample(requests, n=1, temperature=0, max_new_tokens=6)
    single = [sampler.sample([r], n=1, temperature=0, max_new_tokens=6)[0] for r in requests]
    assert batched == single


def test_mixed_image_sizes_and_modes_in_one_batch(tiny_loaded):
    images = [
        Image.new("RGBA", (60, 200), (255, 0, 0, 128)),
        Image.new("L", (400, 90), 30),
        Image.new("P", (17, 33)),
        Image.fromarray(np.full((40, 50), 50000, dtype=np.uint16)),
        Image.new("1", (64, 64)),
        Image.new("RGB", (1000, 12), (0, 0, 255)),
        Image.new("CMYK", (80, 80)),
    ]
    requests = [SampleRequest(reasoner_messages("Describe."), [img]) for img in images]
    out = HFSampler(tiny_loaded).sample(requests, n=2, temperature=1.0, max_new_tokens=4, seed=0)
    assert [len(x) for x in out] == [2] * len(images)


def test_request_image_count_must_match(tiny_loaded):
    with pytest.raises(ValueError, match="image parts"):
        HFSampler(tiny_loaded).sample([SampleRequest(reasoner_messages("Q?"), [])], n=1)


def test_bad_model_folders_give_user_errors(tmp_path, tiny_model_dir):
    with pytest.raises(UserError, match="does not exist"):
        load_vlm(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a model folder"):
        load_vlm(tmp_path / "empty")
    text_only = tmp_path / "text"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    with pytest.raises(UserError, match="text-only"):
        load_vlm(text_only)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not readable JSON"):
        load_vlm(broken)


def test_checkpoint_generation_config_cannot_change_a_sample(tiny_model_dir, tmp_path):
    """A real checkpoint's generation_config.json (chat defaults) must not leak into votes or greedy answers."""
    import shutil

    leaky = tmp_path / "leaky"
    shutil.copytree(tiny_model_dir, leaky)
    config = json.loads((leaky / "generation_config.json").read_text())
    config.update(repetition_penalty=2.0, temperature=0.01, top_k=1, top_p=0.1, no_repeat_ngram_size=2,
                  do_sample=True, min_new_tokens=3)
    (leaky / "generation_config.json").write_text(json.dumps(config))
    clean = HFSampler(load_vlm(tiny_model_dir, device="cpu"))
    dirty = HFSampler(load_vlm(leaky, device="cpu"))
    requests = [SampleRequest(reasoner_messages(f"Question {i}?"), [_scene_image(i)]) for i in range(3)]
    for kwargs in (dict(n=4, temperature=1.0, top_p=1.0, seed=3), dict(n=1, temperature=0.0),
                   dict(n=3, temperature=1.0, top_p=1.0, top_k=40, repetition_penalty=1.0, seed=5)):
        assert dirty.sample(requests, max_new_tokens=10, **kwargs) == clean.sample(requests, max_new_tokens=10, **kwargs)
    # ... while the knobs themselves do act when asked for.
    plain = clean.sample(requests, n=4, temperature=1.0, top_p=1.0, max_new_tokens=10, seed=3)
    assert clean.sample(requests, n=4, temperature=1.0, top_p=1.0, max_new_tokens=10, seed=3, top_k=1) != plain


def test_pixel_bounds_clamp_the_image_area(tiny_model_dir):
    """model.min_pixels / max_pixels reach the processor (the authors clamp to 262,144-4,194,304 pixels)."""
    small = load_vlm(tiny_model_dir, device="cpu", max_pixels=56 * 56)
    large = load_vlm(tiny_model_dir, device="cpu", min_pixels=224 * 224, max_pixels=224 * 224)
    image_token = small.model.config.image_token_id
    counts = [int((_inputs(m, _scene_image(0))["input_ids"] == image_token).sum()) for m in (small, large)]
    assert counts == [4, 64]  # 112 px -> 56 px (4x4 patches, 2x2 merge) / 224 px (16x16 patches)
    with pytest.raises(UserError, match="min_pixels"):
        load_vlm(tiny_model_dir, device="cpu", min_pixels=10**6, max_pixels=10**4)
