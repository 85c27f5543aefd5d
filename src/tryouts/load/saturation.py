"""Over-saturation: the server takes requests slower than they arrive, so its queue and its TTFT keep rising.

A load point is over-saturated when, over its requests in send order, both the number of requests in flight
at each send and the TTFT rise with time, each by a least-squares slope that is positive and significant
(slope over its standard error above ``t_min``, 2 by default, as guidellm's detector asks of its margin of
error). Either alone is not enough: a point can ramp up its concurrency and settle, or see TTFT drift from
the server's own warm-up. A sweep stops raising the rate after an over-saturated point: higher rates only
lengthen the queue.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from .metrics import RequestRecord


def significant_rise(xs: Sequence[float], ys: Sequence[float], *, t_min: float = 2.0, min_points: int = 8) -> bool:
    """Whether ``ys`` rises with ``xs``: a positive least-squares slope at least ``t_min`` standard errors."""
    n = len(xs)
    if n < min_points:
        return False
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return False
    slope = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    resid = math.fsum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    se = math.sqrt(resid / (n - 2) / sxx) if n > 2 else math.inf
    return slope > 0 and (se == 0 or slope / se >= t_min)


def over_saturated(records: Sequence[RequestRecord], *, t_min: float = 2.0) -> bool:
    """Whether both the in-flight count at each send and the TTFT keep rising over the point (module doc)."""
    sent = sorted((r for r in records if r.sent_ns is not None), key=lambda r: r.sent_ns)  # type: ignore[arg-type]
    if len(sent) < 8:
        return False
    starts = [r.sent_ns for r in sent]
    ends = sorted(r.done_ns if r.done_ns is not None else r.sent_ns for r in sent)
    t = [(s - starts[0]) / 1e9 for s in starts]  # type: ignore[operator]
    inflight = [bisect.bisect_right(starts, s) - bisect.bisect_right(ends, s) for s in starts]
    with_ttft = [(ti, r.ttft_ms()) for ti, r in zip(t, sent, strict=True) if r.ttft_ms() is not None]
    return (significant_rise(t, inflight, t_min=t_min)
            and significant_rise([a for a, _ in with_ttft], [b for _, b in with_ttft], t_min=t_min))  # type: ignore[misc]
