"""Ollama's native API, replayed: ``POST /api/chat`` as NDJSON, ``GET /api/tags``, ``GET /api/version``.

Served under ``/ollama`` (``OLLAMA_HOST=http://127.0.0.1:PORT/ollama``). The request's ``model`` is a
replay script (see :mod:`tryouts.testing.replay`); what it means here:

* ``tokens``, ``ttft_ms``, ``itl_ms``, ``per_chunk``: one line per content chunk,
  ``{"model","created_at","message":{"role":"assistant","content":" w0"},"done":false}``, on the same
  absolute schedule as the OpenAI route (reasoning chunk ``j`` at ``recv + ttft + j*itl``, content chunk
  ``k`` at ``recv + ttft + (reasoning + k)*itl``);
* ``reasoning``: that many ``message.thinking`` lines first. As in Ollama, a thinking model thinks
  unless the request says ``"think": false`` (then no thinking lines are sent); ``"think": true`` (or a
  level) with ``reasoning=0`` is a model that cannot think: 400 ``"NAME" does not support thinking``;
* the final line, right after the last chunk: ``"done_reason"`` (``finish``: stop, length...),
  ``"done": true`` and the metrics, durations in nanoseconds and consistent with what was really sent:
  ``load_duration`` = request read -> response started (the model is "already loaded"),
  ``prompt_eval_duration`` = response started -> first generated chunk, ``eval_duration`` = first -> last
  generated chunk, ``total_duration`` = request read -> final line; ``prompt_eval_count`` =
  ``prompt_tokens``, ``eval_count`` = ``tokens`` (+ ``reasoning`` when thinking). ``usage=never`` leaves
  the two counts out (Ollama omits them in some cases, e.g. a fully cached prompt);
* ``"stream": false`` (Ollama streams by default): one JSON object when the last chunk would have been
  sent; no ``messages`` (or ``[]``) answers at once with ``done_reason`` ``load`` (``unload`` with ``keep_alive`` 0);
* ``status``, ``retry_after``: Ollama's error body ``{"error": "..."}``; 404 is
  ``model 'MODEL' not found`` (the model field as sent), as Ollama's chat handler words it;
* ``cut_after``, ``fail_first``, ``id``: as on the OpenAI route (``GET /_replay/log/{id}``).

``role_first``, ``cached``, ``quota`` and ``timings`` do not apply and are ignored. Every line carries
``x_sent_ns`` (``perf_counter_ns()`` right before its write), like the OpenAI route's chunks. The
dialect hook gets no ``receive``, so a stream whose client went away runs its schedule to the end (its
writes are dropped).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from time import perf_counter_ns, time_ns
from typing import Any

from ..app import ReplayApp
from ..script import Script, ScriptError, parse_script
from ..wire import (
    cut,
    dumps,
    log_content_sent,
    log_reasoning_sent,
    retry_after,
    send_answer,
    send_body,
    sleep_until,
)

#: what ``GET /api/version`` reports (the replay is not a real Ollama release)
VERSION = "0.0.0"

_NDJSON = [(b"content-type", b"application/x-ndjson")]
_JSON = [(b"content-type", b"application/json; charset=utf-8")]

_ERRORS = {
    400: "invalid request: the replay script asked for a 400",
    401: "unauthorized",
    403: "forbidden",
    429: "too many requests, please try again later",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def created_at(ns: int | None = None) -> str:
    """Wall-clock time as Go's ``time.Time`` marshals it: RFC 3339, UTC, nanoseconds, zeros trimmed."""
    ns = time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


async def _reply(send, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_body(send, status, dumps(data).encode(), [*_JSON, *(headers or ())])


async def _text(send, status: int, text: str, head: bool = False) -> None:
    await send_body(send, status, text.encode(), [(b"content-type", b"text/plain; charset=utf-8")], head_only=head)


async def handle(app: ReplayApp, method: str, path: str, scope, body: bytes, recv_ns: int, send) -> None:
    """Serve one request under ``/ollama``; ``path`` has the prefix removed."""
    if path == "/api/chat" and method == "POST":
        return await _chat(app, body, recv_ns, send)
    if path == "/api/tags" and method == "GET":
        return await _reply(send, 200, {"models": [_tag("replay:latest")]})
    if path == "/api/version" and method == "GET":
        return await _reply(send, 200, {"version": VERSION})
    if path == "/" and method in ("GET", "HEAD"):
        return await _text(send, 200, "Ollama is running", head=method == "HEAD")
    await _text(send, 404, "404 page not found")  # Ollama's router: unknown path or method


def _tag(name: str) -> dict[str, Any]:
    """One entry of ``/api/tags``."""
    return {
        "name": name,
        "model": name,
        "modified_at": created_at(),
        "size": 0,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "replay",
            "families": ["replay"],
            "parameter_size": "0",
            "quantization_level": "F16",
        },
    }


async def _chat(app: ReplayApp, body: bytes, recv_ns: int, send) -> None:
    if not body:
        return await _reply(send, 400, {"error": "missing request body"})
    try:
        req = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return await _reply(send, 400, {"error": f"invalid character in request body: {exc}"})
    if not isinstance(req, dict):
        return await _reply(send, 400, {"error": "json: cannot unmarshal request body: not an object"})
    model = req.get("model")
    if not isinstance(model, str) or not model.strip():
        return await _reply(send, 400, {"error": "model is required"})
    try:
        s = parse_script(model)
    except ScriptError as exc:
        return await _reply(send, 400, {"error": str(exc)})
    stream = req.get("stream") is not False  # Ollama streams unless told not to
    entry = app.admit(s, model, recv_ns, stream)
    if s.status != 200:
        message = f"model '{model}' not found" if s.status == 404 else _ERRORS.get(s.status)
        error = {"error": message or f"the replay script asked for HTTP {s.status}"}
        return await _reply(send, s.status, error, retry_after(s.retry_after))
    think = req.get("think")
    if think not in (None, False) and not s.reasoning:
        entry["status"] = 400
        return await _reply(send, 400, {"error": f'"{s.model}" does not support thinking'})
    thinking = s.reasoning if think is not False else 0
    if not req.get("messages"):  # Ollama: no messages loads (or unloads) the model
        unload = req.get("keep_alive") in (0, "0", "0s", "0m")
        t = perf_counter_ns()
        entry["done_sent_ns"] = t
        return await _reply(send, 200, {
            "model": model, "created_at": created_at(), "message": {"role": "assistant", "content": ""},
            "done_reason": "unload" if unload else "load", "done": True, "x_sent_ns": t,
        })
    if stream:
        await _stream(app, s, model, thinking, recv_ns, entry, send)
    else:
        await _complete(app, s, model, thinking, recv_ns, entry, send)


def _metrics(s: Script, thinking: int, recv_ns: int, opened_ns: int, first: int | None, last: int | None,
             done_ns: int) -> dict[str, int]:
    """The final line's metrics (nanoseconds), from the stamps of what was really sent."""
    out = {
        "total_duration": done_ns - recv_ns,
        "load_duration": max(1, opened_ns - recv_ns),
        "prompt_eval_count": s.prompt_tokens,
        "prompt_eval_duration": (first if first is not None else done_ns) - opened_ns,
        "eval_count": s.tokens + thinking,
        "eval_duration": (last - first) if first is not None and last is not None else 0,
    }
    if s.usage == "never":
        del out["prompt_eval_count"], out["eval_count"]
    return out


async def _stream(app: ReplayApp, s: Script, model: str, thinking: int, recv_ns: int, entry: dict[str, Any],
                  send) -> None:
    slack = app.slack()
    head = '{"model":' + dumps(model) + ',"created_at":'

    async def emit(message: str) -> int:
        """Stamp, then write one ``done: false`` line; returns the stamp."""
        t = perf_counter_ns()
        line = f'{head}{dumps(created_at())},"message":{message},"done":false,"x_sent_ns":{t}}}\n'
        await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
        return t

    await send({"type": "http.response.start", "status": 200, "headers": _NDJSON})
    opened = perf_counter_ns()
    start, itl = recv_ns + s.ttft_ns, s.itl_ns
    last: int | None = None  # the last thinking or content line's stamp
    for j in range(thinking):
        message = '{"role":"assistant","content":"","thinking":' + dumps(f" r{j}") + "}"
        await sleep_until(start + j * itl, slack)
        last = await emit(message)
        log_reasoning_sent(entry, last)
        if j & 15 == 15:  # let other streams run when lines are due back to back (itl_ms=0)
            await asyncio.sleep(0)
    n = s.n_content_chunks
    for k in range(n):
        due = start + (thinking + k) * itl
        if k == s.cut_after:
            await sleep_until(due, slack)
            raise cut(entry)
        message = '{"role":"assistant","content":' + dumps(s.content_piece(k)) + "}"
        await sleep_until(due, slack)
        last = await emit(message)
        log_content_sent(entry, last)
        if k & 15 == 15:
            await asyncio.sleep(0)
    if s.cut_after >= n:
        raise cut(entry)
    if not n:  # nothing to say: the final line comes when the first content would have
        await sleep_until(start + thinking * itl, slack)
    done = perf_counter_ns()
    final: dict[str, Any] = {
        "model": model,
        "created_at": created_at(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": s.finish,
        "done": True,
        **_metrics(s, thinking, recv_ns, opened, entry["first_token_sent_ns"], last, done),
        "x_sent_ns": done,
    }
    entry["done_sent_ns"] = done
    await send({"type": "http.response.body", "body": (dumps(final) + "\n").encode(), "more_body": False})


async def _complete(app: ReplayApp, s: Script, model: str, thinking: int, recv_ns: int, entry: dict[str, Any],
                    send) -> None:
    """``"stream": false``: one object when the last chunk would have been sent."""
    opened = perf_counter_ns()
    await sleep_until(s.answer_due(recv_ns, thinking), app.slack())
    t = perf_counter_ns()
    message: dict[str, Any] = {"role": "assistant", "content": s.full_text()}
    if thinking:
        message["thinking"] = s.reasoning_text(thinking)
    first = min(max(recv_ns + s.ttft_ns, opened), t)
    data = {
        "model": model,
        "created_at": created_at(),
        "message": message,
        "done_reason": s.finish,
        "done": True,
        **_metrics(s, thinking, recv_ns, opened, first, t, t),
        "x_sent_ns": t,
    }
    await send_answer(send, dumps(data).encode(), _JSON, s, entry, t)
