"""Live comparisons started from the dashboard: one prompt through several models, streamed as events.

A :class:`LiveRun` runs :func:`tryouts.usecases.compare.compare` in the server's event loop (results are stored
as each model finishes, as with ``tryouts compare``) and keeps every event it produced, so a browser that
connects late, or reconnects, gets the whole history first. Events (the ``data`` of server-sent events, JSON):

* ``{"type": "run", "run_id", "models": [...]}`` first;
* ``{"type": "loading"|"started", "model": i}``;
* ``{"type": "delta", "model": i, "text", "elapsed_ms", "chars"}`` per chunk, ``elapsed_ms`` from the model's
  request start as Tryouts stamped it;
* ``{"type": "result", "model": i, "result": {flat stored result}}`` when a model is done (its figures
  are the stored ones);
* ``{"type": "end", "status"}`` last (``done``, ``partial``, ``failed`` or ``stopped``).

A finished comparison's events are released :data:`RELEASE_AFTER_S` seconds after its end (its run is in the
store by then, and its page reads it from there), so a long-running server does not keep every output.

Stopping cancels the models still running (or one model: :meth:`LiveRuns.stop_model`); what finished stays
stored, and each model cut short is stored as a failed result ("Stopped from the dashboard") with what it had
measured so far: its text, TTFT, chunks and end-to-end time up to the stop (the engine's
:class:`~tryouts.engine.events.CellStopped`), and sent as its ``result`` event. A model stopped before it
started is stored the same way, with no text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from ..errors import TryoutsError
from ..redact import redact
from ..store import Store
from ..types import finished_status

RELEASE_AFTER_S = 60.0
"""How long a finished comparison's events stay for late or reconnecting streams (the run itself is stored)."""


@dataclass
class LiveRun:
    """One live comparison and its event history."""

    key: str
    models: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    done: bool = False
    task: asyncio.Task | None = None
    cancel: Any = None  # the engine's Cancel: stops one model (stop_model) or all
    finished: set[int] = field(default_factory=set)  # models with a stored row
    stopping: set[int] = field(default_factory=set)  # models stopped one by one
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    def emit_soon(self, event: dict[str, Any]) -> None:
        """Record an event and wake the streams (call from the event loop's thread)."""
        self.events.append(event)
        self._new.set()

    async def stream(self, start: int = 0):
        """Yield events from index ``start`` on, waiting for new ones, until the end event."""
        i = start
        while True:
            while i < len(self.events):
                yield i, self.events[i]
                if self.events[i]["type"] == "end":
                    return
                i += 1
            self._new.clear()
            if i >= len(self.events):  # checked after clearing: an event added meanwhile is not missed
                await self._new.wait()


class LiveRuns:
    """The live comparisons of this server, by key."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.runs: dict[str, LiveRun] = {}

    def start(self, key: str, prompt: str, models: list[str], *, system: str | None, params: Any,
              options: list[dict[str, Any]], case: dict[str, Any] | None = None) -> LiveRun:
        from ..config import price_overrides
        from ..engine import events as ev
        from ..engine.execute import failed_result
        from ..engine.executor import Cancel
        from ..engine.scores import case_scores
        from ..errors import StoppedError
        from ..types import ModelSpec
        from ..usecases.compare import build_request, compare

        specs = [ModelSpec.parse(m, o) for m, o in zip(models, options, strict=True)]
        live = LiveRun(key=key, models=[redact(s.ref) for s in specs], cancel=Cancel())
        self.runs[key] = live
        started: dict[int, int] = {}
        partial: dict[int, list[str]] = {i: [] for i in range(len(specs))}
        finished = live.finished
        store = self.store
        request = build_request(prompt, system, params)

        def keep_stopped(i: int, r: Any) -> None:
            """Store model ``i``'s stopped answer (what it measured, or nothing) and send it as its result."""
            if live.run_id is None or i in finished:
                return
            if r is None:
                r = failed_result(specs[i], request, StoppedError("Stopped from the dashboard"), model_index=i)
                r.text = "".join(partial[i])
            r.error, r.error_kind = "Stopped from the dashboard", "stopped"
            if case:  # scored like any failed answer (its checks fail), so the grid says so
                r.case, r.scores = case, case_scores(case, r)
            store.add_results(live.run_id, [r])  # a row stored meanwhile stays (first wins)
            finished.add(i)
            live.emit_soon({"type": "result", "model": i, "result": stored(i)})

        def stored(i: int) -> dict[str, Any]:
            """Model ``i``'s result as the store holds it (redacted), as the API serves results."""
            rows, _ = store.results(live.run_id, cell=(i, 0, 0))
            return rows[0] if rows else {}

        def on_event(event: Any) -> None:
            if isinstance(event, ev.RunRecorded):  # recorded: the page can link to it from now on
                live.run_id = event.run_id
                live.emit_soon({"type": "run", "run_id": live.run_id, "models": live.models})
            elif isinstance(event, ev.CellStopped):  # stopped mid-answer: keep what it measured, TTFT included
                keep_stopped(event.model_index, event.result)
            elif isinstance(event, ev.ResultStored):  # committed: send the row as stored
                finished.add(event.model_index)
                live.emit_soon({"type": "result", "model": event.model_index, "result": stored(event.model_index)})
            elif isinstance(event, ev.CellDelta):
                i, delta = event.model_index, event.delta
                if delta.channel != "text":
                    return
                partial[i].append(delta.text)
                t0 = started.get(i, delta.t_ns)
                live.emit_soon({"type": "delta", "model": i, "text": delta.text, "elapsed_ms": (delta.t_ns - t0) / 1e6})
            elif isinstance(event, ev.ModelLoading | ev.CellStarted):
                if isinstance(event, ev.CellStarted):
                    started[event.model_index] = perf_counter_ns()
                live.emit_soon({"type": "loading" if isinstance(event, ev.ModelLoading) else "started",
                                "model": event.model_index})

        async def go() -> None:
            status = "done"
            try:
                outcome = await compare(prompt, specs, params=params, system=system, store=store,
                                        on_event=on_event, prices=price_overrides(), meta={"source": "dashboard"},
                                        case=case, cancel=live.cancel)
                for i in sorted(live.stopping):  # stopped before it started: a row says so
                    keep_stopped(i, None)
                missing = len(specs) - len(outcome.results)  # stopped one by one: counted as failed
                status = finished_status(len(specs), sum(not r.ok for r in outcome.results) + missing)
            except asyncio.CancelledError:
                status = "stopped"
                if live.run_id is not None:
                    for i in range(len(specs)):
                        keep_stopped(i, None)
                    store.finish_run(live.run_id, "interrupted")
            except Exception as exc:  # a bug, not a model failure (those are results): say it, end the stream
                status = "failed"
                if isinstance(exc, TryoutsError):  # written for users: its message, redacted and bounded
                    message = redact(exc.message)[:1000]
                else:  # its text may quote what it read (a file, an answer): the browser gets the type only
                    import traceback

                    from ..report.safe_text import visible_controls

                    logging.getLogger(__name__).error(  # the server's terminal: redacted, no control codes
                        "a live comparison failed: %s", visible_controls(redact(traceback.format_exc()))[-4000:])
                    message = f"Unexpected {type(exc).__name__} (a bug in Tryouts; the server's log has the details)."
                live.emit_soon({"type": "error", "message": message})
            finally:
                live.done = True
                live.emit_soon({"type": "end", "status": status, "run_id": live.run_id})
                asyncio.get_running_loop().call_later(RELEASE_AFTER_S, self.release, key)

        live.task = asyncio.get_running_loop().create_task(go())
        return live

    def release(self, key: str) -> None:
        """Forget a finished comparison (its results are stored)."""
        live = self.runs.get(key)
        if live is not None and live.done:
            del self.runs[key]

    def stop(self, key: str) -> bool:
        """Stop every model of a live comparison still running; False when it had ended."""
        live = self.runs.get(key)
        if live is None or live.done or live.task is None:
            return False
        live.task.cancel()
        return True

    def stop_model(self, key: str, model_index: int) -> bool:
        """Stop one model of a live comparison (the others go on); False when it had ended or has its result."""
        live = self.runs.get(key)
        if live is None or live.done or live.cancel is None or model_index in live.finished:
            return False
        live.stopping.add(model_index)
        live.cancel.stop(model_index)
        return True


def sse(event: dict[str, Any], event_id: int) -> str:
    """One server-sent event."""
    return f"id: {event_id}\ndata: {json.dumps(event, default=str)}\n\n"
