"""OpenAI's Files and Batch APIs for the replay server (``/v1/files...``, ``/v1/batches...``; also without ``/v1``).

A client uploads a JSONL file of chat requests, creates a batch from it, polls it and reads the output and
error files, as OpenAI documents the wire format::

    POST   /v1/files                multipart/form-data: purpose=batch, file=<JSONL>  -> File object
    GET    /v1/files                {"object":"list","data":[File...],"has_more":false}
    GET    /v1/files/{id}           File {"id":"file-...","object":"file","bytes","created_at","filename",
                                          "purpose","status":"processed","status_details":null}
    GET    /v1/files/{id}/content   the file's bytes (application/octet-stream)
    DELETE /v1/files/{id}           {"id","object":"file","deleted":true}
    POST   /v1/batches              {"input_file_id","endpoint":"/v1/chat/completions","completion_window":"24h",
                                     "metadata"?}  -> Batch object (status "validating")
    GET    /v1/batches/{id}         the Batch, one status step further (see below)
    POST   /v1/batches/{id}/cancel  status "cancelling" (an ended batch comes back unchanged)
    GET    /v1/batches              {"object":"list","data":[Batch...],"first_id","last_id","has_more"} (no step;
                                     ``limit`` and ``after`` page it, newest first)

Each input line is ``{"custom_id","method":"POST","url":"/v1/chat/completions","body":{...}}`` whose
``body.model`` is a script. A bad line (not JSON, no or a duplicate ``custom_id``, a method other than POST,
a ``url`` other than the batch's endpoint, a body without ``model``, a bad script) fails the batch: the
first GET answers ``failed`` with ``errors.data`` = ``[{"code","message","param","line"}]`` (1-based lines).

Each GET of a batch moves it one step: ``validating`` -> ``in_progress`` (for ``batch_polls`` GETs, a share
of the items settled at each) -> ``finalizing`` -> ``completed``; straight from ``in_progress`` to
``expired`` when an item expired (``expire``); ``cancelling`` -> ``cancelled`` after a cancel. ``request_counts``
(``total`` is 0 while validating) count ``completed`` answers and ``failed`` items (errors, expired and
cancelled). When the batch ends, the output file (purpose ``batch_output``) holds one line per answered item,
``{"id":"batch_req_...","custom_id","response":{"status_code":200,"request_id","body":<chat.completion as the
chat route sends it with stream=false>},"error":null}``; the error file one per failed item: a scripted
error status as ``{"id","custom_id","response":{"status_code":<status>,"request_id","body":<OpenAI's error
body>},"error":null}``, an item that was not run as ``{"id","custom_id","response":null,"error":{"code":
"batch_expired"|"batch_cancelled","message"}}``. A file that would be empty is not made (its id is null).
``batch_junk=1`` adds hostile lines to the output file (see :mod:`tryouts.testing.batchjob`).

With ``REPLAY_REQUIRE_KEY`` every path wants the Bearer key (the app checks it before routing here).
Uploads are capped by the app's ``MAX_BODY``; at most 1,000 files (256 MiB in all) and 1,000 batches are
kept, the oldest dropped first.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..batchjob import Item, Job, Kept, claim_expiry, hostile_lines, jsonl
from ..openai_route import completion_object, error_object, openai_error
from ..script import ScriptError, auth_echo, parse_script
from ..wire import dumps, header, read_json, request_id, send_body, send_json

if TYPE_CHECKING:
    from ..app import ReplayApp

__all__ = ["ENDPOINT", "MAX_FILE_BYTES", "handle", "parse_multipart"]

Send = Any

#: the only endpoint a batch may target here
ENDPOINT = "/v1/chat/completions"
#: the bytes of all the files kept together
MAX_FILE_BYTES = 256 * 1024 * 1024
#: requests in one batch, as OpenAI allows
MAX_LINES = 50_000
#: line errors listed in a failed batch's ``errors``
MAX_ERRORS = 100
#: parts of one multipart upload
MAX_PARTS = 16
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
_TIMES = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")


@dataclass(slots=True)
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None,
        }


@dataclass(slots=True)
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    window: str
    metadata: Any
    job: Job
    errors: list[dict[str, Any]]
    created_at: int
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    times: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(_TIMES))

    def obj(self) -> dict[str, Any]:
        counts = self.job.counts()
        total = 0 if self.status in ("validating", "failed") else len(self.job.items)
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id, "completion_window": self.window, "status": self.status,
            "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "in_progress_at": self.times["in_progress_at"],
            "expires_at": self.created_at + 86_400, **{k: self.times[k] for k in _TIMES[1:]},
            "request_counts": {
                "total": total,
                "completed": counts["succeeded"],
                "failed": counts["errored"] + counts["expired"] + counts["canceled"],
            },
            "metadata": self.metadata,
        }

    def stamp(self, status: str) -> None:
        """Move to ``status`` and set its ``*_at`` time."""
        self.status = status
        self.times[f"{status}_at"] = int(time.time())


class _State:
    """The files and batches one app keeps (``app._openai_batch``)."""

    def __init__(self) -> None:
        self.files: Kept[str, _File] = Kept(max_bytes=MAX_FILE_BYTES, size=lambda f: len(f.data))
        self.batches: Kept[str, _Batch] = Kept()


def _state(app: ReplayApp) -> _State:
    st: _State | None = getattr(app, "_openai_batch", None)
    if st is None:
        st = _State()
        app._openai_batch = st  # type: ignore[attr-defined]
    return st


# ------------------------------------------------------------------------------------------ routing


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one (already authorized) request under ``/files`` or ``/batches`` (``path`` without ``/v1``)."""
    st = _state(app)
    parts = path.strip("/").split("/")
    kind, rest = parts[0], parts[1:]
    query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    routes: dict[tuple[str, int, str], Any] = {
        ("files", 0, "POST"): lambda: _upload(st, scope, body, send),
        ("files", 0, "GET"): lambda: _list(send, [f.obj() for f in st.files.newest_first()], query),
        ("files", 1, "GET"): lambda: _file(st, rest[0], send),
        ("files", 1, "DELETE"): lambda: _delete(st, rest[0], send),
        ("batches", 0, "POST"): lambda: _create(app, st, scope, body, send),
        ("batches", 0, "GET"): lambda: _list(send, [b.obj() for b in st.batches.newest_first()], query),
        ("batches", 1, "GET"): lambda: _retrieve(app, st, rest[0], send),
    }
    if len(rest) == 2 and (kind, rest[1]) in (("files", "content"), ("batches", "cancel")):
        wanted = "GET" if kind == "files" else "POST"
        if method != wanted:
            return await _not_allowed(send, method, path, wanted)
        if kind == "files":
            return await _content(st, rest[0], send)
        return await _cancel(st, rest[0], send)
    if len(rest) <= 1 and all(rest):
        route = routes.get((kind, len(rest), method))
        if route is not None:
            return await route()
        allowed = ", ".join(m for (k, n, m) in routes if k == kind and n == len(rest))
        return await _not_allowed(send, method, path, allowed)
    msg = f"Unknown request URL: {method} {path}. Please check the URL for typos."
    await send_json(send, 404, error_object(msg, "invalid_request_error", "unknown_url"))


async def _not_allowed(send: Send, method: str, path: str, allowed: str) -> None:
    msg = f"Method {method} not allowed for {path}; use {allowed}."
    await send_json(send, 405, error_object(msg, "invalid_request_error", None), [(b"allow", allowed.encode())])


async def _bad(send: Send, message: str, param: str | None, code: str | None = None, status: int = 400) -> None:
    await send_json(send, status, error_object(message, "invalid_request_error", code, param))


async def _list(send: Send, data: list[dict[str, Any]], query: dict[str, list[str]]) -> None:
    """A list page, newest first: ``limit`` (1-100, default 20) objects after the id ``after``."""
    try:
        limit = min(100, max(1, int(query.get("limit", ["20"])[0])))
    except ValueError:
        return await _bad(send, "Invalid 'limit': expected an integer.", "limit", "invalid_value")
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [d["id"] for d in data]
        data = data[ids.index(after) + 1:] if after in ids else []
    page = data[:limit]
    await send_json(send, 200, {
        "object": "list", "data": page, "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None, "has_more": len(data) > limit,
    })


# -------------------------------------------------------------------------------------------- files


def _params(value: str) -> dict[str, str]:
    """The ``; name=value`` parameters of a header (quoted or not; ``name*=utf-8''...`` decoded), lower-case names."""
    out: dict[str, str] = {}
    for m in re.finditer(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', value):
        name, raw = m.group(1).lower(), m.group(2).strip()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name.endswith("*"):  # RFC 5987, charset'language'percent-encoded: it wins over the plain one
            charset, _, rest = raw.partition("'")
            try:
                out[name[:-1]] = urllib.parse.unquote(rest.partition("'")[2], encoding=charset or "utf-8", errors="replace")
            except LookupError:  # an unknown charset
                continue
        else:
            out.setdefault(name, raw)
    return out


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]] | None:
    """The fields of a ``multipart/form-data`` body (RFC 7578): name -> (filename or None, bytes), the
    first of each name; None when the body is not well-formed multipart for ``content_type``'s boundary
    or has more than :data:`MAX_PARTS` parts. The body's size is already capped by the app."""
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        return None
    boundary = _params(content_type).get("boundary", "")
    if not 1 <= len(boundary) <= 70:
        return None
    delim = b"--" + boundary.encode("latin-1")
    if body.startswith(delim):
        pos = len(delim)
    else:  # a preamble: the first delimiter starts a line
        first = body.find(b"\r\n" + delim)
        if first < 0:
            return None
        pos = first + 2 + len(delim)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for _ in range(MAX_PARTS + 1):
        if body.startswith(b"--", pos):  # the close delimiter
            return fields
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            return None
        start = eol + 2
        end = body.find(b"\r\n" + delim, start)
        if end < 0:
            return None
        part, pos = body[start:end], end + 2 + len(delim)
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                return None
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value.strip()
        if disposition.split(";")[0].strip().lower() != "form-data":
            continue
        params = _params(disposition)
        if "name" in params:
            fields.setdefault(params["name"], (params.get("filename"), content))
    return None


async def _upload(st: _State, scope: dict[str, Any], body: bytes, send: Send) -> None:
    form = parse_multipart(body, header(scope, b"content-type") or "")
    if form is None:
        msg = "Invalid request: the body must be multipart/form-data with the fields 'purpose' and 'file'."
        return await _bad(send, msg, None)
    if "purpose" not in form:
        return await _bad(send, "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter")
    purpose = form["purpose"][1].decode("utf-8", "replace")
    if purpose not in PURPOSES:
        return await _bad(send, f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'", "purpose", "invalid_value")
    if "file" not in form or form["file"][0] is None:
        return await _bad(send, "Missing required parameter: 'file'.", "file", "missing_required_parameter")
    filename, data = form["file"]
    f = _File("file-" + secrets.token_hex(11), filename or "file", purpose, data, int(time.time()))
    st.files.add(f.id, f)
    await send_json(send, 200, f.obj())


async def _no_file(send: Send, fid: str, param: str = "id") -> None:
    await _bad(send, f"No such File object: {fid}", param, None, 404)


async def _file(st: _State, fid: str, send: Send) -> None:
    f = st.files.get(fid)
    await (send_json(send, 200, f.obj()) if f else _no_file(send, fid))


async def _content(st: _State, fid: str, send: Send) -> None:
    f = st.files.get(fid)
    if f is None:
        return await _no_file(send, fid)
    await send_body(send, 200, f.data, [(b"content-type", b"application/octet-stream"), (b"x-request-id", request_id())])


async def _delete(st: _State, fid: str, send: Send) -> None:
    if st.files.discard(fid) is None:
        return await _no_file(send, fid)
    await send_json(send, 200, {"id": fid, "object": "file", "deleted": True})


def _new_file(st: _State, batch_id: str, kind: str, lines: list[bytes]) -> str | None:
    """Keep a batch's output or error file (``kind``); None (no file) when it has no lines."""
    if not lines:
        return None
    f = _File("file-" + secrets.token_hex(11), f"{batch_id}_{kind}.jsonl", "batch_output", jsonl(lines), int(time.time()))
    st.files.add(f.id, f)
    return f.id


# ------------------------------------------------------------------------------------------ batches


def _line_error(errors: list[dict[str, Any]], line: int | None, code: str, message: str, param: str | None) -> None:
    if len(errors) < MAX_ERRORS:
        errors.append({"code": code, "message": message, "param": param, "line": line})


def _read_lines(data: bytes, endpoint: str) -> tuple[list[Item], list[dict[str, Any]]]:
    """The items of a batch input file and the problems that fail it (``errors.data``, 1-based lines)."""
    items: list[Item] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    lines = [(n, raw) for n, raw in enumerate(data.split(b"\n"), 1) if raw.strip()]
    if not lines:
        _line_error(errors, None, "empty_file", "The batch input file is empty.", None)
    if len(lines) > MAX_LINES:
        _line_error(errors, None, "too_many_requests", f"A batch may hold at most {MAX_LINES} requests.", None)
        return [], errors
    for n, raw in lines:
        req = read_json(raw)
        if not isinstance(req, dict):
            _line_error(errors, n, "invalid_json_line", "This line is not parseable as valid JSON.", None)
            continue
        cid, body = req.get("custom_id"), req.get("body")
        if not isinstance(cid, str) or not cid:
            _line_error(errors, n, "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id")
        elif cid in seen:
            msg = (
                "The custom_id for this request is a duplicate of another request. The custom_id parameter "
                "must be unique for each request in a batch."
            )
            _line_error(errors, n, "duplicate_custom_id", msg, "custom_id")
        elif req.get("method") != "POST":
            _line_error(errors, n, "invalid_method", "The method of each request must be POST.", "method")
        elif req.get("url") != endpoint:
            msg = f"The url of each request must be the batch's endpoint, {endpoint}; not {req.get('url')!r}."
            _line_error(errors, n, "mismatched_endpoint", msg, "url")
        elif not isinstance(body, dict) or not isinstance(body.get("model"), str):
            _line_error(errors, n, "missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model")
        else:
            try:
                s = parse_script(body["model"])
            except ScriptError as exc:
                _line_error(errors, n, "invalid_script", str(exc), "body.model")
                continue
            if s.id == "@prompt":  # as the chat route: logged under the last message's text
                messages = body.get("messages") or [{}]
                last = messages[-1] if isinstance(messages, list) else None
                s.id = str(last.get("content", ""))[:200] if isinstance(last, dict) else None
            items.append(Item(cid, body["model"], s))
        if isinstance(cid, str):
            seen.add(cid)
    return ([] if errors else items), errors


def _render(echo: str) -> Any:
    """The renderer of a batch's items, one output or error line each; ``echo``: what ``echo_auth=1``
    appends to an error message (the credentials the batch was created with)."""

    def render(item: Item) -> dict[str, Any]:
        s = item.script
        line: dict[str, Any] = {"id": "batch_req_" + secrets.token_hex(12), "custom_id": item.custom_id}
        if item.outcome in ("succeeded", "errored"):
            if item.outcome == "succeeded":
                status, body = 200, completion_object(s)
            else:
                status, body = s.status, openai_error(s.status, s)
                if s.echo_auth:
                    body["error"]["message"] += echo
            line["response"] = {"status_code": status, "request_id": secrets.token_hex(16), "body": body}
            line["error"] = None
        else:
            expired = item.outcome == "expired"
            line["response"] = None
            line["error"] = {
                "code": "batch_expired" if expired else "batch_cancelled",
                "message": EXPIRED_MESSAGE if expired else CANCELLED_MESSAGE,
            }
        return line

    return render


async def _create(app: ReplayApp, st: _State, scope: dict[str, Any], body: bytes, send: Send) -> None:
    req = read_json(body)
    if not isinstance(req, dict):
        return await _bad(send, "We could not parse the JSON body of your request.", None)
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(req.get(name), str):
            return await _bad(send, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    if req["endpoint"] != ENDPOINT:
        msg = f"Invalid value: '{req['endpoint']}'. Supported values are: '{ENDPOINT}' (the replay serves chat completions)."
        return await _bad(send, msg, "endpoint", "invalid_value")
    if req["completion_window"] != "24h":
        msg = f"Invalid value: '{req['completion_window']}'. Supported values are: '24h'."
        return await _bad(send, msg, "completion_window", "invalid_value")
    metadata = req.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and len(metadata) <= 16 and all(isinstance(v, str) for v in metadata.values())
    ):
        return await _bad(send, "Invalid 'metadata': at most 16 string values.", "metadata", "invalid_value")
    f = st.files.get(req["input_file_id"])
    if f is None:
        return await _no_file(send, req["input_file_id"], "input_file_id")
    if f.purpose != "batch":
        msg = f"The input file {f.id} must have been uploaded with purpose 'batch', not '{f.purpose}'."
        return await _bad(send, msg, "input_file_id", "invalid_value")
    items, errors = _read_lines(f.data, req["endpoint"])
    job = Job(items, _render(auth_echo(scope) if any(it.script.echo_auth for it in items) else ""))
    claim_expiry(app, items)
    b = _Batch("batch_" + secrets.token_hex(12), f.id, req["endpoint"], "24h", metadata, job, errors, int(time.time()))
    st.batches.add(b.id, b)
    await send_json(send, 200, b.obj())


async def _no_batch(send: Send, bid: str) -> None:
    await _bad(send, f"No batch found with id '{bid}'.", "batch_id", None, 404)


def _end(st: _State, b: _Batch, status: str) -> None:
    """End batch ``b`` with ``status``: write its output and error files."""
    b.stamp(status)
    job = b.job
    out = job.results("succeeded")
    err = job.results("errored", "expired", "canceled")
    out_lines = [dumps(x).encode() for x in out]
    if job.junk and (out or err):
        out_lines = hostile_lines(out, (out or err)[0])
    b.output_file_id = _new_file(st, b.id, "output", out_lines)
    b.error_file_id = _new_file(st, b.id, "error", [dumps(x).encode() for x in err])


def _step(app: ReplayApp, st: _State, b: _Batch) -> None:
    """Move batch ``b`` one status step (a GET)."""
    if b.status == "validating":
        if b.errors:
            b.stamp("failed")
        else:
            b.stamp("in_progress")
            b.job.poll(app)
    elif b.status == "in_progress":
        if b.job.poll(app):
            b.job.finish(app)
            if b.job.counts()["expired"]:
                _end(st, b, "expired")
            else:
                b.stamp("finalizing")
    elif b.status == "finalizing":
        _end(st, b, "completed")
    elif b.status == "cancelling":
        b.job.finish(app, canceled=True)
        _end(st, b, "cancelled")


async def _retrieve(app: ReplayApp, st: _State, bid: str, send: Send) -> None:
    b = st.batches.get(bid)
    if b is None:
        return await _no_batch(send, bid)
    _step(app, st, b)
    await send_json(send, 200, b.obj())


async def _cancel(st: _State, bid: str, send: Send) -> None:
    """``validating``, ``in_progress`` or ``finalizing`` -> ``cancelling``; any other batch comes back unchanged."""
    b = st.batches.get(bid)
    if b is None:
        return await _no_batch(send, bid)
    if b.status in ("validating", "in_progress", "finalizing"):
        b.stamp("cancelling")
    await send_json(send, 200, b.obj())
