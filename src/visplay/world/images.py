"""Unlabeled toy images: a folder of PNGs, the same kind of folder a user would point ``evolve`` at.

The folder holds ``image_00000.png``, ``image_00001.png``, ... and nothing else: no labels, no scenes, no
manifest, so training can only ever read pixels. Analysis can still recover every image's scene:
image ``i`` written with seed ``s`` shows ``scene_for(s, i)`` (a pure function), and the index is in the
file name (:func:`image_index`). All these scenes come from the training split, never the benchmark's.

With a shift (``visplay.world.shift``) each image is rendered and then shifted, deterministically per scene,
so the folder shows the same scenes through a different camera; without one the bytes are today's.

The folder is written beside its final place and renamed into it when complete, so a kill leaves no
half-written folder. An existing non-empty folder is refused rather than mixed into: a folder holding
images from two seeds (or foreign files) could not be mapped back to scenes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tqdm import tqdm

from visplay.data.codec import png_bytes
from visplay.io import atomic_dir
from visplay.world.scenes import Scene, scene_for
from visplay.world.shift import Shift, render_shifted

_NAME = re.compile(r"image_(\d+)\.png")


def image_name(index: int, n: int) -> str:
    """File name of image ``index`` in a folder of ``n``: zero-padded so names sort in index order.

    >>> image_name(7, 1000), image_name(7, 200000)
    ('image_00007.png', 'image_000007.png')
    """
    return f"image_{index:0{max(5, len(str(n - 1)))}d}.png"


def image_index(path: str | os.PathLike) -> int:
    """The index carried by an image's file name.

    >>> image_index("/data/toy/image_00042.png")
    42
    """
    m = _NAME.fullmatch(Path(path).name)
    if m is None:
        raise ValueError(f"not a toy image file name: {path}")
    return int(m.group(1))


def scene_of_image(path: str | os.PathLike, seed: int) -> Scene:
    """The scene shown by an image that :func:`write_images` wrote with ``seed`` (for analysis only)."""
    return scene_for(seed, image_index(path))


def write_images(out_dir: str | os.PathLike, n: int, seed: int = 0, progress: bool = False,
                 shift: Shift | None = None) -> Path:
    """Write ``n`` unlabeled PNGs of training-split scenes into ``out_dir`` (which must be absent or empty),
    each under ``shift`` when one is given (one stage: a folder has one camera)."""
    out_dir = Path(out_dir)
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an empty folder; choose a new one")
    with atomic_dir(out_dir) as tmp:
        for index in tqdm(range(n), desc="images", unit="img", disable=not progress):
            (tmp / image_name(index, n)).write_bytes(png_bytes(render_shifted(scene_for(seed, index), shift)))
    return out_dir
