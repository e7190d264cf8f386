"""The oracle-rlvr study arm's questions: the toy world writes and answers them instead of Q_i and R_{i-1}.

With ``curation.source: world-oracle`` this stage replaces curation. It draws the iteration's image pool
exactly as curation would (same seed and salt), asks the ``world_questions`` hook for
``curation.samples_per_image`` questions about each image (the toy world's own question generator on
the image's scene, answered by its oracle) and writes them to questions.parquet with the curation
columns: every question kept, ``silver_answer`` = ``oracle_answer`` = the true answer, no votes. The
reasoner stage then trains on them as usual: GRPO with true rewards on fresh questions about the training
images, the ceiling of any label-free loop on this testbed. Together with ``reasoner.labels: oracle`` it
is the only place where the oracle reaches training. The ``true_completion`` column (the base recipe's
thought and boxed answer for the question) is read by the oracle-sft arm's stage alone
(``reasoner.objective: sft``, :mod:`visplay.stages.world_sft`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from visplay.config import EvolveConfig
from visplay.data.images import ImageSource
from visplay.io import atomic_path
from visplay.runfolder import RunFolder
from visplay.stages.common import StageTimer
from visplay.stages.curation import SCHEMA, image_cell, load_pool

# (image_id, how many, random stream) -> [(question, qtype, true answer, true completion)]: the toy world's
# generator; the completion (the base recipe's thought and the boxed answer) is what the oracle-sft arm learns.
WorldQuestions = Callable[[str, int, random.Random], "list[tuple[str, str, str, str]]"]


def run_world_questions_stage(cfg: EvolveConfig, run: RunFolder, iteration: int, images: ImageSource,
                              world_questions: WorldQuestions) -> dict:
    """Write RUN/iter_XX/questions.parquet from the world's questions; return the curation-like summary.
    Runs on rank 0 only (it writes the file)."""
    timer = StageTimer()
    cc = cfg.curation
    with timer.phase("questions"):
        pixels = load_pool(cfg, images, f"curation-{iteration}")  # the pool curation would draw
        rows = []
        cells: dict[str, dict] = {}
        for item, image in pixels:
            rng = random.Random(f"world-questions/{cfg.seed}/{iteration}/{item.image_id}")
            cell = image_cell(images, item.image_id, image, cells)
            for question, qtype, answer, completion in world_questions(item.image_id, cc.samples_per_image, rng):
                rows.append({"image_id": item.image_id, "image": cell, "raw": None, "question": question,
                             "qtype": qtype, "questioner_answer": None, "votes": None, "silver_answer": answer,
                             "confidence": None, "kept": True, "reason": "", "true_completion": completion})
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    table = table.append_column("oracle_answer", pa.array([r["silver_answer"] for r in rows], pa.string()))
    table = table.append_column("true_completion", pa.array([r["true_completion"] for r in rows], pa.string()))
    # Run on rank 0 alone (evolve's ``alone=True``; the world's questions need no model): it writes the
    # file, and evolve's stage boundary makes every rank wait for it.
    with atomic_path(run.questions_path(iteration)) as tmp:
        pq.write_table(table, tmp)
    summary = {"candidates": len(rows), "kept": len(rows), "validity": 1.0, "mean_confidence": float("nan"),
               "drop_reasons": {}, "images": len(pixels), "skipped_images": len(images.skipped),
               "source": "world-oracle", "answers": dict(Counter(r["silver_answer"] for r in rows).most_common(12)),
               **timer.as_metrics()}
    run.log_metrics({"stage": f"iter{iteration:02d}/curation", "event": "stage_done", "iteration": iteration,
                     **summary})
    return summary
