"""``visplay eval``: benchmark evaluation, offline, rule-first, with an optional judge.

Two forms share the command:
    visplay eval --model DIR --benchmark NAME --data PATH [...]      generate, score, report
    visplay eval --run RUN --benchmark NAME --data PATH [...]        base + every iteration, one table
    visplay eval score --benchmark NAME --data PATH --predictions FILE   re-score without a model
``--benchmark`` and ``--data`` may repeat (paired in order; one ``--data`` serves every benchmark, e.g. the
authors' combined file). ``score`` must come right after ``eval``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visplay.errors import UserError

# Kept here (not imported) so that `visplay --help` stays fast and works while optional parts are missing.
BENCHMARK_NAMES = ("mmmu", "mmvet", "realworldqa", "visnumbench", "mathverse", "mathvision", "hallusionbench",
                   "mathvista", "mmstar", "toy")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", action="append", metavar="NAME",
                   help=f"benchmark to evaluate (repeatable): {', '.join(BENCHMARK_NAMES)}")
    p.add_argument("--data", action="append", metavar="PATH", type=Path,
                   help="local .parquet/.jsonl/.json file or folder with the benchmark's rows (repeatable, paired "
                        "with --benchmark in order; one --data serves all, e.g. the combined file)")
    p.add_argument("--split", default=None,
                   help="when --data is a folder of shards, read this split (default: the benchmark's, e.g. "
                        "validation for MMMU, testmini for MathVista)")
    p.add_argument("--subset", default=None,
                   help="benchmark variant; MathVerse: a problem version (default 'vision only') or 'all'")


def _add_judge_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("judge (optional; any OpenAI-compatible chat endpoint)")
    g.add_argument("--judge", choices=("never", "fallback", "always"), default=None,
                   help="never: rules only; fallback: judge items rules cannot parse or decide; always: judge every "
                        "item (the paper's protocol). Default: fallback with --judge-url, else never")
    g.add_argument("--judge-url", default=None, help="endpoint base URL, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--judge-model", default=None, help="model name the endpoint serves, e.g. glm-4-flash")
    g.add_argument("--judge-key-env", default="VISPLAY_JUDGE_API_KEY",
                   help="environment variable holding the API key (unset: no Authorization header)")
    g.add_argument("--judge-cache", type=Path, default=None,
                   help="folder of cached judge answers (default: $VISPLAY_CACHE/judge or ~/.cache/visplay/judge)")
    g.add_argument("--judge-retries", type=int, default=4, help="retries per request, with exponential backoff")
    g.add_argument("--judge-workers", type=int, default=8, help="judge requests in flight at once")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model (or every iteration of a run) on benchmarks",
        description="Greedy generation with the reasoner prompt, rule-first scoring, optional judge. "
                    "Writes predictions.jsonl and summary.json per benchmark and prints a table.",
        epilog="Re-score saved predictions without a model: visplay eval score --benchmark NAME --data PATH "
               "--predictions FILE",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--model", type=Path, help="model folder (Hugging Face checkpoint)")
    target.add_argument("--run", type=Path, help="run folder: evaluates the base model and each iter_XX/reasoner")
    _add_data_args(p)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items of each benchmark")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: RUN/eval for --run, ./visplay-eval/<model name> for --model)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="generation budget (default: the benchmark's budget for the prompt style: 4096 for paper "
                        "prompts, as the reasoner's training length; 64 for compact prompts, 48 on toy)")
    p.add_argument("--prompt-style", choices=("paper", "compact"), default=None,
                   help="reasoner prompt template (default: paper; compact for the toy benchmark)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", default=None, choices=("auto", "float32", "bfloat16", "float16"),
                   help="weights dtype (default: bfloat16 on GPU, float32 on CPU)")
    _add_judge_args(p)
    p.set_defaults(handler=run_eval)

    sub = p.add_subparsers(dest="eval_command", metavar="{score}")
    s = sub.add_parser("score", help="re-score saved predictions without a model",
                       description="Re-score predictions.jsonl (new rules, a judge) and rewrite predictions.jsonl "
                                   "and summary.json.")
    _add_data_args(s)
    s.add_argument("--predictions", type=Path, required=True, help="predictions.jsonl written by visplay eval")
    s.add_argument("--out", type=Path, default=None, help="output folder (default: the predictions file's folder)")
    _add_judge_args(s)
    s.set_defaults(handler=run_score)


def _specs(args):
    from visplay.evaluation.runner import BenchmarkSpec

    names, data = args.benchmark or [], args.data or []
    if not names:
        raise UserError("give at least one --benchmark NAME")
    if not data:
        raise UserError("give --data PATH (a local file or folder with the benchmark's rows)")
    if len(data) == 1:
        data = data * len(names)
    if len(data) != len(names):
        raise UserError(f"{len(names)} --benchmark but {len(data)} --data; give one --data, or one per --benchmark")
    from visplay.evaluation.benchmarks import get_benchmark

    for name in names:  # an unknown name fails before any model is loaded
        get_benchmark(name)
    return [BenchmarkSpec(name, path) for name, path in zip(names, data)]


def _settings(args, **extra):
    from visplay.evaluation.judge import JudgeClient, JudgeConfig
    from visplay.evaluation.runner import EvalSettings

    mode = args.judge or ("fallback" if args.judge_url else "never")
    judge = None
    if mode != "never":
        if not args.judge_url:
            raise UserError(f"--judge {mode} needs --judge-url (an OpenAI-compatible endpoint) and --judge-model")
        if args.judge_retries < 0 or args.judge_workers < 1:
            raise UserError("--judge-retries must be >= 0 and --judge-workers >= 1")
        judge = JudgeClient(JudgeConfig(url=args.judge_url, model=args.judge_model or "", key_env=args.judge_key_env,
                                        cache_dir=args.judge_cache, retries=args.judge_retries,
                                        workers=args.judge_workers))
    return EvalSettings(judge_mode=mode, judge=judge, split=args.split,
                        subset=args.subset, **extra)


def run_eval(args) -> int:
    from visplay.evaluation.report import budget_lines, run_table, run_table_markdown, summary_table
    from visplay.evaluation.runner import evaluate_model, evaluate_run
    from visplay.io import write_json_atomic, write_text_atomic
    from visplay.preflight import check_output_dir

    if args.model is None and args.run is None:
        raise UserError("give --model DIR or --run RUN (or use: visplay eval score ...)")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    specs = _specs(args)
    settings = _settings(args, prompt_style=args.prompt_style, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size, limit=args.limit, device=args.device, dtype=args.dtype)
    if args.run is not None:
        if not args.run.is_dir():
            raise UserError(f"run folder {args.run} does not exist")
        out = args.out or args.run / "eval"
        check_output_dir(out, "--out" if args.out else "output folder")
        table = evaluate_run(args.run, specs, out, settings)
        text = run_table(table)
        results = table["results"]
        slim = {"models": table["models"], "benchmarks": table["benchmarks"],
                "accuracy": {b: {m: s.get("accuracy") for m, s in cells.items()} for b, cells in results.items()},
                "protocol": {b: sorted({s.get("protocol") for s in cells.values()}) for b, cells in results.items()}}
        write_json_atomic(Path(out) / "table.json", slim)
        write_text_atomic(Path(out) / "table.md", run_table_markdown(table))
        print(text)
        first = {b: next(iter(cells.values())) for b, cells in results.items() if cells}
        print("\n".join(budget_lines(list(first.values()))))
        print(f"\nresults in {out} (table.md, table.json, <model>/<benchmark>/summary.json)")
        return 0
    out = args.out or Path("visplay-eval") / args.model.resolve().name
    check_output_dir(out, "--out" if args.out else "output folder")
    summaries = evaluate_model(args.model, specs, out, settings)
    print(summary_table(summaries))
    print("\n".join(budget_lines(summaries)))
    print(f"\nresults in {out}/<benchmark>/ (predictions.jsonl, summary.json)")
    return 0


def run_score(args) -> int:
    from visplay.evaluation.report import summary_table
    from visplay.evaluation.runner import rescore
    from visplay.preflight import check_output_dir

    specs = _specs(args)
    if len(specs) != 1:
        raise UserError("visplay eval score takes one --benchmark (its predictions file holds one benchmark)")
    if not args.predictions.is_file():
        what = "is a folder" if args.predictions.is_dir() else "does not exist"
        raise UserError(f"predictions file {args.predictions} {what}")
    check_output_dir(args.out or args.predictions.parent, "--out" if args.out else "output folder (the predictions' own)")
    summary = rescore(specs[0], args.predictions, args.out, _settings(args))
    print(summary_table([summary]))
    print(f"\nwritten to {args.out or args.predictions.parent}", file=sys.stdout)
    return 0
