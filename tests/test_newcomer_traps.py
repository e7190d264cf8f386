"""The small traps a newcomer met: skipped images counted once, an oversized curation pool, advice that
repeats a setting already made, the evaluation budget, and loading a checkpoint without torchvision."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image


def _cfg(**curation):
    from visplay.config import CurationConfig, EvolveConfig

    return EvolveConfig.model_construct(curation=CurationConfig(**curation))  # only the curation section is read


def test_unreadable_images_are_counted_and_reported_once(tmp_path, caplog):
    from visplay.data.images import open_image_source
    from visplay.stages.common import pick_images

    for i in range(3):
        Image.new("RGB", (16, 16), (i, 0, 0)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "bad1.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "bad2.png").write_bytes(b"\x89PNG broken")
    source = open_image_source(tmp_path)
    with caplog.at_level(logging.WARNING, logger="visplay.data.images"):
        # Two stages, each drawing more images than the source holds (so it cycles over the bad ones).
        for salt in ("questioner-1", "curation-1"):
            pixels = source.load_images(pick_images(source, 12, seed=0, salt=salt))
            assert {item.image_id for item, _ in pixels} == {"ok0.png", "ok1.png", "ok2.png"}
    assert sorted(source.skipped) == ["bad1.jpg", "bad2.png"]
    assert len([r for r in caplog.records if "skipping image" in r.getMessage()]) == 2


def test_pool_larger_than_the_source_warns():
    from visplay.stages.curation import pool_size_warning

    assert pool_size_warning(_cfg(images=10), 10) is None
    message = pool_size_warning(_cfg(images=1000), 300)
    assert message == ("curation.images is 1000 but the image source holds 300; each iteration curates all 300 "
                       "(each image once)")


def test_too_few_advice_does_not_repeat_a_setting_already_made():
    from visplay.stages.curation import explain_too_few

    summary = {"kept": 2, "candidates": 40, "drop_reasons": {"too_easy": 30, "too_hard": 8}}
    stop = explain_too_few(summary, _cfg(min_kept=16))
    assert stop == ("only 2 of 40 candidate questions survived curation (need 16; dropped: 30 too_easy, 8 too_hard); "
                    "widen curation.band, raise curation.images or set curation.on_too_few=continue")
    going_on = explain_too_few(summary, _cfg(min_kept=16, on_too_few="continue"))
    assert "on_too_few" not in going_on and going_on.endswith("widen curation.band or raise curation.images")


def test_eval_budget_defaults_to_the_benchmark_budget_for_the_prompt_style():
    from visplay.evaluation.benchmarks import get_benchmark

    assert get_benchmark("toy").default_budget("compact") == 48
    assert get_benchmark("mmstar").default_budget("paper") == 4096
    assert get_benchmark("mmstar").default_budget("compact") == 64


def test_eval_states_the_budget_it_used(tiny_model_dir, tmp_path, capsys):
    from visplay.cli.main import main
    from visplay.world.benchmark import write_benchmark

    data = tmp_path / "toy.parquet"
    write_benchmark(data, n=12)
    out = tmp_path / "out"
    assert main(["eval", "--model", str(tiny_model_dir), "--benchmark", "toy", "--data", str(data), "--limit", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "toy" / "summary.json").read_text())
    assert summary["max_new_tokens"] == 48 and summary["max_new_tokens_from"] == "toy's default for compact prompts"
    assert "toy: greedy, at most 48 new tokens per answer (toy's default for compact prompts" in printed
    assert "max new tokens" in printed.splitlines()[0]


@pytest.mark.parametrize("which", ["tiny", "shipped base"])
def test_configs_agree_with_the_tokenizer_so_training_rewrites_nothing(which, tiny_model_dir, caplog):
    """The cause of "The tokenizer has new PAD/BOS/EOS tokens" (once per GRPO stage): config and tokenizer
    disagreed on BOS, and the top-level ids the Trainer compares were missing."""
    from transformers.trainer_utils import align_special_tokens

    from visplay.engines.loading import expose_special_token_ids, load_vlm
    from visplay.world.base import ASSET_DIR

    loaded = load_vlm(tiny_model_dir if which == "tiny" else ASSET_DIR, device="cpu")
    model = loaded.model
    expose_special_token_ids(model.config)  # what train_grpo does before building the trainer
    ids = ("bos_token_id", "eos_token_id", "pad_token_id")

    def state():  # an int EOS and a one-element EOS list mean the same (the Trainer turns one into the other)
        values = [getattr(model.config, k, None) for k in ids] + [getattr(model.generation_config, k) for k in ids]
        return [v if not isinstance(v, int) else [v] for v in values]

    before = state()
    updated = []
    handler = logging.Handler()
    handler.emit = lambda record: updated.append(record.getMessage())
    hf_logger = logging.getLogger("transformers.trainer_utils")
    hf_logger.addHandler(handler)
    try:
        align_special_tokens(model, loaded.processor)
    finally:
        hf_logger.removeHandler(handler)
    assert not [m for m in updated if "PAD/BOS/EOS" in m]
    assert state() == before


def test_processor_loads_without_torchvision_in_two_lines(tiny_model_dir):
    from visplay.engines.loading import load_processor

    processor = load_processor(tiny_model_dir)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (112, 112))], return_tensors="pt")
    assert "pixel_values" in inputs and int((inputs["input_ids"] == 6).sum()) > 0
