"""The replay server's ASGI application: reads each request's body, stamps ``recv_ns`` and routes it.

``/v1/chat/completions`` (also without ``/v1``, and Azure's ``/openai/deployments/{name}/chat/completions``)
goes to :mod:`tryouts.testing.openai_route`, ``/v1/files...`` and ``/v1/batches...`` (OpenAI's Batch API, also
without ``/v1``) to :mod:`tryouts.testing.dialects.openai_batch`, except OpenRouter's batch requests there and
``/beta/batches...``, which go to :mod:`tryouts.testing.dialects.openrouter_batch`, ``/v1/models`` lists one model, ``/_replay/log/{id}`` returns a
logged request, ``/_replay/arrivals`` every request's arrival (``[recv_ns, script]``, the last
:data:`ARRIVALS_LIMIT`, in order: a test checks a client's request rate with it), and a path under one of :data:`DIALECTS`' prefixes goes to that dialect's ``handle``.
The app also holds what requests share: the log, the ``fail_first`` counts and the timer slack.
"""

from __future__ import annotations

import asyncio
import importlib
from collections import deque
from collections.abc import Awaitable, Callable
from time import perf_counter_ns
from typing import Any

from .openai_route import chat, error_object, openai_error
from .script import Script
from .wire import LOG_LIMIT, ReplayLog, header, read_json, send_json

__all__ = ["DIALECTS", "MAX_BODY", "ReplayApp"]

#: path prefix -> module under tryouts.testing.dialects replaying another provider's wire format.
#: Each module has ``async def handle(app, method, path, scope, body, recv_ns, send)`` (``path`` without
#: the prefix); it reads the script with ``parse_script``, opens the log entry with :meth:`ReplayApp.admit`
#: (which applies ``fail_first``) and sends with :mod:`tryouts.testing.wire`.
DIALECTS: dict[str, str] = {
    "/anthropic": "anthropic", "/gemini": "gemini", "/ollama": "ollama", "/cohere": "cohere",
    "/replicate": "replicate", "/bedrock": "bedrock",
}
#: arrivals kept for ``/_replay/arrivals``
ARRIVALS_LIMIT = 200_000
#: request bodies larger than this get a 413
MAX_BODY = 16 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _with_rate_headers(send: Send) -> Send:
    """``send``, adding the request's rate-limit headers (testing/ratelimit.py) to its response start."""
    from .ratelimit import RATE_HEADERS

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            extra = RATE_HEADERS.get()
            if extra:
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return sending


class ReplayApp:
    """The raw ASGI application (no framework, so that the server is never the bottleneck).

    Args:
        require_key: when set, ``/v1/*`` wants ``Authorization: Bearer <require_key>`` (and each dialect
            its provider's way of sending a key).
        log_limit: how many logged requests to keep.
    """

    def __init__(self, require_key: str | None = None, *, log_limit: int = LOG_LIMIT) -> None:
        self.require_key = require_key
        self.log = ReplayLog(log_limit)
        self.arrivals: deque[tuple[int, str]] = deque(maxlen=ARRIVALS_LIMIT)
        self._fail_counts: dict[str, int] = {}
        self._capacity: dict[int, asyncio.Semaphore] = {}
        self._slack_s: float | None = None

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
                    await send_json(send, 413, error_object("Request body too large.", "invalid_request_error", None))
                    return
                chunks.append(body)
            if not msg.get("more_body"):
                break
        recv_ns = perf_counter_ns()
        body = b"".join(chunks)
        send = _with_rate_headers(send)

        azure = path.startswith("/openai/deployments/") and path.endswith("/chat/completions")
        if path in ("/v1/chat/completions", "/chat/completions") or azure:  # Azure: the deployment is the path
            if method != "POST":
                return await self._method_not_allowed(send, method, path, "POST")
            if not await self._authorized(scope, send):
                return
            return await chat(self, body, recv_ns, self.bearer(scope) or "", receive, send, scope=scope)
        if path == "/health" and method == "GET":  # as vLLM's and llama.cpp's servers: load tools probe it first
            return await send_json(send, 200, {"status": "ok"})
        if path in ("/v1/models", "/models"):
            if method != "GET":
                return await self._method_not_allowed(send, method, path, "GET")
            if not await self._authorized(scope, send):
                return
            data = {"object": "list", "data": [{"id": "replay", "object": "model", "created": 0, "owned_by": "tryouts"}]}
            return await send_json(send, 200, data)
        sub = path[3:] if path.startswith("/v1/") else path  # OpenAI's Files and Batch APIs: dialects/openai_batch.py
        beta = path == "/beta/batches" or path.startswith("/beta/batches/")  # OpenRouter's quickstart path
        if sub.split("/")[1] in ("files", "batches") or beta:
            if not await self._authorized(scope, send):
                return
            from .dialects import openai_batch, openrouter_batch

            if beta or (sub.startswith("/batches") and openrouter_batch.owns(method, sub, body)):
                return await openrouter_batch.handle(self, method, sub.removeprefix("/beta"), scope, body, recv_ns, send)
            return await openai_batch.handle(self, method, sub, scope, body, recv_ns, send)
        prefix = "/" + path.lstrip("/").split("/", 1)[0]
        if prefix in DIALECTS:  # another provider's wire format, e.g. /anthropic/v1/messages
            module = importlib.import_module(f"tryouts.testing.dialects.{DIALECTS[prefix]}")
            return await module.handle(self, method, path[len(prefix):] or "/", scope, body, recv_ns, send)
        if path == "/_replay/limits":  # the rate-limit buckets (testing/ratelimit.py): read, or change while running
            from .ratelimit import bucket_report, set_limits

            if method == "GET":
                return await send_json(send, 200, bucket_report(self))
            got = set_limits(self, read_json(body))
            code = 400 if isinstance(got, str) else 200
            return await send_json(send, code, error_object(got, "invalid_request_error", None) if code == 400 else got)
        if path == "/_replay/arrivals" and method == "GET":
            return await send_json(send, 200, {"arrivals": list(self.arrivals)})
        if path.startswith("/_replay/log/") and method == "GET":
            rid = path[len("/_replay/log/") :]
            entry = self.log.get(rid)
            if entry is None:
                return await send_json(send, 404, error_object(f"No request with id {rid!r} is logged.", "not_found", None))
            return await send_json(send, 200, entry)
        await send_json(
            send,
            404,
            error_object(
                f"Unknown request URL: {method} {path}. Please check the URL for typos.", "invalid_request_error", "unknown_url"
            ),
        )

    # ---- what every route uses

    def apply_fail_first(self, s: Script, model: str) -> None:
        """``fail_first=N``: the first N requests with this exact script fail, later ones succeed."""
        if s.fail_first:
            seen = self._fail_counts.get(model, 0)
            self._fail_counts[model] = seen + 1
            if seen >= s.fail_first:  # the failures are used up: succeed from now on
                s.status, s.cut_after = 200, -1

    def admit(self, s: Script, model: str, recv_ns: int, stream: bool) -> dict[str, Any]:
        """Apply ``fail_first`` (counted per ``model``, the script as sent) and open the request's log
        entry, whose ``script`` is ``model``; returns the entry."""
        self.apply_fail_first(s, model)
        self.arrivals.append((recv_ns, model))
        entry = self.log.new(s.id, recv_ns, s, stream)
        entry["script"] = model
        return entry

    def capacity_gate(self, n: int) -> asyncio.Semaphore:
        """``capacity=N``: the one queue of every request with that N (at most N in service at once)."""
        if n not in self._capacity:
            self._capacity[n] = asyncio.Semaphore(n)
        return self._capacity[n]

    def slack(self) -> float:
        """Seconds added to each sleep: uvloop's timers may fire up to half a millisecond early (fixed on first use)."""
        if self._slack_s is None:
            self._slack_s = 0.0005 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 0.0
        return self._slack_s

    @staticmethod
    def bearer(scope: Scope) -> str | None:
        """The key of ``Authorization: Bearer <key>``, or None."""
        auth = header(scope, b"authorization")
        if auth is None:
            return None
        scheme, _, key = auth.partition(" ")
        return key.strip() if scheme.lower() == "bearer" and key.strip() else None

    # ---- the OpenAI route's checks

    async def _method_not_allowed(self, send: Send, method: str, path: str, allowed: str) -> None:
        await send_json(
            send, 405, error_object(f"Method {method} not allowed for {path}; use {allowed}.", "invalid_request_error", None),
            [(b"allow", allowed.encode())],
        )

    async def _authorized(self, scope: Scope, send: Send) -> bool:
        if not self.require_key:
            return True
        key = self.bearer(scope)
        if key == self.require_key:
            return True
        await send_json(send, 401, openai_error(401, key=key))
        return False
