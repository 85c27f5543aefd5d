"""The machine gate: timed work of different owners never overlaps; work of one owner runs concurrently.

Everything that runs on this machine competes for its CPU (and GPU): an in-process model generating,
a llama.cpp server on a loopback port, even the event loop that stamps a remote API's chunks. Timed
together they distort each other's figures: with an in-process model and a local server running at
once, the server's TTFT p90 reached 5.5 s against about 130 ms alone. So the engine gives every
request (and every local model load) an *owner*: ``remote`` for all servers elsewhere, one owner per
server on a loopback address, ``in-process`` for in-process models. Requests of one owner run
together, up to their lane's own concurrency; requests of different owners take turns.

Only requests hold the gate, never a wait: a cell waiting to retry gives it back, so a failing server
never holds back a healthy one. An owner that holds the gate gets no new entries while another owner
waits (no barging), so no owner starves.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class MachineGate:
    """An asyncio gate held by one owner at a time, entered any number of times by that owner."""

    def __init__(self) -> None:
        self._owner: Hashable | None = None
        self._count = 0
        self._waiters: deque[tuple[Hashable, asyncio.Future]] = deque()

    @property
    def owner(self) -> Hashable | None:
        """Who holds the gate now (None when free)."""
        return self._owner

    async def acquire(self, owner: Hashable) -> None:
        """Enter the gate for ``owner``: at once if it is free, or held by ``owner`` with nobody else waiting."""
        if self._count == 0 and not self._waiters:
            self._owner, self._count = owner, 1
            return
        if self._owner == owner and all(w == owner for w, _ in self._waiters):
            self._count += 1
            return
        fut = asyncio.get_running_loop().create_future()
        entry = (owner, fut)
        self._waiters.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif fut.done() and not fut.cancelled():  # granted, then cancelled: give it back
                self.release()
            raise

    def release(self) -> None:
        """Leave the gate; the last one out hands it to the longest-waiting owner (all its waiters at once)."""
        self._count -= 1
        if self._count > 0:
            return
        self._owner = None
        if not self._waiters:
            return
        owner = self._waiters[0][0]
        self._owner = owner
        for entry in [e for e in self._waiters if e[0] == owner]:
            self._waiters.remove(entry)
            if not entry[1].done():
                self._count += 1
                entry[1].set_result(None)
        if self._count == 0:  # every granted waiter was already cancelled
            self._owner = None
            if self._waiters:
                self._count = 1
                self.release()

    @asynccontextmanager
    async def held(self, owner: Hashable) -> AsyncIterator[None]:
        """``async with gate.held(owner):`` around one request."""
        await self.acquire(owner)
        try:
            yield
        finally:
            self.release()
