"""What the run report reads from a run folder: each reader returns plain data and is lenient where the
report must still render (a damaged config, undecodable images, model output that is not valid UTF-8)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from visplay.errors import UserError
from visplay.report.html import decode_lenient, esc
from visplay.runfolder import RunFolder

_QUESTION_COLUMNS = ["image_id", "image", "raw", "question", "votes", "silver_answer", "confidence", "kept", "reason",
                     "oracle_answer"]


def read_config_text(run: RunFolder) -> str:
    return run.config_path.read_text(encoding="utf-8", errors="backslashreplace")


def read_config(run: RunFolder) -> dict:
    try:
        data = yaml.safe_load(read_config_text(run))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def read_questions(path: Path) -> list[dict]:
    """Rows of a questions.parquet; text columns are read as bytes and decoded leniently, because model
    output may hold bytes that are not valid UTF-8 (they become ``\\xNN``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_ = pq.read_table(path)
    names = [c for c in _QUESTION_COLUMNS if c in table_.column_names]
    table_ = table_.select(names)
    fields = []
    for f in table_.schema:
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            fields.append(pa.field(f.name, pa.binary()))
        elif pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type):
            fields.append(pa.field(f.name, pa.list_(pa.binary())))
        else:
            fields.append(f)
    rows = table_.cast(pa.schema(fields)).to_pylist()
    for r in rows:
        for key, value in r.items():
            if isinstance(value, bytes) and key != "image":
                r[key] = decode_lenient(value)
            elif isinstance(value, list):
                r[key] = [decode_lenient(v) if isinstance(v, bytes) else v for v in value]
        r.setdefault("oracle_answer", None)
    return rows


def read_eval_summaries(run: RunFolder) -> dict[int, dict[str, dict]]:
    """Benchmark summaries by model: 0 = the base model (``RUN/eval/base``), i = iteration i's reasoner
    (``RUN/iter_XX/eval``, else ``RUN/eval/iter_XX`` as written by ``visplay eval --run``). A shifted demo's
    clean scores (``eval/clean/<benchmark>``) come as ``<benchmark>_clean`` (the table's clean acc column)."""
    folders: dict[int, list[Path]] = {0: [run.root / "eval" / "base"]}
    for i in run.iterations_on_disk():
        folders[i] = [run.eval_dir(i), run.root / "eval" / run.iter_dir(i).name]
    out: dict[int, dict[str, dict]] = {}
    for i, candidates in folders.items():
        for folder in candidates:
            found = [(f, "") for f in sorted(folder.glob("*/summary.json"))] if folder.is_dir() else []
            found += [(f, "_clean") for f in sorted(folder.glob("clean/*/summary.json"))] if folder.is_dir() else []
            for f, suffix in found:
                try:
                    summary = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(summary, dict):
                    out.setdefault(i, {}).setdefault((summary.get("benchmark") or f.parent.name) + suffix, summary)
    return out


def resolve_image(cell, run: RunFolder, config: dict, image_id: str):
    """The PIL image of a questions.parquet ``image`` cell (PNG bytes or a path), or None when unreadable.

    A path is tried as stored, then under the run folder and under the configured image folder, so a
    report can be rebuilt after the run folder moved."""
    from visplay.data.codec import decode_image

    if not isinstance(cell, dict):
        return None
    if cell.get("bytes"):
        try:
            return decode_image(cell["bytes"])
        except ValueError:
            return None
    path = decode_lenient(cell.get("path"))
    if not path:
        return None
    images_dir = (config.get("data") or {}).get("images") if isinstance(config.get("data"), dict) else None
    candidates = [Path(path), run.root / path]
    if images_dir:
        candidates += [Path(str(images_dir)) / image_id, run.root / str(images_dir) / image_id]
    for candidate in candidates:
        if candidate.is_file():
            try:
                return decode_image(str(candidate))
            except ValueError:
                return None
    return None


def read_audit_html(run: RunFolder) -> str:
    """The silver-label audit section (toy-world runs only: it needs oracle answers), or a note when the
    questions files cannot be audited."""
    from visplay.analysis.audit import audit_html, audit_run

    try:
        return audit_html(audit_run(run.root))
    except (UserError, UnicodeDecodeError, OSError) as exc:
        return f"<p class='note'>Silver-label audit unavailable: {esc(exc)}</p>"
