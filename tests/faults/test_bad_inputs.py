"""A corpus of bad inputs, generated here, run through every command that reads user files.

Each bad input (a broken model folder, unreadable images, garbage parquet, a damaged run folder, an
output that cannot be written, a malformed judge URL, ...) is given to `evolve`, `curate`, `eval`,
`eval score`, `report` or `demo` next to otherwise good inputs, and must give:
- exit code 2 and exactly one line on stderr, ``visplay: error: ...``, saying what is wrong (each case names
  a fragment the line must contain, so a case cannot pass on an unrelated error);
- no traceback;
- no change to any file or folder of the sandbox: nothing written, nothing removed, nothing half-written.
A few good inputs run through the same path (positive controls): they must succeed, which shows that the
good half of every bad case really is good.

All cases run in one process (tests/faults/run_cases.py calls the same ``main`` as the ``visplay`` script),
so torch and transformers are imported once for the whole corpus. Read-only cases need a place the process
cannot write: as root the runner runs with the file-permission override capabilities dropped (``setpriv``),
so modes apply to it as to any user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("run_cases.py")
SECRET = "s3cret-pw"


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str  # a fragment the one error line must contain (case-insensitive)
    code: int = 2
    readonly: bool = False  # needs the permission checks of a normal user
    progress_first: bool = False  # found only while working (a judge that went away): progress lines may precede
    allowed_changes: tuple[str, ...] = ()  # path prefixes a positive control may write
    check: dict = field(default_factory=dict)  # extra expectations of a positive control


# --- building blocks ------------------------------------------------------------------------------------------


def _png(size=(32, 32), mode="RGB", color=(200, 30, 30)) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def _forged_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb's signature)."""
    data = bytearray(_png((8, 8)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def _big_png(side: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # 1-bit and flat: tiny file, huge image
    return buffer.getvalue()


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def _parquet(path: Path, columns: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def _model_variant(good: Path, root: Path, name: str, drop=(), replace: dict | None = None,
                   config: dict | None = None) -> Path:
    """A copy of the good model folder with some files dropped or replaced; the weights are symlinked
    (read only) unless replaced."""
    folder = root / name
    folder.mkdir(parents=True)
    for f in good.iterdir():
        if f.name in drop or f.name in (replace or {}):
            continue
        if f.name == "model.safetensors":
            (folder / f.name).symlink_to(f)
        else:
            shutil.copy2(f, folder / f.name)
    for fname, data in (replace or {}).items():
        _write(folder / fname, data)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- the corpus ------------------------------------------------------------------------------------------------


def build_corpus(root: Path, readonly_ok: bool) -> list[Case]:
    from visplay.config import load_evolve_config, to_yaml
    from visplay.evaluation.data import load_benchmark
    from visplay.runfolder import RunFolder
    from visplay.stages.curation import SCHEMA
    from visplay.world.base import build_base
    from visplay.world.benchmark import write_benchmark
    from visplay.world.images import write_images

    good, data, outs = root / "good", root / "data", root / "outs"
    good.mkdir()
    outs.mkdir()
    model = build_base(good / "model", rebuild=False, check=False, log=lambda m: None)["path"]
    model = Path(model)
    images = write_images(good / "images", 4, seed=0)
    bench = good / "bench.parquet"
    write_benchmark(bench, n=12, seed=0)
    ids = [item.id for item in load_benchmark("toy", bench).items]
    predictions = _write(good / "predictions.jsonl",
                         "".join(json.dumps({"id": i, "response": "\\boxed{2}"}) + "\n" for i in ids))
    config = _write(good / "config.yaml", yaml.safe_dump({"preset": "tiny", "model": {"path": str(model)},
                                                          "data": {"images": str(images)}}))
    a_file = _write(data / "a_file.txt", "not a folder\n")
    cases: list[Case] = []

    def evolve(name, *args, expect, out=None, **kw):
        out = out if out is not None else outs / f"evolve-{name}"
        cases.append(Case(f"evolve/{name}", ["evolve", str(config), *args, "--out", str(out)], expect, **kw))

    def curate(name, questioner=model, reasoner=model, images_=images, out=None, extra=(), expect="", **kw):
        out = out if out is not None else outs / f"curate-{name}.parquet"
        cases.append(Case(f"curate/{name}", ["curate", "--questioner", str(questioner), "--reasoner", str(reasoner),
                                             "--images", str(images_), "--out", str(out), *extra], expect, **kw))

    def eval_(name, *args, model_=model, data_=bench, out=None, expect="", **kw):
        out = out if out is not None else outs / f"eval-{name}"
        cases.append(Case(f"eval/{name}", ["eval", "--model", str(model_), "--benchmark", "toy", "--data", str(data_),
                                           "--out", str(out), *args], expect, **kw))

    def score(name, *args, predictions_=predictions, data_=bench, expect="", **kw):
        cases.append(Case(f"eval-score/{name}", ["eval", "score", "--benchmark", "toy", "--data", str(data_),
                                                 "--predictions", str(predictions_), *args], expect, **kw))

    # --- broken model folders: evolve, curate (as questioner and as reasoner) and eval ---------------------------
    mroot = root / "models"
    weights = (model / "model.safetensors").read_bytes()
    header = struct.unpack("<Q", weights[:8])[0]
    good_config = json.loads((model / "config.json").read_text())
    variants = {
        "missing": (mroot / "missing", "does not exist"),
        "a-file": (a_file, "file"),
        "empty-folder": (_write(mroot / "empty" / ".keep", "") and mroot / "empty", "no config.json"),
        "no-config": (_model_variant(model, mroot, "no-config", drop=("config.json",)), "no config.json"),
        "config-garbage": (_model_variant(model, mroot, "config-garbage", replace={"config.json": "{not json"}),
                           "not readable JSON"),
        "config-binary": (_model_variant(model, mroot, "config-binary", replace={"config.json": os.urandom(64)}),
                          "not readable JSON"),
        "config-list": (_model_variant(model, mroot, "config-list", replace={"config.json": "[1, 2]"}), "no model_type"),
        "config-no-model-type": (_model_variant(model, mroot, "config-no-model-type",
                                                config={k: v for k, v in good_config.items() if k != "model_type"}),
                                 "no model_type"),
        "text-only": (_model_variant(model, mroot, "text-only", config={"model_type": "qwen2", "hidden_size": 8}),
                      "text-only"),
        "unknown-type": (_model_variant(model, mroot, "unknown-type", config={**good_config, "model_type": "nonesuch_vl"}),
                         "does not know model_type"),
        "not-a-vlm": (_model_variant(model, mroot, "not-a-vlm", config={**good_config, "model_type": "clip"}),
                      "not a vision-language model"),
        "no-weights": (_model_variant(model, mroot, "no-weights", drop=("model.safetensors",)), "no weights"),
        "weights-truncated": (_model_variant(model, mroot, "weights-truncated",
                                             replace={"model.safetensors": weights[: len(weights) // 2]}),
                              "not a complete safetensors file"),
        "weights-header-only": (_model_variant(model, mroot, "weights-header-only",
                                               replace={"model.safetensors": weights[: 8 + header]}),
                                "not a complete safetensors file"),
        "weights-0-bytes": (_model_variant(model, mroot, "weights-0-bytes", replace={"model.safetensors": b""}),
                            "not a complete safetensors file"),
        "weights-garbage": (_model_variant(model, mroot, "weights-garbage",
                                           replace={"model.safetensors": os.urandom(4096)}),
                            "not a complete safetensors file"),
        "weights-huge-header": (_model_variant(model, mroot, "weights-huge-header",
                                               replace={"model.safetensors": struct.pack("<Q", 2**40) + b"{}"}),
                                "not a complete safetensors file"),
        "no-tokenizer": (_model_variant(model, mroot, "no-tokenizer", drop=("tokenizer.json",)), "no tokenizer files"),
        "tokenizer-garbage": (_model_variant(model, mroot, "tokenizer-garbage",
                                             replace={"tokenizer.json": '{"version": "1.0", "model": '}),
                              "not readable JSON"),
        "tokenizer-config-binary": (_model_variant(model, mroot, "tokenizer-config-binary",
                                                   replace={"tokenizer_config.json": b"\xff\xfe\x00garbage"}),
                                    "not readable JSON"),
        "no-image-processor": (_model_variant(model, mroot, "no-image-processor",
                                              drop=("preprocessor_config.json", "processor_config.json")),
                               "no image processor config"),
        "generation-config-garbage": (_model_variant(model, mroot, "generation-config-garbage",
                                                     replace={"generation_config.json": "{{"}), "not readable JSON"),
        "index-missing-shard": (_model_variant(model, mroot, "index-missing-shard", drop=("model.safetensors",),
                                               replace={"model.safetensors.index.json": json.dumps(
                                                   {"weight_map": {"a": "model-00001-of-00002.safetensors"}})}),
                                "missing the weight shard"),
        "index-garbage": (_model_variant(model, mroot, "index-garbage",
                                         replace={"model.safetensors.index.json": "not json"}), "not readable JSON"),
        "bin-0-bytes": (_model_variant(model, mroot, "bin-0-bytes", drop=("model.safetensors",),
                                       replace={"pytorch_model.bin": b""}), "empty or cut short"),
        "bin-cut-zip": (_model_variant(model, mroot, "bin-cut-zip", drop=("model.safetensors",),
                                       replace={"pytorch_model.bin": b"PK\x03\x04" + os.urandom(200)}),
                        "empty or cut short"),
    }
    for name, (path, expect) in variants.items():
        if name == "missing":
            evolve(f"model-{name}", "--set", f"model.path={path}", expect="does not exist")
        else:
            evolve(f"model-{name}", "--set", f"model.path={path}", expect=expect)
        curate(f"questioner-{name}", questioner=path, expect=expect)
        curate(f"reasoner-{name}", reasoner=path, expect=expect)
        eval_(f"model-{name}", model_=path, expect=expect)

    # --- unreadable images: evolve and curate ----------------------------------------------------------------------
    iroot = root / "images"
    png = _png()
    image_sources = {
        "missing": (iroot / "missing", "does not exist"),
        "empty-folder": (_write(iroot / "empty" / "README", "no images here") and iroot / "empty", "holds no images"),
        "only-0-byte-png": (_write(iroot / "zero" / "a.png", b"").parent, "no readable images"),
        "only-truncated-png": (_write(iroot / "truncated" / "a.png", png[: len(png) // 2]).parent, "no readable images"),
        "only-garbage-jpg": (_write(iroot / "garbage" / "a.jpg", os.urandom(2048)).parent, "no readable images"),
        "only-text-as-png": (_write(iroot / "text" / "a.png", "hello, I am text\n").parent, "no readable images"),
        "only-forged-bomb": (_write(iroot / "bomb" / "a.png", _forged_png(100_000, 100_000)).parent,
                             "no readable images"),
        "only-too-large": (_write(iroot / "large" / "a.png", _big_png(8200)).parent, "no readable images"),
        "only-folder-named-png": ((iroot / "dirpng" / "x.png").mkdir(parents=True) or iroot / "dirpng", "holds no images"),
        "a-text-file": (a_file, "must be a folder"),
        "parquet-garbage": (_write(iroot / "garbage.parquet", os.urandom(512)), "not a readable parquet"),
        "parquet-0-bytes": (_write(iroot / "zero.parquet", b""), "not a readable parquet"),
        "parquet-no-image-column": (_parquet(iroot / "noimg.parquet", {"text": ["a", "b"]}), "no image column"),
        "parquet-int-images": (_parquet(iroot / "ints.parquet", {"image": [1, 2, 3]}), "no readable images"),
        "parquet-garbage-bytes": (_parquet(iroot / "gbytes.parquet", {"image": [os.urandom(100), b"xx"]}),
                                  "no readable images"),
        "parquet-null-images": (_parquet(iroot / "nulls.parquet", {"image": pa.array([None, None], pa.binary())}),
                                "no readable images"),
        "parquet-0-rows": (_parquet(iroot / "norows.parquet", {"image": pa.array([], pa.binary())}), "no readable images"),
        "two-parquet-files": (_parquet(iroot / "two" / "b.parquet", {"image": [png]}).parent, "several parquet files"),
        "saved-dataset-damaged": (_write(iroot / "ds" / "dataset_info.json", "{}").parent, "saved Hugging Face dataset"),
    }
    full = _parquet(iroot / "full.parquet", {"image": [png] * 50, "n": list(range(50))})
    image_sources["parquet-truncated"] = (_write(iroot / "cut.parquet", full.read_bytes()[: full.stat().st_size // 2]),
                                          "not a readable parquet")
    _parquet(iroot / "two" / "a.parquet", {"image": [png]})
    mixed = iroot / "all-broken"
    for fname, blob in (("zero.png", b""), ("cut.png", png[:40]), ("noise.jpg", os.urandom(300)),
                        ("bomb.png", _forged_png(70_000, 70_000)), ("text.webp", "text")):
        _write(mixed / fname, blob)
    image_sources["all-kinds-broken"] = (mixed, "no readable images")
    for name, (path, expect) in image_sources.items():
        evolve(f"images-{name}", "--set", f"data.images={path}", expect=expect)
        curate(f"images-{name}", images_=path, expect=expect)

    # --- outputs that cannot be written -------------------------------------------------------------------------------
    under_file = a_file / "out"
    foreign = _write(outs / "foreign" / "notes.txt", "keep me").parent
    evolve("out-is-a-file", expect="is a file", out=a_file)
    evolve("out-under-a-file", expect="is a file, not a folder", out=under_file)
    evolve("out-foreign-folder", expect="non-empty folder", out=foreign)
    evolve("resume-foreign-folder", "--resume", expect="no config.yaml", out=foreign)
    existing = outs / "existing-run"
    existing.mkdir()
    cfg = load_evolve_config(config, [f"out={existing}"])
    (existing / "config.yaml").write_text(to_yaml(cfg))
    evolve("out-holds-a-run", expect="already holds a run", out=existing)
    evolve("resume-changed-config", "--resume", "--set", "curation.votes=3", expect="curation.votes differs", out=existing)
    damaged_cfg_run = _write(outs / "damaged-config-run" / "config.yaml", os.urandom(200)).parent
    evolve("resume-binary-config", "--resume", expect="not UTF-8", out=damaged_cfg_run)
    damaged_state_run = outs / "damaged-state-run"
    damaged_state_run.mkdir()
    (damaged_state_run / "config.yaml").write_text(to_yaml(load_evolve_config(config, [f"out={damaged_state_run}"])))
    _write(damaged_state_run / "state.json", "[1, 2, 3]")
    evolve("resume-state-a-list", "--resume", expect="state.json is damaged", out=damaged_state_run)
    eval_("out-is-a-file", out=a_file, expect="is a file")
    eval_("out-under-a-file", out=under_file, expect="is a file, not a folder")
    score("out-is-a-file", "--out", str(a_file), expect="is a file")
    score("out-under-a-file", "--out", str(under_file), expect="is a file, not a folder")
    existing_parquet = _parquet(outs / "existing.parquet", {"image": [b"precious"]})
    curate("out-exists", out=existing_parquet, expect="already exists; add --overwrite")
    curate("out-is-a-folder", out=foreign.parent / "folder.parquet", expect="is a folder")
    (foreign.parent / "folder.parquet").mkdir()
    curate("out-under-a-file", out=a_file / "x.parquet", expect="is a file, not a folder")
    curate("out-not-parquet", out=outs / "x.csv", expect="must end in .parquet")

    # --- configs ------------------------------------------------------------------------------------------------
    def evolve_cfg(name, path, *args, expect):
        cases.append(Case(f"evolve/config-{name}", ["evolve", str(path), *args, "--out", str(outs / f"cfg-{name}")],
                          expect))

    croot = root / "configs"
    evolve_cfg("missing", croot / "missing.yaml", expect="does not exist")
    evolve_cfg("binary", _write(croot / "binary.yaml", os.urandom(300)), expect="not")
    evolve_cfg("syntax", _write(croot / "syntax.yaml", "model: [unclosed\n"), expect="not valid YAML")
    evolve_cfg("a-list", _write(croot / "list.yaml", "- 1\n- 2\n"), expect="mapping")
    evolve_cfg("a-folder", croot, expect="is a folder")
    evolve_cfg("unknown-key", config, "--set", "curation.nonsense=1", expect="unknown config key curation.nonsense")
    evolve_cfg("wrong-type", config, "--set", "iterations=many", expect="config key iterations")
    evolve_cfg("out-of-range", config, "--set", "curation.votes=0", expect="curation.votes")
    evolve_cfg("band-reversed", config, "--set", "curation.band=[0.9,0.1]", expect="curation.band")
    evolve_cfg("set-without-equals", config, "--set", "curation.votes", expect="--set expects")
    evolve_cfg("set-into-a-value", config, "--set", "preset.x=1", expect="not a section")
    evolve_cfg("preset", config, "--set", "preset=huge", expect="preset")
    evolve_cfg("benchmark-unknown", config, "--set", f"eval.benchmarks=[{{name: nonesuch, data: {bench}}}]",
               expect="nonesuch")
    evolve_cfg("benchmark-data-missing", config, "--set", f"eval.benchmarks=[{{name: toy, data: {croot}/nope}}]",
               expect="does not exist")
    evolve_cfg("section-not-a-mapping", _write(croot / "nested.yaml", "model: 3\n"), expect="config key model")

    # --- demo: every check before the world is built ----------------------------------------------------------------
    def demo(name, *args, expect):
        cases.append(Case(f"demo/{name}", ["demo", *args], expect))

    demo("iterations-0", "--out", str(outs / "demo0"), "--iterations", "0", expect="--iterations")
    demo("out-is-a-file", "--out", str(a_file), expect="is a file")
    demo("out-under-a-file", "--out", str(under_file), expect="is a file, not a folder")
    demo("out-foreign-folder", "--out", str(foreign), expect="non-empty folder")
    demo("unknown-set-key", "--out", str(outs / "demo-set"), "--set", "bogus.key=1", expect="unknown config key bogus")
    demo("bad-set-value", "--out", str(outs / "demo-set2"), "--set", "curation.band=[2,3]", expect="curation.band")
    demo("holds-a-run", "--out", str(existing), expect="already holds a run")

    # --- tiny-model and world: their outputs and inputs -----------------------------------------------------------
    def command(name, *args, expect, **kw):
        cases.append(Case(name, list(map(str, args)), expect, **kw))

    for what, argv, refusal in (("tiny-model", ["tiny-model"], "not a tiny model"),
                                ("world-images", ["world", "images", "--n", "2"], "not an empty folder"),
                                ("world-base", ["world", "base", "--no-check"], "not a model folder")):
        command(f"{what}/out-is-a-file", *argv, "--out", a_file, expect="is a file")
        command(f"{what}/out-under-a-file", *argv, "--out", under_file, expect="is a file, not a folder")
        command(f"{what}/out-foreign-folder", *argv, "--out", foreign, expect=refusal)
    command("world-benchmark/out-a-folder", "world", "benchmark", "--n", "6", "--out", foreign, expect="is a folder")
    command("world-benchmark/out-under-a-file", "world", "benchmark", "--n", "6", "--out", under_file / "b.parquet",
            expect="is a file, not a folder")
    command("world-check/model-weights-truncated", "world", "check", "--model", variants["weights-truncated"][0],
            expect="not a complete safetensors file")
    bad_bench_data = [("garbage", root / "bench" / "garbage.parquet", "cannot read"),
                      ("missing-columns", root / "bench" / "cols.parquet", "missing column"),
                      ("not-parquet", predictions, "must be a .parquet file"),
                      ("no-family", _parquet(root / "bench" / "nofamily.parquet", {
                          k: [r[k] for r in pq.read_table(bench).to_pylist()] for k in ("id", "question", "answer",
                                                                                       "image")}), "no family column")]

    # --- judge URLs (eval score; the password never appears) ---------------------------------------------------------
    for name, url, expect in (
        ("not-a-url", "judge-server", "not an http"),
        ("ftp", "ftp://127.0.0.1/v1", "not an http"),
        ("javascript", "javascript:alert(1)", "not an http"),
        ("no-host", "http:///v1", "names no host"),
        ("port-not-a-number", "http://127.0.0.1:port/v1", "invalid host or port"),
        ("port-too-large", "http://127.0.0.1:99999/v1", "invalid host or port"),
        ("space", "http://exa mple.com/v1", "spaces"),
        ("empty", "", "needs --judge-url"),
        ("password-bad-port", f"http://me:{SECRET}@127.0.0.1:port/v1", "invalid host or port"),
        ("password-unreachable", f"http://me:{SECRET}@127.0.0.1:9/v1", "unreachable"),
    ):
        # An endpoint that is down is met only when judging starts, after a progress line.
        score(f"judge-{name}", "--judge-url", url, "--judge-model", "m", "--judge", "always", "--judge-retries", "0",
              "--judge-cache", str(outs / "judge-cache"), expect=expect, progress_first=name.endswith("unreachable"))
    score("judge-workers-0", "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m", "--judge-workers", "0",
          expect="--judge-workers")
    score("judge-retries-negative", "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m", "--judge-retries",
          "-1", expect="--judge-retries")

    # --- benchmark data and predictions -----------------------------------------------------------------------------
    broot = root / "bench"
    rows = pq.read_table(bench).to_pylist()
    bad_image_rows = [dict(r) for r in rows]
    bad_image_rows[5]["image"] = os.urandom(64)
    missing_path_rows = [dict(r, image=None) for r in rows]
    missing_path_rows[0]["image"] = "images/nope.png"
    bench_cases = {
        "missing": (broot / "missing.parquet", "does not exist"),
        "garbage-parquet": (_write(broot / "garbage.parquet", os.urandom(700)), "cannot read"),
        "0-byte-parquet": (_write(broot / "zero.parquet", b""), "cannot read"),
        "truncated-parquet": (_write(broot / "cut.parquet", bench.read_bytes()[: bench.stat().st_size // 2]),
                              "cannot read"),
        "jsonl-garbage-line": (_write(broot / "g.jsonl", '{"question": "q", "answer": "1"}\nnot json\n'), "not valid JSON"),
        "jsonl-binary": (_write(broot / "b.jsonl", b"\xff\xfe" + os.urandom(100)), "cannot read"),
        "json-a-number": (_write(broot / "n.json", "42"), "expected a list"),
        "json-list-of-numbers": (_write(broot / "l.json", "[1, 2]"), "rows must be objects"),
        "missing-columns": (_parquet(broot / "cols.parquet", {"x": [1]}), "missing column"),
        "no-rows": (_parquet(broot / "empty.parquet", {"question": pa.array([], pa.string())}), "no rows"),
        "garbage-image-bytes": (_parquet(broot / "badimg.parquet", {k: [r[k] for r in bad_image_rows] for k in rows[0]}),
                                "undecodable image"),
        "missing-image-path": (_parquet(broot / "nopath.parquet", {k: [r[k] for r in missing_path_rows] for k in rows[0]}),
                               "not found"),
        "folder-without-data": (_write(broot / "nodata" / "README.md", "x").parent, "holds no .parquet"),
    }
    for name, (path, expect) in bench_cases.items():
        eval_(f"data-{name}", data_=path, expect=expect)
    for name, path, expect in bad_bench_data + [("garbage-image-bytes", bench_cases["garbage-image-bytes"][0],
                                                  "undecodable image")]:
        command(f"world-check/benchmark-{name}", "world", "check", "--model", model, "--benchmark", path, expect=expect)
    for name in ("garbage-parquet", "garbage-image-bytes"):  # read hours into a run: checked at its start
        evolve_cfg(f"benchmark-{name}", config, "--set",
                   f"eval.benchmarks=[{{name: toy, data: {bench_cases[name][0]}}}]", expect=bench_cases[name][1])
    # diagnose: the same model and data checks as eval, before any sampling
    def diagnose(name, model_=model, data_=bench, out=None, expect="", **kw):
        out = out if out is not None else outs / f"diagnose-{name}"
        command(f"diagnose/{name}", "diagnose", "--model", model_, "--benchmark", "toy", "--data", data_, "--out", out,
                expect=expect, **kw)

    for name in ("weights-truncated", "no-tokenizer", "config-binary"):
        diagnose(f"model-{name}", model_=variants[name][0], expect=variants[name][1])
    for name in ("garbage-parquet", "garbage-image-bytes", "missing-columns"):
        diagnose(f"data-{name}", data_=bench_cases[name][0], expect=bench_cases[name][1])
    diagnose("out-is-a-file", out=a_file, expect="is a file")
    diagnose("out-under-a-file", out=under_file, expect="is a file, not a folder")
    command("study/out-is-a-file", "study", "--arms", "paper", "--seeds", "0", "--out", a_file, expect="is a file")
    command("study/out-under-a-file", "study", "--arms", "paper", "--seeds", "0", "--out", under_file,
            expect="is a file, not a folder")
    command("study/unknown-arm", "study", "--arms", "nonesuch", "--seeds", "0", "--out", outs / "study",
            expect="unknown arm")
    eval_("limit-0", "--limit", "0", expect="--limit")
    eval_("batch-size-0", "--batch-size", "0", expect="--batch-size")
    eval_("max-new-tokens-0", "--max-new-tokens", "0", expect="--max-new-tokens")
    cases.append(Case("eval/unknown-benchmark", ["eval", "--model", str(model), "--benchmark", "nonesuch", "--data",
                                                 str(bench), "--out", str(outs / "eval-unknown")], "nonesuch"))
    cases.append(Case("eval/neither-model-nor-run", ["eval", "--benchmark", "toy", "--data", str(bench)], "--model"))
    score("data-garbage", data_=bench_cases["garbage-parquet"][0], expect="cannot read")
    proot = root / "predictions"
    for name, path, expect in (
        ("missing", proot / "missing.jsonl", "does not exist"),
        ("a-folder", (proot / "folder").mkdir(parents=True) or proot / "folder", "is a folder"),
        ("binary", _write(proot / "binary.jsonl", b"\xff\xfe\xfa" + os.urandom(64) + b"\n"), "is not a prediction"),
        ("garbage-line", _write(proot / "garbage.jsonl", predictions.read_text() + "{oops\n"), "is not a prediction"),
        ("a-list-line", _write(proot / "list.jsonl", "[1, 2]\n"), "is not a prediction"),
        ("unknown-ids", _write(proot / "unknown.jsonl", '{"id": "zzz", "response": "1"}\n'), "not in"),
    ):
        score(f"predictions-{name}", predictions_=path, expect=expect)

    # --- damaged run folders: report and eval --run ---------------------------------------------------------------
    template = root / "run-template"
    run = RunFolder(template)
    template.mkdir()
    run.config_path.write_text(to_yaml(load_evolve_config(config, [f"out={template}"])))
    run.mark_done(1, "questioner", {"images": 4})
    run.mark_done(1, "curation", {"candidates": 1, "kept": 1, "validity": 1.0, "mean_confidence": 0.5})
    run.log_metrics({"event": "step", "stage": "iter01/questioner", "step": 1, "reward_mean": 0.5})
    question = {"image_id": "a.png", "image": {"bytes": None, "path": "a.png"}, "raw": "r", "question": "q?",
                "qtype": "numerical", "questioner_answer": "1", "votes": ["1", None], "silver_answer": "1",
                "confidence": 0.5, "kept": True, "reason": ""}
    run.iter_dir(1).mkdir()
    pq.write_table(pa.Table.from_pylist([question], schema=SCHEMA), run.questions_path(1))
    runs = root / "runs"

    def damaged(name, edit, expect, command="report"):
        folder = runs / f"{command}-{name}"
        shutil.copytree(template, folder, symlinks=True)
        edit(folder)
        argv = ["report", str(folder)] if command == "report" else \
            ["eval", "--run", str(folder), "--benchmark", "toy", "--data", str(bench)]
        cases.append(Case(f"{command}/{name}", argv, expect))
        return folder

    questions = "iter_01/questions.parquet"
    qbytes = run.questions_path(1).read_bytes()
    damaged("state-a-list", lambda f: _write(f / "state.json", "[]"), "state.json is damaged")
    damaged("state-not-json", lambda f: _write(f / "state.json", "{"), "state.json is damaged")
    damaged("state-binary", lambda f: _write(f / "state.json", os.urandom(100) + b"\xff"), "state.json is damaged")
    damaged("state-key-not-integer", lambda f: _write(f / "state.json", '{"iterations": {"one": {}}}'),
            "not a positive integer")
    damaged("state-iterations-a-list", lambda f: _write(f / "state.json", '{"iterations": [1]}'), "'iterations'")
    damaged("state-stage-a-string", lambda f: _write(f / "state.json", '{"iterations": {"1": {"curation": "done"}}}'),
            "stage 'curation'")
    damaged("state-a-folder", lambda f: ((f / "state.json").unlink(), (f / "state.json").mkdir()), "is a folder")
    damaged("metrics-line-a-list", lambda f: _write(f / "metrics.jsonl", "[1, 2]\n{}\n"), "line 1 is not a JSON object")
    damaged("metrics-line-a-string", lambda f: _write(f / "metrics.jsonl", '{}\n"step"\n{}\n'), "line 2")
    damaged("metrics-binary", lambda f: _write(f / "metrics.jsonl", os.urandom(300).replace(b"\n", b"") + b"\n"),
            "line 1")
    damaged("metrics-stage-a-number", lambda f: _write(f / "metrics.jsonl", '{"event": "step", "stage": 3}\n'),
            "'stage' is not a string")
    damaged("metrics-step-value-text", lambda f: _write(
        f / "metrics.jsonl", '{"event": "step", "stage": "iter01/questioner", "reward_mean": "high"}\n'), "not a number")
    damaged("metrics-a-folder", lambda f: ((f / "metrics.jsonl").unlink(), (f / "metrics.jsonl").mkdir()), "is a folder")
    damaged("questions-truncated", lambda f: _write(f / questions, qbytes[: len(qbytes) // 2]), "not a readable parquet")
    damaged("questions-0-bytes", lambda f: _write(f / questions, b""), "not a readable parquet")
    damaged("questions-garbage", lambda f: _write(f / questions, os.urandom(900)), "not a readable parquet")
    damaged("questions-missing-columns", lambda f: _parquet(f / questions, {"image_id": ["a"]}), "missing column")
    damaged("questions-integer-votes", lambda f: _parquet(f / questions, {
        **{k: [question[k]] for k in question if k not in ("votes", "image")}, "votes": [[1, 2]]}),
        "column votes holds list<int64>")
    damaged("questions-kept-text", lambda f: _parquet(f / questions, {
        **{k: [question[k]] for k in question if k not in ("kept", "image")}, "kept": ["yes"]}), "column kept")
    damaged("questions-a-folder", lambda f: ((f / questions).unlink(), (f / questions).mkdir()), "is a folder")
    damaged("config-binary", lambda f: _write(f / "config.yaml", os.urandom(200) + b"\xff"), "not UTF-8")
    damaged("config-not-yaml", lambda f: _write(f / "config.yaml", "a: [\n"), "not valid YAML")
    damaged("config-a-list", lambda f: _write(f / "config.yaml", "- 1\n"), "not a mapping")
    damaged("config-missing", lambda f: (f / "config.yaml").unlink(), "no config.yaml")
    damaged("config-a-folder", lambda f: ((f / "config.yaml").unlink(), (f / "config.yaml").mkdir()), "is a folder")
    damaged("report-html-a-folder", lambda f: (f / "report.html").mkdir(), "is a folder")
    for name, edit, expect in (  # audit reads the same questions.parquet files as the report
            ("questions-integer-votes", lambda f: _parquet(f / questions, {
                **{k: [question[k]] for k in question if k not in ("votes", "image")}, "votes": [[1, 2]]}),
             "column votes holds list<int64>"),
            ("questions-truncated", lambda f: _write(f / questions, qbytes[: len(qbytes) // 2]), "not a readable parquet"),
            ("questions-a-folder", lambda f: ((f / questions).unlink(), (f / questions).mkdir()), "is a folder")):
        folder = runs / f"audit-{name}"
        shutil.copytree(template, folder)
        edit(folder)
        cases.append(Case(f"audit/{name}", ["audit", str(folder)], expect))
    cases.append(Case("audit/missing", ["audit", str(runs / "nope")], "does not exist"))
    cases.append(Case("audit/a-file", ["audit", str(a_file)], "is a file"))
    cases.append(Case("report/missing", ["report", str(runs / "nope")], "does not exist"))
    cases.append(Case("report/a-file", ["report", str(a_file)], "is a file"))
    damaged("config-binary", lambda f: _write(f / "config.yaml", os.urandom(200) + b"\xff"), "not UTF-8", "eval")
    damaged("config-missing", lambda f: (f / "config.yaml").unlink(), "no config.yaml", "eval")
    damaged("config-no-model-path", lambda f: _write(f / "config.yaml", "out: x\n"), "no model.path", "eval")
    damaged("config-model-a-list", lambda f: _write(f / "config.yaml", "model: [1]\n"), "no model.path", "eval")
    damaged("reasoner-truncated", lambda f: _model_variant(
        model, f / "iter_01", "reasoner", replace={"model.safetensors": weights[:1000]}),
        "not a complete safetensors file", "eval")
    cases.append(Case("eval/run-missing", ["eval", "--run", str(runs / "nope"), "--benchmark", "toy", "--data",
                                           str(bench)], "does not exist"))

    # --- read-only places (as a normal user would meet them) -----------------------------------------------------------
    if readonly_ok:
        ro = root / "readonly"
        ro_empty = ro / "empty"
        ro_empty.mkdir(parents=True)
        ro_run = runs / "read-only-run"
        shutil.copytree(template, ro_run)
        unreadable_model = _model_variant(model, mroot, "unreadable-config")
        unreadable_images = _write(iroot / "unreadable" / "a.png", png).parent
        unreadable_predictions = _write(proot / "unreadable.jsonl", predictions.read_text())
        evolve("out-read-only", expect="cannot be written", out=ro_empty, readonly=True)
        evolve("out-under-read-only", expect="cannot be written", out=ro / "new", readonly=True)
        eval_("out-read-only", out=ro_empty, expect="cannot be written", readonly=True)
        eval_("out-under-read-only", out=ro / "new", expect="cannot be written", readonly=True)
        score("out-read-only", "--out", str(ro_empty), expect="cannot be written", readonly=True)
        score("out-read-only-default", predictions_=_write(ro / "p" / "predictions.jsonl", predictions.read_text()),
              expect="output folder (the predictions' own)", readonly=True)
        curate("out-read-only", out=ro_empty / "q.parquet", expect="cannot be written", readonly=True)
        cases.append(Case("demo/out-read-only", ["demo", "--out", str(ro / "demo")], "cannot be written", readonly=True))
        command("tiny-model/out-read-only", "tiny-model", "--out", ro / "tiny", expect="cannot be written", readonly=True)
        command("world-images/out-read-only", "world", "images", "--n", "2", "--out", ro / "img",
                expect="cannot be written", readonly=True)
        command("world-benchmark/out-read-only", "world", "benchmark", "--n", "6", "--out", ro / "b.parquet",
                expect="cannot be written", readonly=True)
        command("world-base/out-read-only", "world", "base", "--no-check", "--out", ro / "base",
                expect="cannot be written", readonly=True)
        cases.append(Case("report/read-only-run", ["report", str(ro_run)], "cannot write the report", readonly=True))
        cases.append(Case("audit/read-only-run", ["audit", str(ro_run)], "cannot be written", readonly=True))
        command("study/out-read-only", "study", "--arms", "paper", "--seeds", "0", "--out", ro / "study",
                expect="cannot be written", readonly=True)
        diagnose("out-read-only", out=ro / "diag", expect="cannot be written", readonly=True)
        cases.append(Case("eval/run-read-only", ["eval", "--run", str(ro_run), "--benchmark", "toy", "--data", str(bench)],
                          "cannot be written", readonly=True))
        evolve("model-unreadable-config", "--set", f"model.path={unreadable_model}", expect="not readable JSON",
               readonly=True)
        evolve("images-unreadable", "--set", f"data.images={unreadable_images}", expect="no readable images",
               readonly=True)
        score("predictions-unreadable", predictions_=unreadable_predictions, expect="cannot read", readonly=True)
        # Read-only last: everything above was written while the folders were still writable.
        (unreadable_model / "config.json").chmod(0)
        (unreadable_images / "a.png").chmod(0)
        unreadable_predictions.chmod(0)
        for folder in (ro_run, ro / "p", ro_empty, ro):
            for path in [folder, *folder.rglob("*")]:
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o555)

    # --- positive controls: the good inputs work through the same path --------------------------------------------------
    odd = root / "odd-modes"
    odd.mkdir()
    for mode, color in (("CMYK", (0, 0, 0, 0)), ("LA", (90, 128)), ("P", 3), ("I;16", 40000), ("1", 1), ("L", 9)):
        Image.new(mode, (40, 30), color).save(odd / f"{mode.replace(';', '')}.{'tiff' if mode == 'CMYK' else 'png'}")
    _write(odd / "broken.png", png[:50])
    tiny = ["--set", "curation.images=8", "--set", "curation.samples_per_image=1", "--set", "curation.votes=2",
            "--set", "curation.question_sampling.max_tokens=8", "--set", "questioner.vote_sampling.max_tokens=8",
            "--set", "curation.vote_sampling.max_tokens=8"]
    curate("ok-odd-modes-and-one-broken-image", images_=odd, out=outs / "ok.parquet", extra=tiny, code=0,
           expect="skipping image broken.png", allowed_changes=("outs/ok.parquet",), check={"warned_once": "broken.png"})
    eval_("ok", "--limit", "2", "--max-new-tokens", "2", out=outs / "eval-ok", code=0, expect="",
          allowed_changes=("outs/eval-ok",))
    score("ok", "--out", str(outs / "score-ok"), code=0, expect="", allowed_changes=("outs/score-ok",))
    shutil.copytree(template, runs / "ok")
    cases.append(Case("report/ok", ["report", str(runs / "ok")], "", code=0, allowed_changes=("runs/ok/report.html",)))
    return cases


# --- the test --------------------------------------------------------------------------------------------------


def _readonly_wrapper() -> list[str] | None:
    """The command prefix under which file modes bind the runner ([] as a normal user), or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def _judge(case: Case, result: dict) -> list[str]:
    problems = []
    err = result["stderr"]
    lines = [line for line in err.splitlines() if line.strip()]
    if result["escaped"]:
        problems.append("traceback:\n" + result["escaped"][-1500:])
    if result["code"] != case.code:
        problems.append(f"exit {result['code']} (expected {case.code}); stderr: {err[-600:]!r}")
    if case.code == 2:
        if case.progress_first:  # the error is still the last line and the only error line
            lines = [line for line in lines if line.startswith("visplay: error: ")] if lines and \
                lines[-1].startswith("visplay: error: ") else lines
        if len(lines) != 1 or not lines[0].startswith("visplay: error: "):
            problems.append(f"stderr is not one 'visplay: error:' line: {err[-800:]!r}")
        elif case.expect.lower() not in lines[0].lower():
            problems.append(f"error does not say {case.expect!r}: {lines[0]!r}")
        if "Traceback" in err:
            problems.append("traceback text on stderr")
        if SECRET in err or SECRET in result["stdout"]:
            problems.append("the judge password was printed")
    elif case.expect and case.expect.lower() not in err.lower():
        problems.append(f"stderr does not say {case.expect!r}: {err[-600:]!r}")
    if case.check.get("warned_once"):
        warnings = [line for line in lines if "skipping image" in line and case.check["warned_once"] in line]
        if len(warnings) != 1:
            problems.append(f"{case.check['warned_once']} warned {len(warnings)} times, not once: {err[-800:]!r}")
    changed = [c for c in result["changed"] if not c.startswith(case.allowed_changes or ("\0",))]
    if changed:
        problems.append(f"changed files: {changed[:6]}")
    return problems


def test_every_bad_input_fails_in_one_line_and_changes_nothing(tmp_path):
    wrapper = _readonly_wrapper()
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "cwd").mkdir()
    cases = build_corpus(sandbox, readonly_ok=wrapper is not None)
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps([asdict(c) for c in cases]))
    results_file = tmp_path / "results.json"
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               VISPLAY_CACHE=str(tmp_path / "cache"), MPLCONFIGDIR=str(tmp_path / "mpl"),
               PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("VISPLAY_JUDGE_API_KEY", None)
    try:
        proc = subprocess.run([*(wrapper or []), sys.executable, str(RUNNER), str(sandbox), str(cases_file),
                               str(results_file)], cwd=sandbox / "cwd", env=env, capture_output=True, text=True,
                              timeout=900)
    finally:
        for path in [sandbox, *sandbox.rglob("*")]:  # let pytest clean up what was made read-only
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IRWXU)
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    assert proc.returncode == 0 and len(results) == len(cases), proc.stderr[-3000:]
    failures = []
    for case, result in zip(cases, results):
        problems = _judge(case, result)
        if problems:
            failures.append(f"{case.name}: " + "; ".join(problems))
    bad = [c for c in cases if c.code == 2]
    print(f"\n{len(bad)} bad inputs tried, {len(bad) - len(failures)} handled"
          f" ({sum(c.readonly for c in cases)} read-only cases{'' if wrapper is not None else ' skipped: no setpriv'});"
          f" {len(cases) - len(bad)} positive controls; slowest case "
          f"{max(results, key=lambda r: r['seconds'])['name']} {max(r['seconds'] for r in results):.1f} s")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
