"""Anthropic's Messages API (``POST /anthropic/v1/messages``) for the replay server.

The request's ``model`` is the same script as on the OpenAI route (``script.parse_script``), plus two
keys of this dialect only, ``cache_write=N`` (reported as ``cache_creation_input_tokens``) and
``cache_write_1h=M`` (M of those N written to a 1-hour cache: the usage then carries Anthropic's
``cache_creation: {ephemeral_5m_input_tokens: N-M, ephemeral_1h_input_tokens: M}``). A streaming
request (``"stream": true``) gets Anthropic's documented event sequence::

    event: message_start        {"type":"message_start","message":{... "content":[], "usage":{input_tokens,
                                 cache_creation_input_tokens, cache_read_input_tokens, output_tokens: 1}}}
    event: content_block_start  index 0: {"type":"thinking","thinking":"","signature":""} when ``reasoning``,
                                 else {"type":"text","text":""}
    event: ping
    event: content_block_delta  thinking_delta `` r{j}`` ..., then one signature_delta
    event: content_block_stop   (then content_block_start of the text block, index 1)
    event: content_block_delta  text_delta `` w{i}`` ... (``per_chunk`` tokens each)
    event: content_block_stop
    event: message_delta        {"delta":{"stop_reason":"end_turn",...},"usage":{... cumulative output_tokens}}
    event: message_stop

Usage keeps the OpenAI route's totals: ``input_tokens`` = prompt_tokens - cached - cache_write (Anthropic's
``input_tokens`` excludes cache reads and writes), ``cache_read_input_tokens`` = cached, output = tokens +
reasoning. ``finish`` maps ``stop`` -> ``end_turn`` and ``length`` -> ``max_tokens``. The schedule, the
log (``GET /_replay/log/{id}``: thinking deltas in ``reasoning_sent_ns``, text deltas in ``sent_ns``,
``message_start`` in ``role_sent_ns``), ``cut_after`` and ``fail_first`` are the OpenAI route's. Every data
object carries ``x_sent_ns``. Errors are Anthropic's body ``{"type":"error","error":{"type","message"},
"request_id"}`` with its types (401 authentication_error, 404 not_found_error, 429 rate_limit_error, 500
api_error, 529 overloaded_error...), a ``request-id`` header and ``retry-after`` when scripted. With both
``status`` and ``cut_after`` a stream starts normally and, when content chunk ``cut_after`` is due, sends
``event: error`` with that status's error (e.g. 529's ``overloaded_error``) and ends. Requests are checked
as Anthropic checks them (``max_tokens`` required, no ``system`` role in ``messages``, a thinking budget
of at least 1024 and below ``max_tokens``); with ``REPLAY_REQUIRE_KEY`` the ``x-api-key`` header must match.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from ..app import ReplayApp
from ..ratelimit import admit_rate
from ..script import Script, ScriptError, auth_echo, parse_script
from ..wire import (
    JSON_HEADERS,
    SSE_HEADERS,
    Cut,
    dumps,
    header,
    log_content_sent,
    log_reasoning_sent,
    read_json,
    request_id,
    retry_after,
    send_answer,
    send_json,
    sleep_until,
)

Send = Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_body(status: int, message: str, rid: str) -> dict[str, Any]:
    """Anthropic's error object for ``status``."""
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": rid}


def scripted_message(status: int, s: Script) -> str:
    """The message Anthropic sends with a scripted error status."""
    return {
        400: "The replay script asked for a 400 (invalid_request_error).",
        401: "invalid x-api-key",
        403: "Your API key does not have permission to use the specified resource.",
        404: f"model: {s.model}",
        413: "Request exceeds the maximum allowed number of bytes.",
        429: "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "Please reduce the prompt length or the maximum tokens requested, or try again later.",
        500: "Internal server error",
        529: "Overloaded",
    }.get(status, f"The replay script asked for HTTP {status}.")


async def _error(send: Send, status: int, message: str, wait: str | None = None) -> None:
    rid = request_id()
    await send_json(send, status, error_body(status, message, rid.decode()), [(b"request-id", rid), *retry_after(wait)])


@dataclass(frozen=True)
class CacheWrites:
    """This dialect's script keys: ``cache_write=N`` input tokens written to the cache, ``cache_write_1h=M`` of them
    to a 1-hour cache (None: not given, and no ``cache_creation`` breakdown is sent)."""

    total: int = 0
    one_hour: int | None = None


def _split_cache_write(model: str) -> tuple[str, CacheWrites]:
    """Take this dialect's ``cache_write=N`` and ``cache_write_1h=M`` out of the script; the rest goes to
    ``parse_script``."""
    rest, found = [], {}
    for part in model.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() in ("cache_write", "cache_write_1h"):
            if not value.strip().isdigit():
                wants = f"script key {key.strip()!r} wants an integer >= 0, not {value.strip()!r}"
                raise ScriptError(key.strip(), wants)
            found[key.strip()] = int(value)
        else:
            rest.append(part)
    return ";".join(rest), CacheWrites(found.get("cache_write", 0), found.get("cache_write_1h"))


def _check(req: Any) -> str | None:
    """What Anthropic would refuse in this request body, or None."""
    if not isinstance(req, dict):
        return "There was an issue with the format of your request: the body is not a JSON object."
    if not isinstance(req.get("model"), str):
        return "model: Field required"
    mt = req.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        return "max_tokens: Field required" if mt is None else "max_tokens: Input should be a positive integer"
    messages = req.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required"
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            return (
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    thinking = req.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= mt:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return None


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one request under ``/anthropic`` (``path`` without the prefix)."""
    if path == "/v1/messages/batches" or path.startswith("/v1/messages/batches/"):  # Message Batches
        from . import anthropic_batch

        return await anthropic_batch.handle(app, method, path, scope, body, recv_ns, send)
    if path != "/v1/messages":
        return await _error(send, 404, f"Not found: {method} /anthropic{path} (the replay serves POST /v1/messages)")
    if method != "POST":
        return await _error(send, 405, f"Method {method} not allowed for /v1/messages; use POST.")
    if app.require_key:
        key = header(scope, b"x-api-key")
        if key != app.require_key:
            return await _error(send, 401, "x-api-key header is required" if key is None else "invalid x-api-key")
    req = read_json(body)
    problem = _check(req)
    if problem:
        return await _error(send, 400, problem)
    model: str = req["model"]
    try:
        s, cache_writes = script_of(model)
    except ScriptError as exc:
        return await _error(send, 400, f"model: {exc}")
    stream = req.get("stream") is True
    entry = app.admit(s, model, recv_ns, stream)
    if s.refused(stream):
        echo = auth_echo(scope) if s.echo_auth else ""
        return await _error(send, s.status, scripted_message(s.status, s) + echo, s.retry_after)
    if admit_rate(app, s, "anthropic")[0] is not None:  # over the script's rpm/tpm (testing/ratelimit.py)
        return await _error(send, 429, "This request would exceed your organization's rate limit. Please reduce "
                            "the prompt length or the maximum tokens requested, or try again later.")
    usage = usage_of(s, cache_writes)
    if stream:
        await _stream(s, usage, recv_ns, entry, send, app.slack())
    else:
        await _complete(s, usage, recv_ns, entry, send, app.slack())


def script_of(model: str) -> tuple[Script, CacheWrites]:
    """The script in a request's ``model`` and its cache writes; :class:`ScriptError` when it is bad."""
    script, writes = _split_cache_write(model)
    s = parse_script(script)
    if writes.total > s.prompt_tokens - s.cached:
        raise ScriptError("cache_write", f"script key 'cache_write' ({writes.total}) exceeds prompt_tokens - cached")
    if writes.one_hour is not None and writes.one_hour > writes.total:
        raise ScriptError("cache_write_1h", f"script key 'cache_write_1h' ({writes.one_hour}) exceeds cache_write "
                          f"({writes.total}): the 1-hour writes are a part of the writes")
    return s, writes


def usage_of(s: Script, writes: CacheWrites | int) -> dict[str, Any]:
    """The input side of the usage (Anthropic's ``input_tokens`` excludes cache reads and writes); with
    ``cache_write_1h`` the writes' ``cache_creation`` breakdown by cache lifetime too."""
    if isinstance(writes, int):
        writes = CacheWrites(writes)
    usage: dict[str, Any] = {
        "input_tokens": s.prompt_tokens - s.cached - writes.total,
        "cache_creation_input_tokens": writes.total,
        "cache_read_input_tokens": s.cached,
    }
    if writes.one_hour is not None:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": writes.total - writes.one_hour,
                                   "ephemeral_1h_input_tokens": writes.one_hour}
    return usage


def message_object(s: Script, usage: dict[str, Any]) -> dict[str, Any]:
    """The whole non-streamed Message for ``s`` (``usage`` from :func:`usage_of`), without ``x_sent_ns``;
    the Message Batches replay (:mod:`.anthropic_batch`) puts the same object in its results."""
    content: list[dict[str, Any]] = []
    if s.reasoning:
        content.append({"type": "thinking", "thinking": s.reasoning_text(), "signature": "sig-" + secrets.token_hex(8)})
    content.append({"type": "text", "text": s.full_text()})
    stop = STOP_REASONS.get(s.finish, s.finish)
    return _message(s, content, stop, {**usage, "output_tokens": s.tokens + s.reasoning})


def _message(s: Script, content: list[dict[str, Any]], stop: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": s.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


async def _complete(
    s: Script, usage: dict[str, Any], recv_ns: int, entry: dict[str, Any], send: Send, slack: float
) -> None:
    await sleep_until(s.answer_due(recv_ns), slack)
    data = message_object(s, usage)
    t = perf_counter_ns()
    data["x_sent_ns"] = t
    headers = [*JSON_HEADERS, (b"x-request-id", request_id()), (b"request-id", request_id())]
    await send_answer(send, dumps(data).encode(), headers, s, entry, t)


async def _stream(
    s: Script, usage: dict[str, Any], recv_ns: int, entry: dict[str, Any], send: Send, slack: float
) -> None:
    async def emit(name: str, data: str) -> int:
        """Stamp, then write ``event: NAME`` with ``data`` (a JSON object) plus ``x_sent_ns``."""
        t = perf_counter_ns()
        body = f'event: {name}\ndata: {data[:-1]},"x_sent_ns":{t}}}\n\n'
        await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
        return t

    def block_start(index: int, block: str) -> str:
        return f'{{"type":"content_block_start","index":{index},"content_block":{block}}}'

    def block_delta(index: int, delta: str) -> str:
        return f'{{"type":"content_block_delta","index":{index},"delta":{delta}}}'

    def block_stop(index: int) -> str:
        return f'{{"type":"content_block_stop","index":{index}}}'

    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [*SSE_HEADERS, (b"request-id", request_id())],
    })
    start_msg = _message(s, [], None, {**usage, "output_tokens": 1})
    entry["role_sent_ns"] = await emit("message_start", dumps({"type": "message_start", "message": start_msg}))
    n = s.n_content_chunks
    index = 0
    if s.reasoning:
        await emit("content_block_start", block_start(0, '{"type":"thinking","thinking":"","signature":""}'))
    elif n:
        await emit("content_block_start", block_start(0, '{"type":"text","text":""}'))
    await emit("ping", '{"type":"ping"}')

    start, itl = recv_ns + s.ttft_ns, s.itl_ns
    for j in range(s.reasoning):
        delta = block_delta(0, '{"type":"thinking_delta","thinking":' + dumps(f" r{j}") + "}")
        await sleep_until(start + j * itl, slack)
        log_reasoning_sent(entry, await emit("content_block_delta", delta))
        if j & 15 == 15:  # let other streams run when chunks are due back to back (itl_ms=0)
            await asyncio.sleep(0)
    if s.reasoning:
        signature = '{"type":"signature_delta","signature":' + dumps("sig-" + secrets.token_hex(8)) + "}"
        await emit("content_block_delta", block_delta(0, signature))
        await emit("content_block_stop", block_stop(0))
        if n:
            index = 1
            await emit("content_block_start", block_start(1, '{"type":"text","text":""}'))

    for k in range(n):
        due = start + (s.reasoning + k) * itl
        if k == s.cut_after:
            await sleep_until(due, slack)
            return await _cut(s, entry, send, emit)
        delta = block_delta(index, '{"type":"text_delta","text":' + dumps(s.content_piece(k)) + "}")
        await sleep_until(due, slack)
        t = await emit("content_block_delta", delta)
        log_content_sent(entry, t)
        if k & 15 == 15:
            await asyncio.sleep(0)
    if s.cut_after >= n:
        return await _cut(s, entry, send, emit)
    if not n and not s.reasoning:  # nothing to say: the end comes when the first content would have
        await sleep_until(start, slack)
    if n:
        await emit("content_block_stop", block_stop(index))
    final = {**usage, "output_tokens": s.tokens + s.reasoning}
    if s.reasoning:
        final["output_tokens_details"] = {"thinking_tokens": s.reasoning}
    delta = {"stop_reason": STOP_REASONS.get(s.finish, s.finish), "stop_sequence": None}
    await emit("message_delta", dumps({"type": "message_delta", "delta": delta, "usage": final}))
    entry["done_sent_ns"] = t = perf_counter_ns()
    body = f'event: message_stop\ndata: {{"type":"message_stop","x_sent_ns":{t}}}\n\n'
    await send({"type": "http.response.body", "body": body.encode(), "more_body": False})


async def _cut(s: Script, entry: dict[str, Any], send: Send, emit: Any) -> None:
    """End the stream early: ``event: error`` when a status is scripted, else drop the connection."""
    entry["cut"] = True
    if s.status == 200:
        raise Cut
    err = error_body(s.status, scripted_message(s.status, s), request_id().decode())
    await emit("error", dumps(err))
    await send({"type": "http.response.body", "body": b"", "more_body": False})
