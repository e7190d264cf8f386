"""Benchmark files on disk: parquet or JSONL rows, images as bytes, paths, base64 or HF image structs.

Accepted inputs for ``--data``:
- one ``.parquet``, ``.jsonl`` or ``.json`` (a list of objects) file;
- a folder of ``.parquet`` / ``.jsonl`` files (a Hugging Face snapshot): only files of the benchmark's
  split are read, e.g. ``validation-*.parquet`` for MMMU (``--split`` picks another); a folder holding a
  single data file is read whatever its name.
Images may be PIL images, raw bytes, ``{"bytes": ..., "path": ...}`` structs (how ``datasets`` stores
an Image feature in parquet), base64 strings or data URIs, or file paths (absolute, or relative to the
data file's folder). Rows are read eagerly; images are decoded only when an item is sent to the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from visplay.data.codec import decode_image
from visplay.errors import UserError
from visplay.evaluation.base import Benchmark, Item


def _read_file(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        if suffix == ".jsonl":
            rows = []
            with path.open(encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except ValueError:
                            raise UserError(f"{path}:{lineno} is not valid JSON") from None
            return rows
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise UserError(f"{path} holds a JSON {type(data).__name__}; expected a list of objects")
            return data
    except UserError:
        raise
    except Exception as exc:  # pyarrow and json raise many types for unreadable files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"cannot read {path}: {exc.__class__.__name__}: {first}") from None
    raise UserError(f"{path}: unsupported file type {suffix!r}; give a .parquet, .jsonl or .json file")


def find_data_files(path: Path, split: str | None) -> list[Path]:
    """The data files under ``path`` (a file or a folder), restricted to ``split`` for folders."""
    if not path.exists():
        raise UserError(f"benchmark data {path} does not exist")
    if path.is_file():
        return [path]
    # In folders only .parquet and .jsonl count: snapshots also hold .json metadata (dataset_info.json).
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".jsonl")
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise UserError(f"{path} holds no .parquet or .jsonl files")
    if split is None or len(files) == 1:
        return files
    # Hub shard names: "validation-00000-of-00001.parquet" or "testmini.parquet" (not "testmini_text_only").
    pattern = re.compile(rf"^{re.escape(split)}(?:-\d|\.)", re.IGNORECASE)
    in_split_folder = lambda p: split.lower() in (q.lower() for q in p.relative_to(path).parts[:-1])  # noqa: E731
    chosen = [p for p in files if pattern.match(p.name) or in_split_folder(p)]
    if not chosen:
        names = ", ".join(sorted({p.name for p in files})[:8])
        raise UserError(f"no {split!r} files under {path} (found: {names}); pass --split or a single file")
    return chosen


def read_rows(path: str | Path, split: str | None = None) -> list[dict]:
    """All rows of the data files at ``path`` (see :func:`find_data_files`)."""
    rows: list[dict] = []
    for file in find_data_files(Path(path), split):
        for row in _read_file(file):
            if not isinstance(row, dict):
                raise UserError(f"{file}: rows must be objects, found {type(row).__name__}")
            row.setdefault("__dir__", str(file.parent))
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------


def image_refs(value: Any) -> list[Any]:
    """A cell holding zero, one or several images, as a flat list of references.

    >>> image_refs(None), len(image_refs([b"x", None, {"bytes": b"y", "path": None}]))
    ([], 2)
    """
    if value is None:
        return []
    if hasattr(value, "tolist") and not isinstance(value, (bytes, bytearray)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None and not (isinstance(v, dict) and not v.get("bytes") and not v.get("path"))]
    if isinstance(value, dict) and not value.get("bytes") and not value.get("path"):
        return []
    if isinstance(value, str) and not value.strip():
        return []
    return [value]


def check_images(data: BenchmarkData) -> None:
    """Decode every image of every item once, before a model loads: a broken image fails the run at its
    start, in one line naming the item, not hours into generation."""
    for item in data.items:
        item_images(item)


def item_images(item: Item) -> list[Image.Image]:
    base_dir = item.meta.get("__dir__")
    images = []
    for ref in item.images:
        try:
            images.append(decode_image(ref, base_dir))
        except ValueError as exc:  # ImageDecodeError: a broken benchmark image stops the evaluation
            raise UserError(f"item {item.id}: {exc}") from None
    return images


# --------------------------------------------------------------------------------------------------
# Loading a benchmark
# --------------------------------------------------------------------------------------------------


def _norm_name(value: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


@dataclass
class BenchmarkData:
    """The items of one benchmark read from one ``--data`` path."""

    benchmark: Benchmark
    items: list[Item]
    path: Path
    layout: str  # "native" or "combined"
    n_loaded: int  # items before --limit
    variant: str | None = None
    warnings: list[str] = field(default_factory=list)


def load_benchmark(name: str | Benchmark, path: str | Path, split: str | None = None, subset: str | None = None,
                   limit: int | None = None) -> BenchmarkData:
    """Read ``path`` and build the items of benchmark ``name`` (native HF layout or the combined layout)."""
    from visplay.evaluation.benchmarks import get_benchmark

    bench = get_benchmark(name) if isinstance(name, str) else name
    path = Path(path)
    return benchmark_from_rows(bench, read_rows(path, split if split is not None else bench.default_split), path,
                               subset=subset, limit=limit)


def benchmark_from_rows(bench: Benchmark, rows: list[dict], path: Path, subset: str | None = None,
                        limit: int | None = None) -> BenchmarkData:
    """The items of ``bench`` from rows already in memory (``path`` names where they came from); what
    :func:`load_benchmark` does after reading, also used for rows built on the fly (the toy world check)."""
    if not rows:
        raise UserError(f"{path} has no rows")
    columns = set().union(*(row.keys() for row in rows[:50]))
    warnings: list[str] = []
    combined = "problem" in columns and not set(bench.native_columns) <= columns
    if combined:
        layout = "combined"
        if "file_name" in columns:
            names = {bench.name, *bench.combined_names}
            selected = [r for r in rows if _norm_name(r.get("file_name", "")) in names]
            if not selected:
                found = sorted({str(r.get("file_name")) for r in rows})
                raise UserError(
                    f"{path}: no rows with file_name for {bench.name} (file_name values: {', '.join(found[:20])})"
                )
            rows = selected
        make = bench.item_from_combined
        variant = None
    else:
        missing = [c for c in bench.native_columns if c not in columns]
        if missing:
            raise UserError(
                f"{path} does not look like {bench.title or bench.name}: missing column(s) {', '.join(missing)} "
                f"(found {', '.join(sorted(c for c in columns if c != '__dir__')[:15])}); "
                f"expected {bench.sources or 'the release layout'} "
                "or the combined layout (problem, answer, images, file_name)"
            )
        layout = "native"
        rows, variant = bench.filter_rows(rows, subset)
        make = bench.item_from_row
    items: list[Item] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        item = make(row, index)
        item.images = [ref for value in ([item.images] if not isinstance(item.images, list) else item.images)
                       for ref in image_refs(value)]
        item.meta.setdefault("__dir__", row.get("__dir__"))
        count = seen.get(item.id, 0)
        seen[item.id] = count + 1
        if count:
            item.id = f"{item.id}#{count + 1}"
        items.append(item)
    n_loaded = len(items)
    sizes = bench.official_sizes
    if sizes and n_loaded not in sizes.values():
        official = ", ".join(f"{k} {v}" for k, v in sizes.items())
        warnings.append(
            f"{bench.name}: {n_loaded} items in {path.name}, official size is {official}; "
            "numbers will not be comparable to published ones"
        )
    no_image = sum(1 for item in items if not item.images)
    if no_image:
        warnings.append(f"{bench.name}: {no_image} item(s) have no image; they are asked as text only")
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        items = items[:limit]
    return BenchmarkData(bench, items, path, layout, n_loaded, variant, warnings)
