"""Load through a provider's own stream: every model reference that is not an OpenAI-compatible endpoint.

Anthropic, Gemini, Cohere, Ollama, Bedrock, Replicate, and models in this process (``hf:``, ``llamacpp:``,
``vllm:``) are driven by their Tryouts provider, the same code that runs them in a suite. Each request's
record is filled from the provider's events: t0 from ``Sent``, a content chunk from each ``Delta`` that
carries text (stamped by the provider when parsed), tokens from ``UsageReport``. A ``RateLimitError`` is
``rate_limited``, a cut or aborted stream ``incomplete``, any other failure ``error``.

The SSE providers' streams are sent and read by a worker process (providers/offload.py), stamped when
their bytes are read, as the raw client does; in-process models stamp each token as it is produced.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from .. import errors
from ..tokens import MAX_TOKENS
from ..types import Delta, Finish, Request, Sent, UsageReport
from .metrics import RequestRecord


class ProviderSender:
    """Sends load-point items (each a :class:`~tryouts.types.Request`) through ``provider``: ``open()`` loads it
    and sends one untimed warm-up (as a suite does), then ``await sender(request, record)`` per request."""

    def __init__(self, provider: Any, *, offload_workers: int = 1) -> None:
        self.provider, self.offload_workers, self.pool = provider, offload_workers, None

    async def open(self) -> None:
        from ..providers.http import HTTPProvider

        await self.provider.load()
        if isinstance(self.provider, HTTPProvider) and self.offload_workers:
            from ..providers.offload import OffloadPool

            self.pool = OffloadPool(self.offload_workers)
            await self.pool.start()
            self.provider.offload = self.pool
        warm = Request(messages=[{"role": "user", "content": "Hi"}], params={"max_tokens": 1})
        try:  # the first request pays connections and lazy imports: never a measured one's
            async for _ in self.provider.stream(warm):
                pass
        except Exception:  # the measured requests report their own failures
            pass

    async def close(self) -> None:
        try:
            await self.provider.aclose()
        finally:
            if self.pool is not None:
                self.pool.close()

    async def __call__(self, request: Request, rec: RequestRecord) -> None:
        finished = False
        try:
            async for ev in self.provider.stream(request):
                if isinstance(ev, Sent):
                    rec.sent_ns = ev.t_ns
                elif isinstance(ev, Delta) and ev.text:
                    if rec.first_ns is None:
                        rec.first_ns = ev.t_ns
                    rec.chunk_ns.append(ev.t_ns)
                elif isinstance(ev, UsageReport):
                    _usage(ev, rec)
                elif isinstance(ev, Finish):
                    finished = True
            if rec.status != "error":
                rec.status = "ok" if rec.chunk_ns else "incomplete"
                if not rec.chunk_ns:
                    rec.error = "the stream ended with no content" + ("" if finished else " and no finish reason")
        except errors.RateLimitError as exc:
            rec.status, rec.error = "rate_limited", exc.message[:300]
            if exc.retry_after is not None:
                rec.rate_limit = {"retry-after": f"{exc.retry_after:g}"}
        except errors.StreamCutError as exc:
            rec.status, rec.error = "incomplete", exc.message[:300]
        except errors.TryoutsError as exc:
            rec.status, rec.error = "error", exc.message[:300]
        except Exception as exc:  # a provider's own bug: this request fails, the point goes on
            rec.status, rec.error = "error", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            rec.done_ns = perf_counter_ns()
            if rec.sent_ns is None:
                rec.sent_ns = rec.done_ns  # failed before it was sent: it took no time of the server's


def _usage(ev: UsageReport, rec: RequestRecord) -> None:
    """The provider's usage; a count no model produces fails the request (as the raw client does)."""
    for value, attr in ((ev.usage.input_tokens, "input_tokens"), (ev.usage.output_tokens, "output_tokens")):
        if value is None:
            continue
        if not 0 <= value <= MAX_TOKENS:
            rec.status, rec.error = "error", f"the server reported {attr} = {value}, which no model produces"
            return
        setattr(rec, attr, value)
