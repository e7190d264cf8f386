"""Generate answers with a model and evaluate them: the ``visplay eval`` pipeline.

Scoring and the files it writes (``predictions.jsonl``, ``summary.json``) live in
:mod:`visplay.evaluation.scoring`. Per benchmark the output folder also holds
``responses.jsonl``: the raw generations, appended as they are produced, so an interrupted run resumes
where it stopped (an entry is reused only for the same model files, prompt and budget).
Generation is greedy with the reasoner prompt, as in the paper.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from visplay.errors import UserError
from visplay.evaluation.base import Extraction
from visplay.evaluation.data import BenchmarkData, check_images, item_images, load_benchmark
from visplay.evaluation.judge import JudgeClient
from visplay.evaluation.scoring import Log, log_to_stderr, score_responses, summarize, write_results

JUDGE_MODES = ("never", "fallback", "always")


@dataclass
class EvalSettings:
    """How to generate and score. ``None`` fields take the benchmark's default."""

    prompt_style: str | None = None
    max_new_tokens: int | None = None
    batch_size: int = 8
    judge_mode: str = "never"
    judge: JudgeClient | None = None
    limit: int | None = None
    split: str | None = None
    subset: str | None = None
    device: str | None = None
    dtype: str | None = None
    log: Log = field(default=log_to_stderr)

    def __post_init__(self):
        if self.judge_mode not in JUDGE_MODES:
            raise UserError(f"--judge must be one of {', '.join(JUDGE_MODES)} (got {self.judge_mode!r})")
        if self.judge_mode != "never" and self.judge is None:
            raise UserError(f"--judge {self.judge_mode} needs a judge endpoint: give --judge-url and --judge-model")
        if self.prompt_style not in (None, "paper", "compact"):
            raise UserError(f"--prompt-style must be paper or compact (got {self.prompt_style!r})")
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def model_fingerprint(path: Path) -> str:
    """Identifies a model folder's weights (names, sizes, modification times): changed weights regenerate."""
    parts = [str(path.resolve())]
    for f in sorted(path.glob("*")):
        if f.suffix in (".safetensors", ".bin", ".json") and f.is_file():
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _request_key(fingerprint: str, messages: list[dict], n_images: int, max_new_tokens: int) -> str:
    blob = json.dumps([fingerprint, messages, n_images, max_new_tokens], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def _read_cached_responses(path: Path) -> dict[str, dict]:
    cached: dict[str, dict] = {}
    if path.is_file():
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    cached[entry["id"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill mid-write
    return cached


def generate_responses(sampler, data: BenchmarkData, model_dir: Path, out_dir: Path | None, style: str,
                       max_new_tokens: int, chunk_size: int = 64, log: Log = log_to_stderr) -> dict[str, str]:
    """Greedy responses for every item, reusing ``responses.jsonl`` entries of an interrupted run.

    ``out_dir=None`` keeps no cache (the toy world check: its swapped-image pass asks the same prompts).
    """
    from tqdm.auto import tqdm

    from visplay.engines.sampler import SampleRequest

    bench = data.benchmark
    cache_file = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        cache_file = out_dir / "responses.jsonl"
    cached = _read_cached_responses(cache_file) if cache_file is not None else {}
    fingerprint = model_fingerprint(model_dir) if cache_file is not None else ""
    responses: dict[str, str] = {}
    todo = []
    for item in data.items:
        messages = bench.prompt(item, style)
        key = _request_key(fingerprint, messages, len(item.images), max_new_tokens)
        entry = cached.get(item.id)
        if entry is not None and entry.get("key") == key:
            responses[item.id] = entry["response"]
        else:
            todo.append((item, messages, key))
    if responses:
        log(f"{bench.name}: reusing {len(responses)} response(s) from {cache_file}")
    # The bar is a context manager so that an error clears it: the error line then starts on its own line.
    with tqdm(total=len(todo), desc=f"{bench.name}", unit="item", leave=False, disable=not todo) as bar, \
            (cache_file.open("a", encoding="utf-8") if cache_file is not None else contextlib.nullcontext()) as f:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            requests = [SampleRequest(messages=messages, images=item_images(item)) for item, messages, _ in chunk]
            outputs = sampler.sample(requests, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
            for (item, _, key), out in zip(chunk, outputs):
                responses[item.id] = out[0]
                if f is not None:
                    f.write(json.dumps({"id": item.id, "key": key, "response": out[0]}, ensure_ascii=False) + "\n")
            if f is not None:
                f.flush()
            bar.update(len(chunk))
    return responses


@dataclass
class BenchmarkSpec:
    """One benchmark to evaluate and the file (or folder) its data comes from."""

    name: str
    data: Path


def _load_all(specs: list[BenchmarkSpec], settings: EvalSettings) -> list[BenchmarkData]:
    loaded = []
    for spec in specs:
        data = load_benchmark(spec.name, spec.data, split=settings.split, subset=settings.subset, limit=settings.limit)
        check_images(data)
        for warning in data.warnings:
            settings.log(f"warning: {warning}")
        loaded.append(data)
    return loaded


def evaluate_with_sampler(sampler, model_dir: str | Path, datasets: list[BenchmarkData], out_root: str | Path,
                          settings: EvalSettings) -> list[dict]:
    """Evaluate an already loaded model (any :class:`visplay.engines.sampler.Sampler`) on loaded benchmarks.

    ``model_dir`` identifies the weights for the resume cache and the reports. The evolve loop calls this
    with the reasoner it has in memory; :func:`evaluate_model` loads a folder first.
    """
    model_dir, out_root = Path(model_dir), Path(out_root)
    summaries = []
    for data in datasets:
        bench = data.benchmark
        style = settings.prompt_style or bench.default_prompt_style
        budget = settings.max_new_tokens or bench.default_budget(style)
        budget_from = "--max-new-tokens" if settings.max_new_tokens else f"{bench.name}'s default for {style} prompts"
        out_dir = out_root / bench.name
        started = time.perf_counter()
        responses = generate_responses(sampler, data, model_dir, out_dir, style, budget,
                                       chunk_size=max(settings.batch_size * 4, 32), log=settings.log)
        seconds = time.perf_counter() - started
        scored = score_responses(data, responses, settings.judge_mode, settings.judge, settings.log)
        summary = summarize(data, scored, settings.judge_mode, settings.judge, {
            "model": str(model_dir), "prompt_style": style, "max_new_tokens": budget,
            "max_new_tokens_from": budget_from, "decoding": "greedy",
            "generation_seconds": round(seconds, 2),
        })
        write_results(out_dir, data, scored, summary)
        summaries.append(summary)
    return summaries


def evaluate_model(model_dir: str | Path, specs: list[BenchmarkSpec], out_root: str | Path, settings: EvalSettings,
                   datasets: list[BenchmarkData] | None = None) -> list[dict]:
    """Load one model folder and evaluate it on every benchmark; returns one summary per benchmark."""
    from visplay.engines.loading import free_memory, load_vlm, read_model_config
    from visplay.engines.sampler import HFSampler

    model_dir = Path(model_dir)
    read_model_config(model_dir)  # a wrong model folder fails before any data is read
    datasets = datasets if datasets is not None else _load_all(specs, settings)
    sampler = _LazySampler(lambda: HFSampler(load_vlm(model_dir, device=settings.device, dtype=settings.dtype),
                                             max_batch_rows=settings.batch_size, progress=False))
    try:
        return evaluate_with_sampler(sampler, model_dir, datasets, out_root, settings)
    finally:
        del sampler
        free_memory()


class _LazySampler:
    """Loads the model at the first generation: a resumed evaluation whose answers are all in
    responses.jsonl already (e.g. after a kill during the report) loads no model at all."""

    def __init__(self, factory):
        self._factory = factory
        self._sampler = None

    def sample(self, *args, **kwargs):
        if self._sampler is None:
            self._sampler = self._factory()
        return self._sampler.sample(*args, **kwargs)



def run_models(run_dir: str | Path) -> list[tuple[str, Path]]:
    """(label, folder) of a run's base model and every iteration's reasoner, in order."""
    from visplay.runread import read_config, relocate

    run_dir = Path(run_dir)
    config_file = run_dir / "config.yaml"
    _, config = read_config(config_file)
    if isinstance(config.get("out"), str):  # a moved run: paths inside it (the demo's base) move with it
        config = relocate(config, config["out"], str(run_dir))
    model = config.get("model")
    base = model.get("path") if isinstance(model, dict) else None
    if not base or not isinstance(base, str):
        raise UserError(f"{config_file} has no model.path (the base model folder)")
    base_path = Path(base).expanduser()
    if not base_path.is_absolute() and not base_path.exists() and (run_dir / base_path).exists():
        base_path = run_dir / base_path
    models = [("base", base_path)]
    for folder in sorted(run_dir.glob("iter_*")):
        reasoner = folder / "reasoner"
        if folder.is_dir() and (reasoner / "config.json").is_file():
            models.append((folder.name, reasoner))
    if len(models) == 1:
        log_to_stderr(f"note: {run_dir} has no finished iteration (no iter_XX/reasoner/); evaluating the base model only")
    return models


def evaluate_run(run_dir: str | Path, specs: list[BenchmarkSpec], out_root: str | Path | None,
                 settings: EvalSettings) -> dict:
    """The base model and each iteration's reasoner on every benchmark; returns the table data."""
    run_dir = Path(run_dir)
    out_root = Path(out_root) if out_root else run_dir / "eval"
    from visplay.engines.loading import read_model_config

    models = run_models(run_dir)
    for label, path in models:  # every checkpoint is checked before hours of generation start
        try:
            read_model_config(path)
        except UserError as exc:
            raise UserError(f"{label}: {exc}") from None
    datasets = _load_all(specs, settings)
    table: dict = {"models": [label for label, _ in models], "benchmarks": [d.benchmark.name for d in datasets],
                   "results": {}}
    for label, path in models:
        settings.log(f"evaluating {label} ({path})")
        summaries = evaluate_model(path, specs, out_root / label, settings, datasets=datasets)
        for s in summaries:
            table["results"].setdefault(s["benchmark"], {})[label] = s
    return table


def rescore(spec: BenchmarkSpec, predictions_file: str | Path, out_dir: str | Path | None,
            settings: EvalSettings) -> dict:
    """Score saved predictions again (new rules, a judge) without a model."""
    predictions_file = Path(predictions_file)
    if not predictions_file.is_file():
        raise UserError(f"predictions file {predictions_file} does not exist")
    data = load_benchmark(spec.name, spec.data, split=settings.split, subset=settings.subset, limit=None)
    for warning in data.warnings:
        settings.log(f"warning: {warning}")
    responses: dict[str, str] = {}
    previous: dict = {}
    try:
        blob = predictions_file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {predictions_file} ({exc.strerror or exc.__class__.__name__})") from None
    for lineno, raw in enumerate(blob.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            responses[str(record["id"])] = str(record.get("response") or "")
        except (ValueError, KeyError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
            raise UserError(f"{predictions_file}:{lineno} is not a prediction (JSON with id and response)") from None
        previous.setdefault("benchmark", record.get("benchmark"))
    known = {item.id for item in data.items}
    unknown = [i for i in responses if i not in known]
    if unknown:
        raise UserError(f"{len(unknown)} prediction id(s) are not in {spec.data} for {spec.name} (e.g. {unknown[0]!r}); "
                        "wrong --benchmark or --data?")
    missing = len(known) - len(responses)
    if missing:
        settings.log(f"warning: {spec.name}: {missing} item(s) of the data have no prediction; scoring {len(responses)}")
    scored = score_responses(data, responses, settings.judge_mode, settings.judge, settings.log)
    out_dir = Path(out_dir) if out_dir else predictions_file.parent
    extra = {"rescored_from": str(predictions_file)}
    old_summary = predictions_file.parent / "summary.json"
    if old_summary.is_file():
        try:
            old = json.loads(old_summary.read_text())
            kept = ("model", "prompt_style", "max_new_tokens", "max_new_tokens_from", "decoding", "generation_seconds")
            extra.update({k: old[k] for k in kept if k in old})
        except (OSError, ValueError):
            pass
    summary = summarize(data, scored, settings.judge_mode, settings.judge, extra)
    write_results(out_dir, data, scored, summary)
    return summary


__all__ = [
    "BenchmarkSpec", "EvalSettings", "Extraction", "JUDGE_MODES", "evaluate_model", "evaluate_run", "evaluate_with_sampler",
    "generate_responses", "rescore", "run_models", "score_responses", "summarize", "write_results",
]
