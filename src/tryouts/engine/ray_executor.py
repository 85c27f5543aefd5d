"""The Ray executor (``tryouts run --executor ray``): a schedule's lanes as actors on a Ray cluster.

The driver (this process) attaches to a cluster (``address``, else ``RAY_ADDRESS``, else a Ray it starts for
the run, on 127.0.0.1) and turns the schedule into Ray lanes:

* **API lanes**, one per (provider, server, key variable, model): an async actor (engine/ray_lanes.py) with
  many requests in flight and the lane's rate budget. Actors are named after their lane and its limits, so
  every driver of the cluster (``--shard`` slices) sends that lane's cells through the same actor: more nodes
  or more drivers never mean more requests per minute. A server on the driver's loopback is one lane, pinned
  to the driver's node (``127.0.0.1`` means that machine).
* **Local-model lanes**, one per model: an actor that loads it once, with ``num_gpus`` (one GPU per model when
  the cluster has GPUs, else none).

The driver sends each lane's cells in chunks, at most :data:`IN_FLIGHT` chunks per lane at once, and hands
each returned result to the sink (the store, in batches, from a thread); it waits while the sink's backlog
exceeds :data:`MAX_BACKLOG`. Its memory therefore holds the schedule and a bounded amount of work, whatever
the number of cells. A lane whose actor dies (killed, its node lost) gets a new one, which waits one rate window
before its first request (the lost one may have used the window's budget), and the unanswered chunks are sent
again: the ledger keeps one row per cell. The response cache is read here, and the cost budget is held here, before a cell is sent.

Keys are never in a task's arguments: cells carry model references and options, and a secret in a model's
options (a key pasted into ``headers``) is refused. Workers read keys from their own environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..providers import get_info
from ..redact import redact
from ..types import Result
from .cache import cache_key, cached_result
from .events import CellLike, CellQueued
from .execute import cell_failed
from .executor import ResultSink, RunContext, Schedule
from .policy import LaneLimits, Progress
from .ray_lanes import LaneWorker, ident
from .schedule import lane_order
from .scores import scores_off_loop

#: the Ray namespace of Tryouts' actors (a lane's actor is found by name by every driver)
NAMESPACE = "tryouts"
#: chunks of one lane in flight at once
IN_FLIGHT = 3
#: results waiting to be written before the driver stops sending more
MAX_BACKLOG = 5000
#: a lane's actor made again this many times (it died each time) fails the lane's remaining cells
MAX_RESTARTS = 3

_REMOTE: Any = None  # LaneWorker as a Ray actor class, made once per process


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise errors.UsageError("--executor ray needs Ray: pip install 'tryouts[ray]' (or pip install 'ray[data]'), "
                                "on the driver and on every node of the cluster.") from None
    return ray


def connect(address: str | None = None) -> tuple[Any, bool]:
    """Attach to a Ray cluster (``address``, else ``RAY_ADDRESS``) or start one for this process on 127.0.0.1.
    Returns (ray, whether this call started it). Usage statistics are off: nothing leaves the cluster."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = _ray()
    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"namespace": NAMESPACE, "log_to_driver": False, "logging_level": logging.WARNING}
    from ray._private import ray_constants

    clusters = ray_constants.ENABLE_RAY_CLUSTER
    try:
        if address:
            if _loopback(address):  # a cluster on this machine: stay on 127.0.0.1 (Ray would swap in the
                ray_constants.ENABLE_RAY_CLUSTER = False  # machine's own address, which may be unreachable)
            ray.init(address=address, **quiet)
        else:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
    except Exception as exc:
        where = f"the Ray cluster at {address}" if address else "a Ray instance on this machine"
        raise errors.UsageError(f"Cannot start or reach {where} ({redact(str(exc).splitlines()[0][:300])}). "
                                "Check the address (ray status shows it on the head node) and that this Ray "
                                "version matches the cluster's.") from None
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = clusters
    return ray, True


def _loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass
class RayLane:
    """One actor's share of a schedule: a name (the lane and its limits), its limits and cells."""

    name: str
    limits: LaneLimits
    in_process: bool
    pinned: bool  # served on the driver's loopback: the actor runs on the driver's node
    cells: list[CellLike]
    num_gpus: float = 0.0


def _key_env(provider: Any, spec: Any) -> str:
    env = getattr(provider, "key_env", None) or spec.options.get("api_key_env")
    if env:
        return str(env)
    try:
        return ",".join(get_info(spec.provider).env)
    except errors.TryoutsError:
        return ""


def _name(*parts: Any) -> str:
    return "tryouts-lane-" + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def ray_lanes(schedule: Schedule, policy: Any, gpus: float) -> list[RayLane]:
    """The schedule's lanes as Ray lanes: remote API lanes split by key variable and model, a loopback server's
    lane whole, and one lane per local model."""
    lanes: list[RayLane] = []
    for lane in schedule.lanes:
        if lane.in_process:
            for cells in lane.cells.values():
                spec = cells[0].spec
                lanes.append(RayLane(_name("model", spec.model_dump_json(), gpus, repr(policy)), lane.limits, True,
                                     False, list(cells), gpus))
            continue
        if lane.owner != "remote":
            lanes.append(RayLane(_name("server", lane.key.provider, lane.key.server, lane.limits,
                                       repr(policy)), lane.limits, False, True, lane_order(lane)))
            continue
        split: dict[tuple[str, str], list[CellLike]] = {}
        for cell in lane_order(lane):
            spec = cell.spec
            split.setdefault((_key_env(lane.providers.get(cell.model_index), spec), spec.model), []).append(cell)
        for (env, model), cells in split.items():
            lanes.append(RayLane(_name("api", lane.key.provider, lane.key.server, env, model, lane.limits,
                                       repr(policy)), lane.limits, False, False, cells))
    return lanes


def check_no_secrets(schedule: Schedule) -> None:
    """Refuse a model whose reference or options hold a secret: they would travel in tasks' arguments."""
    seen: set[str] = set()
    for lane in schedule.lanes:
        for cells in lane.cells.values():
            spec = cells[0].spec
            text = json.dumps([spec.ref, spec.options], default=str)
            if spec.ref not in seen and redact(text) != text:
                raise errors.UsageError(
                    f"Model {redact(spec.ref)} has a key in its reference or options (a password in its URL, a key "
                    "in headers?). On Ray, both travel to the workers: name the key's environment variable instead "
                    "(api_key_env: MY_KEY) and set it on every node (docs/scale.md).")
            seen.add(spec.ref)


class RayExecutor:
    """Runs a :class:`~tryouts.engine.executor.Schedule` on a Ray cluster; see the module's docstring.

    ``address``: the cluster (None: ``RAY_ADDRESS``, else a local Ray for this run); ``gpus_per_model``: GPUs
    for each local model's actor (None: 1 when the cluster has GPUs, else 0); ``chunk``: cells per call (None:
    twice the lane's concurrency, at least 8)."""

    def __init__(self, address: str | None = None, *, gpus_per_model: float | None = None,
                 chunk: int | None = None) -> None:
        self.address, self.gpus_per_model, self.chunk = address, gpus_per_model, chunk
        self.restarts = 0  # lane actors made again during the last run

    async def execute(self, schedule: Schedule, sink: ResultSink, ctx: RunContext) -> Progress:
        check_no_secrets(schedule)
        ray, started = connect(self.address)  # in this thread: Ray sets its signal handlers in the main one
        try:
            return await _RayRun(ray, schedule, sink, ctx, self).run()
        finally:
            if started:
                await asyncio.to_thread(ray.shutdown)


class _RayRun:
    def __init__(self, ray: Any, schedule: Schedule, sink: ResultSink, ctx: RunContext, owner: RayExecutor) -> None:
        self.ray, self.schedule, self.sink, self.ctx, self.owner = ray, schedule, sink, ctx, owner
        self.progress = Progress()
        self.stopped = False
        self.pending: set[Any] = set()  # refs in flight, cancelled on stop
        self.cpu_models = False  # local models run on CPUs in this run (a loopback server's timings share them)

    def record(self, cell: CellLike, result: Result, cache: Any = None) -> None:
        m = cell.model_index
        result.cell_key = getattr(cell, "key", None)
        self.progress.done[m] += 1
        self.progress.failed[m] += not result.ok
        self.progress.cached[m] += result.cached
        self.progress.retries += max(0, result.attempts - 1)
        self.sink.put(cell, result, cache)

    def fail(self, cells: list[CellLike], exc: BaseException) -> None:
        for cell in cells:
            self.record(cell, cell_failed(cell, exc, self.ctx.cases))

    async def run(self) -> Progress:
        for cells, exc in self.schedule.failed:
            self.fail(cells, exc)
        for cell in self.schedule.cells():
            self.ctx.on_event(CellQueued(cell))
        gpus = self.owner.gpus_per_model
        if gpus is None:
            gpus = 1.0 if self.ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        lanes = ray_lanes(self.schedule, self.ctx.policy, gpus)
        self.cpu_models = any(lane.in_process and not lane.num_gpus for lane in lanes)
        unsubscribe = self.ctx.cancel.subscribe(self._on_cancel)
        try:
            await asyncio.gather(*(self.drive(lane) for lane in lanes))
        finally:
            unsubscribe()
        return self.progress

    def _on_cancel(self, model_index: int | None) -> None:
        if model_index is None:
            self.stopped = True
            for ref in list(self.pending):
                self.ray.cancel(ref)

    def actor(self, lane: RayLane, replaces: bool = False) -> Any:
        """The lane's actor: found by name (another driver made it) or made (``replaces``: after a loss)."""
        options: dict[str, Any] = {"name": lane.name, "namespace": NAMESPACE, "get_if_exists": True,
                                   "max_restarts": 0, "max_concurrency": max(64, 4 * lane.limits.concurrency + 8)}
        if lane.in_process:
            options.update(num_cpus=1, num_gpus=lane.num_gpus)
        else:
            options.update(num_cpus=0)
        if lane.pinned:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = self.ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        global _REMOTE
        if _REMOTE is None:
            _REMOTE = self.ray.remote(LaneWorker)
        return _REMOTE.options(**options).remote(lane.limits, self.ctx.policy, lane.in_process, replaces)

    async def cached(self, cells: list[CellLike]) -> list[CellLike]:
        """Record the cells the response cache answers; return the others."""
        get = self.ctx.cache_get
        if get is None or not self.ctx.policy.use_cache:
            return cells
        keys = [cache_key(c.spec, c.request) for c in cells]
        hits = await asyncio.to_thread(lambda: [get(k) for k in keys])
        rest = []
        for cell, hit in zip(cells, hits, strict=True):
            if hit is None:
                rest.append(cell)
                continue
            result = cached_result(cell, hit, self.ctx.cases.get(cell.case_index))
            result.scores = await scores_off_loop(result.case, result)
            self.record(cell, result)
        return rest

    async def next_chunk(self, todo: deque, size: int) -> list[CellLike]:
        """Up to ``size`` cells to send: not cancelled, within the cost budget, not answered by the cache."""
        budget = self.ctx.budget
        while todo and not self.stopped:
            chunk = []
            while todo and len(chunk) < size:
                cell = todo.popleft()
                if self.ctx.cancel.stopped(cell.model_index) or (budget is not None and not budget.try_start(cell)):
                    self.progress.cancelled += 1
                    continue
                chunk.append(cell)
            chunk = await self.cached(chunk)
            if chunk:
                return chunk
        self.progress.cancelled += len(todo) if self.stopped else 0
        if self.stopped:
            todo.clear()
        return []

    async def wait_for_sink(self) -> None:
        backlog = getattr(self.sink, "backlog", None)
        while backlog is not None and backlog() > MAX_BACKLOG:
            await asyncio.sleep(0.01)

    async def drive(self, lane: RayLane) -> None:
        """Send a lane's cells in chunks, a few chunks at a time, and record what comes back."""
        size, in_flight = self.owner.chunk or max(8, 2 * lane.limits.concurrency), IN_FLIGHT
        if self.ctx.budget is not None:  # as on one machine: no more cells reserved than the lane runs at once,
            size, in_flight = 1, lane.limits.concurrency  # so the first answers correct the estimate in time
        todo: deque = deque(lane.cells)
        actor = self.actor(lane)
        restarts = 0
        inflight: dict[asyncio.Future, tuple[Any, list[CellLike], Any]] = {}  # future: (ref, chunk, actor)
        actor_errors = (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorUnavailableError)
        try:
            while True:
                while len(inflight) < in_flight and (chunk := await self.next_chunk(todo, size)):
                    await self.wait_for_sink()
                    cases = {c.case_index: self.ctx.cases[c.case_index] for c in chunk if c.case_index in self.ctx.cases}
                    ref = actor.run.remote(chunk, cases)
                    self.pending.add(ref)
                    inflight[asyncio.wrap_future(ref.future())] = (ref, chunk, actor)
                if not inflight:
                    return
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    ref, chunk, sent_to = inflight.pop(fut)
                    self.pending.discard(ref)
                    try:
                        returned = fut.result()
                    except self.ray.exceptions.TaskCancelledError:
                        self.progress.cancelled += len(chunk)
                        continue
                    except actor_errors as exc:
                        todo.extendleft(reversed(chunk))  # sent again; rows already stored stay single
                        if self.ctx.budget is not None:
                            for cell in chunk:
                                self.ctx.budget.finish(cell, None)
                        if sent_to is not actor:  # another chunk of that actor already brought a new one
                            continue
                        restarts += 1
                        self.owner.restarts += 1
                        if restarts > MAX_RESTARTS:
                            self.fail(list(todo), errors.ProviderError(
                                f"The Ray actor of this lane died {restarts} times (last: "
                                f"{redact(str(exc).splitlines()[0][:200])}); its cells were not run."))
                            todo.clear()
                            continue
                        actor = self.actor(lane, replaces=True)
                        continue
                    self.take(lane, chunk, returned)
        finally:
            for fut, (ref, _, _) in inflight.items():
                self.ray.cancel(ref)
                fut.cancel()

    def take(self, lane: RayLane, chunk: list[CellLike], returned: list) -> None:
        by_id = {ident(c): c for c in chunk}
        budget = self.ctx.budget
        for key, result, cache in returned:
            cell = by_id.pop(key)
            if lane.pinned and self.cpu_models and result.timing_valid:
                result.timing_valid = False  # a server on the driver's machine shared its CPU with local models
            if budget is not None:
                budget.finish(cell, result.cost.total if result.cost else None)
            self.record(cell, result, cache)
        for cell in by_id.values():  # cancelled on the worker: no row, a resume runs it
            self.progress.cancelled += 1
            if budget is not None:
                budget.finish(cell, None)
