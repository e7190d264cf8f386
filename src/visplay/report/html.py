"""HTML pieces of the run report: escaping (model text is untrusted), thumbnails, tables.

Everything that comes from a model or a data file goes through :func:`esc` or :func:`model_text`, which
HTML-escape it; nothing from the run is ever placed inside a tag's attribute unescaped or run as script.
"""

from __future__ import annotations

import html
import io
import math
import unicodedata
from collections.abc import Iterable

from visplay.data.codec import data_uri, png_bytes


def esc(value) -> str:
    """A value as escaped HTML text (safe in attributes too); floats to 3 significant digits, None as a
    dash; invisible or invalid characters as backslash escapes (see :func:`printable`).

    >>> esc("<b>&</b>"), esc(None), esc(0.12345), esc(float("nan")), esc("a\\udcffb")
    ('&lt;b&gt;&amp;&lt;/b&gt;', '-', '0.123', '-', 'a\\\\xffb')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}"
    return html.escape("".join(piece for piece, _ in printable(str(value))), quote=True)


def decode_lenient(data: bytes | str | None) -> str | None:
    """Bytes read from a file as text; bytes that are not valid UTF-8 are kept as surrogate escapes, which
    :func:`printable` shows as ``\\xNN`` and which still name the same file when the text is a path.

    >>> decode_lenient(b"caf\\xc3\\xa9 \\xff!")
    'café \\udcff!'
    """
    if data is None or isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", errors="surrogateescape")


def _escape_char(ch: str) -> str | None:
    """The visible escape for a character that would not show as itself, or None to keep it."""
    code = ord(ch)
    if ch in "\n\t":
        return None
    if ch == "\ufffd":  # a tokenizer's stand-in for bytes that were not valid UTF-8
        return "\\ufffd"
    if 0xDC80 <= code <= 0xDCFF:  # a byte kept by Python's surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or ch in "\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff":
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return None


def printable(text: str) -> list[tuple[str, bool]]:
    """Split model text into (piece, is_escape): control characters, invalid-byte markers, bidi overrides
    and other invisible characters become backslash escapes, so what is shown is what the model wrote.

    >>> printable("a\\x00b\\ufffd\\u202ec")
    [('a', False), ('\\\\x00', True), ('b', False), ('\\\\ufffd\\\\u202e', True), ('c', False)]
    """
    pieces: list[tuple[str, bool]] = []
    plain: list[str] = []
    for ch in text:
        escaped = _escape_char(ch)
        if escaped is None:
            plain.append(ch)
            continue
        if plain:
            pieces.append(("".join(plain), False))
            plain = []
        if pieces and pieces[-1][1]:  # a run of escapes is one piece
            pieces[-1] = (pieces[-1][0] + escaped, True)
        else:
            pieces.append((escaped, True))
    if plain:
        pieces.append(("".join(plain), False))
    return pieces


def model_text(text: str | None) -> str:
    """Untrusted model text as HTML: escaped, with invisible or invalid characters shown as escapes.

    >>> model_text("<script>x</script>\\ufffd")
    '&lt;script&gt;x&lt;/script&gt;<span class="esc" title="not printable as text">\\\\ufffd</span>'
    """
    if text is None:
        return "<i>none</i>"
    return "".join(f'<span class="esc" title="not printable as text">{html.escape(piece)}</span>' if is_escape
                   else html.escape(piece) for piece, is_escape in printable(text))


def thumbnail_uri(image, side: int) -> str:
    """A PIL image shrunk to fit ``side`` x ``side`` pixels, as a ``data:`` URI (PNG for small images such
    as the toy world's, JPEG for photos, which PNG would make large)."""
    image = image.convert("RGB")
    small = image.width <= 2 * side and image.height <= 2 * side
    image.thumbnail((side, side))
    if small:
        return data_uri(png_bytes(image))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return data_uri(buffer.getvalue(), "image/jpeg")


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "", titles: Iterable[str] | None = None,
          row_classes: Iterable[str] | None = None, table_id: str = "", widths: Iterable[str] | None = None) -> str:
    """An HTML table from cells that are ALREADY HTML (escape them first); ``widths``: CSS column widths."""
    head = list(head)
    titles = list(titles) if titles is not None else [""] * len(head)
    row_classes = list(row_classes) if row_classes is not None else None
    attrs = (f' id="{table_id}"' if table_id else "") + (f' class="{cls}"' if cls else "")
    out = [f"<table{attrs}>"]
    if widths is not None:
        out.append("<colgroup>" + "".join(f'<col style="width:{w}">' for w in widths) + "</colgroup>")
    out.append("<thead><tr>")
    out += [f"<th title=\"{esc(t)}\">{h}</th>" if t else f"<th>{h}</th>" for h, t in zip(head, titles)]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        rc = row_classes[i] if row_classes is not None else ""
        out.append(f"<tr class=\"{rc}\">" if rc else "<tr>")
        out += [f"<td>{cell}</td>" for cell in row]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)
