"""The HTML run report: built from the run folder's files; model output is escaped, never trusted."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visplay.runfolder import RunFolder
from visplay.stages.curation import SCHEMA

EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def _run_folder(root):
    run = RunFolder(root)
    root.mkdir()
    run.config_path.write_text("iterations: 1\n")
    run.mark_done(1, "questioner", {"images": 4})
    run.mark_done(1, "curation", {"candidates": 2, "kept": 1, "validity": 0.5, "mean_confidence": float("nan")})
    for step in (1, 2):
        run.log_metrics({"event": "step", "stage": "iter01/questioner", "step": step, "reward_mean": 0.1 * step,
                         "frac_reward_zero_std": 0.5, "reward_validity": 1.0})
    rows = [
        {"image_id": "a.png", "image": {"bytes": None, "path": "a.png"}, "raw": EVIL, "question": None, "qtype": None,
         "questioner_answer": None, "votes": None, "silver_answer": None, "confidence": None, "kept": False,
         "reason": "unparsed"},
        {"image_id": "b.png", "image": {"bytes": None, "path": "b.png"}, "raw": "<question>How many?</question>",
         "question": "How many & which?", "qtype": "numerical", "questioner_answer": "2", "votes": ["2", None, EVIL],
         "silver_answer": "2", "confidence": 0.5, "kept": True, "reason": ""},
    ]
    run.iter_dir(1).mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), run.questions_path(1))
    return run


def test_report_escapes_model_output(tmp_path):
    from visplay.report import write_report

    run = _run_folder(tmp_path / "run")
    html = write_report(run.root).read_text()
    assert "<script>" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "How many &amp; which?" in html
    assert "data:image/png;base64," in html  # training curves embedded
    assert "unparsed" in html


def test_state_json_stays_valid_json_with_nan(tmp_path):
    run = _run_folder(tmp_path / "run")
    state = json.loads(run.state_path.read_text())  # strict JSON: NaN was written as null
    assert state["iterations"]["1"]["curation"]["mean_confidence"] is None


def test_report_command_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "visplay", "report", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr and result.stderr.count("\n") == 1


def test_pseudo_label_accuracy_counts_only_answerable_kept_questions(tmp_path):
    from visplay.evolve import questions_oracle_accuracy

    base = {"image_id": "a.png", "image": {"bytes": None, "path": "a.png"}, "raw": "", "qtype": None,
            "questioner_answer": None, "votes": [], "confidence": 0.5, "reason": ""}
    rows = [
        dict(base, question="q1", silver_answer="2", kept=True, oracle_answer="2"),     # right
        dict(base, question="q2", silver_answer="yes", kept=True, oracle_answer="no"),  # wrong
        dict(base, question="q3", silver_answer="red", kept=True, oracle_answer=None),  # not answerable
        dict(base, question="q4", silver_answer="1", kept=False, oracle_answer="1", reason="too_easy"),
        dict(base, question=None, silver_answer=None, kept=False, oracle_answer=None, reason="unparsed"),
    ]
    schema = SCHEMA.append(pa.field("oracle_answer", pa.string()))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "q.parquet")
    result = questions_oracle_accuracy(tmp_path / "q.parquet")
    assert result == {"pseudo_label_accuracy": 0.5, "kept_valid_rate": 2 / 3, "oracle_valid_rate": 3 / 4}


def _questions_with_invalid_utf8(run):
    """Rewrite iteration 1's questions.parquet so a raw output holds bytes that are not valid UTF-8."""
    table = pq.read_table(run.questions_path(1))
    raw = [b"<question>bad \xff\xfe bytes</question>", b"<question>How many?</question>"]
    offsets = pa.array([0, len(raw[0]), len(raw[0]) + len(raw[1])], pa.int32()).buffers()[1]
    # StringArray.from_buffers does not validate, which is how a broken file looks to a reader.
    column = pa.StringArray.from_buffers(2, offsets, pa.py_buffer(b"".join(raw)))
    table = table.set_column(table.column_names.index("raw"), "raw", column)
    pq.write_table(table, run.questions_path(1))


def test_report_shows_invalid_utf8_as_escapes_not_replacement_chars(tmp_path):
    from visplay.report import write_report

    run = _run_folder(tmp_path / "run")
    _questions_with_invalid_utf8(run)
    with pytest.raises(UnicodeDecodeError):  # what a plain reader meets
        pq.read_table(run.questions_path(1)).to_pylist()
    html = write_report(run.root).read_text(encoding="utf-8")
    assert "bad <span class=\"esc\" title=\"not printable as text\">\\xff\\xfe</span> bytes" in html
    assert "\ufffd" not in html


def test_report_iterations_table_has_base_row_and_the_terminal_names(tmp_path):
    from visplay.report import iteration_rows, write_report
    from visplay.report.data import read_eval_summaries
    from visplay.report.iteration_table import columns_for

    run = _run_folder(tmp_path / "run")
    base = run.root / "eval" / "base" / "toy"
    base.mkdir(parents=True)
    (base / "summary.json").write_text(json.dumps({"benchmark": "toy", "accuracy": 62.5, "breakdown": {
        "counting": {"accuracy": 50.0, "n": 2}, "existence": {"accuracy": 75.0, "n": 4}}}))
    run.mark_done(1, "eval", {"toy_accuracy": 0.5, "pseudo_label_accuracy": 0.25})
    html = write_report(run.root).read_text()
    rows = iteration_rows(run.load_state(), read_eval_summaries(run))
    assert [r["iteration"] for r in rows] == [0, 1] and rows[0]["toy_accuracy"] == 0.625
    table = html[html.index("<table id=\"iterations\""):]
    table = table[: table.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert headers == [c.title for c in columns_for(rows)]  # the terminal's names, in its order
    assert "<td>0 (base)</td><td>62.5%</td>" in table and "<td>25.0%</td>" in table  # percentages
    assert "Benchmark accuracy per family" in html and "accuracy per family" in html


def test_report_without_base_results_says_how_to_get_them(tmp_path):
    from visplay.report import write_report

    html = write_report(_run_folder(tmp_path / "run").root).read_text()
    assert "<td>0 (base)</td>" in html and "visplay eval --run RUN" in html


def test_report_folds_config_and_raw_json(tmp_path):
    from visplay.report import write_report

    run = _run_folder(tmp_path / "run")
    run.log_metrics({"event": "stage_done", "stage": "iter01/questioner", "images": 4})
    html = write_report(run.root).read_text()
    assert re.search(r"<details><summary>Resolved config \(config.yaml\)</summary><pre>iterations: 1", html)
    assert re.search(r"<details><summary>Stage summaries \(raw JSON from metrics.jsonl\)</summary><pre>\[", html)


def test_curves_keep_one_colour_per_stage_kind_and_mark_flat_series():
    from visplay.report.plots import STAGE_COLOURS, curves_figure

    records = []
    for name in ("iter01/questioner", "iter01/reasoner", "iter02/questioner", "iter02/reasoner"):
        for step in range(3):
            records.append({"event": "step", "stage": name, "reward_mean": 0.1 * step + len(records) / 100,
                            "frac_reward_zero_std": 0.0, "kl": 0.01 * step})
    # Logged out of order (as a resumed run appends): placement follows iteration and stage, not file order.
    records = records[6:9] + records[:6] + records[9:]
    fig, flat = curves_figure(records)
    assert flat == [("groups with no learning signal (all rewards equal)", 0.0)]
    axes = fig.axes
    assert len(axes) == 2 and all(ax.get_shared_x_axes().joined(axes[0], ax) for ax in axes)
    from visplay.report.plots import rolling_mean

    for ax in axes:
        lines = [line for line in ax.get_lines() if line.get_gid()]
        # The reward panel adds each stage's rolling mean, in the stage's colour, over the same steps.
        rolling = [line for line in lines if line.get_gid().endswith("/rolling")]
        lines = [line for line in lines if line not in rolling]
        if ax is axes[0]:
            assert len(rolling) == 4
            for line in rolling:
                stage = next(x for x in lines if x.get_gid() == line.get_gid().rsplit("/", 1)[0])
                assert line.get_color() == stage.get_color()
                assert list(line.get_xdata()) == list(stage.get_xdata())
                assert list(line.get_ydata()) == rolling_mean(list(stage.get_ydata()))
        else:
            assert not rolling
        assert {line.get_gid() for line in lines} == {"iter01/questioner", "iter01/reasoner", "iter02/questioner",
                                                      "iter02/reasoner"}
        for line in lines:
            kind = line.get_gid().split("/")[1]
            assert line.get_color() == STAGE_COLOURS[kind]
            start = {"iter01/questioner": 0, "iter01/reasoner": 3, "iter02/questioner": 6, "iter02/reasoner": 9}
            assert list(line.get_xdata()) == [start[line.get_gid()] + i for i in range(3)]
        boundaries = sorted(line.get_xdata()[0] for line in ax.get_lines() if not line.get_gid())
        assert boundaries == [2.5, 5.5, 8.5]  # every stage boundary marked
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_texts == ["questioner GRPO", "reasoner GRPO"]  # a figure legend, outside the axes


def test_reward_trend_table_reads_each_stage_first_and_last_third():
    from visplay.report.page import reward_trend_table

    records = [{"event": "step", "stage": "iter01/reasoner", "reward_mean": v} for v in (0.5, 0.4, 0.6, 0.6, 0.7, 0.9)]
    records += [{"event": "step", "stage": "iter01/questioner", "reward_mean": 0.3},
                {"event": "stage_done", "stage": "iter01/curation"}]
    html = reward_trend_table(records)
    assert "<td>iter01/reasoner</td><td>6</td><td>0.450</td><td>0.800</td><td>+0.350</td>" in html
    assert "iter01/questioner" not in html  # one step: no trend to read
    assert reward_trend_table([]) == ""


def test_thumbnails_are_small_embedded_images():
    import base64
    import io

    from PIL import Image

    from visplay.report.html import thumbnail_uri

    photo = thumbnail_uri(Image.new("RGB", (1600, 1200), (10, 120, 200)), 128)
    toy = thumbnail_uri(Image.new("RGB", (112, 112), (245, 245, 245)), 128)
    assert photo.startswith("data:image/jpeg;base64,") and toy.startswith("data:image/png;base64,")
    sizes = [Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size for uri in (photo, toy)]
    assert sizes == [(128, 96), (112, 112)]  # photos shrink to fit, toy images keep their pixels
