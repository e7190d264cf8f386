"""A small OpenAI-compatible chat server over :class:`visplay.engines.sampler.HFSampler` (standard library).

``python -m visplay.engines.hf_server --model DIR --port 8000`` serves one local checkpoint the way
``vllm serve DIR --port 8000`` does, for machines where vLLM cannot run (CPU-only machines: vLLM's
Qwen-VL code needs torchvision) and for testing the ``openai`` sampler backend end to end:

- ``GET /v1/models`` lists the model under its served name (the ``--model`` argument as given, like vLLM,
  or ``--served-model-name``);
- ``POST /v1/chat/completions`` takes OpenAI chat messages with images as base64 data URLs, ``n``,
  ``temperature`` (0 = greedy), ``top_p``, ``max_tokens``, ``seed`` and vLLM's ``top_k`` /
  ``repetition_penalty``, and answers ``n`` choices.

Requests that arrive together with the same sampling settings are batched into one ``HFSampler`` call
(the way vLLM batches concurrent requests), seeded by the first request's seed; so a fixed seed reproduces
the answers only when the requests arrive in the same batches. Errors are OpenAI-style JSON bodies (400 for
a bad request, 404 for an unknown model). It binds to 127.0.0.1 by default: it has no authentication.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from visplay.data.codec import decode_image

log = logging.getLogger(__name__)


class BadRequest(ValueError):
    pass


def decode_data_url(url: str) -> Image.Image:
    """A PIL image from a ``data:image/...;base64,...`` URL (no remote URLs: this server never fetches)."""
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise BadRequest("image_url.url must be a data:image/...;base64,... URL")
    try:
        return decode_image(url)
    except ValueError as exc:  # ImageDecodeError
        raise BadRequest(str(exc)) from None


def visplay_request(messages) -> tuple[list[dict], list[Image.Image]]:
    """OpenAI chat messages -> (VisPlay messages with ``{"type": "image"}`` parts, their images in order)."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    out, images = [], []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise BadRequest("every message needs a role")
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    image_url = part.get("image_url")
                    images.append(decode_data_url(image_url.get("url") if isinstance(image_url, dict) else image_url))
                    parts.append({"type": "image"})
                elif kind == "text":
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
                else:
                    raise BadRequest(f"unsupported content part type {kind!r}")
            content = parts
        elif not isinstance(content, str):
            raise BadRequest("message content must be a string or a list of parts")
        out.append({"role": message["role"], "content": content})
    return out, images


@dataclass
class Job:
    messages: list[dict]
    images: list[Image.Image]
    settings: tuple  # (n, temperature, top_p, top_k, repetition_penalty, max_tokens): batched together if equal
    seed: int
    future: Future = field(default_factory=Future)


def sampling_settings(body: dict) -> tuple[tuple, int]:
    """(settings key, seed) of a chat-completions body, validated; OpenAI/vLLM defaults where absent."""
    try:
        n = int(body.get("n", 1))
        temperature = float(body.get("temperature", 1.0))
        top_p = float(body.get("top_p", 1.0))
        top_k = int(body.get("top_k", -1) if body.get("top_k") is not None else -1)
        penalty = float(body.get("repetition_penalty", 1.0))
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
        seed = int(body.get("seed") or 0)
    except (TypeError, ValueError):
        raise BadRequest("sampling parameters must be numbers") from None
    if n < 1 or max_tokens < 1 or temperature < 0 or not 0 < top_p <= 1 or top_k < -1 or penalty <= 0:
        raise BadRequest("out-of-range sampling parameter (n >= 1, max_tokens >= 1, temperature >= 0, "
                         "0 < top_p <= 1, top_k >= -1, repetition_penalty > 0)")
    return (n, temperature, top_p, max(0, top_k), penalty, max_tokens), seed


class BatchingWorker:
    """One thread owns the model; requests queue up and those with equal settings run as one batch."""

    def __init__(self, sampler, max_batch: int = 64, wait_s: float = 0.02):
        self.sampler = sampler
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="hf-server-worker", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> list[str]:
        self.jobs.put(job)
        return job.future.result()

    def _loop(self) -> None:
        from visplay.engines.sampler import SampleRequest

        while True:
            first = self.jobs.get()
            batch, held = [first], []
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                (batch if job.settings == first.settings else held).append(job)
            for job in held:
                self.jobs.put(job)
            n, temperature, top_p, top_k, penalty, max_tokens = first.settings
            try:
                texts = self.sampler.sample([SampleRequest(j.messages, j.images) for j in batch], n=n,
                                            temperature=temperature, top_p=top_p, top_k=top_k,
                                            repetition_penalty=penalty, max_new_tokens=max_tokens, seed=first.seed)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for job in batch:
                    job.future.set_exception(exc)
                continue
            for job, answer in zip(batch, texts):
                job.future.set_result(answer)


def make_handler(worker: BatchingWorker, served_name: str, model_path: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # one line per request at debug level, not on stderr
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": served_name, "object": "model", "owned_by": "visplay", "root": model_path}]})
            else:
                self._error(404, f"no route {self.path}", "NotFoundError")

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}", "NotFoundError")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                if body.get("stream"):
                    raise BadRequest("streaming is not supported")
                if body.get("model") != served_name:
                    self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
                    return
                messages, images = visplay_request(body.get("messages"))
                settings, seed = sampling_settings(body)
            except (BadRequest, ValueError) as exc:
                self._error(400, str(exc), "BadRequestError")
                return
            try:
                texts = worker.submit(Job(messages, images, settings, seed))
            except ValueError as exc:  # e.g. image parts and images that do not match
                self._error(400, str(exc), "BadRequestError")
                return
            except Exception as exc:  # noqa: BLE001
                log.exception("generation failed")
                self._error(500, f"{type(exc).__name__}: {exc}", "InternalServerError")
                return
            self._send(200, {
                "id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": served_name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                            for i, text in enumerate(texts[: settings[0]])],
            })

    return Handler


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, served_name: str | None = None,
          max_batch: int = 64, device: str | None = None, min_pixels: int | None = None,
          max_pixels: int | None = None) -> ThreadingHTTPServer:
    """Load ``model`` and return a bound (not yet serving) HTTP server; call ``serve_forever()`` on it."""
    from visplay.engines.loading import load_vlm
    from visplay.engines.sampler import HFSampler

    loaded = load_vlm(Path(model), device=device, min_pixels=min_pixels, max_pixels=max_pixels)
    worker = BatchingWorker(HFSampler(loaded, progress=False), max_batch=max_batch)
    server = ThreadingHTTPServer((host, port), make_handler(worker, served_name or model, str(model)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m visplay.engines.hf_server",
                                     description="Serve a local VLM folder over an OpenAI-compatible chat API "
                                                 "(transformers generate; for CPUs and tests).")
    parser.add_argument("--model", required=True, help="model folder (also the served name, as with vllm serve)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: no authentication)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default=None, help="name clients use instead of the folder")
    parser.add_argument("--max-batch", type=int, default=64, help="most requests answered in one generate call")
    parser.add_argument("--min-pixels", type=int, default=None)
    parser.add_argument("--max-pixels", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from visplay.errors import UserError

    try:
        server = serve(args.model, args.host, args.port, args.served_model_name, args.max_batch,
                       min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    except UserError as exc:
        print(f"visplay: error: {exc}", flush=True)
        return 2
    except OSError as exc:
        print(f"visplay: error: cannot listen on {args.host}:{args.port} ({exc.strerror})", flush=True)
        return 2
    log.info("serving %s on http://%s:%d/v1", args.served_model_name or args.model, args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
