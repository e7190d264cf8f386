"""Unlabeled image sources: a folder, a parquet file, a saved HF dataset.

Training only ever sees :class:`ImageItem` objects: an id and pixels. No labels, captions or answers travel
with an image, so no stage can read an oracle by accident (the toy world's scenes are recovered for
analysis only, from the id, by the world module).

Decoding is defensive (:func:`visplay.data.codec.decode_image`): undecodable or absurdly large images are
skipped, counted and reported, never crash a long run; every mode is converted to RGB by the engine
before it reaches a processor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from visplay.data.codec import decode_image
from visplay.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
IMAGE_COLUMNS = ("images", "image", "img", "image_bytes")


@dataclass(frozen=True)
class ImageItem:
    """One unlabeled image: a stable id and a way to get its pixels. Nothing else."""

    image_id: str
    _loader: Callable[[], Image.Image]

    def load(self) -> Image.Image:
        return self._loader()


class ImageSource(Sequence[ImageItem]):
    """A sequence of :class:`ImageItem`; ``skipped`` lists the images that failed to decode so far.

    An unreadable image is warned about and counted once per run, however many stages pick it: later
    picks skip it without decoding it again.

    ``image_root`` is the folder the images are files in (``image_root / image_id`` is the file), or
    ``None`` when they live inside a parquet file or a dataset: questions.parquet then stores a path to
    each image instead of a copy of its bytes.
    """

    def __init__(self, ids: list[str], fetch: Callable[[int], Any], description: str,
                 image_root: Path | None = None):
        self._ids = ids
        self._fetch = fetch
        self.description = description
        self.image_root = image_root
        self._skipped: dict[str, None] = {}  # ids in the order they failed (a dict: ordered, fast lookup)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def skipped(self) -> list[str]:
        """The ids of the images that failed to decode so far, in the order they failed."""
        return list(self._skipped)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        image_id = self._ids[index]
        return ImageItem(image_id, lambda: decode_image(self._fetch(index)))

    def _skip(self, item: ImageItem, exc: ValueError) -> None:
        if item.image_id not in self._skipped:
            self._skipped[item.image_id] = None
            log.warning("skipping image %s: %s", item.image_id, exc)

    def load_images(self, items: Sequence[ImageItem]) -> list[tuple[ImageItem, Image.Image]]:
        """Decode ``items``, skipping (and recording, once) unreadable ones."""
        out = []
        for item in items:
            if item.image_id in self._skipped:
                continue
            try:
                out.append((item, item.load()))
            except ValueError as exc:
                self._skip(item, exc)
        return out

    def require_readable(self) -> None:
        """Raise :class:`UserError` unless at least one image decodes; stops at the first one that does.

        Run before any work starts, so a source of only broken files fails in one line instead of
        after a model has loaded. Unreadable images met on the way are recorded (and warned once) only
        when a readable one follows; otherwise the error names the first failure.
        """
        if not len(self):
            raise UserError(f"no readable images in {self.description}: it holds none")
        failed: list[tuple[ImageItem, ValueError]] = []
        for index in range(len(self)):
            item = self[index]
            if item.image_id in self._skipped:
                continue
            try:
                item.load()
            except ValueError as exc:
                failed.append((item, exc))
                continue
            for bad, exc in failed:
                self._skip(bad, exc)
            return
        first = f" (first: {failed[0][0].image_id}: {failed[0][1]})" if failed else ""
        raise UserError(f"no readable images in {self.description}: every image failed to decode{first}")


def _folder_source(path: Path) -> ImageSource:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"image folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    ids = [str(p.relative_to(path)) for p in files]
    return ImageSource(ids, lambda i: files[i], f"folder {path} ({len(files)} images)", image_root=path)


def _pick_column(names: Sequence[str], column: str | None, where: str) -> str:
    if column:
        if column not in names:
            raise UserError(f"{where} has no column {column!r} (columns: {', '.join(names)})")
        return column
    for name in IMAGE_COLUMNS:
        if name in names:
            return name
    raise UserError(f"{where} has no image column (looked for {', '.join(IMAGE_COLUMNS)}; set data.image_column)")


def _parquet_source(path: Path, column: str | None) -> ImageSource:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise UserError(f"{path} is not a readable parquet file ({exc.__class__.__name__})") from None
    column = _pick_column(table.column_names, column, str(path))
    values = table.column(column).to_pylist()
    id_column = next((c for c in ("image_id", "id", "file_name") if c in table.column_names), None)
    ids = [str(v) for v in table.column(id_column).to_pylist()] if id_column else [f"{i:06d}" for i in range(len(values))]
    if len(set(ids)) != len(ids):
        ids = [f"{i:06d}" for i in range(len(values))]
    return ImageSource(ids, lambda i: values[i], f"parquet {path} ({len(values)} rows, column {column})")


def _hf_dataset_source(path: Path, column: str | None) -> ImageSource:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"{path} is not a saved Hugging Face dataset ({exc.__class__.__name__})") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else next(iter(ds))
        ds = ds[split]
    column = _pick_column(ds.column_names, column, str(path))
    ds = ds.cast_column(column, datasets.Image(decode=False)) if isinstance(ds.features[column], datasets.Image) else ds
    return ImageSource([f"{i:06d}" for i in range(len(ds))], lambda i: ds[i][column], f"dataset {path} ({len(ds)} rows)")


def open_image_source(path: str | Path, column: str | None = None) -> ImageSource:
    """Open a folder of images, a parquet file, or a dataset saved with ``save_to_disk``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"image source {path} does not exist")
    if path.is_file():
        if path.suffix.lower() == ".parquet":
            return _parquet_source(path, column)
        raise UserError(f"image source {path} must be a folder, a .parquet file or a saved HF dataset folder")
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        return _hf_dataset_source(path, column)
    parquet_files = sorted(path.glob("*.parquet"))
    if parquet_files and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        if len(parquet_files) == 1:
            return _parquet_source(parquet_files[0], column)
        raise UserError(f"{path} holds several parquet files; point data.images at one of them")
    return _folder_source(path)
