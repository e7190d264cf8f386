"""The HTML run report: RUN/report.html, one self-contained file (plots embedded as PNG).

Shows the per-iteration table, training curves per stage (reward, frac_reward_zero_std, validity,
confidence, KL), and sample questions from each iteration's questions.parquet with their votes. Model
output is untrusted text: everything from it is HTML-escaped, nothing is evaluated.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import defaultdict
from pathlib import Path

from visplay.io import write_text_atomic
from visplay.runfolder import RunFolder
from visplay.runread import check_run_for_report

CURVES = [
    ("reward_mean", "reward (mean)"),
    ("frac_reward_zero_std", "groups with no signal (frac_reward_zero_std)"),
    ("reward_validity", "question validity"),
    ("reward_confidence", "mean confidence of questions"),
    ("reward_accuracy", "agreement with silver answer"),
    ("kl", "KL to the stage's start"),
]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}
th{background:#f3f3f3}.kept{background:#eef9ee}.dropped{color:#777}code{font-size:12px;white-space:pre-wrap}
img{max-width:100%}h2{border-bottom:1px solid #ddd;padding-bottom:4px}
"""


def _esc(value) -> str:
    if value is None:
        return "<i>none</i>"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}"
    return html.escape(str(value), quote=True)


def _plot(records: list[dict]) -> str | None:
    """One figure of training curves for all stages; base64 PNG, or None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_stage: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("event") == "step" and "stage" in r:
            by_stage[r["stage"]].append(r)
    curves = [(k, t) for k, t in CURVES if any(k in r for rs in by_stage.values() for r in rs)]
    if not curves:
        return None
    fig, axes = plt.subplots(len(curves), 1, figsize=(9, 2.2 * len(curves)), squeeze=False)
    for ax, (key, title) in zip(axes[:, 0], curves):
        offset = 0
        for stage, rs in by_stage.items():
            ys = [r.get(key) for r in rs]
            xs = [offset + i for i, y in enumerate(ys) if y is not None]
            ys = [y for y in ys if y is not None]
            if ys:
                ax.plot(xs, ys, marker=".", label=stage)
            offset += len(rs)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("logged step (stages in run order)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _iteration_rows(run: RunFolder) -> list[dict]:
    state = run.load_state()["iterations"]
    rows = []
    for key in sorted(state, key=int):
        stages = state[key]
        row = {"iteration": int(key)}
        curation = stages.get("curation", {})
        row.update({k: curation.get(k) for k in ("candidates", "kept", "validity", "mean_confidence")})
        row.update({k: v for k, v in stages.get("eval", {}).items() if not k.startswith("time/") and k != "finished_at"})
        row["stages done"] = ", ".join(s for s in ("questioner", "curation", "reasoner", "eval") if s in stages)
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No iteration has finished a stage yet.</p>"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_esc(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_esc(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _questions(path: Path, limit: int = 12) -> str:
    import pyarrow.parquet as pq

    columns = ["image_id", "raw", "question", "votes", "silver_answer", "confidence", "kept", "reason"]
    table = pq.read_table(path)
    has_oracle = "oracle_answer" in table.column_names
    rows = table.select(columns + (["oracle_answer"] if has_oracle else [])).to_pylist()
    kept = [r for r in rows if r["kept"]][: limit // 2]
    dropped = [r for r in rows if not r["kept"]][: limit - len(kept)]
    head = ["image", "question (raw output if unparsed)", "votes", "silver", "c"] + (["oracle"] if has_oracle else []) + ["kept / reason"]
    out = [f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>"]
    for r in kept + dropped:
        question = r["question"] if r["question"] is not None else r["raw"]
        cells = [_esc(r["image_id"]), f"<code>{_esc(question)}</code>", _esc(", ".join("∅" if v is None else v for v in (r["votes"] or []))),
                 _esc(r["silver_answer"]), _esc(r["confidence"])]
        if has_oracle:
            cells.append(_esc(r["oracle_answer"]))
        cells.append("kept" if r["kept"] else _esc(r["reason"]))
        cls = "kept" if r["kept"] else "dropped"
        out.append(f"<tr class='{cls}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def write_report(run_dir: str | Path) -> Path:
    """Write RUN/report.html from the run folder's files; returns its path."""
    run = RunFolder(run_dir)
    check_run_for_report(run.root)  # every file read below, and the report's own path, checked first
    records = run.read_metrics()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>VisPlay run {_esc(run.root.name)}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>VisPlay run <code>{_esc(run.root.name)}</code></h1>",
             "<h2>Iterations</h2>", _table(_iteration_rows(run))]
    plot = _plot(records)
    if plot:
        parts += ["<h2>Training curves</h2>", f"<img alt='training curves' src='data:image/png;base64,{plot}'>"]
    for iteration in run.iterations_on_disk():
        path = run.questions_path(iteration)
        if path.exists():
            parts += [f"<h2>Iteration {iteration}: sample questions</h2>", _questions(path)]
    from visplay.analysis.audit import audit_html, audit_run

    parts.append(audit_html(audit_run(run.root)))  # toy-world runs only (needs oracle answers)
    parts += ["<h2>Resolved config</h2>", f"<pre>{_esc(run.config_path.read_text())}</pre>"]
    summaries = [r for r in records if r.get("event") == "stage_done"]
    if summaries:
        parts += ["<h2>Stage summaries</h2>", f"<pre>{_esc(json.dumps(summaries, indent=1, sort_keys=True))}</pre>"]
    parts.append("</body></html>")
    write_text_atomic(run.report_path, "\n".join(parts))
    return run.report_path
