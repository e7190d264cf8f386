"""Turn any decoded image into the RGB image a VLM processor expects.

Datasets carry every PIL mode: RGBA and LA (transparency), P (palettes), L/1 (grey), I;16 (16-bit
scans), I and F (32-bit). The processor only handles 8-bit RGB well, so everything passes through here.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Transparent pixels are shown on white, as a viewer would.
_BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency onto white and rescaling high bit depths.

    >>> to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 0))).getpixel((0, 0))
    (255, 255, 255)
    >>> to_rgb(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0))
    (255, 255, 255)
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 255.0)
        array = np.clip(array / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def fit_pixels(image: Image.Image, min_side: int, max_pixels: int, max_aspect: float = 100.0) -> Image.Image:
    """Resize so the image has at least ``min_side`` px per side and at most ``max_pixels`` pixels.

    Also pads extreme aspect ratios (Qwen's resize refuses ratios above 200). The processor does its own
    exact resize afterwards; this only keeps inputs inside the bounds it accepts.

    >>> fit_pixels(Image.new("RGB", (5, 400)), 28, 28 * 28 * 4).size[0] >= 28
    True
    """
    w, h = image.size
    if max(w, h) / max(1, min(w, h)) > max_aspect:
        side = max(w, h)
        short = int(side / max_aspect) + 1
        canvas = Image.new("RGB", (side if w >= h else short, side if h > w else short), _BACKGROUND)
        canvas.paste(image, (0, 0))
        image = canvas
        w, h = image.size
    if w * h > max_pixels:
        scale = (max_pixels / (w * h)) ** 0.5
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
        image = image.resize((w, h), Image.BICUBIC)
    if min(w, h) < min_side:
        scale = min_side / min(w, h)
        w, h = max(min_side, round(w * scale)), max(min_side, round(h * scale))
        image = image.resize((w, h), Image.BICUBIC)
    return image
