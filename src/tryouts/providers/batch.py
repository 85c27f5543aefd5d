"""Provider batch APIs: many requests sent as one job, answered within a day at a lower price.

* **OpenAI's Batch API** (:class:`OpenAIBatch`): the requests as a JSONL file uploaded with
  ``POST /files`` (``purpose=batch``), a job made with ``POST /batches`` (``endpoint /v1/chat/completions``,
  ``completion_window 24h``), polled with ``GET /batches/{id}`` until ``completed``, ``failed``, ``expired`` or
  ``cancelled``; the answers are in its output file and the failures in its error file
  (``GET /files/{id}/content``).
* **Anthropic's Message Batches** (:class:`AnthropicBatch`): ``POST /v1/messages/batches`` with the requests
  inline, polled until ``processing_status`` is ``ended``; the answers are JSONL at the batch's ``results_url``.
* **OpenRouter's Batch API** (:class:`~tryouts.providers.batch_openrouter.OpenRouterBatch`): ``POST /batches``
  on the base URL with ``endpoint``, ``model`` and the requests inline, polled until ``completed``, ``failed``,
  ``expired`` or ``cancelled``; the answers are the ``results`` of the ended batch.

Each request is named by a ``custom_id`` (a cell's key). An answer comes back as the events a stream would
have given, without times (a batch has no timing), or as the error the same failure would have raised when
streamed, so retries, scoring and pricing treat both alike. An item that expired or was cancelled, or failed
with a retryable error, is marked to be sent again.

What a server sends is input from outside: a job or file id goes into a URL only percent-encoded, a
``results_url`` is followed only on the provider's own host (the key is never sent elsewhere), result files
are read up to :data:`MAX_RESULTS_BYTES`, and a line that is not JSON, names no request of the job or repeats
one is skipped and counted.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from .. import errors
from ..types import Delta, Event, Finish, Request, UsageReport
from .http import decoded, read_capped, same_origin, transport_error

__all__ = ["MAX_RESULTS_BYTES", "AnthropicBatch", "BatchAPI", "BatchItem", "BatchJob", "batch_api"]

#: a job's results are read up to this many bytes (each file); a server cannot make Tryouts hold more
MAX_RESULTS_BYTES = 1 << 30
#: the most characters of a server's message kept in an error
_DETAIL = 300


@dataclass
class BatchJob:
    """A job as the provider last described it."""

    id: str
    status: str
    ended: bool = False
    #: why the whole job failed (validation), or None
    failed: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    #: what collecting the results needs: file ids (OpenAI), the results URL (Anthropic)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchItem:
    """One request's outcome in a job: ``events`` for an answer, else ``error``; ``resend``: send it again."""

    custom_id: str
    events: list[Event] | None = None
    error: errors.ProviderError | None = None
    resend: bool = False


@dataclass
class Collected:
    """A job's items by custom id, and how many lines were skipped (not JSON, unknown or repeated ids)."""

    items: dict[str, BatchItem] = field(default_factory=dict)
    skipped: int = 0


class BatchAPI:
    """What both batch APIs share: the provider's key and headers, bounded reads, the id checks."""

    #: requests and bytes one job may hold (the provider's documented limits)
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    name = "batch"

    def __init__(self, provider: Any, headers: dict[str, str]) -> None:
        self.provider = provider
        self.base_url: str = provider.base_url
        opts = provider.spec.options
        self.client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(float(opts.get("timeout", 600)),
                                                   connect=float(opts.get("connect_timeout", 10))))

    async def aclose(self) -> None:
        await self.client.aclose()

    def body(self, request: Request) -> dict[str, Any]:
        """The provider's request body for ``request``, not streamed."""
        body = dict(self.provider.body(request))
        body.pop("stream", None)
        body.pop("stream_options", None)
        body.pop("service_tier", None)  # a batch is its own processing tier, priced at the batch price
        return body

    def where(self) -> str:
        return f"{self.provider.spec.provider} batch API ({self.base_url})"

    async def _body(self, method: str, url: str, **kw: Any) -> bytes:
        """The body of a successful answer, read up to :data:`MAX_RESULTS_BYTES`; an error status becomes the
        provider's error (its body read up to 64 KB), a transport failure Tryouts' own."""
        buf = bytearray()
        try:
            async with self.client.stream(method, url, **kw) as response:
                if response.status_code >= 400:
                    raise self.provider._http_error(await read_capped(response))
                async for chunk in decoded(response, self.where(), limit=MAX_RESULTS_BYTES):
                    buf += chunk
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.where()) from exc
        return bytes(buf)

    async def _json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        """A JSON object answered to ``method url`` (read as :meth:`_body` reads)."""
        body = await self._body(method, url, **kw)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise errors.BadResponseError(f"{self.where()} answered {method} {url} with something that is not a "
                                          f"JSON object: {body[:_DETAIL]!r}.")
        return data

    async def _lines(self, url: str) -> Iterable[Any]:
        """The JSON values of a JSONL file at ``url``, read up to :data:`MAX_RESULTS_BYTES` (None for a bad line)."""
        out: list[Any] = []
        buf = b""
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise self.provider._http_error(await read_capped(response))
                async for chunk in decoded(response, self.where(), limit=MAX_RESULTS_BYTES):
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    out.extend(_loads(line) for line in lines if line.strip())
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.where()) from exc
        if buf.strip():
            out.append(_loads(buf))
        return out

    def _id(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value or len(value) > 256:
            raise errors.BadResponseError(f"{self.where()} sent a {what} that is not an id: {str(value)[:80]!r}.")
        return urllib.parse.quote(value, safe="")

    def _collect(self, lines: Iterable[Any], wanted: set[str], got: Collected, parse: Any) -> None:
        for line in lines:
            cid = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(cid, str) or cid not in wanted or cid in got.items:
                got.skipped += 1
                continue
            try:
                got.items[cid] = parse(cid, line)
            except errors.ProviderError as exc:
                got.items[cid] = BatchItem(cid, error=exc, resend=exc.retryable)

    def _error(self, status: int, body: Any) -> errors.ProviderError:
        """The error a streamed request answered ``status`` with ``body`` would have raised."""
        response = httpx.Response(status, json=body if body is not None else {},
                                  request=httpx.Request("POST", self.base_url))
        return self.provider._http_error(response)


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _gone(cid: str, why: str) -> BatchItem:
    return BatchItem(cid, error=errors.ServerError(f"{why}."), resend=True)


class OpenAIBatch(BatchAPI):
    """OpenAI's Batch API for ``/v1/chat/completions``."""

    name = "OpenAI Batch API"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    ENDED = ("completed", "failed", "expired", "cancelled")

    def line(self, custom_id: str, request: Request) -> bytes:
        return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                           "body": self.body(request)}, separators=(",", ":")).encode() + b"\n"

    async def submit(self, lines: list[bytes], run: str) -> BatchJob:
        """Upload ``lines`` (from :meth:`line`) and create the job."""
        upload = await self._json("POST", f"{self.base_url}/files", data={"purpose": "batch"},
                                  files={"file": ("tryouts-batch.jsonl", b"".join(lines), "application/jsonl")})
        file_id = upload.get("id")
        self._id(file_id, "file id")
        data = await self._json("POST", f"{self.base_url}/batches", json={
            "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
            "metadata": {"tryouts_run": run[:512]}})
        return self._job(data)

    async def poll(self, job_id: str) -> BatchJob:
        return self._job(await self._json("GET", f"{self.base_url}/batches/{self._id(job_id, 'job id')}"))

    async def cancel(self, job_id: str) -> None:
        await self._json("POST", f"{self.base_url}/batches/{self._id(job_id, 'job id')}/cancel")

    def _job(self, data: dict[str, Any]) -> BatchJob:
        self._id(data.get("id"), "batch id")
        status = str(data.get("status") or "unknown")
        failed = None
        if status == "failed":
            errs = (data.get("errors") or {}).get("data") if isinstance(data.get("errors"), dict) else None
            lines = [f"line {e.get('line')}: {e.get('message')}" for e in (errs or []) if isinstance(e, dict)][:5]
            failed = f"the {self.name} refused the job ({'; '.join(lines) or 'no reason given'})"
        counts = data.get("request_counts") if isinstance(data.get("request_counts"), dict) else {}
        return BatchJob(id=data["id"], status=status, ended=status in self.ENDED, failed=failed,
                        counts={k: v for k, v in counts.items() if isinstance(v, int)},
                        info={k: data.get(k) for k in ("input_file_id", "output_file_id", "error_file_id")})

    async def results(self, job: BatchJob, wanted: set[str]) -> Collected:
        """Each wanted request's outcome in the ended ``job``'s output and error files."""
        got = Collected()
        for key in ("output_file_id", "error_file_id"):
            file_id = job.info.get(key)
            if file_id:
                url = f"{self.base_url}/files/{self._id(file_id, 'file id')}/content"
                self._collect(await self._lines(url), wanted, got, self._item)
        return got

    def _item(self, cid: str, line: dict[str, Any]) -> BatchItem:
        err = line.get("error")
        if isinstance(err, dict) and err:
            code = str(err.get("code") or "error")
            if code in ("batch_expired", "batch_cancelled"):
                return _gone(cid, f"The request was not run before its batch {code.split('_')[1]}")
            raise errors.ServerError(f"The {self.name} failed this request ({code}: "
                                     f"{str(err.get('message'))[:_DETAIL]}).")
        response = line.get("response") if isinstance(line.get("response"), dict) else {}
        status = response.get("status_code")
        body = response.get("body")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise errors.BadResponseError(f"The {self.name} sent a result with no HTTP status: {str(line)[:_DETAIL]}.")
        if status >= 400:
            raise self._error(status, body)
        return BatchItem(cid, events=completion_events(body, self.where()))


def completion_events(body: Any, where: str) -> list[Event]:
    """A non-streamed ``chat.completion`` as the events its stream would have given (no times)."""
    from .openai_compat import parse_usage

    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise errors.BadResponseError(f"{where} sent an answer with no choices: {str(body)[:_DETAIL]!r}.")
    choice = body["choices"][0] if isinstance(body["choices"][0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    out: list[Event] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.append(Delta(0, reasoning, "reasoning"))
    if isinstance(message.get("content"), str) and message["content"]:
        out.append(Delta(0, message["content"], "text"))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
        piece = str(fn.get("name") or "") + str(fn.get("arguments") or "")
        if piece:
            out.append(Delta(0, piece, "tool"))
    if isinstance(body.get("usage"), dict):
        out.append(UsageReport(parse_usage(body["usage"])))
    if choice.get("finish_reason"):
        out.append(Finish(0, str(choice["finish_reason"])))
    return out


class AnthropicBatch(BatchAPI):
    """Anthropic's Message Batches."""

    name = "Anthropic Message Batches"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024
    _STATUS: ClassVar[dict[str, int]] = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
               "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
               "overloaded_error": 529}

    @property
    def root(self) -> str:
        return self.provider.url + "/batches"  # .../v1/messages/batches

    def line(self, custom_id: str, request: Request) -> bytes:
        return json.dumps({"custom_id": custom_id, "params": self.body(request)}, separators=(",", ":")).encode()

    async def submit(self, lines: list[bytes], run: str) -> BatchJob:
        payload = b'{"requests":[' + b",".join(lines) + b"]}"
        return self._job(await self._json("POST", self.root, content=payload,
                                          headers={"content-type": "application/json"}))

    async def poll(self, job_id: str) -> BatchJob:
        return self._job(await self._json("GET", f"{self.root}/{self._id(job_id, 'batch id')}"))

    async def cancel(self, job_id: str) -> None:
        await self._json("POST", f"{self.root}/{self._id(job_id, 'batch id')}/cancel")

    def _job(self, data: dict[str, Any]) -> BatchJob:
        self._id(data.get("id"), "batch id")
        status = str(data.get("processing_status") or "unknown")
        counts = data.get("request_counts") if isinstance(data.get("request_counts"), dict) else {}
        return BatchJob(id=data["id"], status=status, ended=status == "ended",
                        counts={k: v for k, v in counts.items() if isinstance(v, int)},
                        info={"results_url": data.get("results_url")})

    def results_url(self, job: BatchJob) -> str:
        """The job's ``results_url`` when it is on the provider's own scheme, host and port; else the documented
        path. The key goes with the request: never to a host the server names."""
        ours = f"{self.root}/{self._id(job.id, 'batch id')}/results"
        given = job.info.get("results_url")
        if isinstance(given, str) and same_origin(given, self.base_url):
            return given
        return ours

    async def results(self, job: BatchJob, wanted: set[str]) -> Collected:
        got = Collected()
        self._collect(await self._lines(self.results_url(job)), wanted, got, self._item)
        return got

    def _item(self, cid: str, line: dict[str, Any]) -> BatchItem:
        result = line.get("result") if isinstance(line.get("result"), dict) else {}
        kind = result.get("type")
        if kind == "succeeded":
            return BatchItem(cid, events=message_events(result.get("message"), self.where()))
        if kind in ("expired", "canceled"):
            return _gone(cid, f"The request was not run before its batch {'expired' if kind == 'expired' else 'was cancelled'}")
        if kind == "errored":
            body = result.get("error") if isinstance(result.get("error"), dict) else {}
            inner = body.get("error") if isinstance(body.get("error"), dict) else {}
            raise self._error(self._STATUS.get(str(inner.get("type")), 500), body)
        raise errors.BadResponseError(f"The {self.name} sent a result of unknown type {str(kind)[:40]!r}.")


def message_events(message: Any, where: str) -> list[Event]:
    """An Anthropic Message as the events its stream would have given (no times)."""
    from .anthropic import parse_usage

    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise errors.BadResponseError(f"{where} sent a result with no message: {str(message)[:_DETAIL]!r}.")
    out: list[Event] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            out.append(Delta(0, block["text"], "text"))
        elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str) and block["thinking"]:
            out.append(Delta(0, block["thinking"], "reasoning"))
        elif block.get("type") in ("tool_use", "server_tool_use") and block.get("name"):
            out.append(Delta(0, str(block["name"]) + json.dumps(block.get("input") or {}), "tool"))
    if isinstance(message.get("usage"), dict):
        out.append(UsageReport(parse_usage(message["usage"])))
    out.append(Finish(0, str(message.get("stop_reason") or "end_turn")))
    return out


def batch_api(provider: Any) -> BatchAPI | None:
    """The batch API of an opened ``provider`` (its key loaded), or None when its service has none that Tryouts
    speaks: OpenAI's (the ``openai`` provider), Anthropic's and OpenRouter's (the ``openrouter`` provider)."""
    from .anthropic import AnthropicProvider
    from .openai_compat import OpenAICompatProvider

    if isinstance(provider, AnthropicProvider):
        headers = {k: v for k, v in provider._slots.headers.items() if k.lower() != "accept"}
        return AnthropicBatch(provider, headers)
    if isinstance(provider, OpenAICompatProvider) and provider.spec.provider == "openai":
        return OpenAIBatch(provider, provider.auth_headers())
    if isinstance(provider, OpenAICompatProvider) and provider.spec.provider == "openrouter":
        from .batch_openrouter import OpenRouterBatch

        return OpenRouterBatch(provider, provider.auth_headers())
    return None


def supports_batch(provider_name: str) -> bool:
    """Whether a provider of this name has a batch API Tryouts speaks (before anything is opened)."""
    return provider_name in ("openai", "anthropic", "openrouter")
