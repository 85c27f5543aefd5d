"""A lane's rate budget: requests and tokens per minute over a sliding window."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class RateBudget:
    """Requests and tokens per ``window_s`` (a minute) for one lane.

    :meth:`acquire` waits until one more request fits (fewer than ``requests`` started in the window, and
    fewer than ``tokens`` spent in it), then counts it; :meth:`spend` counts an answer's tokens once known.
    A token budget can only look back: a request is let through while the window's spending is under the
    budget, whatever it will cost. ``clock`` and ``sleep`` are injectable so tests need no real waiting.
    """

    def __init__(
        self,
        requests: float | None = None,
        tokens: float | None = None,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if (requests is not None and requests <= 0) or (tokens is not None and tokens <= 0):
            raise ValueError("rate limits must be positive")
        self.requests, self.tokens, self.window_s = requests, tokens, window_s
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._spent: deque[tuple[float, int]] = deque()
        self._spent_total = 0
        self.waited_s = 0.0  # total time requests waited for this budget (progress says a lane is throttled)

    def _prune(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self.window_s:
            self._starts.popleft()
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent_total -= self._spent.popleft()[1]

    def wait_needed(self) -> float:
        """Seconds until one more request fits (0 when it fits now)."""
        now = self._clock()
        self._prune(now)
        wait = 0.0
        if self.requests is not None and len(self._starts) >= self.requests:
            wait = self._starts[0] + self.window_s - now
        if self.tokens is not None and self._spent_total >= self.tokens and self._spent:
            wait = max(wait, self._spent[0][0] + self.window_s - now)
        return max(0.0, wait)

    async def acquire(self) -> float:
        """Wait until a request fits, count it, and return the seconds waited."""
        waited = 0.0
        while (wait := self.wait_needed()) > 0:
            await self._sleep(wait)
            waited += wait
        self._starts.append(self._clock())
        self.waited_s += waited
        return waited

    def spend(self, tokens: int | None) -> None:
        """Count ``tokens`` (an answer's input plus output) against the token budget."""
        if tokens:
            self._spent.append((self._clock(), int(tokens)))
            self._spent_total += int(tokens)

    def fill(self) -> None:
        """Count the whole budget as used now: a lane's worker made again after a loss does not know what the
        lost one sent, so it waits one window before its first request rather than risk going over."""
        now = self._clock()
        if self.requests is not None:
            self._starts.extend([now] * max(0, int(self.requests) - len(self._starts)))
        if self.tokens is not None:
            self._spent.append((now, int(self.tokens)))
            self._spent_total += int(self.tokens)
