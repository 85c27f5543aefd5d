"""OpenRouter's Batch API (https://openrouter.ai/docs/batch-quickstart, /docs/guides/features/batch-api).

The wire, as OpenRouter documents it (API reference: server ``https://openrouter.ai/api/v1``; the quickstart's
``https://openrouter.ai/api/beta/batches`` is the same API under its beta path)::

    POST   {base}/batches              {"endpoint":"/v1/chat/completions","model":M,"completion_window":"24h",
                                        "requests":[{"custom_id","body":<chat request>}]}   -> 202, "validating"
    GET    {base}/batches/{id}         the batch: status, request_counts, usage; once terminal, ``results``
    GET    {base}/batches/{id}/results?limit=&cursor=   the results a page at a time (``next_cursor``)
    POST   {base}/batches/{id}/cancel  (enabled per organization: 403 elsewhere; 409 once the batch ended)

``{base}`` is the provider's base URL (``OPENROUTER_BASE_URL`` or ``base_url`` move it). ``endpoint`` and
``model`` must come before ``requests`` in the body (the API stream-parses it and answers 400 otherwise), so
the body is written by hand. One model per batch: the batch-level ``model`` applies to every request, whose
bodies leave it out. Up to 5,000 requests and 200 MB per batch.

Statuses: ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed``; ``failed`` (the reason in
``error.message``), ``expired`` and ``cancelled`` end a batch too. A result is ``{"id","custom_id","response":
{"status_code","request_id","body":<chat.completion>},"error":null}`` or one with ``"response":null`` and
``"error":{"type","error_type"?,"message","param"}``. An expired or cancelled batch carries no result rows
(the quickstart): its items come back missing and are sent again, like an item whose error says it expired or
was cancelled. What the server sends is input from outside: ids are percent-encoded, each read is bounded by
:data:`~tryouts.providers.batch.MAX_RESULTS_BYTES`, and a result that is not an object, names no request of the
job or repeats one is skipped and counted.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from .. import errors
from ..types import Request
from .batch import (
    _DETAIL,
    BatchAPI,
    BatchItem,
    BatchJob,
    Collected,
    _gone,
    completion_events,
)

__all__ = ["OpenRouterBatch"]

#: the endpoint every request of a job goes to
ENDPOINT = "/v1/chat/completions"
#: result rows asked for per page of ``GET /batches/{id}/results`` (the most it allows)
PAGE = 1000


class OpenRouterBatch(BatchAPI):
    """OpenRouter's Batch API for chat completions."""

    name = "OpenRouter Batch API"
    max_requests = 5_000
    max_bytes = 200 * 1024 * 1024
    ENDED = ("completed", "failed", "expired", "cancelled")
    #: OpenRouter's canonical error types (``error_type``/``type`` of a failed result) as HTTP statuses
    _STATUS: ClassVar[dict[str, int]] = {
        "invalid_request": 400, "invalid_prompt": 400, "context_length_exceeded": 400, "max_tokens_exceeded": 400,
        "token_limit_exceeded": 400, "string_too_long": 400, "refusal": 400, "authentication": 401,
        "payment_required": 402, "permission_denied": 403, "content_policy_violation": 403, "not_found": 404,
        "timeout": 408, "precondition_failed": 412, "payload_too_large": 413, "unprocessable": 422,
        "rate_limit_exceeded": 429, "server": 500, "unmapped": 500, "provider_unavailable": 503,
        "provider_overloaded": 503}

    def __init__(self, provider: Any, headers: dict[str, str]) -> None:
        super().__init__(provider, headers)
        #: the ``results`` of ended jobs, as their last poll carried them (read once by :meth:`results`)
        self._inline: dict[str, list[Any]] = {}

    @property
    def root(self) -> str:
        return f"{self.base_url}/batches"

    def line(self, custom_id: str, request: Request) -> bytes:
        body = self.body(request)
        body.pop("model", None)  # the batch-level model applies to every request
        return json.dumps({"custom_id": custom_id, "body": body}, separators=(",", ":")).encode()

    async def submit(self, lines: list[bytes], run: str) -> BatchJob:
        """Create the job from ``lines`` (from :meth:`line`); ``endpoint`` and ``model`` before ``requests``."""
        head = json.dumps({"endpoint": ENDPOINT, "model": self.provider.model_name, "completion_window": "24h"},
                          separators=(",", ":")).encode()
        payload = head[:-1] + b',"requests":[' + b",".join(lines) + b"]}"
        return self._job(await self._json("POST", self.root, content=payload,
                                          headers={"content-type": "application/json"}))

    async def poll(self, job_id: str) -> BatchJob:
        return self._job(await self._get(f"{self.root}/{self._id(job_id, 'batch id')}"))

    async def cancel(self, job_id: str) -> None:
        await self._json("POST", f"{self.root}/{self._id(job_id, 'batch id')}/cancel")

    async def _get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON object read from ``url`` (an ended batch carries its results; read up to
        :data:`~tryouts.providers.batch.MAX_RESULTS_BYTES`, as every answer)."""
        return await self._json("GET", url, params=params)

    def _job(self, data: dict[str, Any]) -> BatchJob:
        job_id = data.get("id")
        self._id(job_id, "batch id")
        status = str(data.get("status") or "unknown")[:40]
        failed = None
        if status == "failed":
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            failed = f"the {self.name} refused the job ({str(err.get('message') or 'no reason given')[:_DETAIL]})"
        counts = data.get("request_counts") if isinstance(data.get("request_counts"), dict) else {}
        ended = status in self.ENDED
        if ended and isinstance(data.get("results"), list):
            self._inline[job_id] = data["results"]
        return BatchJob(id=job_id, status=status, ended=ended, failed=failed,
                        counts={k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)})

    async def results(self, job: BatchJob, wanted: set[str]) -> Collected:
        """Each wanted request's outcome in the ended ``job``: the ``results`` its last poll carried, else (a
        completed job whose poll carried none) the pages of ``GET /batches/{id}/results``."""
        got = Collected()
        rows = self._inline.pop(job.id, None)
        if rows is None:
            data = await self._get(f"{self.root}/{self._id(job.id, 'batch id')}")
            rows = data["results"] if isinstance(data.get("results"), list) else None
        if rows is None and job.status == "completed":
            rows = await self._pages(job.id, len(wanted))
        self._collect(rows or [], wanted, got, self._item)
        return got

    async def _pages(self, job_id: str, n: int) -> list[Any]:
        """The rows of ``GET /batches/{id}/results``, page by page (at most what ``n`` requests need, and two
        more); none when this server has no such endpoint (404, 405)."""
        url = f"{self.root}/{self._id(job_id, 'batch id')}/results"
        rows: list[Any] = []
        cursor: str | None = None
        for _ in range(n // PAGE + 3):
            try:
                page = await self._get(url, {"limit": PAGE, **({"cursor": cursor} if cursor else {})})
            except errors.ProviderError as exc:
                if rows or exc.status not in (404, 405):
                    raise
                return []
            data = page.get("data")
            rows.extend(data if isinstance(data, list) else [])
            nxt = page.get("next_cursor")
            if page.get("has_more") is not True or not isinstance(nxt, str) or not nxt or nxt == cursor:
                break
            cursor = nxt[:1000]
        return rows

    def _item(self, cid: str, row: dict[str, Any]) -> BatchItem:
        resp = row.get("response") if isinstance(row.get("response"), dict) else None
        err = row.get("error") if isinstance(row.get("error"), dict) and row.get("error") else None
        status = resp.get("status_code") if resp else None
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            status = None
        if err is None:
            if resp is None or status is None:
                raise errors.BadResponseError(f"The {self.name} sent a result with neither an answer nor an "
                                              f"error: {str(row)[:_DETAIL]}.")
            if status >= 400:
                raise self._error(status, resp.get("body"))
            return BatchItem(cid, events=completion_events(resp.get("body"), self.where()))
        kind = str(err.get("error_type") or err.get("type") or err.get("code") or "error")[:80]
        if "expired" in kind or "cancel" in kind:
            return _gone(cid, f"The request was not run before its batch {'expired' if 'expired' in kind else 'was cancelled'}")
        if status is None or status < 400:
            code = err.get("code")
            ok = isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599
            status = code if ok else self._STATUS.get(kind, 500)
        message = f"{kind}: {str(err.get('message'))[:_DETAIL]}"
        raise self._error(status, {"error": {"message": message, "type": kind, "code": status}})
