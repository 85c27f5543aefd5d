"""Google's Gemini API, natively: ``streamGenerateContent?alt=sse`` over httpx, with our own SSE parsing.

Model references: ``gemini:MODEL`` (``gemini:gemini-3.8-flash``; ``models/...`` is accepted too). The key
comes from ``GEMINI_API_KEY``, else ``GOOGLE_API_KEY`` (or the variable named by ``api_key_env``) and
travels in the ``x-goog-api-key`` header, never in the URL. ``GEMINI_BASE_URL`` (or ``base_url``) moves
the endpoint, e.g. to a proxy; a base already ending in ``/v1beta`` or ``/v1`` is used as it is.

Wire facts this module relies on (see ``tryouts.testing.dialects.gemini``, which replays them):

* every SSE event is a whole ``GenerateContentResponse``; there is no role-only chunk and no ``[DONE]``:
  the chunk with ``candidates[0].finishReason`` ends the answer, so a stream without one was cut;
* ``usageMetadata`` comes on every chunk with running totals: the last one is the request's usage;
  ``promptTokenCount`` includes ``cachedContentTokenCount``; ``thoughtsTokenCount`` is apart from
  ``candidatesTokenCount`` and Tryouts adds it to the output tokens (they are billed as output);
* thought summaries are parts with ``"thought": true``, sent only when ``includeThoughts`` is asked for
  (the ``thinking_budget`` option does); without them the thinking still happens before the first text;
* a bad key is a 400 ``INVALID_ARGUMENT`` whose details say ``API_KEY_INVALID``, no key a 403; a 429 may
  carry its wait as a ``google.rpc.RetryInfo`` ``retryDelay`` rather than a ``Retry-After`` header.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Usage, UsageReport
from .http import HTTPProvider, retry_after

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_VERSIONS = ("/v1beta", "/v1", "/v1alpha")


class GeminiProvider(HTTPProvider):
    """Streams ``models/{model}:streamGenerateContent`` from the Gemini API (or a proxy speaking it)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = spec.options
        model = spec.model.strip()
        path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        self._model = path.split("/", 1)[1]
        if not self._model:
            raise errors.UsageError(f"{spec.ref!r}: name the model, e.g. gemini:gemini-3.8-flash.")
        self.base_url = self.configured_base_url("GEMINI_BASE_URL", DEFAULT_BASE_URL)
        root = self.base_url if self.base_url.endswith(_VERSIONS) else self.base_url + "/v1beta"
        self.url = f"{root}/{quote(path, safe='/-._~')}:streamGenerateContent?alt=sse"
        budget = opts.get("thinking_budget")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
            raise errors.UsageError(
                f"{spec.ref!r}: thinking_budget wants a whole number of tokens (0 turns thinking off where the "
                f"model allows it, -1 lets the model decide), not {budget!r}."
            )
        extra = opts.get("extra_body")
        if extra is not None and not isinstance(extra, dict):
            raise errors.UsageError(f"{spec.ref!r}: extra_body wants a mapping of request fields, not {extra!r}.")
        self.key_env = opts.get("api_key_env") or KEY_ENVS[0]

    @property
    def model_name(self) -> str:
        return self._model

    async def load(self) -> None:
        key = self.api_key(KEY_ENVS, "Google Gemini")  # the environment, else `tryouts keys set gemini`
        headers = {"Accept": "text/event-stream", **(self.spec.options.get("headers") or {}), "x-goog-api-key": key}
        self._slots = self.client_slots(headers)
        return None

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        system = [{"text": m.content} for m in request.messages if m.role == "system"]
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in request.messages
            if m.role != "system"
        ]
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        p = request.params
        config: dict[str, Any] = {}
        for field, value in (("maxOutputTokens", p.max_tokens), ("temperature", p.temperature),
                             ("topP", p.top_p), ("seed", p.seed), ("stopSequences", p.stop)):
            if value is not None:
                config[field] = value
        budget = self.spec.options.get("thinking_budget")
        if budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
        if config:
            body["generationConfig"] = config
        return _merge(body, self.spec.options.get("extra_body") or {})

    def stream(self, request: Request) -> AsyncIterator[Event]:
        return self.post_stream(
            request, self.url, lambda sse: self._parse(sse.data, sse.t_ns),
            cut=f"The stream from Gemini ({self.base_url}) ended without a finishReason; "
            "the partial output is kept. Run again.",
        )

    def _parse(self, data: str, t_ns: int) -> list[Event]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise errors.ServerError(f"{self.base_url} sent a chunk that is not JSON: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise errors.ServerError(f"{self.base_url} sent a chunk that is not a JSON object: {data[:200]!r}")
        if chunk.get("error"):
            err = chunk["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise errors.ServerError(f"Gemini reported an error mid-stream: {msg}; try again.")
        out: list[Event] = []
        candidates = chunk.get("candidates") or ()
        if candidates:  # only the first: others are alternative answers (candidateCount > 1)
            cand = candidates[0]
            for part in (cand.get("content") or {}).get("parts") or ():
                if part.get("text"):
                    out.append(Delta(t_ns, part["text"], "reasoning" if part.get("thought") else "text"))
                elif part.get("functionCall"):
                    out.append(Delta(t_ns, json.dumps(part["functionCall"], separators=(",", ":")), "tool"))
            if cand.get("finishReason"):
                out.append(Finish(t_ns, cand["finishReason"]))
        else:
            block = (chunk.get("promptFeedback") or {}).get("blockReason")
            if block:
                raise errors.BadRequestError(
                    f"Gemini blocked the prompt (blockReason {block}) and generated nothing; rephrase the "
                    "prompt, or set safetySettings through the extra_body option."
                )
        usage = chunk.get("usageMetadata")
        if usage:
            out.append(UsageReport(parse_usage(usage)))
        return out

    def _http_error(self, response: httpx.Response) -> errors.ProviderError:
        status = response.status_code
        err: dict[str, Any] = {}
        try:
            data = response.json()
            if isinstance(data, list) and data:  # the array form answers errors as a one-element array
                data = data[0]
            err = (data.get("error") or {}) if isinstance(data, dict) else {}
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            pass
        if not isinstance(err, dict):
            err = {"message": str(err)}
        detail = err.get("message") or response.text[:300] or response.reason_phrase
        if err.get("status"):
            detail = f"{err['status']}: {detail}"
        details = [d for d in err.get("details") or () if isinstance(d, dict)]
        reasons = {d.get("reason") for d in details}
        wait_s = retry_after(response.headers.get("retry-after"))
        return self.status_error(
            response, "Gemini", f"HTTP {status}: {detail}",
            kind="auth" if "API_KEY_INVALID" in reasons else None,  # a bad key is a 400 that says so
            retry_after_s=wait_s if wait_s is not None else _retry_delay(details),
            hints={
                "auth": f"check {self.key_env} (create a key at https://aistudio.google.com/apikey)",
                "model_not_found": "check the name (e.g. gemini-3.8-flash) or the base URL",
                "rate_limit": "Lower the concurrency, wait, or check the plan's quota.",
            },
        )


def parse_usage(meta: dict[str, Any]) -> Usage:
    """Gemini ``usageMetadata`` -> :class:`Usage` (input includes cached; output includes thoughts)."""
    thoughts = meta.get("thoughtsTokenCount")
    candidates = meta.get("candidatesTokenCount")
    output = None
    if candidates is not None or thoughts is not None or "totalTokenCount" in meta:  # zero counts are left out
        output = (candidates or 0) + (thoughts or 0)
    return Usage(
        input_tokens=meta.get("promptTokenCount"),
        output_tokens=output,
        cached_input_tokens=meta.get("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "34s"``), or None."""
    for d in details:
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            value = str(d.get("retryDelay", "")).strip().removesuffix("s")
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, merging nested mappings (``generationConfig.topK`` keeps ``maxOutputTokens``)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
