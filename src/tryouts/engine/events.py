"""The engine's one event stream: what happens to a run and its cells, as typed events.

Every run (a comparison, a suite, an eval task, a judge pass) goes through one scheduler and one executor,
which report through one callback, ``on_event(event)``. The CLI's live view and progress bars, the
dashboard's server-sent events and the library's callers all read these; the store writer is a sink
(engine/sinks.py) that reports :class:`ResultStored` once a row is committed, so a reader that looks the
row up on that event always finds it.

In order, for one cell: :class:`CellQueued` (when the run is planned), :class:`ModelLoading` (once per
model, on its first cell), then per try :class:`CellStarted`, :class:`CellDelta` per streamed chunk (only
when the caller asks for deltas), :class:`CellRetry` when the try failed and another follows, and at last
:class:`ResultStored` (or :class:`CellStopped` when it was stopped mid-answer). A run's own events are
:class:`RunRecorded` (its id, as soon as it exists) and
:class:`RunFinished` (its final status); an API lane held back by its limits reports :class:`LaneThrottled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..types import Cell

if TYPE_CHECKING:
    from ..types import Delta, Result


#: what the engine runs: a :class:`~tryouts.types.Cell` (or a subclass, such as a judge's job)
CellLike = Cell


@dataclass(frozen=True, slots=True)
class RunRecorded:
    """The run is in the store under ``run_id`` (pages can link to it from now on)."""

    run_id: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended: ``status`` is done, partial, failed or interrupted."""

    run_id: str | None
    status: str


@dataclass(frozen=True, slots=True)
class CellEvent:
    """Something that happened to one cell."""

    cell: CellLike

    @property
    def model_index(self) -> int:
        return self.cell.model_index


@dataclass(frozen=True, slots=True)
class CellQueued(CellEvent):
    """The cell is planned and waits for its lane."""


@dataclass(frozen=True, slots=True)
class ModelLoading(CellEvent):
    """The cell's model is being loaded (and warmed up); sent once per model, with its first cell."""


@dataclass(frozen=True, slots=True)
class CellStarted(CellEvent):
    """A try of the cell starts now (``attempt`` counts from 1)."""

    attempt: int = 1


@dataclass(frozen=True, slots=True)
class CellDelta(CellEvent):
    """A streamed chunk of the cell's answer, stamped when it arrived."""

    delta: Delta


@dataclass(frozen=True, slots=True)
class CellRetry(CellEvent):
    """A try failed with a retryable error; the next starts in ``wait_s`` seconds."""

    message: str
    attempt: int
    wait_s: float


@dataclass(frozen=True, slots=True)
class ResultStored(CellEvent):
    """The cell's result is recorded (committed to the store, or handed to the caller's sink)."""

    result: Result


@dataclass(frozen=True, slots=True)
class CellStopped(CellEvent):
    """The cell was stopped (cancelled) while it ran: ``result`` is what it had measured so far (partial text,
    TTFT and the other timings of the chunks received, error ``stopped``). The engine records no row for it
    (a resume runs it); a caller that keeps stopped answers (the dashboard) records this result."""

    result: Result


@dataclass(frozen=True, slots=True)
class LaneThrottled:
    """An API lane (``lane``: its provider and server) is held back, and ``reason`` says why (a 429 and its
    Retry-After, the server's advertised limits, the suite's rate_limits); None: it no longer is."""

    lane: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class BatchUpdate:
    """A batch job of model ``model_index`` changed: sent, polled to a new status, or collected. ``counts``:
    the provider's request counts; ``message`` says it in words."""

    model_index: int
    job_id: str
    status: str
    counts: dict[str, int]
    message: str


Event = (BatchUpdate | LaneThrottled | RunRecorded | RunFinished | CellQueued | ModelLoading | CellStarted | CellDelta
         | CellRetry | CellStopped | ResultStored)

#: the one callback every run reports through
OnEvent = Callable[[Event], None]


def ignore(event: Any) -> None:
    """An ``on_event`` that listens to nothing."""
