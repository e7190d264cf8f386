"""``visplay study``: the toy demo once per (arm, seed), and one table: where does the gain (or loss) come from?

An arm is a named list of ``--set`` overrides on the demo's config, so a new variant is a line, not code:

- ``paper``: the loop as configured (the default);
- ``oracle-labels``: same questioner and curation, but the reasoner trains on the oracle's answers for the
  kept questions the oracle can answer (GRPO with true labels: the upper bound of the labels). The only arm
  where the oracle touches training (``reasoner.labels: oracle``; its config.yaml says so in words);
- ``oracle-rlvr``: questioner and curation skipped; the reasoner trains with GRPO on the toy world's own
  questions about the iteration's pool images, rewarded by the oracle (``curation.source: world-oracle``):
  the ceiling of any label-free loop; its questions are drawn so that answers are balanced per image;
- ``oracle-sft``: the same questions, learned by supervised fine-tuning on their true completions (thought and
  answer; ``reasoner.objective: sft``): what any reward could teach with that data. With oracle-labels and
  oracle-rlvr the only arms where the oracle touches training;
- ``no-band``: every answered question is kept (``curation.band: [0, 1]``);
- ``no-diversity``: lambda = 0;
- ``frozen-questioner``: the questioner stage is skipped (Q_0 writes every iteration's questions);
- ``no-training``: both stages are skipped, iterations copy the models (the harness's noise floor: 0 by
  construction).

Layout of ``OUT``: ``world/`` (the base model, the benchmark, images per seed, the base model's scores:
shared by every run), ``<arm>/seed_<S>/`` (a demo run folder each), ``study.json``, ``report.html``. A
killed study resumes: finished runs are kept, an interrupted one resumes like ``visplay demo --resume``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visplay.analysis.consistency import mean_sd
from visplay.analysis.tables import text_table
from visplay.errors import UserError
from visplay.io import write_json_atomic, write_text_atomic


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...] = ()
    description: str = ""


ARMS = {arm.name: arm for arm in (
    Arm("paper", (), "the loop as configured (the default)"),
    Arm("oracle-labels", ("reasoner.labels=oracle",),
        "the reasoner trains on the oracle's answers to the kept questions (labels' upper bound)"),
    Arm("oracle-rlvr", ("questioner.train=false", "curation.source=world-oracle"),
        "the reasoner alone trains on the world's own questions about the training images with the oracle's "
        "answers (the RL ceiling)"),
    Arm("oracle-sft", ("questioner.train=false", "curation.source=world-oracle", "reasoner.objective=sft"),
        "the reasoner alone trains by supervised fine-tuning on oracle-rlvr's questions with their true answers and "
        "thoughts, as many prompts (the yardstick of what any reward could teach with that data)"),
    Arm("no-band", ("curation.band=[0.0, 1.0]",), "every answered question kept"),
    Arm("no-diversity", ("reward.diversity_lambda=0",), "no diversity penalty (lambda = 0)"),
    Arm("frozen-questioner", ("questioner.train=false",), "questioner stage skipped: Q_0 asks every iteration"),
    Arm("no-training", ("questioner.train=false", "reasoner.train=false"),
        "no training: iterations copy the models (the evaluation noise floor)"),
)}


DEFAULT_ARMS = "paper,oracle-labels"


def parse_arms(names: str | None = None, custom: list[str] | None = None) -> list[Arm]:
    """The arms to run, in order, from ``--arms a,b`` and ``--arm 'NAME=BASE key=value ...'``.

    ``--arm`` defines a new arm from a known one (a built-in arm or an earlier ``--arm``); ``--arms`` names
    the arms to run, built-in or defined, in that order. Without ``--arms`` the defined arms run, in the
    order given; with neither, :data:`DEFAULT_ARMS`. An arm defined but left out of ``--arms`` is refused
    (it would silently not run).

    >>> [a.name for a in parse_arms("paper,no-band")]
    ['paper', 'no-band']
    >>> [a.name for a in parse_arms()]
    ['paper', 'oracle-labels']
    >>> [(a.name, a.overrides) for a in parse_arms(None, ["t07=paper questioner.vote_sampling.temperature=0.7"])]
    [('t07', ('questioner.vote_sampling.temperature=0.7',))]
    >>> [a.name for a in parse_arms("t07,paper", ["t07=paper questioner.vote_sampling.temperature=0.7"])]
    ['t07', 'paper']
    """
    defined: dict[str, Arm] = {}
    for spec in custom or []:
        head, *sets = spec.split() or [""]
        name, sep, base = head.partition("=")
        known = {**ARMS, **defined}
        if not sep or not name or base not in known:
            raise UserError(f"--arm {spec!r}: write 'NAME=BASE key=value ...' with BASE one of {', '.join(known)}")
        if any("=" not in s for s in sets):
            raise UserError(f"--arm {spec!r}: every override is key=value")
        if name in known:
            raise UserError(f"--arm {spec!r}: an arm named {name!r} exists already; choose another name")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise UserError(f"--arm {spec!r}: use letters, digits, - and _ only in its name (it names a folder)")
        defined[name] = Arm(name, known[base].overrides + tuple(sets), f"{base} with {' '.join(sets)}")
    if names is None:
        names = ",".join(defined) or DEFAULT_ARMS
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen and defined:  # `--arms ''`: the defined arms (what it meant before --arms knew them)
        chosen = list(defined)
    if not chosen:
        raise UserError(f"give at least one arm with --arms (e.g. --arms {DEFAULT_ARMS})")
    known = {**ARMS, **defined}
    for name in chosen:
        if name not in known:
            raise UserError(f"--arms: unknown arm {name!r}; known: {', '.join(known)} (define others with --arm)")
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--arms: an arm is named twice ({', '.join(chosen)})")
    unused = [name for name in defined if name not in chosen]
    if unused:
        raise UserError(f"--arm {', '.join(unused)}: defined but not named in --arms ({names}); add it there or "
                        "leave --arms out to run the defined arms")
    return [known[name] for name in chosen]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2].

    >>> parse_seeds("0, 1,2")
    [0, 1, 2]
    """
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds must be a comma list of integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds must be distinct non-negative integers, got {text!r}")
    return seeds


# --------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    arm: str
    seed: int
    rows: list[dict]  # row 0 = base model; one row per iteration
    families: dict[int, dict[str, float]] = field(default_factory=dict)  # iteration -> family -> accuracy (0-1)
    clean_families: dict[int, dict[str, float]] = field(default_factory=dict)  # the same on the clean render
    seconds: float = 0.0
    # Mean over the run's reasoner stages of (last third - first third) of the training reward: does the
    # reward on fresh prompts rise within a stage? None when no reasoner stage trained.
    reward_rise: float | None = None


def reasoner_reward_rise(metrics_file: Path) -> float | None:
    """Mean change of the reasoner's training reward within its stages (last third minus first third of the
    steps, :func:`visplay.report.plots.reward_trend`), read from a run's metrics.jsonl."""
    from visplay.report.plots import reward_trend, stages_in_run_order
    from visplay.runread import read_metrics

    records = read_metrics(metrics_file)  # absent: []; a line cut by a kill is dropped
    trends = [t["change"] for t in reward_trend(stages_in_run_order(records)) if t["kind"] == "reasoner"]
    return sum(trends) / len(trends) if trends else None


def _clean_families(eval_dir: Path) -> dict[str, float]:
    """Per-family accuracy on the clean benchmark (``evaluate_toy``'s ``clean/`` folder; absent without a shift,
    where the clean benchmark is the run's own)."""
    return _families(eval_dir / "clean" / "toy" / "summary.json")


def _families(summary_file: Path) -> dict[str, float]:
    try:
        breakdown = json.loads(summary_file.read_text()).get("breakdown") or {}
    except (OSError, ValueError):
        return {}
    return {family: v["accuracy"] / 100.0 for family, v in breakdown.items() if v.get("accuracy") is not None}


def run_study(out: str | Path, arms: list[Arm], seeds: list[int], iterations: int = 3,
              overrides: list[str] | None = None, log: Callable[[str], None] = print,
              n_images: int | None = None, benchmark_items: int | None = None, shift: str | None = None,
              config: str | Path | None = None) -> dict:
    """Run (or resume) every (arm, seed) demo under ``out``; write study.json and report.html; return the study.

    ``shift`` (default: the demo's) renders the images and the benchmark under a :mod:`visplay.world.shift`
    spec; every row then carries ``toy_accuracy`` (the shifted domain) and ``toy_clean_accuracy`` (the same
    items, clean). ``config`` is a recipe YAML for every arm, applied before the arm's and ``overrides``'
    settings. ``n_images`` / ``benchmark_items`` default to the demo's (tests use fewer).
    """
    from visplay.demo import (
        DEMO_BENCHMARK_ITEMS,
        DEMO_IMAGES,
        demo_config,
        demo_shift,
        evaluate_toy,
        prepare_world,
        run_demo,
        shift_slug,
    )

    n_images = n_images or DEMO_IMAGES
    benchmark_items = benchmark_items or DEMO_BENCHMARK_ITEMS

    out = Path(out)
    if iterations < 1:
        raise UserError("--iterations must be at least 1")
    schedule = demo_shift(shift, iterations)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file")
    study_file = out / "study.json"
    if study_file.is_file():
        try:
            previous = json.loads(study_file.read_text())
        except ValueError:
            raise UserError(f"{study_file} is damaged; choose another --out") from None
        if previous.get("iterations") != iterations:
            raise UserError(f"{out} holds a study with {previous.get('iterations')} iterations; use the same "
                            "--iterations or another --out")
        if previous.get("shift", "none") != schedule.spec():
            raise UserError(f"{out} holds a study under --shift {previous.get('shift', 'none')}; use the same "
                            "--shift or another --out")
    # Every arm's config must be valid before anything is written (the world's paths are not there yet:
    # an existing folder stands in for them).
    stand_in = {"base": Path("."), "images": Path("."), "benchmark": Path(".")}
    for arm in arms:
        try:
            demo_config(out / arm.name, stand_in, iterations, seeds[0], list(arm.overrides) + list(overrides or []),
                        config)
        except UserError as exc:
            raise UserError(f"arm {arm.name}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    world_dir = out / "world"
    # One world for every run (base model, benchmark), with the unlabeled images of each seed.
    worlds = {seed: prepare_world(world_dir, seed, n_images, benchmark_items, log,
                                  images_name=f"images_seed{seed}", shift=schedule) for seed in seeds}
    base_cfg = demo_config(out, worlds[seeds[0]], iterations, seeds[0], list(overrides or []), config)
    log("evaluating the base model on the toy benchmark (shared by every run)")
    # The shift's own folder: a study folder holds one shift (checked above), but the names stay unambiguous.
    base_eval = world_dir / ("base_eval" if schedule.final.is_none else f"base_eval_{shift_slug(schedule.final)}")
    base_row = {"iteration": 0, **evaluate_toy(base_cfg, worlds[seeds[0]]["base"], base_eval,
                                               worlds[seeds[0]]["clean_benchmark"])}
    base_families = _families(base_eval / "toy" / "summary.json")
    base_clean_families = _clean_families(base_eval)
    results: list[RunResult] = []
    total = len(arms) * len(seeds)
    for k, (arm, seed) in enumerate((a, s) for a in arms for s in seeds):
        run_dir = out / arm.name / f"seed_{seed}"
        resume = (run_dir / "config.yaml").exists()
        log(f"[{k + 1}/{total}] arm {arm.name}, seed {seed}{' (resuming)' if resume else ''} -> {run_dir}")
        started = time.perf_counter()
        rows = run_demo(run_dir, iterations=iterations, seed=seed, resume=resume,
                        overrides=list(arm.overrides) + list(overrides or []), log=lambda m: None,
                        world=worlds[seed], base_row=dict(base_row), shift=schedule.spec(), config=config)
        families, clean_families = {0: base_families}, {0: base_clean_families}
        for i in range(1, iterations + 1):
            families[i] = _families(run_dir / f"iter_{i:02d}" / "eval" / "toy" / "summary.json")
            clean_families[i] = _clean_families(run_dir / f"iter_{i:02d}" / "eval") or families[i]
        results.append(RunResult(arm.name, seed, rows, families, clean_families,
                                 round(time.perf_counter() - started, 1), reasoner_reward_rise(run_dir / "metrics.jsonl")))
        last = rows[-1]
        log(f"    toy acc {100 * (rows[0].get('toy_accuracy') or 0):.1f}% -> "
            f"{100 * (last.get('toy_accuracy') or 0):.1f}% (clean {100 * (rows[0].get('toy_clean_accuracy') or 0):.1f}% "
            f"-> {100 * (last.get('toy_clean_accuracy') or 0):.1f}%) in {results[-1].seconds:.0f} s")
    study = summarize_study(arms, seeds, iterations, results, shift=schedule.spec())
    write_json_atomic(study_file, study)
    write_study_report(out, study)
    return study


# --------------------------------------------------------------------------------------------------
# summarising
# --------------------------------------------------------------------------------------------------


def _delta(rows: list[dict], runs: list[RunResult], key: str):
    return mean_sd([row.get(key) - r.rows[0][key] if row.get(key) is not None and r.rows[0].get(key) is not None
                    else None for row, r in zip(rows, runs)])


def _family_deltas(runs: list[RunResult], iterations: int, attr: str) -> dict[str, dict[str, float | None]]:
    families = sorted({f for r in runs for f in getattr(r, attr).get(0, {})})
    return {str(i): {f: mean_sd([getattr(r, attr).get(i, {}).get(f) - getattr(r, attr)[0][f]
                                 if getattr(r, attr).get(i, {}).get(f) is not None else None for r in runs])[0]
                     for f in families}
            for i in range(1, iterations + 1)}


def summarize_study(arms: list[Arm], seeds: list[int], iterations: int, results: list[RunResult],
                    shift: str = "none") -> dict:
    """Mean +- sd over seeds per arm and iteration (toy accuracy on the run's domain and on the clean render,
    pseudo-label accuracy, kept), and per-family accuracy changes from the base model in both domains."""
    summary = {"iterations": iterations, "seeds": seeds, "shift": shift, "arms": [], "runs": []}
    for r in results:
        summary["runs"].append({"arm": r.arm, "seed": r.seed, "seconds": r.seconds, "rows": r.rows,
                                "families": {str(i): f for i, f in r.families.items()},
                                "clean_families": {str(i): f for i, f in r.clean_families.items()},
                                "reward_rise": r.reward_rise})
    for arm in arms:
        runs = [r for r in results if r.arm == arm.name]
        per_iter = []
        for i in range(iterations + 1):
            rows = [r.rows[i] if i < len(r.rows) else {} for r in runs]
            per_iter.append({
                "iteration": i, "toy_accuracy": mean_sd([row.get("toy_accuracy") for row in rows]),
                "delta": _delta(rows, runs, "toy_accuracy"),
                "toy_clean_accuracy": mean_sd([row.get("toy_clean_accuracy") for row in rows]),
                "clean_delta": _delta(rows, runs, "toy_clean_accuracy"),
                "pseudo_label_accuracy": mean_sd([row.get("pseudo_label_accuracy") for row in rows]),
                "kept": mean_sd([row.get("kept") for row in rows]),
                "oracle_valid_rate": mean_sd([row.get("oracle_valid_rate") for row in rows]),
            })
        families = sorted({f for r in runs for f in r.families.get(0, {})})
        family_delta = _family_deltas(runs, iterations, "families")
        clean_family_delta = _family_deltas(runs, iterations, "clean_families")
        family_acc = {str(i): {f: mean_sd([r.families.get(i, {}).get(f) for r in runs])[0] for f in families}
                      for i in range(iterations + 1)}
        summary["arms"].append({"name": arm.name, "description": arm.description, "overrides": list(arm.overrides),
                                "iterations": per_iter, "family_delta": family_delta, "family_accuracy": family_acc,
                                "clean_family_delta": clean_family_delta,
                                "reward_rise": mean_sd([r.reward_rise for r in runs]),
                                "seconds": sum(r.seconds for r in runs)})
    return summary


def _pm(pair, scale: float = 100.0, signed: bool = False, digits: int = 1) -> str:
    mean, sd = pair if isinstance(pair, (list, tuple)) else (pair, None)
    if mean is None:
        return "-"
    text = f"{scale * mean:+.{digits}f}" if signed else f"{scale * mean:.{digits}f}"
    return text if sd is None else f"{text}±{scale * sd:.{digits}f}"


def format_study(study: dict) -> str:
    """The arms table (toy accuracy per iteration, mean±sd over seeds, in %), then per-family changes."""
    n = study["iterations"]
    header = ["arm"] + [f"iter {i}" for i in range(n + 1)] + [f"Δ iter {n}", f"clean iter {n}", f"clean Δ iter {n}",
                                                               "pseudo-label acc", "kept", "R reward rise"]
    rows = [header]
    for arm in study["arms"]:
        its = arm["iterations"]
        rows.append([arm["name"]] + [_pm(it["toy_accuracy"]) for it in its] + [_pm(its[n]["delta"], signed=True)]
                    + [_pm(its[n].get("toy_clean_accuracy") or (None, None)),
                       _pm(its[n].get("clean_delta") or (None, None), signed=True)]
                    + [" / ".join(_pm(its[i]["pseudo_label_accuracy"], digits=0) for i in range(1, n + 1)),
                       " / ".join(_pm(its[i]["kept"], scale=1, digits=0) for i in range(1, n + 1)),
                       _pm(arm.get("reward_rise") or (None, None), scale=1, signed=True, digits=2)])
    families = sorted({f for arm in study["arms"] for f in arm["family_delta"].get(str(n), {})})
    frows = [["arm"] + families]
    for arm in study["arms"]:
        frows.append([arm["name"]] + [_pm(arm["family_delta"][str(n)].get(f), signed=True) for f in families])
    crows = [["arm"] + families]
    for arm in study["arms"]:
        clean = arm.get("clean_family_delta", {}).get(str(n), {})
        crows.append([arm["name"]] + [_pm(clean.get(f), signed=True) for f in families])
    seeds = ",".join(str(s) for s in study["seeds"])
    shift = study.get("shift", "none")
    domain = "held-out toy accuracy" if shift == "none" else f"held-out toy accuracy under the shift {shift}"
    text = (f"{domain} (greedy, %), mean±sd over seeds {seeds}; clean: the same items rendered without a shift; "
            f"pseudo-label accuracy (%) and kept questions per iteration; R reward rise: the reasoner's training "
            f"reward within a stage (last third of its steps minus first third, mean over stages):\n{text_table(rows)}")
    if families:
        text += (f"\n\nper-family accuracy change after iteration {n} (points, mean over seeds){'' if shift == 'none' else ', shifted'}:\n"
                 f"{text_table(frows)}")
        if shift != "none":
            text += f"\n\nthe same on the clean render:\n{text_table(crows)}"
    return text


def _family_plots(study: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = study["iterations"]
    families = sorted({f for arm in study["arms"] for f in arm["family_accuracy"].get("0", {})})
    if not families:
        return None
    cols = min(3, len(families))
    rows = (len(families) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, family in enumerate(families):
        ax = axes[k // cols][k % cols]
        for j, arm in enumerate(study["arms"]):
            ys = [arm["family_accuracy"][str(i)].get(family) for i in range(n + 1)]
            ax.plot(range(n + 1), [None if y is None else 100 * y for y in ys], marker="o",
                    color=colours[j % len(colours)], label=arm["name"])
        ax.set_title(family)
        ax.set_xticks(range(n + 1))
        ax.set_ylabel("accuracy %")
    for k in range(len(families), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=8)
    fig.supxlabel("iteration (0 = base model)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_study_report(out: Path, study: dict) -> Path:
    """OUT/report.html: the arms table and one accuracy-per-iteration plot per family."""
    plot = _family_plots(study)
    arms = "".join(f"<li><b>{html.escape(a['name'])}</b>: {html.escape(a['description'])} "
                   f"<code>{html.escape(' '.join(a['overrides']) or '(no overrides)')}</code></li>"
                   for a in study["arms"])
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>VisPlay study</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px}"
        "pre{font-size:13px;background:#f6f6f6;padding:8px;overflow-x:auto}img{max-width:100%}</style></head><body>"
        f"<h1>VisPlay study: {len(study['arms'])} arms x seeds {html.escape(str(study['seeds']))}</h1>"
        f"<ul>{arms}</ul><pre>{html.escape(format_study(study))}</pre>"
        + (f"<h2>Accuracy per family and iteration (mean over seeds)</h2><img alt='per-family accuracy' "
           f"src='data:image/png;base64,{plot}'>" if plot else "")
        + "</body></html>\n"
    )
    path = out / "report.html"
    write_text_atomic(path, body)
    return path
