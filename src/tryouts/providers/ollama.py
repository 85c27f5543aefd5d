"""Ollama's native chat API (``POST /api/chat``, NDJSON) over httpx, with Ollama's own timings.

Model references are ``ollama:MODEL`` with the model as Ollama names it (``ollama:llama3.1``,
``ollama:qwen3:8b``). The server is the ``base_url`` option, else ``OLLAMA_HOST`` read the way Ollama
reads it (``host:port``, ``host``, ``:port`` or a URL; a path is kept, for a proxy), else
``http://127.0.0.1:11434``.

Each NDJSON line is stamped with ``perf_counter_ns()`` when its newline arrives. ``message.content`` is
answer text, ``message.thinking`` reasoning (``think`` option), ``message.tool_calls`` tool output. The
final ``"done": true`` line gives exact usage (``prompt_eval_count``, ``eval_count``), the finish reason
(``done_reason``) and Ollama's own durations, stored as ``server_timings`` in milliseconds beside the
client's figures (docs/metrics.md), never in their place.

Ollama runs models on your own hardware: a request costs nothing (``free``: cost 0, source ``local``),
unless a ``price`` option says otherwise. It is still a server, not an in-process model (``local`` is
False), so it is scheduled like an API.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from time import perf_counter_ns
from typing import Any

import httpx

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, ServerTimings, Usage, UsageReport
from .http import HTTPProvider
from .sse import MAX_EVENT_BYTES

DEFAULT_HOST = "http://127.0.0.1:11434"
#: Ollama's final-line durations (nanoseconds) -> our server_timings keys (milliseconds)
DURATIONS = {
    "load_duration": "load_ms",
    "prompt_eval_duration": "prompt_eval_ms",
    "eval_duration": "eval_ms",
    "total_duration": "total_ms",
}
THINK_LEVELS = ("low", "medium", "high")


def ollama_base_url(value: str) -> str:
    """A base URL from an ``OLLAMA_HOST``-style value, parsed the way Ollama's own client parses it.

    No scheme means ``http``; a missing port is 11434 without a scheme, else the scheme's (80, 443);
    a path is kept. ``0.0.0.0`` and ``::`` (listen-on-all addresses a server is often given) become
    loopback, so the same variable works for ``ollama serve`` and for us.
    """
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    default_port = {"http": "80", "https": "443"}.get(scheme, "11434") if sep else "11434"
    if not sep:
        scheme, rest = "http", value
    if scheme not in ("http", "https"):
        raise errors.UsageError(f"Ollama host {value!r}: the scheme must be http or https.")
    hostport, slash, path = rest.partition("/")
    host, port = hostport, default_port
    if hostport.startswith("["):  # [v6]:port or [v6]
        inside, _, after = hostport[1:].partition("]")
        host, port = inside, after[1:] if after.startswith(":") and after[1:] else default_port
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
        port = port or default_port
    elif hostport.count(":") > 1:  # a bare IPv6 address
        host = hostport
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.UsageError(f"Ollama host {value!r}: {port!r} is not a port number.")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}" + (f"/{path.strip('/')}" if slash and path.strip("/") else "")


class NDJSONDecoder:
    """Feed it bytes as they arrive; it returns the lines they complete, each stamped when split off."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        buf = self._buf + chunk
        lines: list[bytes] = []
        if b"\n" in chunk:
            *lines, buf = buf.split(b"\n")
        self._buf = buf
        if len(buf) > MAX_EVENT_BYTES:  # a line that never ends cannot fill the memory
            raise errors.BadResponseError(
                f"The server sent one line of more than {MAX_EVENT_BYTES // (1024 * 1024)} MB without ending it: not "
                "an Ollama answer. The request is counted as failed; check the server or its proxy.")
        return [(line, perf_counter_ns()) for line in lines if line.strip()]

    def flush(self) -> list[tuple[bytes, int]]:
        """End of body: a last line without its newline (Ollama always sends one; a proxy may not)."""
        rest, self._buf = self._buf, b""
        return [(rest, perf_counter_ns())] if rest.strip() else []


class OllamaProvider(HTTPProvider):
    """Streams ``/api/chat`` from an Ollama server."""

    free = True  # the engine prices it like a local model: cost 0, source "local"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        where = "the base_url option" if opts.get("base_url") else "OLLAMA_HOST"
        raw = opts.get("base_url") or os.environ.get("OLLAMA_HOST", "").strip()
        try:
            self.base_url = ollama_base_url(str(raw)) if raw else DEFAULT_HOST
        except errors.UsageError as exc:
            raise errors.UsageError(f"{spec.ref!r}: {exc.message} (from {where})") from None
        self.chat_url = self.base_url + "/api/chat"
        think = opts.get("think")
        if think is not None and not isinstance(think, bool) and think not in THINK_LEVELS:
            raise errors.UsageError(
                f"{spec.ref!r}: the think option is true, false or a level ({', '.join(THINK_LEVELS)}), not {think!r}."
            )
        num_ctx = opts.get("num_ctx")
        if num_ctx is not None and (isinstance(num_ctx, bool) or not isinstance(num_ctx, int) or num_ctx < 1):
            raise errors.UsageError(f"{spec.ref!r}: num_ctx is a positive number of tokens, not {num_ctx!r}.")

    async def load(self) -> None:
        # identity: we split the raw body into lines ourselves, so it must not arrive compressed (a proxy may gzip)
        self._slots = self.client_slots({
            "Accept": "application/x-ndjson",
            "Accept-Encoding": "identity",
            **(self.spec.options.get("headers") or {}),
        })
        return None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        p, opts = request.params, self.spec.options
        options: dict[str, Any] = {}
        if p.max_tokens is not None:
            options["num_predict"] = p.max_tokens
        for name in ("temperature", "top_p", "seed", "stop"):
            value = getattr(p, name)
            if value is not None:
                options[name] = value
        if opts.get("num_ctx") is not None:
            options["num_ctx"] = opts["num_ctx"]
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [m.model_dump() for m in request.messages],
            "stream": True,
        }
        if opts.get("think") is not None:
            body["think"] = opts["think"]
        if opts.get("keep_alive") is not None:
            body["keep_alive"] = opts["keep_alive"]
        extra = dict(opts.get("extra_body") or {})
        if isinstance(extra.get("options"), dict):  # merged, so that extra options add to ours
            options.update(extra.pop("options"))
        if options:
            body["options"] = options
        body.update(extra)
        return body

    def stream(self, request: Request) -> AsyncIterator[Event]:
        parts: list[str] = []
        return self.post_stream(
            request, self.chat_url, lambda item: self._parse(*item, parts), partial=lambda: "".join(parts),
            decoder=NDJSONDecoder, raw=True, on_transport_error=self._transport_error,
            cut=f"The stream from Ollama at {self.base_url} ended without its final \"done\": true line; "
            "the partial output is kept. Run again, or check the server's log.",
        )

    def _transport_error(self, exc: httpx.HTTPError, partial: str) -> errors.ProviderError | None:
        """Ollama's words for a refused connection, a timeout or a cut stream; other httpx errors stay."""
        if isinstance(exc, httpx.ConnectError):
            return errors.ConnectError(
                f"Cannot connect to Ollama at {self.base_url} ({exc}). Is `ollama serve` running? "
                "Start it, or point OLLAMA_HOST (or -o base_url=...) at the server."
            )
        if isinstance(exc, httpx.TimeoutException):
            return errors.RequestTimeoutError(
                f"Ollama at {self.base_url} did not answer in time ({type(exc).__name__}); a first request "
                "may be loading the model: raise the 'timeout' option or try again.",
                partial_text=partial,
            )
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return errors.StreamCutError(
                f"The stream from Ollama at {self.base_url} was cut before the model finished ({exc}); "
                "the partial output is kept. Run again, or check the server's log.",
                partial_text=partial,
            )
        return None

    def _parse(self, line: bytes, t_ns: int, parts: list[str]) -> list[Event]:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise errors.ServerError(
                f"Ollama at {self.base_url} sent a line that is not JSON: {line[:200]!r}",
                partial_text="".join(parts),
            ) from exc
        if not isinstance(obj, dict):
            raise errors.ServerError(f"Ollama at {self.base_url} sent {line[:200]!r}, not a JSON object.")
        if obj.get("error"):
            raise errors.ServerError(
                f"Ollama at {self.base_url} reported an error mid-stream: {obj['error']}. "
                "Check the server's log; run again.",
                partial_text="".join(parts),
            )
        out: list[Event] = []
        message = obj.get("message") or {}
        if message.get("thinking"):
            out.append(Delta(t_ns, message["thinking"], "reasoning"))
        if message.get("content"):
            parts.append(message["content"])
            out.append(Delta(t_ns, message["content"], "text"))
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            args = fn.get("arguments")
            piece = (fn.get("name") or "") + (json.dumps(args) if isinstance(args, dict) else (args or ""))
            if piece:
                out.append(Delta(t_ns, piece, "tool"))
        if obj.get("done"):
            if obj.get("prompt_eval_count") is not None or obj.get("eval_count") is not None:
                out.append(UsageReport(Usage(input_tokens=obj.get("prompt_eval_count"),
                                             output_tokens=obj.get("eval_count"))))
            timings = server_timings(obj)
            if timings:
                out.append(ServerTimings(timings))
            out.append(Finish(t_ns, obj.get("done_reason") or "stop"))
        return out

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        try:
            detail = response.json().get("error")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            detail = None
        detail = str(detail or response.text[:300].strip() or response.reason_phrase)
        where = f"Ollama ({self.base_url})"
        model = self.spec.model
        if status == 404 and not ("not found" in detail and "model" in detail):
            return errors.ModelNotFoundError(
                f"{where} has no /api/chat route (HTTP 404: {detail}); is {self.base_url} an Ollama server? "
                "Check OLLAMA_HOST or the base_url option.",
                status=status, provider=self.spec.provider, model=model, url=self.base_url,
            )
        hints = {
            "model_not_found": f"download it with: ollama pull {model}  (or list what it has: ollama list)",
            "auth": "a proxy in front of it may want a key: pass it with -o headers=...",
            503: "it is busy: lower the concurrency, or raise OLLAMA_NUM_PARALLEL / OLLAMA_MAX_QUEUE on the server",
            "server": "check the server's log (ollama serve), then try again",
        }
        if "does not support thinking" in detail:
            hints["bad_request"] = "This model does not think: drop the think option."
        return self.status_error(response, "Ollama", f"HTTP {status}: {detail}", hints=hints)


def server_timings(final: dict[str, Any]) -> dict[str, Any]:
    """Ollama's final-line metrics -> ``server_timings``: durations in ms, counts, and Ollama's rates."""
    out: dict[str, Any] = {}
    for src, dst in DURATIONS.items():
        if isinstance(final.get(src), int | float):
            out[dst] = final[src] / 1e6
    for name in ("prompt_eval_count", "eval_count"):
        if final.get(name) is not None:
            out[name] = final[name]
    # tokens/s as Ollama documents it: count / duration * 10^9
    if out.get("eval_ms") and out.get("eval_count"):
        out["eval_tokens_per_s"] = out["eval_count"] / out["eval_ms"] * 1e3
    if out.get("prompt_eval_ms") and out.get("prompt_eval_count"):
        out["prompt_eval_tokens_per_s"] = out["prompt_eval_count"] / out["prompt_eval_ms"] * 1e3
    return out
