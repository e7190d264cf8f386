"""Rendering scenes to 112x112 RGB images with Pillow: flat colours, no antialiasing, same scene -> same pixels.

Every pixel is either exactly the background (245, 245, 245) or exactly one object's palette colour, so a
model that normalises the background to 0 sees nothing but the objects. Each object is drawn centred in
its 28 px cell (plus its jitter) and stays at least 1 px inside the cell, so objects never touch.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from visplay.world.scenes import CELL, GRID, Obj, Scene, describe  # noqa: F401  (describe: the text twin of render)

IMAGE_SIZE = GRID * CELL  # 112
BACKGROUND: tuple[int, int, int] = (245, 245, 245)
#: Saturated and well separated: every pair differs by at least ~95 in RGB distance, and every colour is
#: far from the light background (yellow is the closest, through its missing blue channel).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 25, 35),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 0),
    "purple": (140, 40, 190),
    "orange": (245, 125, 0),
}
#: Object width and height in pixels. Large = 22: with a jitter of 2 it spans cell pixels 1..26 at worst.
SIZE_PX: dict[str, int] = {"small": 12, "large": 22}


def object_box(obj: Obj) -> tuple[int, int, int, int]:
    """The inclusive pixel box ``(x0, y0, x1, y1)`` an object is drawn in.

    >>> object_box(Obj("circle", "red", "large", 0, 0))
    (3, 3, 24, 24)
    >>> object_box(Obj("circle", "red", "small", 1, 2, dx=2, dy=-2))
    (66, 34, 77, 45)
    """
    side = SIZE_PX[obj.size]
    half = side // 2
    cx = obj.col * CELL + CELL // 2 + obj.dx
    cy = obj.row * CELL + CELL // 2 + obj.dy
    return (cx - half, cy - half, cx - half + side - 1, cy - half + side - 1)


def render(scene: Scene) -> Image.Image:
    """The scene as a 112x112 RGB image.

    >>> from visplay.world.scenes import Obj, Scene
    >>> img = render(Scene((Obj("circle", "red", "large", 0, 0),)))
    >>> img.size, img.getpixel((0, 0)), img.getpixel((14, 14))
    ((112, 112), (245, 245, 245), (215, 25, 35))
    """
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)  # ImageDraw never antialiases: pixels are exactly palette colours
    for obj in scene.objects:
        x0, y0, x1, y1 = object_box(obj)
        fill = PALETTE[obj.color]
        if obj.shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif obj.shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:  # triangle pointing up: apex at the top middle, base along the bottom row
            draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=fill)
    return image

