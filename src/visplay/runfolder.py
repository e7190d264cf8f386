"""The run folder contract (docs/run_folder.md) and its state file.

```
RUN/config.yaml                   resolved config, every default written out
RUN/state.json                    last completed stage per iteration, with its summary and `processes` (resume reads this)
RUN/metrics.jsonl                 one JSON object per logged training step / stage summary
RUN/iter_01/questioner/           HF checkpoint
RUN/iter_01/questions.parquet     every candidate question
RUN/iter_01/reasoner/             HF checkpoint
RUN/iter_01/eval/                 benchmark results after this iteration (when configured)
RUN/report.html                   the run report
```

Every file and checkpoint is written under a temporary name and renamed, and a stage is marked done in
state.json only after its outputs are in place; so after a kill, resuming redoes at most the stage that
was interrupted.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from visplay.io import append_jsonl, atomic_path, json_safe, write_json_atomic
from visplay.runread import read_metrics, read_state, unfinished_lines

STAGES = ("questioner", "curation", "reasoner", "eval")


class RunFolder:
    """Paths, state and metrics of one run folder.

    ``writer=False`` (the ranks other than 0 of a multi-process run) reads the folder but never writes
    state.json or metrics.jsonl: one process owns them.
    """

    def __init__(self, root: str | Path, writer: bool = True):
        self.root = Path(root)
        self.writer = writer

    # --- paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    def iter_dir(self, iteration: int) -> Path:
        return self.root / f"iter_{iteration:02d}"

    def questioner_dir(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "questioner"

    def reasoner_dir(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "reasoner"

    def questions_path(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "questions.parquet"

    def eval_dir(self, iteration: int) -> Path:
        return self.iter_dir(iteration) / "eval"

    def iterations_on_disk(self) -> list[int]:
        out = []
        for p in sorted(self.root.glob("iter_*")):
            try:
                out.append(int(p.name.split("_", 1)[1]))
            except ValueError:
                continue
        return out

    # --- state ---------------------------------------------------------------------------------
    def load_state(self) -> dict:
        """state.json, checked (a damaged file is a one-line UserError); missing = nothing finished."""
        return read_state(self.state_path)

    def is_done(self, iteration: int, stage: str) -> bool:
        return stage in self.load_state()["iterations"].get(str(iteration), {})

    def stage_info(self, iteration: int, stage: str) -> dict | None:
        return self.load_state()["iterations"].get(str(iteration), {}).get(stage)

    def mark_done(self, iteration: int, stage: str, info: dict[str, Any] | None = None) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage}")
        if not self.writer:
            return
        state = self.load_state()
        entry = json_safe(dict(info or {}))
        entry["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        state["iterations"].setdefault(str(iteration), {})[stage] = entry
        state["last_completed"] = {"iteration": iteration, "stage": stage}
        write_json_atomic(self.state_path, state)

    # --- metrics -------------------------------------------------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line; each line is written whole with one write call and flushed."""
        if not self.writer:
            return
        append_jsonl(self.metrics_path, record)

    def read_metrics(self) -> list[dict]:
        """Every complete JSON object of metrics.jsonl (a line cut by a kill or damaged is skipped)."""
        return read_metrics(self.metrics_path)

    def drop_unfinished_metrics(self) -> int:
        """On resume: remove the metrics lines of stages state.json does not mark done; returns how many.

        The interrupted attempt of a stage logged step lines that its redone attempt logs again; keeping
        both would show the stage twice in every curve. The file is rewritten atomically.
        """
        if not self.metrics_path.is_file():
            return 0
        kept, dropped = unfinished_lines(self.metrics_path.read_bytes(), self.load_state())
        if dropped:
            with atomic_path(self.metrics_path) as tmp:
                tmp.write_bytes(kept)
        return dropped

    def clean_partial(self) -> list[Path]:
        """Remove temporary leftovers of an interrupted write (``.NAME.*.tmp``)."""
        removed = []
        for p in list(self.root.rglob(".*.tmp")) + list(self.root.rglob(".*.old")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

