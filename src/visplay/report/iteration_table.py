"""The per-iteration table: ONE definition of its columns, shared by the terminal and the HTML report.

A row is a plain dict (``iteration``, ``toy_accuracy``, ``kept``, ...), as ``evolve`` and the demo return
them and as :func:`row_from_stages` rebuilds them from state.json. Each column names the row key it
shows, its header (identical wherever the table is printed), how its value is formatted and one line of
help (the report's header tooltip; the README's column list says the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    title: str
    key: str
    kind: str = ""  # "iter", "pct" (a fraction shown as %), "f2", "s" (seconds), "" (as is)
    help: str = ""


COLUMNS = [
    Column("iter", "iteration", "iter", "iteration; 0 is the base model before any self-evolution"),
    Column("toy acc", "toy_accuracy", "pct", "greedy accuracy of the reasoner on the held-out toy benchmark (under "
           "the run's shift, when it has one)"),
    Column("clean acc", "toy_clean_accuracy", "pct", "the same on the clean render of the same held-out items (the "
           "domain the base was trained on; equal to toy acc without a shift)"),
    Column("pseudo-label acc", "pseudo_label_accuracy", "pct",
           "among kept questions the oracle can answer, the share whose silver answer equals the oracle's"),
    Column("kept", "kept", "", "questions that survived the confidence band"),
    Column("candidates", "candidates", "", "all questions the questioner wrote in curation"),
    Column("parsed q", "validity", "pct", "share of questioner outputs that parse (the paper's validity)"),
    Column("oracle-valid q", "oracle_valid_rate", "pct", "share of parsed questions the oracle can answer"),
    Column("mean conf", "mean_confidence", "f2", "mean majority-vote confidence c of the parsed questions"),
    Column("time", "seconds", "s", "seconds spent on the iteration's stages"),
]
_STATIC_KEYS = {c.key for c in COLUMNS}


def fmt(value, kind: str = "") -> str:
    """One cell as text.

    >>> fmt(0.625, "pct"), fmt(0, "iter"), fmt(2, "iter"), fmt(0.6612, "f2"), fmt(None, "pct"), fmt(156.7, "s")
    ('62.5%', '0 (base)', '2', '0.66', '-', '157s')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "iter":
        return "0 (base)" if value == 0 else str(value)
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "f2":
        return f"{value:.2f}"
    if kind == "s":
        return f"{value:.0f}s"
    return str(value)


def benchmark_columns(rows: list[dict]) -> list[Column]:
    """A "NAME acc" column for every ``NAME_accuracy`` key of the rows beyond the fixed ones (evolve's
    configured benchmarks), in order of first appearance.

    >>> [c.title for c in benchmark_columns([{"iteration": 1, "mmstar_accuracy": 0.5, "toy_accuracy": 0.6}])]
    ['mmstar acc']
    """
    names = dict.fromkeys(k for r in rows for k in r if k.endswith("_accuracy") and k not in _STATIC_KEYS
                          and not k.startswith(("pseudo_label", "kept_valid")))
    return [Column(f"{k.removesuffix('_accuracy')} acc", k, "pct", f"greedy accuracy on {k.removesuffix('_accuracy')}")
            for k in names]


def columns_for(rows: list[dict]) -> list[Column]:
    """The columns that hold a value in some row (the iteration column always), benchmarks after it."""
    columns = COLUMNS[:1] + benchmark_columns(rows) + COLUMNS[1:]
    return [c for c in columns if c.key == "iteration" or any(r.get(c.key) is not None for r in rows)]


def table_cells(rows: list[dict]) -> tuple[list[Column], list[list[str]]]:
    """(columns, formatted cells per row): what both renderings print."""
    columns = columns_for(rows)
    return columns, [[fmt(r.get(c.key), c.kind) for c in columns] for r in rows]


def format_table(rows: list[dict]) -> str:
    """The table as aligned text for the terminal.

    >>> print(format_table([{"iteration": 0, "toy_accuracy": 0.625}, {"iteration": 1, "toy_accuracy": 0.5, "kept": 7}]))
        iter  toy acc  kept
    --------  -------  ----
    0 (base)    62.5%     -
           1    50.0%     7
    """
    columns, body = table_cells(rows)
    cells = [[c.title for c in columns]] + body
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join([_line(cells[0], widths), _rule(widths)] + [_line(row, widths) for row in body])


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.rjust(w) for cell, w in zip(cells, widths))


def _rule(widths: list[int]) -> str:
    return "  ".join("-" * w for w in widths)


# The widest cell a column of each kind usually holds ("0 (base)", "100.0%", "0.66", "999s"): a table printed
# row by row cannot measure its rows before printing them.
_KIND_WIDTH = {"iter": 8, "pct": 6, "f2": 4, "s": 4, "": 4}


class RowPrinter:
    """The table printed row by row, as each iteration finishes: the header once, before the first row, then
    one line per row under it. The columns are every fixed one plus the first row's benchmarks (later rows
    cannot add a column to a header already printed); widths come from the titles and the usual width of a
    value of their kind, so a wider value shifts only its own line.

    >>> printer = RowPrinter()
    >>> print(printer.lines({"iteration": 0, "toy_accuracy": 0.625, "toy_clean_accuracy": 0.625}))
        iter  toy acc  clean acc  pseudo-label acc  kept  candidates  parsed q  oracle-valid q  mean conf  time
    --------  -------  ---------  ----------------  ----  ----------  --------  --------------  ---------  ----
    0 (base)    62.5%      62.5%                 -     -           -         -               -          -     -
    >>> print(printer.lines({"iteration": 1, "toy_accuracy": 0.5, "kept": 7, "seconds": 61.2}))
           1    50.0%          -                 -     7           -         -               -          -   61s
    """

    def __init__(self) -> None:
        self.columns: list[Column] = []
        self.widths: list[int] = []

    def lines(self, row: dict) -> str:
        """The line of ``row``; before the first row's line, the header."""
        head = []
        if not self.columns:
            self.columns = COLUMNS[:1] + benchmark_columns([row]) + COLUMNS[1:]
            self.widths = [max(len(c.title), _KIND_WIDTH.get(c.kind, 4)) for c in self.columns]
            head = [_line([c.title for c in self.columns], self.widths), _rule(self.widths)]
        return "\n".join(head + [_line([fmt(row.get(c.key), c.kind) for c in self.columns], self.widths)])


def row_from_stages(iteration: int, stages: dict) -> dict:
    """The table row of one iteration from its state.json entry (stage name -> stage summary).

    >>> row_from_stages(1, {"curation": {"kept": 3, "candidates": 8, "validity": 1.0, "mean_confidence": 0.5,
    ...                                  "time/votes": 2.0}, "eval": {"toy_accuracy": 0.5, "time/x": 1.0}})
    {'iteration': 1, 'kept': 3, 'candidates': 8, 'validity': 1.0, 'mean_confidence': 0.5, 'toy_accuracy': 0.5, 'seconds': 3.0}
    """
    curation = stages.get("curation") or {}
    row: dict = {"iteration": iteration}
    row.update({k: curation.get(k) for k in ("kept", "candidates", "validity", "mean_confidence")})
    for key, value in (stages.get("eval") or {}).items():
        if not key.startswith("time/") and key != "finished_at":
            row[key] = value
    seconds = sum(v for info in stages.values() if isinstance(info, dict)
                  for k, v in info.items() if k.startswith("time/") and isinstance(v, (int, float)))
    row["seconds"] = round(seconds, 1) if seconds else None
    return row
