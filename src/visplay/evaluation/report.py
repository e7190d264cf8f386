"""Plain-text tables of evaluation summaries: one model (benchmark rows), or a run (benchmarks x iterations)."""

from __future__ import annotations


def fmt_accuracy(value: float | None) -> str:
    """Percent with two decimals, or N/A.

    >>> fmt_accuracy(37.1111), fmt_accuracy(None)
    ('37.11', 'N/A')
    """
    return "N/A" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def summary_table(summaries: list[dict]) -> str:
    """One row per benchmark: n, accuracy, unparsed, judged, extra metrics, protocol.

    >>> print(summary_table([{"benchmark": "toy", "n": 4, "accuracy": 50.0, "unparsed": 1,
    ...                       "unparsed_rate": 0.25, "judged": 0, "protocol": "rules"}]))
    benchmark  n  accuracy  unparsed   judged  protocol
    ---------  -  --------  ---------  ------  --------
    toy        4  50.00     1 (25.0%)  0       rules
    """
    rows = []
    budgets = any(s.get("max_new_tokens") is not None for s in summaries)
    for s in summaries:
        metrics = s.get("metrics") or {}
        name = s["benchmark"]
        if metrics:
            name += " (" + ", ".join(f"{k} {fmt_accuracy(v)}" for k, v in metrics.items()) + ")"
        rows.append([name, str(s["n"]), fmt_accuracy(s.get("accuracy")),
                     f"{s.get('unparsed', 0)} ({100 * s.get('unparsed_rate', 0.0):.1f}%)", str(s.get("judged", 0))]
                    + ([str(s.get("max_new_tokens", "-"))] if budgets else []) + [s.get("protocol", "")])
    header = ["benchmark", "n", "accuracy", "unparsed", "judged"] + (["max new tokens"] if budgets else []) + ["protocol"]
    return _table(header, rows)


def budget_lines(summaries: list[dict]) -> list[str]:
    """Which generation budget each benchmark used and where it came from.

    >>> budget_lines([{"benchmark": "toy", "max_new_tokens": 48, "max_new_tokens_from": "toy's default for compact prompts"}])
    ["toy: greedy, at most 48 new tokens per answer (toy's default for compact prompts; --max-new-tokens changes it)"]
    """
    return [f"{s['benchmark']}: greedy, at most {s['max_new_tokens']} new tokens per answer "
            f"({s.get('max_new_tokens_from') or 'as configured'}; --max-new-tokens changes it)"
            for s in summaries if s.get("max_new_tokens") is not None]


def run_table(table: dict) -> str:
    """Benchmarks x models (base, iter_01, ...), accuracy in %, like the paper's Table 1."""
    labels = table["models"]
    rows = []
    for bench in table["benchmarks"]:
        cells = table["results"].get(bench, {})
        rows.append([bench] + [fmt_accuracy(cells[label].get("accuracy")) if label in cells else "-" for label in labels])
    return _table(["benchmark", *labels], rows)


def run_table_markdown(table: dict) -> str:
    labels = table["models"]
    lines = ["| benchmark | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for bench in table["benchmarks"]:
        cells = table["results"].get(bench, {})
        values = [fmt_accuracy(cells[label].get("accuracy")) if label in cells else "-" for label in labels]
        lines.append(f"| {bench} | " + " | ".join(values) + " |")
    protocols = sorted({s.get("protocol", "") for cells in table["results"].values() for s in cells.values()})
    lines += ["", *(f"Scoring: {p}" for p in protocols)]
    return "\n".join(lines) + "\n"
