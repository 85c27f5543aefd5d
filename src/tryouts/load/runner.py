"""Run one load point: dispatch an absolute schedule from one or several worker processes.

Each worker owns a slice of the schedule (request ``i`` goes to worker ``i % workers``) and its share of
``max_concurrency``. It stamps on ``perf_counter_ns``: on Linux that is CLOCK_MONOTONIC, shared by every
process of the machine, so the workers' stamps, the due times and the scripted server's own stamps are on
one clock. Nothing else runs on a worker's event loop. The garbage collector is frozen and off while it
measures.

* Open loop (a finite rate): request ``i`` is due at ``start + offset_i`` (load/arrivals.py). A worker
  that wakes late sends at once and records the lag. With ``max_concurrency``, a request held for a slot
  obeys the no-catch-up rule (:func:`~tryouts.load.arrivals.paced_send`, at the worker's share of the rate).
* Closed loop (rate ``inf`` with ``max_concurrency`` N: the ``synchronous`` and ``concurrent`` profiles):
  N streams, each sending its next request when its previous one ends. A request is due when its stream
  frees, so the due time is not a backlog.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import time
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from .arrivals import paced_send
from .client import Connection, Endpoint, send
from .metrics import RequestRecord
from .saturation import SaturationWatch


@dataclass(frozen=True)
class Limits:
    """When a load point stops sending: after ``max_seconds`` from its start, ``max_errors`` failures, or (with
    ``stop_over_saturated``, open loop only) once requests in flight and TTFT both keep rising
    (load/saturation.py :class:`~tryouts.load.saturation.SaturationWatch`)."""

    max_seconds: float | None = None
    max_errors: int | None = None
    stop_over_saturated: bool = False


@dataclass(frozen=True)
class Item:
    """One request to send: its index, its due offset (s) and its prebuilt bytes."""

    index: int
    due_s: float
    payload: bytes


def run_loop(coro: Any) -> Any:
    """Run ``coro`` on a fresh event loop: uvloop's when it is installed (less work per callback on the loop
    that stamps), unless ``TRYOUTS_LOAD_LOOP=asyncio``."""
    import os

    if os.environ.get("TRYOUTS_LOAD_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
    return asyncio.run(coro)


#: a timer wakes the event loop up to about a millisecond late (epoll waits in whole milliseconds): sleep until
#: this close to the due time, then yield to the loop until the clock reaches it
SPIN_S = 0.0015


async def wait_until(due_ns: int) -> None:
    """Return at ``due_ns`` (perf_counter_ns), not a millisecond after: a coarse sleep, then yields to the loop
    (so reading other streams goes on) for the last moment."""
    wait = (due_ns - perf_counter_ns()) / 1e9
    if wait > SPIN_S:
        await asyncio.sleep(wait - SPIN_S)
    while perf_counter_ns() < due_ns:
        await asyncio.sleep(0)


async def dispatch(
    endpoint: Endpoint,
    items: list[Item],
    start_ns: int,
    *,
    max_concurrency: int | None = None,
    rate: float = math.inf,
    worker: int = 0,
    limits: Limits | None = None,
    sender: Any = None,
    stats: dict[str, Any] | None = None,
) -> list[RequestRecord]:
    """Send ``items`` on their schedule from this event loop; every sent request's record, in index order.

    ``sender``: sends each item another way than the raw client, ``await sender(payload, record)`` (a
    provider's own stream: load/provider_client.py); ``endpoint`` is then unused. ``stats["client_cpu"]``
    gets the share of one core this process used while it sent and read (near 1: the client was busy), and
    ``stats["stopped"]`` why it stopped sending early (``max_seconds``, ``max_errors``, ``over_saturation``).

    ``limits``: stop sending once the point has run ``max_seconds`` or seen ``max_errors`` failed requests
    (this worker's share); what was sent runs to its end, what was not is not sent."""
    limits = limits or Limits()
    cpu0, wall0 = time.process_time(), perf_counter_ns()
    stop_ns = start_ns + round(limits.max_seconds * 1e9) if limits.max_seconds else None
    closed_loop = math.isinf(rate)
    if closed_loop and not max_concurrency:
        max_concurrency = len(items) or 1  # rate inf without a cap: everything at once
    slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    idle: list[Connection] = []
    records: list[RequestRecord] = []
    tasks: set[asyncio.Task] = set()
    last_send_s: float | None = None

    failures = [0]
    in_flight = [0]
    watch = SaturationWatch() if limits.stop_over_saturated and not closed_loop else None
    saturated = [False]

    async def one(rec: RequestRecord, payload: Any) -> None:
        conn = None if sender is not None else idle.pop() if idle else Connection(endpoint)
        try:
            await (sender(payload, rec) if conn is None else send(conn, payload, rec))
            failures[0] += rec.status in ("error", "rate_limited")
        finally:
            if conn is not None:
                idle.append(conn)
            in_flight[0] -= 1
            if slots is not None:
                slots.release()
        if watch is not None and rec.first_ns is not None and rec.sent_ns is not None:
            watch.answered((rec.sent_ns - start_ns) / 1e9, (rec.first_ns - rec.sent_ns) / 1e6)
            saturated[0] = saturated[0] or watch.saturated((perf_counter_ns() - start_ns) / 1e9)

    for item in items:
        due_ns = start_ns + round(item.due_s * 1e9)
        if stop_ns is not None and due_ns > stop_ns:
            if stats is not None:
                stats["stopped"] = "max_seconds"
            break
        await wait_until(due_ns)
        if slots is not None:
            await slots.acquire()
            now_s = (perf_counter_ns() - start_ns) / 1e9
            if closed_loop:
                due_ns = perf_counter_ns()  # a stream just freed: that is when this request is due
            else:
                send_s = paced_send(item.due_s, now_s, last_send_s, rate)
                if send_s > now_s:
                    await wait_until(start_ns + round(send_s * 1e9))
        stop = ("max_errors" if limits.max_errors is not None and failures[0] >= limits.max_errors else
                "over_saturation" if saturated[0] else  # the server's queue keeps growing
                "max_seconds" if stop_ns is not None and perf_counter_ns() > stop_ns else None)  # held past the end
        if stop is not None:
            if slots is not None:
                slots.release()
            if stats is not None:
                stats["stopped"] = stop
            break
        last_send_s = (perf_counter_ns() - start_ns) / 1e9
        in_flight[0] += 1
        if watch is not None:
            watch.sent(last_send_s, in_flight[0])
        rec = RequestRecord(index=item.index, due_ns=due_ns, worker=worker)
        records.append(rec)
        task = asyncio.create_task(one(rec, item.payload))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.wait(set(tasks))
    for conn in idle:
        conn.close()
    if stats is not None:  # from the start time on: the wait before it is not the client's work
        busy_from = max(wall0, start_ns)
        wall = (perf_counter_ns() - busy_from) / 1e9
        stats["client_cpu"] = (time.process_time() - cpu0) / wall if wall > 0 else None
    return sorted(records, key=lambda r: r.index)


def _worker_main(conn: Any, endpoint: Endpoint, items: list[Item], max_concurrency: int | None, rate: float,
                 worker: int, limits: Limits) -> None:
    """A worker process: say it is ready, wait for the start time, run its slice, send the records back."""
    gc.collect()
    gc.freeze()  # what exists now is never scanned again; and no collection while measuring
    gc.disable()
    conn.send("ready")
    start_ns = conn.recv()
    try:
        stats: dict[str, Any] = {}
        records = run_loop(dispatch(endpoint, items, start_ns, max_concurrency=max_concurrency, rate=rate,
                                    worker=worker, limits=limits, stats=stats))
        conn.send(("ok", records, stats.get("client_cpu"), stats.get("stopped")))
    except BaseException as exc:  # reported to the parent, which says what failed
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        gc.enable()


async def _in_process(endpoint: Endpoint, items: list[Item], max_concurrency: int | None, rate: float,
                      lead_s: float, limits: Limits | None, sender: Any, stats: dict[str, Any] | None,
                      ) -> tuple[list[RequestRecord], int]:
    """One point in this process: the sender opened (a model loaded, a warm-up sent) before the clock starts,
    and, as in a worker, no garbage collection while it measures."""
    if sender is not None:
        await sender.open()
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        start_ns = perf_counter_ns() + round(lead_s * 1e9)
        records = await dispatch(endpoint, items, start_ns, max_concurrency=max_concurrency, rate=rate,
                                 limits=limits, sender=sender, stats=stats)
        return records, start_ns
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
        if sender is not None:
            await sender.close()


def run_point(
    endpoint: Endpoint,
    items: list[Item],
    *,
    max_concurrency: int | None = None,
    rate: float = math.inf,
    workers: int = 1,
    lead_s: float = 0.2,
    limits: Limits | None = None,
    sender: Any = None,
    stats: dict[str, Any] | None = None,
) -> tuple[list[RequestRecord], int]:
    """Run one load point over ``workers`` processes (1: in this process); its records and start time (ns).

    ``max_concurrency`` and ``rate`` are shared among the workers (each gets its share); ``lead_s``: how
    long after every worker is ready the schedule starts. ``stats["client_cpu"]``: the busiest client
    process's share of one core while the point ran.
    """
    workers = max(1, min(workers, len(items) or 1, max_concurrency or workers))
    if sender is not None:
        workers = 1  # a provider's stream runs in this process (its model may be loaded here)
    if workers == 1:
        if sender is not None:  # a provider's clients belong to the default loop (httpx, threads of models)
            return asyncio.run(_in_process(endpoint, items, max_concurrency, rate, lead_s, limits, sender, stats))
        return run_loop(_in_process(endpoint, items, max_concurrency, rate, lead_s, limits, sender, stats))
    limits = limits or Limits()
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for w in range(workers):
        share = None if not max_concurrency else max_concurrency // workers + (w < max_concurrency % workers)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, daemon=True,
                           args=(child, endpoint, items[w::workers], share or None, rate / workers, w,
                                 Limits(limits.max_seconds, None if limits.max_errors is None else
                                        -(-limits.max_errors // workers), limits.stop_over_saturated)))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        for p in pipes:
            if p.recv() != "ready":
                raise RuntimeError("a load worker did not start")
        start_ns = perf_counter_ns() + round(lead_s * 1e9)
        for p in pipes:
            p.send(start_ns)
        records: list[RequestRecord] = []
        busy, stops = [], []
        for p in pipes:
            status, payload, *more = p.recv()
            if status != "ok":
                raise RuntimeError(f"a load worker failed: {payload}")
            records += payload
            cpu, stopped = [*more, None, None][:2]
            busy += [cpu] if cpu is not None else []
            stops += [stopped] if stopped else []
        if stats is not None and busy:
            stats["client_cpu"] = max(busy)
        if stats is not None and stops:
            stats["stopped"] = stops[0]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return sorted(records, key=lambda r: r.index), start_ns
