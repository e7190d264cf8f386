"""``visplay diagnose``: does self-consistency have anything to teach this model on this benchmark?

For every item of a labeled benchmark (any benchmark ``visplay eval`` reads) the model answers once
greedily and M times by sampling at temperature T. Each answer is extracted and scored by the benchmark's
own rules (the code ``visplay eval`` uses); the M sampled answers are merged by the reward's
``majority_vote``, giving the majority answer and its confidence c. The numbers
(:func:`visplay.analysis.consistency.diagnose_summary`): greedy accuracy, mean single-sample accuracy,
majority-of-M accuracy, pass@M (any of the M samples right: what RL with a true reward can reach at
best), headroom (majority minus greedy: what majority-vote RL can reach at best), and the majority's
accuracy per confidence bin, overall and per category.

Generation is batched (one sampler call per chunk of items and setting) and resumable: every response is
appended to ``greedy/responses.jsonl`` or ``samples.jsonl`` as it is produced and reused when the model
files, prompt and sampling settings are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from visplay.analysis.consistency import BINS, ItemDiagnosis, diagnose_summary
from visplay.analysis.tables import text_table
from visplay.errors import UserError
from visplay.io import write_json_atomic


@dataclass
class DiagnoseSettings:
    votes: int = 10
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int | None = None  # None: the benchmark's budget for its prompt style
    prompt_style: str | None = None
    batch_size: int = 64
    seed: int = 0
    limit: int | None = None
    split: str | None = None
    subset: str | None = None

    def check(self) -> None:
        if self.votes < 2:
            raise UserError("--votes must be at least 2 (a majority needs several samples)")
        if not self.temperature > 0:
            raise UserError("--temperature must be > 0 (greedy samples are all the same)")
        if not 0 < self.top_p <= 1:
            raise UserError("--top-p must be in (0, 1]")
        if self.top_k < 0:
            raise UserError("--top-k must be >= 0 (0 = off)")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserError("--max-new-tokens must be at least 1")
        if self.batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("--limit must be at least 1")


def _samples_key(fingerprint: str, messages: list[dict], n_images: int, s: DiagnoseSettings, budget: int) -> str:
    blob = json.dumps([fingerprint, messages, n_images, s.votes, s.temperature, s.top_p, s.top_k, budget, s.seed],
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def generate_samples(sampler, data, model_dir: Path, out_dir: Path, style: str, budget: int,
                     settings: DiagnoseSettings, log: Callable[[str], None]) -> dict[str, list[str]]:
    """M sampled responses per item, reusing ``samples.jsonl`` entries of an interrupted run."""
    from tqdm.auto import tqdm

    from visplay.engines.sampler import SampleRequest
    from visplay.evaluation.data import item_images
    from visplay.evaluation.runner import _read_cached_responses, model_fingerprint

    bench = data.benchmark
    cache_file = out_dir / "samples.jsonl"
    cached = _read_cached_responses(cache_file)
    fingerprint = model_fingerprint(model_dir)
    samples: dict[str, list[str]] = {}
    todo = []
    for index, item in enumerate(data.items):
        messages = bench.prompt(item, style)
        key = _samples_key(fingerprint, messages, len(item.images), settings, budget)
        entry = cached.get(item.id)
        if entry is not None and entry.get("key") == key and len(entry.get("responses") or []) == settings.votes:
            samples[item.id] = entry["responses"]
        else:
            todo.append((index, item, messages, key))
    if samples:
        log(f"{bench.name}: reusing {len(samples)} sampled item(s) from {cache_file}")
    bar = tqdm(total=len(todo), desc=f"{bench.name}: {settings.votes} samples at T={settings.temperature:g}",
               unit="item", leave=False, disable=not todo)
    with cache_file.open("a", encoding="utf-8") as f:
        for start in range(0, len(todo), settings.batch_size):
            chunk = todo[start:start + settings.batch_size]
            requests = [SampleRequest(messages=m, images=item_images(item)) for _, item, m, _ in chunk]
            # Seeded by the chunk's first item: a resumed run draws what an uninterrupted one would have.
            outputs = sampler.sample(requests, n=settings.votes, temperature=settings.temperature,
                                     top_p=settings.top_p, top_k=settings.top_k, max_new_tokens=budget,
                                     seed=settings.seed * 1_000_003 + chunk[0][0])
            for (_, item, _, key), out in zip(chunk, outputs):
                samples[item.id] = out
                f.write(json.dumps({"id": item.id, "key": key, "responses": out}, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(chunk))
    bar.close()
    return samples


def diagnose_items(data, greedy: dict[str, str], samples: dict[str, list[str]]) -> list[ItemDiagnosis]:
    """Score greedy and sampled responses with the benchmark's rules; vote the samples."""
    from visplay.selfplay.answers import majority_vote

    bench = data.benchmark
    items = []
    for item in data.items:
        def score(response: str) -> tuple[str | None, float | None]:
            answer = bench.extract(item, response or "").answer
            if answer is None:
                return None, 0.0
            value = bench.score(item, answer)
            return answer, None if value is None else float(value)

        _, greedy_score = score(greedy[item.id])
        scored = [score(r) for r in samples[item.id]]
        if greedy_score is None or any(v is None for _, v in scored):
            raise UserError(f"{bench.name}: item {item.id} can only be scored by a judge; diagnose uses rules only")
        vote = majority_vote([answer for answer, _ in scored])
        majority_score = 0.0
        if vote.answer is not None:
            majority_score = float(bench.score(item, vote.answer) or 0.0)
        items.append(ItemDiagnosis(category=bench.category(item), greedy=greedy_score,
                                   samples=[v for _, v in scored], majority=majority_score,
                                   confidence=vote.confidence))
    return items


def run_diagnose(model_dir: str | Path, benchmark: str, data_path: str | Path, out_dir: str | Path,
                 settings: DiagnoseSettings, log: Callable[[str], None] = print) -> dict:
    """Generate (or reuse), score and summarise; writes ``OUT/diagnose.json`` and returns it."""
    from visplay.engines.loading import free_memory, load_vlm, read_model_config
    from visplay.engines.sampler import HFSampler
    from visplay.evaluation.data import check_images, load_benchmark
    from visplay.evaluation.runner import generate_responses

    settings.check()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    read_model_config(model_dir)  # a wrong model folder fails before any data is read
    data = load_benchmark(benchmark, Path(data_path), split=settings.split, subset=settings.subset, limit=settings.limit)
    check_images(data)  # a broken image fails here, in one line, not after the model has loaded
    for warning in data.warnings:
        log(f"warning: {warning}")
    bench = data.benchmark
    if bench.grading == "partial":
        raise UserError(f"{bench.name} needs an LLM judge for every item; diagnose scores with rules only")
    style = settings.prompt_style or bench.default_prompt_style
    budget = settings.max_new_tokens or bench.default_budget(style)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    loaded = load_vlm(model_dir)
    try:
        sampler = HFSampler(loaded, max_batch_rows=256, progress=False)
        greedy = generate_responses(sampler, data, model_dir, out_dir / "greedy", style, budget,
                                    chunk_size=settings.batch_size, log=log)
        samples = generate_samples(sampler, data, model_dir, out_dir, style, budget, settings, log)
    finally:
        del loaded
        free_memory()
    result = {
        "model": str(model_dir), "benchmark": bench.name, "data": str(data_path), "n": len(data.items),
        "settings": {**asdict(settings), "prompt_style": style, "max_new_tokens": budget},
        "bins": list(BINS),
        **diagnose_summary(diagnose_items(data, greedy, samples)),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(out_dir / "diagnose.json", result)
    return result


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _signed(value) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def format_diagnose(result: dict) -> str:
    """The printed table: a row per category (and overall); accuracies in %, bins as acc% (share%)."""
    votes = result["settings"]["votes"]
    temperature = result["settings"]["temperature"]
    header = ["", "n", "greedy", f"T={temperature:g} sample", f"maj@{votes}", f"pass@{votes}", "headroom",
              "maj-sample", "pass-greedy"]
    header += [f"c {b}" for b in result["bins"]]
    rows = [header]
    entries = [("overall", result["overall"])] + sorted(result["categories"].items())
    for name, s in entries:
        if not s.get("n"):
            continue
        cells = [name, str(s["n"]), _pct(s["greedy"]), _pct(s["sample_mean"]), _pct(s["majority"]),
                 _pct(s.get("pass_at_m")), _signed(s["headroom"]), _signed(s["majority_minus_sample"]),
                 _signed(s.get("pass_minus_greedy"))]
        for b in result["bins"]:
            bin_ = s["bins"][b]
            cells.append("-" if not bin_["n"] else f"{_pct(bin_['majority_accuracy'])} ({100 * bin_['share']:.0f}%)")
        rows.append(cells)
    return text_table(rows)
