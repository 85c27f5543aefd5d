"""Result sinks (engine/executor.py): the store writer, and a callback for results that are not rows.

:class:`StoreSink` commits results from a thread, each as soon as it arrives (several in one transaction
when they arrive together), so a crash loses at most the last few milliseconds of results and a resume
runs exactly the cells that have no row. A row the store refuses becomes a failed row saying why, and
the others are kept. Writes are idempotent per cell (Store.add_results). Once a result is committed, the
sink reports :class:`~tryouts.engine.events.ResultStored` on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import errors
from ..types import Cost, Result, Usage
from .events import CellLike, OnEvent, ResultStored, ignore
from .executor import CacheEntry

if TYPE_CHECKING:
    from ..store import Store


def write_safely(store: Store, run_id: str, result: Result, cache: CacheEntry | None = None) -> Exception | None:
    """Write one row; a row the store refuses becomes a failed row saying why, so the run goes on.

    Returns the error only when even that failed row cannot be written (the store itself is unusable).
    """
    try:
        store.add_results(run_id, [result], [cache] if cache is not None else [])
        return None
    except Exception as exc:
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        reason = f"{type(exc).__name__}: {first}"
    stub = result.model_copy(update={
        "ok": False, "error_kind": "store", "usage": Usage(), "cost": Cost(), "scores": None,
        "error": f"This result could not be stored ({reason}); its values are left out. Please report it.",
    })
    try:
        store.add_results(run_id, [stub])
        return None
    except Exception as exc:
        return exc


class StoreSink:
    """Commits results to ``run_id`` from a writer thread; create it inside the running event loop."""

    def __init__(self, store: Store, run_id: str, on_event: OnEvent = ignore) -> None:
        self.store, self.run_id, self._on_event = store, run_id, on_event
        self._loop = asyncio.get_running_loop()
        self._q: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop_writes, name="tryouts-writer", daemon=True)
        self._thread.start()

    def put(self, cell: CellLike, result: Result, cache: CacheEntry | None = None) -> None:
        if self._error is not None:
            raise errors.StoreError(f"Writing results failed: {self._error}")
        self._q.put((cell, result, cache))

    def backlog(self) -> int:
        """Results put and not yet written: an executor that produces faster than the store writes waits while
        this is high, so pending work stays bounded."""
        return self._q.qsize()

    def _stored(self, batch: list[tuple[CellLike, Result, CacheEntry | None]]) -> None:
        for cell, result, _ in batch:
            self._on_event(ResultStored(cell, result))

    def _loop_writes(self) -> None:
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
                self.store.add_results(self.run_id, [r for _, r, _ in batch], [c for _, _, c in batch if c is not None])
            except Exception:  # one bad row must not cost the others: write them one by one
                for _, result, cache in batch:
                    error = write_safely(self.store, self.run_id, result, cache)
                    if error is not None:  # the store itself is gone: surfaced on the next put() and at close
                        self._error = error
            try:
                self._loop.call_soon_threadsafe(self._stored, batch)
            except RuntimeError:  # the loop is closed: nobody listens any more
                pass

    def close(self) -> None:
        """Write what is queued and stop the thread (blocking)."""
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise errors.StoreError(f"Writing results failed: {self._error}")

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


class CallbackSink:
    """Hands each result to ``receive(cell, result)`` (for calls that are not cells of a run, such as an LLM
    judge's); the response cache is neither read nor filled."""

    def __init__(self, receive: Callable[[CellLike, Result], None], on_event: OnEvent = ignore) -> None:
        self._receive, self._on_event = receive, on_event

    def put(self, cell: CellLike, result: Result, cache: CacheEntry | None = None) -> None:
        self._receive(cell, result)
        self._on_event(ResultStored(cell, result))

    async def aclose(self) -> None:
        return None
