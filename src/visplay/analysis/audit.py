"""The silver-label audit of a run: how often the majority vote's answer was right, and how often each
vote's pseudo-reward equalled its true reward, per iteration, confidence bin and answer kind.

It needs right answers: questions.parquet's ``oracle_answer`` column, which only toy-world runs have
(``visplay demo`` / ``visplay study``). ``visplay audit RUN`` prints it; the demo prints it after its
table and ``report.html`` shows it. Reading the oracle here is measurement, after the fact: nothing in
training reads this module.
"""

from __future__ import annotations

import html
from pathlib import Path

from visplay.analysis.consistency import ANSWER_KINDS, BINS, audit_questions
from visplay.analysis.tables import text_table
from visplay.errors import UserError

GROUPS = ["all", "kept"] + [f"bin {b}" for b in BINS] + [f"kept/{k}" for k in ANSWER_KINDS]
GROUP_TITLES = {"all": "all voted questions", "kept": "kept (in the band)",
                **{f"bin {b}": f"confidence {b}" for b in BINS},
                **{f"kept/{k}": f"kept, answer {k}" for k in ANSWER_KINDS}}


def audit_questions_file(path: Path) -> dict | None:
    """The audit of one questions.parquet, or None when it has no oracle column (not a toy-world run)."""
    import pyarrow.parquet as pq

    from visplay.selfplay.answers import same_answer

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise UserError(f"{path} is not a readable parquet file ({exc.__class__.__name__})") from None
    if "oracle_answer" not in schema.names:
        return None
    columns = ["question", "votes", "silver_answer", "confidence", "kept", "oracle_answer"]
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise UserError(f"{path} lacks the column(s) {', '.join(missing)}")
    rows = pq.read_table(path, columns=columns).to_pylist()
    return audit_questions(rows, same_answer)


def audit_run(run_dir: str | Path) -> dict[int, dict]:
    """{iteration: audit} for every iteration of a run whose questions.parquet has oracle answers."""
    from visplay.runfolder import RunFolder

    run = RunFolder(run_dir)
    if not run.root.is_dir():
        raise UserError(f"{run.root} is not a folder")
    audits = {}
    for iteration in run.iterations_on_disk():
        path = run.questions_path(iteration)
        if path.is_file():
            audit = audit_questions_file(path)
            if audit is not None:
                audits[iteration] = audit
    return audits


def _cell(group: dict | None) -> str:
    if not group or not group.get("n"):
        return "-"
    label, reward, invalid = group["label_accuracy"], group["reward_accuracy"], group["invalid_rate"]
    pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    return f"{pct(label)} / {pct(reward)} / {pct(invalid)} (n={group['n']})"


def format_audit(audits: dict[int, dict]) -> str:
    """One table: a row per group, a column per iteration; cells are label acc / reward acc / invalid."""
    if not audits:
        return "no audit: no questions.parquet with oracle answers (only toy-world runs have them)"
    iterations = sorted(audits)
    header = ["group"] + [f"iter {i}" for i in iterations]
    rows = [header] + [[GROUP_TITLES[g]] + [_cell(audits[i].get(g)) for i in iterations] for g in GROUPS]
    return ("silver-label audit (label accuracy / vote reward accuracy / oracle-invalid questions):\n"
            + text_table(rows))


def audit_html(audits: dict[int, dict]) -> str:
    """The audit as an HTML section for report.html (empty when the run has no oracle answers)."""
    if not audits:
        return ""
    iterations = sorted(audits)
    head = "".join(f"<th>iter {i}</th>" for i in iterations)
    body = "".join(
        f"<tr><td>{html.escape(GROUP_TITLES[g])}</td>"
        + "".join(f"<td>{html.escape(_cell(audits[i].get(g)))}</td>" for i in iterations) + "</tr>"
        for g in GROUPS)
    return ("<h2>Silver-label audit</h2><p>Against the toy world's oracle (measurement only): label accuracy "
            "(silver answer = oracle's) / vote reward accuracy (a vote's pseudo-reward equals its true reward) / "
            "share of questions the oracle cannot answer.</p>"
            f"<table><tr><th>group</th>{head}</tr>{body}</table>")
