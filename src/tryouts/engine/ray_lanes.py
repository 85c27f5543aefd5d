"""The worker side of the Ray executor (engine/ray_executor.py): one actor per lane, running chunks of cells.

A :class:`LaneWorker` is made into a Ray actor by the driver. It runs the cells it is given with the same code
as the in-process executor (engine/local.py: retries, backoff, Retry-After, timeouts, measuring, scoring), and
returns their results:

* an **API lane** (one provider, server, key variable and model) is an async actor: its cells run concurrently
  up to the lane's concurrency, within its requests- and tokens-per-minute budget, which this one actor holds
  for the whole cluster. It reserves no CPU: waiting on the network needs none.
* a **local-model lane** loads its model once, in an actor placed by resources (``num_gpus``), and feeds it
  its cells (in batches when the model batches).

Keys never travel: a provider made here reads its key from this worker's environment (or keys file), like
any provider (keys.py). Timing validity: an API cell's timings are flagged invalid when this actor's event
loop fell behind while it ran (another process took the CPU, or the lane ran at a concurrency where one loop
inflates TTFT), and a local model's when it ran without a GPU of its own (its node's CPUs are shared).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from time import perf_counter_ns
from typing import Any

from ..providers.http import HTTPProvider
from ..types import Cell, Result
from .execute import warm_up
from .executor import CacheEntry, RunContext, Schedule
from .limits import RateBudget
from .local import _close, _Execution
from .policy import OFFLOAD_AT, LaneLimits, Policy
from .schedule import make_provider
from .throttle import LaneThrottle

#: a cell's timings are invalid when this actor's event loop was this late (ms) while the cell ran
LAG_LIMIT_MS = 5.0
#: how often the loop probe wakes (ms)
PROBE_MS = 10.0

#: what a chunk's call returns for each cell: (model, case, repeat), the result, its cache entry
Returned = tuple[tuple[int, int, int], Result, CacheEntry | None]


def ident(cell: Any) -> tuple[int, int, int]:
    return (cell.model_index, cell.case_index, cell.repeat_index)


class LoopLag:
    """Watches an event loop's lateness: a task sleeps :data:`PROBE_MS` and notes each wake-up later than
    :data:`LAG_LIMIT_MS` (when the CPU was taken, every timestamp taken on this loop was late too)."""

    def __init__(self, limit_ms: float = LAG_LIMIT_MS, keep: int = 4096) -> None:
        self.limit_ms = limit_ms
        self.late: deque[int] = deque(maxlen=keep)  # perf_counter_ns of each late wake-up, in order
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        step = PROBE_MS * 1e6
        while True:
            due = perf_counter_ns() + step
            await asyncio.sleep(PROBE_MS / 1000)
            now = perf_counter_ns()
            if (now - due) / 1e6 > self.limit_ms:
                self.late.append(now)

    def late_between(self, start_ns: int, end_ns: int) -> bool:
        """Whether the loop fell behind between two ``perf_counter_ns`` stamps (the second included: the probe that
        notices a stall wakes once it is over)."""
        late = list(self.late)
        i = bisect.bisect_left(late, start_ns)
        return i < len(late) and late[i] <= end_ns + int(2 * PROBE_MS * 1e6)


class _Collect:
    """The sink of the actor's execution: results by cell, taken when the chunk returns."""

    def __init__(self) -> None:
        self.got: dict[tuple[int, int, int], tuple[Result, CacheEntry | None]] = {}

    def put(self, cell: Any, result: Result, cache: CacheEntry | None = None) -> None:
        self.got[ident(cell)] = (result, cache)

    async def aclose(self) -> None:
        return None


class LaneWorker:
    """One lane's worker (a Ray actor): ``limits`` and ``policy`` as the driver's, ``in_process`` for a local
    model's lane; ``replaces``: made after the lane's previous actor was lost (it waits one rate window)."""

    def __init__(self, limits: LaneLimits, policy: Policy, in_process: bool = False, replaces: bool = False) -> None:
        self.limits, self.policy, self.in_process = limits, policy, in_process
        self.sink = _Collect()
        self.ctx = RunContext(policy=policy)
        self.exe = _Execution(Schedule(lanes=[]), self.sink, self.ctx)
        self.rate: RateBudget | None = limits.rate_budget()
        if self.rate is not None and replaces:  # the lost actor may have used the window's whole budget
            self.rate.fill()
        self.providers: dict[str, tuple[Any, float | None, BaseException | None]] = {}
        self.opening: dict[str, asyncio.Lock] = {}
        # the lane's slots, pace and 429 handling, shared by every chunk this actor runs (engine/throttle.py)
        self.throttle = LaneThrottle(limits.concurrency, ceiling=limits.max_concurrency, adaptive=limits.adaptive,
                                     budget=self.rate)
        self.started = False
        self.turns = asyncio.Lock()
        self.lag = LoopLag()
        self.has_gpu = False

    async def ready(self) -> bool:
        """Answers once the actor is up (the driver waits for it before counting on the lane)."""
        return True

    async def close(self) -> None:
        """Close every provider (a local model leaves memory)."""
        for provider, _, _ in self.providers.values():
            if provider is not None:
                await _close(provider)
        self.providers.clear()

    async def _provider(self, cell: Cell) -> tuple[Any, float | None, BaseException | None]:
        """The cell's model's provider, made, loaded and warmed up once (its load time goes with its first cell)."""
        key = cell.spec.model_dump_json()
        async with self.opening.setdefault(key, asyncio.Lock()):
            if key not in self.providers:
                provider = None
                try:
                    provider = make_provider(cell, self.policy)
                    if isinstance(provider, HTTPProvider):
                        provider.on_response = self.throttle.observe
                    load_ms = await provider.load()
                    warm_ms = await warm_up(provider, self.policy.total_timeout_s or 120.0)
                    if warm_ms is not None:
                        load_ms = (load_ms or 0.0) + warm_ms
                    self.providers[key] = (provider, load_ms, None)
                except Exception as exc:  # every cell of this model fails with the same clear error
                    if provider is not None:
                        await _close(provider)
                    self.providers[key] = (None, None, exc)
                return self.providers[key]
        provider, _, exc = self.providers[key]
        return provider, None, exc

    async def run(self, cells: list[Cell], cases: dict[int, dict]) -> list[Returned]:
        """Run a chunk of this lane's cells; return each one's result (a cell cancelled here returns none)."""
        if not self.started:
            self.started = True
            self.lag.start()
            if self.in_process:
                import ray

                self.has_gpu = bool(ray.get_gpu_ids())
        self.ctx.cases.update(cases)
        if self.in_process:
            async with self.turns:  # a local model generates for one chunk at a time, as on one machine
                await self._run_local(cells)
        else:
            await asyncio.gather(*(self._run_api(c) for c in cells))
        out: list[Returned] = []
        for cell in cells:
            got = self.sink.got.pop(ident(cell), None)
            if got is not None:
                out.append((ident(cell), got[0], got[1]))
        return out

    async def _run_api(self, cell: Cell) -> None:
        provider, load_ms, exc = await self._provider(cell)
        if provider is None:
            self.exe.fail_all([cell], exc or RuntimeError("the model could not be set up"))
            return
        t_wait = perf_counter_ns()
        await self.throttle.acquire()
        try:
            start = perf_counter_ns()
            await self.exe.run_one(provider, cell, (start - t_wait) / 1e6, load_ms, slot=self.throttle,
                                   owner="remote", throttle=self.throttle)
        finally:
            self.throttle.release()
        got = self.sink.got.get(ident(cell))
        if got is not None and got[0].timing_valid:
            late = self.lag.late_between(start, perf_counter_ns())
            got[0].timing_valid = not late and self.throttle.ceiling < OFFLOAD_AT

    async def _run_local(self, cells: list[Cell]) -> None:
        provider, load_ms, exc = await self._provider(cells[0])
        if provider is None:
            self.exe.fail_all(cells, exc or RuntimeError("the model could not be set up"))
            return
        ready = perf_counter_ns()
        size = provider.max_batch
        for start in range(0, len(cells), size):
            chunk = cells[start:start + size]
            queue_ms = (perf_counter_ns() - ready) / 1e6
            if size == 1:
                await self.exe.run_one(provider, chunk[0], queue_ms, load_ms)
            else:
                await self.exe.run_batch(provider, chunk, queue_ms, load_ms)
            load_ms = None
        for cell in cells:  # a model on a node's shared CPUs is never a clean speed sample
            got = self.sink.got.get(ident(cell))
            if got is not None and got[0].timing_valid and not self.has_gpu:
                got[0].timing_valid = False
