"""Over-saturation: the server takes requests slower than they arrive, so its queue and its TTFT keep rising.

A load point is over-saturated when, over its requests in send order, both the number of requests in flight
at each send and the TTFT rise with time, each by a least-squares slope that is positive and significant
(slope over its standard error above ``t_min``, 2 by default, as guidellm's detector asks of its margin of
error), over at least 20 requests, and each grows by a material amount over the point (the queue by 2 requests,
the TTFT by a tenth of its mean). Either alone is not enough: a point can ramp up its concurrency and settle, or see TTFT drift from
the server's own warm-up. A sweep stops raising the rate after an over-saturated point: higher rates only
lengthen the queue.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from .metrics import RequestRecord

#: the fewest answered requests a point is judged on: two noisy slopes over fewer pass 2 standard errors too often
MIN_REQUESTS = 20


class Running:
    """Least-squares sums of (x, y) pairs kept as they come: :meth:`rising` asks what
    :func:`significant_rise` asks of the same pairs, in constant time."""

    __slots__ = ("n", "sx", "sxx", "sxy", "sy", "syy", "x0", "x1")

    def __init__(self) -> None:
        self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy = 0, 0.0, 0.0, 0.0, 0.0, 0.0
        self.x0, self.x1 = math.inf, -math.inf

    def add(self, x: float, y: float) -> None:
        self.n += 1
        self.x0, self.x1 = min(self.x0, x), max(self.x1, x)
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.syy += y * y
        self.sxy += x * y

    def rising(self, *, t_min: float = 2.0, min_points: int = 8, min_growth: float = 0.0) -> bool:
        """:func:`significant_rise` of the pairs so far."""
        n = self.n
        if n < min_points:
            return False
        sxx = self.sxx - self.sx * self.sx / n
        if sxx <= 0:
            return False
        sxy = self.sxy - self.sx * self.sy / n
        syy = self.syy - self.sy * self.sy / n
        slope = sxy / sxx
        resid = max(0.0, syy - slope * sxy)
        se = math.sqrt(resid / (n - 2) / sxx) if n > 2 else math.inf
        return slope > 0 and (se == 0 or slope / se >= t_min) and slope * (self.x1 - self.x0) >= min_growth


#: a queue that grew by fewer requests than this over a point, or a TTFT that grew by less than this share of
#: its mean, is noise, however significant its slope: a calm point judged often would otherwise trip the test
MIN_QUEUE_GROWTH = 2.0
MIN_TTFT_GROWTH = 0.1


class SaturationWatch:
    """Over-saturation seen while a point runs (the same test as :func:`over_saturated`, kept up as requests
    are sent and end): the dispatcher stops sending once both series keep rising, after ``min_seconds`` and
    ``min_points`` answered requests. Constant time per request: nothing slows the loop that stamps."""

    def __init__(self, *, t_min: float = 2.0, min_points: int = MIN_REQUESTS, min_seconds: float = 2.0) -> None:
        self.inflight, self.ttft = Running(), Running()
        self.t_min, self.min_points, self.min_seconds = t_min, min_points, min_seconds

    def sent(self, t_s: float, in_flight: int) -> None:
        """A request sent ``t_s`` seconds into the point, with ``in_flight`` requests then in flight (itself too)."""
        self.inflight.add(t_s, float(in_flight))

    def answered(self, t_sent_s: float, ttft_ms: float) -> None:
        self.ttft.add(t_sent_s, ttft_ms)

    def saturated(self, now_s: float) -> bool:
        if now_s < self.min_seconds or self.ttft.n < self.min_points:
            return False
        mean_ttft = self.ttft.sy / self.ttft.n
        return (self.inflight.rising(t_min=self.t_min, min_points=self.min_points, min_growth=MIN_QUEUE_GROWTH)
                and self.ttft.rising(t_min=self.t_min, min_points=self.min_points,
                                     min_growth=MIN_TTFT_GROWTH * mean_ttft))


def significant_rise(xs: Sequence[float], ys: Sequence[float], *, t_min: float = 2.0, min_points: int = 8,
                     min_growth: float = 0.0) -> bool:
    """Whether ``ys`` rises with ``xs``: a positive least-squares slope at least ``t_min`` standard errors, that
    adds at least ``min_growth`` over the span of ``xs``."""
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
    return slope > 0 and (se == 0 or slope / se >= t_min) and slope * (max(xs) - min(xs)) >= min_growth


def over_saturated(records: Sequence[RequestRecord], *, t_min: float = 2.0) -> bool:
    """Whether both the in-flight count at each send and the TTFT keep rising over the point (module doc)."""
    sent = sorted((r for r in records if r.sent_ns is not None), key=lambda r: r.sent_ns)  # type: ignore[arg-type]
    if len(sent) < MIN_REQUESTS:
        return False
    starts = [r.sent_ns for r in sent]
    ends = sorted(r.done_ns if r.done_ns is not None else r.sent_ns for r in sent)
    t = [(s - starts[0]) / 1e9 for s in starts]  # type: ignore[operator]
    inflight = [bisect.bisect_right(starts, s) - bisect.bisect_right(ends, s) for s in starts]
    with_ttft = [(ti, r.ttft_ms()) for ti, r in zip(t, sent, strict=True) if r.ttft_ms() is not None]
    ttfts = [b for _, b in with_ttft]
    return (significant_rise(t, inflight, t_min=t_min, min_points=MIN_REQUESTS, min_growth=MIN_QUEUE_GROWTH)
            and bool(ttfts) and significant_rise([a for a, _ in with_ttft], ttfts, t_min=t_min,  # type: ignore[misc]
                                                 min_points=MIN_REQUESTS,
                                                 min_growth=MIN_TTFT_GROWTH * sum(ttfts) / len(ttfts)))
