"""Score generated answers (rules first, an optional judge) and write a benchmark's results.

Per benchmark the output folder holds ``predictions.jsonl`` (one line per item: id, benchmark, question,
response, extracted, extracted_by, gold, correct, score, scored_by (rule | judge | unparsed | unscored),
judge_reply) and ``summary.json`` (n, accuracy (%), unparsed count and rate, judged count, judge model,
protocol, extra metrics such as HallusionBench's aAcc/fAcc/qAcc, and a per-category breakdown).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from visplay import __version__
from visplay.errors import UserError
from visplay.evaluation.base import JUDGE, JUDGED, RULE, UNPARSED, UNSCORED, Scored
from visplay.evaluation.data import BenchmarkData
from visplay.evaluation.judge import JudgeClient, binary_messages, parse_binary, parse_partial, partial_messages
from visplay.evaluation.rules import strip_think
from visplay.io import atomic_path, write_json_atomic

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(f"visplay: {message}", file=sys.stderr)


def _judge_messages(data: BenchmarkData, scored: Scored) -> list[dict] | None:
    """The judge request for one item, or ``None`` when the reply has nothing visible to judge."""
    item, visible = scored.item, strip_think(scored.response)
    if not visible:
        return None
    reference = item.gold_text or " or ".join(item.golds)
    if data.benchmark.grading == "partial":
        return partial_messages(item.question, reference, visible[-3000:])
    candidate = scored.extraction.answer
    if candidate is None:
        # No rule found an answer: the judge reads the end of the reply, where a final answer usually is
        # (the package docstring lists how this differs from the authors' script).
        candidate = visible[-300:]
    return binary_messages(item.question, reference, candidate)


def score_responses(data: BenchmarkData, responses: dict[str, str], judge_mode: str = "never",
                    judge: JudgeClient | None = None, log: Log = log_to_stderr) -> list[Scored]:
    """Score every item of ``data`` that has a response: rules, then the judge as ``judge_mode`` says."""
    bench = data.benchmark
    scored: list[Scored] = []
    for item in data.items:
        if item.id not in responses:
            continue
        response = responses[item.id] or ""
        try:
            extraction = bench.extract(item, response)
        except Exception as exc:  # a rule bug on one odd reply must not hide which item it was
            raise RuntimeError(f"{bench.name} item {item.id}: extraction failed: {exc}") from exc
        if extraction.answer is None:
            scored.append(Scored(item, response, extraction, 0.0, UNPARSED))
            continue
        value = bench.score(item, extraction.answer)
        if value is None:
            scored.append(Scored(item, response, extraction, None, UNSCORED))
        else:
            scored.append(Scored(item, response, extraction, float(value), RULE))
    if judge_mode == "never":
        return scored
    if judge is None:
        raise UserError(f"--judge {judge_mode} needs --judge-url and --judge-model")
    wanted = [s for s in scored if judge_mode == "always" or s.scored_by in (UNPARSED, UNSCORED)
              or (s.scored_by == RULE and not bench.decided(s.item, s.extraction.answer))]
    requests = [(s, _judge_messages(data, s)) for s in wanted]
    todo = [(s, m) for s, m in requests if m is not None]
    for s, m in requests:
        if m is None:  # nothing visible (e.g. the reply never left <think>): unparsed, not judged
            s.score, s.scored_by = 0.0, UNPARSED
    if todo:
        log(f"{bench.name}: judging {len(todo)} item(s) with {judge.model}")
    replies = judge.map([m for _, m in todo])
    parse = parse_partial if bench.grading == "partial" else parse_binary
    invalid = 0
    for (s, _), reply in zip(todo, replies):
        value = parse(reply)
        if value is None:
            invalid += 1
            value = 0.0
        s.score, s.scored_by, s.judge_reply = value, JUDGE, reply
    if invalid:
        log(f"warning: {bench.name}: {invalid} judge repl(ies) were neither a score nor 1/0; counted as wrong")
    return scored


def protocol(data: BenchmarkData, judge_mode: str, judge: JudgeClient | None) -> str:
    """One line saying exactly how the numbers were produced."""
    bench = data.benchmark
    credit = "0-1 partial credit" if bench.grading == "partial" else "1/0"
    if judge_mode == "never" or judge is None:
        if bench.grading == "partial" or any(item.kind == JUDGED for item in data.items):
            return f"not scored: {bench.title} needs an LLM judge (--judge-url)"
        return "rules: last \\boxed{}, else Answer: line, else option letter/text; unparsed = wrong"
    if judge_mode == "always":
        return f"judge {judge.model} on every item ({credit}; the paper's protocol)"
    return f"rules first; judge {judge.model} ({credit}) where rules cannot parse or decide"


def prediction_record(bench_name: str, s: Scored) -> dict:
    return {
        "id": s.item.id,
        "benchmark": bench_name,
        "question": s.item.question,
        "response": s.response,
        "extracted": s.extraction.answer,
        "extracted_by": s.extraction.how,
        "gold": s.item.gold,
        "correct": None if s.score is None else bool(s.score >= 1.0),
        "score": s.score,
        "scored_by": s.scored_by,
        "judge_reply": s.judge_reply,
    }


def summarize(data: BenchmarkData, scored: list[Scored], judge_mode: str, judge: JudgeClient | None,
              extra: dict | None = None) -> dict:
    """summary.json for one benchmark."""
    bench = data.benchmark
    agg = bench.aggregate(scored)
    how: dict[str, int] = {}
    for s in scored:
        how[s.extraction.how] = how.get(s.extraction.how, 0) + 1
    summary = {
        "benchmark": bench.name,
        "title": bench.title,
        "data": str(data.path),
        "layout": data.layout,
        "variant": data.variant,
        "n_loaded": data.n_loaded,
        "official_sizes": bench.official_sizes,
        **agg,
        "rule_unparsed": sum(1 for s in scored if s.extraction.answer is None),
        "extracted_by": dict(sorted(how.items())),
        "judge_mode": judge_mode if judge is not None else "never",
        "judge_model": judge.model if judge is not None and judge_mode != "never" else None,
        "protocol": protocol(data, judge_mode, judge),
        "warnings": list(data.warnings),
        "visplay_version": __version__,
    }
    summary.update(extra or {})
    return summary


def write_results(out_dir: Path, data: BenchmarkData, scored: list[Scored], summary: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.jsonl") as tmp:
        with tmp.open("w", encoding="utf-8") as f:
            for s in scored:
                f.write(json.dumps(prediction_record(data.benchmark.name, s), ensure_ascii=False, default=str) + "\n")
    write_json_atomic(out_dir / "summary.json", summary)
