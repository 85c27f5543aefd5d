"""One load point's figures from its per-request rows (docs/metrics.md's definitions).

Each request is a :class:`RequestRecord`: when it was due (the schedule), sent (t0), its first content chunk,
every content chunk, when it ended, its tokens and its status. :func:`summarize` turns a load point's rows
into the figures, keyed as ``vllm bench serve`` keys them where the meaning is the same
(``request_throughput``, ``request_goodput``, ``output_throughput``, ``mean_ttft_ms``, ``p99_ttft_ms``...),
and Tryouts' own beside them:

* TTFT, TPOT, ITL, E2EL from t0 (as vLLM), and ``*_scheduled_ttft_ms`` / ``*_scheduled_e2el_ms`` from the due
  time, so a client backlog cannot hide (coordinated omission); ``*_dispatch_lag_ms``: sent minus due.
* TPOT per request is (E2E − TTFT) / (N_out − 1), only for N_out > 1; ITL pools every gap between content
  chunks; std is the population standard deviation (numpy's, as vLLM); percentiles interpolate linearly.
* SLOs: a request is good when it completed and meets every SLO given (``<=``; TPOT counts as met for
  N_out ≤ 1, as vLLM). ``slo_attainment`` = good / all requests (errors and incomplete ones count as
  misses), ``request_goodput`` = good / duration, ``token_goodput`` = good requests' output tokens / duration.
* Cost at this load: an API's per-token price summed over the completed requests, or a self-hosted server's
  hourly price times the duration; per 1M output tokens and per good request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..stats import percentile

Status = Literal["ok", "error", "rate_limited", "incomplete"]

#: the percentiles every distribution is reported at
PERCENTILES = (50, 90, 95, 99, 99.9)


@dataclass
class RequestRecord:
    """One request of a load point; times are ``perf_counter_ns`` (one monotonic clock per machine)."""

    index: int
    due_ns: int
    sent_ns: int | None = None
    first_ns: int | None = None
    chunk_ns: list[int] = field(default_factory=list)
    done_ns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: Status = "incomplete"
    error: str | None = None
    request_id: str | None = None
    worker: int = 0
    cost_usd: Decimal | None = None
    #: warmup, measured or cooldown (only measured requests enter a point's figures)
    phase: str = "measured"
    #: a 429's Retry-After and rate-limit headers (``x-ratelimit-*``, ``anthropic-ratelimit-*``)
    rate_limit: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def ttft_ms(self) -> float | None:
        return _ms(self.first_ns, self.sent_ns)

    def e2el_ms(self) -> float | None:
        """t0 to the last content chunk."""
        return _ms(self.chunk_ns[-1] if self.chunk_ns else None, self.sent_ns)

    def tpot_ms(self) -> float | None:
        ttft, e2e, n = self.ttft_ms(), self.e2el_ms(), self.output_tokens
        if ttft is None or e2e is None or not n or n <= 1:
            return None
        return (e2e - ttft) / (n - 1)

    def itl_ms(self) -> list[float]:
        return [(b - a) / 1e6 for a, b in zip(self.chunk_ns, self.chunk_ns[1:], strict=False)]

    def to_row(self, base_ns: int) -> dict[str, Any]:
        """This request as a store row (store/schema.py ``load_requests``): times in milliseconds from
        ``base_ns``, the point's start, to the nanosecond."""
        def rel(t: int | None) -> float | None:
            return None if t is None else round((t - base_ns) / 1e6, 6)

        return {"request_index": self.index, "phase": self.phase, "worker": self.worker, "status": self.status,
                "error": self.error, "request_id": self.request_id, "due_ms": rel(self.due_ns),
                "sent_ms": rel(self.sent_ns), "first_ms": rel(self.first_ns), "done_ms": rel(self.done_ns),
                "chunk_ms": [rel(t) for t in self.chunk_ns], "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": str(self.cost_usd) if self.cost_usd is not None else None, "rate_limit": self.rate_limit}

    @classmethod
    def from_row(cls, row: dict[str, Any], base_ns: int = 0) -> RequestRecord:
        """A stored row back as a record (times in nanoseconds from ``base_ns``): :func:`summarize` gives the
        same figures from it as from the original."""
        def ns(ms: float | None) -> int | None:
            return None if ms is None else base_ns + round(ms * 1e6)

        return cls(index=row["request_index"], due_ns=base_ns + round(row["due_ms"] * 1e6), sent_ns=ns(row["sent_ms"]),
                   first_ns=ns(row["first_ms"]), chunk_ns=[base_ns + round(t * 1e6) for t in row["chunk_ms"]],
                   done_ns=ns(row["done_ms"]), input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                   status=row["status"], error=row["error"], request_id=row["request_id"], worker=row["worker"],
                   cost_usd=Decimal(row["cost_usd"]) if row["cost_usd"] is not None else None,
                   phase=row["phase"], rate_limit=row.get("rate_limit"))


def _ms(end: int | None, start: int | None) -> float | None:
    return None if end is None or start is None else (end - start) / 1e6


@dataclass(frozen=True)
class SLO:
    """Targets a good request meets, in milliseconds (None: no target on that figure)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    def met(self, r: RequestRecord) -> bool:
        if not r.ok:
            return False
        checks = (("ttft", self.ttft_ms, r.ttft_ms()), ("tpot", self.tpot_ms, r.tpot_ms()),
                  ("e2el", self.e2el_ms, r.e2el_ms()))
        for name, target, value in checks:
            if target is None:
                continue
            if value is None:
                if name == "tpot":  # N_out <= 1: no TPOT, counted as met (vLLM)
                    continue
                return False
            if value > target:
                return False
        return True

    @property
    def empty(self) -> bool:
        return self.ttft_ms is None and self.tpot_ms is None and self.e2el_ms is None


def _pword(p: float) -> str:
    return str(int(p)) if int(p) == p else str(p)


def distribution(name: str, values: Sequence[float]) -> dict[str, float | None]:
    """``mean_/median_/std_/p50_..._{name}_ms`` of ``values`` (ms), vLLM's key names; None when empty."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    out: dict[str, float | None] = {}
    mean = math.fsum(xs) / len(xs) if xs else None
    out[f"mean_{name}_ms"] = mean
    out[f"median_{name}_ms"] = percentile(xs, 50)
    out[f"std_{name}_ms"] = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / len(xs)) if xs else None
    for p in PERCENTILES:
        out[f"p{_pword(p)}_{name}_ms"] = percentile(xs, p)
    return out


def max_concurrency_seen(records: Iterable[RequestRecord]) -> int:
    """The most requests in flight at once (sent, not yet ended)."""
    events = []
    for r in records:
        if r.sent_ns is not None:
            events.append((r.sent_ns, 1))
            events.append((r.done_ns if r.done_ns is not None else r.sent_ns, -1))
    peak = cur = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        cur += d
        peak = max(peak, cur)
    return peak


def summarize(
    records: Sequence[RequestRecord],
    *,
    start_ns: int,
    end_ns: int,
    slo: SLO | None = None,
    hourly_usd: Decimal | None = None,
) -> dict[str, Any]:
    """The figures of one load point; ``start_ns``..``end_ns`` is its measured window (the first due time
    to the last request's end), ``hourly_usd`` a self-hosted server's price per hour."""
    duration = max((end_ns - start_ns) / 1e9, 1e-9)
    done = [r for r in records if r.ok]
    n_in = sum(r.input_tokens or 0 for r in done)
    n_out = sum(r.output_tokens or 0 for r in done)
    slo = slo or SLO()
    good = [r for r in records if r.ok and slo.met(r)] if not slo.empty else []
    out: dict[str, Any] = {
        "duration": duration,
        "num_prompts": len(records),
        "completed": len(done),
        "failed": sum(r.status in ("error", "rate_limited") for r in records),
        "rate_limited": sum(r.status == "rate_limited" for r in records),
        "incomplete": sum(r.status == "incomplete" for r in records),
        "total_input_tokens": n_in,
        "total_output_tokens": n_out,
        "request_throughput": len(done) / duration,
        "output_throughput": n_out / duration,
        "total_token_throughput": (n_in + n_out) / duration,
        "request_goodput": len(good) / duration if not slo.empty else None,
        "token_goodput": sum(r.output_tokens or 0 for r in good) / duration if not slo.empty else None,
        "slo_attainment": len(good) / len(records) if not slo.empty and records else None,
        "max_concurrent_requests": max_concurrency_seen(records),
    }
    from .saturation import over_saturated as _over  # imports this module's RequestRecord

    out["over_saturated"] = _over(records)
    out |= distribution("ttft", [r.ttft_ms() for r in done])
    out |= distribution("tpot", [t for r in done if (t := r.tpot_ms()) is not None])
    out |= distribution("itl", [g for r in done for g in r.itl_ms()])
    out |= distribution("e2el", [r.e2el_ms() for r in done])
    out |= distribution("scheduled_ttft", [_ms(r.first_ns, r.due_ns) for r in done])
    out |= distribution("scheduled_e2el", [_ms(r.chunk_ns[-1] if r.chunk_ns else None, r.due_ns) for r in done])
    out |= distribution("dispatch_lag", [_ms(r.sent_ns, r.due_ns) for r in records if r.sent_ns is not None])
    out |= cost(records, good, duration, n_out, hourly_usd, slo)
    return out


def cost(records: Sequence[RequestRecord], good: Sequence[RequestRecord], duration: float, n_out: int,
         hourly_usd: Decimal | None, slo: SLO) -> dict[str, Any]:
    """Cost at this load: total, per 1M output tokens and per good request (None when unknown)."""
    if hourly_usd is not None:
        total: Decimal | None = hourly_usd * Decimal(repr(duration)) / Decimal(3600)
    else:
        costs = [r.cost_usd for r in records if r.ok]
        total = None if not costs or any(c is None for c in costs) else sum(costs, Decimal(0))
    per_m = total * Decimal(1_000_000) / Decimal(n_out) if total is not None and n_out else None
    per_good = total / Decimal(len(good)) if total is not None and good else None
    return {
        "cost_usd": str(total) if total is not None else None,
        "cost_per_1m_output_tokens_usd": float(per_m) if per_m is not None else None,
        "cost_per_good_request_usd": float(per_good) if per_good is not None and not slo.empty else None,
    }
