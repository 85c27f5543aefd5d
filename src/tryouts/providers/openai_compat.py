"""OpenAI Chat Completions over httpx, with our own SSE parsing, and its presets.

Model references:

* ``openai:MODEL`` - the OpenAI API (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` moves it, e.g. to a proxy).
* ``openai-compat:BASE_URL#MODEL`` - any compatible server: llama.cpp's server, vLLM, LM Studio...
  The key, if the server wants one, comes from ``OPENAI_COMPAT_API_KEY`` (or ``api_key_env``).

The request asks for ``stream_options.include_usage``; a server that sends no usage while streaming
(llama.cpp's) is coped with by the engine, which counts tokens and marks them estimated
(docs/metrics.md): with the ``tokenizer`` option (a GGUF file, a tokenizer folder or file, a cached
Hub id), loaded by :meth:`OpenAICompatProvider.load` so a bad one fails before anything is sent;
else, when the server sends one token per content chunk (the ``llamacpp-server`` preset, or the
``one_token_per_chunk`` option), by counting chunks; else ``ceil(characters / 4)``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .. import errors
from ..keys import get_key
from ..tokens import TokenCounter, load_counter
from ..types import Delta, Event, Finish, ModelSpec, Request, ServerTimings, Usage, UsageReport
from .base import warm_http_stack
from .http import HTTPProvider
from .http import ssl_context as _ssl_context
from .presets import PRESETS, Preset  # noqa: F401  (Preset re-exported for callers)


class OpenAICompatProvider(HTTPProvider):
    """Streams ``/chat/completions`` from any OpenAI-compatible endpoint."""

    def __init__(self, spec: ModelSpec, preset: str = "openai-compat") -> None:
        self.preset = PRESETS[preset]
        super().__init__(spec)
        opts = spec.options
        model = spec.model
        base_url = opts.get("base_url")
        if preset == "openai-compat":
            url, sep, model = spec.model.rpartition("#")
            if not sep or not url or not model:
                raise errors.UsageError(
                    f"{spec.ref!r}: write openai-compat models as openai-compat:BASE_URL#MODEL, "
                    "e.g. openai-compat:http://127.0.0.1:8080/v1#my-model."
                )
            base_url = base_url or url
        else:
            env_url = os.environ.get(self.preset.base_url_env or "") if self.preset.base_url_env else None
            base_url = base_url or env_url or self.preset.base_url
        if not base_url and self.preset.base_url_env:
            raise errors.UsageError(
                f"{spec.ref!r}: {self.preset.label} needs its endpoint: export {self.preset.base_url_env}=https://... "
                "or pass -o base_url=..."
            )
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise errors.UsageError(f"{spec.ref!r}: the base URL {base_url!r} must start with http:// or https://.")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self.key_env = opts.get("api_key_env", self.preset.key_env)
        self.free = self.preset.free  # type: ignore[misc]
        self.chat_url = self.base_url + self.preset.chat_path.format(
            model=model, api_version=opts.get("api_version", "2024-10-21")
        )
        self._headers: dict[str, str] | None = None
        chunked = opts.get("one_token_per_chunk", self.preset.one_token_per_chunk)
        if not isinstance(chunked, bool):
            raise errors.UsageError(
                f"{spec.ref!r}: one_token_per_chunk must be true or false, not {chunked!r}."
            )
        #: the server sends one token per content chunk: the engine may count chunks (docs/metrics.md)
        self.one_token_per_chunk = chunked
        #: the ``tokenizer`` option, loaded by load(): the engine counts with it when no usage comes
        self.token_counter: TokenCounter | None = None

    @property
    def model_name(self) -> str:
        return self._model

    def auth_headers(self) -> dict[str, str]:
        """The ``headers`` option and the key in the preset's scheme (Bearer, or Azure's api-key); raises
        :class:`~tryouts.errors.MissingKeyError` when the service needs a key and none is set."""
        key = get_key(self.key_env)
        if self.preset.key_required and not key:
            raise errors.MissingKeyError(self.key_env or "API key", self.preset.label)
        headers = dict(self.spec.options.get("headers") or {})
        if key and self.preset.auth == "api-key":
            headers["api-key"] = key
        elif key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def load(self) -> None:
        ref = self.spec.options.get("tokenizer")
        if ref is not None and self.token_counter is None:  # before anything is sent: a bad one stops here
            try:
                self.token_counter = await asyncio.to_thread(load_counter, str(ref))
            except errors.UsageError as exc:
                raise errors.UsageError(f"{self.spec.ref}: {exc.message}") from exc
        warm_http_stack()
        _ssl_context()
        headers = {"Accept": "text/event-stream", **self.auth_headers()}
        self._headers = headers
        self._slots = self.client_slots(headers)
        return None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        p = request.params
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [m.model_dump() for m in request.messages],
            "stream": True,
        }
        if self.spec.options.get("include_usage", True):
            body["stream_options"] = {"include_usage": True}
        if p.max_tokens is not None:
            body[self.preset.max_tokens_field] = p.max_tokens
        for name in ("temperature", "top_p", "seed", "stop"):
            value = getattr(p, name)
            if value is not None:
                body[name] = value
        if self.spec.options.get("service_tier"):  # the response says which tier served it: priced at that tier
            body["service_tier"] = str(self.spec.options["service_tier"])
        if not self.spec.options.get("prefix_cache", False):  # repeats are fresh samples (docs/metrics.md)
            body.update(dict(self.preset.fresh_prompt))
        body.update(self.spec.options.get("extra_body") or {})
        return body

    def stream(self, request: Request) -> AsyncIterator[Event]:
        return self.post_stream(
            request, self.chat_url, lambda sse: self._parse(sse.data, sse.t_ns),
            done=lambda sse: sse.data == "[DONE]",
            cut=f"The stream from {self.base_url} ended without a finish reason or [DONE]; "
            "the partial output is kept. Run again, or check the server's logs.",
        )

    def _parse(self, data: str, t_ns: int) -> list[Event]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise errors.ServerError(f"{self.base_url} sent a chunk that is not JSON: {data[:200]!r}") from exc
        if chunk.get("error"):
            err = chunk["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise errors.ServerError(f"{self.preset.label} reported an error mid-stream: {msg}")
        out: list[Event] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                out.append(Delta(t_ns, reasoning, "reasoning"))
            if delta.get("content"):
                out.append(Delta(t_ns, delta["content"], "text"))
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                piece = (fn.get("name") or "") + (fn.get("arguments") or "")
                if piece:
                    out.append(Delta(t_ns, piece, "tool"))
            if choice.get("finish_reason"):
                out.append(Finish(t_ns, choice["finish_reason"]))
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")  # Groq: usage inside x_groq
        if usage:
            out.append(UsageReport(parse_usage(usage, service_tier=chunk.get("service_tier"))))
        if chunk.get("timings"):
            out.append(ServerTimings(chunk["timings"]))
        return out

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        try:
            err = response.json().get("error") or {}
            detail = err.get("message") if isinstance(err, dict) else str(err)
        except (json.JSONDecodeError, AttributeError):
            detail = response.text[:300]
        detail = detail or response.reason_phrase
        return self.status_error(response, self.preset.label, f"HTTP {status}: {detail}",
                                 hints={"model_not_found": "check the name, and that the base URL serves /chat/completions"})


def parse_usage(usage: dict[str, Any], *, service_tier: Any = None) -> Usage:
    """OpenAI usage -> :class:`Usage` (input includes cached reads and cache writes; output includes reasoning).

    ``prompt_tokens_details.cache_write_tokens`` (or the Responses API's ``input_tokens_details``) are the input
    tokens written to the cache, which GPT-5.6 and later models charge at 1.25 times the input price;
    ``service_tier`` is the response's (the tier that served the request: default, flex, priority...). A server
    whose ``total_tokens`` is prompt + completion + reasoning (xAI's) counts reasoning outside
    ``completion_tokens``: it is added to the output, as OpenAI counts it."""
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    output = usage.get("completion_tokens", usage.get("output_tokens"))
    reasoning, total = completion_details.get("reasoning_tokens"), usage.get("total_tokens")
    counts = (prompt, output, reasoning, total)
    if all(isinstance(n, int) and not isinstance(n, bool) for n in counts) and reasoning > 0 \
            and total == prompt + output + reasoning:  # xAI counts reasoning outside completion_tokens (billed as output)
        output += reasoning
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cached_input_tokens=prompt_details.get("cached_tokens"),
        cache_write_tokens=prompt_details.get("cache_write_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens"),
        service_tier=service_tier if isinstance(service_tier, str) else None,
    )
