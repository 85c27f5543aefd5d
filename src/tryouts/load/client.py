"""The load client's hot path: one OpenAI-compatible streaming request over a raw asyncio connection.

Nothing on this path parses more than it must. A request is a prebuilt byte string (request line,
headers, JSON body), written to a kept-alive connection. The response body (chunked or not) is read in
blocks, and every block is stamped with ``perf_counter_ns`` as soon as it is read. That stamp belongs to
each server-sent event line completed in the block. A line counts as a content chunk when a regular
expression finds a non-empty ``content``, ``reasoning_content``/``reasoning`` string or a ``tool_calls``
entry (docs/metrics.md: role-only and empty chunks are not content). Only the line carrying ``usage`` is
decoded as JSON, and only at the end of the request. Against the scripted server this client's TTFT
error stays at the floor of a raw-socket client (benchmarks/load_fidelity.py).

A connection's HTTP error answer gives the status class: 429 is ``rate_limited``, any other status an
``error``. A dropped connection before ``[DONE]`` leaves the request ``incomplete``, with what arrived.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..providers import rawhttp
from ..providers.rawhttp import MAX_HEAD
from ..redact import redact
from ..tokens import MAX_TOKENS
from .metrics import RequestRecord

#: a streamed line that carries generated content (text, reasoning, or a tool call)
CONTENT = re.compile(rb'"(?:content|reasoning_content|reasoning)":\s*"(?!")|"tool_calls":\s*\[\s*\{')
#: the rate-limit headers a 429 keeps (OpenAI's and most compatible servers', Anthropic's)
RATE_HEADER = re.compile(r"(?:x-ratelimit-|anthropic-ratelimit-|ratelimit-)")


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: ``base_url`` such as ``http://127.0.0.1:8080/v1`` (its ``/chat/completions``)."""

    host: str
    port: int
    path: str
    tls: bool
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, base_url: str, headers: dict[str, str] | None = None) -> Endpoint:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"The endpoint {base_url!r} must be an http:// or https:// URL, e.g. "
                             "http://127.0.0.1:8080/v1.")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.hostname, port, parts.path.rstrip("/") + "/chat/completions", parts.scheme == "https",
                   tuple((headers or {}).items()))

    def request_bytes(self, body: dict[str, Any]) -> bytes:
        """The whole HTTP/1.1 request for ``body`` (built before the clock starts)."""
        data = json.dumps(body, separators=(",", ":")).encode()
        head = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                "Accept: text/event-stream", "Accept-Encoding: identity", f"Content-Length: {len(data)}",
                *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data


class Connection(rawhttp.Connection):
    """One kept-alive connection to an endpoint (reopened after the server closes it)."""

    def __init__(self, endpoint: Endpoint, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(endpoint.host, endpoint.port, endpoint.tls, ssl_context)
        self.endpoint = endpoint


async def send(conn: Connection, payload: bytes, rec: RequestRecord) -> None:
    """Send one prebuilt request on ``conn`` and fill ``rec`` (t0, content chunks, usage, status)."""
    try:
        await conn.open()
    except OSError as exc:
        rec.status, rec.error = "error", f"cannot connect: {exc}"
        return
    reader, writer = conn.reader, conn.writer
    assert reader is not None and writer is not None
    rec.sent_ns = perf_counter_ns()
    writer.write(payload)
    try:
        status, pairs = await rawhttp.read_head(reader)
        headers = dict(pairs)
        rid = headers.get("x-request-id") or headers.get("request-id")
        rec.request_id = redact(rid)[:100] if rid else None  # a server's header: it may echo the key
        if status != 200:
            rec.status = "rate_limited" if status == 429 else "error"
            rec.error = f"HTTP {status}"
            if status == 429:
                rec.rate_limit = dict([(k, redact(v)[:100]) for k, v in headers.items()
                                       if k == "retry-after" or RATE_HEADER.match(k)][:20])
            await _drain_error(reader, headers)
            if headers.get("connection", "").lower() == "close":
                conn.close()
            return
        await _read_stream(reader, headers, rec)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
        rec.error = rec.error or f"{type(exc).__name__}: {exc}"[:200]
        conn.close()
    finally:
        rec.done_ns = perf_counter_ns()
    if rec.status == "incomplete":
        conn.close()  # the body did not end cleanly: the connection cannot be reused


async def _drain_error(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    length = int(headers.get("content-length", "0") or 0)
    if 0 < length <= MAX_HEAD:
        await reader.readexactly(length)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        async for _ in rawhttp.chunked_blocks(reader):
            pass


async def _read_stream(reader: asyncio.StreamReader, headers: dict[str, str], rec: RequestRecord) -> None:
    blocks = rawhttp.body_blocks(reader, headers)
    pending = b""
    usage_line = None
    async for t, data in blocks:
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            if CONTENT.search(line):
                if rec.first_ns is None:
                    rec.first_ns = t
                rec.chunk_ns.append(t)
            elif line.startswith(b"data: [DONE]") or line.startswith(b"data:[DONE]"):
                rec.status = "ok" if rec.chunk_ns else "incomplete"
            if b'"usage":{' in line or b'"usage": {' in line:
                usage_line = line
    if usage_line is not None:
        _usage(usage_line, rec)
    if rec.status == "incomplete" and rec.chunk_ns and headers.get("transfer-encoding", "").lower() == "chunked":
        rec.error = rec.error or "the stream ended without [DONE]"


def _usage(line: bytes, rec: RequestRecord) -> None:
    """Read the usage line; a count no model produces fails the request, as the engine does
    (engine/execute.py ``check_usage``), instead of entering the figures."""
    try:
        usage = json.loads(line[5:].strip()).get("usage") or {}
    except ValueError:
        usage = {"prompt_tokens": "unreadable"}
    for name, attr in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        value = usage.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
            shown = f"{value}" if isinstance(value, int) and not isinstance(value, bool) else \
                f"a value of type {type(value).__name__}"  # never the value itself: it may be an echoed key
            rec.status, rec.error = "error", f"the server reported {name} = {shown}, which no model produces"
            return
        setattr(rec, attr, value)
