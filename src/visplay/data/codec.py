"""Image bytes in and out: the one decoder and the one PNG encoder.

Every image VisPlay reads (training sources, benchmark files, questions.parquet, a server's data URLs)
goes through :func:`decode_image`, and every PIL image it stores or sends as PNG goes through
:func:`png_bytes`. One error policy: whatever is wrong with an image, :func:`decode_image` raises
:class:`ImageDecodeError` (a ``ValueError``) with a one-line reason; the caller decides what that
means (training skips and counts the image, evaluation names the item and stops, the report leaves the
thumbnail out, the server answers 400).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

# Larger images are refused (decompression bombs); Vision-SR1-47K's largest images are far below this.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
# The leading bytes of the formats a base64 text cell may hold: tells a base64 image from a missing path.
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class ImageDecodeError(ValueError):
    """An image reference that does not give an image; the message says why in one line."""


def decode_image(ref: Any, base_dir: str | Path | None = None) -> Image.Image:
    """A fully loaded PIL image (mode untouched: the engine converts to RGB) from any image reference.

    Accepted: a PIL image; bytes; an HF image struct ``{"bytes", "path"}``; a list (its first image); a
    ``Path``; a string that is a file path (tried under ``base_dir`` first), a ``data:image/...;base64,``
    URI or a bare base64 image. Raises :class:`ImageDecodeError` for anything else, unreadable or too large.
    """
    if isinstance(ref, Image.Image):
        return ref
    if isinstance(ref, dict):
        if ref.get("bytes"):
            return decode_image(bytes(ref["bytes"]), base_dir)
        if ref.get("path"):
            return decode_image(str(ref["path"]), base_dir)
        raise ImageDecodeError("an image struct has neither bytes nor path")
    if isinstance(ref, (list, tuple)):
        if not ref:
            raise ImageDecodeError("an empty image list")
        return decode_image(ref[0], base_dir)
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return _open_bytes(bytes(ref))
    if isinstance(ref, Path):
        if not ref.is_file():
            raise _not_found(str(ref), base_dir)
        return _open_file(ref)
    if isinstance(ref, str):
        return _decode_text(ref.strip(), base_dir)
    raise ImageDecodeError(f"unsupported image reference of type {type(ref).__name__}")


def _open_bytes(data: bytes) -> Image.Image:
    return _open(io.BytesIO(data))


def _open_file(path: Path) -> Image.Image:
    # Opened in place, not read into memory first: the size check sees only the header of a huge file.
    return _open(path)


def _open(source: io.BytesIO | Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own size limit below decides; Pillow's bomb warning would only add a stray stderr line.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
            if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(f"image of {image.size[0]}x{image.size[1]} pixels is too large")
            image.load()
    except ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make any Pillow plugin raise anything
        raise ImageDecodeError(f"undecodable image ({exc.__class__.__name__})") from None
    return image


def _not_found(text: str, base_dir: str | Path | None) -> ImageDecodeError:
    return ImageDecodeError(f"image file {text[:120]!r} not found (looked in {base_dir or '.'})")


def _decode_text(text: str, base_dir: str | Path | None) -> Image.Image:
    if text.startswith("data:image"):
        try:
            return _open_bytes(base64.b64decode(text.split(",", 1)[1]))
        except (binascii.Error, IndexError):
            raise ImageDecodeError("a data:image URI without valid base64 data") from None
    candidates = [Path(text)] if base_dir is None else [Path(base_dir) / text, Path(text)]
    for candidate in candidates:
        try:
            if candidate.is_file():
                return _open_file(candidate)
        except OSError:  # a base64 string too long to be a file name
            pass
    raw = _base64_image(text)
    if raw is not None:
        return _open_bytes(raw)
    raise _not_found(text, base_dir)


def _base64_image(text: str) -> bytes | None:
    """The bytes of a base64-encoded image, or ``None`` when ``text`` is not one (e.g. a missing path)."""
    if len(text) < 16 or re.search(r"[^A-Za-z0-9+/=\s]", text):
        return None
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(_IMAGE_MAGIC) else None


def png_bytes(image: Image.Image) -> bytes:
    """PNG encoding with fixed settings, so equal images give equal bytes (for one Pillow/zlib build).

    Level 1: on the toy world's flat images 2x faster than the default 6 at about the same size; PNG is
    lossless, so the level never changes a pixel a model sees.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """``data:<mime>;base64,...`` of ``data`` (report thumbnails, OpenAI-style image parts)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
