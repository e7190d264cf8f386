"""Typed config: YAML, --set overrides, validation with one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from visplay.config import describe_values, load_evolve_config, preview_evolve_config, to_yaml
from visplay.errors import UserError


@pytest.fixture()
def paths(tmp_path):
    model = tmp_path / "model"
    images = tmp_path / "images"
    model.mkdir()
    images.mkdir()
    return {"model": str(model), "images": str(images)}


def _base(paths, **extra):
    data = {"model": {"path": paths["model"]}, "data": {"images": paths["images"]}}
    data.update(extra)
    return data


def test_defaults_are_the_paper(paths):
    cfg = load_evolve_config(None, base=_base(paths))
    assert cfg.iterations == 3
    assert cfg.curation.band == (0.25, 0.75)
    assert cfg.questioner.votes == 10 and cfg.curation.votes == 9
    assert cfg.questioner.grpo.group_size == 8 and cfg.questioner.grpo.kl_coef == 0.01
    assert cfg.questioner.grpo.clip_low == 0.2 and cfg.questioner.grpo.clip_high == 0.3
    assert cfg.questioner.grpo.learning_rate == 1e-6
    assert cfg.reasoner.grpo.max_completion_length == 4096
    assert cfg.reward.variant == "paper" and cfg.reward.diversity_scope == "image"


def test_yaml_then_overrides(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(_base(paths, iterations=5, curation={"band": [0.3, 0.8]})))
    cfg = load_evolve_config(f, ["iterations=2", "questioner.grpo.steps=7", "reward.variant=official"])
    assert cfg.iterations == 2
    assert cfg.curation.band == (0.3, 0.8)
    assert cfg.questioner.grpo.steps == 7
    assert cfg.reward.variant == "official"


def test_tiny_preset_changes_sizes_not_formulas(paths):
    cfg = load_evolve_config(None, ["preset=tiny"], base=_base(paths))
    assert cfg.model.prompt_style == "compact"
    assert cfg.questioner.grpo.prompts_per_step < 128
    assert cfg.curation.band == (0.25, 0.75) and cfg.reward.variant == "paper"


@pytest.mark.parametrize("override, message", [
    ("curation.bandd=[0.1,0.2]", "unknown config key curation.bandd"),
    ("iterations=three", "config key iterations: expected an integer"),
    ("iterations=0", "config key iterations: must be >= 1"),
    ("curation.band=[0.9,0.2]", "config key curation.band: low 0.9 is above high 0.2"),
    ("curation.band=[0.2]", "config key curation.band: expected 2 values"),
    ("reward.variant=best", "config key reward.variant: must be one of"),
    ("questioner.grpo.group_size=1", "config key questioner.grpo.group_size: GRPO needs more than one sample"),
    ("model.path=/does/not/exist", "config key model.path: path /does/not/exist does not exist"),
    ("model.trust_remote_code=maybe", "config key model.trust_remote_code: expected true or false"),
])
def test_bad_values_name_the_key(paths, override, message):
    with pytest.raises(UserError) as info:
        load_evolve_config(None, [override], base=_base(paths))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_required_keys(paths):
    with pytest.raises(UserError, match="config key model.path is required"):
        load_evolve_config(None, base={"data": {"images": paths["images"]}})


def test_resolved_yaml_round_trips(paths):
    cfg = load_evolve_config(None, ["preset=tiny"], base=_base(paths))
    text = to_yaml(cfg)
    assert "# self-evolution iterations" in text
    again = load_evolve_config(None, base=yaml.safe_load(text))
    assert again == cfg


def test_every_field_has_help():
    rows = describe_values(preview_evolve_config())
    assert len(rows) > 50
    missing = [key for key, _, _, help_text in rows if not help_text]
    assert not missing


def test_cli_config_errors_exit_2_with_one_line(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(_base(paths, curation={"nope": 1})))
    for args in (["evolve", str(f)], ["evolve", str(tmp_path / "missing.yaml")],
                 ["evolve", str(f), "--set", "curation=1"]):
        result = subprocess.run([sys.executable, "-m", "visplay", *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("visplay: error:") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model: [unclosed\n")
    result = subprocess.run([sys.executable, "-m", "visplay", "evolve", str(bad_yaml)], capture_output=True, text=True)
    assert result.returncode == 2 and "not valid YAML" in result.stderr


def test_cli_bad_model_folder_exits_2(tmp_path, paths):
    (tmp_path / "text_model").mkdir()
    (tmp_path / "text_model" / "config.json").write_text('{"model_type": "llama"}')
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"model": {"path": str(tmp_path / "text_model")}, "data": {"images": paths["images"]},
                                 "out": str(tmp_path / "run")}))
    (tmp_path / "images" / "a.png").write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "visplay", "evolve", str(f)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "text-only model" in result.stderr and "Traceback" not in result.stderr


def test_partial_section_keeps_its_role_preset(paths):
    cfg = load_evolve_config(None, ["reasoner.grpo.steps=3"], base=_base(paths))
    assert cfg.reasoner.grpo.steps == 3
    assert cfg.reasoner.grpo.max_completion_length == 4096  # the reasoner's preset, not the generic default


@pytest.mark.parametrize("name", ["paper_qwen2_5_vl_3b.yaml", "paper_qwen2_5_vl_7b.yaml", "authors_code.yaml"])
def test_shipped_configs_are_valid(name, paths):
    from pathlib import Path

    f = Path(__file__).resolve().parents[1] / "configs" / name
    overrides = [f"model.path={paths['model']}", f"data.images={paths['images']}", "eval.benchmarks=[]"]
    cfg = load_evolve_config(f, overrides)
    assert cfg.iterations >= 1


def test_tiny_cpu_config_loads_with_your_images(paths):
    from pathlib import Path

    f = Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml"
    cfg = load_evolve_config(f, [f"model.path={paths['model']}", f"data.images={paths['images']}"])
    assert cfg.preset == "tiny" and cfg.iterations == 1 and cfg.model.prompt_style == "compact"
    assert cfg.curation.images == 32 and cfg.curation.on_too_few == "continue"
    assert cfg.questioner.grpo.steps == 4 and cfg.reasoner.grpo.steps == 4
    assert cfg.reasoner.grpo.max_completion_length == 64 and cfg.questioner.grpo.max_completion_length == 48


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "visplay", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("preset", ["paper", "tiny"])
def test_help_config_prints_the_values_a_run_uses(preset, paths):
    result = _cli("evolve", "--help-config", "--set", f"preset={preset}", "--set", "reasoner.grpo.steps=7")
    assert result.returncode == 0 and f"preset {preset}" in result.stdout.splitlines()[0]
    shown = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert " (required) " in shown.pop("model.path") and " (required) " in shown.pop("data.images")
    # Exactly the values of a config loaded with the same settings (each role's own GRPO values included).
    cfg = load_evolve_config(None, [f"preset={preset}", "reasoner.grpo.steps=7"], base=_base(paths))
    used = {key: f"{key:45s} {type_name:28s} {value:18s} {help_text}"
            for key, type_name, value, help_text in describe_values(cfg) if key not in ("model.path", "data.images")}
    assert shown == used
    expected = {"paper": ("2048", "4096"), "tiny": ("48", "64")}[preset]
    lengths = tuple(shown[f"{role}.grpo.max_completion_length"].split()[2] for role in ("questioner", "reasoner"))
    assert lengths == expected and shown["reasoner.grpo.steps"].split()[2] == "7"
    bad = _cli("evolve", "--help-config", "--set", "curation.nope=1")
    assert bad.returncode == 2 and "unknown config key curation.nope" in bad.stderr


def test_evolve_needs_no_yaml_but_names_a_missing_key(paths, tmp_path):
    result = _cli("evolve", "--set", f"model.path={paths['model']}", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "config key data.images is required" in result.stderr and not (tmp_path / "run").exists()
    cfg = load_evolve_config(None, [f"model.path={paths['model']}", f"data.images={paths['images']}", "preset=tiny"])
    assert cfg.preset == "tiny"


def test_missing_tracker_is_refused_before_any_work(tmp_path):
    import importlib.util

    missing = [t for t in ("tensorboard", "wandb") if importlib.util.find_spec(t) is None]
    if not missing:
        pytest.skip("both tensorboard and wandb are installed here")
    from visplay.engines.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "model")
    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "images" / "a.png")
    out = tmp_path / "run"
    result = _cli("evolve", "--set", f"model.path={model}", "--set", f"data.images={tmp_path / 'images'}",
                  "--set", f"reasoner.grpo.report_to={missing[0]}", "--out", str(out))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"config key reasoner.grpo.report_to: {missing[0]} is not installed" in result.stderr
    assert f'pip install -e ".[{missing[0]}]"' in result.stderr
    assert not out.exists()  # nothing written


def test_authors_code_config_resolves_to_every_authors_value(paths):
    """configs/authors_code.yaml = the authors' code, knob by knob (README "Faithfulness")."""
    from pathlib import Path

    f = Path(__file__).resolve().parents[1] / "configs" / "authors_code.yaml"
    cfg = load_evolve_config(f, [f"model.path={paths['model']}", f"data.images={paths['images']}"])
    for grpo in (cfg.questioner.grpo, cfg.reasoner.grpo):
        assert grpo.kl_bias_correction is False and grpo.loss == "seq-mean-token-mean" and grpo.micro_batch_size == 1
        assert (grpo.kl_coef, grpo.clip_low, grpo.clip_high, grpo.dual_clip) == (0.01, 0.2, 0.3, 3.0)
        assert (grpo.temperature, grpo.top_p, grpo.top_k, grpo.repetition_penalty) == (1.0, 0.99, 0, 1.0)
        assert (grpo.learning_rate, grpo.weight_decay, grpo.lr_schedule) == (1e-6, 0.01, "constant")
    q = cfg.questioner
    assert (q.votes, q.vote_prompt) == (10, "authors")
    for votes in (q.vote_sampling, cfg.curation.vote_sampling):
        assert votes.kwargs() == dict(temperature=1.0, top_p=1.0, top_k=40, repetition_penalty=1.0, max_new_tokens=4096)
    c = cfg.curation
    assert (c.images, c.samples_per_image, c.votes, c.band, c.drop_none_answers, c.pool) == (
        1000, 8, 9, (0.3, 0.8), True, "fixed")
    s = c.question_sampling
    assert (s.temperature, s.top_p, s.top_k, s.max_tokens) == (1.0, 0.95, 0, 4096)
    r = cfg.reward
    assert (r.variant, r.validity, r.diversity_scope, r.reasoner_variant) == ("official", "strict", "batch", "official")
    assert (cfg.model.min_pixels, cfg.model.max_pixels) == (262144, 4194304)


def test_sampling_settings_are_written_to_the_run_config(paths):
    text = to_yaml(load_evolve_config(None, base=_base(paths)))
    for key in ("vote_sampling:", "question_sampling:", "max_tokens:", "kl_bias_correction", "vote_prompt",
                "validity", "repetition_penalty", "top_k:"):
        assert key in text


def test_exponent_without_a_dot_is_a_number(paths):
    """YAML 1.1 reads `1e-5` as a string; a float key still takes it (and a word is still refused)."""
    cfg = load_evolve_config(None, ["reasoner.grpo.learning_rate=1e-5"], base=_base(paths))
    assert cfg.reasoner.grpo.learning_rate == 1e-5
    with pytest.raises(UserError, match="learning_rate"):
        load_evolve_config(None, ["reasoner.grpo.learning_rate=fast"], base=_base(paths))


# --- one schema: deprecated keys, precedence, error paths, the --help-config listing ---------------------------
def test_deprecated_flat_sampling_keys_fill_the_new_blocks(paths, tmp_path, caplog):
    """Old YAML files keep working: questioner.answer_* set the votes of BOTH the questioner stage and
    curation (as they did), curation.question_* the curation questions; one warning line per old key."""
    f = tmp_path / "old.yaml"
    f.write_text(yaml.safe_dump(_base(paths, questioner={"answer_top_k": 40, "answer_max_tokens": 512},
                                      curation={"question_top_p": 0.95, "question_max_tokens": 4096})))
    with caplog.at_level("WARNING", logger="visplay.config.load"):
        cfg = load_evolve_config(f, ["questioner.answer_temperature=0.7"])
    for votes in (cfg.questioner.vote_sampling, cfg.curation.vote_sampling):
        assert (votes.temperature, votes.top_p, votes.top_k, votes.max_tokens) == (0.7, 0.99, 40, 512)
    questions = cfg.curation.question_sampling
    assert (questions.temperature, questions.top_p, questions.max_tokens) == (1.0, 0.95, 4096)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 5 and all("\n" not in w and "deprecated" in w for w in warnings)
    assert ("config key curation.question_top_p is deprecated; use curation.question_sampling.top_p"
            in warnings)
    assert any("questioner.answer_top_k" in w and "questioner.vote_sampling.top_k and curation.vote_sampling.top_k"
               in w for w in warnings)


def test_old_and_new_keys_follow_the_layer_order(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(_base(paths, questioner={"answer_top_p": 0.5},
                                      curation={"question_top_k": 3, "question_sampling": {"top_k": 7}})))
    cfg = load_evolve_config(f, ["curation.vote_sampling.top_p=0.8"])
    # --set (later) beats the YAML's old key; in one file the new key beats the old one.
    assert (cfg.questioner.vote_sampling.top_p, cfg.curation.vote_sampling.top_p) == (0.5, 0.8)
    assert cfg.curation.question_sampling.top_k == 7
    cfg = load_evolve_config(f, ["questioner.answer_top_p=0.6"])  # an old key given later still wins
    assert (cfg.questioner.vote_sampling.top_p, cfg.curation.vote_sampling.top_p) == (0.6, 0.6)


def test_precedence_defaults_preset_yaml_set(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(_base(paths, preset="tiny", iterations=4,
                                      reasoner={"grpo": {"steps": 5, "learning_rate": "3e-5"}})))
    cfg = load_evolve_config(f, ["reasoner.grpo.steps=6"])
    g = cfg.reasoner.grpo
    assert g.steps == 6  # --set over YAML
    assert g.learning_rate == 3e-5 and cfg.iterations == 4  # YAML over preset and defaults
    assert g.max_completion_length == 64 and g.prompts_per_step == 4  # the tiny preset's reasoner values
    assert g.kl_coef == 0.01 and cfg.curation.band == (0.25, 0.75)  # defaults where nothing else speaks
    assert cfg.curation.question_sampling.max_tokens == 48 and cfg.curation.vote_sampling.max_tokens == 64


def test_exponent_without_a_dot_in_a_yaml_file(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"model: {{path: {paths['model']}}}\ndata: {{images: {paths['images']}}}\n"
                 "questioner:\n  grpo: {learning_rate: 1e-5, weight_decay: 1e-2}\n  vote_sampling: {temperature: 7e-1}\n")
    assert isinstance(yaml.safe_load(f.read_text())["questioner"]["grpo"]["learning_rate"], str)  # YAML 1.1
    cfg = load_evolve_config(f)
    assert (cfg.questioner.grpo.learning_rate, cfg.questioner.grpo.weight_decay) == (1e-5, 0.01)
    assert cfg.questioner.vote_sampling.temperature == 0.7


@pytest.mark.parametrize("override, message", [
    ("curation.vote_sampling.top_p=2", "config key curation.vote_sampling.top_p: must be <= 1.0, got 2"),
    ("curation.question_sampling.nope=1", "unknown config key curation.question_sampling.nope (known here: "
                                          "max_tokens, repetition_penalty, temperature, top_k, top_p)"),
    ("questioner.answer_top_p=2", "config key questioner.vote_sampling.top_p: must be <= 1.0, got 2"),
    ("reasoner.grpo.micro_batch_size=3", "config key reasoner.grpo.micro_batch_size: 3 must divide the completions"),
    ("reasoner.grpo.prompts_per_rollout=200", "config key reasoner.grpo.prompts_per_rollout: 200 must be a multiple"),
    ("questioner.grpo.dual_clip=1.2", "config key questioner.grpo.dual_clip: must exceed 1 + clip_high = 1.3"),
    ("questioner.grpo.report_to=mlflow", "config key questioner.grpo.report_to: unknown tracker 'mlflow'"),
    ("reasoner.grpo.temperature=0", "config key reasoner.grpo.temperature: must be > 0.0, got 0"),
    ("reasoner.grpo.top_p=true", "config key reasoner.grpo.top_p: expected a number, got True"),
    ("reasoner.grpo.steps=2.5", "config key reasoner.grpo.steps: expected an integer, got 2.5"),
    ("reasoner.grpo.learning_rate=nan", "config key reasoner.grpo.learning_rate: must be a finite number"),
    ("sampler.server_gpus=[1]", "config key sampler.server_gpus: expected str | int | None, got [1]"),
    ("sampler.backend=openai", "config key sampler.url: the openai backend needs an endpoint"),
    ("sampler.server_command=vllm serve x", "config key sampler.server_command: must contain {model}"),
    ("eval.benchmarks=[{name: x}]", "config key eval.benchmarks[0].data is required"),
    ("eval.benchmarks=[{name: x, data: /no/such}]", "config key eval.benchmarks[0].data: path /no/such does not"),
    ("questioner.grpo=3", "config key questioner.grpo: expected a mapping of settings, got 3"),
    ("preset=huge", "config key preset: must be 'paper' or 'tiny', got 'huge'"),
])
def test_errors_name_the_full_key_path(paths, override, message):
    with pytest.raises(UserError) as info:
        load_evolve_config(None, [override], base=_base(paths))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_pixel_bounds_are_checked_together(paths):
    with pytest.raises(UserError, match="config key model.min_pixels: 9 is above model.max_pixels 4"):
        load_evolve_config(None, ["model.min_pixels=9", "model.max_pixels=4"], base=_base(paths))


def test_grpo_settings_alone_raise_one_line_user_errors():
    from visplay.config import GRPOSettings

    with pytest.raises(UserError, match="^config key top_k: must be >= 0, got -1$"):
        GRPOSettings(top_k=-1)
    with pytest.raises(UserError, match="^unknown config key stepz"):
        GRPOSettings.paper("reasoner", stepz=3)
    assert GRPOSettings.tiny("questioner").max_completion_length == 48


def test_a_null_section_takes_its_defaults(paths, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"model: {{path: {paths['model']}}}\ndata: {{images: {paths['images']}}}\neval:\nreasoner:\n"
                 "  grpo:\n")
    cfg = load_evolve_config(f)
    assert cfg.eval.benchmarks == [] and cfg.reasoner.grpo.max_completion_length == 4096


def test_help_config_lists_each_roles_grpo_keys_and_the_sampling_blocks():
    result = _cli("evolve", "--help-config")
    assert result.returncode == 0, result.stderr
    shown = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    for role, length in (("questioner", "2048"), ("reasoner", "4096")):
        row = shown[f"{role}.grpo.max_completion_length"]
        assert row.split()[1:3] == ["int", length] and "max new tokens per completion" in row
        assert f"{role}.grpo.learning_rate" in shown and f"{role}.grpo.report_to" in shown
    assert shown["curation.question_sampling.max_tokens"].split()[2] == "2048"
    assert "the frozen reasoner's votes during curation" in shown["curation.vote_sampling.top_k"]
    assert not [key for key in shown if "answer_" in key or "question_top" in key]  # only the new names


def test_a_run_started_with_the_old_keys_resumes(paths, tmp_path):
    """config.yaml of a run from before the rename (flat answer_*/question_* keys) matches the same config."""
    from visplay.config import to_dict
    from visplay.evolve import check_run_folder

    out = tmp_path / "run"
    cfg = load_evolve_config(None, [f"out={out}", "preset=tiny"], base=_base(paths))
    old = to_dict(cfg)
    votes, questions = old["questioner"].pop("vote_sampling"), old["curation"].pop("question_sampling")
    del old["curation"]["vote_sampling"]
    old["questioner"].update({f"answer_{k}": v for k, v in votes.items()})
    old["curation"].update({f"question_{k}": v for k, v in questions.items()})
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(old))
    assert check_run_folder(cfg, out, resume=True)
    changed = load_evolve_config(None, [f"out={out}", "preset=tiny", "curation.vote_sampling.top_k=5"],
                                 base=_base(paths))
    with pytest.raises(UserError, match="config key curation.vote_sampling.top_k differs"):
        check_run_folder(changed, out, resume=True)


def test_a_misspelt_required_key_is_named_as_unknown(paths):
    with pytest.raises(UserError, match=r"^unknown config key model.pth \(known here: dtype, max_pixels"):
        load_evolve_config(None, base={"model": {"pth": paths["model"]}, "data": {"images": paths["images"]}})
