"""What every route of the replay server writes with: the request log, the schedule's sleep, JSON bodies, cuts.

The OpenAI route (:mod:`tryouts.testing.openai_route`) and each dialect (:mod:`tryouts.testing.dialects`)
send through these, so that the log means the same everywhere: ``recv_ns`` when the body was read, one
``sent_ns`` stamp per content chunk taken right before its write, ``reasoning_sent_ns`` likewise, and a
non-streamed answer logged as one content chunk sent when the last chunk was due.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .script import Script

__all__ = [
    "JSON_HEADERS",
    "LOG_LIMIT",
    "SSE_HEADERS",
    "Cut",
    "ReplayLog",
    "cut",
    "dumps",
    "header",
    "log_answer_sent",
    "log_content_sent",
    "log_reasoning_sent",
    "read_json",
    "request_id",
    "retry_after",
    "send_answer",
    "send_body",
    "send_json",
    "sleep_until",
]

Headers = list[tuple[bytes, bytes]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: how many logged requests (by ``id``) are kept; the oldest go first
LOG_LIMIT = 100_000

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
dumps = json.JSONEncoder(separators=(",", ":")).encode


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


def log_reasoning_sent(entry: dict[str, Any], t: int) -> None:
    """Record that a reasoning chunk was written at ``t`` (the first one is the first token)."""
    entry["reasoning_sent_ns"].append(t)
    if entry["first_token_sent_ns"] is None:
        entry["first_token_sent_ns"] = t


def log_answer_sent(entry: dict[str, Any], t: int) -> None:
    """Record a non-streamed answer written at ``t``: its one content chunk, first token and end at once."""
    entry["sent_ns"].append(t)
    entry["first_token_sent_ns"] = entry["first_content_sent_ns"] = entry["last_content_sent_ns"] = t
    entry["n_chunks"] = 1
    entry["done_sent_ns"] = t


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


# ------------------------------------------------------------------------------------------ sending


class Cut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-body."""


def cut(entry: dict[str, Any]) -> Cut:
    """Mark the request's log entry cut and return the exception that drops the connection: ``raise cut(entry)``."""
    entry["cut"] = True
    return Cut()


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first request header called ``name`` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def request_id() -> bytes:
    return b"req_" + secrets.token_hex(16).encode()


def retry_after(value: str | None) -> Headers:
    """A ``retry-after`` header when the script has ``retry_after``, else none."""
    return [(b"retry-after", value.encode("latin-1", "replace"))] if value else []


async def sleep_until(deadline_ns: int, slack_s: float) -> None:
    """Sleep until ``perf_counter_ns() >= deadline_ns``; never returns early.

    ``slack_s`` pads each sleep for event loops (uvloop) whose timers have millisecond resolution and
    may fire up to half a millisecond early; the loop re-checks the clock either way.
    """
    while True:
        left = deadline_ns - perf_counter_ns()
        if left <= 0:
            return
        await asyncio.sleep(left * 1e-9 + slack_s)


def read_json(body: bytes, empty: Any = None) -> Any:
    """The request body parsed as JSON; ``empty`` for no body, None for one that is not JSON."""
    try:
        return json.loads(body) if body else empty
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _start(status: int, body: bytes, headers: Headers) -> dict[str, Any]:
    """The response start of ``body``: ``headers`` (content type first) with its ``content-length``."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers[:1], (b"content-length", str(len(body)).encode()), *headers[1:]],
    }


async def send_body(send: Send, status: int, body: bytes, headers: Headers, *, head_only: bool = False) -> None:
    """One whole response: ``headers`` (content type first) plus ``content-length``, then ``body``."""
    await send(_start(status, body, headers))
    await send({"type": "http.response.body", "body": b"" if head_only else body})


async def send_json(send: Send, status: int, data: Any, headers: Headers | None = None) -> None:
    """``data`` as compact JSON, with an ``x-request-id`` and any ``headers``."""
    await send_body(send, status, dumps(data).encode(), [*JSON_HEADERS, (b"x-request-id", request_id()), *(headers or ())])


async def send_answer(send: Send, payload: bytes, headers: Headers, s: Script, entry: dict[str, Any], t: int) -> None:
    """A non-streamed answer stamped ``t``, logged as one content chunk; with ``cut_after``, only the
    headers and half the body are sent before the connection is dropped."""
    await send(_start(200, payload, headers))
    if s.cut_after >= 0:
        await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
        raise cut(entry)
    await send({"type": "http.response.body", "body": payload})
    log_answer_sent(entry, t)
