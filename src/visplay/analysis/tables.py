"""Plain-text tables for the instruments' console output."""

from __future__ import annotations


def text_table(rows: list[list[str]]) -> str:
    """Header row, a rule, then the rows; the first column left-aligned, the others right-aligned.

    >>> print(text_table([["arm", "acc"], ["paper", "62.5"]]))
    arm     acc
    -----  ----
    paper  62.5
    """
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
