"""A small demo run end to end, then its report rendered in headless Chromium (Debian's ``chromium``).

The demo runs in a subprocess exactly as ``visplay demo`` does (two iterations, small sizes), so its
console output is checked as a person sees it: the explanation after the table, why GRPO uses only part
of the examples, and no "new PAD/BOS/EOS tokens" warning. Then model text in questions.parquet is replaced
by script payloads and bytes that are not valid UTF-8, the report is rebuilt, and Chromium renders it:
every image must load (naturalWidth > 0), the tables must have the base-model row, the page must fit its
width, and no script from model text may run.

CI (``.ci/run``) installs Chromium; without it this test fails there. Elsewhere it is skipped only when
the machine has no apt-get to install it with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# A demo run in a subprocess and a browser: part of CI, left out of the quick loop (-m "not slow").
pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
PAYLOADS = [
    '<script>document.title="PWNED-script"</script>',
    "<img src=x onerror=\"document.title='PWNED-img'\">",
    "\"><svg onload=\"document.title='PWNED-svg'\">",
    "</td></tr></table><script>document.title='PWNED-close'</script>",
]
BAD_BYTES = b"<question>broken \xff\xfe bytes</question>"
RESULT_ID = "visplay-browser-check"

DEMO_SCRIPT = """
import json, sys
from visplay.cli.progress import setup_logging
from visplay.demo import explain, run_demo
from visplay.report.iteration_table import format_table
setup_logging()
grpo = ["steps=2", "prompts_per_step=2", "group_size=4"]
overrides = [f"{role}.grpo.{kv}" for role in ("questioner", "reasoner") for kv in grpo] + [
    "questioner.votes=4", "curation.images=6", "curation.samples_per_image=3", "curation.votes=4",
    "curation.min_kept=1", "curation.on_too_few=continue"]
rows = run_demo(sys.argv[1], iterations=2, seed=0, n_images=24, benchmark_items=36, overrides=overrides)
print(format_table(rows))
print(explain(rows))
print("ROWS " + json.dumps(rows))
"""

# Appended to a copy of the report (with its no-script policy removed, so that escaping alone is tested):
# after load, collect what the page shows and write it into the DOM for --dump-dom.
CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var imgs = Array.prototype.slice.call(document.images);
    var iters = document.getElementById("iterations");
    var result = {
      title: document.title,
      images: imgs.length,
      broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; }),
      scripts: document.scripts.length,
      foreign: document.querySelectorAll("svg, iframe, object, embed").length,
      headers: iters ? Array.prototype.map.call(iters.querySelectorAll("thead th"), function (th) { return th.textContent; }) : [],
      first_row: iters ? Array.prototype.map.call(iters.querySelectorAll("tbody tr")[0].cells, function (td) { return td.textContent; }) : [],
      table_headers: Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
        return Array.prototype.map.call(t.querySelectorAll("thead th"), function (th) { return th.textContent; }); }),
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      text: document.body.innerText
    };
    var pre = document.createElement("pre");
    pre.id = "%s";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }, 300);
});
</script>
""" % RESULT_ID  # noqa: UP031 (the script is full of braces; %s keeps it readable)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; CI must render the report (.ci/run installs it with apt-get)")
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and this machine has no apt-get to install it "
                    "(Debian: apt-get install -y chromium)")
    pytest.fail("chromium is not installed: apt-get install -y chromium (this test renders the report with it)")


def chromium(browser: str, profile: Path, *args: str, width: int = 1280, height: int = 1000) -> str:
    result = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                             *args], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def render(browser: str, page: Path, profile: Path, width: int) -> dict:
    dom = chromium(browser, profile, "--virtual-time-budget=10000", "--dump-dom", page.as_uri(), width=width)
    match = re.search(rf'<pre id="{RESULT_ID}">(.*?)</pre>', dom, re.S)
    assert match, "the check script did not run (no result in the dumped DOM)"
    import html

    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    browser = find_chromium()
    root = tmp_path_factory.mktemp("demo")
    out = root / "run"
    result = subprocess.run([sys.executable, "-c", DEMO_SCRIPT, str(out)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.split("ROWS ", 1)[1])
    return {"browser": browser, "root": root, "out": out, "rows": rows, "stdout": result.stdout,
            "stderr": result.stderr}


def test_demo_explains_itself_without_token_warnings(demo):
    output = demo["stdout"] + demo["stderr"]
    assert "new PAD/BOS/EOS tokens" not in output
    # GRPO says why it trains on part of the examples.
    assert re.search(r"GRPO iter01/reasoner: training on 4 of the \d+ examples, because a stage runs a fixed number "
                     r"of steps: reasoner.grpo.steps 2 x 2 prompts per step = 4 prompts", output)
    rows = demo["rows"]
    base, last = rows[0]["toy_accuracy"], rows[-1]["toy_accuracy"]
    labels = [r["pseudo_label_accuracy"] for r in rows[1:]]
    explanation = demo["stdout"].split("ROWS ", 1)[0]
    assert f"{100 * base:.1f}% (base model)" in explanation or f"at about {100 * base:.1f}%" in explanation
    assert f"{100 * last:.1f}%" in explanation and f"({100 * (last - base):+.1f} points)" in explanation
    assert f"{100 * min(labels):.1f}% to {100 * max(labels):.1f}%" in explanation
    assert "visplay study --arms paper,oracle-labels --seeds 0,1,2" in explanation
    assert "0 (base)" in explanation  # the table printed before it has the base row


def _inject(questions: Path) -> None:
    """Replace model text with script payloads, and one raw output with bytes that are not valid UTF-8."""
    table = pq.read_table(questions)
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        payload = PAYLOADS[i % len(PAYLOADS)]
        if row["question"] is not None:
            row["question"] = f"{payload} {row['question']}"
        row["raw"] = f"{payload} {row['raw']}"
        if row["votes"]:
            row["votes"] = [PAYLOADS[(i + 1) % len(PAYLOADS)]] + row["votes"][1:]
        if row["silver_answer"] is not None and i % 3 == 0:
            row["silver_answer"] = PAYLOADS[(i + 2) % len(PAYLOADS)]
    rows[0]["question"] = None  # shown through its raw output, which holds the broken bytes
    new = pa.Table.from_pylist(rows, schema=table.schema)
    raw = [BAD_BYTES] + [r["raw"].encode() for r in rows[1:]]
    offsets = [0]
    for item in raw:
        offsets.append(offsets[-1] + len(item))
    column = pa.StringArray.from_buffers(len(raw), pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(raw)))
    new = new.set_column(new.column_names.index("raw"), "raw", column)
    pq.write_table(new, questions)


def test_report_renders_images_base_rows_and_no_script_in_chromium(demo):
    from visplay.report import write_report
    from visplay.report.iteration_table import columns_for, fmt

    out, rows = demo["out"], demo["rows"]
    for iteration in (1, 2):
        _inject(out / f"iter_{iteration:02d}" / "questions.parquet")
    report = write_report(out)
    html_text = report.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in html_text and "<script" not in html_text
    for payload in PAYLOADS:
        assert payload not in html_text
    # A copy without the no-script policy, with the check script: escaping alone must keep payloads inert.
    page = demo["root"] / "checked.html"
    page.write_text(re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", html_text)
                    .replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
    for width in (1280, 900):
        result = render(demo["browser"], page, demo["root"] / f"profile-{width}", width)
        assert result["title"].startswith("VisPlay run"), result["title"]  # no payload ran
        assert result["scripts"] == 1 and result["foreign"] == 0
        assert result["broken"] == [] and result["images"] >= 2 * 4 + 2  # grids, sample thumbnails, plots
        assert result["overflow"] <= 0, f"page wider than the window at {width}px"
    # The iterations table: the terminal's names in its order, the base row first, percentages.
    assert result["headers"] == [c.title for c in columns_for(rows)]
    assert result["first_row"][:2] == ["0 (base)", fmt(rows[0]["toy_accuracy"], "pct")]
    # The per-family table has the base model's column too.
    assert any(h[:2] == ["family", "base"] for h in result["table_headers"])
    # Model text is shown as text, and bytes that are not valid UTF-8 as escapes, never as U+FFFD.
    text = result["text"]
    assert PAYLOADS[0] in text and "broken \\xff\\xfe bytes" in text and "\ufffd" not in text


def test_report_screenshot_is_a_rendered_page(demo):
    from PIL import Image

    report = demo["out"] / "report.html"
    shot = demo["root"] / "report.png"
    chromium(demo["browser"], demo["root"] / "profile-shot", f"--screenshot={shot}", report.as_uri(), height=2400)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    # A blank or unstyled page has a handful of colours; thumbnails and plots bring hundreds.
    assert len(image.getcolors(maxcolors=1 << 20)) > 200
