"""The in-process executor: a schedule's lanes run concurrently in this process's asyncio event loop.

* An API lane hands out its cells up to its concurrency limit (waiting for a free slot is the cell's
  ``queue_ms``), within its requests- and tokens-per-minute budget when it has one. A server on this
  machine gets an untimed warm-up request first (its time is the model's ``load_ms``).
* The in-process lane loads one model at a time, feeds it its cells (in batches when the provider
  batches), then closes it before the next loads.
* The machine gate (engine/gate.py) keeps timed work of different owners apart.

Around every request: retries with exponential backoff and jitter on retryable failures (429, 5xx,
timeouts, dropped or aborted streams), honouring ``Retry-After`` up to ``max_backoff_s`` (a longer wait
fails the cell, saying so); a cell waiting to retry holds neither its slot nor the gate. Then the cell is
recorded as failed with the last error. The response cache (engine/cache.py) serves a repeated request
when the context allows it; a cached result is flagged and has no timings.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from contextlib import AbstractAsyncContextManager, nullcontext
from time import perf_counter_ns
from typing import Any

from .. import errors
from ..catalog.prices import warm_catalog_prices
from ..pricing import PriceOverride
from ..pricing import warm as warm_prices
from ..providers import warm_local_stack
from ..providers.base import Provider, warm_http_stack
from ..providers.batch import supports_batch
from ..providers.http import HTTPProvider
from ..types import Result
from .cache import cache_entry, cache_key, cached_result
from .events import (
    CellDelta,
    CellLike,
    CellQueued,
    CellRetry,
    CellStarted,
    CellStopped,
    LaneThrottled,
    ModelLoading,
)
from .execute import StoppedMidAnswer, attempt, cell_failed, warm_up
from .executor import Lane, ResultSink, RunContext, Schedule
from .gate import MachineGate
from .limits import RateBudget
from .policy import LaneLimits, Progress
from .schedule import lane_order, make_provider
from .scores import scores_off_loop, warm_scoring
from .throttle import LaneThrottle


def lane_throttle(limits: LaneLimits, lane: Lane, emit: Any) -> LaneThrottle:
    """The :class:`~tryouts.engine.throttle.LaneThrottle` of an API lane, reporting through ``emit``."""
    name = f"{lane.key.provider} ({lane.key.server})"
    return LaneThrottle(limits.concurrency, ceiling=limits.max_concurrency, adaptive=limits.adaptive,
                        budget=limits.rate_budget(), on_change=lambda reason: emit(LaneThrottled(name, reason)))


async def _aiter(items: list) -> Any:
    for item in items:
        yield item


async def _close(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception:  # a provider's failure to clean up must not cost the run's results
        pass


class LocalExecutor:
    """Runs a :class:`~tryouts.engine.executor.Schedule` in the running event loop."""

    async def execute(self, schedule: Schedule, sink: ResultSink, ctx: RunContext) -> Progress:
        return await _Execution(schedule, sink, ctx).run()


class _Execution:
    """One execution of a schedule: its lanes, counts, in-flight cells and the machine gate."""

    def __init__(self, schedule: Schedule, sink: ResultSink, ctx: RunContext) -> None:
        self.schedule, self.sink, self.ctx = schedule, sink, ctx
        self.policy, self.emit = ctx.policy, ctx.on_event
        self.progress = Progress()
        self.gate = MachineGate()  # timed work of different owners never overlaps (engine/gate.py)
        self.one_at_a_time = asyncio.Lock() if ctx.policy.sequential else None
        self.inflight: dict[int, set[asyncio.Task]] = defaultdict(set)
        self.bugs: list[BaseException] = []
        self.offload: Any = None  # the worker processes of offloaded HTTP lanes (providers/offload.py)

    async def run(self) -> Progress:
        cells = self.schedule.cells()
        warm_http_stack()  # before any t0: lazy imports are client overhead, not latency
        warm_prices()  # genai-prices' and the catalog's price data: never loaded on the loop while requests are timed
        warm_catalog_prices()
        warm_local_stack({c.spec.provider for c in cells})  # torch / llama_cpp imports never inside an API TTFT
        warm_scoring(self.ctx.cases.get(c.case_index) for c in cells)  # nor scoring's (nltk, scipy...: seconds)
        for cell_list, exc in self.schedule.failed:
            self.fail_all(cell_list, exc)
        for cell in cells:
            self.emit(CellQueued(cell))
        unsubscribe = self.ctx.cancel.subscribe(self._on_cancel)
        try:
            await asyncio.gather(*(self.in_process_lane(lane) if lane.in_process else self.api_lane(lane)
                                   for lane in self.schedule.lanes))
        finally:
            unsubscribe()
            if self.offload is not None:
                self.offload.close()
        if self.bugs:
            raise self.bugs[0]
        return self.progress

    # ---- recording ----------------------------------------------------------------------------------------

    def record(self, cell: CellLike, result: Result, cache: Any = None) -> None:
        m = cell.model_index
        result.cell_key = getattr(cell, "key", None)
        if result.timing_valid is None and result.ok and not result.cached and not result.batch:
            result.timing_valid = True  # the machine gate kept other timed work apart (an executor may say otherwise)
        self.progress.done[m] += 1
        self.progress.failed[m] += not result.ok
        self.progress.cached[m] += result.cached
        self.sink.put(cell, result, cache)

    def fail_all(self, cell_list: list[CellLike], exc: BaseException) -> None:
        for cell in cell_list:
            self.record(cell, cell_failed(cell, exc, self.ctx.cases))

    def key_for(self, cell: CellLike) -> str | None:
        return cache_key(cell.spec, cell.request) if self.policy.use_cache and self.ctx.cache_get else None

    async def served_from_cache(self, cell: CellLike) -> bool:
        key = self.key_for(cell)
        hit = await asyncio.to_thread(self.ctx.cache_get, key) if key is not None else None
        if hit is not None:
            result = cached_result(cell, hit, self.ctx.cases.get(cell.case_index))
            result.scores = await scores_off_loop(result.case, result)
            self.record(cell, result)
        return hit is not None

    # ---- cancellation -------------------------------------------------------------------------------------

    def _on_cancel(self, model_index: int | None) -> None:
        for m, tasks in self.inflight.items():
            if model_index is None or m == model_index:
                for task in tasks:
                    task.cancel()

    def _track(self, cell: CellLike, task: asyncio.Task) -> None:
        """Keep ``task`` (one cell) cancellable by model; a stopped cell leaves no row, a bug is raised later."""
        m = cell.model_index
        self.inflight[m].add(task)

        def done(t: asyncio.Task) -> None:
            self.inflight[m].discard(t)
            if t.cancelled():
                self.progress.cancelled += 1
            elif t.exception() is not None:
                self.bugs.append(t.exception())
        task.add_done_callback(done)

    async def run_tracked(self, cell: CellLike, coro: Any) -> None:
        """Run one cell's coroutine as a cancellable task and wait for it (outer cancellation passes on)."""
        task = asyncio.ensure_future(coro)
        self._track(cell, task)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})
            raise

    # ---- one cell -----------------------------------------------------------------------------------------

    def _held(self) -> AbstractAsyncContextManager:
        return self.one_at_a_time if self.one_at_a_time is not None else nullcontext()

    async def run_one(
        self, provider: Provider, cell: CellLike, queue_ms: float, load_ms: float | None, *,
        events: list | None = None, slot: asyncio.Semaphore | None = None, owner: Hashable = "in-process",
        budget: RateBudget | None = None, throttle: LaneThrottle | None = None,
    ) -> None:
        """Run one cell with retries; with ``events`` (a batched generation's), measure those instead.

        ``slot``: the lane's semaphore (or its :class:`~tryouts.engine.throttle.LaneThrottle`), held by the
        caller; it is given back while the cell waits to retry (so other cells go on) and taken again before
        the next try, whose queue time then counts that wait. ``throttle`` learns from each try's outcome and
        usage (its rate budget included; ``budget`` is for a lane without one).
        """
        ctx, policy = self.ctx, self.policy
        case = ctx.cases.get(cell.case_index)
        key = self.key_for(cell)
        if events is None and await self.served_from_cache(cell):
            return
        spend = ctx.budget if events is None else None  # the run's cost budget; a local batch costs nothing
        if spend is not None and not spend.try_start(cell):  # no row: a resume runs it, with more budget
            self.progress.cancelled += 1
            return
        override = ctx.prices.get(cell.spec.ref)
        if override is None and "price" in cell.spec.options:
            override = PriceOverride.parse(cell.spec.options["price"], cell.spec.ref)
        on_delta = (lambda d: self.emit(CellDelta(cell, d))) if ctx.stream_deltas else None
        tries = 0
        while True:
            tries += 1
            t_gate = perf_counter_ns()
            if budget is not None:
                await budget.acquire()  # the lane's rate budget: waiting for it is queue time
            started = throttle.started() if throttle is not None else 0.0
            async with self._held():
                await self.gate.acquire(owner)  # never timed while other work runs on this machine
                try:
                    self.emit(CellStarted(cell, tries))
                    result, exc = await attempt(
                        provider, cell.request, on_delta=on_delta,
                        events=_aiter(events) if events is not None else None,
                        queue_ms=queue_ms + (perf_counter_ns() - t_gate) / 1e6,
                        load_ms=load_ms, price_override=override, tokenizer_ref=cell.spec.options.get("tokenizer"),
                        first_token_timeout=policy.first_token_timeout_s, total_timeout=policy.total_timeout_s,
                        model_index=cell.model_index, case_index=cell.case_index, repeat_index=cell.repeat_index,
                    )
                except StoppedMidAnswer as stop:  # no row (a resume runs it); what it measured goes to listeners
                    stop.result.attempts, stop.result.case = tries, case
                    stop.result.cell_key = getattr(cell, "key", None)
                    self.emit(CellStopped(cell, stop.result))
                    raise
                finally:
                    self.gate.release()
            used = (result.usage.input_tokens or 0) + (result.usage.output_tokens or 0)
            if budget is not None:
                budget.spend(used)
            if throttle is not None:
                throttle.spend(used)
                throttle.outcome(exc, started)
            retryable = isinstance(exc, errors.ProviderError) and exc.retryable and events is None
            if result.ok or not retryable or tries > policy.max_retries:
                break
            asked = getattr(exc, "retry_after", None)
            wait = policy.backoff(tries, asked)
            if wait is None:  # the server asks for more than the policy allows: say so rather than wait
                result.error = (f"{result.error} The server asked to wait {asked:g} s before retrying, more than "
                                f"retries.max_backoff_s ({policy.max_backoff_s:g} s): not retried. Raise "
                                "max_backoff_s in the suite's 'retries' to wait that long.")
                break
            self.progress.retries += 1
            self.emit(CellRetry(cell, f"{result.error} (retry {tries}/{policy.max_retries} in {wait:.1f} s)",
                                tries, wait))
            if slot is None:
                await asyncio.sleep(wait)
            else:  # waiting holds no slot: a failing server's retries never hold back the lane's other cells
                slot.release()
                await asyncio.sleep(wait)
                t_wait = perf_counter_ns()
                await slot.acquire()
                queue_ms = (perf_counter_ns() - t_wait) / 1e6
            if ctx.cancel.stopped(cell.model_index):  # stopped while waiting: no row, a resume runs it
                self.progress.cancelled += 1
                return
        if spend is not None:
            spend.finish(cell, result.cost.total if result.cost else None)
        result.attempts, result.case = tries, case
        result.scores = await scores_off_loop(case, result)
        self.record(cell, result, cache_entry(key, cell, result) if result.ok and key is not None else None)

    # ---- models -------------------------------------------------------------------------------------------

    async def open_provider(
        self, lane: Lane, m: int, provider: Provider | None = None, *, warm: bool = True,
    ) -> tuple[Provider | None, float | None]:
        """Create (unless given), load and warm up model ``m``'s provider; the milliseconds are its load time.
        ``warm=False``: no warm-up request (a model sent as batches: nothing of it is timed)."""
        cells = lane.cells[m]
        try:
            provider = provider or make_provider(cells[0], self.policy)
            self.emit(ModelLoading(cells[0]))
            async with self._held(), self.gate.held(lane.owner):  # a load is never beside a timed request
                load_ms = await provider.load()
                warm_ms = await warm_up(provider, self.policy.total_timeout_s or 120.0) if warm else None
            if warm_ms is not None:
                load_ms = (load_ms or 0.0) + warm_ms
            return provider, load_ms
        except Exception as exc:  # every cell of this model fails with the same clear error
            if provider is not None:
                await _close(provider)
            self.fail_all(cells, exc)
            return None, None

    # ---- lanes --------------------------------------------------------------------------------------------

    async def api_lane(self, lane: Lane) -> None:
        """One server's cells, at most its concurrency limit at once, within its rate budget."""
        opened: dict[int, Provider] = {}
        load: dict[int, float | None] = {}
        limits = lane.limits
        throttle = lane_throttle(limits, lane, self.emit)
        batches: list[asyncio.Task] = []
        try:
            for m, made in lane.providers.items():
                if self.ctx.cancel.stopped(m):
                    self.progress.cancelled += len(lane.cells[m])
                    continue
                provider, load[m] = await self.open_provider(lane, m, made, warm=not self.as_batch(m, made))
                if provider is not None:
                    opened[m] = provider
            await self.attach_offload(throttle.ceiling, opened.values())
            for p in opened.values():
                if isinstance(p, HTTPProvider):
                    p.on_response = throttle.observe  # every answer's rate-limit headers reach the lane
            # models sent as batch jobs (engine/batch.py) run beside the lane's streamed cells
            batched = {m for m in opened if self.as_batch(m, opened[m])}
            batches += [asyncio.create_task(self.batch_model(opened[m], m, lane.cells[m])) for m in sorted(batched)]
            ready = perf_counter_ns()  # every cell of a batch is ready at once: queue time counts from here
            for cell in lane_order(lane):
                if cell.model_index not in opened or cell.model_index in batched:
                    continue
                await throttle.acquire()
                if self.ctx.cancel.stopped(cell.model_index):
                    throttle.release()
                    self.progress.cancelled += 1
                    continue
                first_load = load.pop(cell.model_index, None)  # a warm-up's time goes with the model's first cell
                task = asyncio.create_task(self.run_one(
                    opened[cell.model_index], cell, (perf_counter_ns() - ready) / 1e6, first_load,
                    slot=throttle, owner=lane.owner, throttle=throttle))
                self._track(cell, task)
                task.add_done_callback(lambda _: throttle.release())
            while pending := {t for m in opened for t in self.inflight[m] if not t.done()}:
                await asyncio.wait(pending)
            if batches:
                await asyncio.gather(*batches)
        finally:
            for task in batches:
                task.cancel()
            stopping = [task for m in opened for task in self.inflight[m]]
            for task in stopping:
                task.cancel()
            if stopping:  # each reports what it measured (CellStopped) before the lane ends
                await asyncio.wait(stopping, timeout=10)
            for m, provider in lane.providers.items():
                if m in opened or m not in load:  # one that failed to load is closed already
                    await _close(provider)

    def as_batch(self, m: int, provider: Provider) -> bool:
        """Whether model ``m`` goes through its provider's batch API: the policy asks, and the provider has one."""
        return self.policy.wants_batch(m) and supports_batch(provider.spec.provider)

    async def batch_model(self, provider: Provider, m: int, cells: list[CellLike]) -> None:
        """Model ``m``'s cells through its provider's batch API (engine/batch.py); a failure of the batch
        machinery itself fails the cells with the reason, never the run."""
        from .batch import BatchModel

        job = BatchModel(self, provider, m, cells)
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail_all(job.unrecorded(), exc)

    async def attach_offload(self, concurrency: int, providers: Any) -> None:
        """Hand this lane's HTTP providers to worker processes when the policy asks (Policy.offload_workers):
        one pool for the whole run, started by the first lane that needs it, stopped when the run ends."""
        workers = self.policy.offload_workers(concurrency)
        http = [p for p in providers if isinstance(p, HTTPProvider)]
        if not workers or not http:
            return
        if self.offload is None:
            from ..providers.offload import OffloadPool

            self.offload = OffloadPool(workers)
            await self.offload.start()
        for p in http:
            p.offload = self.offload

    async def in_process_lane(self, lane: Lane) -> None:
        """In-process models one at a time: each loaded, fed its cells (in batches when it batches), closed."""
        ready = perf_counter_ns()
        for m, model_cells in lane.cells.items():
            if self.ctx.cancel.stopped(m):
                self.progress.cancelled += len(model_cells)
                continue
            provider, load_ms = await self.open_provider(lane, m)
            if provider is None:
                continue
            try:
                size = provider.max_batch
                for start in range(0, len(model_cells), size):
                    chunk = model_cells[start:start + size]
                    if self.ctx.cancel.stopped(m):
                        self.progress.cancelled += len(chunk)
                        continue
                    queue_ms = max(0.0, (perf_counter_ns() - ready) / 1e6 - (load_ms or 0))
                    first_load = load_ms if start == 0 else None
                    if size == 1:
                        await self.run_tracked(chunk[0], self.run_one(provider, chunk[0], queue_ms, first_load))
                    else:
                        await self.run_batch(provider, chunk, queue_ms, first_load)
            finally:
                await _close(provider)  # a local model leaves memory before the next one loads

    async def run_batch(self, provider: Provider, chunk: list[CellLike], queue_ms: float, load_ms: float | None) -> None:
        todo = [c for c in chunk if not await self.served_from_cache(c)]
        groups: dict[str, list[CellLike]] = defaultdict(list)  # a batch shares its generation parameters
        for c in todo:
            groups[c.request.params.model_dump_json()].append(c)
        for group in groups.values():
            try:
                async with self._held(), self.gate.held("in-process"):
                    outputs = await provider.run_batch([c.request for c in group])
            except Exception:  # the batch failed: try each cell on its own, with retries
                for c in group:
                    await self.run_tracked(c, self.run_one(provider, c, queue_ms, load_ms))
                    load_ms = None
                continue
            for c, events in zip(group, outputs, strict=True):
                await self.run_tracked(c, self.run_one(provider, c, queue_ms, load_ms, events=events))
                load_ms = None
