"""Anthropic's Messages API, natively: ``POST /v1/messages`` streamed as server-sent events, over httpx.

``anthropic:MODEL``, e.g. ``anthropic:claude-haiku-5-5``. The key comes from ``ANTHROPIC_API_KEY``
(or the variable named by ``api_key_env``), else from ``tryouts keys set anthropic``; ``ANTHROPIC_BASE_URL`` (or ``base_url``) moves the endpoint,
e.g. to a proxy. Options: ``max_tokens_default`` (Anthropic requires ``max_tokens``; used when the request
has none, default 4096), ``thinking_budget`` (extended thinking with that many budget tokens, >= 1024),
``anthropic_version`` (header, default 2023-06-01), ``headers``, ``extra_body``, ``timeout``,
``connect_timeout``, ``price``.

Mapping to Tryouts: system messages go to the top-level ``system``; ``stop`` -> ``stop_sequences``; a
``seed`` is not sent (Anthropic has none). ``text_delta`` -> text, ``thinking_delta`` -> reasoning,
``input_json_delta`` -> tool; ``signature_delta`` is not content. Anthropic's ``input_tokens`` excludes
cache reads and writes, Tryouts' includes them: input = input_tokens + cache_read_input_tokens +
cache_creation_input_tokens, cached input = cache reads, cache writes = cache creation (of which
``cache_creation.ephemeral_1h_input_tokens`` went to a 1-hour cache, priced higher); output is the
final ``message_delta``'s cumulative ``output_tokens`` (thinking included), reasoning tokens come from
``output_tokens_details.thinking_tokens`` when sent. ``message_stop`` finishes with ``stop_reason``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Usage, UsageReport
from .base import warm_http_stack
from .http import HTTPProvider, ssl_context
from .sse import SSEEvent

KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
MIN_THINKING_BUDGET = 1024


@dataclass
class _Stream:
    """What one response has said so far."""

    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    finished: bool = False


def _positive_int(spec: ModelSpec, name: str, value: Any, minimum: int = 1) -> int:
    raw = value
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            value = None
    if value is None or value < minimum:
        raise errors.UsageError(f"{spec.ref!r}: option {name} must be an integer >= {minimum}, not {raw!r}.")
    return value


class AnthropicProvider(HTTPProvider):
    """Streams ``/v1/messages`` from Anthropic (or anything that speaks its format)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        base_url = opts.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise errors.UsageError(f"{spec.ref!r}: the base URL {base_url!r} must start with http:// or https://.")
        self.base_url = base_url.rstrip("/")
        # like Anthropic's SDKs the base URL has no /v1; one that has it is taken as meant
        self.url = self.base_url + ("/messages" if self.base_url.endswith("/v1") else "/v1/messages")
        self.key_env: str = opts.get("api_key_env") or KEY_ENV
        self.version = str(opts.get("anthropic_version") or DEFAULT_VERSION)
        self.max_tokens_default = _positive_int(spec, "max_tokens_default", opts.get("max_tokens_default", 4096))
        budget = opts.get("thinking_budget")
        self.thinking_budget: int | None = None
        if budget not in (None, 0, False):
            self.thinking_budget = _positive_int(spec, "thinking_budget", budget, MIN_THINKING_BUDGET)

    async def load(self) -> None:
        key = self.api_key((KEY_ENV,), "Anthropic")  # the environment, else `tryouts keys set anthropic`
        headers = {
            "x-api-key": key,
            "anthropic-version": self.version,
            "content-type": "application/json",
            "accept": "text/event-stream",
            **(self.spec.options.get("headers") or {}),
        }
        warm_http_stack()  # httpx's lazy imports and the CA bundle, before any t0
        ssl_context()
        self._slots = self.client_slots(headers)
        return None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        p = request.params
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": p.max_tokens or self.max_tokens_default,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
            "stream": True,
        }
        if system:
            body["system"] = system
        if self.thinking_budget:
            if self.thinking_budget >= body["max_tokens"]:
                raise errors.BadRequestError(
                    f"thinking_budget ({self.thinking_budget}) must be below max_tokens ({body['max_tokens']}): "
                    f"Anthropic counts thinking in max_tokens. Raise --max-tokens above {self.thinking_budget} "
                    "or lower the thinking_budget option."
                )
            body["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.stop:
            body["stop_sequences"] = p.stop
        body.update(self.spec.options.get("extra_body") or {})
        return body

    def stream(self, request: Request) -> AsyncIterator[Event]:
        st = _Stream()
        return self.post_stream(
            request, self.url, lambda sse: self._parse(sse, st), partial=lambda: "".join(st.text),
            cut=f"The stream from {self.base_url} ended without message_stop; the partial output is kept. "
            "Run again, or check the proxy or server in between.",
        )

    def _parse(self, sse: SSEEvent, st: _Stream) -> list[Event]:
        if sse.event == "ping":
            return []
        try:
            data = json.loads(sse.data)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise errors.ServerError(
                f"{self.base_url} sent an event that is not a JSON object: {sse.data[:200]!r}; is it Anthropic's API?"
            )
        kind = data.get("type") or sse.event
        t = sse.t_ns
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta" and delta.get("text"):
                st.text.append(delta["text"])
                return [Delta(t, delta["text"], "text")]
            if dtype == "thinking_delta" and delta.get("thinking"):
                return [Delta(t, delta["thinking"], "reasoning")]
            if dtype == "input_json_delta" and delta.get("partial_json"):
                return [Delta(t, delta["partial_json"], "tool")]
            return []  # signature_delta, citations_delta: not content
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            btype = block.get("type")
            if btype == "text" and block.get("text"):
                st.text.append(block["text"])
                return [Delta(t, block["text"], "text")]
            if btype == "thinking" and block.get("thinking"):
                return [Delta(t, block["thinking"], "reasoning")]
            if btype in ("tool_use", "server_tool_use") and block.get("name"):
                return [Delta(t, block["name"], "tool")]
            return []
        if kind == "message_start":
            st.usage.update((data.get("message") or {}).get("usage") or {})
            # input is known now; output is not (message_start says 1): reported by message_delta
            return [UsageReport(parse_usage(st.usage, final=False))]
        if kind == "message_delta":
            st.stop_reason = (data.get("delta") or {}).get("stop_reason") or st.stop_reason
            st.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            return [UsageReport(parse_usage(st.usage, final=True))]
        if kind == "message_stop":
            st.finished = True
            return [Finish(t, st.stop_reason)]
        if kind == "error":
            raise self._stream_error(data.get("error") or {}, "".join(st.text))
        return []  # content_block_stop, and event types added later

    def _stream_error(self, err: dict[str, Any], partial: str) -> errors.ProviderError:
        etype, detail = err.get("type") or "error", err.get("message") or "no message"
        kept = "; the partial output is kept"
        if etype == "overloaded_error":
            return errors.ServerError(
                f"Anthropic is overloaded (overloaded_error mid-stream: {detail}){kept}. "
                "This is Anthropic's capacity, not your rate limit: retry later.",
                status=529, partial_text=partial,
            )
        if etype == "rate_limit_error":
            return errors.RateLimitError(
                f"Anthropic is rate limiting (rate_limit_error mid-stream: {detail}){kept}. "
                "Lower the concurrency or wait.", status=429, partial_text=partial,
            )
        exc = errors.ServerError(
            f"Anthropic reported an error mid-stream ({etype}: {detail}){kept}.",
            status=500 if etype == "api_error" else None,
            partial_text=partial,
        )
        exc.retryable = etype == "api_error"
        return exc

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        try:
            data = response.json()
            err = data.get("error") or {}
            etype, detail = err.get("type"), err.get("message")
            rid = data.get("request_id")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            etype, detail, rid = None, response.text[:300], None
        rid = rid or response.headers.get("request-id")
        what = f"HTTP {status}" + (f" {etype}" if etype else "") + f": {detail or response.reason_phrase}"
        if rid:
            what += f"; request-id {rid}"
        if status == 529 or etype == "overloaded_error":
            return errors.ServerError(
                f"Anthropic is overloaded ({what}). This is Anthropic's capacity, not your rate limit: "
                "retry later.", status=status, provider=self.spec.provider, model=self.spec.model, url=self.base_url,
            )
        return self.status_error(
            response, "Anthropic", what,
            hints={"model_not_found": "check the name, e.g. claude-haiku-5-5 (Anthropic's model list: "
                                      "https://docs.anthropic.com/en/docs/about-claude/models)"},
        )


def parse_usage(usage: dict[str, Any], *, final: bool = True) -> Usage:
    """Anthropic usage -> :class:`Usage`: Tryouts' input includes cache reads and writes, Anthropic's does not.

    ``cache_creation.ephemeral_1h_input_tokens`` (the writes to a 1-hour cache, priced at twice the input price
    against 1.25 times for 5-minute writes) -> ``cache_write_1h_tokens``; ``service_tier`` (standard, priority,
    batch) is kept: a tier other than standard is priced at its own price or not at all (pricing.py)."""
    fresh = usage.get("input_tokens")
    read = usage.get("cache_read_input_tokens")
    write = usage.get("cache_creation_input_tokens")
    details = usage.get("output_tokens_details") or {}
    split = usage.get("cache_creation") if isinstance(usage.get("cache_creation"), dict) else {}
    one_hour = split.get("ephemeral_1h_input_tokens")
    if write is None and split:  # the split alone: its sum is the writes
        write = (split.get("ephemeral_5m_input_tokens") or 0) + (one_hour or 0)
    tier = usage.get("service_tier")
    return Usage(
        input_tokens=None if fresh is None else fresh + (read or 0) + (write or 0),
        output_tokens=usage.get("output_tokens") if final else None,
        cached_input_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=one_hour,
        reasoning_tokens=details.get("thinking_tokens"),
        service_tier=tier if isinstance(tier, str) else None,
    )
