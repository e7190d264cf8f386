"""The ``openai`` sampler backend: the frozen models' votes and curation through any OpenAI-compatible chat
endpoint, typically ``vllm serve`` on GPUs of their own (the authors serve the frozen reasoner this way).

- Each request is one chat completion with ``n`` choices (the n votes share the server's prefix cache);
  images travel inline as base64 PNG data URLs (lossless: the server sees the pixels the HF sampler would).
- Every sampling parameter is sent explicitly (temperature, top_p, top_k, repetition_penalty, max_tokens,
  seed), so a server's defaults taken from the checkpoint's generation_config.json (``vllm serve``'s
  ``--generation-config auto``: Qwen2.5-VL-Instruct's repetition_penalty 1.05, top_k 1, ...) never apply.
  ``top_k`` and ``repetition_penalty`` are vLLM's extensions of the OpenAI schema.
- Each request carries its own seed, derived from the call's seed and the request's index, so the votes do
  not depend on how requests are batched, in which order they finish, or how many ranks send them.
- ``concurrency`` requests are in flight at once; connection failures, timeouts, HTTP 429 and 5xx are
  retried with exponential backoff; an endpoint that stays down stops the run with one clear error.
- Before the first request the endpoint must list the model the stage needs (``GET /models``): a server
  still holding last iteration's reasoner is refused, never silently used.

:class:`ManagedServer` optionally starts the server for each stage from a configured command (``{model}``
and ``{port}`` filled in) on a configured list of GPUs, keeps its log in the run folder, waits until it
answers, and stops it at the end of the stage.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from visplay.data.codec import data_uri, png_bytes
from visplay.distributed import SINGLE, Ranks
from visplay.engines.images import to_rgb
from visplay.engines.messages import is_image_part
from visplay.engines.sampler import request_seed
from visplay.errors import UserError
from visplay.http_json import JsonEndpoint

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "VISPLAY_SAMPLER_API_KEY"


@dataclass
class Endpoint:
    """Where the server is and how to talk to it."""

    url: str  # base URL, e.g. http://127.0.0.1:8000/v1
    model: str  # the name the server knows the model by (vllm serve PATH: PATH itself)
    key_env: str | None = DEFAULT_KEY_ENV
    concurrency: int = 32
    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 900.0


def base_url(url: str) -> str:
    """The API base for a base or full chat-completions URL.

    >>> base_url("http://127.0.0.1:8000/v1/chat/completions"), base_url("http://h:1/v1/")
    ('http://127.0.0.1:8000/v1', 'http://h:1/v1')
    """
    url = url.rstrip("/")
    return url[: -len("/chat/completions")] if url.endswith("/chat/completions") else url


def image_data_url(image: Image.Image) -> str:
    """A lossless ``data:image/png;base64,...`` URL of ``image`` in RGB."""
    return data_uri(png_bytes(to_rgb(image)))


def openai_messages(messages: list[dict], images: Sequence[Image.Image]) -> list[dict]:
    """VisPlay chat messages (``{"type": "image"}`` parts filled in order by ``images``) in the OpenAI
    format (``{"type": "image_url", "image_url": {"url": data URL}}``).

    >>> img = Image.new("RGB", (2, 2))
    >>> m = openai_messages([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}], [img])
    >>> m[0]["content"][0]["type"], m[0]["content"][0]["image_url"]["url"][:22], m[0]["content"][1]
    ('image_url', 'data:image/png;base64,', {'type': 'text', 'text': 'Q?'})
    """
    queue = list(images)
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if is_image_part(part):
                    if not queue:
                        raise ValueError("more image parts than images in a request")
                    parts.append({"type": "image_url", "image_url": {"url": image_data_url(queue.pop(0))}})
                else:
                    parts.append(part)
            content = parts
        out.append({"role": message["role"], "content": content})
    if queue:
        raise ValueError(f"{len(queue)} image(s) left over: fewer image parts than images in a request")
    return out


def chat_body(model: str, messages: list[dict], n: int, temperature: float, top_p: float, top_k: int,
              repetition_penalty: float, max_new_tokens: int, seed: int) -> dict:
    """The JSON body of one chat completion with ``n`` choices; ``temperature <= 0`` is greedy (n = 1).

    >>> b = chat_body("m", [], n=10, temperature=1.0, top_p=0.99, top_k=0, repetition_penalty=1.0,
    ...               max_new_tokens=64, seed=7)
    >>> b["n"], b["top_k"], b["max_tokens"], b["seed"], b["temperature"]
    (10, -1, 64, 7, 1.0)
    >>> chat_body("m", [], n=10, temperature=0, top_p=0.9, top_k=40, repetition_penalty=1.0,
    ...           max_new_tokens=8, seed=0)["n"]
    1
    """
    greedy = temperature <= 0
    return {
        "model": model,
        "messages": messages,
        "n": 1 if greedy else n,
        "temperature": 0.0 if greedy else float(temperature),
        "top_p": 1.0 if greedy else float(top_p),
        # vLLM extensions; -1 = off is accepted by every vLLM release (recent ones also take 0).
        "top_k": -1 if greedy or top_k <= 0 else int(top_k),
        "repetition_penalty": float(repetition_penalty),
        "max_tokens": int(max_new_tokens),
        "seed": int(seed),
        "skip_special_tokens": True,
        "stream": False,
    }


def choice_texts(body: dict, expected: int, url: str) -> list[str]:
    """The texts of a chat completion's choices, in choice order; exactly ``expected`` of them.

    >>> choice_texts({"choices": [{"index": 1, "message": {"content": "b"}},
    ...                           {"index": 0, "message": {"content": "a"}}]}, 2, "u")
    ['a', 'b']
    """
    try:
        choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
        texts = [c["message"]["content"] for c in choices]
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"sampler endpoint {url} answered without choices[].message.content; "
                        "is it an OpenAI-compatible chat endpoint?") from None
    if len(texts) != expected:
        raise UserError(f"sampler endpoint {url} returned {len(texts)} choices where {expected} were asked (n); "
                        "does it support n > 1?")
    return [t if isinstance(t, str) else "".join(p.get("text", "") for p in t or [] if isinstance(p, dict))
            for t in texts]


class OpenAISampler:
    """The :class:`visplay.engines.sampler.Sampler` protocol over an OpenAI-compatible chat endpoint.

    With ``ranks`` of a multi-process run every rank sends its share of the requests (round robin) and
    the answers are gathered on every rank.
    """

    def __init__(self, endpoint: Endpoint, ranks: Ranks = SINGLE, progress: bool = True, progress_min: int = 16,
                 check_model: bool = True):
        self.endpoint = endpoint
        self.url = base_url(endpoint.url)
        self.ranks = ranks
        self.progress = progress
        self.progress_min = progress_min
        self.key = os.environ.get(endpoint.key_env) if endpoint.key_env else None
        self.http = JsonEndpoint(
            f"sampler endpoint {self.url}", retries=endpoint.retries, backoff_s=endpoint.backoff_s,
            timeout_s=endpoint.timeout_s,
            hints={401: f"check the API key variable {endpoint.key_env}", 403: "check the API key",
                   404: "check sampler.url and the model name"},
            down_hint="start the server (or set sampler.server_command to let the run start it), or fix sampler.url")
        if check_model:
            self.check_model()

    # --- HTTP ------------------------------------------------------------------------------------
    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def _call(self, method: str, path: str, payload: dict | None = None, timeout: float | None = None) -> dict:
        """One JSON call with retries and backoff; a :class:`UserError` when the endpoint stays down."""
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return self.http.call(self.url + path, payload, method=method, headers=headers, timeout=timeout)

    def served_models(self) -> list[str]:
        body = self._call("GET", "/models", timeout=min(60.0, self.endpoint.timeout_s))
        try:
            return [str(m["id"]) for m in body["data"]]
        except (KeyError, TypeError):
            raise UserError(f"sampler endpoint {self.url}/models answered without data[].id; is it an "
                            "OpenAI-compatible endpoint?") from None

    def check_model(self) -> None:
        served = self.served_models()
        if self.endpoint.model not in served:
            raise UserError(f"sampler endpoint {self.url} serves {', '.join(served) or 'no model'}, not "
                            f"{self.endpoint.model} (the frozen model of this stage); set sampler.server_command so "
                            "the run serves each stage's model, or sampler.served_model to the served name")

    # --- sampling ----------------------------------------------------------------------------------
    def sample(self, requests, n: int = 1, temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
               seed: int = 0, desc: str | None = None, top_k: int = 0, repetition_penalty: float = 1.0) -> list[list[str]]:
        if n < 1:
            raise ValueError("n must be >= 1")
        if not requests:
            return []
        greedy = temperature <= 0
        expected = 1 if greedy else n
        mine = self.ranks.mine(len(requests))
        bar = tqdm(total=len(mine), desc=desc or "sampling", unit="prompt", leave=False,
                   disable=not self.progress or not self.ranks.is_main or len(requests) < self.progress_min)

        def one(index: int) -> tuple[int, list[str]]:
            request = requests[index]
            body = chat_body(self.endpoint.model, openai_messages(request.messages, request.images), n, temperature,
                             top_p, top_k, repetition_penalty, max_new_tokens, request_seed(seed, index))
            texts = choice_texts(self._call("POST", "/chat/completions", body), expected, self.url)
            bar.update(1)
            return index, texts * n if greedy else texts

        workers = max(1, min(self.endpoint.concurrency, len(mine)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            partial = dict(pool.map(one, mine))
        bar.close()
        merged = self.ranks.merge(partial)
        return [merged[i] for i in range(len(requests))]

    def close(self) -> None:
        pass


# --- a server per stage ------------------------------------------------------------------------------
def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``port`` (closed connections lingering in TIME_WAIT do not count, as
    servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def server_argv(command: str, model: str | Path, port: int) -> list[str]:
    """The server's argv: ``command`` with ``{model}`` and ``{port}`` filled in (shell-quoted).

    >>> server_argv("vllm serve {model} --port {port} --generation-config vllm", "/m/my model", 8001)
    ['vllm', 'serve', '/m/my model', '--port', '8001', '--generation-config', 'vllm']
    """
    if "{model}" not in command:
        raise UserError("sampler.server_command must contain {model} (the stage's frozen model folder)")
    return shlex.split(command.replace("{model}", shlex.quote(str(model))).replace("{port}", str(port)))


class ManagedServer:
    """An OpenAI-compatible server started for one stage and stopped at its end.

    ``command`` gets ``{model}`` and ``{port}`` filled in; ``gpus`` (e.g. ``"4,5,6,7"``) becomes the server's
    ``CUDA_VISIBLE_DEVICES``; stdout and stderr go to ``log_path`` (kept). :meth:`start` returns once
    ``GET /v1/models`` answers, or raises a :class:`UserError` quoting the log's last lines.
    """

    def __init__(self, command: str, model: str | Path, port: int, log_path: Path, gpus: str | None = None,
                 startup_timeout_s: float = 900.0, host: str = "127.0.0.1"):
        self.argv = server_argv(command, model, port)
        self.port, self.host = port, host
        self.log_path = Path(log_path)
        self.gpus = gpus
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ManagedServer:
        if not port_is_free(self.port, self.host):
            raise UserError(f"sampler.server_port {self.port} is already in use; stop what listens there or choose "
                            "another port")
        env = dict(os.environ)
        if self.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpus)
        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                     "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID"):
            env.pop(name, None)  # the server is not a rank of the training run's process group
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting the sampler server: %s (log: %s)", " ".join(self.argv), self.log_path)
        with open(self.log_path, "ab") as handle:
            try:
                self.process = subprocess.Popen(self.argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
            except OSError as exc:
                raise UserError(f"sampler.server_command could not start ({exc.strerror}: {self.argv[0]})") from None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(f"the sampler server exited with code {self.process.returncode} before answering; "
                                f"last lines of {self.log_path}: {self._tail()}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise UserError(f"the sampler server did not answer within {self.startup_timeout_s:.0f} s "
                        f"(sampler.server_startup_timeout); last lines of {self.log_path}: {self._tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # The server may have children (vLLM's engine and workers): signal its whole process group.
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
