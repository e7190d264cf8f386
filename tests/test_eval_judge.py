"""The judge path against a real HTTP server on 127.0.0.1 (http.server in a thread): fallback and always
modes, MM-Vet partial credit, the on-disk cache (a rerun sends nothing), retries, clear errors."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from visplay.cli.main import main
from visplay.errors import UserError
from visplay.evaluation import JudgeClient, JudgeConfig, load_benchmark, score_responses, summarize


class FakeJudge:
    """An OpenAI-compatible /v1/chat/completions endpoint that grades by string containment."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail_first: list[int] = []  # HTTP codes to answer before answering normally
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.requests.append(body)
                judge.headers.append(dict(self.headers))
                if judge.fail_first:
                    code = judge.fail_first.pop(0)
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b'{"error": "nope"}')
                    return
                if not self.path.endswith("/v1/chat/completions"):
                    self.send_response(404)
                    self.end_headers()
                    return
                reply = judge.grade(body["messages"][-1]["content"])
                out = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def grade(prompt: str) -> str:
        if "correctness score" in prompt:  # MM-Vet partial credit
            return "0.6"
        m = re.search(r"Reference answer:\n(.*?)\n\nCandidate answer:\n(.*?)\n\nReply", prompt, re.DOTALL)
        reference, candidate = m.group(1).strip().lower(), m.group(2).strip().lower()
        return "1" if reference in candidate else "0"


@pytest.fixture
def fake_judge():
    judge = FakeJudge()
    judge.thread.start()
    yield judge
    judge.server.shutdown()
    judge.server.server_close()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def toy_file(tmp_path):
    rows = [{"id": "t1", "question": "How many circles?", "answer": "3", "image": _png(), "family": "counting", "qtype": "n"},
            {"id": "t2", "question": "Is there a square?", "answer": "yes", "image": _png(), "family": "existence", "qtype": "yn"},
            {"id": "t3", "question": "What color is it?", "answer": "red", "image": _png(), "family": "attribute", "qtype": "o"}]
    path = tmp_path / "toy.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


RESPONSES = {
    "t1": "I count them: \\boxed{3}",                                                 # rule, correct
    "t2": "Looking at every shape in the picture, I am fairly sure that yes, there is one.",  # unparsed by rules
    "t3": "<think>the object looks reddish but I keep thinking",                      # nothing visible
}


def _client(judge, tmp_path, **kw):
    return JudgeClient(JudgeConfig(url=judge.url, model="fake-judge", cache_dir=tmp_path / "cache", **kw))


def test_fallback_judges_only_unparsed_and_the_cache_answers_reruns(fake_judge, toy_file, tmp_path):
    data = load_benchmark("toy", toy_file)
    scored = score_responses(data, RESPONSES, "fallback", _client(fake_judge, tmp_path))
    assert [(s.scored_by, s.score) for s in scored] == [("rule", 1.0), ("judge", 1.0), ("unparsed", 0.0)]
    assert len(fake_judge.requests) == 1
    sent = fake_judge.requests[0]
    assert sent["model"] == "fake-judge" and sent["temperature"] == 0.0
    assert "Is there a square?" in sent["messages"][-1]["content"]
    summary = summarize(data, scored, "fallback", _client(fake_judge, tmp_path))
    assert summary["judged"] == 1 and summary["unparsed"] == 1 and summary["rule_unparsed"] == 2
    assert summary["judge_model"] == "fake-judge" and "judge fake-judge" in summary["protocol"]
    # Rerun with a fresh client: everything comes from the cache, the server sees nothing new.
    again = _client(fake_judge, tmp_path)
    rescored = score_responses(data, RESPONSES, "fallback", again)
    assert [s.score for s in rescored] == [1.0, 1.0, 0.0]
    assert len(fake_judge.requests) == 1 and again.cache_hits == 1 and again.requests_sent == 0


def test_always_judges_every_visible_reply(fake_judge, toy_file, tmp_path):
    data = load_benchmark("toy", toy_file)
    scored = score_responses(data, RESPONSES, "always", _client(fake_judge, tmp_path))
    assert [s.scored_by for s in scored] == ["judge", "judge", "unparsed"]
    assert len(fake_judge.requests) == 2
    # The judge saw the rule-extracted answer for t1, not the whole reply.
    # (requests arrive from several worker threads, in any order)
    assert any("Candidate answer:\n3\n" in r["messages"][-1]["content"] for r in fake_judge.requests)


def test_fallback_also_judges_answers_that_name_no_option(fake_judge, tmp_path):
    rows = [{"index": i, "question": "What animal?\nOptions: A: a cat, B: a dog", "answer": "B", "image": _png(),
             "category": "c"} for i in range(3)]
    path = tmp_path / "mmstar.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = load_benchmark("mmstar", path)
    responses = {"0": "\\boxed{A}", "1": "\\boxed{the B. a dog one}", "2": "\\boxed{a hamster}"}
    never = score_responses(data, responses)
    assert [(s.scored_by, s.score) for s in never] == [("rule", 0.0), ("rule", 0.0), ("rule", 0.0)]
    scored = score_responses(data, responses, "fallback", _client(fake_judge, tmp_path))
    assert [(s.scored_by, s.score) for s in scored] == [("rule", 0.0), ("judge", 1.0), ("judge", 0.0)]


def test_mmvet_partial_credit(fake_judge, tmp_path):
    rows = [{"question_id": f"v1_{i}", "question": "Explain the joke.", "answer": "It is a pun<AND>about cats",
             "image": _png(), "capability": "rec,know"} for i in range(2)]
    path = tmp_path / "mmvet.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = load_benchmark("mmvet", path)
    scored = score_responses(data, {"v1_0": "A pun on cats.", "v1_1": "Something funny."}, "fallback",
                             _client(fake_judge, tmp_path))
    assert [s.score for s in scored] == [0.6, 0.6] and all(s.scored_by == "judge" for s in scored)
    assert "<AND>" in fake_judge.requests[0]["messages"][-1]["content"]
    assert summarize(data, scored, "fallback", None)["accuracy"] == pytest.approx(60.0)


def test_api_key_comes_from_the_named_environment_variable(fake_judge, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sekret")
    _client(fake_judge, tmp_path, key_env="MY_JUDGE_KEY").complete([{"role": "user", "content": "correctness score?"}])
    monkeypatch.delenv("MY_JUDGE_KEY")
    _client(fake_judge, tmp_path / "other", key_env="MY_JUDGE_KEY").complete([{"role": "user", "content": "correctness score?"}])
    assert fake_judge.headers[0].get("Authorization") == "Bearer sekret"
    assert "Authorization" not in fake_judge.headers[1]


def test_transient_errors_are_retried_and_refusals_are_clear(fake_judge, tmp_path):
    fake_judge.fail_first = [503, 429]
    client = _client(fake_judge, tmp_path, retries=2, backoff_s=0.01)
    assert client.complete([{"role": "user", "content": "correctness score?"}]) == "0.6"
    assert client.requests_sent == 3
    fake_judge.fail_first = [401]
    with pytest.raises(UserError, match="HTTP 401.*MY_KEY"):
        _client(fake_judge, tmp_path / "x", key_env="MY_KEY").complete([{"role": "user", "content": "hi"}])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_judge_is_a_clear_error_not_a_silent_fallback(toy_file, tmp_path):
    data = load_benchmark("toy", toy_file)
    client = JudgeClient(JudgeConfig(url=f"http://127.0.0.1:{_free_port()}/v1", model="m", cache_dir=tmp_path / "c",
                                     retries=1, backoff_s=0.01))
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"unreachable after 2 attempt\(s\).*--judge never"):
        score_responses(data, RESPONSES, "fallback", client)
    assert time.perf_counter() - started < 10


def test_cli_score_with_judge_and_unreachable_judge(fake_judge, toy_file, tmp_path, capsys):
    predictions = tmp_path / "run" / "predictions.jsonl"
    predictions.parent.mkdir()
    predictions.write_text("".join(json.dumps({"id": k, "response": v}) + "\n" for k, v in RESPONSES.items()))
    args = ["eval", "score", "--benchmark", "toy", "--data", str(toy_file), "--predictions", str(predictions),
            "--judge-url", fake_judge.url, "--judge-model", "fake-judge", "--judge-cache", str(tmp_path / "cache")]
    assert main(args) == 0
    summary = json.loads((predictions.parent / "summary.json").read_text())
    assert summary["judge_mode"] == "fallback" and summary["judged"] == 1
    assert summary["accuracy"] == pytest.approx(200 / 3)
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["scored_by"] for r in lines] == ["rule", "judge", "unparsed"]
    assert "fake-judge" in capsys.readouterr().out
    # A judge that cannot be reached: exit 2, one line, no traceback.
    port = _free_port()
    bad = args[:8] + ["--judge-url", f"http://127.0.0.1:{port}/v1", "--judge-model", "m", "--judge-retries", "0",
                      "--judge-cache", str(tmp_path / "cache2")]
    assert main(bad) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("visplay: error: judge at") and "unreachable" in last and "Traceback" not in err
    # --judge always without an endpoint is refused up front.
    assert main(args[:8] + ["--judge", "always"]) == 2
    assert "needs --judge-url" in capsys.readouterr().err
