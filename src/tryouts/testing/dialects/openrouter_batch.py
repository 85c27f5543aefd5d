"""OpenRouter's Batch API for the replay server (``/v1/batches...`` with OpenRouter's shapes; ``/beta/batches...``).

OpenRouter serves it at ``https://openrouter.ai/api/v1/batches`` (API reference) and ``.../api/beta/batches``
(the quickstart). Here, relative to the replay's root: ``/beta/batches...`` always, and ``/v1/batches...`` (or
``/batches...``) when the request is OpenRouter's (:func:`owns`: a create whose body holds ``requests`` inline,
or an OpenRouter batch id, ``batch-<time>-<20 letters>``); the rest of ``/v1/batches`` is OpenAI's
(:mod:`.openai_batch`), whose list ``GET /v1/batches`` stays. As OpenRouter documents it::

    POST   /batches                {"endpoint":"/v1/chat/completions","model","completion_window"?:"24h",
                                    "provider"?, "requests":[{"custom_id","body":{<chat request>}}]}
                                    -> 202, the batch (status "validating", results null)
    GET    /batches/{id}           the batch, one step further (see below); results inline once completed
    GET    /batches/{id}/results   {"object":"list","data":[result...],"has_more","next_cursor"}; ``limit``
                                    (1-1000, default 100) and ``cursor`` page it; a batch not ended: 409
    POST   /batches/{id}/cancel    the batch as it is (the next GET ends it ``cancelled``); 409 once ended
    DELETE /batches/{id}           {"id","object":"batch","deleted":true}; 409 while it runs
    GET    /batches                {"object":"list","data":[batch without results...],"first_id","last_id",
                                    "has_more"}, newest first (``limit`` 1-100, default 20, ``after``; no step)

A batch is ``{"id","object":"batch","endpoint","model","completion_window":"24h","status","created_at",
"expires_at","finalized_at","provider":"replay","request_counts":{"total","completed","failed"},"usage",
"results","error"}``. Each GET moves it one step: ``validating`` -> ``in_progress`` (for ``batch_polls`` GETs,
a share of the requests settled at each) -> ``finalizing`` -> ``completed``; from ``in_progress`` straight to
``expired`` when a request expired (``expire``), to ``cancelled`` after a cancel; ``validating`` -> ``failed``
when a request is bad (``error.message`` names the first). Only a completed batch has ``results`` (an expired,
cancelled or failed one has none, as the quickstart says) and ``usage`` (the tokens of its answers, ``cost``
null): one row per request, ``{"id":"batch_req_...","custom_id","response":{"status_code":200,"request_id",
"body":<the chat.completion of a non-streamed request>},"error":null}``, or for a scripted error status
(after ``fail_first``) ``{"id","custom_id","response":null,"error":{"type","error_type","message","param":
null}}`` with OpenRouter's canonical type for the status (``rate_limit_exceeded``, ``server``...).
``batch_junk=1`` makes the results hostile (:mod:`tryouts.testing.batchjob`; the line that is not JSON and the
plain text are strings in the array).

Refused at once (400 ``{"error":{"code":400,"message"}}``): a body that is not a JSON object, ``requests``
before ``endpoint`` or ``model`` (OpenRouter stream-parses the body), another endpoint (the replay serves
chat completions), no ``model``, a ``model`` that is not a script, a ``completion_window`` other than ``24h``,
no or more than 5,000 requests, a request body whose ``model`` is not the batch's. Failed at validation
instead: a request that is not an object, a ``custom_id`` missing or used twice, a ``body`` that is not an
object, content that is not text (the Batch API is text-only). ``REPLAY_REQUIRE_KEY`` wants the Bearer key
(the app checks it). At most 1,000 batches are kept, the oldest dropped first.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..batchjob import Item, Job, Kept, claim_expiry, hostile_lines
from ..openai_route import completion_object, openai_error
from ..script import ScriptError, auth_echo, parse_script
from ..wire import read_json, send_json

if TYPE_CHECKING:
    from ..app import ReplayApp

__all__ = ["ENDPOINT", "MAX_REQUESTS", "handle", "owns"]

Send = Any

#: the only endpoint a batch may target here
ENDPOINT = "/v1/chat/completions"
#: requests in one batch, as OpenRouter allows
MAX_REQUESTS = 5_000
#: OpenRouter's batch ids: ``batch-1790584823-viV1KTi3dSpvTgQ29B6i``
BATCH_ID = re.compile(r"batch-\d+-[A-Za-z0-9]{20}")
#: OpenRouter's canonical error type for a status
ERROR_TYPES = {400: "invalid_request", 401: "authentication", 402: "payment_required", 403: "permission_denied",
               404: "not_found", 408: "timeout", 413: "payload_too_large", 422: "unprocessable",
               429: "rate_limit_exceeded", 502: "provider_unavailable", 503: "provider_unavailable",
               529: "provider_overloaded"}
ENDED = ("completed", "failed", "expired", "cancelled")
TEXT_PARTS = ("text", "input_text")


def owns(method: str, path: str, body: bytes) -> bool:
    """Whether a request to ``/batches...`` (``path`` without ``/v1``) is OpenRouter's, not OpenAI's."""
    parts = path.strip("/").split("/")
    if len(parts) > 1:
        return parts[1].startswith("batch-")
    if method != "POST":
        return False
    req = read_json(body)
    return isinstance(req, dict) and "requests" in req and "input_file_id" not in req


def _batch_id() -> str:
    letters = string.ascii_letters + string.digits
    return f"batch-{int(time.time())}-" + "".join(secrets.choice(letters) for _ in range(20))


@dataclass(slots=True)
class _Batch:
    id: str
    model: str
    job: Job
    problem: str | None
    created_at: int
    status: str = "validating"
    cancel: bool = False
    finalized_at: int | None = None

    def obj(self, results: bool = True) -> dict[str, Any]:
        counts = self.job.counts()
        done = self.status == "completed"
        rows = self.job.results("succeeded", "errored") if done else []
        usage = None
        if done:
            bodies = [r["response"]["body"].get("usage") or {} for r in rows if r["response"]]
            prompt = sum(u.get("prompt_tokens", 0) for u in bodies)
            completion = sum(u.get("completion_tokens", 0) for u in bodies)
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                     "cost": None, "is_byok": False}
        out: dict[str, Any] = {
            "id": self.id, "object": "batch", "endpoint": ENDPOINT, "model": self.model, "completion_window": "24h",
            "status": self.status, "created_at": self.created_at, "expires_at": self.created_at + 86_400,
            "finalized_at": self.finalized_at, "provider": "replay",
            "request_counts": {"total": len(self.job.items), "completed": counts["succeeded"],
                               "failed": counts["errored"] + counts["expired"] + counts["canceled"]},
            "usage": usage, "error": {"message": self.problem} if self.status == "failed" else None,
        }
        if results:
            out["results"] = _rows(self.job, rows) if done else None
        return out

    def end(self, status: str) -> None:
        self.status, self.finalized_at = status, int(time.time())


def _rows(job: Job, rows: list[Any]) -> list[Any]:
    """The results array: ``rows``, or with ``batch_junk`` the hostile lines (non-JSON ones as strings)."""
    if not (job.junk and rows):
        return rows
    out: list[Any] = []
    for line in hostile_lines(rows, rows[0]):
        parsed = read_json(line)
        out.append(parsed if parsed is not None else line.decode("utf-8", "replace"))
    return out


def _batches(app: ReplayApp) -> Kept[str, _Batch]:
    kept: Kept[str, _Batch] | None = getattr(app, "_openrouter_batches", None)
    if kept is None:
        kept = Kept()
        app._openrouter_batches = kept  # type: ignore[attr-defined]
    return kept


async def _error(send: Send, status: int, message: str) -> None:
    await send_json(send, status, {"error": {"code": status, "message": message}})


# ------------------------------------------------------------------------------------------ routing


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one (already authorized) request under ``/batches`` (``path`` without ``/v1`` or ``/beta``)."""
    rest = path.strip("/").split("/")[1:]
    batches = _batches(app)
    query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    if not rest:
        if method == "POST":
            return await _create(app, batches, scope, body, send)
        if method == "GET":
            return await _list(batches, query, send)
        return await _error(send, 405, f"Method {method} not allowed for /batches; use POST or GET.")
    if len(rest) > 2 or (len(rest) == 2 and rest[1] not in ("results", "cancel")) or not rest[0]:
        return await _error(send, 404, f"Not found: {method} {path}")
    action = rest[1] if len(rest) == 2 else None
    wanted = {"results": ("GET",), "cancel": ("POST",), None: ("GET", "DELETE")}[action]
    if method not in wanted:
        return await _error(send, 405, f"Method {method} not allowed for {path}; use {' or '.join(wanted)}.")
    b = batches.get(rest[0])
    if b is None:
        return await _error(send, 404, f"Batch {rest[0]!r} not found.")
    if action == "results":
        return await _results(b, query, send)
    if action == "cancel":
        if b.status in ENDED:
            return await _error(send, 409, f"Batch {b.id} has already ended ({b.status}); there is nothing to cancel.")
        b.cancel = True
        return await send_json(send, 200, b.obj())
    if method == "DELETE":
        if b.status not in ENDED:
            return await _error(send, 409, f"Batch {b.id} is still {b.status}; only an ended batch can be deleted.")
        batches.discard(b.id)
        return await send_json(send, 200, {"id": b.id, "object": "batch", "deleted": True})
    _step(app, b)
    await send_json(send, 200, b.obj())


def _step(app: ReplayApp, b: _Batch) -> None:
    """Move batch ``b`` one status step (a GET)."""
    if b.status == "validating":
        if b.problem:
            b.end("failed")
        elif b.cancel:
            b.job.finish(app, canceled=True)
            b.end("cancelled")
        else:
            b.status = "in_progress"
            b.job.poll(app)
    elif b.status == "in_progress":
        if b.cancel:
            b.job.finish(app, canceled=True)
            b.end("cancelled")
        elif b.job.poll(app):
            b.job.finish(app)
            if b.job.counts()["expired"]:
                b.end("expired")
            else:
                b.status = "finalizing"
    elif b.status == "finalizing":
        b.end("completed")


def _page_args(query: dict[str, list[str]], top: int, default: int) -> int | None:
    try:
        return min(top, max(1, int(query.get("limit", [str(default)])[0])))
    except ValueError:
        return None


async def _list(batches: Kept[str, _Batch], query: dict[str, list[str]], send: Send) -> None:
    limit = _page_args(query, 100, 20)
    if limit is None:
        return await _error(send, 400, "limit: expected an integer")
    data = [b.obj(results=False) for b in batches.newest_first()]
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [d["id"] for d in data]
        data = data[ids.index(after) + 1:] if after in ids else []
    page = data[:limit]
    await send_json(send, 200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                "last_id": page[-1]["id"] if page else None, "has_more": len(data) > limit})


async def _results(b: _Batch, query: dict[str, list[str]], send: Send) -> None:
    """A page of a finished batch's results; the cursor is ``base64("v1:<id>:<offset>")``, as OpenRouter's look."""
    if b.status not in ENDED:
        return await _error(send, 409, f"Batch {b.id} has not finished (status {b.status}); its results are not ready.")
    limit = _page_args(query, 1000, 100)
    if limit is None:
        return await _error(send, 400, "limit: expected an integer")
    start = 0
    cursor = query.get("cursor", [None])[0]
    if cursor is not None:
        try:
            tag, bid, offset = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
            start = int(offset)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            tag = bid = ""
        if tag != "v1" or bid != b.id or start < 0:
            return await _error(send, 400, f"cursor: not a cursor of batch {b.id}")
    rows = b.obj()["results"] or []
    page = rows[start:start + limit]
    more = start + limit < len(rows)
    nxt = base64.urlsafe_b64encode(f"v1:{b.id}:{start + limit}".encode()).decode().rstrip("=") if more else None
    await send_json(send, 200, {"object": "list", "data": page, "has_more": more, "next_cursor": nxt})


# ------------------------------------------------------------------------------------------ batches


def _render(echo: str) -> Any:
    """The renderer of a batch's items, one result row each; ``echo``: what ``echo_auth=1`` appends to an
    error message (the credentials the batch was created with)."""

    def render(item: Item) -> dict[str, Any]:
        s = item.script
        row: dict[str, Any] = {"id": "batch_req_" + secrets.token_hex(12), "custom_id": item.custom_id}
        if item.outcome == "succeeded":
            row["response"] = {"status_code": 200, "request_id": secrets.token_hex(16), "body": completion_object(s)}
            row["error"] = None
            return row
        if item.outcome == "errored":
            kind = ERROR_TYPES.get(s.status) or ("server" if s.status >= 500 else "invalid_request")
            message = openai_error(s.status, s)["error"]["message"] + (echo if s.echo_auth else "")
        else:  # never shown: an expired or cancelled batch has no results
            kind, message = f"batch_{item.outcome}", f"The request was not run ({item.outcome})."
        row["response"] = None
        row["error"] = {"type": kind, "error_type": kind, "message": message, "param": None}
        return row

    return render


def _text_only(body: dict[str, Any]) -> bool:
    """Whether a chat request asks for text only (no image, audio, video or file parts, no other modality)."""
    if any(k in body for k in ("modalities", "audio", "image_config")):
        return False
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                not isinstance(p, dict) or p.get("type") not in TEXT_PARTS for p in content):
            return False
    return True


def _validate(requests: list[Any]) -> str | None:
    """Why validation fails the batch (the first bad request), or None."""
    seen: set[str] = set()
    for i, request in enumerate(requests):
        if not isinstance(request, dict):
            return f"requests[{i}]: each request must be an object with custom_id and body"
        cid = request.get("custom_id")
        if not isinstance(cid, str) or not cid:
            return f"requests[{i}].custom_id: a non-empty string is required"
        if cid in seen:
            return f"requests[{i}].custom_id: duplicate custom_id {cid!r}; each must be unique within the batch"
        seen.add(cid)
        if not isinstance(request.get("body"), dict):
            return f"requests[{i}].body: an object in the shape of {ENDPOINT} is required"
        if not _text_only(request["body"]):
            return f"requests[{i}].body: the Batch API is text-only; send multimodal requests to the sync API"
    return None


async def _create(app: ReplayApp, batches: Kept[str, _Batch], scope: dict[str, Any], body: bytes, send: Send) -> None:
    req = read_json(body)
    if not isinstance(req, dict):
        return await _error(send, 400, "The body must be a JSON object with endpoint, model and requests.")
    keys = list(req)
    if "requests" in keys and any(k in keys and keys.index(k) > keys.index("requests") for k in ("endpoint", "model")):
        return await _error(send, 400, "Serialize endpoint and model before requests in the JSON body.")
    if req.get("endpoint") != ENDPOINT:
        return await _error(send, 400, f"endpoint: {req.get('endpoint')!r} is not served here; use {ENDPOINT}.")
    model = req.get("model")
    if not isinstance(model, str) or not model:
        return await _error(send, 400, "model: an OpenRouter model slug is required.")
    try:
        parse_script(model)
    except ScriptError as exc:
        return await _error(send, 400, f"model: {exc}")
    if req.get("completion_window", "24h") != "24h":
        return await _error(send, 400, "completion_window: the only supported completion window is 24h.")
    requests = req.get("requests")
    if not isinstance(requests, list) or not requests:
        return await _error(send, 400, "requests: a non-empty array of {custom_id, body} is required.")
    if len(requests) > MAX_REQUESTS:
        return await _error(send, 400, f"requests: at most {MAX_REQUESTS} requests per batch, not {len(requests)}.")
    for i, r in enumerate(requests):
        own = r.get("body", {}).get("model") if isinstance(r, dict) and isinstance(r.get("body"), dict) else None
        if own is not None and own != model:
            return await _error(send, 400, f"requests[{i}].body.model {own!r} does not match the batch model.")
    problem = _validate(requests)
    items: list[Item] = []
    if problem is None:
        for r in requests:
            s = parse_script(model)
            if s.id == "@prompt":  # as the chat route: logged under the last message's text
                messages = r["body"].get("messages") or [{}]
                last = messages[-1] if isinstance(messages, list) and messages else None
                s.id = str(last.get("content", ""))[:200] if isinstance(last, dict) else None
            items.append(Item(r["custom_id"], model, s))
    echo = auth_echo(scope) if any(it.script.echo_auth for it in items) else ""
    claim_expiry(app, items)
    b = _Batch(_batch_id(), model, Job(items, _render(echo)), problem, int(time.time()))
    batches.add(b.id, b)
    await send_json(send, 202, b.obj())
