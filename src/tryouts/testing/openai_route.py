"""The replay server's OpenAI route: ``POST /v1/chat/completions`` (and Azure's deployment path), as OpenAI sends it.

A streaming request gets ``chat.completion.chunk`` events (``data: {...}``, then ``data: [DONE]``) on the
script's schedule; a non-streaming one a ``chat.completion`` when the last chunk would have been sent;
a scripted error status OpenAI's error body for it. Every answer carries the ``service_tier`` the request
asked for (``auto`` or none: ``default``), as OpenAI reports the tier that served it; this route's own
script key ``cache_write=N`` reports N of the prompt tokens as written to the cache
(``prompt_tokens_details.cache_write_tokens``). A body field ``replay_script`` (sent with the ``extra_body``
option) adds script keys to the model's, so a test can script a model whose name must stay exact to be
priced (``gpt-5.6-sol`` with ``{"replay_script": "cache_write=400"}``). What each script key does is in
:mod:`tryouts.testing.replay`'s docstring; :class:`~tryouts.testing.app.ReplayApp` routes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from .ratelimit import admit_rate
from .script import Script, ScriptError, auth_echo, parse_script
from .wire import (
    JSON_HEADERS,
    SSE_HEADERS,
    cut,
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

if TYPE_CHECKING:
    from .app import ReplayApp

__all__ = ["chat", "completion_object", "error_object", "openai_error"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: the ``service_tier`` values OpenAI accepts; the answer reports the tier that served it (``auto`` -> ``default``)
SERVICE_TIERS = ("auto", "default", "flex", "priority", "scale")


def _take_cache_write(model: str) -> tuple[str, int]:
    """Take this route's ``cache_write=N`` (input tokens written to the cache, reported as
    ``prompt_tokens_details.cache_write_tokens``, a part of ``prompt_tokens``) out of the script."""
    rest, write = [], 0
    for part in model.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "cache_write":
            if not value.strip().isdigit():
                raise ScriptError("cache_write", f"script key 'cache_write' wants an integer >= 0, not {value.strip()!r}")
            write = int(value)
        else:
            rest.append(part)
    return ";".join(rest), write


def _usage(s: Script, cache_write: int = 0) -> dict[str, Any]:
    completion: Any = s.tokens + s.reasoning
    if s.completion_tokens is not None:  # a lying server: the value as JSON when it is JSON (1e10, -5), else text
        try:
            completion = json.loads(s.completion_tokens)
        except ValueError:
            completion = s.completion_tokens
    prompt_details: dict[str, Any] = {"cached_tokens": s.cached, "audio_tokens": 0}
    if cache_write:
        prompt_details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": s.prompt_tokens + completion if isinstance(completion, int | float) else None,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": s.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _timings(s: Script, first_ns: int | None, last_ns: int | None, recv_ns: int) -> dict[str, Any]:
    """llama.cpp's ``timings``, from what was really sent: prompt = recv -> first token, predicted = the rest."""
    prompt_ms = ((first_ns or recv_ns) - recv_ns) / 1e6
    predicted_n = s.tokens + s.reasoning
    predicted_ms = ((last_ns or 0) - (first_ns or 0)) / 1e6
    return {
        "cache_n": s.cached,
        "prompt_n": s.prompt_tokens - s.cached,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / max(1, s.prompt_tokens - s.cached),
        "prompt_per_second": (s.prompt_tokens - s.cached) / prompt_ms * 1e3 if prompt_ms > 0 else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_ms / max(1, predicted_n),
        "predicted_per_second": predicted_n / predicted_ms * 1e3 if predicted_ms > 0 else 0.0,
    }


# ------------------------------------------------------------------------------------------- errors


def _mask_key(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "*" * len(key)


def openai_error(status: int, s: Script | None = None, *, key: str | None = "") -> dict[str, Any]:
    """The error body OpenAI sends for ``status``; for 401, ``key`` is the key sent (None: none was sent)."""
    model = s.model if s else "replay"
    if status == 400:
        return error_object("Invalid request: the replay script asked for a 400.", "invalid_request_error", None)
    if status == 401:
        if key is None:
            return error_object(
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        return error_object(
            f"Incorrect API key provided: {_mask_key(key or 'sk-replay')}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 403:
        return error_object("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory")
    if status == 404:
        return error_object(
            f"The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
        )
    if status == 429:
        if s is not None and s.quota:
            return error_object(
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            )
        wait = f" Please try again in {s.retry_after}s." if s is not None and s.retry_after else ""
        return error_object(
            f"Rate limit reached for {model} in organization org-replay on requests per min (RPM): "
            f"Limit 3, Used 3, Requested 1.{wait} Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 500:
        return error_object("The server had an error while processing your request. Sorry about that!", "server_error", None)
    if status == 503:
        return error_object("The server is overloaded or not ready yet.", "server_error", None)
    if status >= 500:
        return error_object(f"The server had an error (HTTP {status}).", "server_error", None)
    return error_object(f"The request was refused (HTTP {status}).", "invalid_request_error", None)


def error_object(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}




# -------------------------------------------------------------------------------------- completions


async def chat(
    app: ReplayApp, body: bytes, recv_ns: int, key: str, receive: Receive, send: Send, scope: dict | None = None
) -> None:
    """Serve one chat completions request (already authorized); ``key`` is the Bearer key sent; ``scope``
    (when given) lets ``echo_auth`` repeat every credential header, not only the Bearer key."""
    req = read_json(body)
    if not isinstance(req, dict):
        msg = (
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        )
        return await send_json(send, 400, error_object(msg, "invalid_request_error", None))
    model = req.get("model")
    if not isinstance(model, str):
        return await send_json(send, 400, error_object("you must provide a model parameter", "invalid_request_error", None))
    extra = req.get("replay_script")  # more script keys, for a model name that must stay exact (a priced one)
    try:
        if extra is not None and not isinstance(extra, str):
            raise ScriptError("replay_script", "replay_script must be a string of script keys")
        script, cache_write = _take_cache_write(f"{model};{extra}" if extra else model)
        s = parse_script(script)
        if cache_write > s.prompt_tokens - s.cached:
            raise ScriptError("cache_write", f"script key 'cache_write' ({cache_write}) exceeds prompt_tokens - cached")
    except ScriptError as exc:
        return await send_json(send, 400, error_object(str(exc), "invalid_request_error", "invalid_script", "model"))
    tier = req.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        message = f"Invalid value for 'service_tier': {tier!r}; expected one of {', '.join(SERVICE_TIERS)}."
        return await send_json(send, 400, error_object(message, "invalid_request_error", "invalid_value", "service_tier"))
    served = "default" if tier in (None, "auto") else tier
    stream = bool(req.get("stream"))
    if s.id == "@prompt":  # log under the last message's text: one model, many requests, each found by its prompt
        messages = req.get("messages") or [{}]
        s.id = str((messages[-1] or {}).get("content", ""))[:200] if isinstance(messages[-1], dict) else None
    entry = app.admit(s, model, recv_ns, stream)
    if s.status != 200:
        err = openai_error(s.status, s, key=key)
        if s.echo_auth:
            err["error"]["message"] += auth_echo(scope, key)
        return await send_json(send, s.status, err, retry_after(s.retry_after))
    if admit_rate(app, s, "openai")[0] is not None:  # over the script's rpm/tpm (testing/ratelimit.py)
        return await send_json(send, 429, openai_error(429, s, key=key))
    slack = app.slack()
    async with app.capacity_gate(s.capacity) if s.capacity else contextlib.nullcontext():
        if s.capacity:  # a server at capacity: the request waited in its queue, and its schedule starts now
            recv_ns = time.perf_counter_ns()
        if stream:
            opts = req.get("stream_options")
            include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
            await _stream(s, include_usage, recv_ns, entry, receive, send, slack, served, cache_write)
        else:
            await _complete(s, recv_ns, entry, send, slack, served, cache_write)


async def _complete(s: Script, recv_ns: int, entry: dict[str, Any], send: Send, slack: float, tier: str = "default",
                    cache_write: int = 0) -> None:
    data = completion_object(s, tier, cache_write)
    await sleep_until(s.answer_due(recv_ns), slack)
    t = perf_counter_ns()
    if s.timings:
        data["timings"] = _timings(s, t, t, recv_ns)
    data["x_sent_ns"] = t
    await send_answer(send, dumps(data).encode(), [*JSON_HEADERS, (b"x-request-id", request_id())], s, entry, t)


def completion_object(s: Script, tier: str = "default", cache_write: int = 0) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` for ``s``, without the send-time ``timings`` and ``x_sent_ns``
    (the Batch API replay, :mod:`tryouts.testing.dialects.openai_batch`, writes the same object); ``tier``: the
    ``service_tier`` that served it."""
    message: dict[str, Any] = {"role": "assistant", "content": s.full_text()}
    if s.reasoning:
        message["reasoning_content"] = s.reasoning_text()
    message["refusal"] = None
    message["annotations"] = []
    data: dict[str, Any] = {
        "id": "chatcmpl-" + secrets.token_urlsafe(21),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": s.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": s.finish}],
    }
    if s.usage != "never":
        data["usage"] = _usage(s, cache_write)
    data["service_tier"] = tier
    data["system_fingerprint"] = "fp_replay"
    return data


async def _stream(
    s: Script, include_usage: bool, recv_ns: int, entry: dict[str, Any], receive: Receive, send: Send, slack: float,
    tier: str = "default", cache_write: int = 0,
) -> None:
    send_usage = s.usage == "always" or (s.usage == "auto" and include_usage)
    # everything before "choices" is the same for every chunk, and so is what follows it
    head = (
        '{"id":"chatcmpl-' + secrets.token_urlsafe(21) + '","object":"chat.completion.chunk","created":'
        + str(int(time.time())) + ',"model":' + dumps(s.model)
        + ',"service_tier":' + dumps(tier) + ',"system_fingerprint":"fp_replay","choices":'
    )
    tail = ',"usage":null,"x_sent_ns":' if send_usage else ',"x_sent_ns":'

    async def emit(middle: str) -> int:
        """Stamp, then write ``data: {head}{middle}{tail}{stamp}}``; returns the stamp."""
        t = perf_counter_ns()
        await send({
            "type": "http.response.body",
            "body": f"data: {head}{middle}{tail}{t}}}\n\n".encode(),
            "more_body": True,
        })
        return t

    def choice(delta: str, finish: str | None = None) -> str:
        fin = "null" if finish is None else dumps(finish)
        return f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{fin}}}]'

    # a disconnect (or the end of the response) completes this; checked before each chunk
    gone = asyncio.ensure_future(receive())
    try:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, (b"x-request-id", request_id())],
        })
        if s.role_first:
            entry["role_sent_ns"] = await emit(choice('{"role":"assistant","content":"","refusal":null}'))
        start, itl = recv_ns + s.ttft_ns, s.itl_ns
        last: int | None = None  # the last reasoning or content chunk's stamp
        for j in range(s.reasoning):
            middle = choice('{"reasoning_content":' + dumps(f" r{j}") + "}")
            await sleep_until(start + j * itl, slack)
            if gone.done():
                return
            last = await emit(middle)
            log_reasoning_sent(entry, last)
            if j & 15 == 15:  # let other streams run when chunks are due back to back (itl_ms=0)
                await asyncio.sleep(0)
        n = s.n_content_chunks
        for k in range(n):
            due = start + (s.reasoning + k) * itl
            if k == s.cut_after:
                await sleep_until(due, slack)
                raise cut(entry)
            middle = choice('{"content":' + dumps(s.content_piece(k)) + "}")
            await sleep_until(due, slack)
            if gone.done():
                return
            last = await emit(middle)
            log_content_sent(entry, last)
            if k & 15 == 15:
                await asyncio.sleep(0)
        if s.cut_after >= n:
            raise cut(entry)
        if not n:  # nothing to say: the finish chunk comes when the first content would have
            await sleep_until(start + s.reasoning * itl, slack)
        first = entry["first_token_sent_ns"]
        timings = ""
        if s.timings and not send_usage:
            timings = ',"timings":' + dumps(_timings(s, first, last, recv_ns))
        await emit(choice("{}", None if s.finish == "none" else s.finish) + timings)
        if send_usage:
            timings = ',"timings":' + dumps(_timings(s, first, last, recv_ns)) if s.timings else ""
            usage = dumps(_usage(s, cache_write))
            t_usage = perf_counter_ns()
            body = f'data: {head}[],"usage":{usage}{timings},"x_sent_ns":{t_usage}}}\n\n'
            await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
        entry["done_sent_ns"] = perf_counter_ns()
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
    finally:
        if not gone.done():
            gone.cancel()
