"""Cohere's v2 Chat API (``POST /cohere/v2/chat``) for the replay server.

The request's ``model`` is the same script as on the OpenAI route (``script.parse_script``): a plain name
(``command-r``) is a script with every default. ``"stream": true`` gets Cohere's documented v2 event
sequence, each as ``event: TYPE`` plus ``data: {"type": TYPE, ...}``::

    message-start    {"id", "type", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "",
                      "tool_calls": [], "citations": []}}}                      sent at once (``role_sent_ns``)
    content-start    index 0: {"delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}
                      when ``reasoning``; then content-delta ``{"content": {"thinking": " r{j}"}}`` ...,
                      content-end, and the text block at index 1
    content-start    {"delta": {"message": {"content": {"type": "text", "text": ""}}}}
    content-delta    {"index", "delta": {"message": {"content": {"text": " w0"}}}}   (``per_chunk`` tokens each)
    content-end      {"index"}
    message-end      {"delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {...}, "tokens": {...}}}}

Usage: ``billed_units`` = {input_tokens: ``prompt_tokens``, output_tokens: ``tokens`` + ``reasoning``};
``tokens`` (what the model processed) has the same output and ``prompt_tokens`` + 198 input tokens:
Cohere's Chat API guide shows a response billed for 17 input tokens that processed 215 (the chat template
and default preamble are processed, not billed). ``usage=never`` leaves ``usage`` out. ``finish`` maps
``stop`` -> ``COMPLETE``, ``length`` -> ``MAX_TOKENS``, ``stop_sequence`` -> ``STOP_SEQUENCE``,
``tool_calls`` -> ``TOOL_CALL``; anything else is sent upper-cased. ``"stream": false`` answers with one
``{"id", "message": {"role", "content": [...]}, "finish_reason", "usage"}`` when the last chunk would
have been sent.

Errors are Cohere's body ``{"id", "message"}`` with the status (messages from Cohere's error reference:
401 ``invalid api token``, 404 ``model '...' not found, ...``, 429 ``You are past the per minute request
limit...``, 499 ``request cancelled``...) and ``retry-after`` when scripted. ``cut_after`` drops the
connection when content chunk ``cut_after`` is due; with an error ``status`` as well, the stream instead
ends there cleanly with ``message-end`` whose delta has ``finish_reason: "ERROR"`` and an ``error``
message (how the v2 stream reports a failure). The schedule, ``fail_first``, ``id`` and the log are the
OpenAI route's; every data object carries ``x_sent_ns``. With ``REPLAY_REQUIRE_KEY`` the request needs
``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import asyncio
import uuid
from time import perf_counter_ns
from typing import Any

from ..app import ReplayApp
from ..script import Script, ScriptError, auth_echo, parse_script
from ..wire import (
    JSON_HEADERS,
    SSE_HEADERS,
    Cut,
    dumps,
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

#: processed but unbilled input tokens (Cohere's Chat API guide: 17 billed, 215 processed)
TEMPLATE_TOKENS = 198
FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "stop_sequence": "STOP_SEQUENCE", "tool_calls": "TOOL_CALL"}


def scripted_message(status: int, s: Script) -> str:
    """What Cohere says with ``status`` (from its error reference)."""
    return {
        400: "invalid request: the replay script asked for a 400.",
        401: "invalid api token",
        402: "Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue",
        404: f"model '{s.model}' not found, make sure the correct model ID was used and that you have access to the model.",
        429: "You are past the per minute request limit, please wait and try again later.",
        499: "request cancelled",
        500: "internal server error, this has been reported to our developers",
        503: "service unavailable, please try again later",
    }.get(status, f"the replay script asked for HTTP {status}")


async def _error(send: Send, status: int, message: str, wait: str | None = None) -> None:
    await send_json(send, status, {"id": str(uuid.uuid4()), "message": message}, retry_after(wait))


def usage(s: Script) -> dict[str, Any]:
    out = s.tokens + s.reasoning
    return {
        "billed_units": {"input_tokens": s.prompt_tokens, "output_tokens": out},
        "tokens": {"input_tokens": s.prompt_tokens + TEMPLATE_TOKENS, "output_tokens": out},
    }


def _check(req: Any) -> str | None:
    """What Cohere would refuse in this body, or None."""
    if not isinstance(req, dict):
        return "invalid request: the body is not a JSON object."
    if not isinstance(req.get("model"), str) or not req["model"].strip():
        return "a model parameter is required for this endpoint."
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must not be empty."
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            return f"invalid request: messages[{i}].role must be one of system, user, assistant, tool."
    return None


async def handle(
    app: ReplayApp, method: str, path: str, scope: dict[str, Any], body: bytes, recv_ns: int, send: Send
) -> None:
    """Serve one request under ``/cohere`` (``path`` without the prefix)."""
    if path != "/v2/chat":
        return await _error(send, 404, "404 page not found")
    if method != "POST":
        return await _error(send, 405, f"method {method} not allowed; use POST")
    if app.require_key:
        key = app.bearer(scope)
        if key != app.require_key:
            return await _error(send, 401, "no api key supplied" if key is None else "invalid api token")
    req = read_json(body)
    problem = _check(req)
    if problem:
        return await _error(send, 400, problem)
    model: str = req["model"]
    try:
        s = parse_script(model)
    except ScriptError as exc:
        return await _error(send, 400, f"invalid request: {exc}")
    stream = req.get("stream") is True
    entry = app.admit(s, model, recv_ns, stream)
    if s.refused(stream):
        echo = auth_echo(scope) if s.echo_auth else ""
        return await _error(send, s.status, scripted_message(s.status, s) + echo, s.retry_after)
    if stream:
        await _stream(s, recv_ns, entry, send, app.slack())
    else:
        await _complete(s, recv_ns, entry, send, app.slack())


def _finish(s: Script) -> str:
    return FINISH.get(s.finish, s.finish.upper())


async def _complete(s: Script, recv_ns: int, entry: dict[str, Any], send: Send, slack: float) -> None:
    await sleep_until(s.answer_due(recv_ns), slack)
    content: list[dict[str, Any]] = []
    if s.reasoning:
        content.append({"type": "thinking", "thinking": s.reasoning_text()})
    content.append({"type": "text", "text": s.full_text()})
    data: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "message": {"role": "assistant", "content": content},
        "finish_reason": _finish(s),
    }
    if s.usage != "never":
        data["usage"] = usage(s)
    t = perf_counter_ns()
    data["x_sent_ns"] = t
    await send_answer(send, dumps(data).encode(), [*JSON_HEADERS, (b"x-request-id", request_id())], s, entry, t)


async def _stream(s: Script, recv_ns: int, entry: dict[str, Any], send: Send, slack: float) -> None:
    async def emit(name: str, data: dict[str, Any], more: bool = True) -> int:
        """Stamp, then write ``event: NAME`` and its data (``type`` first, ``x_sent_ns`` last)."""
        t = perf_counter_ns()
        payload = dumps({"type": name, **data, "x_sent_ns": t})
        await send({"type": "http.response.body", "body": f"event: {name}\ndata: {payload}\n\n".encode(), "more_body": more})
        return t

    def content(index: int, **fields: str) -> dict[str, Any]:
        return {"index": index, "delta": {"message": {"content": fields}}}

    await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
    start_msg = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    entry["role_sent_ns"] = await emit("message-start", {"id": str(uuid.uuid4()), "delta": {"message": start_msg}})
    start, itl = recv_ns + s.ttft_ns, s.itl_ns
    index = 0
    if s.reasoning:
        await emit("content-start", content(0, type="thinking", thinking=""))
        for j in range(s.reasoning):
            await sleep_until(start + j * itl, slack)
            log_reasoning_sent(entry, await emit("content-delta", content(0, thinking=f" r{j}")))
            if j & 15 == 15:  # let other streams run when chunks are due back to back (itl_ms=0)
                await asyncio.sleep(0)
        await emit("content-end", {"index": 0})
        index = 1
    n = s.n_content_chunks
    if n:
        await emit("content-start", content(index, type="text", text=""))
    for k in range(n):
        due = start + (s.reasoning + k) * itl
        await sleep_until(due, slack)
        if k == s.cut_after:
            return await _cut(s, entry, emit)
        t = await emit("content-delta", content(index, text=s.content_piece(k)))
        log_content_sent(entry, t)
        if k & 15 == 15:
            await asyncio.sleep(0)
    if s.cut_after >= n:
        return await _cut(s, entry, emit)
    if not n and not s.reasoning:  # nothing to say: the end comes when the first content would have
        await sleep_until(start, slack)
    if n:
        await emit("content-end", {"index": index})
    delta: dict[str, Any] = {"finish_reason": _finish(s)}
    if s.usage != "never":
        delta["usage"] = usage(s)
    entry["done_sent_ns"] = await emit("message-end", {"delta": delta}, more=False)


async def _cut(s: Script, entry: dict[str, Any], emit: Any) -> None:
    """End early: ``message-end`` with ``finish_reason: ERROR`` when a status is scripted, else drop."""
    entry["cut"] = True
    if s.status == 200:
        raise Cut
    delta = {"finish_reason": "ERROR", "error": scripted_message(s.status, s)}
    entry["done_sent_ns"] = await emit("message-end", {"delta": delta}, more=False)
