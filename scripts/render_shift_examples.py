"""Render the example images of docs/shifts.md: one scene, clean and under each documented shift.

    python scripts/render_shift_examples.py [--out docs/img]

Writes ``shift_<name>.png`` per example, 112x112 (the world's own size; the doc lays them out in a table, so
no combined strip: the noisy ones do not compress, and a strip would double the bytes). The scene is built by
hand, so the images depend only on the renderer and the shifts: rerun after changing either, commit what
changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from visplay.world.render import render
from visplay.world.scenes import Obj, Scene
from visplay.world.shift import parse_shift, scene_key

# All six colours and all three shapes in both sizes, so every colour's fate under a shift is visible.
SCENE = Scene((
    Obj("circle", "red", "large", 0, 0),
    Obj("square", "blue", "small", 0, 2),
    Obj("triangle", "yellow", "large", 1, 1),
    Obj("square", "green", "large", 2, 3),
    Obj("triangle", "purple", "small", 3, 0),
    Obj("circle", "orange", "small", 3, 2),
))
# File suffix -> spec, in the order docs/shifts.md shows them.
EXAMPLES: dict[str, str] = {
    "none": "none",
    "contrast_0.35": "contrast:0.35",
    "faded": "faded",
    "contrast_0.2": "contrast:0.2",
    "blur_1.5": "blur:1.5",
    "blur_3": "blur:3",
    "blur_4": "blur:4",
    "noise_0.06": "noise:0.06",
    "noise_0.25": "noise:0.25",
    "dim_0.6": "dim:0.6",
}


def example_images() -> dict[str, Image.Image]:
    clean = render(SCENE)
    return {name: parse_shift(spec).final.apply(clean, scene_key(SCENE)) for name, spec in EXAMPLES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    images = example_images()
    for name, image in images.items():
        image.save(args.out / f"shift_{name}.png", optimize=True)
    total = sum(p.stat().st_size for p in args.out.glob("shift_*.png"))
    print(f"wrote {len(images)} images to {args.out} ({total / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
