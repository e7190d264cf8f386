"""Offline benchmark evaluation: the paper's seven benchmarks, MathVista, MMStar and the toy benchmark.

Rule-first scoring with the same answer code as the rewards (:mod:`visplay.selfplay.answers`), an
optional OpenAI-compatible judge, and reports that say how every number was produced.

Public API:
- :func:`get_benchmark`, :data:`BENCHMARKS` — the benchmarks (one file each in ``benchmarks/``);
- :func:`load_benchmark` — read a benchmark's items from a local parquet / JSONL file or folder;
- :func:`score_responses`, :func:`summarize` — score responses (rules, then the judge per mode);
- :func:`evaluate_model`, :func:`evaluate_run`, :func:`rescore` — the ``visplay eval`` workflows;
  :func:`evaluate_with_sampler` for a model already in memory (the evolve loop);
- :class:`JudgeClient`, :class:`JudgeConfig` — the cached, retrying judge client.

Where this departs from the paper and the authors' evaluation script (the one place that says so):
- Rules score first; the paper sent every item to GLM-4-Flash. ``--judge always`` is the paper's protocol.
- The judge sees the rule-extracted answer, or the last 300 characters of a reply with none; the
  authors sent the box's content or the reply's first 100 characters. Our judge prompt is English, at
  temperature 0 (theirs Chinese, 0.6).
- MM-Vet is judged with MM-Vet's 0-1 partial credit; the authors asked their judge for 1/0 there too.
- Unparsed replies score 0 and are counted; MMMU's official parser would pick a random option.
"""

from visplay.evaluation.base import Benchmark, Extraction, Item, Scored
from visplay.evaluation.benchmarks import BENCHMARKS, PAPER_BENCHMARKS, get_benchmark
from visplay.evaluation.data import BenchmarkData, load_benchmark
from visplay.evaluation.judge import JudgeClient, JudgeConfig
from visplay.evaluation.runner import (
    BenchmarkSpec,
    EvalSettings,
    evaluate_model,
    evaluate_run,
    evaluate_with_sampler,
    rescore,
    score_responses,
    summarize,
)

__all__ = [
    "BENCHMARKS", "PAPER_BENCHMARKS", "Benchmark", "BenchmarkData", "BenchmarkSpec", "EvalSettings", "Extraction",
    "Item", "JudgeClient", "JudgeConfig", "Scored", "evaluate_model", "evaluate_run", "evaluate_with_sampler",
    "get_benchmark",
    "load_benchmark", "rescore", "score_responses", "summarize",
]
