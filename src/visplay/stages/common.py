"""What the stages share: picking images, decoding them once, timing phases."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from visplay.data.images import ImageItem, ImageSource


@dataclass
class StageTimer:
    """Named, timed phases (as EasyR1's trainer): ``with timer.phase("generate"): ...``."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def as_metrics(self, prefix: str = "time/") -> dict[str, float]:
        return {f"{prefix}{k}": round(v, 3) for k, v in self.seconds.items()}


def model_options(cfg) -> dict:
    """``load_vlm`` options every stage takes from the run config."""
    return dict(dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code,
                min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)


def pick_images(source: ImageSource, count: int, seed: int, salt: str) -> list[ImageItem]:
    """``count`` images drawn without replacement (cycling when the source is smaller), seeded per stage."""
    rng = random.Random(f"{seed}:{salt}")
    order = list(range(len(source)))
    rng.shuffle(order)
    picked = [order[i % len(order)] for i in range(count)]
    return [source[i] for i in picked]


def decode_once(rows: list[dict]) -> list:
    """The decoded ``image`` of each questions.parquet row, each image decoded once (an image carries
    several questions), in row order."""
    from visplay.data.codec import decode_image

    decoded: dict[str, object] = {}
    for row in rows:
        if row["image_id"] not in decoded:
            decoded[row["image_id"]] = decode_image(row["image"])
    return [decoded[row["image_id"]] for row in rows]

