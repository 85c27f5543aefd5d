"""A lane's adaptive limits: how many requests it has in flight and how fast it starts new ones.

Three things hold a lane back, each from a different source:

* **Concurrency, additive increase and multiplicative decrease.** The lane starts at its configured
  concurrency. While cells wait for a slot and nothing is refused, each success adds one slot (slow start)
  until the first 429; after it, each success adds ``1/limit`` (one slot per round of answers). A 429 halves
  the limit, once per round trip: the 429s of requests sent before the last decrease are its echo, not a new
  signal. The limit never goes below 1 nor above the ceiling (``max_concurrency``; the configured concurrency
  when the user fixed it).
* **The server's own limits.** Every answer's rate-limit headers (providers/ratelimits.py) give the lane's
  requests and tokens per minute. The lane paces its starts evenly at :data:`MARGIN` of the tighter of the
  two (tokens per request are averaged from the answers' usage); a start that came late lets the next one
  come one step early, no more. A 429 also lowers the pace by 15 %, and
  successes bring it back slowly, so that a server whose headers undercount is still met.
* **Retry-After.** A 429's wait holds the whole lane, not only the cell that got it: the key is what is
  limited.

The user's hard budgets (a suite's ``rate_limits``) are kept by a :class:`~tryouts.engine.limits.RateBudget`
on top. With ``adaptive: false`` only those and the fixed concurrency apply, as before.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..providers.ratelimits import RateHeaders, parse_rate_headers
from .limits import RateBudget

__all__ = ["MARGIN", "LaneThrottle"]

#: the share of the server's advertised rate a lane paces itself at
MARGIN = 0.97
#: the pace never falls below this share of the advertised rate, however many 429s come
MIN_PACE = 0.3
#: seconds without a wait or a 429 after which a throttled lane is reported free again
CALM_S = 2.0


def _kind(reason: str | None) -> list[str] | None:
    """What a reason is about (its first words), so that a progress line is printed once per change of cause."""
    return reason.split(" ", 3)[:3] if reason else None


class LaneThrottle:
    """The slots and pace of one API lane; use as ``await acquire()`` / ``release()`` around each try.

    ``on_change(reason)`` is called when the lane becomes throttled (``reason`` says why), when the cause
    changes, and when it is no longer throttled (None, after :data:`CALM_S` without a wait). ``clock`` and
    ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        ceiling: int | None = None,
        adaptive: bool = True,
        budget: RateBudget | None = None,
        on_change: Callable[[str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        start = max(1, int(concurrency))
        self.ceiling = max(start, int(ceiling or 0)) if adaptive else start
        self.limit = float(start)
        self.adaptive, self.budget = adaptive, budget
        self._on_change, self._clock, self._sleep = on_change, clock, sleep
        self.in_flight = 0
        self._waiters: deque[asyncio.Future] = deque()
        self.slow_start = True
        self.pace_factor = 1.0
        self.requests_per_minute: float | None = None  # as the server's headers say
        self.tokens_per_minute: float | None = None
        self.avg_tokens: float | None = None
        self._next_start = 0.0
        self.paused_until = 0.0
        self._last_decrease = -math.inf
        self._last_wait = -math.inf
        self.rate_limited = 0  # 429s seen
        self.waited_s = 0.0
        self.reason: str | None = None

    # ---- slots --------------------------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        """Requests the lane may have in flight now."""
        return max(1, int(self.limit))

    async def acquire(self) -> float:
        """Wait for a slot, then until the lane may start a request; returns the seconds waited."""
        t0 = self._clock()
        while self._waiters or self.in_flight >= self.slots:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                self._wake()
                raise
            if self.in_flight < self.slots:
                break
        self.in_flight += 1
        try:
            await self._wait_turn()
        except BaseException:
            self.release()
            raise
        waited = self._clock() - t0
        self.waited_s += waited
        return waited

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.slots - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    # ---- pace ---------------------------------------------------------------------------------------------

    def interval_s(self) -> float:
        """Seconds between starts the server's advertised limits allow (0: no pace known)."""
        rates = []
        if self.requests_per_minute:
            rates.append(self.requests_per_minute / 60.0)
        if self.tokens_per_minute and self.avg_tokens:
            rates.append(self.tokens_per_minute / 60.0 / self.avg_tokens)
        if not rates:
            return 0.0
        return 1.0 / (min(rates) * MARGIN * self.pace_factor)

    async def _wait_turn(self) -> None:
        while True:
            now = self._clock()
            wait = max(self.paused_until - now, self._next_start - now, 0.0)
            if self.budget is not None:
                wait = max(wait, self.budget.wait_needed())
            if wait <= 0:
                break
            self._last_wait = now
            self._say(self._why(now))
            await self._sleep(wait)
        now, step = self._clock(), self.interval_s()
        # a start that came late may be made up by the next one (one step of catch-up, never a burst)
        self._next_start = max(now - step, self._next_start) + step
        if self.budget is not None:
            await self.budget.acquire()  # it fits now: this counts the start
        if self.reason is not None and now - max(self._last_wait, self._last_decrease) > CALM_S:
            self._say(None)

    def _why(self, now: float) -> str:
        if self.paused_until > now:
            return f"the server asked to wait {self.paused_until - now:.1f} s (429 or spent limit)"
        if self.budget is not None and self.budget.wait_needed() > 0:
            return "at the suite's rate_limits"
        per_min = 60.0 / self.interval_s() if self.interval_s() else 0.0
        return f"pacing at {per_min:,.0f} requests/min, {MARGIN * self.pace_factor:.0%} of the server's limits"

    def _say(self, reason: str | None) -> None:
        changed = _kind(reason) != _kind(self.reason)
        self.reason = reason
        if changed and self._on_change is not None:
            self._on_change(reason)

    # ---- what the server said -----------------------------------------------------------------------------

    def observe(self, status: int, headers: Any) -> None:
        """Read one answer's rate-limit headers (a provider calls this as each answer's head arrives)."""
        if not self.adaptive:
            return
        info = parse_rate_headers(headers)
        if info is not None:
            self._learn(info)

    def _learn(self, info: RateHeaders) -> None:
        if info.requests_limit:
            self.requests_per_minute = info.requests_limit
        if info.tokens_limit:
            self.tokens_per_minute = info.tokens_limit
        now = self._clock()
        step = max(self.interval_s(), 0.05)
        for remaining, reset in ((info.requests_remaining, info.requests_reset_s),
                                 (info.tokens_remaining, info.tokens_reset_s)):
            if remaining is not None and remaining < 1 and reset:  # spent: hold until it refills a little
                self.paused_until = max(self.paused_until, now + min(reset, 2 * step))

    def spend(self, tokens: int | None) -> None:
        """Count an answer's input plus output tokens (their average sets the pace under a token limit)."""
        if self.budget is not None:
            self.budget.spend(tokens)
        if tokens:
            self.avg_tokens = tokens if self.avg_tokens is None else 0.9 * self.avg_tokens + 0.1 * tokens

    def started(self) -> float:
        """The time on this throttle's clock, to pass to :meth:`outcome`."""
        return self._clock()

    def outcome(self, exc: BaseException | None, started: float) -> None:
        """Adjust after one try that started at ``started`` (:meth:`started`) and ended in ``exc``."""
        now = self._clock()
        if isinstance(exc, errors.RateLimitError):
            self.rate_limited += 1
            wait = getattr(exc, "retry_after", None)
            if wait:
                self.paused_until = max(self.paused_until, now + min(float(wait), 3600.0))
            if self.adaptive and started >= self._last_decrease:  # one decrease per round trip
                self.limit = max(1.0, self.limit / 2)
                self.pace_factor = max(MIN_PACE, self.pace_factor * 0.85)
                self._last_decrease = now
                self.slow_start = False
                self._next_start = max(self._next_start, now + self.interval_s())
            self._say(self._why(now) if self.paused_until > now else
                      f"429 from the server: concurrency {self.slots} of {self.ceiling}")
        elif exc is None and self.adaptive:
            # grow only while cells queue for a slot, not for the pace: more slots would only wait
            if self._waiters and self.limit < self.ceiling and self._next_start <= now + 0.001:
                self.limit = min(float(self.ceiling), self.limit + (1.0 if self.slow_start else 1.0 / self.limit))
                self._wake()
            if self.pace_factor < 1.0:
                self.pace_factor = min(1.0, self.pace_factor + 0.01)
