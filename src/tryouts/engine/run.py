"""Run many cells (prompt x case x model x repeat): concurrent, retried, cached, resumable.

Scheduling:

* Servers: one lane per server (provider name and base URL), each with its own concurrency limit: the
  suite's limit for the provider, else 4 for a remote API and 1 for a server on this machine (llama.cpp's
  server aborts a running request when another arrives). The lane waits for a free slot before handing a
  cell out, and that wait is the cell's ``queue_ms``. A server on this machine gets an untimed warm-up
  request first (its time is the model's ``load_ms``).
* In-process local models: one lane for all of them, one model at a time: loaded once, fed its cells
  one by one, then closed before the next model loads.
* The machine gate (engine/gate.py): requests to remote servers run together, but never beside a request
  to a server on this machine or an in-process model, nor those beside each other: they would share this
  machine's CPU while being timed.

Around every request: retries with exponential backoff and jitter on retryable failures (429, 5xx,
timeouts, dropped or aborted streams), honouring ``Retry-After`` up to ``max_backoff_s`` (a longer wait
fails the cell, saying so); a cell waiting to retry holds neither its slot nor the gate. Then the cell is
recorded as failed with the last error. A response cache (keyed on everything that changes the answer)
serves a repeated request when allowed; a cached result is flagged and has no timings. Results go to a
writer thread that commits each as soon as it arrives (several at once when they arrive together; a row
the store refuses becomes a failed row saying why, and the others are kept), so a crash loses at most the
results of the last few milliseconds, and ``resume`` runs exactly the cells that have no row.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from time import perf_counter_ns
from typing import Any, Protocol

from .. import errors
from ..pricing import PriceOverride
from ..providers import create_provider, get_info, neutral_options, warm_local_stack
from ..providers.base import Provider, is_loopback_url, warm_http_stack
from ..store import Store
from ..types import Cost, ModelSpec, Request, Result, Usage
from .execute import attempt, failed_result, warm_up
from .gate import MachineGate


class CellLike(Protocol):
    model_index: int
    case_index: int
    repeat_index: int
    spec: ModelSpec
    request: Request


@dataclass
class Policy:
    """How cells are run. Defaults suit commercial APIs; suites override them."""

    concurrency: dict[str, int] = field(default_factory=dict)
    default_concurrency: int = 4
    #: servers on this machine (a loopback URL) unless ``concurrency`` names their provider: llama.cpp's server
    #: aborts a running request when another arrives, and any local server shares the CPU with the others
    local_server_concurrency: int = 1
    max_retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    connect_timeout_s: float | None = None
    first_token_timeout_s: float | None = None
    total_timeout_s: float | None = None
    use_cache: bool = True

    def concurrency_for(self, provider: str, on_this_machine: bool = False) -> int:
        """Requests in flight at once on one server of ``provider``: the provider's own limit when set, else 1
        for a server on this machine, else the default."""
        if provider in self.concurrency:
            return max(1, int(self.concurrency[provider]))
        return max(1, int(self.local_server_concurrency if on_this_machine else self.default_concurrency))

    def backoff(self, attempt_no: int, retry_after: float | None) -> float | None:
        """Seconds to wait before try ``attempt_no + 1``: Retry-After when given, else 2^n backoff with jitter,
        never more than ``max_backoff_s``. None when the server asks for a longer wait: the cell then fails."""
        if retry_after is not None:
            if retry_after > self.max_backoff_s:
                return None
            return retry_after + random.uniform(0, min(0.1, self.max_backoff_s - retry_after))
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt_no - 1))
        return base * random.uniform(0.5, 1.0)


@dataclass
class Progress:
    """Counts per model, updated as cells finish."""

    done: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    cached: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    retries: int = 0


#: on_event(kind, cell, payload): "result" (Result), "retry" (error message), "loading" (None)
OnEvent = Callable[[str, Any, Any], None]


def cache_key(spec: ModelSpec, request: Request) -> str:
    """A hash of everything that changes the answer: provider, model, options, messages, parameters (the
    options its registry entry declares neutral, such as timeouts, are left out)."""
    neutral = neutral_options(spec.provider)
    options = {k: v for k, v in sorted(spec.options.items()) if k not in neutral}
    payload = {
        "provider": spec.provider,
        "model": spec.model,
        "options": options,
        "request": request.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def write_safely(store: Store, run_id: str, result: Result, cache: tuple[str, str, dict] | None = None) -> Exception | None:
    """Write one row; a row the store refuses becomes a failed row saying why, so the run goes on.

    Returns the error only when even that failed row cannot be written (the store itself is unusable).
    """
    try:
        if cache is None:
            store.add_result(run_id, result)
        else:
            store.add_results(run_id, [result], [cache])
        return None
    except Exception as exc:
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        reason = f"{type(exc).__name__}: {first}"
    stub = result.model_copy(update={
        "ok": False, "error_kind": "store", "usage": Usage(), "cost": Cost(), "scores": None,
        "error": f"This result could not be stored ({reason}); its values are left out. Please report it.",
    })
    try:
        store.add_result(run_id, stub)
        return None
    except Exception as exc:
        return exc


class ResultWriter:
    """Commits results from a thread, each as soon as it arrives (batched when several are waiting)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self._q: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="tryouts-writer", daemon=True)
        self._thread.start()

    def put(self, result: Result, cache: tuple[str, str, dict] | None = None) -> None:
        if self._error is not None:
            raise errors.StoreError(f"Writing results failed: {self._error}")
        self._q.put((result, cache))

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            try:
                self.store.add_results(self.run_id, [r for r, _ in batch], [c for _, c in batch if c is not None])
            except Exception:  # one bad row must not cost the others: write them one by one
                for result, cache in batch:
                    self._write_one(result, cache)

    def _write_one(self, result: Result, cache: tuple[str, str, dict] | None) -> None:
        error = write_safely(self.store, self.run_id, result, cache)
        if error is not None:  # the store itself is gone: surfaced on the next put() and at close()
            self._error = error

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise errors.StoreError(f"Writing results failed: {self._error}")


def needs_scores(case: dict | None) -> bool:
    """Whether a result of ``case`` is scored as it arrives (it has assertions or an expected answer)."""
    return bool(case and (case.get("asserts") or case.get("expected") is not None))


def warm_scoring(cases: Iterable[dict | None]) -> None:
    """Import the scoring libraries before any request is timed when any of ``cases`` needs scores."""
    if any(needs_scores(c) for c in cases):
        from ..scoring.score import warm_reference_metrics

        warm_reference_metrics()


def case_scores(case: dict | None, result: Result) -> dict | None:
    """Quality scores for a result whose case has assertions or an expected answer (imported only then)."""
    if not needs_scores(case):
        return None
    from ..scoring.score import score_result

    cost = float(result.cost.total) if result.cost.total is not None else None
    return score_result(case, text=result.text, ok=result.ok, e2e_ms=result.timing.e2e_ms, cost_usd=cost)


async def _aiter(items: list) -> Any:
    for item in items:
        yield item


def cached_result(cell: CellLike, response: dict[str, Any], case: dict | None) -> Result:
    """A result served from the cache: flagged, no timings, costs nothing now."""
    return Result(
        model=cell.spec.ref,
        provider=cell.spec.provider,
        model_name=response.get("model_name", cell.spec.model),
        ok=True,
        text=response.get("text", ""),
        reasoning_text=response.get("reasoning_text", ""),
        finish_reason=response.get("finish_reason"),
        started_at=datetime.now(UTC),
        usage=Usage.model_validate(response.get("usage") or {}),
        cost=Cost(total=Decimal(0), input=Decimal(0), output=Decimal(0), source="cache"),
        request=cell.request,
        options=cell.spec.options,
        cached=True,
        case=case,
        model_index=cell.model_index,
        case_index=cell.case_index,
        repeat_index=cell.repeat_index,
    )


async def run_cells(
    cells: Sequence[CellLike],
    *,
    store: Store,
    run_id: str,
    policy: Policy | None = None,
    skip: set[tuple[int, int, int]] | None = None,
    cases: dict[int, dict] | None = None,
    prices: dict[str, PriceOverride] | None = None,
    on_event: OnEvent | None = None,
    allow_cache: bool = True,
    sink: Callable[[CellLike, Result], None] | None = None,
) -> Progress:
    """Run every cell not in ``skip``, storing each result as it completes.

    Args:
        cells: what to run; ``(model_index, case_index, repeat_index)`` identifies a cell.
        store, run_id: where results go (one row per cell, enforced by the store).
        policy: concurrency, retries, timeouts, cache use.
        skip: cells already recorded (resume).
        cases: case metadata by case_index, stored with each result.
        prices: price overrides by model reference.
        on_event: progress callback.
        allow_cache: False for repeated samples (they must be fresh).
        sink: receives each result instead of the store (``store`` and ``run_id`` are then unused, the cache
            is neither read nor written): for calls that are not cells of a run, such as an LLM judge's.
    """
    policy = policy or Policy()
    skip = skip or set()
    cases = cases or {}
    prices = prices or {}
    emit = on_event or (lambda kind, cell, payload: None)
    progress = Progress()
    gate = MachineGate()  # timed work of different owners never overlaps (engine/gate.py)
    warm_http_stack()  # before any t0: lazy imports are client overhead, not latency
    writer = ResultWriter(store, run_id) if sink is None else None

    todo = [c for c in cells if (c.model_index, c.case_index, c.repeat_index) not in skip]
    by_model: dict[int, list[CellLike]] = defaultdict(list)
    for c in todo:
        by_model[c.model_index].append(c)
    specs = {i: cs[0].spec for i, cs in by_model.items()}
    warm_local_stack(s.provider for s in specs.values())  # torch / llama_cpp imports never inside an API TTFT
    warm_scoring(cases.get(c.case_index) for c in todo)  # nor scoring's (nltk, scipy...: seconds)

    def record(cell: CellLike, result: Result, cache: tuple[str, str, dict] | None = None) -> None:
        m = cell.model_index
        progress.done[m] += 1
        if not result.ok:
            progress.failed[m] += 1
        if result.cached:
            progress.cached[m] += 1
        if writer is not None:
            writer.put(result, cache)
        else:
            sink(cell, result)
        emit("result", cell, result)

    def key_for(cell: CellLike) -> str | None:
        # repeats are independent samples: a run that may not read the cache does not fill it either
        return cache_key(cell.spec, cell.request) if policy.use_cache and allow_cache and writer is not None else None

    async def served_from_cache(cell: CellLike) -> bool:
        key = key_for(cell)
        hit = await asyncio.to_thread(store.cache_get, key) if key is not None else None
        if hit is not None:
            result = cached_result(cell, hit, cases.get(cell.case_index))
            result.scores = case_scores(result.case, result)
            record(cell, result)
        return hit is not None

    async def run_one(
        provider: Provider, cell: CellLike, queue_ms: float, load_ms: float | None, events: list | None = None,
        slot: asyncio.Semaphore | None = None, owner: Hashable = "in-process",
    ) -> None:
        """Run one cell with retries; with ``events`` (a batched generation's), measure those instead.

        ``slot``: the lane's semaphore, held by the caller; it is given back while the cell waits to retry (so
        other cells go on) and taken again before the next try, whose queue time then counts that wait.
        """
        case = cases.get(cell.case_index)
        key = key_for(cell)
        if events is None and await served_from_cache(cell):
            return
        override = prices.get(cell.spec.ref)
        if override is None and "price" in cell.spec.options:
            override = PriceOverride.parse(cell.spec.options["price"], cell.spec.ref)
        tries = 0
        while True:
            tries += 1
            t_gate = perf_counter_ns()
            await gate.acquire(owner)  # never timed while other work runs on this machine (engine/gate.py)
            try:
                result, exc = await attempt(
                    provider,
                    cell.request,
                    events=_aiter(events) if events is not None else None,
                    queue_ms=queue_ms + (perf_counter_ns() - t_gate) / 1e6,
                    load_ms=load_ms,
                    price_override=override,
                    tokenizer_ref=cell.spec.options.get("tokenizer"),
                    first_token_timeout=policy.first_token_timeout_s,
                    total_timeout=policy.total_timeout_s,
                    model_index=cell.model_index,
                    case_index=cell.case_index,
                    repeat_index=cell.repeat_index,
                )
            finally:
                gate.release()
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
            progress.retries += 1
            emit("retry", cell, f"{result.error} (retry {tries}/{policy.max_retries} in {wait:.1f} s)")
            if slot is None:
                await asyncio.sleep(wait)
            else:  # waiting holds no slot: a failing server's retries never hold back the lane's other cells
                slot.release()
                await asyncio.sleep(wait)
                t_wait = perf_counter_ns()
                await slot.acquire()
                queue_ms = (perf_counter_ns() - t_wait) / 1e6
        result.attempts, result.case = tries, case
        result.scores = case_scores(case, result)
        cache = None
        if result.ok and key is not None:
            cache = (key, cell.spec.ref, {
                "model_name": result.model_name, "text": result.text, "reasoning_text": result.reasoning_text,
                "finish_reason": result.finish_reason, "usage": result.usage.model_dump(mode="json"),
            })
        record(cell, result, cache)

    def fail_all(cell_list: list[CellLike], exc: BaseException) -> None:
        for cell in cell_list:
            r = failed_result(cell.spec, cell.request, exc, model_index=cell.model_index,
                              case_index=cell.case_index, repeat_index=cell.repeat_index, case=cases.get(cell.case_index))
            record(cell, r)

    def make_provider(m: int) -> Provider | None:
        try:
            provider = create_provider(specs[m])
            if policy.connect_timeout_s and "connect_timeout" in provider.options:
                provider.spec.options.setdefault("connect_timeout", policy.connect_timeout_s)
            return provider
        except Exception as exc:  # every cell of this model fails with the same clear error
            fail_all(by_model[m], exc)
            return None

    async def open_provider(
        m: int, provider: Provider | None = None, owner: Hashable = "in-process",
    ) -> tuple[Provider | None, float | None]:
        """Create (unless given), load and warm up model ``m``'s provider; the milliseconds are its load time."""
        provider = provider or make_provider(m)
        if provider is None:
            return None, None
        try:
            emit("loading", by_model[m][0], None)
            async with gate.held(owner):  # a load or a warm-up is never beside a timed request
                load_ms = await provider.load()
                warm_ms = await warm_up(provider, policy.total_timeout_s or 120.0)
            if warm_ms is not None:
                load_ms = (load_ms or 0.0) + warm_ms
            return provider, load_ms
        except Exception as exc:  # every cell of this model fails with the same clear error
            fail_all(by_model[m], exc)
            return None, None

    async def api_lane(lane: tuple[str, str | None], models: dict[int, Provider], owner: Hashable) -> None:
        """One server's cells (``lane``: provider name and base URL), at most its concurrency limit at once."""
        opened: dict[int, Provider] = {}
        load: dict[int, float | None] = {}
        for m, made in models.items():
            provider, load[m] = await open_provider(m, made, owner)
            if provider is not None:
                opened[m] = provider
        sem = asyncio.Semaphore(policy.concurrency_for(lane[0], is_loopback_url(lane[1])))
        tasks: set[asyncio.Task] = set()
        lane_cells = sorted((c for m in opened for c in by_model[m]),
                            key=lambda c: (c.repeat_index, c.case_index, c.model_index))
        ready = perf_counter_ns()  # every cell of a batch is ready at once: queue time counts from here
        try:
            for cell in lane_cells:
                await sem.acquire()
                first_load = load.pop(cell.model_index, None)  # a warm-up's time goes with the model's first cell
                task = asyncio.create_task(run_one(opened[cell.model_index], cell, (perf_counter_ns() - ready) / 1e6,
                                                   first_load, slot=sem, owner=owner))
                tasks.add(task)
                task.add_done_callback(lambda tk: (tasks.discard(tk), sem.release()))
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for provider in opened.values():
                await provider.aclose()

    async def local_lane(models: list[int]) -> None:
        ready = perf_counter_ns()
        for m in models:
            provider, load_ms = await open_provider(m)
            if provider is None:
                continue
            try:
                model_cells, size = by_model[m], provider.max_batch
                for start in range(0, len(model_cells), size):
                    chunk = model_cells[start:start + size]
                    queue_ms = max(0.0, (perf_counter_ns() - ready) / 1e6 - (load_ms or 0))
                    first_load = load_ms if start == 0 else None
                    if size == 1:
                        await run_one(provider, chunk[0], queue_ms, first_load)
                    else:
                        await run_batch(provider, chunk, queue_ms, first_load)
            finally:
                await provider.aclose()

    async def run_batch(provider: Provider, chunk: list[CellLike], queue_ms: float, load_ms: float | None) -> None:
        todo = [c for c in chunk if not await served_from_cache(c)]
        groups: dict[str, list[CellLike]] = defaultdict(list)  # a batch shares its generation parameters
        for c in todo:
            groups[c.request.params.model_dump_json()].append(c)
        for group in groups.values():
            try:
                async with gate.held("in-process"):
                    outputs = await provider.run_batch([c.request for c in group])
            except Exception:  # the batch failed: try each cell on its own, with retries
                for c in group:
                    await run_one(provider, c, queue_ms, load_ms)
                    load_ms = None
                continue
            for c, events in zip(group, outputs, strict=True):
                await run_one(provider, c, queue_ms, load_ms, events)
                load_ms = None

    # Lanes: one per server (provider name and base URL), so one failing or slow server never holds back
    # another; in-process models share one lane. The machine gate keeps timed work apart: requests to remote
    # servers run together, but never beside a request to a server on a loopback address or an in-process
    # model (nor those beside each other), since they would share this machine's CPU while being timed.
    lanes: dict[tuple[str, str | None], dict[int, Provider]] = defaultdict(dict)
    local_models: list[int] = []
    for m in sorted(by_model):
        try:
            info = get_info(specs[m].provider)
        except errors.TryoutsError as exc:
            fail_all(by_model[m], exc)
            continue
        if info.local:
            local_models.append(m)
            continue
        provider = make_provider(m)
        if provider is not None:
            lanes[(info.name, provider.server)][m] = provider

    def owner_of(lane: tuple[str, str | None], models: dict[int, Provider]) -> Hashable:
        return ("server", *lane) if any(p.on_this_machine for p in models.values()) else "remote"

    try:
        await asyncio.gather(local_lane(local_models),
                             *(api_lane(lane, ms, owner_of(lane, ms)) for lane, ms in lanes.items()))
    finally:
        if writer is not None:
            await asyncio.to_thread(writer.close)
    return progress
