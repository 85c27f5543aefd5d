"""Scheduling cells is separate from executing them: the shapes both sides share.

The scheduler (engine/schedule.py) turns a run's cells into a :class:`Schedule`: cells grouped into
*lanes*, one per server (provider name and base URL) with its :class:`~tryouts.engine.policy.LaneLimits`,
plus one lane for the models that run in this process (they take turns, loaded one at a time). An
:class:`Executor` runs a schedule and hands every result to a :class:`ResultSink`; it reports through the
one event stream (engine/events.py) and stops when told through a :class:`Cancel`.

The in-process asyncio executor (engine/local.py) is the first implementation. The interface is written
for the ones to come as well:

* a multi-process load generator runs lanes in worker processes: a lane's cells and limits travel as
  plain data (specs, requests, numbers), never a provider object or a key;
* a Ray executor runs each API lane as one actor holding the lane's limits for the whole cluster, and
  in-process lanes in GPU actors; its sink writes to a shared PostgreSQL ledger.

Sinks are idempotent: a cell's result put twice is stored once (the first wins), so an executor may retry
the delivery of a result, or run a cell again after losing a worker, without a duplicate row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .events import CellLike, OnEvent, ignore
from .policy import LaneLimits, Policy, Progress

if TYPE_CHECKING:
    from ..pricing import PriceOverride
    from ..providers.base import Provider
    from ..types import Result

#: (cache key, model reference, response) filled from a fresh answer, stored with its result
CacheEntry = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class LaneKey:
    """Who serves a lane: a provider name and its server's base URL (None for a provider's default, or for
    the in-process lane, whose provider is ``in-process``)."""

    provider: str
    server: str | None = None


IN_PROCESS = LaneKey("in-process")


@dataclass
class Lane:
    """One server's cells (or the in-process models'), with the limits they run under.

    ``owner``: who holds the machine gate while a request of this lane is timed (engine/gate.py).
    ``providers``: the providers of an API lane, made by the scheduler (the in-process lane makes each
    model's provider when its turn comes, so only one is in memory). ``cells``: by model index, in the
    order to run them.
    """

    key: LaneKey
    limits: LaneLimits
    owner: Hashable
    cells: dict[int, list[CellLike]]
    providers: dict[int, Provider] = field(default_factory=dict)

    @property
    def in_process(self) -> bool:
        return self.key == IN_PROCESS

    def __len__(self) -> int:
        return sum(len(c) for c in self.cells.values())


@dataclass
class Schedule:
    """A run's cells in lanes, and the cells that cannot run (their model could not be set up, and why)."""

    lanes: list[Lane]
    failed: list[tuple[list[CellLike], BaseException]] = field(default_factory=list)

    def cells(self) -> list[CellLike]:
        """Every cell to run, lane by lane."""
        return [c for lane in self.lanes for cs in lane.cells.values() for c in cs]


class Cancel:
    """Stops a run's remaining cells, all of them or one model's. Stopped cells are not recorded (a resume
    runs them); a cell already in flight is cancelled."""

    def __init__(self) -> None:
        self._all = False
        self._models: set[int] = set()
        self._listeners: list[Callable[[int | None], None]] = []

    def stop(self, model_index: int | None = None) -> None:
        """Stop every cell (``model_index`` None) or one model's."""
        if model_index is None:
            self._all = True
        else:
            self._models.add(model_index)
        for listener in list(self._listeners):
            listener(model_index)

    def stopped(self, model_index: int) -> bool:
        """Whether cells of ``model_index`` may no longer start."""
        return self._all or model_index in self._models

    def subscribe(self, listener: Callable[[int | None], None]) -> Callable[[], None]:
        """Call ``listener(model_index or None)`` on each stop; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


class ResultSink(Protocol):
    """Where an executor delivers results. ``put`` must not block the event loop for long; a sink reports
    :class:`~tryouts.engine.events.ResultStored` once a result is recorded. Idempotent per cell."""

    def put(self, cell: CellLike, result: Result, cache: CacheEntry | None = None) -> None: ...

    async def aclose(self) -> None:
        """Record everything put so far; raise :class:`~tryouts.errors.StoreError` when that failed."""
        ...


@dataclass
class RunContext:
    """What an executor needs besides the schedule: how to run (policy), what to attach to each result
    (cases, price overrides), the response cache, the event stream and the cancel switch."""

    policy: Policy = field(default_factory=Policy)
    cases: dict[int, dict] = field(default_factory=dict)
    prices: dict[str, PriceOverride] = field(default_factory=dict)
    #: reads a cached response by key (None: no cache is read or filled)
    cache_get: Callable[[str], dict[str, Any] | None] | None = None
    on_event: OnEvent = ignore
    cancel: Cancel = field(default_factory=Cancel)
    #: report each streamed chunk as a CellDelta (live views); off for big runs
    stream_deltas: bool = False
    #: a cost budget (engine/budget.py): cells start only while they fit in it
    budget: Any = None
    #: where batch jobs are recorded (a :class:`~tryouts.store.Store`), under ``run_id`` and ``batch_purpose``
    #: (``cells``, or ``judge`` for a judge pass over the run); None: batch jobs are not resumable
    jobs: Any = None
    run_id: str = ""
    batch_purpose: str = "cells"


class Executor(Protocol):
    """Runs a :class:`Schedule`, delivering each result to ``sink``; returns the counts."""

    async def execute(self, schedule: Schedule, sink: ResultSink, ctx: RunContext) -> Progress: ...
