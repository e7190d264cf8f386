"""Measure any model on the toy world: does it answer, does it look at the image, can it ask questions?

:func:`check_model` runs, on the held-out toy benchmark:

- greedy accuracy with each item's own image and with images swapped between items (a derangement), overall
  and per family, next to the blind baseline (the most frequent answer of each exact question string);
- confidence: 10 samples at temperature 1 on a subset, majority vote, confidence = the majority's share;
- question validity: questions sampled with the compact questioner prompt at temperature 1 on fresh
  training-split scenes, parsed, and answered by the oracle on the image's scene; valid rate and family mix.

:func:`format_check_report` turns the report into the table ``visplay world check`` prints, and
:func:`check_bands` says which of the base model's bands (docs/toy_base_model.md, "The bands") hold.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

# The bands the base model must sit in (docs/toy_base_model.md, "The bands").
BANDS = {
    "accuracy": (0.30, 0.70),
    "lift_overall": 0.15,
    "lift_family": 0.10,
    "lift_families_needed": 4,
    "validity": 0.80,
    "validity_families": 4,
}


def _swap_order(n: int, seed: int) -> list[int]:
    """A derangement: item i gets the image of item order[i] != i."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    # rotate by one along the shuffled order: a single cycle, so nobody keeps its own image
    perm = [0] * n
    for k in range(n):
        perm[order[k]] = order[(k + 1) % n]
    return perm


def _load_rows(n_items: int, seed: int | None, benchmark: str | Path | None) -> list[dict]:
    """Benchmark rows (question, answer, family, image bytes), read from ``benchmark`` or built."""
    from visplay.world import benchmark as bm

    if benchmark is not None:
        import pyarrow.parquet as pq

        rows = pq.read_table(benchmark).to_pylist()
    else:
        rows = bm.build_benchmark(n=n_items or bm.DEFAULT_SIZE, seed=0 if seed is None else seed)
    return rows[:n_items] if n_items else rows


def _greedy_correct(sampler, model_dir: Path, data, max_new_tokens: int) -> list[bool]:
    """Per item, whether the greedy answer is right: generated and scored by the evaluation runner's
    ``toy`` benchmark (the demo's and evolve's toy accuracy), with the compact prompt."""
    from visplay.evaluation.runner import generate_responses, score_responses

    # One sampler call for all items (chunk = every item): the sampler plans its batches over the whole call.
    responses = generate_responses(sampler, data, model_dir, None, "compact", max_new_tokens,
                                   chunk_size=max(1, len(data.items)), log=lambda m: None)
    return [s.score is not None and s.score >= 1.0 for s in score_responses(data, responses)]


def _acc(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def check_model(model_dir: str | Path, n_items: int = 0, seed: int | None = None, n_conf_items: int = 120,
                n_samples: int = 10, n_questions: int = 200, benchmark: str | Path | None = None,
                max_answer_tokens: int = 96,
                loaded=None, log: Callable[[str], None] = print) -> dict:
    """Measure ``model_dir`` on the toy benchmark; return a plain dict (see :func:`format_check_report`).

    Args:
        n_items: benchmark items for the greedy accuracies (0 = all).
        seed: benchmark seed (None = the world's fixed benchmark seed).
        n_conf_items: the first items of the benchmark used for the temperature-1 confidence (a subset:
            10 samples each).
        n_questions: questioner samples at temperature 1 (one per fresh training-split scene).
        benchmark: a benchmark parquet to read instead of building it.
        max_answer_tokens: generation budget of a reasoner answer (short reasoning and the box).
        loaded: an already loaded model (skips loading ``model_dir``).
    """
    from visplay.engines.loading import load_vlm
    from visplay.engines.sampler import HFSampler, SampleRequest
    from visplay.evaluation.benchmarks import get_benchmark
    from visplay.evaluation.data import benchmark_from_rows, item_images
    from visplay.selfplay.answers import extract_boxed, majority_vote, same_answer
    from visplay.selfplay.prompts import parse_question, questioner_messages
    from visplay.world import benchmark as bm
    from visplay.world.oracle import oracle_answer
    from visplay.world.oracle import parse_question as parse_query
    from visplay.world.render import render
    from visplay.world.scenes import DIMENSIONS, sample_scene

    t0 = time.time()
    loaded = loaded or load_vlm(model_dir, device="cpu")
    sampler = HFSampler(loaded, progress=False)
    rows = _load_rows(n_items, seed, benchmark)
    n = len(rows)
    data = benchmark_from_rows(get_benchmark("toy"), rows, Path(benchmark or "built-in toy benchmark"))
    report: dict = {"model": str(model_dir), "n_items": n}

    # 1. greedy accuracy, own vs swapped images, per family; blind baseline on the same rows
    own = _greedy_correct(sampler, Path(model_dir), data, max_answer_tokens)
    perm = _swap_order(n, 1234)
    swapped_items = [dataclasses.replace(item, images=data.items[perm[i]].images) for i, item in enumerate(data.items)]
    swapped = _greedy_correct(sampler, Path(model_dir), dataclasses.replace(data, items=swapped_items),
                              max_answer_tokens)
    blind = bm.blind_baseline(rows)
    families = sorted({r["family"] for r in rows})
    per_family = {}
    for fam in families:
        idx = [i for i, r in enumerate(rows) if r["family"] == fam]
        per_family[fam] = {
            "n": len(idx),
            "own": _acc([own[i] for i in idx]),
            "swapped": _acc([swapped[i] for i in idx]),
            "blind": blind.per_family.get(fam),
        }
    report["accuracy"] = {"own": _acc(own), "swapped": _acc(swapped), "blind": blind.accuracy, "chance": blind.chance}
    # attribute questions by what they ask (colour, shape or size), each next to its chance level
    by_dim: dict = defaultdict(list)
    for i, r in enumerate(rows):
        query = parse_query(r["question"]) if r["family"] == "attribute" else None
        if query is not None and hasattr(query, "dim"):
            by_dim[query.dim].append(i)
    report["attribute_by_dim"] = {
        dim: {"n": len(idx), "own": _acc([own[i] for i in idx]), "swapped": _acc([swapped[i] for i in idx]),
              "chance": 1 / len(DIMENSIONS[dim])}
        for dim, idx in sorted(by_dim.items())
    }
    report["per_family"] = per_family
    log(f"greedy accuracy measured on {n} items ({time.time() - t0:.0f}s)")

    # 2. confidence over n_samples at temperature 1 (majority vote), on a subset
    sub = rows[:n_conf_items]
    reqs = [SampleRequest(data.benchmark.prompt(item, "compact"), item_images(item)) for item in data.items[:n_conf_items]]
    outs = sampler.sample(reqs, n=n_samples, temperature=1.0, max_new_tokens=max_answer_tokens, seed=1)
    confs, maj_ok = [], []
    for o, r in zip(outs, sub):
        vote = majority_vote([extract_boxed(s) for s in o])
        answer, conf = vote.answer, vote.confidence
        confs.append(conf)
        maj_ok.append(answer is not None and same_answer(answer, r["answer"]))
    confs_sorted = sorted(confs)
    mean = sum(confs) / len(confs)
    std = (sum((c - mean) ** 2 for c in confs) / len(confs)) ** 0.5
    report["confidence"] = {
        "n_items": len(sub), "n_samples": n_samples, "mean": mean, "std": std,
        "min": confs_sorted[0], "median": confs_sorted[len(confs) // 2], "max": confs_sorted[-1],
        "share_1.0": sum(c >= 1.0 for c in confs) / len(confs),
        "share_le_0.3": sum(c <= 0.3 for c in confs) / len(confs),
        "majority_accuracy": _acc(maj_ok),
        "greedy_accuracy_same_items": _acc(own[: len(sub)]),
    }
    log(f"confidence measured on {len(sub)} items x {n_samples} samples ({time.time() - t0:.0f}s)")

    # 3. question validity on fresh training-split scenes
    rng = random.Random(4242)
    scenes = [sample_scene(rng) for _ in range(n_questions)]
    reqs = [SampleRequest(questioner_messages("compact"), [render(s)]) for s in scenes]
    outs = sampler.sample(reqs, n=1, temperature=1.0, max_new_tokens=64, seed=2)
    parsed = valid = answer_ok = 0
    fam_mix: Counter = Counter()
    reasons: Counter = Counter()
    distinct = set()
    for o, scene in zip(outs, scenes):
        q = parse_question(o[0])
        if q is None or not getattr(q, "question", None):
            reasons["no <question> tag"] += 1
            continue
        parsed += 1
        distinct.add(q.question.strip().lower())
        res = oracle_answer(q.question, scene)
        if not res.valid:
            reasons[str(res.reason).split(":")[0][:40]] += 1
            continue
        valid += 1
        fam_mix[res.family] += 1
        if getattr(q, "answer", None) is not None and same_answer(q.answer, res.answer):
            answer_ok += 1
    report["questions"] = {
        "n": n_questions, "parsed": parsed / n_questions, "valid": valid / n_questions,
        "own_answer_correct": answer_ok / max(1, valid), "distinct": len(distinct),
        "families": dict(fam_mix.most_common()), "invalid_reasons": dict(reasons.most_common(5)),
    }
    report["seconds"] = round(time.time() - t0, 1)
    report["bands"] = check_bands(report)
    return report


def check_bands(report: dict) -> dict:
    """Which of the bands the report meets: name -> (ok, what was measured)."""
    acc = report["accuracy"]
    lifts = {f: v["own"] - v["swapped"] for f, v in report["per_family"].items()}
    big = [f for f, d in lifts.items() if d >= BANDS["lift_family"]]
    conf = report["confidence"]
    q = report["questions"]
    lo, hi = BANDS["accuracy"]
    return {
        "accuracy in 30-70%": (lo <= acc["own"] <= hi, f"{acc['own']:.1%}"),
        "lift >= 15 pts overall": (acc["own"] - acc["swapped"] >= BANDS["lift_overall"],
                                   f"{(acc['own'] - acc['swapped']) * 100:+.1f} pts"),
        "lift >= 10 pts in >= 4 families": (len(big) >= BANDS["lift_families_needed"], f"{len(big)}: {', '.join(big)}"),
        "confidence spread": (conf["share_1.0"] < 0.9 and conf["mean"] > 0.3 and conf["std"] > 0.05,
                              f"mean {conf['mean']:.2f} sd {conf['std']:.2f}, {conf['share_1.0']:.0%} at 1.0"),
        "questions valid >= 80%": (q["valid"] >= BANDS["validity"], f"{q['valid']:.1%}"),
        "valid questions in >= 4 families": (len(q["families"]) >= BANDS["validity_families"], f"{len(q['families'])}"),
    }


def format_check_report(report: dict) -> str:
    """The report as the table ``visplay world check`` and ``visplay world base`` print."""
    acc = report["accuracy"]

    def pct(x):
        return "  -  " if x is None or x != x else f"{x * 100:5.1f}"

    lines = [f"toy-world check of {report['model']}  ({report['n_items']} benchmark items, {report['seconds']}s)",
             "", f"{'family':<14}{'n':>5}  {'own':>6}{'swapped':>9}{'lift':>7}{'blind':>7}"]
    for fam, v in report["per_family"].items():
        lines.append(f"{fam:<14}{v['n']:>5}  {pct(v['own']):>6}{pct(v['swapped']):>9}"
                     f"{(v['own'] - v['swapped']) * 100:>+7.1f}{pct(v['blind']):>7}")
    lines.append(f"{'all':<14}{report['n_items']:>5}  {pct(acc['own']):>6}{pct(acc['swapped']):>9}"
                 f"{(acc['own'] - acc['swapped']) * 100:>+7.1f}{pct(acc['blind']):>7}")
    lines.append(f"(greedy accuracy in %; swapped = each item answered on another item's image; blind = the most "
                 f"frequent training answer of each exact question string; uniform guessing: {pct(acc['chance']).strip()}%)")
    dims = report.get("attribute_by_dim") or {}
    if dims:
        lines.append("attribute questions by what they ask (own / swapped, chance): " + ", ".join(
            f"{dim} {pct(v['own']).strip()} / {pct(v['swapped']).strip()} ({pct(v['chance']).strip()})"
            for dim, v in dims.items()))
    c = report["confidence"]
    lines += ["", f"confidence ({c['n_samples']} samples at temperature 1, first {c['n_items']} items): "
                  f"mean {c['mean']:.2f}  sd {c['std']:.2f}  min {c['min']:.2f}  median {c['median']:.2f}  "
                  f"max {c['max']:.2f}  at 1.0: {c['share_1.0']:.0%}  <=0.3: {c['share_le_0.3']:.0%}",
              f"  majority-vote accuracy {pct(c['majority_accuracy']).strip()}% vs greedy "
              f"{pct(c['greedy_accuracy_same_items']).strip()}% on the same items"]
    q = report["questions"]
    fams = ", ".join(f"{k} {v}" for k, v in q["families"].items()) or "none"
    lines += ["", f"questions ({q['n']} sampled at temperature 1 on fresh scenes): parsed {q['parsed']:.0%}, "
                  f"valid {q['valid']:.0%}, questioner's own answer right {q['own_answer_correct']:.0%}, "
                  f"{q['distinct']} distinct",
              f"  valid by family: {fams}"]
    if q["invalid_reasons"]:
        lines.append("  invalid: " + ", ".join(f"{k} {v}" for k, v in q["invalid_reasons"].items()))
    lines += ["", "bands:"]
    for name, (ok, what) in report["bands"].items():
        lines.append(f"  [{'ok' if ok else 'NO'}] {name}: {what}")
    return "\n".join(lines)
