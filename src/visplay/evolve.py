"""The self-evolution loop: for i in 1..N run the questioner, curation and reasoner stages, then evaluate.

Both roles start from the base model and then carry their own weights:
    Q_i = GRPO(Q_{i-1}; rewards from R_{i-1}'s votes)      -> RUN/iter_i/questioner
    questions_i = curate(Q_i, R_{i-1})                      -> RUN/iter_i/questions.parquet
    R_i = GRPO(R_{i-1}; kept questions, silver answers)     -> RUN/iter_i/reasoner
Each stage reads its inputs from disk and writes its outputs atomically; state.json records each
finished stage, so ``resume`` after a kill at any moment redoes at most the interrupted stage.

Multi-process runs (torchrun / accelerate launch; :mod:`visplay.distributed`): rank 0 prepares the run
folder and writes state.json, metrics.jsonl and questions.parquet; every rank trains and samples its share
of the frozen models' generations; checkpoints are carried over and benchmarks scored by rank 0 alone; all
ranks wait for each other at every stage boundary. Each stage's state entry records ``processes``, the
number of ranks that ran it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from visplay import distributed
from visplay.config import EvolveConfig, rename_deprecated, to_dict, to_yaml
from visplay.data.images import ImageSource, open_image_source
from visplay.engines.loading import read_model_config
from visplay.errors import UserError
from visplay.io import atomic_dir, write_text_atomic
from visplay.preflight import check_output_dir
from visplay.runfolder import RunFolder
from visplay.runread import read_config, relocate
from visplay.stages.curation import Annotate, explain_too_few, pool_size_warning, read_kept, run_curation_stage
from visplay.stages.questioner import run_questioner_stage
from visplay.stages.reasoner import run_reasoner_stage
from visplay.stages.world_questions import WorldQuestions, run_world_questions_stage
from visplay.stages.world_sft import run_world_sft_stage

log = logging.getLogger(__name__)

# (iteration, reasoner checkpoint, eval folder) -> metrics to show in the iteration table.
Evaluate = Callable[[int, Path, Path], dict]


class RunStopped(Exception):
    """The run stopped on purpose (e.g. too few questions survived curation); the message says why."""


@dataclass
class Hooks:
    """Optional analysis hooks; none of them feeds training."""

    annotate: Annotate | None = None  # oracle answers for the questions.parquet analysis column (toy world)
    # The oracle-rlvr arm's questions (curation.source=world-oracle): the one hook that feeds training.
    world_questions: WorldQuestions | None = None
    evaluate: Evaluate | None = None  # benchmark scoring after each iteration


def _first_difference(a, b, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if diff:
                return diff
        return None
    return None if a == b else prefix or "(root)"


def _is_leftover(entry: Path) -> bool:
    """A temporary file or folder of an interrupted atomic write (``.NAME.xxx.tmp`` / ``.NAME.old``)."""
    return entry.name.startswith(".") and entry.name.endswith((".tmp", ".old"))


def check_folder_entries(out: Path, resume: bool, allowed_entries: tuple[str, ...] = ()) -> bool:
    """Can the folder ``out`` take a run? Writes nothing; True when it holds a run to resume.

    - no config.yaml and nothing but ``allowed_entries`` and temp leftovers: a fresh start, with or
      without ``resume`` (a run killed before its config was written has nothing to resume);
    - config.yaml: only with ``resume`` (then :func:`check_run_folder` compares the configs);
    - anything else is refused in one line.
    """
    check_output_dir(out)
    if not out.exists():
        return False
    has_config = os.path.lexists(out / "config.yaml")
    if resume and has_config:
        return True
    if has_config:
        raise UserError(f"{out} already holds a run; add --resume to continue it, or choose another --out")
    if any(p.name not in allowed_entries and not _is_leftover(p) for p in out.iterdir()):
        if resume:
            raise UserError(f"cannot resume: {out} has no config.yaml (not a VisPlay run folder)")
        raise UserError(f"{out} is a non-empty folder; choose an empty or new --out")
    return False


def check_run_folder(cfg: EvolveConfig, out: Path, resume: bool, allowed_entries: tuple[str, ...] = ()) -> bool:
    """:func:`check_folder_entries`, then on resume: the stored config must equal ``cfg`` except for where
    the folder is (a moved or copied run resumes; paths inside it move with it). Writes nothing."""
    if not check_folder_entries(out, resume, allowed_entries):
        return False
    run = RunFolder(out)
    _, stored = read_config(run.config_path)
    stored = rename_deprecated(stored, warn=False)  # a run started before keys were renamed
    stored = with_new_keys(stored)  # ... or before keys were added
    run.load_state()  # a damaged state.json is refused before any work
    new = to_dict(cfg)
    stored = relocate(stored, str(stored.get("out", out)), str(out))
    stored["out"] = new["out"] = str(out)
    diff = _first_difference(stored, new)
    if diff:
        raise UserError(f"cannot resume {out}: config key {diff} differs from the run's config.yaml; "
                        "resume with the same config (or start a new run folder)")
    return True


def with_new_keys(stored: dict) -> dict:
    """A stored config with every key added since it was written, at the value the run used: the key's
    default (its preset's, else the schema's), which is what validating the stored config gives. A stored
    config that no longer validates is returned as it is (the comparison then names the key)."""
    from visplay.config.load import complete_stored_config

    try:
        return to_dict(complete_stored_config(stored))
    except UserError:
        return stored


def prepare_run(cfg: EvolveConfig, out: Path, resume: bool, allowed_entries: tuple[str, ...] = ()) -> RunFolder:
    """Create or reopen the run folder; on resume the config must be the one the run started with.

    Call it after every other input was checked: on a fresh start it writes config.yaml, which makes the
    folder a run (a failed start must leave no config behind that would block its own rerun).
    """
    out = Path(out)
    resuming = check_run_folder(cfg, out, resume, allowed_entries)
    run = RunFolder(out)
    removed = run.clean_partial() if out.exists() else []
    if removed:
        log.info("removed %d partial files of an interrupted write", len(removed))
    if resuming:
        dropped = run.drop_unfinished_metrics()
        if dropped:
            log.info("dropped %d metrics lines of the interrupted stage (it is redone)", dropped)
        if to_yaml(cfg) != run.config_path.read_text(encoding="utf-8"):
            write_text_atomic(run.config_path, to_yaml(cfg))  # the run moved: config.yaml says where it is now
        return run
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run.config_path, to_yaml(cfg))
    return run


def image_paths(cfg: EvolveConfig) -> list[str]:
    """The image source of each iteration, in order: ``data.images_by_iteration`` (a gradual shift, the last
    source for later iterations) or ``data.images`` for every iteration."""
    by_iteration = list(cfg.data.images_by_iteration)
    return [by_iteration[min(i, len(by_iteration)) - 1] if by_iteration else cfg.data.images
            for i in range(1, cfg.iterations + 1)]


def check_inputs(cfg: EvolveConfig) -> dict[str, ImageSource]:
    """Every input of a run, checked before anything is written: the base model's files, the images of every
    iteration (at least one must decode in each source) and the benchmarks (readable, every image decodes:
    they are first read after the first iteration, hours in). Returns the opened image sources by path."""
    read_model_config(Path(cfg.model.path))  # a wrong model folder is reported before any image is read
    sources = {}
    for path in dict.fromkeys(image_paths(cfg)):
        sources[path] = open_image_source(path, cfg.data.image_column)
        sources[path].require_readable()
    if cfg.eval.benchmarks:
        from visplay.evaluation.data import check_images, load_benchmark

        for bench in cfg.eval.benchmarks:
            check_images(load_benchmark(bench.name, Path(bench.data), limit=bench.limit))
    return sources


def _copy_checkpoint(src: Path, dst: Path) -> None:
    with atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)


def _run_stage(run: RunFolder, ranks: distributed.Ranks, iteration: int, stage: str, work: Callable[[], dict],
               alone: bool = False) -> None:
    """Run ``work`` unless state.json already has this stage: on every rank, or on rank 0 ``alone``; record
    it with the number of processes that ran it; then wait for every rank."""
    if run.is_done(iteration, stage):
        return
    info = ranks.on_main(work) if alone else work()
    run.mark_done(iteration, stage, {**info, "processes": 1 if alone else ranks.world})
    ranks.barrier()


def evolve(cfg: EvolveConfig, out: str | Path, resume: bool = False, hooks: Hooks | None = None,
           on_iteration: Callable[[dict], None] | None = None, allowed_entries: tuple[str, ...] = ()) -> list[dict]:
    """Run (or resume) ``cfg.iterations`` iterations into ``out``; return one summary row per iteration."""
    hooks = hooks or Hooks()
    if hooks.evaluate is None and cfg.eval.benchmarks:
        hooks.evaluate = benchmark_evaluator(cfg)
    out = Path(out)
    if cfg.reasoner.labels == "oracle" and hooks.annotate is None:
        raise UserError("reasoner.labels=oracle needs the toy world's oracle (the oracle-labels arm of visplay "
                        "study / visplay demo); a run on your own images has no true answers")
    if cfg.curation.source == "world-oracle" and hooks.world_questions is None:
        raise UserError("curation.source=world-oracle needs the toy world's question generator and oracle (the "
                        "oracle-rlvr arm of visplay study / visplay demo); a run on your own images has none")
    ranks = distributed.current()

    def start() -> dict[str, ImageSource]:
        check_run_folder(cfg, out, resume, allowed_entries)  # cheap, and says "already holds a run" first
        sources = check_inputs(cfg)
        prepare_run(cfg, out, resume, allowed_entries)
        for source in sources.values():
            if (warning := pool_size_warning(cfg, len(source))) is not None:
                log.warning(warning)
        return sources

    if ranks.world == 1:
        sources = start()
    else:
        # Rank 0 alone checks the inputs and prepares the folder (a rank checking after rank 0 wrote
        # config.yaml would find "a run already there"); its verdict, or its error, reaches every rank.
        def start_on_main() -> None:
            start()  # nothing to hand over: the image source stays on rank 0, the others open their own

        ranks.on_main(start_on_main)
        sources = {path: open_image_source(path, cfg.data.image_column) for path in dict.fromkeys(image_paths(cfg))}
    per_iteration = image_paths(cfg)
    run = RunFolder(out, writer=ranks.is_main)
    base = Path(cfg.model.path)
    rows = []
    for iteration in range(1, cfg.iterations + 1):
        q_prev = base if iteration == 1 else run.questioner_dir(iteration - 1)
        r_prev = base if iteration == 1 else run.reasoner_dir(iteration - 1)
        row: dict = {"iteration": iteration}
        started = time.perf_counter()
        images = sources[per_iteration[iteration - 1]]

        if cfg.questioner.train:
            _run_stage(run, ranks, iteration, "questioner",
                       lambda: run_questioner_stage(cfg, run, iteration, q_prev, r_prev, images))
        else:
            _run_stage(run, ranks, iteration, "questioner", alone=True,
                       work=lambda: _copy_checkpoint(q_prev, run.questioner_dir(iteration)) or {"carried_over": True})

        if cfg.curation.source == "world-oracle":
            _run_stage(run, ranks, iteration, "curation", alone=True,
                       work=lambda: run_world_questions_stage(cfg, run, iteration, images, hooks.world_questions))
        else:
            _run_stage(run, ranks, iteration, "curation",
                       lambda: run_curation_stage(cfg, run, iteration, run.questioner_dir(iteration), r_prev, images,
                                                  annotate=hooks.annotate))
        curation = run.stage_info(iteration, "curation") or {}
        row.update(kept=curation.get("kept"), candidates=curation.get("candidates"),
                   validity=curation.get("validity"), mean_confidence=curation.get("mean_confidence"))

        if not run.is_done(iteration, "reasoner"):
            kept = read_kept(run.questions_path(iteration), labels=cfg.reasoner.labels)
            if cfg.reasoner.train and len(kept) < cfg.curation.min_kept:
                message = explain_too_few(curation, cfg)
                if cfg.curation.on_too_few == "stop":
                    raise RunStopped(message)
                log.warning("%s; continuing as configured", message)
            if kept and cfg.reasoner.train and cfg.reasoner.objective == "sft":  # the oracle-sft arm (world-oracle)
                _run_stage(run, ranks, iteration, "reasoner", alone=True,
                           work=lambda: run_world_sft_stage(cfg, run, iteration, r_prev))
            elif kept and cfg.reasoner.train:
                _run_stage(run, ranks, iteration, "reasoner",
                           lambda: run_reasoner_stage(cfg, run, iteration, r_prev, kept))
            else:
                _run_stage(run, ranks, iteration, "reasoner", alone=True,
                           work=lambda: _copy_checkpoint(r_prev, run.reasoner_dir(iteration))
                           or {"examples": 0, "carried_over": True})

        if hooks.evaluate is not None:
            _run_stage(run, ranks, iteration, "eval", alone=True,
                       work=lambda: hooks.evaluate(iteration, run.reasoner_dir(iteration), run.eval_dir(iteration)))
            row.update(run.stage_info(iteration, "eval") or {})
        row["seconds"] = sum(
            sum(v for k, v in (run.stage_info(iteration, s) or {}).items() if k.startswith("time/"))
            for s in ("questioner", "curation", "reasoner", "eval")
        ) or round(time.perf_counter() - started, 1)
        rows.append(row)
        if on_iteration is not None and ranks.is_main:
            on_iteration(row)
    return rows


def evaluate_benchmarks(cfg: EvolveConfig, model_dir: Path, eval_dir: Path,
                        log: Callable[[str], None] | None = None) -> dict:
    """Greedy accuracy (0-1) and unparsed rate of ``model_dir`` on each configured benchmark, scored by the
    evaluation runner; results under ``eval_dir/<benchmark>/``. The one path for every iteration table's
    benchmark numbers (evolve, the demo, the study); ``log`` None = the runner's warnings on stderr."""
    from visplay.evaluation.runner import BenchmarkSpec, EvalSettings, evaluate_model

    metrics = {}
    for bench in cfg.eval.benchmarks:
        settings = EvalSettings(prompt_style=cfg.model.prompt_style, max_new_tokens=cfg.eval.max_new_tokens,
                                batch_size=cfg.sampler.max_batch_rows, limit=bench.limit,
                                **({"log": log} if log is not None else {}))
        summary = evaluate_model(model_dir, [BenchmarkSpec(bench.name, Path(bench.data))], eval_dir, settings)[0]
        accuracy = summary.get("accuracy")
        metrics[f"{bench.name}_accuracy"] = None if accuracy is None else accuracy / 100.0
        metrics[f"{bench.name}_unparsed_rate"] = summary.get("unparsed_rate")
    return metrics


def benchmark_evaluator(cfg: EvolveConfig) -> Evaluate:
    """Score each iteration's reasoner (greedy) on the configured benchmarks (:func:`evaluate_benchmarks`)."""
    return lambda iteration, reasoner_dir, eval_dir: evaluate_benchmarks(cfg, reasoner_dir, eval_dir)


def questions_oracle_accuracy(path: Path) -> dict:
    """Oracle view of a questions.parquet with an ``oracle_answer`` column (the toy world; analysis only).

    - ``pseudo_label_accuracy``: kept questions whose silver answer equals the oracle's answer, among kept
      questions the oracle can answer (an invalid question has no right answer to compare with);
    - ``kept_valid_rate``: share of kept questions that are valid for the oracle;
    - ``oracle_valid_rate``: share of parsed questions that are valid for the oracle.
    """
    import pyarrow.parquet as pq

    from visplay.selfplay.answers import same_answer

    table = pq.read_table(path)
    if "oracle_answer" not in table.column_names:
        return {}
    rows = table.select(["kept", "silver_answer", "oracle_answer", "question"]).to_pylist()
    kept = [r for r in rows if r["kept"]]
    kept_valid = [r for r in kept if r["oracle_answer"] is not None]
    parsed = [r for r in rows if r["question"] is not None]
    valid = [r for r in parsed if r["oracle_answer"] is not None]
    correct = sum(1 for r in kept_valid if same_answer(r["silver_answer"], r["oracle_answer"]))
    return {
        "pseudo_label_accuracy": correct / len(kept_valid) if kept_valid else None,
        "kept_valid_rate": len(kept_valid) / len(kept) if kept else None,
        "oracle_valid_rate": len(valid) / len(parsed) if parsed else None,
    }
