"""Reading a run folder's files defensively: what a damaged file looks like, said in one line.

A run folder is the user's data: it may have been copied half, edited by hand, or written by another
tool. Everything that reads state.json, metrics.jsonl, questions.parquet or config.yaml for the report or a
resume goes through here, so a damaged file is named (with the line or column at fault) instead of
surfacing as a KeyError or ArrowInvalid deep inside the report. Nothing here writes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from visplay.errors import UserError

# questions.parquet columns the report and the reasoner stage read, with the Arrow type families allowed
# ("null" is the type of a column written with no value at all).
QUESTION_COLUMNS = {
    "image_id": "string",
    "raw": "string",
    "question": "string",
    "votes": "list<string>",
    "silver_answer": "string",
    "confidence": "float",
    "kept": "bool",
    "reason": "string",
}
OPTIONAL_QUESTION_COLUMNS = {"oracle_answer": "string", "qtype": "string", "questioner_answer": "string"}

_STAGE = re.compile(r"^iter(\d+)/(\w+)$")


def _damaged(path: Path, what: str) -> UserError:
    return UserError(f"{path} is damaged: {what}")


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise UserError(f"{path} is a folder; expected a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc.__class__.__name__})") from None


# --- state.json ------------------------------------------------------------------------------------


def parse_state(text: str, path: Path) -> dict:
    """state.json's content, checked: ``{"iterations": {"<int>": {"<stage>": {...}}}, ...}``.

    >>> parse_state('{"iterations": {"1": {"questioner": {"images": 4}}}}', Path("state.json"))["iterations"]["1"]
    {'questioner': {'images': 4}}
    >>> parse_state('[1]', Path("state.json"))
    Traceback (most recent call last):
    visplay.errors.UserError: state.json is damaged: a JSON list, not an object
    """
    try:
        state = json.loads(text)
    except ValueError:
        raise _damaged(path, "not valid JSON") from None
    if not isinstance(state, dict):
        raise _damaged(path, f"a JSON {_json_kind(state)}, not an object")
    iterations = state.setdefault("iterations", {})
    if not isinstance(iterations, dict):
        raise _damaged(path, f"'iterations' is a JSON {_json_kind(iterations)}, not an object")
    for key, stages in iterations.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) >= 1):
            raise _damaged(path, f"iteration key {key!r} is not a positive integer")
        if not isinstance(stages, dict):
            raise _damaged(path, f"iteration {key} is a JSON {_json_kind(stages)}, not an object")
        for stage, info in stages.items():
            if not isinstance(info, dict):
                raise _damaged(path, f"stage {stage!r} of iteration {key} is a JSON {_json_kind(info)}, not an object")
    return state


def read_state(path: str | os.PathLike) -> dict:
    """state.json checked by :func:`parse_state`; a missing file is a run with nothing finished yet."""
    path = Path(path)
    if not os.path.lexists(path):
        return {"iterations": {}}
    return parse_state(_read_text(path), path)


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean", dict: "object"}.get(
        type(value), "null" if value is None else type(value).__name__)


# --- metrics.jsonl ---------------------------------------------------------------------------------


def read_metrics(path: str | os.PathLike, strict: bool = False) -> list[dict]:
    """The JSON objects of metrics.jsonl, in order.

    The last line may have been cut by a kill (no newline at its end): it is dropped silently. Any other
    line that is not a JSON object is damage: with ``strict`` it raises UserError naming the line,
    otherwise it is skipped.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return []
    if path.is_dir():
        raise UserError(f"{path} is a folder; expected a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc.__class__.__name__})") from None
    lines = data.split(b"\n")
    cut = lines.pop() if lines else b""  # after the last newline: empty, or a line cut by a kill
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record = _json_object(raw)
        problem = "not a JSON object" if record is None else _record_problem(record)
        if problem:
            if strict:
                raise _damaged(path, f"line {number} is {problem}")
            continue
        records.append(record)
    if cut.strip():
        record = _json_object(cut)
        if record is not None:
            records.append(record)
    return records


def _record_problem(record: dict) -> str | None:
    """Why a JSON object cannot be a metrics line (the report groups by stage and plots step values).

    >>> _record_problem({"event": "step", "stage": "iter01/reasoner", "reward_mean": 0.5}) is None
    True
    >>> _record_problem({"event": "step", "stage": "iter01/reasoner", "kl": "high"})
    "a step line whose 'kl' is not a number"
    """
    for key in ("stage", "event"):
        if key in record and not isinstance(record[key], str):
            return f"a line whose {key!r} is not a string"
    if record.get("event") == "step":
        for key, value in record.items():
            if key not in ("stage", "event") and value is not None and not isinstance(value, (int, float)):
                return f"a step line whose {key!r} is not a number"
    return None


def _json_object(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def stage_of(record: dict) -> tuple[int, str] | None:
    """(iteration, stage) of a metrics line written by a stage, e.g. ``iter01/questioner`` -> (1, "questioner").

    >>> stage_of({"stage": "iter02/reasoner", "event": "step"}), stage_of({"event": "other"})
    ((2, 'reasoner'), None)
    """
    match = _STAGE.match(str(record.get("stage", "")))
    return (int(match.group(1)), match.group(2)) if match else None


def unfinished_lines(data: bytes, state: dict) -> tuple[bytes, int]:
    """metrics.jsonl without the lines of stages that state.json does not mark done; (kept bytes, dropped).

    Used on resume: the interrupted attempt's step lines would otherwise stay beside the redone stage's,
    and every curve would show that stage twice. Lines that are not a stage's (or not JSON) are kept, and
    a last line cut by a kill is dropped.

    >>> data = b'{"stage": "iter01/questioner", "step": 1}\\n{"stage": "iter01/reasoner", "step": 1}\\n{"stage": "iter01/rea'
    >>> unfinished_lines(data, {"iterations": {"1": {"questioner": {}}}})
    (b'{"stage": "iter01/questioner", "step": 1}\\n', 2)
    """
    lines = data.split(b"\n")
    cut = lines.pop() if lines else b""
    if cut.strip() and _json_object(cut) is not None:
        lines.append(cut)  # whole after all, only its newline is missing
    elif cut.strip():
        cut = None
    done = state.get("iterations", {})
    kept, dropped = [], 0 if cut is not None else 1
    for raw in lines:
        record = _json_object(raw) if raw.strip() else None
        where = stage_of(record) if record is not None else None
        if where is not None and where[1] not in done.get(str(where[0]), {}):
            dropped += 1
            continue
        kept.append(raw + b"\n")
    return b"".join(kept), dropped


# --- config.yaml -----------------------------------------------------------------------------------


def read_config(path: str | os.PathLike) -> tuple[str, dict]:
    """config.yaml's text and its mapping; UserError when it is missing, binary or not a YAML mapping."""
    import yaml

    path = Path(path)
    if not os.path.lexists(path):
        raise UserError(f"{path.parent} is not a VisPlay run folder (no config.yaml)")
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise _damaged(path, "not valid YAML") from None
    if not isinstance(data, dict):
        raise _damaged(path, "not a mapping of settings")
    return text, data


def relocate(value, old_root: str, new_root: str):
    """``value`` with every path string under ``old_root`` moved under ``new_root`` (nested dicts/lists).

    A run folder may be moved or copied: the folder is the run, so paths inside it (the demo keeps its
    model, images and benchmark there) follow it.

    >>> relocate({"out": "runs/a", "model": {"path": "runs/a/world/base"}, "x": "runs/ab"}, "runs/a", "/new")
    {'out': '/new', 'model': {'path': '/new/world/base'}, 'x': 'runs/ab'}
    """
    if isinstance(value, dict):
        return {k: relocate(v, old_root, new_root) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, old_root, new_root) for v in value]
    if isinstance(value, str) and value:
        old, norm = os.path.normpath(old_root), os.path.normpath(value)
        if norm == old:
            return new_root
        if norm.startswith(old.rstrip(os.sep) + os.sep):
            return os.path.join(new_root, os.path.relpath(norm, old))
    return value


# --- questions.parquet -----------------------------------------------------------------------------


def _type_family(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = _type_family(arrow_type.value_type)
        return "list<string>" if inner in ("string", "null") else f"list<{inner}>"
    return str(arrow_type)


def check_questions(path: str | os.PathLike) -> None:
    """Raise UserError unless ``path`` is a readable questions.parquet with the columns the report reads."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; expected a parquet file")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a cut or foreign file
        raise _damaged(path, f"not a readable parquet file ({exc.__class__.__name__})") from None
    wanted = {**QUESTION_COLUMNS, **{k: v for k, v in OPTIONAL_QUESTION_COLUMNS.items() if k in schema.names}}
    missing = [name for name in QUESTION_COLUMNS if name not in schema.names]
    if missing:
        raise _damaged(path, f"missing column(s) {', '.join(missing)}")
    for name, family in wanted.items():
        found = _type_family(schema.field(name).type)
        if found != family and found != "null":
            raise _damaged(path, f"column {name} holds {found}, expected {family}")
    try:  # the footer can be fine while a data page is cut or garbled: read what the report reads
        pq.read_table(path, columns=list(wanted))
    except Exception as exc:  # noqa: BLE001
        raise _damaged(path, f"its data cannot be read ({exc.__class__.__name__})") from None


# --- the whole folder, for the report --------------------------------------------------------------


def check_run_for_report(root: str | os.PathLike) -> None:
    """Everything ``visplay report`` reads and writes, checked before it starts; UserError on the first fault."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"run folder {root} does not exist")
    if not root.is_dir():
        raise UserError(f"run folder {root} is a file; give the run's folder")
    read_config(root / "config.yaml")
    read_state(root / "state.json")
    read_metrics(root / "metrics.jsonl", strict=True)
    for folder in sorted(root.glob("iter_*")):
        questions = folder / "questions.parquet"
        if os.path.lexists(questions):
            check_questions(questions)
    report = root / "report.html"
    if os.path.lexists(report) and report.is_dir():
        raise UserError(f"{report} is a folder; move it away so the report can be written")
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the report into {root}: permission denied or a read-only file system")
