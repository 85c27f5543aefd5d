"""A scripted server that replays the OpenAI Chat Completions wire format with exact, known timing.

Used by Tryouts' tests and benchmarks, and by anyone who wants to check a client's timing. The
request's ``model`` field is a script, ``key=value;key=value``, that fixes what is sent back and when::

    python -m tryouts.testing.replay [--host 127.0.0.1] [--port 0]   # prints "READY http://127.0.0.1:PORT"

    with start_replay_server() as base_url:          # http://127.0.0.1:PORT/v1, in a subprocess
        httpx.post(f"{base_url}/chat/completions",
                   json={"model": "tokens=32;ttft_ms=50;itl_ms=10;id=r1", "stream": True, "messages": []})
        httpx.get(base_url.removesuffix("/v1") + "/_replay/log/r1").json()  # what was really sent, when

Script keys (unknown keys and bad values get a 400 that names the key; a part without ``=`` is the
model name echoed back, so ``gpt-4o-mini`` alone is a valid script with every default):

=============  =========  ===============================================================================
key            default    meaning
=============  =========  ===============================================================================
tokens         8          output tokens; token ``i`` is the text `` w{i}``
text           (none)     the answer text instead, percent-encoded (``text=Paris%2C%20France``); it is sent
                          one word (with its leading whitespace) per token, and ``tokens`` is its word count
ttft_ms        0          request received -> first content chunk (first reasoning chunk if ``reasoning``)
itl_ms         0          between consecutive content (and reasoning) chunks
per_chunk      1          tokens per content chunk; the last chunk may hold fewer
role_first     1          send ``{"role":"assistant","content":""}`` at once, before the TTFT delay
reasoning      0          that many ``reasoning_content`` chunks (`` r{i}``) before the content
usage          auto       trailing usage-only chunk: ``auto`` (if ``stream_options.include_usage``),
                          ``always``, ``never``
prompt_tokens  11         reported ``prompt_tokens``
cached         0          reported ``prompt_tokens_details.cached_tokens``
finish         stop       the ``finish_reason``
cut_after      -1         drop the connection mid-body after that many content chunks (no ``[DONE]``)
status         200        answer with this HTTP status (400-599) and OpenAI's error body for it
retry_after    (none)     with an error status: a ``Retry-After`` header with this value
quota          0          1: a 429 says ``insufficient_quota`` instead of ``rate_limit_exceeded``
timings        0          1: a llama.cpp-style ``timings`` object in the last chunk
id             (none)     record server-side times under this id: ``GET /_replay/log/{id}``
fail_first     0          the first N requests with this exact script fail (``status``, or ``cut_after``);
                          later ones succeed: for testing retries
model          (none)     the model name echoed back (same as a part without ``=``)
=============  =========  ===============================================================================

The schedule is absolute, from the moment the request body was read (``recv``): reasoning chunk ``j``
at ``recv + ttft + j*itl``, content chunk ``k`` at ``recv + ttft + (reasoning + k)*itl``. The chunk with
``finish_reason`` (empty delta, as OpenAI sends it), the usage chunk and ``[DONE]`` follow the last
content chunk at once. With ``cut_after=k`` the connection is dropped when content chunk ``k`` is due
(right after the last one if ``k`` is not smaller than the number of content chunks); a client sees
an incomplete chunked body (httpx: ``RemoteProtocolError``), never a clean end. Sleeps never end early
but may end late: up to about a millisecond (timer resolution), more on a loaded machine; the stamps
below are the truth, the schedule only the intent.

Every chunk carries ``"x_sent_ns"``: ``time.perf_counter_ns()`` taken right before its write. On
Linux that clock is CLOCK_MONOTONIC, shared by every process on the machine, so a client can compare
its own stamps with the server's. A request with an ``id`` is logged (the last 100,000 ids are kept):
``recv_ns``, ``sent_ns`` (one per content chunk), ``first_content_sent_ns``, ``last_content_sent_ns``,
``n_chunks`` (content chunks), plus ``role_sent_ns``, ``reasoning_sent_ns``, ``first_token_sent_ns``
(first reasoning or content chunk), ``done_sent_ns``, ``status``, ``stream``, ``cut`` and ``script``.

A non-streaming request waits until the last content chunk would have been sent, then answers with a
``chat.completion`` (its log has one ``sent_ns``; ``cut_after`` sends half the body, then drops). With the environment variable
``REPLAY_REQUIRE_KEY=<key>``, ``/v1/*`` answers 401 unless the request has ``Authorization: Bearer <key>``.
Only loopback addresses can be served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ipaddress
import json
import logging
import os
import queue
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from .._proc import stop_process

__all__ = [
    "LOG_LIMIT",
    "ReplayApp",
    "ReplayLog",
    "Script",
    "ScriptError",
    "is_loopback",
    "log_content_sent",
    "main",
    "parse_script",
    "serve",
    "start_replay_server",
]

#: how many logged requests (by ``id``) are kept; the oldest go first
LOG_LIMIT = 100_000

#: path prefix -> module under tryouts.testing.dialects replaying another provider's wire format.
#: Each module has ``async def handle(app, method, path, scope, body, recv_ns, send)`` (``path`` without
#: the prefix) and reuses the script grammar (``parse_script``), the log and ``apply_fail_first``.
DIALECTS: dict[str, str] = {
    "/anthropic": "anthropic", "/gemini": "gemini", "/ollama": "ollama", "/cohere": "cohere",
    "/replicate": "replicate", "/bedrock": "bedrock",
}
#: request bodies larger than this get a 413
MAX_BODY = 16 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --------------------------------------------------------------------------------------------- script


class ScriptError(ValueError):
    """A bad script: ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(slots=True)
class Script:
    """A parsed scenario; see the module docstring for the meaning of each field."""

    tokens: int = 8
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    per_chunk: int = 1
    role_first: bool = True
    reasoning: int = 0
    usage: str = "auto"
    prompt_tokens: int = 11
    cached: int = 0
    finish: str = "stop"
    cut_after: int = -1
    status: int = 200
    retry_after: str | None = None
    quota: bool = False
    timings: bool = False
    id: str | None = None
    fail_first: int = 0
    model: str = "replay"
    text: str | None = None

    @property
    def n_content_chunks(self) -> int:
        return -(-self.tokens // self.per_chunk)

    def token_text(self, i: int) -> str:
        """The text of output token ``i``."""
        return _words(self.text)[i] if self.text is not None else f" w{i}"

    def full_text(self) -> str:
        """The whole answer."""
        return self.text if self.text is not None else "".join(f" w{i}" for i in range(self.tokens))

    def content_piece(self, k: int) -> str:
        """The text of content chunk ``k``."""
        lo = k * self.per_chunk
        return "".join(self.token_text(i) for i in range(lo, min(lo + self.per_chunk, self.tokens)))


@functools.lru_cache(maxsize=256)
def _words(text: str) -> list[str]:
    """``text`` cut into words, each with the whitespace before it (joined, they give ``text`` back)."""
    words = re.findall(r"\s*\S+", text)
    tail = text[sum(map(len, words)):]
    if tail and words:
        words[-1] += tail
    return words or ([text] if text else [])


def _int(lo: int, hi: int | None = None) -> Callable[[str, str], int]:
    def conv(key: str, value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            try:
                f = float(value)
            except ValueError:
                raise ScriptError(key, f"script key {key!r} wants an integer, not {value!r}") from None
            if not f.is_integer():
                raise ScriptError(key, f"script key {key!r} wants an integer, not {value!r}") from None
            n = int(f)
        if n < lo or (hi is not None and n > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise ScriptError(key, f"script key {key!r} must be {bound}, not {value!r}")
        return n

    return conv


def _ms(key: str, value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise ScriptError(key, f"script key {key!r} wants milliseconds, not {value!r}") from None
    if not 0 <= f < 86_400_000:  # also refuses nan and inf
        raise ScriptError(key, f"script key {key!r} must be >= 0 ms (and under a day), not {value!r}")
    return f


def _flag(key: str, value: str) -> bool:
    if value in ("0", "1"):
        return value == "1"
    raise ScriptError(key, f"script key {key!r} wants 0 or 1, not {value!r}")


def _choice(*options: str) -> Callable[[str, str], str]:
    def conv(key: str, value: str) -> str:
        if value not in options:
            raise ScriptError(key, f"script key {key!r} wants one of {', '.join(options)}; not {value!r}")
        return value

    return conv


def _text(key: str, value: str) -> str:
    if not value:
        raise ScriptError(key, f"script key {key!r} wants a value")
    return value


def _status(key: str, value: str) -> int:
    n = _int(200, 599)(key, value)
    if n != 200 and n < 400:
        raise ScriptError(key, f"script key {key!r} wants 200 or an error status (400-599), not {value!r}")
    return n


_CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "tokens": _int(0, 1_000_000),
    "ttft_ms": _ms,
    "itl_ms": _ms,
    "per_chunk": _int(1),
    "role_first": _flag,
    "reasoning": _int(0, 1_000_000),
    "usage": _choice("auto", "always", "never"),
    "prompt_tokens": _int(0),
    "cached": _int(0),
    "finish": _text,
    "cut_after": _int(-1),
    "status": _status,
    "retry_after": _text,
    "quota": _flag,
    "timings": _flag,
    "id": _text,
    "fail_first": _int(0),
    "model": _text,
    "text": lambda key, value: urllib.parse.unquote(value),
}
assert set(_CONVERTERS) == {f.name for f in fields(Script)}


def parse_script(model: str) -> Script:
    """Parse a ``key=value;key=value`` script; :class:`ScriptError` names an unknown key or a bad value.

    A part without ``=`` is the model name (``gpt-4o-mini`` alone is a valid script: all defaults).
    """
    values: dict[str, Any] = {}
    for part in model.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            values["model"] = key
            continue
        conv = _CONVERTERS.get(key)
        if conv is None:
            raise ScriptError(key, f"unknown script key {key!r}; known keys: {', '.join(_CONVERTERS)}")
        values[key] = conv(key, value)
    script = Script(**values)
    if script.text is not None:
        script.tokens = len(_words(script.text))
    if script.cached > script.prompt_tokens:
        raise ScriptError("cached", f"script key 'cached' ({script.cached}) exceeds prompt_tokens ({script.prompt_tokens})")
    return script


def _usage(s: Script) -> dict[str, Any]:
    completion = s.tokens + s.reasoning
    return {
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": s.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": s.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": s.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _timings(s: Script, first_ns: int | None, last_ns: int | None, recv_ns: int) -> dict[str, Any]:
    """llama.cpp's ``timings``, from what was really sent: prompt = recv -> first token, predicted = the rest."""
    prompt_ms = ((first_ns or recv_ns) - recv_ns) / 1e6
    predicted_n = s.tokens + s.reasoning
    predicted_ms = ((last_ns or 0) - (first_ns or 0)) / 1e6
    return {
        "cache_n": s.cached,
        "prompt_n": s.prompt_tokens - s.cached,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(1, s.prompt_tokens - s.cached),
        "prompt_per_second": (s.prompt_tokens - s.cached) / prompt_ms * 1e3 if prompt_ms > 0 else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(1, predicted_n),
        "predicted_per_second": predicted_n / predicted_ms * 1e3 if predicted_ms > 0 else 0.0,
    }


# --------------------------------------------------------------------------------------------- errors


def _mask_key(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "*" * len(key)


def _openai_error(status: int, s: Script | None = None, *, key: str | None = "") -> dict[str, Any]:
    """The error body OpenAI sends for ``status``; for 401, ``key`` is the key sent (None: none was sent)."""
    model = s.model if s else "replay"
    if status == 400:
        return _err("Invalid request: the replay script asked for a 400.", "invalid_request_error", None)
    if status == 401:
        if key is None:
            return _err(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        return _err(
            f"Incorrect API key provided: {_mask_key(key or 'sk-replay')}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 403:
        return _err("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory")
    if status == 404:
        return _err(
            f"The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
        )
    if status == 429:
        if s is not None and s.quota:
            return _err(
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            )
        wait = f" Please try again in {s.retry_after}s." if s is not None and s.retry_after else ""
        return _err(
            f"Rate limit reached for {model} in organization org-replay on requests per min (RPM): "
            f"Limit 3, Used 3, Requested 1.{wait} Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 500:
        return _err("The server had an error while processing your request. Sorry about that!", "server_error", None)
    if status == 503:
        return _err("The server is overloaded or not ready yet.", "server_error", None)
    if status >= 500:
        return _err(f"The server had an error (HTTP {status}).", "server_error", None)
    return _err(f"The request was refused (HTTP {status}).", "invalid_request_error", None)


def _err(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# ------------------------------------------------------------------------------------------------ log


def log_content_sent(entry: dict[str, Any], t: int) -> None:
    """Record in a request's log entry that a content chunk was written at ``t`` (the server's clock)."""
    entry["sent_ns"].append(t)
    if entry["first_content_sent_ns"] is None:
        entry["first_content_sent_ns"] = t
        if entry["first_token_sent_ns"] is None:
            entry["first_token_sent_ns"] = t
    entry["last_content_sent_ns"] = t
    entry["n_chunks"] = len(entry["sent_ns"])


class ReplayLog:
    """Server-side times of requests that carried an ``id``; the oldest entries go past ``limit``."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def new(self, rid: str | None, recv_ns: int, s: Script, stream: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": rid,
            "recv_ns": recv_ns,
            "status": s.status,
            "stream": stream,
            "script": None,
            "role_sent_ns": None,
            "reasoning_sent_ns": [],
            "sent_ns": [],
            "first_token_sent_ns": None,
            "first_content_sent_ns": None,
            "last_content_sent_ns": None,
            "n_chunks": 0,
            "done_sent_ns": None,
            "cut": False,
        }
        if rid is not None:
            self._entries.pop(rid, None)
            self._entries[rid] = entry
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
        return entry

    def get(self, rid: str) -> dict[str, Any] | None:
        return self._entries.get(rid)

    def __len__(self) -> int:
        return len(self._entries)


# ------------------------------------------------------------------------------------------------ app


class _Cut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-body."""


class _DropCutTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _Cut)


_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def _request_id() -> bytes:
    return b"req_" + secrets.token_hex(16).encode()


async def _sleep_until(deadline_ns: int, slack_s: float) -> None:
    """Sleep until ``perf_counter_ns() >= deadline_ns``; never returns early.

    ``slack_s`` pads each sleep for event loops (uvloop) whose timers have millisecond resolution and
    may fire up to half a millisecond early; the loop re-checks the clock either way.
    """
    while True:
        left = deadline_ns - perf_counter_ns()
        if left <= 0:
            return
        await asyncio.sleep(left * 1e-9 + slack_s)


class ReplayApp:
    """The raw ASGI application (no framework, so that the server is never the bottleneck).

    Args:
        require_key: when set, ``/v1/*`` wants ``Authorization: Bearer <require_key>``.
        log_limit: how many logged requests to keep.
    """

    def __init__(self, require_key: str | None = None, *, log_limit: int = LOG_LIMIT) -> None:
        self.require_key = require_key
        self.log = ReplayLog(log_limit)
        self._fail_counts: dict[str, int] = {}
        self._slack_s: float | None = None

    # ---- plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    @staticmethod
    async def _json(send: Send, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = _DUMPS(data).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                *_JSON_HEADERS,
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", _request_id()),
                *(headers or ()),
            ],
        })
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if len(path) > 1:
            path = path.rstrip("/")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            if body:
                size += len(body)
                if size > MAX_BODY:
                    await self._json(send, 413, _err("Request body too large.", "invalid_request_error", None))
                    return
                chunks.append(body)
            if not msg.get("more_body"):
                break
        recv_ns = perf_counter_ns()
        body = b"".join(chunks)

        azure = path.startswith("/openai/deployments/") and path.endswith("/chat/completions")
        if path in ("/v1/chat/completions", "/chat/completions") or azure:  # Azure: the deployment is the path
            if method != "POST":
                return await self._method_not_allowed(send, method, path, "POST")
            if not await self._authorized(scope, send):
                return
            return await self._chat(body, recv_ns, self._bearer(scope) or "", receive, send)
        if path in ("/v1/models", "/models"):
            if method != "GET":
                return await self._method_not_allowed(send, method, path, "GET")
            if not await self._authorized(scope, send):
                return
            data = {"object": "list", "data": [{"id": "replay", "object": "model", "created": 0, "owned_by": "tryouts"}]}
            return await self._json(send, 200, data)
        prefix = "/" + path.lstrip("/").split("/", 1)[0]
        if prefix in DIALECTS:  # another provider's wire format, e.g. /anthropic/v1/messages
            import importlib

            module = importlib.import_module(f"tryouts.testing.dialects.{DIALECTS[prefix]}")
            return await module.handle(self, method, path[len(prefix):] or "/", scope, body, recv_ns, send)
        if path.startswith("/_replay/log/") and method == "GET":
            rid = path[len("/_replay/log/") :]
            entry = self.log.get(rid)
            if entry is None:
                return await self._json(send, 404, _err(f"No request with id {rid!r} is logged.", "not_found", None))
            return await self._json(send, 200, entry)
        await self._json(
            send,
            404,
            _err(f"Unknown request URL: {method} {path}. Please check the URL for typos.", "invalid_request_error", "unknown_url"),
        )

    def apply_fail_first(self, s: Script, model: str) -> None:
        """``fail_first=N``: the first N requests with this exact script fail, later ones succeed."""
        if s.fail_first:
            seen = self._fail_counts.get(model, 0)
            self._fail_counts[model] = seen + 1
            if seen >= s.fail_first:  # the failures are used up: succeed from now on
                s.status, s.cut_after = 200, -1

    async def _method_not_allowed(self, send: Send, method: str, path: str, allowed: str) -> None:
        await self._json(
            send, 405, _err(f"Method {method} not allowed for {path}; use {allowed}.", "invalid_request_error", None),
            [(b"allow", allowed.encode())],
        )

    @staticmethod
    def _bearer(scope: Scope) -> str | None:
        """The key of ``Authorization: Bearer <key>``, or None."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, key = value.decode("latin-1").partition(" ")
                return key.strip() if scheme.lower() == "bearer" and key.strip() else None
        return None

    async def _authorized(self, scope: Scope, send: Send) -> bool:
        if not self.require_key:
            return True
        key = self._bearer(scope)
        if key == self.require_key:
            return True
        await self._json(send, 401, _openai_error(401, key=key))
        return False

    # ---- chat completions

    async def _chat(self, body: bytes, recv_ns: int, key: str, receive: Receive, send: Send) -> None:
        try:
            req = json.loads(body) if body else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            req = None
        if not isinstance(req, dict):
            msg = (
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            )
            return await self._json(send, 400, _err(msg, "invalid_request_error", None))
        model = req.get("model")
        if not isinstance(model, str):
            return await self._json(send, 400, _err("you must provide a model parameter", "invalid_request_error", None))
        try:
            s = parse_script(model)
        except ScriptError as exc:
            return await self._json(send, 400, _err(str(exc), "invalid_request_error", "invalid_script", "model"))
        self.apply_fail_first(s, model)
        stream = bool(req.get("stream"))
        entry = self.log.new(s.id, recv_ns, s, stream)
        entry["script"] = model
        if s.status != 200:
            headers = [(b"retry-after", s.retry_after.encode("latin-1", "replace"))] if s.retry_after else []
            return await self._json(send, s.status, _openai_error(s.status, s, key=key), headers)
        if self._slack_s is None:
            self._slack_s = 0.0005 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 0.0
        if stream:
            opts = req.get("stream_options")
            include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
            await self._stream(s, include_usage, recv_ns, entry, receive, send)
        else:
            await self._complete(s, recv_ns, entry, send)

    async def _complete(self, s: Script, recv_ns: int, entry: dict[str, Any], send: Send) -> None:
        slack = self._slack_s or 0.0
        ttft, itl = int(s.ttft_ms * 1e6), int(s.itl_ms * 1e6)
        n = s.n_content_chunks
        due = recv_ns + ttft + max(0, s.reasoning + n - 1) * itl
        message: dict[str, Any] = {"role": "assistant", "content": s.full_text()}
        if s.reasoning:
            message["reasoning_content"] = "".join(f" r{i}" for i in range(s.reasoning))
        message["refusal"] = None
        message["annotations"] = []
        data: dict[str, Any] = {
            "id": "chatcmpl-" + secrets.token_urlsafe(21),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": s.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": s.finish}],
        }
        if s.usage != "never":
            data["usage"] = _usage(s)
        data["service_tier"] = "default"
        data["system_fingerprint"] = "fp_replay"
        await _sleep_until(due, slack)
        t = perf_counter_ns()
        if s.timings:
            data["timings"] = _timings(s, t, t, recv_ns)
        data["x_sent_ns"] = t
        payload = _DUMPS(data).encode()
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                *_JSON_HEADERS,
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", _request_id()),
            ],
        }
        if s.cut_after >= 0:  # headers and half the body, then drop the connection
            await send(start)
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            entry["cut"] = True
            raise _Cut
        await send(start)
        await send({"type": "http.response.body", "body": payload})
        entry["sent_ns"].append(t)
        entry["first_token_sent_ns"] = entry["first_content_sent_ns"] = entry["last_content_sent_ns"] = t
        entry["n_chunks"] = 1
        entry["done_sent_ns"] = t

    async def _stream(
        self, s: Script, include_usage: bool, recv_ns: int, entry: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        slack = self._slack_s or 0.0
        send_usage = s.usage == "always" or (s.usage == "auto" and include_usage)
        # everything before "choices" is the same for every chunk, and so is what follows it
        head = (
            '{"id":"chatcmpl-' + secrets.token_urlsafe(21) + '","object":"chat.completion.chunk","created":'
            + str(int(time.time())) + ',"model":' + _DUMPS(s.model)
            + ',"service_tier":"default","system_fingerprint":"fp_replay","choices":'
        )
        tail = ',"usage":null,"x_sent_ns":' if send_usage else ',"x_sent_ns":'

        async def emit(middle: str) -> int:
            """Stamp, then write ``data: {head}{middle}{tail}{stamp}}``; returns the stamp."""
            t = perf_counter_ns()
            await send({
                "type": "http.response.body",
                "body": f"data: {head}{middle}{tail}{t}}}\n\n".encode(),
                "more_body": True,
            })
            return t

        def choice(delta: str, finish: str | None = None) -> str:
            fin = "null" if finish is None else _DUMPS(finish)
            return f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{fin}}}]'

        # a disconnect (or the end of the response) completes this; checked before each chunk
        gone = asyncio.ensure_future(receive())
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", _request_id())],
            })
            if s.role_first:
                entry["role_sent_ns"] = await emit(choice('{"role":"assistant","content":"","refusal":null}'))
            ttft, itl = int(s.ttft_ms * 1e6), int(s.itl_ms * 1e6)
            start = recv_ns + ttft
            last: int | None = None  # the last reasoning or content chunk's stamp
            for j in range(s.reasoning):
                middle = choice('{"reasoning_content":' + _DUMPS(f" r{j}") + "}")
                await _sleep_until(start + j * itl, slack)
                if gone.done():
                    return
                last = await emit(middle)
                entry["reasoning_sent_ns"].append(last)
                if entry["first_token_sent_ns"] is None:
                    entry["first_token_sent_ns"] = last
                if j & 15 == 15:  # let other streams run when chunks are due back to back (itl_ms=0)
                    await asyncio.sleep(0)
            n = s.n_content_chunks
            for k in range(n):
                due = start + (s.reasoning + k) * itl
                if k == s.cut_after:
                    await _sleep_until(due, slack)
                    entry["cut"] = True
                    raise _Cut
                middle = choice('{"content":' + _DUMPS(s.content_piece(k)) + "}")
                await _sleep_until(due, slack)
                if gone.done():
                    return
                last = await emit(middle)
                log_content_sent(entry, last)
                if k & 15 == 15:
                    await asyncio.sleep(0)
            if s.cut_after >= n:
                entry["cut"] = True
                raise _Cut
            if not n:  # nothing to say: the finish chunk comes when the first content would have
                await _sleep_until(start + s.reasoning * itl, slack)
            first = entry["first_token_sent_ns"]
            timings = ""
            if s.timings and not send_usage:
                timings = ',"timings":' + _DUMPS(_timings(s, first, last, recv_ns))
            await emit(choice("{}", s.finish) + timings)
            if send_usage:
                timings = ',"timings":' + _DUMPS(_timings(s, first, last, recv_ns)) if s.timings else ""
                usage = _DUMPS(_usage(s))
                t_usage = perf_counter_ns()
                body = f'data: {head}[],"usage":{usage}{timings},"x_sent_ns":{t_usage}}}\n\n'
                await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
            entry["done_sent_ns"] = perf_counter_ns()
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        finally:
            if not gone.done():
                gone.cancel()


# --------------------------------------------------------------------------------------------- server


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse(host: str) -> str:
    return f"the replay server only listens on loopback addresses (127.0.0.1, ::1, localhost), not {host!r}"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    require_key: str | None = None,
    loop: str = "auto",
    http: str = "auto",
    log_limit: int = LOG_LIMIT,
    exit_on_stdin_eof: bool = False,
) -> None:
    """Serve until interrupted; print ``READY http://HOST:PORT`` (one line, flushed) once listening.

    Uses uvloop and httptools when they are installed (``loop``/``http`` as in uvicorn).
    """
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("The replay server needs uvicorn: pip install uvicorn (it is in Tryouts' dev extra).") from None

    if not is_loopback(host):
        raise ValueError(_refuse(host))
    host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the loops set it on each connection too
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from here on: no race with the READY line
    sock.set_inheritable(False)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{sock.getsockname()[1]}"

    config = uvicorn.Config(
        ReplayApp(require_key, log_limit=log_limit),
        loop=loop,  # type: ignore[arg-type]
        http=http,  # type: ignore[arg-type]
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,  # longer than clients' keep-alive (httpx: 5 s), so they close first
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    logging.getLogger("uvicorn.error").addFilter(_DropCutTracebacks())

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                print(f"READY {url}", flush=True)

    server = _Server(config)
    if exit_on_stdin_eof:  # the parent died or closed the pipe: stop rather than linger

        def watch() -> None:
            with contextlib.suppress(Exception):
                while sys.stdin.buffer.read(65536):
                    pass
            server.should_exit = True

        threading.Thread(target=watch, name="replay-stdin", daemon=True).start()
    server.run(sockets=[sock])


def _child_env(require_key: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REPLAY_REQUIRE_KEY", None)
    if require_key:
        env["REPLAY_REQUIRE_KEY"] = require_key
    # the folder holding the ``tryouts`` package, so ``-m tryouts.testing.replay`` imports this very copy
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if Path(root).name not in ("site-packages", "dist-packages") and root not in parts:
        parts.insert(0, root)
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def start_replay_server(
    *, host: str = "127.0.0.1", require_key: str | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """Run ``python -m tryouts.testing.replay`` in a subprocess; yield its base URL, ``http://HOST:PORT/v1``.

    Args:
        host: a loopback address; anything else raises :class:`~tryouts.errors.UsageError` at once.
        require_key: start the server with ``REPLAY_REQUIRE_KEY`` (the parent's value is not passed on).
        timeout: seconds to wait for the ``READY`` line.

    On exit the server is terminated (killed after 5 s). It also exits by itself if this process dies.
    """
    from ..errors import TryoutsError, UsageError

    if not is_loopback(host):
        raise UsageError(_refuse(host) + ".")
    err = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "tryouts.testing.replay", "--host", host, "--port", "0", "--exit-on-stdin-eof"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=_child_env(require_key), close_fds=True
    )
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:  # also keeps draining stdout afterwards, so the child never blocks on it
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=pump, name="replay-stdout", daemon=True).start()

    def stderr_tail() -> str:
        err.seek(0)
        return err.read().decode(errors="replace")[-4000:].strip() or "(nothing on stderr)"

    try:
        deadline = time.monotonic() + timeout
        url = None
        while url is None:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise TryoutsError(
                    f"The replay server did not print READY within {timeout:g} s. Its stderr:\n{stderr_tail()}"
                ) from None
            if line.startswith(b"READY "):
                url = line.decode().split()[1]
            elif not line:
                proc.wait(5)
                raise TryoutsError(
                    f"The replay server exited with code {proc.returncode} before it was ready. "
                    f"Its stderr:\n{stderr_tail()}"
                )
        yield url + "/v1"
    finally:
        stop_process(proc)
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        err.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tryouts.testing.replay",
        description="A scripted OpenAI-style chat completions server with exact timing (see the module docstring).",
    )
    ap.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    ap.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"], help="event loop (default: uvloop if installed)")
    ap.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"], help="HTTP parser (default: httptools if installed)")
    ap.add_argument("--log-limit", type=int, default=LOG_LIMIT, help=f"logged requests kept (default {LOG_LIMIT})")
    ap.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not is_loopback(args.host):
        ap.error(_refuse(args.host))
    with contextlib.suppress(KeyboardInterrupt):
        serve(
            args.host,
            args.port,
            require_key=os.environ.get("REPLAY_REQUIRE_KEY") or None,
            loop=args.loop,
            http=args.http,
            log_limit=max(1, args.log_limit),
            exit_on_stdin_eof=args.exit_on_stdin_eof,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
