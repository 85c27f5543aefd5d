"""Replicate's predictions API with streaming output, replayed under ``/replicate``.

Routes (``REPLICATE_BASE_URL=http://127.0.0.1:PORT/replicate``)::

    POST /v1/models/{owner}/{script}/predictions   {"input": {...}, "stream": true}  -> 201, a prediction
    POST /v1/predictions                           {"version": "{owner}/{script}:{version}", "input": {...}}
    GET  /v1/predictions/{id}                      the prediction: status, output, metrics
    POST /v1/predictions/{id}/cancel               cancels it (a stream still open ends with done/canceled)
    GET  /stream/{id}                              its output as server-sent events

The script (see :mod:`tryouts.testing.replay`) is the model's **name**: ``replay/tokens=5;ttft_ms=50``
(URL-encoded by the client or not), or ``meta/meta-llama-3-8b-instruct``, a plain name with every default.
The created prediction (status ``starting``) has ``urls.get``, ``urls.cancel`` and ``urls.stream``,
absolute URLs back to this server built from the request's ``Host`` header. The stream sends what
Replicate documents: ``event: output`` with the text piece as plain ``data`` (`` w0``, ``per_chunk``
tokens each) and an ``id`` line, then ``event: done`` with ``data: {}``. The schedule is anchored at
the **create** request (the model starts running when the prediction is created, whenever the client
connects): output ``k`` at ``recv + ttft + k*itl``, those already due are sent at once. ``GET`` says
``processing`` until the last output was due, then ``succeeded`` with ``output`` (the list of pieces)
and ``metrics``: ``input_token_count`` (``prompt_tokens``) and ``output_token_count`` (``tokens``; both
left out with ``usage=never``), ``predict_time`` and ``total_time`` (create -> last output, seconds),
``time_to_first_token`` and ``tokens_per_second`` ((tokens-1) / (last - first output)), from what was
really sent. Replicate's docs promise ``predict_time`` and ``total_time``; the token counts,
``time_to_first_token`` and ``tokens_per_second`` are what its language models report.

Errors (on create; ``retry_after`` adds a ``retry-after`` header) use Replicate's problem-details body
``{"title", "detail", "status"}`` (401 ``Unauthenticated``, 402, 404, 422 ``Input validation failed``,
5xx), except 429, whose documented body is ``{"detail": "Request was throttled. Expected available in N
second(s)."}``. An input without a string ``prompt`` is a 422. ``cut_after`` drops the stream's
connection when output ``cut_after`` is due (the prediction itself runs on); with an error ``status``
too, the stream sends ``event: error`` (``{"detail"}``) and ``event: done`` (``{"reason": "error"}``)
there instead, and the prediction is ``failed``. ``fail_first`` counts creates; ``id`` logs as on the
OpenAI route (``recv_ns`` is the create's; a cancel sets ``canceled``). Output events carry no
``x_sent_ns`` (their data is plain text): the log has the send times. With ``REPLAY_REQUIRE_KEY`` every
route wants ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter_ns
from typing import Any

from ..app import ReplayApp
from ..script import Script, ScriptError, auth_echo, parse_script
from ..wire import (
    SSE_HEADERS,
    Cut,
    dumps,
    header,
    log_content_sent,
    read_json,
    retry_after,
    send_json,
    sleep_until,
)

Send = Any
#: predictions kept for GET and the stream; the oldest go first
KEEP = 10_000

TITLES = {401: "Unauthenticated", 402: "Insufficient credit", 404: "Not found", 422: "Input validation failed"}
DETAILS = {
    401: "You did not pass a valid authentication token",
    402: "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing "
    "to purchase credit.",
    404: "The requested resource could not be found.",
    422: "The replay script asked for a 422.",
    500: "Internal server error",
}


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    script: Script
    recv_ns: int
    entry: dict[str, Any]
    input: dict[str, Any]
    created_at: str
    status: str = "starting"
    error: str | None = None
    streamed: bool = False
    pieces: list[str] = field(default_factory=list)

    def end_due(self) -> int:
        return self.script.answer_due(self.recv_ns, 0)


_PREDICTIONS: OrderedDict[str, _Prediction] = OrderedDict()


async def _problem(send: Send, status: int, detail: str | None = None, after: str | None = None) -> None:
    if status == 429:
        wait = after or "1"
        body: dict[str, Any] = {"detail": f"Request was throttled. Expected available in {wait} second"
                                f"{'' if wait == '1' else 's'}."}
    else:
        title = TITLES.get(status) or ("Internal server error" if status >= 500 else "Bad request")
        body = {"title": title, "detail": detail or DETAILS.get(status) or f"HTTP {status}", "status": status}
    await send_json(send, status, body, retry_after(after))


def _root(scope: dict[str, Any]) -> str:
    host = header(scope, b"host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}/replicate"


def _view(p: _Prediction, root: str) -> dict[str, Any]:
    """The prediction object as ``GET`` returns it now."""
    if p.status in ("starting", "processing") and (p.entry["done_sent_ns"] or perf_counter_ns() >= p.end_due()):
        p.status = "succeeded"
    data: dict[str, Any] = {
        "id": p.id, "model": p.model, "version": p.version, "input": p.input, "logs": "",
        "output": None, "data_removed": False, "error": p.error, "status": p.status, "source": "api",
        "created_at": p.created_at,
        "urls": {
            "cancel": f"{root}/v1/predictions/{p.id}/cancel",
            "get": f"{root}/v1/predictions/{p.id}",
            "stream": f"{root}/stream/{p.id}",
            "web": f"https://replicate.com/p/{p.id}",
        },
    }
    if p.status == "starting":
        return data
    s = p.script
    data["started_at"] = p.created_at
    data["output"] = p.pieces if p.status != "succeeded" else [s.content_piece(k) for k in range(s.n_content_chunks)]
    if p.status in ("succeeded", "failed", "canceled"):
        data["completed_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        e = p.entry
        first = e["first_content_sent_ns"] or p.recv_ns + s.ttft_ns
        last = e["last_content_sent_ns"] or p.end_due()
        metrics: dict[str, Any] = {"predict_time": (last - p.recv_ns) / 1e9, "total_time": (last - p.recv_ns) / 1e9}
        if p.status == "succeeded":
            metrics["time_to_first_token"] = (first - p.recv_ns) / 1e9
            if s.tokens > 1 and last > first:
                metrics["tokens_per_second"] = (s.tokens - 1) / ((last - first) / 1e9)
            if s.usage != "never":
                metrics["input_token_count"], metrics["output_token_count"] = s.prompt_tokens, s.tokens
        data["metrics"] = metrics
    return data


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one request under ``/replicate`` (``path`` without the prefix)."""
    if app.require_key and app.bearer(scope) != app.require_key:
        return await _problem(send, 401)
    parts = path.strip("/").split("/")
    root = _root(scope)
    if method == "POST" and len(parts) == 5 and parts[:2] == ["v1", "models"] and parts[4] == "predictions":
        return await _create(app, f"{parts[2]}/{parts[3]}", None, body, recv_ns, root, send, scope)
    if method == "POST" and parts == ["v1", "predictions"]:
        try:
            version = json.loads(body).get("version")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            version = None
        if not isinstance(version, str) or not version:
            return await _problem(send, 422, "- version: Version is required")
        model, _, vid = version.rpartition(":")
        return await _create(app, model or vid, vid, body, recv_ns, root, send, scope)
    known = (len(parts) in (3, 4) and parts[:2] == ["v1", "predictions"]) or (len(parts) == 2 and parts[0] == "stream")
    if known:
        p = _PREDICTIONS.get(parts[2] if parts[0] == "v1" else parts[1])
        if p is None:
            return await _problem(send, 404)
        if method == "GET" and parts[0] == "stream":
            return await _stream(app, p, send)
        if method == "GET" and len(parts) == 3:
            return await send_json(send, 200, _view(p, root))
        if method == "POST" and parts[-1] == "cancel":
            if _view(p, root)["status"] in ("starting", "processing"):
                p.status = "canceled"
                p.entry["canceled"] = True
            return await send_json(send, 200, _view(p, root))
    await _problem(send, 404)


async def _create(
    app: ReplayApp, model: str, version: str | None, body: bytes, recv_ns: int, root: str, send: Send,
    scope: dict[str, Any] | None = None,
) -> None:
    req = read_json(body)
    if not isinstance(req, dict) or not isinstance(req.get("input"), dict):
        return await _problem(send, 422, "- input: Input is required and must be an object")
    inp = req["input"]
    if not isinstance(inp.get("prompt"), str):
        return await _problem(send, 422, "- input.prompt: prompt is required and must be a string")
    for name in ("max_tokens", "max_new_tokens", "seed"):
        if name in inp and (isinstance(inp[name], bool) or not isinstance(inp[name], int)):
            return await _problem(send, 422, f"- input.{name}: Invalid type. Expected: integer")
    script = model.rpartition("/")[2]
    try:
        s = parse_script(script)
    except ScriptError as exc:
        return await _problem(send, 422, f"- model: {exc}")
    entry = app.admit(s, model, recv_ns, True)
    entry["script"] = script
    entry["canceled"] = False
    if s.refused(True):
        echo = auth_echo(scope) if s.echo_auth else ""
        return await _problem(send, s.status, (DETAILS.get(s.status) or f"HTTP {s.status}") + echo if echo else None,
                              s.retry_after)
    pid = secrets.token_hex(13)[:26]
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    p = _Prediction(pid, model, version or "replay", s, recv_ns, entry, inp, created)
    _PREDICTIONS[pid] = p
    while len(_PREDICTIONS) > KEEP:
        _PREDICTIONS.popitem(last=False)
    await send_json(send, 201, _view(p, root))


async def _stream(app: ReplayApp, p: _Prediction, send: Send) -> None:
    slack = app.slack()
    s, first_time = p.script, not p.streamed
    p.streamed = True
    e = p.entry if first_time else {"sent_ns": [], "first_content_sent_ns": None, "first_token_sent_ns": None}
    stamp = int(time.time())
    n = 0

    async def emit(name: str, data: str, more: bool = True) -> int:
        nonlocal n
        t = perf_counter_ns()
        lines = "".join(f"data: {line}\n" for line in data.split("\n"))
        await send({"type": "http.response.body", "body": f"event: {name}\nid: {stamp}:{n}\n{lines}\n".encode(),
                    "more_body": more})
        n += 1
        return t

    await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
    if p.status == "starting":
        p.status = "processing"
    start, itl = p.recv_ns + s.ttft_ns, s.itl_ns
    for k in range(s.n_content_chunks):
        await sleep_until(start + k * itl, slack)
        if p.status == "canceled":
            await emit("done", '{"reason":"canceled"}', more=False)
            return
        if k == s.cut_after:
            return await _cut(p, emit)
        piece = s.content_piece(k)
        t = await emit("output", piece)
        if first_time:
            p.pieces.append(piece)
        log_content_sent(e, t)
        if k & 15 == 15:  # let other streams run when outputs are due back to back (itl_ms=0)
            await asyncio.sleep(0)
    if s.cut_after >= s.n_content_chunks:
        return await _cut(p, emit)
    if not s.n_content_chunks:
        await sleep_until(start, slack)
    if p.status == "processing":
        p.status = "succeeded"
    e["done_sent_ns"] = await emit("done", "{}", more=False)


async def _cut(p: _Prediction, emit: Any) -> None:
    """End early: error + done events when a status is scripted (the prediction failed), else drop."""
    p.entry["cut"] = True
    if p.script.status == 200:
        raise Cut
    p.status, p.error = "failed", DETAILS.get(p.script.status) or f"Prediction failed (HTTP {p.script.status})"
    await emit("error", dumps({"detail": p.error}))
    p.entry["done_sent_ns"] = await emit("done", '{"reason":"error"}', more=False)
