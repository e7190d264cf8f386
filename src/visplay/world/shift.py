"""Shifted renders: the toy world seen through a different camera.

A user's own images are never the domain a base model was trained on; test-time adaptation (TENT, Wang et
al. 2021) and gradual domain adaptation (Kumar et al. 2020) start from exactly that gap. A *shift* recreates
it in the toy world: it changes the pixels of a rendered scene *after* :func:`visplay.world.render.render`,
never the scene, so questions and answers stay those of the clean world.

Grammar (see ``docs/shifts.md``)::

    none                                 no shift (also the empty string): today's world
    KIND:AMOUNT[,KIND:AMOUNT...]         one stage; its steps applied left to right
    STAGE>STAGE>...                      a schedule over iterations (stage i for iteration i, then the last)
    NAME                                 a named shift (NAMED_SHIFTS), wherever a stage or a step may be
    NUMBER                               (a later stage) the previous stage's one kind at a new amount

Every shift is deterministic per scene: the same scene under the same shift gives the same pixels in every
process (noise is seeded from a stable hash of the scene's key and the shift's text, never from ``hash()``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from visplay.world.render import BACKGROUND, render

#: kind -> one-line help (the CLI's --shift help and docs/shifts.md list these).
SHIFT_KINDS: dict[str, str] = {
    "contrast": "contrast:A blends objects toward the background, pixel = bg + A*(pixel - bg), 0 < A <= 1 (1 = unchanged)",
    "blur": "blur:R Gaussian blur of radius R px, R >= 0 (0 = unchanged)",
    "noise": "noise:S additive Gaussian pixel noise of sd S*255 per channel, clipped to 0..255, fixed per scene, S >= 0",
    "dim": "dim:F every pixel times F (a darker camera), 0 < F <= 1 (1 = unchanged)",
}
#: name -> the spec it stands for. faded: objects blended 75% toward the background.
NAMED_SHIFTS: dict[str, str] = {"faded": "contrast:0.25"}

GRAMMAR = "none | KIND:AMOUNT[,KIND:AMOUNT...] | STAGE>STAGE..., a later stage may be a bare AMOUNT"
# kind -> (is 0 allowed, the highest amount allowed or None); no kind takes a negative amount. contrast and dim
# scale pixels: 0 would erase the image, and above 1 would add signal, not take it away.
_RANGES: dict[str, tuple[bool, float | None]] = {
    "contrast": (False, 1.0),
    "blur": (True, None),
    "noise": (True, None),
    "dim": (False, 1.0),
}
_IDENTITY: dict[str, float] = {"contrast": 1.0, "blur": 0.0, "noise": 0.0, "dim": 1.0}


def _round_half_up(values: np.ndarray) -> np.ndarray:
    """Round to whole pixel values, halves up (not numpy's half-to-even), and clip to 0..255.

    >>> _round_half_up(np.array([237.5, 192.5, 190.0, -3.0, 300.2])).tolist()
    [238, 193, 190, 0, 255]
    """
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def _contrast(pixels: np.ndarray, amount: float) -> np.ndarray:
    """Blend every pixel toward the background by ``1 - amount``.

    Red (215, 25, 35) at 0.25 over the background 245: 245 - 0.25*30 = 237.5 -> 238, 245 - 0.25*220 = 190,
    245 - 0.25*210 = 192.5 -> 193; the background itself stays 245.

    >>> _contrast(np.array([[[215, 25, 35], [245, 245, 245]]], dtype=np.uint8), 0.25).tolist()
    [[[238, 190, 193], [245, 245, 245]]]
    """
    bg = np.asarray(BACKGROUND, dtype=np.float64)
    return _round_half_up(bg + amount * (pixels.astype(np.float64) - bg))


def _dim(pixels: np.ndarray, amount: float) -> np.ndarray:
    """Every pixel times ``amount``: background 245 * 0.6 = 147, red (215, 25, 35) -> (129, 15, 21).

    >>> _dim(np.array([[[215, 25, 35], [245, 245, 245]]], dtype=np.uint8), 0.6).tolist()
    [[[129, 15, 21], [147, 147, 147]]]
    """
    return _round_half_up(pixels.astype(np.float64) * amount)


def _blur(pixels: np.ndarray, amount: float) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(amount)))


def noise_seed(key: str, spec: str) -> int:
    """The noise generator's seed: a stable hash (sha256, unlike ``hash()`` the same in every process).

    >>> noise_seed("scene", "noise:0.1") == noise_seed("scene", "noise:0.1") != noise_seed("other", "noise:0.1")
    True
    """
    return int.from_bytes(hashlib.sha256(f"visplay/shift/{spec}/{key}".encode()).digest()[:8], "little")


def _noise(pixels: np.ndarray, amount: float, key: str, spec: str) -> np.ndarray:
    rng = np.random.default_rng(noise_seed(key, spec))
    return _round_half_up(pixels.astype(np.float64) + rng.normal(0.0, amount * 255.0, size=pixels.shape))


def _fmt(amount: float) -> str:
    """An amount as the canonical spec writes it: ``:g``, or the exact repr where ``:g``'s six digits would
    lose precision (so that the spec parses back to the same amount).

    >>> _fmt(0.25), _fmt(3.0), _fmt(1e-7), _fmt(0.123456789)
    ('0.25', '3', '1e-07', '0.123456789')
    """
    short = f"{amount:g}"
    return short if float(short) == amount else repr(float(amount))


@dataclass(frozen=True)
class Shift:
    """One stage of a shift: ``((kind, amount), ...)`` applied left to right; the empty tuple is no shift.

    >>> s = Shift((("contrast", 0.25),))
    >>> s.spec(), s.is_none, Shift(()).spec()
    ('contrast:0.25', False, 'none')
    >>> img = Image.new("RGB", (2, 1), (215, 25, 35))
    >>> s.apply(img, "any").getpixel((0, 0)), img.getpixel((0, 0))
    ((238, 190, 193), (215, 25, 35))
    """

    steps: tuple[tuple[str, float], ...]

    @property
    def is_none(self) -> bool:
        return not self.steps

    def spec(self) -> str:
        """The canonical text (``parse_shift(s.spec())`` gives this stage back)."""
        return ",".join(f"{kind}:{_fmt(amount)}" for kind, amount in self.steps) or "none"

    def __str__(self) -> str:
        return self.spec()

    def apply(self, image: Image.Image, key: str) -> Image.Image:
        """A new RGB image: ``image`` (untouched) under this shift. ``key`` names the scene (:func:`scene_key`);
        only noise reads it, so that the same scene always gets the same noise and two scenes different noise."""
        if self.is_none:
            return image.convert("RGB")  # convert always returns a new image
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        spec = self.spec()
        for kind, amount in self.steps:
            if kind not in SHIFT_KINDS:  # parse_shift lets no other kind through; a hand-built Shift might
                raise ValueError(f"unknown shift kind {kind!r}; known: {', '.join(SHIFT_KINDS)}")
            if amount == _IDENTITY[kind]:
                continue  # exactly unchanged, not merely rounded back to the same values
            if kind == "contrast":
                pixels = _contrast(pixels, amount)
            elif kind == "dim":
                pixels = _dim(pixels, amount)
            elif kind == "blur":
                pixels = _blur(pixels, amount)
            else:
                pixels = _noise(pixels, amount, key, spec)
        return Image.fromarray(np.ascontiguousarray(pixels))


@dataclass(frozen=True)
class ShiftSchedule:
    """Shifts over iterations: iteration i (1-based) sees stage i, iterations past the last see the last.

    >>> sched = parse_shift("contrast:0.5>0.25")
    >>> sched.spec(), sched.final.spec(), sched.is_gradual, sched.is_none
    ('contrast:0.5>contrast:0.25', 'contrast:0.25', True, False)
    >>> [sched.for_iteration(i).spec() for i in (1, 2, 3)]
    ['contrast:0.5', 'contrast:0.25', 'contrast:0.25']
    """

    stages: tuple[Shift, ...]

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a shift schedule needs at least one stage")

    @property
    def final(self) -> Shift:
        """The benchmark's shift: the last stage, where the schedule ends up."""
        return self.stages[-1]

    @property
    def is_none(self) -> bool:
        return all(stage.is_none for stage in self.stages)

    @property
    def is_gradual(self) -> bool:
        return len(self.stages) > 1

    def for_iteration(self, iteration: int) -> Shift:
        if iteration < 1:
            raise ValueError(f"iterations count from 1, not {iteration}")
        return self.stages[min(iteration, len(self.stages)) - 1]

    def spec(self) -> str:
        return ">".join(stage.spec() for stage in self.stages)

    def __str__(self) -> str:
        return self.spec()


def _error(text: str, problem: str) -> ValueError:
    names = ", ".join(NAMED_SHIFTS)
    return ValueError(f"bad shift {text!r}: {problem} (grammar: {GRAMMAR}; kinds: {', '.join(SHIFT_KINDS)}; "
                      f"names: {names})")


def _parse_amount(text: str, kind: str, raw: str) -> float:
    try:
        amount = float(raw)
    except ValueError:
        raise _error(text, f"the amount {raw!r} of {kind} is not a number") from None
    if not math.isfinite(amount):
        raise _error(text, f"the amount {raw!r} of {kind} is not a finite number")
    zero_ok, high = _RANGES[kind]
    if amount < 0:
        raise _error(text, f"the amount of {kind} is negative ({raw})")
    if (amount == 0 and not zero_ok) or (high is not None and amount > high):
        bounds = f"0 {'<=' if zero_ok else '<'} {kind}" + (f" <= {high:g}" if high is not None else "")
        raise _error(text, f"{kind}:{raw} is out of range ({bounds})")
    return amount


def _parse_stage(text: str, stage: str, previous: Shift | None) -> Shift:
    if not stage:
        raise _error(text, "an empty stage")
    if stage == "none":
        return Shift(())
    if stage in NAMED_SHIFTS:
        return _parse_stage(text, NAMED_SHIFTS[stage], previous)
    try:
        amount_only = float(stage)
    except ValueError:
        amount_only = None
    if amount_only is not None:
        if previous is None or len(previous.steps) != 1:
            where = "the first stage" if previous is None else f"after the stage {previous.spec()!r}"
            raise _error(text, f"a bare amount {stage!r} needs a previous stage of exactly one kind, not {where}")
        kind = previous.steps[0][0]
        return Shift(((kind, _parse_amount(text, kind, stage)),))
    steps: list[tuple[str, float]] = []
    for item in (part.strip() for part in stage.split(",")):
        if not item:
            raise _error(text, f"an empty step in the stage {stage!r}")
        if item in NAMED_SHIFTS:
            named = _parse_stage(text, NAMED_SHIFTS[item], None).steps
        elif item == "none":
            raise _error(text, f"none is a whole stage, not a step of the stage {stage!r}")
        elif ":" not in item:
            raise _error(text, f"{item!r} has no colon (write KIND:AMOUNT, or none)")
        else:
            kind, _, raw = (s.strip() for s in item.partition(":"))
            if kind not in SHIFT_KINDS:
                raise _error(text, f"unknown kind {kind!r}")
            named = ((kind, _parse_amount(text, kind, raw)),)
        for kind, amount in named:
            if kind in (k for k, _ in steps):
                raise _error(text, f"the kind {kind} appears twice in the stage {stage!r}")
            steps.append((kind, amount))
    return Shift(tuple(steps))


def parse_shift(text: str) -> ShiftSchedule:
    """The schedule a spec names; raises ``ValueError`` (one line: the problem and the grammar) otherwise.

    >>> parse_shift("none").spec(), parse_shift("").is_none, parse_shift("faded").spec()
    ('none', True, 'contrast:0.25')
    >>> parse_shift(" Blur:1.50 , noise:0.06 ").spec()
    'blur:1.5,noise:0.06'
    >>> parse_shift("contrast:0.5>faded") == parse_shift("contrast:0.5>0.25")
    True
    >>> parse_shift("blur:x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: bad shift 'blur:x': the amount 'x' of blur is not a number (grammar: ...; kinds: contrast, blur, noise, dim; names: faded)
    """
    text = str(text)
    body = text.strip().lower()
    if not body:
        return ShiftSchedule((Shift(()),))
    stages: list[Shift] = []
    for stage in (part.strip() for part in body.split(">")):
        stages.append(_parse_stage(text, stage, stages[-1] if stages else None))
    return ShiftSchedule(tuple(stages))


def scene_key(scene) -> str:
    """The per-scene key :meth:`Shift.apply` takes: the scene's canonical JSON (same scene, same key)."""
    return scene.to_json()


def render_shifted(scene, shift: Shift | None) -> Image.Image:
    """The scene rendered, then under ``shift`` (None or none: the clean render, the same pixels as before
    shifts existed): the one place the images folder and the benchmark render a shifted scene."""
    image = render(scene)
    if shift is not None and not shift.is_none:
        image = shift.apply(image, scene_key(scene))
    return image

