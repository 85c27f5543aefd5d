"""Cohere's v2 Chat API, natively: ``POST /v2/chat`` streamed as server-sent events, over httpx.

``cohere:MODEL``, e.g. ``cohere:command-r-08-2024``. The key comes from ``COHERE_API_KEY``, else
``CO_API_KEY`` (the name Cohere's SDKs read), or the variable named by ``api_key_env``, and is sent as
``Authorization: Bearer``. ``COHERE_BASE_URL`` (or ``base_url``) moves the endpoint, e.g. to a proxy.
Options: ``thinking_budget`` (reasoning models: ``thinking`` enabled with that ``token_budget``; 0 turns
thinking off), ``headers``, ``extra_body``, ``timeout``, ``connect_timeout``, ``price``.

Mapping to Tryouts: messages go as they are (v2 takes ``system`` as a message role); ``top_p`` -> ``p``,
``stop`` -> ``stop_sequences``; ``max_tokens``, ``temperature`` and ``seed`` keep their names. Stream
events: ``content-delta`` ``delta.message.content.text`` -> text, ``.thinking`` -> reasoning,
``tool-plan-delta`` -> reasoning, ``tool-call-start``/``tool-call-delta`` -> tool; ``message-end`` carries
``finish_reason`` (``COMPLETE``, ``MAX_TOKENS``...) and ``usage``; a stream without it was cut.

Usage: Cohere reports ``billed_units`` (what is charged) and ``tokens`` (what the model processed). They
differ on input: the chat template and default preamble are processed, not billed (Cohere's guide shows
17 billed against 215 processed input tokens). Tryouts' input tokens feed the cost (genai-prices applies
its per-token prices to them), so input = ``billed_units.input_tokens`` (else ``tokens``); output =
``tokens.output_tokens`` (else ``billed_units``), the tokens really generated, which TPOT divides by;
the two output counts agree in Cohere's examples.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Usage, UsageReport
from .http import HTTPProvider
from .sse import SSEEvent

KEY_ENVS = ("COHERE_API_KEY", "CO_API_KEY")
BASE_URL_ENV = "COHERE_BASE_URL"
DEFAULT_BASE_URL = "https://api.cohere.com"


@dataclass
class _Stream:
    """What one response has said so far."""

    text: list[str] = field(default_factory=list)
    finished: bool = False


class CohereProvider(HTTPProvider):
    """Streams ``/v2/chat`` from Cohere (or anything that speaks its format)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        self.base_url = self.configured_base_url(BASE_URL_ENV, DEFAULT_BASE_URL)
        # like Cohere's SDKs the base URL has no version; one ending in /v2 is taken as meant
        self.url = self.base_url + ("/chat" if self.base_url.endswith("/v2") else "/v2/chat")
        budget = opts.get("thinking_budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise errors.UsageError(
                f"{spec.ref!r}: thinking_budget wants a whole number of tokens (0 turns thinking off), not {budget!r}."
            )
        self.thinking_budget: int | None = budget
        extra = opts.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            raise errors.UsageError(f"{spec.ref!r}: extra_body wants a mapping of request fields, not {extra!r}.")
        self.key_env: str = opts.get("api_key_env") or KEY_ENVS[0]

    async def load(self) -> None:
        key = self.api_key(KEY_ENVS, "Cohere")  # the environment, else `tryouts keys set cohere`
        headers = {
            "Accept": "text/event-stream",
            **(self.spec.options.get("headers") or {}),
            "Authorization": f"Bearer {key}",
        }
        self._slots = self.client_slots(headers)
        return None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        p = request.params
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
        }
        for name, value in (("max_tokens", p.max_tokens), ("temperature", p.temperature), ("p", p.top_p),
                            ("seed", p.seed), ("stop_sequences", p.stop or None)):
            if value is not None:
                body[name] = value
        if self.thinking_budget is not None:
            body["thinking"] = (
                {"type": "enabled", "token_budget": self.thinking_budget} if self.thinking_budget else {"type": "disabled"}
            )
        body.update(self.spec.options.get("extra_body") or {})
        return body

    def stream(self, request: Request) -> AsyncIterator[Event]:
        st = _Stream()
        return self.post_stream(
            request, self.url, lambda sse: self._parse(sse, st), partial=lambda: "".join(st.text),
            cut=f"The stream from {self.base_url} ended without message-end; the partial output is kept. "
            "Run again, or check the proxy or server in between.",
        )

    def _parse(self, sse: SSEEvent, st: _Stream) -> list[Event]:
        if not sse.data.strip() or sse.data == "[DONE]":
            return []
        try:
            data = json.loads(sse.data)
        except json.JSONDecodeError as exc:
            raise errors.ServerError(f"{self.base_url} sent an event that is not JSON: {sse.data[:200]!r}") from exc
        kind = data.get("type") or sse.event
        t = sse.t_ns
        message = (data.get("delta") or {}).get("message") or {}
        if kind == "content-delta":
            piece = message.get("content") or {}
            out: list[Event] = []
            if piece.get("thinking"):
                out.append(Delta(t, piece["thinking"], "reasoning"))
            if piece.get("text"):
                st.text.append(piece["text"])
                out.append(Delta(t, piece["text"], "text"))
            return out
        if kind == "tool-plan-delta" and message.get("tool_plan"):
            return [Delta(t, message["tool_plan"], "reasoning")]
        if kind in ("tool-call-start", "tool-call-delta"):
            call = message.get("tool_calls") or {}
            call = call[0] if isinstance(call, list) and call else call  # documented as one object
            fn = (call.get("function") if isinstance(call, dict) else None) or {}
            piece = (fn.get("name") or "") + (fn.get("arguments") or "")
            return [Delta(t, piece, "tool")] if piece else []
        if kind == "message-end":
            delta = data.get("delta") or {}
            reason = delta.get("finish_reason")
            if reason == "ERROR" or delta.get("error"):
                raise errors.ServerError(
                    f"Cohere reported an error mid-stream ({delta.get('error') or 'finish_reason ERROR'}); "
                    "the partial output is kept. Run again later.",
                    partial_text="".join(st.text),
                )
            st.finished = True
            out = [UsageReport(parse_usage(delta["usage"]))] if delta.get("usage") else []
            return [*out, Finish(t, reason)]
        return []  # message-start, content-start/-end, citations, tool-call-end, debug

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        try:
            detail = response.json().get("message")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            detail = response.text[:300]
        what = f"HTTP {status}: {detail or response.reason_phrase}"
        return self.status_error(response, "Cohere", what, hints={
            "billing": "add or update a payment method at https://dashboard.cohere.com/billing",
            "model_not_found": "check the name, e.g. command-r-08-2024 (Cohere's model list: "
                               "https://docs.cohere.com/docs/models)",
            "rate_limit": "Lower the concurrency or wait; trial keys have low limits.",
        })



def parse_usage(usage: dict[str, Any]) -> Usage:
    """Cohere usage -> :class:`Usage`: billed input tokens (they are priced), generated output tokens."""
    billed = usage.get("billed_units") or {}
    tokens = usage.get("tokens") or {}

    def first(*values: Any) -> int | None:
        return next((int(v) for v in values if isinstance(v, int | float)), None)

    return Usage(
        input_tokens=first(billed.get("input_tokens"), tokens.get("input_tokens")),
        output_tokens=first(tokens.get("output_tokens"), billed.get("output_tokens")),
    )
