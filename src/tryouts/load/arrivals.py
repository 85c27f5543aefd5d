"""When each request of a load point is due: an absolute schedule, never a chain of sleeps.

Every request ``i`` gets an offset in seconds from the start of the load point; the dispatcher sends it when
the clock reaches ``start + offset`` (a late dispatcher sends at once and records the lag: relative sleeps
drift below the target rate, about 9 % at 200 requests/s in vLLM issue #21104).

* ``constant``: request ``i`` at ``i / rate`` (the first at 0).
* ``poisson`` with ``burstiness`` (vLLM's semantics): gaps drawn from a gamma distribution of shape
  ``burstiness`` and scale ``1 / (rate * burstiness)`` (mean ``1 / rate``; 1 is a Poisson process, below 1
  burstier, above 1 more even), summed, then scaled so the last of ``n`` requests lands at exactly
  ``n / rate``: every seed offers the same average rate. Seeded: the same seed gives the same schedule.
* ``rate = inf``: every request at 0 (with ``max_concurrency``, a closed loop of that many slots).
* A ramp (``linear`` or ``exponential`` from ``start_rps`` to ``end_rps``) sets each request's rate by its
  index, as vLLM's ``--ramp-up-strategy`` does: linear ``s + (e - s) * i / (n - 1)``, exponential
  ``s * (e / s) ** (i / (n - 1))``; gaps are ``1 / r_i`` (constant) or gamma draws at ``r_i`` (poisson),
  not rescaled.

**Max concurrency and the no-catch-up rule.** With ``max_concurrency``, a request due while every slot is
busy waits for one. When slots free, held requests are not sent in a burst: each goes at the later of its
due time and the previous send plus ``1 / rate`` (:func:`paced_send`), so the server never sees more than
the target rate, and the wait shows as dispatch lag (latency is reported from the due time as well as
from t0). vLLM and guidellm send held requests at once, which offers a burst above the rate asked for.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from ..errors import UsageError

Arrival = Literal["constant", "poisson"]


@dataclass(frozen=True)
class Ramp:
    """A rate that changes with each request's index, from ``start_rps`` to ``end_rps``."""

    strategy: Literal["linear", "exponential"]
    start_rps: float
    end_rps: float

    def rate(self, i: int, n: int) -> float:
        """Request ``i``'s rate (of ``n``)."""
        progress = i / max(n - 1, 1)
        if self.strategy == "linear":
            return self.start_rps + (self.end_rps - self.start_rps) * progress
        return self.start_rps * (self.end_rps / self.start_rps) ** progress

    def check(self) -> None:
        if self.strategy not in ("linear", "exponential"):
            raise UsageError(f"The ramp is linear or exponential, not {self.strategy!r}.")
        if not (self.start_rps > 0 and self.end_rps > 0 and math.isfinite(self.start_rps + self.end_rps)):
            raise UsageError(f"A ramp's start and end rates must be positive requests/s, not {self.start_rps:g} "
                             f"and {self.end_rps:g}.")


def arrival_offsets(
    n: int,
    rate: float,
    *,
    arrival: Arrival = "poisson",
    burstiness: float = 1.0,
    seed: int = 0,
    ramp: Ramp | None = None,
) -> list[float]:
    """The due time of each of ``n`` requests, in seconds from the start (non-decreasing)."""
    if n < 1:
        raise UsageError(f"A load point needs at least one request, not {n}.")
    if ramp is not None:
        ramp.check()
    elif not rate > 0:
        raise UsageError(f"The request rate must be positive (requests/s), not {rate:g}.")
    if not (burstiness > 0 and math.isfinite(burstiness)):
        raise UsageError(f"Burstiness is a positive number (1 = Poisson), not {burstiness:g}.")
    if ramp is None and math.isinf(rate):
        return [0.0] * n
    rng = random.Random(seed)
    gaps = []
    for i in range(n):
        r = ramp.rate(i, n) if ramp is not None else rate
        gaps.append(1.0 / r if arrival == "constant" else rng.gammavariate(burstiness, 1.0 / (r * burstiness)))
    if arrival == "constant":  # the first request at 0, then one gap per request
        gaps = [0.0, *gaps[:-1]]
    offsets, total = [], 0.0
    for gap in gaps:
        total += gap
        offsets.append(total)
    if arrival == "poisson" and ramp is None and offsets[-1] > 0:  # the n-th lands at n / rate (vLLM)
        scale = (n / rate) / offsets[-1]
        offsets = [o * scale for o in offsets]
    return offsets


def paced_send(due_s: float, now_s: float, last_send_s: float | None, rate: float) -> float:
    """When a request may go, given its due time, now (a slot just freed, or the dispatcher woke up), the
    previous send and the target rate: never before it is due, and a request that waited (its due time
    passed) never closer than ``1 / rate`` after the previous send (the no-catch-up rule)."""
    send = max(due_s, now_s)
    if due_s < now_s and last_send_s is not None and math.isfinite(rate) and rate > 0:
        send = max(send, last_send_s + 1.0 / rate)
    return send
