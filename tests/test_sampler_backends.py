"""The sampler backends: HF votes from one shared prefill, the openai client over real HTTP against a local
server answering with a real tiny model, and the vllm backend's request building and output mapping (vLLM
itself cannot run on these CPU machines)."""

from __future__ import annotations

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from visplay.distributed import Ranks
from visplay.engines.sampler import HFSampler, SampleRequest
from visplay.errors import UserError
from visplay.selfplay.prompts import reasoner_messages


def _image(seed: int, size: int = 56) -> Image.Image:
    import numpy as np

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _requests(count: int = 3) -> list[SampleRequest]:
    return [SampleRequest(reasoner_messages("How many red circles?" + " really" * i), [_image(i)]) for i in range(count)]


# --- HF: shared prefill ------------------------------------------------------------------------------
def test_hf_votes_from_one_prefill_equal_the_expanded_reference(tiny_loaded):
    """The reference is benchmarks/bench_votes.py's ``generate(num_return_sequences=n)`` on expanded inputs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_votes", Path(__file__).parents[1] / "benchmarks" / "bench_votes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sampler = HFSampler(tiny_loaded, max_batch_tokens=10**9, max_batch_rows=10**6, progress=False)
    requests = _requests(3)  # prompts of different lengths: left padding in the shared prefill
    fast = sampler.sample(requests, n=4, temperature=1.0, top_p=0.99, max_new_tokens=6, seed=3)
    reference = bench.reference_votes(sampler, requests, 4, 1.0, 0.99, 6, seed=3)
    assert fast == reference
    assert [len(v) for v in fast] == [4, 4, 4]
    assert len({v for votes in fast for v in votes}) > 3  # really sampled


def test_hf_batches_split_across_ranks_give_the_single_process_answer(tiny_loaded):
    """Each rank generates its round-robin share of the batch plan; merged, the answers are the same."""
    import visplay.distributed as distributed

    requests = _requests(4)
    kwargs = dict(n=2, temperature=1.0, top_p=0.99, max_new_tokens=3, seed=1)
    whole = HFSampler(tiny_loaded, max_batch_rows=2, progress=False).sample(requests, **kwargs)
    parts = {}

    class Recording(Ranks):
        def merge(self, partial):  # stands in for the all-gather: keep this rank's share
            parts[self.rank] = dict(partial)
            return {i: partial.get(i) for i in range(len(requests))}

    for rank in (0, 1):
        HFSampler(tiny_loaded, max_batch_rows=2, progress=False, ranks=Recording(rank, 2)).sample(requests, **kwargs)
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert {**parts[0], **parts[1]} == dict(enumerate(whole))
    assert distributed.current().world == 1


# --- openai: a local server with a real tiny model ----------------------------------------------------
@pytest.fixture(scope="module")
def local_server(tiny_model_dir):
    from visplay.engines.hf_server import serve

    server = serve(str(tiny_model_dir), port=0, device="cpu")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", str(tiny_model_dir)
    server.shutdown()
    server.server_close()


def _client(url: str, model: str, **kwargs):
    from visplay.engines.sampler_openai import Endpoint, OpenAISampler

    options = dict(concurrency=4, retries=1, backoff_s=0.01, timeout_s=120)
    options.update(kwargs)
    return OpenAISampler(Endpoint(url=url, model=model, key_env=None, **options), progress=False)


def test_openai_client_over_http_matches_the_local_model(local_server, tiny_loaded):
    url, model = local_server
    client = _client(url, model)
    requests = _requests(3)
    greedy = client.sample(requests, n=3, temperature=0, max_new_tokens=8, seed=0)
    direct = HFSampler(tiny_loaded, progress=False).sample(requests, n=3, temperature=0, max_new_tokens=8)
    assert greedy == direct  # images arrive losslessly (PNG data URLs), prompts are the same text
    sampled = _client(url, model, concurrency=1).sample(requests, n=4, temperature=1.0, top_p=0.99,
                                                        max_new_tokens=6, seed=5)
    again = _client(url, model, concurrency=1).sample(requests, n=4, temperature=1.0, top_p=0.99,
                                                      max_new_tokens=6, seed=5)
    assert [len(v) for v in sampled] == [4, 4, 4] and sampled == again  # one seed per request
    assert len({v for votes in sampled for v in votes}) > 3


def test_openai_client_refuses_a_server_holding_another_model(local_server):
    url, _ = local_server
    with pytest.raises(UserError, match="serves .* not /elsewhere/reasoner"):
        _client(url, "/elsewhere/reasoner")


def test_openai_client_says_when_the_endpoint_is_down():
    from visplay.engines.sampler_openai import port_is_free

    port = next(p for p in range(45871, 45971) if port_is_free(p))
    with pytest.raises(UserError, match=r"unreachable after 2 attempt\(s\).*sampler.server_command"):
        _client(f"http://127.0.0.1:{port}/v1", "m")


def test_openai_client_retries_a_busy_server_and_checks_the_answer():
    """A stub endpoint: 503 first, then answers (3 choices where 3 were asked; then 2 where 3 were asked)."""
    calls = []

    class Flaky(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._json(200, {"data": [{"id": "m"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append(body)
            if len(calls) == 1:
                self._json(503, {"error": {"message": "warming up"}})
                return
            count = body["n"] if len(calls) == 2 else body["n"] - 1
            self._json(200, {"choices": [{"index": i, "message": {"content": f"v{i}"}} for i in reversed(range(count))]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = _client(f"http://127.0.0.1:{server.server_address[1]}/v1", "m", concurrency=1)
        request = [SampleRequest(reasoner_messages("Q?"), [_image(0)])]
        assert client.sample(request, n=3, temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=1.1,
                             max_new_tokens=5, seed=2) == [["v0", "v1", "v2"]]
        body = calls[-1]
        assert (body["n"], body["temperature"], body["top_p"], body["top_k"], body["repetition_penalty"],
                body["max_tokens"], body["seed"]) == (3, 0.7, 0.9, 40, 1.1, 5, 2_000_006)
        image_part = body["messages"][0]["content"][0]
        assert image_part["type"] == "image_url" and image_part["image_url"]["url"].startswith("data:image/png;base64,")
        with pytest.raises(UserError, match="returned 2 choices where 3 were asked"):
            client.sample(request, n=3, temperature=1.0, max_new_tokens=5)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_managed_server_starts_serves_and_stops(tiny_model_dir, tmp_path):
    from visplay.engines.sampler_openai import Endpoint, ManagedServer, OpenAISampler, port_is_free

    port = next(p for p in range(46011, 46111) if port_is_free(p))
    command = f"{sys.executable} -m visplay.engines.hf_server --model {{model}} --port {{port}}"
    log_path = tmp_path / "logs" / "votes.log"
    with ManagedServer(command, tiny_model_dir, port, log_path, startup_timeout_s=900) as server:
        client = OpenAISampler(Endpoint(url=server.url, model=str(tiny_model_dir), key_env=None), progress=False)
        out = client.sample(_requests(2), n=2, temperature=1.0, max_new_tokens=4, seed=0)
        assert [len(v) for v in out] == [2, 2]
        pid = server.process.pid
    assert server.process is None and port_is_free(port)
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    assert "serving" in log_path.read_text()
    broken = ManagedServer(f"{sys.executable} -c 'import sys; print(\"no such model\"); sys.exit(3)' {{model}}",
                           tiny_model_dir, port, tmp_path / "logs" / "broken.log", startup_timeout_s=60)
    with pytest.raises(UserError, match="exited with code 3.*no such model"):
        broken.start()


def test_openai_config_needs_an_endpoint(tiny_model_dir, tmp_path):
    from visplay.config import load_evolve_config

    base = {"model": {"path": str(tiny_model_dir)}, "data": {"images": str(tmp_path)}}
    with pytest.raises(UserError, match="sampler.url: the openai backend needs an endpoint"):
        load_evolve_config(None, ["sampler.backend=openai"], base=base)
    with pytest.raises(UserError, match="must contain {model}"):
        load_evolve_config(None, ["sampler.backend=openai", "sampler.server_command=vllm serve x"], base=base)


# --- vllm: request building and output mapping without vLLM -------------------------------------------
def test_vllm_backend_says_what_is_missing(tiny_model_dir, tmp_path):
    import importlib.util

    from visplay.config import load_evolve_config
    from visplay.stages.sampling import frozen_sampler

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    cfg = load_evolve_config(None, ["sampler.backend=vllm"],
                             base={"model": {"path": str(tiny_model_dir)}, "data": {"images": str(tmp_path)}})
    with pytest.raises(UserError, match="vllm is not installed"):
        with frozen_sampler(cfg, tiny_model_dir, "votes", tmp_path):
            pass
    # The command refuses before any work: nothing is written.
    from visplay.cli.main import main

    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"model": {"path": str(tiny_model_dir)}, "data": {"images": str(tmp_path)}}))
    assert main(["evolve", str(config), "--out", str(tmp_path / "run"), "--set", "sampler.backend=vllm"]) == 2
    assert not (tmp_path / "run").exists()


class _FakeVLLM:
    """Stands in for the ``vllm`` package (which cannot run here): records what the sampler hands over and
    answers in vLLM's output shape (completions possibly out of index order)."""

    def __init__(self):
        self.module = types.ModuleType("vllm")
        self.llm_kwargs, self.calls = None, []
        fake = self

        class SamplingParams:
            def __init__(self, **kwargs):
                self.__dict__.update(kwargs)

        class LLM:
            def __init__(self, **kwargs):
                fake.llm_kwargs = kwargs

            def generate(self, prompts, sampling_params, use_tqdm=False):
                fake.calls.append((prompts, sampling_params))
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(index=j, text=f"{p['prompt'][-12:]}|{s.seed}|{j}")
                                                       for j in reversed(range(s.n))])
                        for p, s in zip(prompts, sampling_params)]

        self.module.LLM, self.module.SamplingParams = LLM, SamplingParams


def test_vllm_sampler_builds_requests_and_maps_outputs(tiny_model_dir, monkeypatch):
    import visplay.engines.sampler_vllm as sampler_vllm

    fake = _FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setattr(sampler_vllm, "check_vllm_environment", lambda: None)
    sampler = sampler_vllm.VLLMSampler(tiny_model_dir, gpu_memory_utilization=0.3, max_pixels=200704, progress=False)
    assert fake.llm_kwargs["model"] == str(tiny_model_dir) and fake.llm_kwargs["generation_config"] == "vllm"
    assert fake.llm_kwargs["mm_processor_kwargs"] == {"max_pixels": 200704}
    requests = _requests(3)
    out = sampler.sample(requests, n=3, temperature=1.0, top_p=0.99, top_k=40, repetition_penalty=1.05,
                         max_new_tokens=7, seed=4)
    prompts, params = fake.calls[-1]
    expected_text = sampler.processor.apply_chat_template(requests[1].messages, add_generation_prompt=True,
                                                          tokenize=False)
    assert prompts[1]["prompt"] == expected_text and "<|image_pad|>" in expected_text
    assert prompts[1]["multi_modal_data"]["image"].size == (56, 56)
    assert [(p.n, p.top_k, p.top_p, p.repetition_penalty, p.max_tokens, p.seed) for p in params] == [
        (3, 40, 0.99, 1.05, 7, 4_000_012 + i) for i in range(3)]
    assert out[1] == [f"{expected_text[-12:]}|4000013|{j}" for j in range(3)]  # completions in index order
    greedy = sampler.sample(requests, n=3, temperature=0, max_new_tokens=7, seed=4)
    assert all(p.n == 1 and p.temperature == 0.0 for p in fake.calls[-1][1])
    assert all(len(set(v)) == 1 and len(v) == 3 for v in greedy)  # one greedy answer, repeated n times
    # A rank of a 2-process run sends its round-robin share only.
    class Rank1Of2(Ranks):
        def merge(self, partial):  # stands in for the all-gather: rank 0 answered requests 0 and 2
            return {0: ["from rank 0"], 2: ["from rank 0"], **partial}

    sampler.ranks = Rank1Of2(1, 2)
    out = sampler.sample(requests, n=1, temperature=1.0, max_new_tokens=3, seed=0)
    assert len(fake.calls[-1][0]) == 1 and out[1][0].endswith("|1|0") and out[0] == out[2] == ["from rank 0"]
    sampler.close()
    assert sampler.llm is None


# --- the demo on the openai backend ---------------------------------------------------------------------
@pytest.mark.slow
def test_demo_runs_on_the_openai_backend(tmp_path, monkeypatch, capsys):
    """`visplay demo` with every frozen-model generation served over HTTP by a local server the run starts
    for each phase (the authors' layout, with visplay.engines.hf_server in place of vllm serve). The world
    is made smaller than the demo's (fewer images and benchmark items) to keep the test short."""
    import visplay.demo as demo
    from visplay.cli.main import main
    from visplay.engines.sampler_openai import port_is_free

    real = demo.prepare_world
    monkeypatch.setattr(demo, "prepare_world", lambda world_dir, seed, n_images, items, log, **kw:
                        real(world_dir, seed, 16, 30, log, **kw))
    port = next(p for p in range(46211, 46311) if port_is_free(p))
    grpo = ["steps=1", "prompts_per_step=2", "group_size=4", "max_completion_length=32"]
    overrides = [
        "sampler.backend=openai", f"sampler.server_port={port}",
        f"sampler.server_command={sys.executable} -m visplay.engines.hf_server --model {{model}} --port {{port}}",
        "questioner.votes=4", "questioner.vote_sampling.max_tokens=32", "curation.vote_sampling.max_tokens=32",
        "curation.images=6", "curation.samples_per_image=2", "curation.votes=4", "curation.min_kept=1",
        "curation.on_too_few=continue", "eval.max_new_tokens=32",
        *(f"questioner.grpo.{g}" for g in grpo), *(f"reasoner.grpo.{g}" for g in grpo),
    ]
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--iterations", "1"] + [a for o in overrides for a in ("--set", o)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    header = [line for line in printed.splitlines() if line.strip().startswith("iter ")][-1]  # the final table
    for column in ("toy acc", "pseudo-label acc", "kept", "candidates", "parsed q", "oracle-valid q", "mean conf"):
        assert column in header
    state = json.loads((out / "state.json").read_text())["iterations"]["1"]
    assert set(state) == {"questioner", "curation", "reasoner", "eval"}
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert logs == ["iter01_curation_questions.log", "iter01_curation_votes.log", "iter01_questioner_votes.log"]
    assert all("serving" in (out / "logs" / name).read_text() for name in logs)
    assert port_is_free(port)  # every server was stopped
    assert (out / "report.html").is_file()
