"""The HTML run report: RUN/report.html, one self-contained file (images and plots embedded, no script).

What a person reads, top to bottom:
1. the iterations table, base model (iteration 0) first, with the same columns, names and formats as the
   terminal table (:mod:`visplay.report.iteration_table`);
2. training curves on one shared x axis, one fixed colour per stage kind, stage boundaries marked
   (:mod:`visplay.report.plots`); per-family benchmark accuracy per iteration when the run has benchmark
   results (``RUN/eval/base/<benchmark>/summary.json`` and ``RUN/iter_XX/eval/<benchmark>/summary.json``);
3. per iteration: a grid of a few images, each with every question the questioner wrote for it (kept and
   dropped with the reason), the votes, the silver answer, the confidence and, in the toy world, the
   oracle's answer; then more sample questions with a thumbnail beside each;
4. folded: the resolved config and the raw stage summaries.

Model output is untrusted text: everything from it is HTML-escaped (:mod:`visplay.report.html`), characters
that would not show (invalid UTF-8, control and bidi characters) are shown as backslash escapes, and the
page holds no script at all. The run folder is read by the small ``read_*`` functions of
:mod:`visplay.report.data`, each of which returns plain data.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from visplay.io import write_text_atomic
from visplay.report.data import (
    read_audit_html,
    read_config,
    read_config_text,
    read_eval_summaries,
    read_questions,
    resolve_image,
)
from visplay.report.html import esc, model_text, table, thumbnail_uri
from visplay.report.iteration_table import COLUMNS, row_from_stages, table_cells
from visplay.runfolder import RunFolder
from visplay.runread import check_run_for_report

GRID_IMAGES = 4  # images shown with all their questions, per iteration
SAMPLE_KEPT = 6  # further kept / dropped questions in the sample table, per iteration
SAMPLE_DROPPED = 6
GRID_SIDE = 128  # thumbnail sizes in pixels
TABLE_SIDE = 56

REASON_HELP = {
    "unparsed": "the questioner's output did not parse as a question",
    "no_answer": "no vote produced a boxed answer",
    "none_answer": "the silver answer was the string 'None'",
    "too_easy": "confidence above the band (the reasoner already agrees with itself)",
    "too_hard": "confidence below the band (the votes scatter)",
    "disagreement": "the questioner's own answer differs from the majority vote (curation.agreement)",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1em 1.5em;max-width:1150px;
  color:#222;line-height:1.35;box-sizing:border-box}
h1{font-size:1.6em;margin:.3em 0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}
h3{margin:1.2em 0 .4em}p.meta{color:#555;margin:.2em 0}nav a{margin-right:1em}
table{border-collapse:collapse;margin:.6em 0;max-width:100%}
td,th{border:1px solid #ddd;padding:3px 7px;font-size:13px;vertical-align:top;overflow-wrap:anywhere;text-align:left}
th{background:#f3f3f3;font-weight:600}
table.iters td{text-align:right;white-space:nowrap}table.iters th{text-align:right}
table.iters tr.base td{background:#f6f6ff}
.kept td{background:#eef9ee}.dropped td{color:#666}
.esc{background:#fde2e2;color:#900;font-family:ui-monospace,monospace;border-radius:2px;padding:0 1px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;min-width:0}
.cardhead{display:flex;gap:10px;align-items:flex-start;margin-bottom:6px}
.cardhead img{flex:none;width:128px;height:128px;object-fit:contain;image-rendering:pixelated;border:1px solid #eee}
.card table{width:100%;table-layout:fixed;margin:0}.card td,.card th{font-size:12px;padding:2px 4px;overflow-wrap:break-word}
.id{font-size:12px;color:#555;overflow-wrap:anywhere}
img.thumb{width:56px;height:56px;object-fit:contain;image-rendering:pixelated}
img.plot{max-width:100%;height:auto}
.missing{display:inline-block;font-size:11px;color:#900}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#f7f7f7;padding:8px;margin:.4em 0}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
.note{color:#555;font-size:13px}
"""


# --- sections ----------------------------------------------------------------------------------------------
def iteration_rows(state: dict, evals: dict[int, dict[str, dict]]) -> list[dict]:
    """The base row (iteration 0, from its benchmark summaries) and one row per iteration in state.json;
    benchmark accuracies missing from state.json are filled from the iteration's summaries."""
    rows = []
    iterations = state.get("iterations") or {}
    for i in [0] + sorted(int(k) for k in iterations):
        row = {"iteration": 0} if i == 0 else row_from_stages(i, iterations[str(i)])
        for name, summary in (evals.get(i) or {}).items():
            accuracy = summary.get("accuracy")
            if row.get(f"{name}_accuracy") is None and accuracy is not None:
                row[f"{name}_accuracy"] = accuracy / 100.0
        rows.append(row)
    return rows


def iterations_section(rows: list[dict], state: dict) -> str:
    columns, cells = table_cells(rows)
    html_rows = [[esc(c) for c in row] for row in cells]
    out = [table([esc(c.title) for c in columns], html_rows, cls="iters", titles=[c.help for c in columns],
                 row_classes=["base" if r["iteration"] == 0 else "" for r in rows], table_id="iterations")]
    notes = []
    if len(rows) == 1 or all(rows[0].get(c.key) is None for c in columns[1:]):
        notes.append("The base model (iteration 0) has no benchmark results in this run folder; "
                     "<code>visplay eval --run RUN --benchmark NAME --data PATH</code> adds them.")
    for key, stages in sorted((state.get("iterations") or {}).items(), key=lambda kv: int(kv[0])):
        missing = [s for s in ("questioner", "curation", "reasoner") if s not in stages]
        if missing:
            notes.append(f"Iteration {esc(key)} is not finished (missing: {esc(', '.join(missing))}).")
    legend = "".join(f"<li><b>{esc(c.title)}</b>: {esc(c.help)}</li>" for c in columns)
    out += [f"<p class='note'>{n}</p>" for n in notes]
    out.append(f"<details><summary>What the columns mean</summary><ul class='note'>{legend}</ul></details>")
    return "".join(out)


def curves_section(records: list[dict]) -> str:
    from visplay.report.plots import curves_png

    png, flat = curves_png(records)
    if png is None and not flat:
        return "<p class='note'>No training step was logged yet.</p>"
    out = []
    if png:
        out.append(f"<img class='plot' alt='training curves' src='data:image/png;base64,{png}'>")
    if flat:
        items = ", ".join(f"{esc(title)} = {esc(value)}" for title, value in flat)
        out.append(f"<p class='note'>Constant over the whole run (no panel): {items}.</p>")
    out.append(reward_trend_table(records))
    return "".join(out)


def reward_trend_table(records: list[dict]) -> str:
    """Each GRPO stage's mean reward over its first and last third of steps: does it rise within a stage?"""
    from visplay.report.plots import reward_trend, stages_in_run_order

    rows = reward_trend(stages_in_run_order(records))
    if not rows:
        return ""
    body = "".join(f"<tr><td>{esc(r['stage'])}</td><td>{r['steps']}</td><td>{r['first']:.3f}</td>"
                   f"<td>{r['last']:.3f}</td><td>{r['change']:+.3f}</td></tr>" for r in rows)
    return ("<p class='note'>Training reward within each stage (mean of the first and the last third of its "
            "steps; when a stage has more examples than it needs, each prompt is new to it, and a rise is learning, "
            "not memorising):</p>"
            "<table><tr><th>stage</th><th>steps</th><th>first third</th><th>last third</th><th>change</th></tr>"
            f"{body}</table>")


def families_section(evals: dict[int, dict[str, dict]]) -> str:
    """Per benchmark with a per-family breakdown: a plot and a table, base model and each iteration."""
    from visplay.report.plots import family_png

    models = sorted(evals)
    benchmarks = list(dict.fromkeys(b for i in models for b in evals[i]))
    out = []
    for bench in benchmarks:
        present = [i for i in models if bench in evals[i]]
        families = sorted({f for i in present for f in (evals[i][bench].get("breakdown") or {})})
        if not families:
            continue
        labels = ["base" if i == 0 else f"iter {i}" for i in present]
        overall = [evals[i][bench].get("accuracy") for i in present]
        per_family = {f: [((evals[i][bench].get("breakdown") or {}).get(f) or {}).get("accuracy") for i in present]
                      for f in families}
        png = family_png(bench, labels, overall, per_family)
        head = ["family"] + [esc(label) for label in labels]
        body = [[esc(f)] + [esc("-" if v is None else f"{v:.1f}%") for v in per_family[f]] for f in families]
        body.append(["<b>all items</b>"] + [f"<b>{esc('-' if v is None else f'{v:.1f}%')}</b>" for v in overall])
        out += [f"<h3>{esc(bench)}</h3>", f"<img class='plot' alt='{esc(bench)} accuracy per family' "
                f"src='data:image/png;base64,{png}'>", table(head, body, cls="iters")]
    return "".join(out)


class Thumbnails:
    """Thumbnails as data URIs, decoded and encoded once per (image, size)."""

    def __init__(self, run: RunFolder, config: dict):
        self.run, self.config = run, config
        self._cache: dict[tuple[str, int], str | None] = {}

    def img(self, row: dict, side: int, cls: str = "") -> str:
        key = (row["image_id"], side)
        if key not in self._cache:
            image = resolve_image(row.get("image"), self.run, self.config, row["image_id"])
            self._cache[key] = thumbnail_uri(image, side) if image is not None else None
        uri = self._cache[key]
        if uri is None:
            return f"<span class='missing'>image not found: {esc(row['image_id'])}</span>"
        attrs = f" class='{cls}'" if cls else ""
        return f"<img{attrs} alt='{esc(row['image_id'])}' src='{uri}'>"


def votes_text(votes: list | None) -> str:
    """Votes as counts, most frequent first; a missing box shows as ∅.

    >>> votes_text(["3", "3", None, "2", "3"])
    '3 ×3, 2 ×1, ∅ ×1'
    """
    if not votes:
        return "-"
    counts = Counter("∅" if v is None else v for v in votes)
    return ", ".join(f"{answer} ×{n}" for answer, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] == "∅")))


def _status(row: dict) -> str:
    if row["kept"]:
        return "kept"
    reason = row.get("reason") or "dropped"
    return f"<span title='{esc(REASON_HELP.get(reason, ''))}'>{esc(reason)}</span>"


def _question_cells(row: dict, has_oracle: bool) -> list[str]:
    question = row["question"] if row["question"] is not None else row["raw"]
    cells = [model_text(question) if row["question"] is not None else f"<i>unparsed:</i> {model_text(question)}",
             model_text(votes_text(row["votes"])), model_text(row["silver_answer"]) if row["silver_answer"] else "-",
             esc(None if row["confidence"] is None else f"{row['confidence']:.2f}")]
    if has_oracle:
        cells.append(model_text(row["oracle_answer"]) if row["oracle_answer"] is not None else "<i>invalid</i>")
    cells.append(_status(row))
    return cells


def pick_grid_images(rows: list[dict], n: int = GRID_IMAGES) -> list[str]:
    """Images to show whole: those with both kept and dropped questions first, then the most questions.

    >>> rows = [{"image_id": "a", "kept": True}, {"image_id": "b", "kept": True}, {"image_id": "b", "kept": False}]
    >>> pick_grid_images(rows, 2)
    ['b', 'a']
    """
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image_id"], []).append(r)

    def rank(item):
        image_id, rs = item
        mixed = any(r["kept"] for r in rs) and not all(r["kept"] for r in rs)
        return (not mixed, -len(rs), image_id)

    return [image_id for image_id, _ in sorted(by_image.items(), key=rank)[:n]]


def iteration_section(iteration: int, rows: list[dict], stages: dict, thumbs: Thumbnails) -> str:
    has_oracle = any(r.get("oracle_answer") is not None for r in rows)
    head = ["question", "votes", "silver", "c"] + (["oracle"] if has_oracle else []) + ["status"]
    titles = ["the questioner's question (its raw output when it did not parse)",
              "the reasoner's extracted answers, counted (∅: no boxed answer)",
              "majority answer of the votes (the pseudo-label)", "confidence: share of votes for the silver answer"]
    titles += (["the toy world's answer (measurement only; invalid = the oracle cannot answer)"] if has_oracle else [])
    titles += ["kept for reasoner training, or why it was dropped"]
    out = [f"<h2 id='iter{iteration}'>Iteration {iteration}</h2>", _iteration_summary(rows, stages)]
    grid_ids = pick_grid_images(rows)
    cards = []
    for image_id in grid_ids:
        mine = sorted((r for r in rows if r["image_id"] == image_id), key=lambda r: not r["kept"])
        body = [_question_cells(r, has_oracle) for r in mine]
        n_kept = sum(1 for r in mine if r["kept"])
        widths = ["40%", "19%", "11%", "8%"] + (["10%"] if has_oracle else []) + ["12%"]
        cards.append(f"<div class='card'><div class='cardhead'>{thumbs.img(mine[0], GRID_SIDE)}<div class='id'>"
                     f"{esc(image_id)}<br>{len(mine)} questions, {n_kept} kept</div></div>"
                     + table(head, body, titles=titles, widths=widths,
                             row_classes=["kept" if r["kept"] else "dropped" for r in mine])
                     + "</div>")
    if cards:
        out += ["<h3>Images and every question asked about them</h3>", f"<div class='grid'>{''.join(cards)}</div>"]
    others = [r for r in rows if r["image_id"] not in grid_ids]
    sample = [r for r in others if r["kept"]][:SAMPLE_KEPT] + [r for r in others if not r["kept"]][:SAMPLE_DROPPED]
    if sample:
        body = [[thumbs.img(r, TABLE_SIDE, "thumb")] + _question_cells(r, has_oracle) for r in sample]
        out += ["<h3>More sample questions</h3>",
                table(["image"] + head, body, titles=["", *titles],
                      row_classes=["kept" if r["kept"] else "dropped" for r in sample])]
    return "".join(out)


def _iteration_summary(rows: list[dict], stages: dict) -> str:
    curation = stages.get("curation") or {}
    kept = sum(1 for r in rows if r["kept"])
    images = len({r["image_id"] for r in rows})
    reasons = Counter(r.get("reason") or "dropped" for r in rows if not r["kept"])
    parts = [f"{len(rows)} candidate questions on {images} images; kept {kept}"
             + (f" ({100 * kept / len(rows):.0f}%)" if rows else "")]
    if reasons:
        parts.append("dropped: " + ", ".join(f"{esc(k)} {n}" for k, n in reasons.most_common()))
    pseudo = (stages.get("eval") or {}).get("pseudo_label_accuracy")
    if pseudo is not None:
        parts.append(f"pseudo-label accuracy of kept questions {100 * pseudo:.1f}%")
    if curation.get("skipped_images"):
        parts.append(f"{curation['skipped_images']} unreadable image(s) skipped")
    return f"<p class='note'>{'; '.join(parts)}.</p>"


def _details(title: str, body: str) -> str:
    return f"<details><summary>{esc(title)}</summary>{body}</details>"


def render_report(run: RunFolder) -> str:
    config = read_config(run)
    state = run.load_state()
    records = run.read_metrics()
    evals = read_eval_summaries(run)
    thumbs = Thumbnails(run, config)
    model = (config.get("model") or {}).get("path") if isinstance(config.get("model"), dict) else None
    images = (config.get("data") or {}).get("images") if isinstance(config.get("data"), dict) else None
    done = len(state.get("iterations") or {})
    iterations_on_disk = [i for i in run.iterations_on_disk() if run.questions_path(i).exists()]
    nav = ["<a href='#iterations-h'>Iterations</a>", "<a href='#curves'>Training curves</a>"]
    nav += [f"<a href='#iter{i}'>Iteration {i}</a>" for i in iterations_on_disk]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        # No script may ever run in this page: model text is shown, never executed.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>VisPlay run {esc(run.root.name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>VisPlay run <code>{esc(run.root.name)}</code></h1>",
        f"<p class='meta'>model <code>{esc(model)}</code>; images <code>{esc(images)}</code>; preset "
        f"{esc(config.get('preset'))}; {done} of {esc(config.get('iterations'))} iterations started; report written "
        f"{esc(time.strftime('%Y-%m-%d %H:%M'))}</p>",
        f"<nav>{''.join(nav)}</nav>",
        "<h2 id='iterations-h'>Iterations</h2>", iterations_section(iteration_rows(state, evals), state),
        "<h2 id='curves'>Training curves</h2>", curves_section(records),
    ]
    families = families_section(evals)
    if families:
        parts += ["<h2 id='families'>Benchmark accuracy per family</h2>", families]
    parts.append(read_audit_html(run))
    for i in iterations_on_disk:
        rows = read_questions(run.questions_path(i))
        parts.append(iteration_section(i, rows, (state.get("iterations") or {}).get(str(i)) or {}, thumbs))
    parts += ["<h2>Run details</h2>",
              _details("Resolved config (config.yaml)", f"<pre>{esc(read_config_text(run))}</pre>")]
    summaries = [r for r in records if r.get("event") in ("stage_done", "grpo_end")]
    if summaries:
        parts.append(_details("Stage summaries (raw JSON from metrics.jsonl)",
                              f"<pre>{esc(json.dumps(summaries, indent=1, sort_keys=True, ensure_ascii=False))}</pre>"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path) -> Path:
    """Write RUN/report.html from the run folder's files; returns its path."""
    run = RunFolder(run_dir)
    check_run_for_report(run.root)  # every file read below, and the report's own path, checked first
    write_text_atomic(run.report_path, render_report(run))
    return run.report_path


__all__ = ["write_report", "render_report", "COLUMNS"]
