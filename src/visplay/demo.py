"""The embedded default: the toy world + its tiny base VLM, self-evolving on a laptop in minutes.

``run_demo`` builds (or reuses) everything under one folder:
```
OUT/world/base/                 the warm-started tiny base VLM (shipped with the package)
OUT/world/images/               unlabeled toy images: pixels only, what training sees
OUT/world/benchmark.parquet     the held-out labeled toy benchmark (scenes training never produces)
OUT/world/images_<shift>/, benchmark_<shift>.parquet   with --shift: the same, rendered under the shift
                                (one images folder per stage of a gradual shift)
OUT/config.yaml, state.json, metrics.jsonl, iter_XX/, eval/, report.html   the run folder (docs/run_folder.md)
```
After each iteration the reasoner is scored (greedy) on the toy benchmark by the evaluation code's ``toy``
benchmark, and the curated questions' silver answers are checked against the world's oracle. The oracle
is measurement only: it fills questions.parquet's ``oracle_answer`` column after filtering, and nothing in
training reads it (the image source carries pixels only).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from visplay.config import EvolveConfig, load_evolve_config
from visplay.errors import UserError
from visplay.evolve import Hooks, evaluate_benchmarks, evolve, questions_oracle_accuracy
from visplay.runfolder import RunFolder
from visplay.world.shift import ShiftSchedule, parse_shift

DEMO_IMAGES = 256
# The demo's world: "none" (the clean renders the base was trained on) until the loop adapts to a shifted
# world (README, Status); `visplay demo --shift faded` runs the shifted one.
DEMO_SHIFT = "none"
DEMO_BENCHMARK_ITEMS = 840
# What the demo writes into its folder before the run's config.yaml: a rerun or --resume continues there.
DEMO_ENTRIES = ("world", "eval")


def demo_shift(spec: str | None, iterations: int) -> ShiftSchedule:
    """The ``--shift`` of a demo or a study (None: the demo's default) as a schedule; a bad spec, or more
    stages than iterations, is a UserError (one line), raised before anything is written.

    >>> demo_shift("contrast:0.5>0.25", 3).spec(), demo_shift(None, 3).spec()
    ('contrast:0.5>contrast:0.25', 'none')
    """
    spec = DEMO_SHIFT if spec is None else spec
    try:
        schedule = parse_shift(spec)
    except ValueError as exc:
        raise UserError(f"--shift: {exc}") from None
    if len(schedule.stages) > iterations:
        raise UserError(f"--shift {spec}: {len(schedule.stages)} stages for {iterations} iterations; give at most "
                        "one stage per iteration")
    return schedule


def shift_slug(shift) -> str:
    """A file-name-safe form of one shift stage's spec.

    >>> from visplay.world.shift import parse_shift
    >>> shift_slug(parse_shift("contrast:0.25,blur:1.5").final)
    'contrast0.25_blur1.5'
    """
    return shift.spec().replace(":", "").replace(",", "_")


def prepare_world(world_dir: Path, seed: int, n_images: int, benchmark_items: int, log: Callable[[str], None],
                  images_name: str = "images", shift: ShiftSchedule | None = None) -> dict:
    """Base model, unlabeled images and benchmarks under ``world_dir``; each reused when already complete
    (``visplay study`` shares one world folder across its runs, images per seed).

    Paths: ``base``; ``images`` (``world_dir/images_name``, suffixed with the shift when there is one: the
    first stage's images); ``images_by_iteration`` (one folder per stage of a gradual shift, else absent);
    ``benchmark`` (the run's domain: the held-out items under the final shift) and ``clean_benchmark`` (the
    same items, clean; the same file without a shift).
    """
    from visplay.world.base import build_base
    from visplay.world.benchmark import shift_benchmark, write_benchmark
    from visplay.world.images import write_images

    shift = shift or parse_shift("none")
    world_dir.mkdir(parents=True, exist_ok=True)
    paths = expected_world(world_dir, shift, images_name)
    if not (paths["base"] / "config.json").exists():
        log("world: copying the shipped tiny base VLM")
        build_base(paths["base"], rebuild=False, check=False, log=log)
    for stage, folder in zip(shift.stages, paths.get("images_by_iteration") or [paths["images"]]):
        if not folder.exists():
            log(f"world: rendering {n_images} unlabeled images (seed {seed}, shift {stage.spec()})")
            write_images(folder, n_images, seed=seed, shift=None if stage.is_none else stage)
    if not paths["clean_benchmark"].exists():
        log(f"world: building the held-out benchmark ({benchmark_items} questions)")
        write_benchmark(paths["clean_benchmark"], n=benchmark_items, seed=0)
    if not paths["benchmark"].exists():
        log(f"world: rendering the held-out benchmark under the shift {shift.final.spec()}")
        shift_benchmark(paths["clean_benchmark"], paths["benchmark"], shift.final)
    return paths


def expected_world(world_dir: Path, shift: ShiftSchedule, images_name: str = "images") -> dict:
    """The paths :func:`prepare_world` gives for ``shift``, without building anything."""
    paths = {"base": world_dir / "base", "clean_benchmark": world_dir / "benchmark.parquet"}
    folders = [world_dir / (images_name if stage.is_none else f"{images_name}_{shift_slug(stage)}")
               for stage in shift.stages]
    paths["images"] = folders[0]
    if shift.is_gradual:
        paths["images_by_iteration"] = folders
    paths["benchmark"] = paths["clean_benchmark"] if shift.final.is_none else \
        world_dir / f"benchmark_{shift_slug(shift.final)}.parquet"
    return paths


# What the demo's own world decides; a --config recipe may set every other key.
_WORLD_KEYS = (("out",), ("iterations",), ("seed",), ("model", "path"), ("data",), ("eval", "benchmarks"))


def check_recipe(path: str | Path) -> None:
    """A ``--config`` YAML for the demo or a study: a recipe (any key) that leaves the demo's world alone."""
    from visplay.config.load import read_yaml

    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of config keys")
    for keys in _WORLD_KEYS:
        node = data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            raise UserError(f"--config {path}: {'.'.join(keys)} is set by the demo's toy world; remove it from the "
                            "file (use --iterations, --seed, --out)")


def demo_config(out: Path, paths: dict, iterations: int, seed: int, overrides: list[str] | None = None,
                config: str | Path | None = None) -> EvolveConfig:
    """The demo's run config: the tiny preset on the toy world, then the ``config`` recipe (a YAML, see
    configs/toy_shift.yaml), then the ``--set`` overrides."""
    if config is not None:
        check_recipe(config)
    base = {
        "preset": "tiny",
        "out": str(out),
        "iterations": iterations,
        "seed": seed,
        "model": {"path": str(paths["base"])},
        "data": {"images": str(paths["images"]),
                 **({"images_by_iteration": [str(p) for p in paths["images_by_iteration"]]}
                    if paths.get("images_by_iteration") else {})},
        "eval": {"benchmarks": [{"name": "toy", "data": str(paths["benchmark"])}]},
    }
    return load_evolve_config(config, overrides, base=base)


def toy_hooks(run: RunFolder, image_seed: int, cfg: EvolveConfig, clean_benchmark: Path | None = None) -> Hooks:
    """The oracle's answers for questions.parquet, and after each iteration the toy accuracy (the config's
    ``toy`` benchmark, the run's domain) and on ``clean_benchmark`` (the same items, clean) with the oracle's
    view of the curated questions; for the oracle arms, the world's own questions about an image, drawn so
    that their answers do not give themselves away, with their true answers and completions."""
    from visplay.world.base_data import reasoner_output, reasoner_thought
    from visplay.world.examples import balanced_question
    from visplay.world.images import scene_of_image
    from visplay.world.oracle import oracle_answer

    def annotate(image_id: str, question: str) -> str | None:
        result = oracle_answer(question, scene_of_image(image_id, image_seed))
        return result.answer if result.valid else None

    def world_questions(image_id: str, n: int, rng) -> list[tuple[str, str, str, str]]:
        scene = scene_of_image(image_id, image_seed)
        examples = [balanced_question(rng, scene) for _ in range(n)]
        return [(ex.question, ex.qtype, ex.answer, reasoner_output(reasoner_thought(ex.query, scene), ex.answer))
                for ex in examples]

    def evaluate(iteration: int, reasoner_dir: Path, eval_dir: Path) -> dict:
        metrics = evaluate_toy(cfg, reasoner_dir, eval_dir, clean_benchmark)
        metrics.update(questions_oracle_accuracy(run.questions_path(iteration)))
        return metrics

    # world_questions is called only under curation.source=world-oracle (the oracle arms).
    return Hooks(annotate=annotate, evaluate=evaluate, world_questions=world_questions)


def evaluate_toy(cfg: EvolveConfig, model_dir: Path, out_dir: Path, clean_benchmark: Path | None = None) -> dict:
    """``toy_accuracy`` (and ``toy_unparsed_rate``) of ``model_dir`` on the demo config's one benchmark, the toy
    benchmark of the run's domain, and ``toy_clean_accuracy`` on ``clean_benchmark`` (results under
    ``out_dir/clean``); without a separate clean benchmark (no shift) the two accuracies are the same number.
    Scored by evolve's benchmark scoring (its notes go nowhere: the demo prints its own table)."""
    metrics = evaluate_benchmarks(cfg, model_dir, out_dir, log=lambda m: None)
    if clean_benchmark is None or Path(clean_benchmark) == Path(cfg.eval.benchmarks[0].data):
        metrics["toy_clean_accuracy"] = metrics.get("toy_accuracy")
        return metrics
    clean_eval = cfg.eval.model_copy(update={"benchmarks": [
        cfg.eval.benchmarks[0].model_copy(update={"data": str(clean_benchmark)})]})
    clean = evaluate_benchmarks(cfg.model_copy(update={"eval": clean_eval}), model_dir, out_dir / "clean",
                                log=lambda m: None)
    metrics["toy_clean_accuracy"] = clean.get("toy_accuracy")
    metrics["toy_clean_unparsed_rate"] = clean.get("toy_unparsed_rate")
    return metrics


STUDY_COMMAND = "visplay study --arms paper,oracle-labels --seeds 0,1,2"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def explain(rows: list[dict], shift: str = "none") -> str:
    """Two or three sentences read from the demo's own table (row 0 = the base model), so that a falling
    number is read as the measurement it is, not as a bug.

    >>> rows = [{"iteration": 0, "toy_accuracy": 0.625},
    ...         {"iteration": 1, "toy_accuracy": 0.576, "pseudo_label_accuracy": 0.47},
    ...         {"iteration": 2, "toy_accuracy": 0.55, "pseudo_label_accuracy": 0.536}]
    >>> print(explain(rows))  # doctest: +NORMALIZE_WHITESPACE
    Toy accuracy fell from 62.5% (base model) to 55.0% after 2 iterations (-7.5 points). The reasoner trained
    on the silver answers (majority votes) of the questions kept in the confidence band, and those were right
    only 47.0% to 53.6% of the time (checked against the world's oracle, which training never sees): it
    learned from labels that were wrong about half the time, so the fall is what the loop measures here, not
    a bug. To see how much better labels would do, compare with training on the oracle's answers over
    several seeds: visplay study --arms paper,oracle-labels --seeds 0,1,2
    >>> rows = [{"iteration": 0, "toy_accuracy": 0.465, "toy_clean_accuracy": 0.61},
    ...         {"iteration": 1, "toy_accuracy": 0.52, "toy_clean_accuracy": 0.605}]
    >>> print(explain(rows, shift="contrast:0.25"))  # doctest: +NORMALIZE_WHITESPACE
    Toy accuracy rose from 46.5% (base model) to 52.0% after 1 iteration (+5.5 points). Those numbers are on
    images under the shift contrast:0.25; on the clean render of the same items (the domain the base was trained
    on) accuracy went from 61.0% to 60.5% (-0.5 points), so adapting to the shift cost the clean domain little.
    To see how much better labels would do, compare with training on the oracle's answers over several seeds:
    visplay study --arms paper,oracle-labels --seeds 0,1,2 --shift contrast:0.25
    """
    base = rows[0].get("toy_accuracy") if rows else None
    last = next((r for r in reversed(rows[1:]) if r.get("toy_accuracy") is not None), None)
    sentences = []
    change = None
    if base is not None and last is not None:
        change = last["toy_accuracy"] - base
        n = last["iteration"]
        verb = "rose" if change > 0.005 else "fell" if change < -0.005 else "stayed level"
        middle = f" from {_pct(base)} (base model) to {_pct(last['toy_accuracy'])}" if verb != "stayed level" else \
            f" at about {_pct(base)} (base model: {_pct(base)}, now {_pct(last['toy_accuracy'])})"
        sentences.append(f"Toy accuracy {verb}{middle} after {n} iteration{'s' if n != 1 else ''} "
                         f"({100 * change:+.1f} points).")
    labels = [r["pseudo_label_accuracy"] for r in rows[1:] if r.get("pseudo_label_accuracy") is not None]
    if labels:
        span = _pct(labels[0]) if len(labels) == 1 else f"{_pct(min(labels))} to {_pct(max(labels))}"
        mean = sum(labels) / len(labels)
        text = (f"The reasoner trained on the silver answers (majority votes) of the questions kept in the "
                f"confidence band, and those were right {'only ' if mean < 0.7 else ''}{span} of the time (checked "
                f"against the world's oracle, which training never sees)")
        if change is not None and change < -0.005:
            share = "about half the time" if 0.4 <= 1 - mean <= 0.6 else f"{100 * (1 - mean):.0f}% of the time"
            text += (f": it learned from labels that were wrong {share}, so the fall is what the loop "
                     f"measures here, not a bug.")
        elif change is not None and change > 0.005:
            text += ": labels good enough, on this run, to teach the reasoner."
        else:
            text += "."
        sentences.append(text)
    clean_base = rows[0].get("toy_clean_accuracy") if rows else None
    if shift != "none" and clean_base is not None and last is not None and last.get("toy_clean_accuracy") is not None:
        cost = last["toy_clean_accuracy"] - clean_base
        sentences.append(f"Those numbers are on images under the shift {shift}; on the clean render of the same items "
                         f"(the domain the base was trained on) accuracy went from {_pct(clean_base)} to "
                         f"{_pct(last['toy_clean_accuracy'])} ({100 * cost:+.1f} points), "
                         + ("so adapting to the shift cost the clean domain little." if cost >= -0.03 else
                            "so what it learned on the shifted images cost the clean domain that much."))
    sentences.append("To see how much better labels would do, compare with training on the oracle's answers over "
                     f"several seeds: {STUDY_COMMAND}" + (f" --shift {shift}" if shift != "none" else ""))
    return " ".join(sentences)


def run_demo(out: str | Path, iterations: int = 3, seed: int = 0, n_images: int = DEMO_IMAGES,
             benchmark_items: int = DEMO_BENCHMARK_ITEMS, resume: bool = False, overrides: list[str] | None = None,
             log: Callable[[str], None] = print, on_iteration: Callable[[dict], None] | None = None,
             world: dict | None = None, base_row: dict | None = None, shift: str = DEMO_SHIFT,
             config: str | Path | None = None) -> list[dict]:
    """Run the demo into ``out``; returns the table rows (row 0 = the base model).

    ``config`` is a recipe YAML applied before ``overrides`` (:func:`demo_config`). ``shift`` (a
    :mod:`visplay.world.shift` spec) renders the unlabeled images and a copy of the held-out items
    under it; ``toy_accuracy`` is then the shifted domain's and ``toy_clean_accuracy`` the clean one's.
    ``world`` (paths from :func:`prepare_world`, already under the shift) and ``base_row`` (the base model's
    scores) let ``visplay study`` share one world and one base evaluation across its runs.
    """
    from visplay.distributed import launched_world_size
    from visplay.errors import UserError
    from visplay.evolve import check_folder_entries, check_run_folder
    from visplay.stages.sampling import check_sampler_environment
    from visplay.world.base import ASSET_DIR

    if launched_world_size() > 1:
        raise UserError("the demo runs in one process; start `visplay evolve` under torchrun or accelerate launch "
                        "for a multi-process run")
    schedule = demo_shift(shift, iterations)
    out = Path(out)
    # Everything is checked before the world is built: the folder, the --set overrides and, on resume,
    # that they match the stored run. Before the world exists the overrides are validated against the
    # shipped model's folder (any existing path would do; the real paths are filled in below).
    expected = world or expected_world(out / "world", schedule)
    if check_folder_entries(out, resume, DEMO_ENTRIES) and all(
            Path(p).exists() for value in expected.values() for p in (value if isinstance(value, list) else [value])):
        early = demo_config(out, expected, iterations, seed, overrides, config)
        check_run_folder(early, out, resume, DEMO_ENTRIES)
    else:
        early = demo_config(out, {"base": ASSET_DIR, "images": ASSET_DIR, "benchmark": ASSET_DIR}, iterations, seed,
                            overrides, config)
    check_sampler_environment(early.sampler)  # e.g. sampler.backend=vllm on a machine without a GPU
    paths = world or prepare_world(out / "world", seed, n_images, benchmark_items, log, shift=schedule)
    cfg = demo_config(out, paths, iterations, seed, overrides, config)
    run = RunFolder(out)
    if base_row is None:
        log("evaluating the base model on the toy benchmark")
        base_row = {"iteration": 0, **evaluate_toy(cfg, paths["base"], out / "eval" / "base", paths["clean_benchmark"])}
    if on_iteration is not None:
        on_iteration(base_row)
    rows = evolve(cfg, out, resume=resume, hooks=toy_hooks(run, seed, cfg, paths["clean_benchmark"]),
                  on_iteration=on_iteration, allowed_entries=DEMO_ENTRIES)
    from visplay.report import write_report

    write_report(out)
    return [base_row] + rows
