"""An optional LLM judge behind any OpenAI-compatible chat endpoint, using only the standard library.

- Endpoint: ``--judge-url`` (a base such as ``http://127.0.0.1:8000/v1`` or the full
  ``.../chat/completions`` URL), model ``--judge-model``, API key read from the environment variable
  named by ``--judge-key-env`` (default ``VISPLAY_JUDGE_API_KEY``; no key = no Authorization header, as
  local servers like vLLM expect). No endpoint or key ever lives in code.
- Every answer is cached on disk, keyed by a hash of (judge model, messages): a rerun or a re-score
  sends nothing twice.
- Transient failures (connection refused, timeouts, HTTP 429 and 5xx) are retried with exponential
  backoff; when the endpoint stays unreachable the run stops with one clear :class:`UserError`. It never
  falls back to rules silently.

The judge prompts are our own wording of the two usual protocols: binary equivalence with the reference
(the paper judged every item 1/0 with GLM-4-Flash) and MM-Vet's 0.0-1.0 partial credit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from visplay.errors import UserError
from visplay.http_json import JsonEndpoint
from visplay.io import write_json_atomic

DEFAULT_KEY_ENV = "VISPLAY_JUDGE_API_KEY"

BINARY_SYSTEM = "You grade answers to exam questions. You reply with a single digit: 1 or 0."
BINARY_PROMPT = """Decide whether the candidate answer means the same as the reference answer for this question.
Ignore formatting, letter case, spacing, LaTeX markup and units written differently. For a multiple-choice
question the candidate may give the option letter, the option text, or both. Numbers must agree to the
precision of the reference. A candidate that hedges between several answers is wrong.

Question:
{question}

Reference answer:
{reference}

Candidate answer:
{candidate}

Reply 1 if the candidate is correct and 0 if it is not."""

PARTIAL_SYSTEM = "You grade open-ended answers. You reply with one number from 0.0 to 1.0."
PARTIAL_PROMPT = """Give the prediction a correctness score against the ground truth: 0.0 (totally wrong), 0.1, 0.2, ..., 0.9, or
1.0 (totally right). In the ground truth, "<AND>" means every joined element must be present for full credit,
and "<OR>" means any one of them is enough. For long explanations, score how much of the ground truth's
content the prediction conveys, without credit for statements that contradict it.

Examples (question | ground truth | prediction | score):
What is y? | 2 <AND> -3 | y = 7 | 0.0
What is y? | 2 <AND> -3 | y = 2 | 0.5
What is y? | 2 <AND> -3 | y = 2 or y = -3 | 1.0
Which city is shown? | Paris <OR> Paris, France | It looks like Paris. | 1.0
Why is the sign funny? | The sign says "no parking" but it stands in a lake, where no car could park. | It is a parking sign. | 0.2

Now score this one. Reply with the number only.
{question} | {reference} | {candidate} |"""


@dataclass
class JudgeConfig:
    """Where and how to reach the judge."""

    url: str
    model: str
    key_env: str = DEFAULT_KEY_ENV
    cache_dir: Path | None = None
    retries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    workers: int = 8
    max_tokens: int = 16


def default_cache_dir() -> Path:
    root = os.environ.get("VISPLAY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "visplay")
    return Path(root) / "judge"


def chat_url(url: str) -> str:
    """The chat-completions URL for a base URL.

    >>> chat_url("http://127.0.0.1:8000/v1")
    'http://127.0.0.1:8000/v1/chat/completions'
    >>> chat_url("http://h/v1/chat/completions/")
    'http://h/v1/chat/completions'
    """
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs.

    >>> redact_url("https://me:s3cret@judge.example/v1")
    'https://me:***@judge.example/v1'
    >>> redact_url("http://127.0.0.1:8000/v1")
    'http://127.0.0.1:8000/v1'
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or "@" not in parts.netloc:
        # Not parseable: still hide whatever sits between "//user:" and "@".
        return re.sub(r"(//[^/:@\s]*:)[^@/\s]*@", r"\1***@", url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_judge_url(url: str) -> tuple[str, str | None]:
    """Validate a judge URL; return it without credentials, and the HTTP Basic credentials it carried.

    Errors name the URL with its password hidden.

    >>> check_judge_url("http://127.0.0.1:8000/v1")
    ('http://127.0.0.1:8000/v1', None)
    >>> check_judge_url("https://u:p@h.example/v1")
    ('https://h.example/v1', 'u:p')
    >>> check_judge_url("127.0.0.1:8000/v1")
    Traceback (most recent call last):
    visplay.errors.UserError: --judge-url 127.0.0.1:8000/v1 is not an http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)
    """
    shown = redact_url(url)
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UserError(f"--judge-url {shown!r} is not a URL (empty, or with spaces or control characters)")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise UserError(f"--judge-url {shown} has an invalid host or port") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UserError(f"--judge-url {shown} is not an http:// or https:// URL (e.g. http://127.0.0.1:8000/v1)")
    if not parts.hostname:
        raise UserError(f"--judge-url {shown} names no host (e.g. http://127.0.0.1:8000/v1)")
    credentials = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), credentials


def parse_binary(reply: str) -> float | None:
    """1.0 / 0.0 from a judge reply, or ``None`` when it says neither.

    >>> parse_binary("1"), parse_binary(" 0."), parse_binary("Correct"), parse_binary("incorrect")
    (1.0, 0.0, 1.0, 0.0)
    >>> parse_binary("maybe") is None
    True
    """
    text = (reply or "").strip().lower()
    m = re.match(r"^\W*([01])(?:\.0+)?\b", text)
    if m:
        return float(m.group(1))
    if re.match(r"^\W*(incorrect|wrong|no|false|错误)", text):
        return 0.0
    if re.match(r"^\W*(correct|right|yes|true|正确)", text):
        return 1.0
    return None


def parse_partial(reply: str) -> float | None:
    """A score in [0, 1] from the start of a judge reply.

    >>> parse_partial("0.7"), parse_partial("1.0 because"), parse_partial("n/a")
    (0.7, 1.0, None)
    """
    m = re.match(r"^\W*(\d+(?:\.\d+)?)", (reply or "").strip())
    if not m:
        return None
    value = float(m.group(1))
    return value if 0.0 <= value <= 1.0 else None


class JudgeClient:
    """Sends chat requests to the judge, with an on-disk cache, retries and backoff."""

    def __init__(self, config: JudgeConfig):
        if not config.url:
            raise UserError("the judge needs --judge-url (an OpenAI-compatible endpoint)")
        if not config.model:
            raise UserError("the judge needs --judge-model (the model name the endpoint serves)")
        self.config = config
        # Credentials in the URL become a Basic header: self.url (shown in every message) never holds them.
        url, credentials = check_judge_url(config.url)
        self.url = chat_url(url)
        self.basic_auth = base64.b64encode(credentials.encode("utf-8")).decode("ascii") if credentials else None
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        self.key = os.environ.get(config.key_env) if config.key_env else None
        self.http = JsonEndpoint(
            f"judge at {self.url}", retries=config.retries, backoff_s=config.backoff_s, timeout_s=config.timeout_s,
            hints={401: f"check the API key variable {config.key_env}", 403: "check the API key",
                   404: "check --judge-url and --judge-model"},
            down_hint="start it or fix --judge-url, or score by rules only with --judge never")
        self.cache_hits = 0

    @property
    def model(self) -> str:
        return self.config.model

    def _cache_path(self, messages: list[dict]) -> Path:
        blob = json.dumps({"model": self.config.model, "messages": messages}, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(blob.encode("utf-8")).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def complete(self, messages: list[dict]) -> str:
        """The judge's reply to ``messages`` (from the cache when this exact request was answered before)."""
        path = self._cache_path(messages)
        if path.is_file():
            try:
                self.cache_hits += 1
                return json.loads(path.read_text(encoding="utf-8"))["reply"]
            except (OSError, ValueError, KeyError):
                self.cache_hits -= 1  # a damaged entry is simply asked again
        reply = self._post(messages)
        write_json_atomic(path, {"model": self.config.model, "messages": messages, "reply": reply})
        return reply

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def _post(self, messages: list[dict]) -> str:
        payload = {"model": self.config.model, "messages": messages, "temperature": 0.0,
                   "max_tokens": self.config.max_tokens}
        headers = {}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        elif self.basic_auth:
            headers["Authorization"] = f"Basic {self.basic_auth}"
        return _reply_text(self.http.call(self.url, payload, headers=headers), self.url)

    def map(self, conversations: list[list[dict]]) -> list[str]:
        """Replies for many conversations, ``workers`` requests at a time, in order."""
        if not conversations:
            return []
        workers = max(1, min(self.config.workers, len(conversations)))
        if workers == 1:
            return [self.complete(c) for c in conversations]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.complete, conversations))


def _reply_text(body: dict, url: str) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise UserError(
            f"judge at {url} answered without choices[0].message.content; not an OpenAI-compatible chat endpoint?"
        ) from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def binary_messages(question: str, reference: str, candidate: str) -> list[dict]:
    return [{"role": "system", "content": BINARY_SYSTEM},
            {"role": "user", "content": BINARY_PROMPT.format(question=question, reference=reference, candidate=candidate)}]


def partial_messages(question: str, reference: str, candidate: str) -> list[dict]:
    flat = " ".join(candidate.split())
    return [{"role": "system", "content": PARTIAL_SYSTEM},
            {"role": "user", "content": PARTIAL_PROMPT.format(question=" ".join(question.split()),
                                                              reference=reference, candidate=flat)}]
