"""``visplay diagnose``: greedy vs sampled vs majority-of-M accuracy and confidence calibration on a labeled
benchmark: does self-consistency have anything to teach this model?"""

from __future__ import annotations

import argparse
from pathlib import Path

from visplay.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from visplay.cli.eval import BENCHMARK_NAMES

    p = subparsers.add_parser(
        "diagnose",
        help="greedy vs sampled vs majority-of-M accuracy and calibration: is there anything for self-play to teach?",
        description="Answers every item of a labeled benchmark greedily and M times by sampling, scores all of them "
        "with the benchmark's rules, and prints greedy accuracy, mean single-sample accuracy, majority-of-M "
        "accuracy, pass@M (any of the M samples right), headroom (majority minus greedy: what majority-vote "
        "training can at best teach greedy decoding), pass-greedy (what RL with a true reward can at best teach) and the majority's accuracy per confidence bin (share of items in brackets), overall and per "
        "category. Writes OUT/diagnose.json; an interrupted run resumes from its saved responses.",
    )
    p.add_argument("--model", type=Path, required=True, help="model folder (Hugging Face checkpoint)")
    p.add_argument("--benchmark", required=True, help=f"benchmark: {', '.join(BENCHMARK_NAMES)}")
    p.add_argument("--data", type=Path, required=True, help="local file or folder with the benchmark's rows")
    p.add_argument("--votes", type=int, default=10, help="samples per item, M (default: 10, the paper's m)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature T (default: 1.0, the paper's)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default: 1.0 = off)")
    p.add_argument("--top-k", type=int, default=0, help="top-k sampling (default: 0 = off)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation budget (default: the benchmark's)")
    p.add_argument("--prompt-style", choices=("paper", "compact"), default=None,
                   help="reasoner prompt (default: the benchmark's: compact for toy, paper otherwise)")
    p.add_argument("--batch-size", type=int, default=64, help="items per sampler call (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--split", default=None, help="split to read when --data is a folder of shards")
    p.add_argument("--subset", default=None, help="benchmark variant (MathVerse problem version)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: ./visplay-diagnose/<model name>/<benchmark>)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from visplay.analysis.diagnose import DiagnoseSettings, format_diagnose, run_diagnose
    from visplay.cli.progress import setup_logging
    from visplay.evaluation.benchmarks import get_benchmark
    from visplay.preflight import check_output_dir

    get_benchmark(args.benchmark)  # an unknown name fails before anything is loaded
    if not args.data.exists():
        raise UserError(f"--data {args.data} does not exist")
    if not args.model.is_dir():
        raise UserError(f"--model {args.model} is not a folder")
    settings = DiagnoseSettings(votes=args.votes, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                                max_new_tokens=args.max_new_tokens, prompt_style=args.prompt_style,
                                batch_size=args.batch_size, seed=args.seed, limit=args.limit, split=args.split,
                                subset=args.subset)
    settings.check()
    setup_logging()
    out = args.out or Path("visplay-diagnose") / args.model.resolve().name / args.benchmark
    check_output_dir(out, "--out" if args.out else "output folder")
    result = run_diagnose(args.model, args.benchmark, args.data, out, settings)
    print(f"{result['benchmark']}: {result['n']} items, {settings.votes} samples each at T={settings.temperature:g} "
          f"(accuracy %; confidence bins: majority accuracy % (share of items))")
    print(format_diagnose(result))
    print(f"\nheadroom = majority minus greedy: what majority-vote training can at best teach greedy decoding.\n"
          f"pass-greedy = pass@{settings.votes} minus greedy: what RL with a true reward can at best teach it.\n"
          f"written to {out / 'diagnose.json'}")
    return 0
