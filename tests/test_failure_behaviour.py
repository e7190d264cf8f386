"""Failure behaviour, piece by piece and fast (tests/faults/ runs the whole corpus and the kill test):
a failed start leaves nothing behind, leftovers of a kill never block a run, a moved run resumes, a resumed
stage's metrics are not counted twice, a broken image is warned about once, outputs are checked first."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml

from visplay.config import load_evolve_config
from visplay.errors import UserError


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from visplay.world.images import write_images

    return write_images(tmp_path_factory.mktemp("img") / "images", 3, seed=0)


def _cfg(out: Path, model: Path, images: Path, *overrides: str):
    from visplay.world.base import ASSET_DIR

    base = {"preset": "tiny", "out": str(out), "model": {"path": str(model or ASSET_DIR)}, "data": {"images": str(images)}}
    return load_evolve_config(None, list(overrides), base=base)


def test_leftover_temp_files_neither_block_a_start_nor_a_resume(tmp_path, images):
    from visplay.evolve import prepare_run

    for resume in (False, True):
        out = tmp_path / f"run-{resume}"
        out.mkdir()
        (out / ".config.yaml.x1y2.tmp").write_text("half a config")
        (out / ".iter_01.abc.tmp").mkdir()
        prepare_run(_cfg(out, None, images), out, resume=resume)
        assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]


def test_failed_start_writes_nothing_and_does_not_block_its_rerun(tmp_path, images):
    from visplay.evolve import evolve

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "run"
    for _ in range(2):  # the second attempt meets the same error, not "already holds a run"
        with pytest.raises(UserError, match="no readable images"):
            evolve(_cfg(out, None, broken), out)
        assert not out.exists()


def test_moved_or_copied_run_resumes_and_its_config_follows(tmp_path, images):
    from visplay.evolve import prepare_run
    from visplay.world.base import ASSET_DIR

    first = tmp_path / "first"
    shutil.copytree(ASSET_DIR, first / "world" / "base")  # paths inside the run, as the demo has them
    shutil.copytree(images, first / "world" / "images")
    cfg = _cfg(first, first / "world" / "base", first / "world" / "images")
    prepare_run(cfg, first, resume=False, allowed_entries=("world",))
    copied, moved = tmp_path / "copied", tmp_path / "moved"
    shutil.copytree(first, copied)
    shutil.move(first, moved)
    for folder in (copied, moved):
        cfg = _cfg(folder, folder / "world" / "base", folder / "world" / "images")
        prepare_run(cfg, folder, resume=True, allowed_entries=("world",))
        stored = yaml.safe_load((folder / "config.yaml").read_text())
        assert stored["out"] == str(folder) and stored["model"]["path"] == str(folder / "world" / "base")
    changed = _cfg(moved, moved / "world" / "base", moved / "world" / "images", "curation.votes=3")
    with pytest.raises(UserError, match="curation.votes differs"):
        prepare_run(changed, moved, resume=True, allowed_entries=("world",))


def test_resume_drops_the_metrics_lines_of_the_interrupted_stage(tmp_path, images):
    from visplay.evolve import prepare_run
    from visplay.runfolder import RunFolder

    out = tmp_path / "run"
    prepare_run(_cfg(out, None, images), out, resume=False)
    run = RunFolder(out)
    lines = [
        {"event": "step", "stage": "iter01/questioner", "step": 1},
        {"event": "step", "stage": "iter01/questioner", "step": 2},
        {"event": "stage_done", "stage": "iter01/questioner"},
        {"event": "note"},  # not a stage's line: kept
        {"event": "stage_done", "stage": "iter01/curation"},
        {"event": "step", "stage": "iter01/reasoner", "step": 1},  # the killed attempt
    ]
    for line in lines:
        run.log_metrics(line)
    with open(run.metrics_path, "a") as handle:
        handle.write('{"event": "step", "stage": "iter01/rea')  # cut by the kill
    run.mark_done(1, "questioner")
    run.mark_done(1, "curation")
    prepare_run(_cfg(out, None, images), out, resume=True)
    assert run.read_metrics() == lines[:5]
    assert run.metrics_path.read_text().endswith("\n")
    # Nothing left to drop: a second resume leaves the file as it is.
    before = run.metrics_path.read_bytes()
    prepare_run(_cfg(out, None, images), out, resume=True)
    assert run.metrics_path.read_bytes() == before


def test_resume_without_config_starts_fresh_only_in_an_empty_folder(tmp_path, images):
    from visplay.evolve import prepare_run

    prepare_run(_cfg(tmp_path / "new", None, images), tmp_path / "new", resume=True)
    assert (tmp_path / "new" / "config.yaml").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    with pytest.raises(UserError, match="no config.yaml"):
        prepare_run(_cfg(tmp_path / "other", None, images), tmp_path / "other", resume=True)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["mine.txt"]


def test_an_unreadable_image_is_warned_about_and_counted_once(tmp_path, images, caplog):
    from visplay.data.images import open_image_source

    folder = tmp_path / "mixed"
    shutil.copytree(images, folder)
    (folder / "image_00001.png").write_bytes(b"garbage")
    source = open_image_source(folder)
    with caplog.at_level(logging.WARNING):
        source.require_readable()  # the first image decodes: nothing met, nothing warned
        for _ in range(3):  # three stages picking every image
            assert len(source.load_images(list(source))) == 2
    assert source.skipped == ["image_00001.png"]
    assert [r.getMessage() for r in caplog.records].count("skipping image image_00001.png: undecodable image "
                                                          "(UnidentifiedImageError)") == 1


def test_output_checks_name_the_problem_before_anything_is_written(tmp_path):
    from visplay.preflight import check_output_dir, check_output_file

    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(UserError, match="is a file; give a folder"):
        check_output_dir(a_file)
    with pytest.raises(UserError, match="f.txt is a file, not a folder"):
        check_output_dir(a_file / "sub" / "out")
    with pytest.raises(UserError, match="already exists; add --overwrite"):
        check_output_file(a_file)
    assert check_output_file(a_file, overwrite=True) == a_file
    with pytest.raises(UserError, match="is a folder"):
        check_output_file(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_model_folder_check_reads_headers_only_and_names_the_file(tmp_path):
    from visplay.engines.loading import read_model_config
    from visplay.world.base import ASSET_DIR

    model = shutil.copytree(ASSET_DIR, tmp_path / "model")
    assert read_model_config(model)["model_type"] == "qwen2_5_vl"
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[:-1])  # one byte short
    with pytest.raises(UserError, match="model.safetensors is not a complete safetensors file"):
        read_model_config(model)
    (model / "model.safetensors").write_bytes(weights)
    (model / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="no tokenizer files"):
        read_model_config(model)


def test_an_error_starts_on_its_own_line_after_a_progress_bar():
    from tqdm.auto import tqdm

    from visplay.cli.main import _close_progress_bars

    buffer = io.StringIO()
    bar = tqdm(total=10, file=buffer, leave=False, desc="toy")
    bar.update(3)
    _close_progress_bars()
    assert bar.disable  # closed
    assert buffer.getvalue().endswith("\r")  # the bar's line was cleared; the error line starts at column 0


def test_main_prints_one_line_for_an_environment_error(monkeypatch, capsys):
    import errno

    from visplay.cli import main as cli

    def handler(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/run/metrics.jsonl")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(handler=handler)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("visplay: error: No space left on device: /data/run/metrics.jsonl")


def test_state_json_with_a_damaged_shape_is_one_line(tmp_path):
    from visplay.runfolder import RunFolder

    run = RunFolder(tmp_path)
    for text, fragment in (('{"iterations": {"x": {}}}', "'x' is not a positive integer"), ("[]", "a JSON list"),
                           ('{"iterations": {"1": []}}', "iteration 1 is a JSON list")):
        run.state_path.write_text(text)
        with pytest.raises(UserError, match=fragment):
            run.load_state()
    run.state_path.write_text(json.dumps({"iterations": {"1": {"questioner": {"images": 2}}}}))
    assert run.is_done(1, "questioner") and not run.is_done(1, "curation")
