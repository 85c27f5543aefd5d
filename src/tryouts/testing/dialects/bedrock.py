"""AWS Bedrock's Converse API (``/bedrock/model/{modelId}/converse-stream``) for the replay server.

Routes, under the replay server's ``/bedrock`` prefix (point boto3's ``endpoint_url`` at it)::

    POST /model/{script}/converse-stream   application/vnd.amazon.eventstream: binary event-stream frames
    POST /model/{script}/converse          one JSON ConverseResponse

``{script}`` is the ``modelId`` path segment (boto3 percent-encodes it: ``tokens%3D5%3Bttft_ms%3D50``),
read with :func:`~tryouts.testing.script.parse_script`, plus the Anthropic dialect's ``cache_write=N`` and
``cache_write_1h=M`` (``cacheWriteInputTokens``, and the ``cacheDetails`` split by ttl); a plain model id such as
``anthropic.claude-3-5-haiku-20241022-v1:0`` is a script with every default. The stream is the event
sequence of botocore's ``bedrock-runtime`` service model (``ConverseStreamOutput``), one frame per event::

    messageStart       {"role":"assistant"}                       at once (role_first=1, else before the first delta)
    contentBlockDelta  {"delta":{"reasoningContent":{"text":" r0"}},"contentBlockIndex":0}   ``reasoning``
                       ... then {"reasoningContent":{"signature":...}} and contentBlockStop 0
    contentBlockDelta  {"delta":{"text":" w0"},"contentBlockIndex":0}   (index 1 after a reasoning block)
    contentBlockStop   {"contentBlockIndex":0}
    messageStop        {"stopReason":"end_turn"}                   finish: stop -> end_turn, length ->
                                                                   max_tokens, none -> no messageStop
    metadata           {"usage":{...},"metrics":{"latencyMs":...}} not sent with usage=never

There is no ``contentBlockStart`` for text (Bedrock sends one only for tool use). ``usage`` follows AWS's
prompt-caching rules: ``inputTokens`` counts only the tokens neither read from nor written to the cache
(prompt_tokens - cached - cache_write), ``cacheReadInputTokens`` = cached and ``cacheWriteInputTokens`` =
cache_write (each left out when 0), ``outputTokens`` = tokens + reasoning, ``totalTokens`` their sum. ``latencyMs`` is the time from the request's arrival to the metadata frame. Every payload carries
``x_sent_ns`` (the stamp taken right before its write); botocore ignores fields its model does not know.

A frame is AWS's event-stream encoding, as ``botocore.eventstream`` decodes it: a 12-byte prelude (total
length, headers length, CRC32 of those 8 bytes; big-endian), the headers (name length: 1 byte, name, type
7 = string, value length: 2 bytes, value), the JSON payload and a CRC32 of everything before it.

Errors are Bedrock's: the HTTP status, a JSON body ``{"message": ...}`` and the ``x-amzn-ErrorType``
header that botocore turns into the ``ClientError`` code: 400 ValidationException, 403 AccessDeniedException,
404 ResourceNotFoundException, 408 ModelTimeoutException, 424 ModelErrorException, 429 ThrottlingException
(``quota=1``: "Too many tokens per day"; ``retry_after``: a ``retry-after`` header), 500
InternalServerException, 503 ServiceUnavailableException. ``status=401`` answers as Bedrock does for a bad
key: HTTP 403 UnrecognizedClientException. With both ``status`` and ``cut_after`` the stream starts
normally and, when content chunk ``cut_after`` is due, sends an exception frame (``:message-type``
exception) of that status's kind (``throttlingException``, ``internalServerException``,
``serviceUnavailableException``, ``validationException``, else ``modelStreamErrorException``) and ends.
``cut_after`` alone drops the connection mid-body. The schedule, ``fail_first`` and the log
(``GET /_replay/log/{id}``) are the OpenAI route's; ``messageStart`` is logged as ``role_sent_ns``. With
``REPLAY_REQUIRE_KEY`` the SigV4 access key id (or the ``Bearer`` token) must equal it.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from binascii import crc32
from time import perf_counter_ns
from typing import Any
from urllib.parse import unquote

from ..script import Script, ScriptError, auth_echo
from ..wire import (
    Cut,
    dumps,
    header,
    log_content_sent,
    log_reasoning_sent,
    read_json,
    retry_after,
    send_answer,
    send_body,
    sleep_until,
)
from .anthropic import CacheWrites, script_of

Send = Any

CONTENT_TYPE = b"application/vnd.amazon.eventstream"
_STRING = 7  # the event-stream header value type of a UTF-8 string

#: HTTP status -> (the error's code, its message)
ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model returned an error while processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error while processing the request."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
#: HTTP status -> the exception event of ConverseStreamOutput sent mid-stream
STREAM_EXCEPTIONS = {
    400: "validationException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}
_BAD_TOKEN = ("UnrecognizedClientException", "The security token included in the request is invalid.")


# ---------------------------------------------------------------------------------------- framing


def encode_headers(headers: dict[str, str]) -> bytes:
    """String-valued event-stream headers, in order."""
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_frame(headers: bytes | dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (with its CRC), headers, payload, message CRC."""
    head = headers if isinstance(headers, bytes) else encode_headers(headers)
    prelude = struct.pack("!II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack("!I", crc32(prelude) & 0xFFFFFFFF) + head + payload
    return message + struct.pack("!I", crc32(message) & 0xFFFFFFFF)


def event_headers(event_type: str) -> bytes:
    return encode_headers(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    )


def exception_headers(exception_type: str) -> bytes:
    return encode_headers(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    )


_HEADERS = {
    name: event_headers(name)
    for name in ("messageStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata")
}


# ---------------------------------------------------------------------------------------- bodies


def _request_id() -> bytes:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


def usage(s: Script, writes: CacheWrites | None = None) -> dict[str, Any]:
    """Bedrock's TokenUsage: ``inputTokens`` excludes cache reads and writes, reported apart; with
    ``cache_write_1h`` the writes by cache lifetime in ``cacheDetails`` (1h before 5m, as AWS sorts them)."""
    writes = writes or CacheWrites()
    out = s.tokens + s.reasoning
    u: dict[str, Any] = {"inputTokens": s.prompt_tokens - s.cached - writes.total, "outputTokens": out,
                         "totalTokens": s.prompt_tokens + out}
    if s.cached:
        u["cacheReadInputTokens"] = s.cached
    if writes.total:
        u["cacheWriteInputTokens"] = writes.total
    if writes.one_hour is not None:
        u["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in
                             (("1h", writes.one_hour), ("5m", writes.total - writes.one_hour)) if n]
    return u


def stop_reason(s: Script) -> str | None:
    return {"stop": "end_turn", "length": "max_tokens", "none": None}.get(s.finish, s.finish)


async def error(send: Send, status: int, code: str, message: str, headers: list | None = None) -> None:
    """Bedrock's error response: status, ``x-amzn-ErrorType`` and ``{"message": ...}``."""
    await send_body(send, status, dumps({"message": message}).encode(), [
        (b"content-type", b"application/json"), (b"x-amzn-requestid", _request_id()),
        (b"x-amzn-errortype", code.encode()), *(headers or ()),
    ])


def _scripted_error(s: Script) -> tuple[int, str, str]:
    if s.status == 401:
        return 403, *_BAD_TOKEN
    if s.status == 429 and s.quota:
        return 429, "ThrottlingException", "Too many tokens per day, please wait before trying again."
    code, message = ERRORS.get(s.status) or ERRORS[500 if s.status >= 500 else 400]
    return s.status, code, message


def _credential(scope: dict[str, Any]) -> str | None:
    """The SigV4 access key id, or the Bearer token, of the request; None when it has neither."""
    auth = header(scope, b"authorization") or ""
    if auth.startswith("Bearer "):
        return auth[7:].strip() or None
    _, found, rest = auth.partition("Credential=")
    return rest.split("/", 1)[0] if found else None


def _model_segment(scope: dict[str, Any], path: str) -> tuple[str, str] | None:
    """(model id, action) of ``/model/{id}/{action}``; the id may hold encoded slashes (an ARN)."""
    raw = scope.get("raw_path")
    text = raw.decode("latin-1").split("?", 1)[0] if raw else path
    text = text[text.find("/model/") :] if "/model/" in text else path
    if not text.startswith("/model/"):
        return None
    rest = text[len("/model/") :].rstrip("/")
    model, _, action = rest.rpartition("/")
    if not model or action not in ("converse", "converse-stream"):
        return None
    return unquote(unquote(model)) if raw else unquote(model), action


async def handle(app, method: str, path: str, scope: dict, body: bytes, recv_ns: int, send: Send) -> None:
    """Serve one request under ``/bedrock`` (``path`` is without the prefix)."""
    found = _model_segment(scope, path)
    if found is None or method != "POST":
        return await error(send, 404, "UnknownOperationException", f"Unknown operation: {method} {path}")
    model, action = found
    if app.require_key:
        who = _credential(scope)
        if who is None:
            return await error(send, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if who != app.require_key:
            return await error(send, 403, *_BAD_TOKEN)
    req = read_json(body, {})
    if not isinstance(req, dict):
        return await error(send, 400, "ValidationException", "Malformed input request: the body is not JSON.")
    if not isinstance(req.get("messages"), list) or not req["messages"]:
        return await error(send, 400, "ValidationException",
                           "A conversation must start with a user message. Try again with a conversation "
                           "that starts with a user message.")
    try:
        s, writes = script_of(model)
    except ScriptError as exc:
        return await error(send, 400, "ValidationException", f"Invalid script in the model id: {exc}")
    stream = action == "converse-stream"
    entry = app.admit(s, model, recv_ns, stream)
    if s.refused(stream):
        status, code, message = _scripted_error(s)
        echo = auth_echo(scope) if s.echo_auth else ""
        return await error(send, status, code, message + echo, retry_after(s.retry_after))
    if stream:
        await _stream(app, s, recv_ns, entry, send, writes)
    else:
        await _complete(app, s, recv_ns, entry, send, writes)


async def _complete(app, s: Script, recv_ns: int, entry: dict, send: Send, writes: CacheWrites) -> None:
    content: list[dict[str, Any]] = []
    if s.reasoning:
        text = s.reasoning_text()
        content.append({"reasoningContent": {"reasoningText": {"text": text, "signature": secrets.token_hex(16)}}})
    content.append({"text": s.full_text()})
    data: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": content}},
                            "stopReason": stop_reason(s) or "end_turn"}
    if s.usage != "never":
        data["usage"] = usage(s, writes)
    await sleep_until(s.answer_due(recv_ns), app.slack())
    t = perf_counter_ns()
    data["metrics"] = {"latencyMs": (t - recv_ns) // 1_000_000}
    data["x_sent_ns"] = t
    headers = [(b"content-type", b"application/json"), (b"x-amzn-requestid", _request_id())]
    await send_answer(send, dumps(data).encode(), headers, s, entry, t)


async def _stream(app, s: Script, recv_ns: int, entry: dict, send: Send, writes: CacheWrites) -> None:
    slack = app.slack()

    async def emit(headers: bytes, data: dict[str, Any], more: bool = True) -> int:
        head = dumps(data)[:-1]
        t = perf_counter_ns()
        frame = encode_frame(headers, f'{head},"x_sent_ns":{t}}}'.encode())
        await send({"type": "http.response.body", "body": frame, "more_body": more})
        return t

    async def start_message() -> None:
        if entry["role_sent_ns"] is None:
            entry["role_sent_ns"] = await emit(_HEADERS["messageStart"], {"role": "assistant"})

    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", CONTENT_TYPE), (b"x-amzn-requestid", _request_id())],
    })
    if s.role_first:
        await start_message()
    start, itl = recv_ns + s.ttft_ns, s.itl_ns
    delta = _HEADERS["contentBlockDelta"]
    for j in range(s.reasoning):
        data = {"delta": {"reasoningContent": {"text": f" r{j}"}}, "contentBlockIndex": 0}
        await sleep_until(start + j * itl, slack)
        await start_message()
        log_reasoning_sent(entry, await emit(delta, data))
        if j & 15 == 15:  # let other streams run when chunks are due back to back
            await asyncio.sleep(0)
    index = 0
    if s.reasoning:
        await emit(delta, {"delta": {"reasoningContent": {"signature": secrets.token_hex(32)}}, "contentBlockIndex": 0})
        await emit(_HEADERS["contentBlockStop"], {"contentBlockIndex": 0})
        index = 1
    n = s.n_content_chunks
    for k in range(n):
        due = start + (s.reasoning + k) * itl
        if k == s.cut_after:
            await sleep_until(due, slack)
            return await _cut(s, entry, send)
        data = {"delta": {"text": s.content_piece(k)}, "contentBlockIndex": index}
        await sleep_until(due, slack)
        await start_message()
        t = await emit(delta, data)
        log_content_sent(entry, t)
        if k & 15 == 15:
            await asyncio.sleep(0)
    if s.cut_after >= n:
        return await _cut(s, entry, send)
    if not n:  # nothing to say: the end comes when the first content would have
        await sleep_until(start + s.reasoning * itl, slack)
        await start_message()
    else:
        await emit(_HEADERS["contentBlockStop"], {"contentBlockIndex": index})
    reason = stop_reason(s)
    if reason is not None:
        await emit(_HEADERS["messageStop"], {"stopReason": reason})
    if s.usage != "never":
        latency = (perf_counter_ns() - recv_ns) // 1_000_000
        await emit(_HEADERS["metadata"], {"usage": usage(s, writes), "metrics": {"latencyMs": latency}})
    entry["done_sent_ns"] = perf_counter_ns()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cut(s: Script, entry: dict, send: Send) -> None:
    """``cut_after``: drop the connection, or with an error ``status`` send that exception frame and end."""
    entry["cut"] = True
    if s.status == 200:
        raise Cut
    name = STREAM_EXCEPTIONS.get(s.status, "modelStreamErrorException")
    message = ERRORS.get(s.status, ERRORS[424])[1]
    data: dict[str, Any] = {"message": message}
    if name == "modelStreamErrorException":
        data.update(originalStatusCode=s.status, originalMessage=message)
    entry["exception"] = name
    payload = dumps({**data, "x_sent_ns": perf_counter_ns()}).encode()
    await send({"type": "http.response.body", "body": encode_frame(exception_headers(name), payload),
                "more_body": False})
