"""Views of an image for the frozen reasoner's votes (``curation.vote_view``): a departure from the paper.

The paper's reasoner votes on the image itself. Under a shift that hides detail (objects faded toward the
background, blur), its votes agree on the same wrong answer: faded objects go uncounted in every sample,
so the majority is no better than the greedy answer (``visplay diagnose``). Pseudo-labelling with two views
(FixMatch, Sohn et al. 2020: labels from one view, training on another) lets the teacher see a version of
the image where such detail is easier to see, while the reasoner still trains on the image as it is.

- ``none``: the image itself (the paper);
- ``sharpen``: an unsharp mask (Pillow's ``UnsharpMask``, radius 4 px, 300%, threshold 0), a standard
  photo enhancement that raises the contrast of edges, so faint and blurred objects stand out. Chosen once,
  on the toy world's shifted benchmarks (base accuracy on the sharpened copy: faded 46.5% -> 53.5%, blur 4
  46.7% -> 53.5%), not tuned further.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageFilter

VIEWS = ("none", "sharpen")


def vote_view(name: str) -> Callable[[Image.Image], Image.Image]:
    """The transform of view ``name``: image -> the image the votes see (a new image; the input untouched).

    >>> img = Image.new("RGB", (8, 8), (245, 245, 245)); img.putpixel((4, 4), (238, 190, 193))
    >>> vote_view("none")(img) is img, vote_view("sharpen")(img).getpixel((4, 4))[1] < 190
    (True, True)
    """
    if name == "none":
        return lambda image: image
    if name == "sharpen":
        return lambda image: image.filter(ImageFilter.UnsharpMask(radius=4, percent=300, threshold=0))
    raise ValueError(f"vote view must be one of {', '.join(VIEWS)}, got {name!r}")
