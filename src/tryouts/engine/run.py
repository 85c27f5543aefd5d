"""Run many cells (prompt x case x model x repeat): concurrent, retried, cached, resumable.

:func:`run_cells` is the one way any run's cells are run (a comparison, a suite, an eval task, a judge
pass): the scheduler (engine/schedule.py) puts them in lanes, an executor (engine/local.py, the in-process
asyncio one, by default) runs them, and a sink (engine/sinks.py) records each result as it completes.
Everything reports through the one event stream (engine/events.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..pricing import PriceOverride
from ..store import Store
from ..types import Result
from .cache import cache_key, trusted_reader
from .events import CellLike, OnEvent, ignore
from .executor import Cancel, Executor, ResultSink, RunContext
from .policy import Policy, Progress
from .schedule import schedule
from .sinks import CallbackSink, StoreSink, write_safely

#: run_cells, and the names callers of the old engine/run.py import from here (Policy, cache_key, write_safely)
__all__ = ["Policy", "Progress", "cache_key", "run_cells", "write_safely"]


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
    stream_deltas: bool = False,
    cancel: Cancel | None = None,
    executor: Executor | None = None,
    budget: Any = None,
    batch_purpose: str = "cells",
) -> Progress:
    """Run every cell not in ``skip``, storing each result as it completes.

    Args:
        cells: what to run; ``(model_index, case_index, repeat_index)`` identifies a cell.
        store, run_id: where results go (one row per cell, enforced by the store).
        policy: concurrency, rate limits, retries, timeouts, cache use.
        skip: cells already recorded (resume).
        cases: case metadata by case_index, stored with each result.
        prices: price overrides by model reference.
        on_event: the typed event stream (engine/events.py).
        allow_cache: False for repeated samples (they must be fresh): the cache is neither read nor filled.
        sink: receives each result instead of the store (``store`` and ``run_id`` are then unused, the cache
            is neither read nor written): for calls that are not cells of a run, such as an LLM judge's.
        stream_deltas: report each streamed chunk (CellDelta), for live views.
        cancel: stops the remaining cells (all, or one model's) from outside; they get no row.
        executor: runs the schedule; the in-process asyncio executor by default.
        budget: a :class:`~tryouts.engine.budget.CostBudget`: cells start only while they fit in it.
        batch_purpose: what batch jobs sent for these cells are recorded as, under ``run_id`` (``cells``; a judge
            pass: ``judge``), so that a resume collects them (engine/batch.py).
    """
    from .local import LocalExecutor

    policy = policy or Policy()
    emit = on_event or ignore
    result_sink: ResultSink = (StoreSink(store, run_id, emit) if sink is None else CallbackSink(sink, emit))
    ctx = RunContext(
        policy=policy, cases=cases or {}, prices=prices or {}, on_event=emit, cancel=cancel or Cancel(),
        cache_get=trusted_reader(store.cache_get) if sink is None and allow_cache and policy.use_cache else None,
        stream_deltas=stream_deltas, budget=budget,
        jobs=store if run_id else None, run_id=run_id or "", batch_purpose=batch_purpose,
    )
    try:
        return await (executor or LocalExecutor()).execute(schedule(cells, policy, skip), result_sink, ctx)
    finally:
        await result_sink.aclose()
