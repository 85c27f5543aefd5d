"""One prompt through several models in one run (``tryouts compare``, the dashboard's live comparison).

A comparison is a run of one cell per model, through the same scheduler and executor as a suite
(engine/run.py): models behind remote APIs stream together; what runs on this machine (in-process models,
servers on a loopback address) takes turns through the machine gate, each loaded (and, for a server,
warmed up) and then given its request alone. ``sequential=True`` runs one model at a time. A comparison
is not retried (what you see is what the server did) and never served from the response cache. Each
result is stored the moment it completes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.events import OnEvent, ResultStored, RunFinished, RunRecorded, ignore
from ..engine.executor import Cancel
from ..engine.policy import Policy
from ..pricing import PriceOverride
from ..store import Store
from ..types import Cell, GenParams, Message, ModelSpec, Request, Result, finished_status


@dataclass
class CompareOutcome:
    """What ``compare`` returns: the run id (None when not stored) and one result per model."""

    run_id: str | None
    results: list[Result]

    @property
    def all_ok(self) -> bool:
        return all(r.ok for r in self.results)


def build_request(prompt: str | Sequence[Message], system: str | None, params: GenParams | None) -> Request:
    """A request from a prompt string (or messages), an optional system prompt and parameters."""
    if isinstance(prompt, str):
        messages = [Message(role="user", content=prompt)]
    else:
        messages = list(prompt)
    if system:
        messages.insert(0, Message(role="system", content=system))
    return Request(messages=messages, params=params or GenParams())


async def compare(
    prompt: str | Sequence[Message],
    models: Sequence[str | ModelSpec],
    *,
    params: GenParams | None = None,
    system: str | None = None,
    store: Store | None = None,
    on_event: OnEvent | None = None,
    sequential: bool = False,
    prices: dict[str, PriceOverride] | None = None,
    meta: dict[str, Any] | None = None,
    case: dict[str, Any] | None = None,
    cancel: Cancel | None = None,
) -> CompareOutcome:
    """Run one prompt through every model; a model's failure never stops the others.

    Args:
        prompt: the user prompt, or a list of chat messages.
        models: references such as ``openai:gpt-6-luna`` or parsed :class:`ModelSpec` s.
        params: generation parameters shared by all models.
        system: an optional system prompt.
        store: where each result is committed as it completes (None: not stored).
        on_event: the typed event stream (engine/events.py): RunRecorded once the run is stored, then per
            model ModelLoading, CellStarted, CellDelta per chunk, ResultStored, and RunFinished last.
        sequential: run one model at a time.
        prices: price overrides by model reference.
        meta: stored with the run.
        case: ``{"expected", "asserts"}`` to score every answer with (assertions and reference metrics, as
            a suite case), stored with each result.
        cancel: stops models still running (they get no row: the caller records what it wants).
    """
    from ..engine.run import run_cells

    request = build_request(prompt, system, params)
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
    cells = [Cell(i, 0, 0, spec, request) for i, spec in enumerate(specs)]
    emit = on_event or ignore
    results: list[Result | None] = [None] * len(specs)

    def listen(event: Any) -> None:
        if isinstance(event, ResultStored):
            results[event.model_index] = event.result
        emit(event)

    run_id = None
    if store is not None:
        run_id = store.create_run("compare", [s.ref for s in specs], request.model_dump(mode="json"), meta or {})
        emit(RunRecorded(run_id))
    policy = Policy(default_concurrency=max(1, len(specs)), max_retries=0, use_cache=False, sequential=sequential)
    status = "interrupted"
    try:
        await run_cells(cells, store=store, run_id=run_id or "", policy=policy,  # type: ignore[arg-type]
                        cases={0: case} if case else None, prices=prices, on_event=listen,
                        allow_cache=False, stream_deltas=True, cancel=cancel,
                        sink=None if store is not None else (lambda cell, result: None))
        done = [r for r in results if r is not None]
        status = finished_status(len(specs), sum(not r.ok for r in done) + len(specs) - len(done))
    finally:
        if store is not None and run_id is not None:
            _sign(store, run_id, specs, results)
            store.finish_run(run_id, status)
        emit(RunFinished(run_id, status))
    return CompareOutcome(run_id, [r for r in results if r is not None])


def signed_fields(models: Sequence[Any], options: Sequence[Any]) -> dict[str, Any]:
    """What a compare run's signature covers (trust.py): its stored model references and each model's stored
    options (None for a model with no row)."""
    return {"models": list(models), "options": list(options)}


def _sign(store: Store, run_id: str, specs: Sequence[ModelSpec], results: Sequence[Result | None]) -> None:
    """Sign what a re-run of this comparison would take from the store, from this process's own values (never
    read back: a row changed meanwhile would not be signed); the dashboard re-runs a signed model with its
    own permissions, an unsigned one only as a dashboard with no ``--allow-*`` flag would."""
    from ..redact import redact
    from ..store.rows import result_row
    from ..trust import sign

    stored = [result_row(run_id, r)["options"] if r is not None else None for r in results]
    store.update_run_meta(run_id, {"signature": sign(signed_fields([redact(s.ref) for s in specs], stored))})
