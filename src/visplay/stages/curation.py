"""Curation stage: Q_i writes candidate questions for an image pool, R_{i-1} votes, the band filter keeps
the informative ones. Every candidate, kept or dropped with its reason, goes to questions.parquet.

questions.parquet columns (docs/run_folder.md): image_id, image (HF image struct: {bytes, path}; the path
for folder sources, else PNG bytes), raw, question, qtype, questioner_answer, votes (extracted answers,
null = no box), silver_answer, confidence, kept, reason; plus oracle_answer when an ``annotate`` hook is
given (the toy world; analysis only, written after filtering and never read by training).

Sampling: the questions use ``curation.question_sampling`` (authors: temperature 1.0, top_p 0.95), the
votes ``curation.vote_sampling`` with the reasoner prompt (authors: m = 9, temperature 1.0, top_p 1.0,
top_k 40). Departure: a reply without ``<question>`` is dropped as ``unparsed``; the
authors' script sends the whole raw reply to the voters as if it were the question.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from visplay import distributed
from visplay.config import EvolveConfig
from visplay.data.codec import png_bytes
from visplay.data.images import ImageSource
from visplay.engines.sampler import SampleRequest
from visplay.errors import UserError
from visplay.io import atomic_path
from visplay.runfolder import RunFolder
from visplay.selfplay.answers import extract_boxed, majority_vote
from visplay.selfplay.curation import drop_reason
from visplay.selfplay.prompts import parse_question, questioner_messages, reasoner_messages
from visplay.stages.common import StageTimer, pick_images
from visplay.stages.sampling import frozen_sampler

log = logging.getLogger(__name__)

# (image_id, question) -> oracle answer (or None for an invalid question). Analysis only.
Annotate = Callable[[str, str], "str | None"]

SCHEMA = pa.schema([
    ("image_id", pa.string()),
    # The HF image struct: PNG bytes, or the path of the image in a folder source (no copy).
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("raw", pa.string()),
    ("question", pa.string()),
    ("qtype", pa.string()),
    ("questioner_answer", pa.string()),
    ("votes", pa.list_(pa.string())),
    ("silver_answer", pa.string()),
    ("confidence", pa.float64()),
    ("kept", pa.bool_()),
    ("reason", pa.string()),
])


def run_curation_stage(cfg: EvolveConfig, run: RunFolder, iteration: int, questioner: Path, reasoner_frozen: Path,
                       images: ImageSource, annotate: Annotate | None = None) -> dict:
    """Write RUN/iter_XX/questions.parquet and return a summary (candidates, kept, validity, confidence)."""
    summary = curate(cfg, questioner, reasoner_frozen, images, run.questions_path(iteration),
                     seed=cfg.seed * 1000 + iteration, salt=f"curation-{iteration}",
                     annotate=annotate, log_dir=run.root / "logs", name=f"iter{iteration:02d}_curation")
    run.log_metrics({"stage": f"iter{iteration:02d}/curation", "event": "stage_done", "iteration": iteration, **summary})
    return summary


def curate(cfg: EvolveConfig, questioner: Path, reasoner_frozen: Path, images: ImageSource, out_path: Path,
           seed: int, salt: str = "curation", annotate: Annotate | None = None,
           log_dir: Path | None = None, name: str = "curation") -> dict:
    """The curation stage on its own: candidates from ``questioner``, votes from ``reasoner_frozen``, the
    band filter; writes every candidate to ``out_path`` (parquet, atomically) and returns a summary.

    In a multi-process run every rank calls it: the sampling is split across ranks, every rank gets the
    same rows, and rank 0 writes the file. Server logs (``sampler.server_command``) go to ``log_dir``
    (default: ``logs/`` beside ``out_path``) as ``<name>_questions.log`` and ``<name>_votes.log``."""
    timer = StageTimer()
    cc, style = cfg.curation, cfg.model.prompt_style
    with timer.phase("load_images"):
        pixels = load_pool(cfg, images, salt)
    log_dir = Path(log_dir) if log_dir is not None else out_path.parent / "logs"

    with timer.phase("questions"), frozen_sampler(cfg, questioner, f"{name}_questions", log_dir) as sampler:
        raw_questions = sampler.sample(
            [SampleRequest(questioner_messages(style), [image]) for _, image in pixels],
            n=cc.samples_per_image, **cc.question_sampling.kwargs(), seed=seed, desc="curation: questions",
        )

    candidates = []  # (item, image, raw text, parsed or None)
    for (item, image), raws in zip(pixels, raw_questions):
        for raw in raws:
            candidates.append((item, image, raw, parse_question(raw)))
    asked = [k for k, c in enumerate(candidates) if c[3] is not None]

    with timer.phase("votes"), frozen_sampler(cfg, reasoner_frozen, f"{name}_votes", log_dir) as sampler:
        answers = sampler.sample(
            [SampleRequest(reasoner_messages(candidates[k][3].question, style), [candidates[k][1]]) for k in asked],
            n=cc.votes, **cc.vote_sampling.kwargs(),
            seed=seed + 1, desc="curation: votes",
        )

    votes_by_candidate: dict[int, list] = {k: [extract_boxed(a) for a in samples] for k, samples in zip(asked, answers)}
    rows = []
    cells: dict[str, dict] = {}
    for k, (item, image, raw, parsed) in enumerate(candidates):
        votes = votes_by_candidate.get(k)
        vote = majority_vote(votes) if votes is not None else None
        reason = drop_reason(parsed, vote, band=tuple(cc.band), drop_none_string=cc.drop_none_answers,
                             agreement=cc.agreement, questioner_answer=parsed.answer if parsed else None)
        rows.append({
            "image_id": item.image_id,
            "image": image_cell(images, item.image_id, image, cells),
            "raw": raw,
            "question": parsed.question if parsed else None,
            "qtype": parsed.qtype if parsed else None,
            "questioner_answer": parsed.answer if parsed else None,
            "votes": votes,
            "silver_answer": vote.answer if vote else None,
            "confidence": vote.confidence if vote else None,
            "kept": reason is None,
            "reason": reason or "",
        })
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    if annotate is not None:
        oracle = [annotate(r["image_id"], r["question"]) if r["question"] else None for r in rows]
        table = table.append_column("oracle_answer", pa.array(oracle, pa.string()))
    ranks = distributed.current()
    if ranks.is_main:
        with atomic_path(out_path) as tmp:
            pq.write_table(table, tmp)
    ranks.barrier()  # the file is in place before any rank reads it

    kept = sum(r["kept"] for r in rows)
    confidences = [r["confidence"] for r in rows if r["confidence"] is not None]
    summary = {
        "candidates": len(rows),
        "kept": kept,
        "validity": len(asked) / len(rows) if rows else 0.0,
        "mean_confidence": sum(confidences) / len(confidences) if confidences else float("nan"),
        "drop_reasons": dict(Counter(r["reason"] for r in rows if not r["kept"])),
        "images": len(pixels),
        "skipped_images": len(images.skipped),
        **timer.as_metrics(),
    }
    return summary


def load_pool(cfg: EvolveConfig, images: ImageSource, salt: str) -> list[tuple]:
    """The (item, decoded image) pairs of a curation pool: ``curation.images`` of the source, the first ones
    (``pool: fixed``, the authors: the same images every iteration) or a seeded draw per ``salt``. Refuses a
    pool where no image decodes (the user's data, not a result)."""
    cc = cfg.curation
    count = min(cc.images, len(images))
    items = [images[i] for i in range(count)] if cc.pool == "fixed" else pick_images(images, count, cfg.seed, salt)
    pixels = images.load_images(items)
    if not pixels:
        raise UserError(f"no readable images in {images.description}: all {len(items)} picked image(s) failed to decode")
    return pixels


def image_cell(images: ImageSource, image_id: str, image, cells: dict[str, dict]) -> dict:
    """questions.parquet's image struct: images that are files are referenced by path; others (parquet,
    dataset) are copied in as PNG, once per image (``cells`` caches them by id)."""
    if image_id not in cells:
        path = str(images.image_root / image_id) if images.image_root is not None else None
        cells[image_id] = {"bytes": None if path else png_bytes(image), "path": path}
    return cells[image_id]


def read_kept(path: Path, labels: str = "silver") -> list[dict]:
    """The kept (image, question, silver answer) rows of a questions.parquet, as dicts.

    ``labels="silver"`` (the method) never reads the oracle column. ``labels="oracle"`` is the oracle-labels
    study arm, the one place where the toy world's oracle touches training: each kept question's
    ``silver_answer`` is replaced by the oracle's answer, and questions the oracle cannot answer are dropped.
    """
    from visplay.runread import check_questions

    check_questions(path)  # a damaged file (edited, cut) is named in one line, not an ArrowInvalid
    columns = ["image_id", "image", "question", "silver_answer", "kept"]
    if labels == "silver":
        return [r for r in pq.read_table(path, columns=columns).to_pylist() if r["kept"]]
    if labels != "oracle":
        raise ValueError(f"labels must be silver or oracle, got {labels!r}")
    if "oracle_answer" not in pq.read_schema(path).names:
        raise UserError(f"reasoner.labels=oracle: {path} has no oracle answers (only toy-world runs have them)")
    rows = pq.read_table(path, columns=columns + ["oracle_answer"]).to_pylist()
    return [dict(r, silver_answer=r.pop("oracle_answer")) for r in rows if r["kept"] and r["oracle_answer"] is not None]


def explain_too_few(summary: dict, cfg: EvolveConfig) -> str:
    """Why too few questions survived and what to change (on_too_few=continue is offered only when it is not
    already set)."""
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(summary["drop_reasons"].items(), key=lambda x: -x[1]))
    advice = ["widen curation.band", "raise curation.images"]
    if cfg.curation.on_too_few != "continue":
        advice.append("set curation.on_too_few=continue")
    return (f"only {summary['kept']} of {summary['candidates']} candidate questions survived curation "
            f"(need {cfg.curation.min_kept}; dropped: {reasons or 'none'}); {', '.join(advice[:-1])} or {advice[-1]}")


def pool_size_warning(cfg: EvolveConfig, available: int) -> str | None:
    """The warning when curation.images asks for more images than the source holds (then all are used).

    Reported once per run or command, not once per iteration.
    """
    if cfg.curation.images <= available:
        return None
    return (f"curation.images is {cfg.curation.images} but the image source holds {available}; each iteration "
            f"curates all {available} (each image once)")
