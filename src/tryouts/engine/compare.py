"""One prompt through several models in one run (``tryouts compare``).

Scheduling: models behind a remote API stream concurrently. What runs on this machine (in-process
models such as ``hf`` and ``llamacpp``, and servers on a loopback address) takes turns through the
machine gate (engine/gate.py), each loaded (and, for a server, warmed up) and then given its request
alone, so no two of them compete for the CPU or GPU while being timed, and no remote API's figures are
taken while this machine is busy. ``sequential=True`` runs everything one model at a time.
Each result is stored the moment it completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from ..pricing import PriceOverride
from ..providers import create_provider, warm_local_stack
from ..providers.base import Provider, warm_http_stack
from ..store import Store
from ..types import GenParams, Message, ModelSpec, Request, Result, finished_status
from .execute import execute, failed_result, warm_up
from .gate import MachineGate

#: on_event(model_index, kind, payload): kinds are "loading", "started", "delta" (text), "done" (Result)
OnEvent = Callable[[int, str, Any], None]


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
) -> CompareOutcome:
    """Run one prompt through every model; a model's failure never stops the others.

    Args:
        prompt: the user prompt, or a list of chat messages.
        models: references such as ``openai:gpt-4o-mini`` or parsed :class:`ModelSpec` s.
        params: generation parameters shared by all models.
        system: an optional system prompt.
        store: where each result is committed as it completes (None: not stored).
        on_event: ``(model index, kind, payload)`` for live views: ``run`` (index -1, the run id, once it is
            recorded), ``loading``, ``started``, ``delta`` (a Delta), ``done`` (the Result, already stored).
        sequential: run one model at a time.
        prices: price overrides by model reference.
        meta: stored with the run.
        case: ``{"expected", "asserts"}`` to score every answer with (assertions and reference metrics, as
            a suite case), stored with each result.
    """
    warm_http_stack()  # before any t0: lazy imports are client overhead, not latency
    request = build_request(prompt, system, params)
    specs = [m if isinstance(m, ModelSpec) else ModelSpec.parse(m) for m in models]
    warm_local_stack(s.provider for s in specs)  # torch / llama_cpp imports never inside an API TTFT
    if case:
        from .run import warm_scoring

        warm_scoring([case])  # scoring's imports (seconds) never inside a concurrent request's TTFT
    emit = on_event or (lambda i, kind, payload: None)
    prices = prices or {}
    run_id = None
    if store is not None:
        run_id = store.create_run(
            "compare", [s.ref for s in specs], request.model_dump(mode="json"), meta or {}
        )
        emit(-1, "run", run_id)  # the run is recorded: -1 is the run itself, not a model

    results: list[Result | None] = [None] * len(specs)
    global_lane = asyncio.Lock() if sequential else None

    def record(i: int, result: Result) -> None:
        if case:
            from .run import case_scores

            result.case = case
            result.scores = case_scores(case, result)
        results[i] = result
        if store is not None and run_id is not None:
            from .run import write_safely

            error = write_safely(store, run_id, result)
            if error is not None:
                raise error
        emit(i, "done", result)

    providers: dict[int, Provider] = {}
    for i, spec in enumerate(specs):
        try:
            providers[i] = create_provider(spec)
        except Exception as exc:
            record(i, failed_result(spec, request, exc, model_index=i))
    gate = MachineGate()  # remote models stream together; what runs on this machine, one at a time and alone

    async def one(i: int, provider: Provider) -> None:
        spec = provider.spec
        override = prices.get(spec.ref)
        if override is None and "price" in spec.options:
            override = PriceOverride.parse(spec.options["price"], spec.ref)
        t_wait = perf_counter_ns()
        if global_lane is not None:
            await global_lane.acquire()
        await gate.acquire(("model", i) if provider.on_this_machine else "remote")
        try:
            queue_ms = (perf_counter_ns() - t_wait) / 1e6
            emit(i, "loading", None)
            try:
                load_ms = await provider.load()
                warm_ms = await warm_up(provider)
                if warm_ms is not None:
                    load_ms = (load_ms or 0.0) + warm_ms
            except Exception as exc:
                record(i, failed_result(spec, request, exc, model_index=i))
                return
            emit(i, "started", None)
            result = await execute(
                provider,
                request,
                on_delta=lambda d: emit(i, "delta", d),
                queue_ms=queue_ms,
                load_ms=load_ms,
                price_override=override,
                tokenizer_ref=spec.options.get("tokenizer"),
                model_index=i,
            )
            record(i, result)
        finally:
            try:
                await provider.aclose()  # a local model leaves memory before the next one loads
            except Exception:
                pass
            gate.release()
            if global_lane is not None:
                global_lane.release()

    status = "done"
    try:
        await asyncio.gather(*(one(i, p) for i, p in providers.items()))
    except BaseException:
        status = "interrupted"
        raise
    finally:
        if store is not None and run_id is not None:
            if status == "done":
                status = finished_status(len(results), sum(not (r is not None and r.ok) for r in results))
            store.finish_run(run_id, status)
    return CompareOutcome(run_id, [r for r in results if r is not None])
