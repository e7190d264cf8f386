"""JSON over HTTP with retries and backoff, for the OpenAI-compatible endpoints VisPlay talks to (the
``openai`` sampler backend and the evaluation judge), with the standard library only.

One policy for both: 429 and 5xx answers, refused connections and timeouts are retried with exponential
backoff (capped at 30 s); any other HTTP error, or an answer that is not JSON, stops at once with one line
that says what to check; an endpoint that stays down ends in one :class:`UserError` after the last try.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from visplay.errors import UserError

MAX_BACKOFF_S = 30.0


def error_detail(exc: urllib.error.HTTPError) -> str:
    """The message of an HTTP error answer, on one line: OpenAI's ``{"error": {"message": ...}}`` or the raw body.

    >>> import io
    >>> body = io.BytesIO(b'{"error": {"message": "model\\\\nnot found"}}')
    >>> error_detail(urllib.error.HTTPError("http://x", 404, "Not Found", {}, body))
    'model not found'
    """
    try:
        raw = exc.read().decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else (error or raw)
    except (ValueError, AttributeError):
        message = raw
    return " ".join(str(message).split())[:300]


@dataclass
class JsonEndpoint:
    """How to call one endpoint and how to say what went wrong.

    ``name`` starts every message (``"judge at URL"``); ``hints`` says what to check after a 401, 403 or 404;
    ``down_hint`` what to do when the endpoint stays unreachable. ``requests_sent`` counts every attempt.
    """

    name: str
    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 300.0
    hints: dict[int, str] = field(default_factory=dict)
    down_hint: str = ""
    requests_sent: int = 0

    def call(self, url: str, payload: Any = None, method: str = "POST", headers: dict | None = None,
             timeout: float | None = None) -> Any:
        """The decoded JSON answer to one request, after retries; a :class:`UserError` when it cannot be had."""
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        headers = {"Content-Type": "application/json", **(headers or {})}
        attempts = max(1, self.retries + 1)
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1)))
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                self.requests_sent += 1
                with urllib.request.urlopen(request, timeout=timeout or self.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = error_detail(exc)
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code} {detail}".strip()
                    continue
                hint = self.hints.get(exc.code, "the request was refused")
                raise UserError(f"{self.name} answered HTTP {exc.code} ({hint}): {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
                continue
            except ValueError:
                raise UserError(f"{self.name} did not answer with JSON; is it an OpenAI-compatible endpoint?") from None
        raise UserError(f"{self.name} unreachable after {attempts} attempt(s) ({last}); {self.down_hint}")
