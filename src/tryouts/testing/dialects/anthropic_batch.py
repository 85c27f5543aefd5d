"""Anthropic's Message Batches API for the replay server (``/anthropic/v1/messages/batches...``).

:mod:`.anthropic` hands every path under ``/v1/messages/batches`` here. As Anthropic documents it::

    POST   /v1/messages/batches                 {"requests":[{"custom_id","params":{<Messages request>}}]}
                                                -> MessageBatch (processing_status "in_progress")
    GET    /v1/messages/batches/{id}            the MessageBatch, one step further (see below)
    GET    /v1/messages/batches/{id}/results    JSONL (application/x-jsonl), one line per request, once ended
    POST   /v1/messages/batches/{id}/cancel     processing_status "canceling", cancel_initiated_at set
    DELETE /v1/messages/batches/{id}            {"id","type":"message_batch_deleted"} (an ended batch only)
    GET    /v1/messages/batches                 {"data":[MessageBatch...],"has_more","first_id","last_id"}
                                                (newest first; ``limit`` and ``after_id`` page it; no step)

A MessageBatch is ``{"id":"msgbatch_...","type":"message_batch","processing_status","request_counts":
{"processing","succeeded","errored","canceled","expired"},"ended_at","created_at","expires_at","archived_at":
null,"cancel_initiated_at","results_url"}`` with RFC 3339 times. It stays ``in_progress`` for ``batch_polls``
GETs (a share of the requests settled at each), then ``ended`` with ``ended_at`` and ``results_url``, the
absolute URL of its results on this server (from the request's ``Host``); after a cancel the next GET ends
it and the requests still waiting are ``canceled``. A result line is ``{"custom_id","result":R}`` with R
``{"type":"succeeded","message":<the Message a non-streamed request gets>}``, ``{"type":"errored","error":
{"type":"error","error":{"type":<the status's error type>,"message"}}}`` (a script's ``status``, after
``fail_first``), ``{"type":"expired"}`` (``expire``) or ``{"type":"canceled"}``; ``batch_junk=1`` adds hostile
lines (see :mod:`tryouts.testing.batchjob`). The results of a batch not yet ended are a 400; a cancel of an
ended batch returns it unchanged.

A submission is refused whole (400 ``invalid_request_error``, naming ``requests.{i}...``) for no requests,
a ``custom_id`` not matching ``^[a-zA-Z0-9_-]{1,64}$`` or used twice, ``params`` that a single Messages request
would be refused for (the dialect's checks) or a bad script. With ``REPLAY_REQUIRE_KEY`` the ``x-api-key``
header must match. At most 1,000 batches are kept, the oldest dropped first.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..batchjob import Item, Job, Kept, claim_expiry, hostile_lines, jsonl
from ..script import ScriptError, auth_echo
from ..wire import dumps, header, read_json, request_id, send_body, send_json
from .anthropic import ERROR_TYPES, _check, _error, message_object, script_of, scripted_message, usage_of

if TYPE_CHECKING:
    from ..app import ReplayApp

__all__ = ["MAX_REQUESTS", "handle"]

Send = Any

PREFIX = "/v1/messages/batches"
#: requests in one batch, as Anthropic allows
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_FIELD = re.compile(r"[a-z_][a-z0-9_.]*: ")


def _rfc3339(t: float | None) -> str | None:
    """``t`` (a Unix time) as Anthropic writes times: ``2024-08-20T18:37:24.100435Z``."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Batch:
    id: str
    job: Job
    created_at: float
    status: str = "in_progress"
    ended_at: float | None = None
    cancel_initiated_at: float | None = None

    def obj(self, base: str) -> dict[str, Any]:
        """The MessageBatch object; ``base`` is this server's URL (for ``results_url``)."""
        counts = self.job.counts()
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": {
                "processing": counts[None],
                "succeeded": counts["succeeded"],
                "errored": counts["errored"],
                "canceled": counts["canceled"],
                "expired": counts["expired"],
            },
            "ended_at": _rfc3339(self.ended_at),
            "created_at": _rfc3339(self.created_at),
            "expires_at": _rfc3339(self.created_at + 86_400),
            "archived_at": None,
            "cancel_initiated_at": _rfc3339(self.cancel_initiated_at),
            "results_url": f"{base}/anthropic{PREFIX}/{self.id}/results" if self.status == "ended" else None,
        }


def _batches(app: ReplayApp) -> Kept[str, _Batch]:
    """The batches one app keeps (``app._anthropic_batches``)."""
    kept: Kept[str, _Batch] | None = getattr(app, "_anthropic_batches", None)
    if kept is None:
        kept = Kept()
        app._anthropic_batches = kept  # type: ignore[attr-defined]
    return kept


def _base_url(scope: dict[str, Any]) -> str:
    """``http://host:port`` as the client reached this server: its ``Host`` header, else the socket's address."""
    host = header(scope, b"host")
    if not host or not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?", host):
        server = scope.get("server") or ("127.0.0.1", 80)
        name = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        host = f"{name}:{server[1]}"
    return f"{scope.get('scheme') or 'http'}://{host}"


# ------------------------------------------------------------------------------------------ routing


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one request under ``/anthropic/v1/messages/batches`` (``path`` without ``/anthropic``)."""
    if app.require_key:
        key = header(scope, b"x-api-key")
        if key != app.require_key:
            return await _error(send, 401, "x-api-key header is required" if key is None else "invalid x-api-key")
    rest = [p for p in path[len(PREFIX):].split("/") if p]
    batches = _batches(app)
    base = _base_url(scope)
    if not rest:
        if method == "POST":
            return await _create(app, batches, scope, body, base, send)
        if method == "GET":
            return await _list(batches, scope, base, send)
        return await _error(send, 405, f"Method {method} not allowed for {PREFIX}; use POST or GET.")
    if len(rest) > 2 or (len(rest) == 2 and rest[1] not in ("results", "cancel")):
        return await _error(send, 404, f"Not found: {method} /anthropic{path}")
    b = batches.get(rest[0])
    action = rest[1] if len(rest) == 2 else None
    wanted = {"results": ("GET",), "cancel": ("POST",), None: ("GET", "DELETE")}[action]
    if method not in wanted:
        return await _error(send, 405, f"Method {method} not allowed for {path}; use {' or '.join(wanted)}.")
    if b is None:
        return await _error(send, 404, f"message_batch_id: no Message Batch with id {rest[0]!r}")
    if action == "results":
        return await _results(b, send)
    if action == "cancel":
        if b.status == "in_progress":
            b.status, b.cancel_initiated_at = "canceling", time.time()
        return await send_json(send, 200, b.obj(base), [(b"request-id", request_id())])
    if method == "DELETE":
        if b.status != "ended":
            msg = f"Message Batch {b.id} is still processing; cancel it and wait for it to end before deleting it."
            return await _error(send, 400, msg)
        batches.discard(b.id)
        return await send_json(send, 200, {"id": b.id, "type": "message_batch_deleted"})
    _step(app, b)
    await send_json(send, 200, b.obj(base), [(b"request-id", request_id())])


def _step(app: ReplayApp, b: _Batch) -> None:
    """Move batch ``b`` one step (a GET): another share settled, or the end."""
    if b.status == "in_progress" and not b.job.poll(app):
        return
    if b.status in ("in_progress", "canceling"):
        b.job.finish(app, canceled=b.status == "canceling")
        b.status, b.ended_at = "ended", time.time()


async def _list(batches: Kept[str, _Batch], scope: dict[str, Any], base: str, send: Send) -> None:
    """A page of batches, newest first: ``limit`` (1-1000, default 20) after the id ``after_id``."""
    query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    try:
        limit = min(1000, max(1, int(query.get("limit", ["20"])[0])))
    except ValueError:
        return await _error(send, 400, "limit: Input should be a valid integer")
    data = [b.obj(base) for b in batches.newest_first()]
    after = query.get("after_id", [None])[0]
    if after is not None:
        ids = [d["id"] for d in data]
        data = data[ids.index(after) + 1:] if after in ids else []
    page = data[:limit]
    await send_json(send, 200, {
        "data": page, "has_more": len(data) > limit,
        "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
    })


# ------------------------------------------------------------------------------------------ batches


def _problem(i: int, request: Any, seen: set[str]) -> str | Item:
    """Request ``i`` of a submission as an :class:`Item`, or why Anthropic would refuse the batch."""
    if not isinstance(request, dict):
        return f"requests.{i}: Input should be a valid dictionary"
    cid = request.get("custom_id")
    if not isinstance(cid, str) or not CUSTOM_ID.fullmatch(cid):
        return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
    if cid in seen:
        return f"requests.{i}.custom_id: Duplicate custom_id {cid!r}; each custom_id must be unique within a batch."
    params = request.get("params")
    if params is None:
        return f"requests.{i}.params: Field required"
    problem = _check(params)
    if problem:
        return f"requests.{i}.params.{problem}" if _FIELD.match(problem) else f"requests.{i}.params: {problem}"
    try:
        s, cache_write = script_of(params["model"])
    except ScriptError as exc:
        return f"requests.{i}.params.model: {exc}"
    seen.add(cid)
    return Item(cid, params["model"], s, extra=cache_write)


def _render(echo: str) -> Any:
    """The renderer of a batch's items, one result line each; ``echo``: what ``echo_auth=1`` appends to an
    error message (the credentials the batch was submitted with)."""

    def render(item: Item) -> dict[str, Any]:
        s = item.script
        result: dict[str, Any]
        if item.outcome == "succeeded":
            result = {"type": "succeeded", "message": message_object(s, usage_of(s, item.extra))}
        elif item.outcome == "errored":
            kind = ERROR_TYPES.get(s.status) or ("api_error" if s.status >= 500 else "invalid_request_error")
            message = scripted_message(s.status, s) + (echo if s.echo_auth else "")
            result = {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": message}}}
        else:
            result = {"type": item.outcome}
        return {"custom_id": item.custom_id, "result": result}

    return render


async def _create(
    app: ReplayApp, batches: Kept[str, _Batch], scope: dict[str, Any], body: bytes, base: str, send: Send
) -> None:
    req = read_json(body)
    if not isinstance(req, dict):
        return await _error(send, 400, "There was an issue with the format of your request: the body is not a JSON object.")
    requests = req.get("requests")
    if not isinstance(requests, list):
        return await _error(send, 400, "requests: Field required" if requests is None else "requests: Input should be a valid list")
    if not requests:
        return await _error(send, 400, "requests: List should have at least 1 item after validation, not 0")
    if len(requests) > MAX_REQUESTS:
        return await _error(send, 400, f"requests: List should have at most {MAX_REQUESTS} items after validation, not {len(requests)}")
    items: list[Item] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        got = _problem(i, request, seen)
        if isinstance(got, str):
            return await _error(send, 400, got)
        items.append(got)
    echo = auth_echo(scope) if any(it.script.echo_auth for it in items) else ""
    claim_expiry(app, items)
    b = _Batch("msgbatch_" + secrets.token_hex(12), Job(items, _render(echo)), time.time())
    batches.add(b.id, b)
    await send_json(send, 200, b.obj(base), [(b"request-id", request_id())])


async def _results(b: _Batch, send: Send) -> None:
    if b.status != "ended":
        msg = f"Message Batch {b.id} has not ended yet (processing_status: {b.status}); its results are not available."
        return await _error(send, 400, msg)
    lines = b.job.results("succeeded", "errored", "expired", "canceled")
    encoded = hostile_lines(lines, lines[0]) if b.job.junk and lines else [dumps(x).encode() for x in lines]
    headers = [(b"content-type", b"application/x-jsonl"), (b"request-id", request_id())]
    await send_body(send, 200, jsonl(encoded), headers)
