"""The Gemini API's ``generateContent`` wire format, replayed from the same scripts as the OpenAI route.

Routes (under the replay server's ``/gemini`` prefix; ``v1`` works as well as ``v1beta``)::

    POST /v1beta/models/{script}:streamGenerateContent?alt=sse   SSE, one GenerateContentResponse per event
    POST /v1beta/models/{script}:streamGenerateContent           no alt=sse: one JSON array, streamed
    POST /v1beta/models/{script}:generateContent                 one GenerateContentResponse

``{script}`` is the model segment of the path (URL-encoded by the client: ``tokens%3D5%3Bttft_ms%3D50``),
read with :func:`~tryouts.testing.script.parse_script`. What Gemini sends, and so what is replayed:

* every chunk is a whole ``GenerateContentResponse``: ``candidates[0].content`` (``role: model``, ``parts``),
  ``usageMetadata``, ``modelVersion``, ``responseId``. There is no role-only chunk (``role_first`` is
  ignored) and no ``[DONE]``: the stream simply ends after the chunk carrying ``finishReason``, which is
  the last content chunk (``STOP``; ``finish=length`` sends ``MAX_TOKENS``, ``finish=none`` sends no
  finish reason at all and ends the stream cleanly, any other value is sent upper-cased);
* ``usageMetadata`` comes on every chunk with running totals (``usage=never`` leaves it out):
  ``promptTokenCount`` (cached tokens included), ``candidatesTokenCount`` (answer tokens so far),
  ``thoughtsTokenCount`` (thinking tokens so far), ``cachedContentTokenCount`` (``cached``) and
  ``totalTokenCount`` (their sum, cached not counted twice); zero counts are left out, as proto3 JSON does;
* ``reasoning=N``: the model thinks for N chunks' time first. Only when the request asks for
  ``generationConfig.thinkingConfig.includeThoughts`` are they sent, as parts with ``"thought": true``;
  either way ``thoughtsTokenCount`` reports them;
* errors have Google's body ``{"error": {"code", "message", "status"}}``: 400 ``INVALID_ARGUMENT``,
  403 ``PERMISSION_DENIED``, 404 ``NOT_FOUND``, 429 ``RESOURCE_EXHAUSTED`` (``retry_after``: a
  ``retry-after`` header and a ``google.rpc.RetryInfo`` detail), 500 ``INTERNAL``, 503 ``UNAVAILABLE``.

With ``REPLAY_REQUIRE_KEY`` set, the key must come in ``x-goog-api-key`` (or ``?key=``): none gives
Google's 403 "unregistered callers", a wrong one its 400 ``API_KEY_INVALID``. Timing, ``cut_after``,
``fail_first``, ``id`` and the ``/_replay/log/{id}`` entries are those of the OpenAI route; every chunk
carries ``x_sent_ns``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any
from urllib.parse import parse_qs, unquote

from ..script import Script, ScriptError, auth_echo, parse_script
from ..wire import (
    SSE_HEADERS,
    cut,
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

_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED",
    429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_INFO = "type.googleapis.com/google.rpc."


def google_error(status: int, message: str | None = None, details: list[dict[str, Any]] | None = None) -> dict:
    """Google's error body for ``status``."""
    err: dict[str, Any] = {
        "code": status,
        "message": message or _MESSAGES.get(status) or f"HTTP {status}",
        "status": _STATUS.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def _scripted_error(s: Script, model: str, method: str, version: str) -> dict:
    if s.status == 404:
        return google_error(404, (
            f"models/{model} is not found for API version {version}, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods."
        ))
    if s.status == 429:
        details: list[dict[str, Any]] = []
        if s.quota:
            details.append({"@type": _INFO + "QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10",
            }]})
        if s.retry_after and s.retry_after.replace(".", "", 1).isdigit():
            details.append({"@type": _INFO + "RetryInfo", "retryDelay": f"{s.retry_after}s"})
        return google_error(429, _QUOTA if s.quota else None, details)
    return google_error(s.status)


def _key_error(key: str | None) -> tuple[int, dict]:
    if key is None:
        return 403, google_error(403, (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        ))
    msg = "API key not valid. Please pass a valid API key."
    return 400, google_error(400, msg, [
        {"@type": _INFO + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": _INFO + "LocalizedMessage", "locale": "en-US", "message": msg},
    ])


def _finish(s: Script) -> str | None:
    return {"stop": "STOP", "length": "MAX_TOKENS", "none": None}.get(s.finish, s.finish.upper())


def _usage(s: Script, candidates: int, thoughts: int) -> dict[str, Any]:
    """Running totals, zero counts left out (proto3 JSON)."""
    u: dict[str, Any] = {"promptTokenCount": s.prompt_tokens}
    if candidates:
        u["candidatesTokenCount"] = candidates
    u["totalTokenCount"] = s.prompt_tokens + candidates + thoughts
    if s.cached:
        u["cachedContentTokenCount"] = s.cached
    u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": s.prompt_tokens}]
    if s.cached:
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": s.cached}]
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    return u


def _response(s: Script, rid: str, parts: list[dict], finish: str | None, usage: dict | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    data: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        data["usageMetadata"] = usage
    data["modelVersion"] = s.model
    data["responseId"] = rid
    return data


async def handle(app, method: str, path: str, scope: dict, body: bytes, recv_ns: int, send) -> None:
    """Serve one request under ``/gemini`` (``path`` is without the prefix)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    version, _, rest = path.lstrip("/").partition("/")
    name, colon, action = rest.rpartition(":")
    model = name.removeprefix("models/")
    if version not in ("v1", "v1beta", "v1alpha") or not colon or not name.startswith("models/") or not model \
            or action not in ("generateContent", "streamGenerateContent"):
        return await send_json(send, 404, google_error(404, f"Unknown request URL: {method} {path}."))
    if method != "POST":
        return await send_json(send, 405, google_error(405, f"Method {method} not allowed for {path}; use POST."))
    if app.require_key:
        key = header(scope, b"x-goog-api-key")
        key = key if key is not None else (query.get("key") or [None])[0]
        if key != app.require_key:
            return await send_json(send, *_key_error(key))
    req = read_json(body)
    if not isinstance(req, dict):
        return await send_json(send, 400, google_error(400, "Invalid JSON payload received. Unexpected token."))
    if not isinstance(req.get("contents"), list) or not req["contents"]:
        return await send_json(send, 400, google_error(
            400, "* GenerateContentRequest.contents: contents is not specified\n"))
    model = unquote(model)  # the server decoded the path once; a client that encoded twice still works
    try:
        s = parse_script(model)
    except ScriptError as exc:
        return await send_json(send, 400, google_error(400, f"Invalid script in the model name: {exc}"))
    stream = action == "streamGenerateContent"
    entry = app.admit(s, model, recv_ns, stream)
    if s.status != 200:
        err = _scripted_error(s, model, action, version)
        if s.echo_auth:
            err["error"]["message"] += auth_echo(scope)
        return await send_json(send, s.status, err, retry_after(s.retry_after))
    gen = req.get("generationConfig") if isinstance(req.get("generationConfig"), dict) else {}
    thinking = gen.get("thinkingConfig") if isinstance(gen.get("thinkingConfig"), dict) else {}
    show_thoughts = bool(thinking.get("includeThoughts"))
    rid = secrets.token_urlsafe(16)
    if stream:
        sse = "sse" in query.get("alt", [])
        await _stream(app, s, rid, show_thoughts, sse, recv_ns, entry, send)
    else:
        await _complete(app, s, rid, show_thoughts, recv_ns, entry, send)


async def _complete(app, s: Script, rid: str, show_thoughts: bool, recv_ns: int, entry: dict, send) -> None:
    parts: list[dict[str, Any]] = []
    if s.reasoning and show_thoughts:
        parts.append({"text": s.reasoning_text(), "thought": True})
    parts.append({"text": s.full_text()})
    usage = None if s.usage == "never" else _usage(s, s.tokens, s.reasoning)
    head = dumps(_response(s, rid, parts, _finish(s), usage))[:-1]
    await sleep_until(s.answer_due(recv_ns), app.slack())
    t = perf_counter_ns()
    payload = f'{head},"x_sent_ns":{t}}}'.encode()
    headers = [(b"content-type", b"application/json; charset=UTF-8"), (b"x-request-id", request_id())]
    await send_answer(send, payload, headers, s, entry, t)


async def _stream(
    app, s: Script, rid: str, show_thoughts: bool, sse: bool, recv_ns: int, entry: dict, send
) -> None:
    slack = app.slack()
    with_usage = s.usage != "never"
    first = [True]

    def frame(data: dict[str, Any]) -> Callable[[int], bytes]:
        """Serialise now; the stamp is added at the last moment."""
        head = dumps(data)[:-1]
        if sse:
            return lambda t: f'data: {head},"x_sent_ns":{t}}}\r\n\r\n'.encode()
        sep = "[" if first[0] else ",\r\n"
        first[0] = False
        return lambda t: f'{sep}{head},"x_sent_ns":{t}}}'.encode()

    async def emit(make: Callable[[int], bytes]) -> int:
        t = perf_counter_ns()
        await send({"type": "http.response.body", "body": make(t), "more_body": True})
        return t

    ctype = b"text/event-stream" if sse else b"application/json; charset=UTF-8"
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", ctype), *SSE_HEADERS[1:], (b"x-request-id", request_id())],
    })
    start, itl = recv_ns + s.ttft_ns, s.itl_ns
    if show_thoughts:
        for j in range(s.reasoning):
            usage = _usage(s, 0, j + 1) if with_usage else None
            make = frame(_response(s, rid, [{"text": f" r{j}", "thought": True}], None, usage))
            await sleep_until(start + j * itl, slack)
            log_reasoning_sent(entry, await emit(make))
            if j & 15 == 15:  # let other streams run when chunks are due back to back
                await asyncio.sleep(0)
    n = s.n_content_chunks
    finish = _finish(s)
    for k in range(n):
        due = start + (s.reasoning + k) * itl
        if k == s.cut_after:
            await sleep_until(due, slack)
            raise cut(entry)
        last = k == n - 1 and s.cut_after < n
        usage = _usage(s, min((k + 1) * s.per_chunk, s.tokens), s.reasoning) if with_usage else None
        make = frame(_response(s, rid, [{"text": s.content_piece(k)}], finish if last else None, usage))
        await sleep_until(due, slack)
        t = await emit(make)
        log_content_sent(entry, t)
        if k & 15 == 15:
            await asyncio.sleep(0)
    if s.cut_after >= n:
        raise cut(entry)
    if not n:  # nothing to say: an empty text part carries the finish reason
        await sleep_until(start + s.reasoning * itl, slack)
        usage = _usage(s, 0, s.reasoning) if with_usage else None
        await emit(frame(_response(s, rid, [{"text": ""}], finish, usage)))
    entry["done_sent_ns"] = perf_counter_ns()
    await send({"type": "http.response.body", "body": b"" if sse else b"]", "more_body": False})
