"""How close the load client's figures are to the truth, against a floor measured in the same run (issue 14).

    .venv/bin/python benchmarks/load_fidelity.py [--streams 1 32 128] [--per-stream 6] [--rates 50 100 200]

The scripted replay server (127.0.0.1, a subprocess) sends its first content chunk 50 ms after it reads a
request, then 15 more 5 ms apart, and logs when it wrote each chunk on the machine's monotonic clock.
Each client's **TTFT error** for a request is its stamp of the first content chunk minus the server's
write time of that chunk. So it is what the client adds, whatever the server's own delays.

* **floor**: a minimal raw-socket client (one event loop, a prebuilt request, a bytes search for the
  first content), the least any client can add;
* **tryouts load**: load/runner.py with one worker process, and with two;
* **tryouts run**: the suite engine (run_cells) on one model, its streams in this process's event loop
  (client processes 0) or sent and read by one worker process (client processes 1, providers/offload.py).
  Its TTFT error is the stamp of the first content Delta minus the server's write time, as above.

Closed loops of N streams (each stream sends its next request when the previous ends) give TTFT p50,
TTFT error p50/p99 and the achieved request rate. Open-loop Poisson schedules give the achieved rate
against the target, and the dispatch lag (sent minus due) p50/p99. Every figure is from one invocation:
compare the clients' rows with each other, not with another run's.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from time import perf_counter_ns

import httpx

from tryouts.load.arrivals import arrival_offsets
from tryouts.load.client import Endpoint
from tryouts.load.metrics import summarize
from tryouts.load.runner import Item, run_point
from tryouts.stats import percentile
from tryouts.testing.replay import start_replay_server

SCRIPT = "tokens=16;ttft_ms=50;itl_ms=5"


def payloads(ep: Endpoint, tag: str, n: int) -> list[bytes]:
    body = {"stream": True, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16,
            "stream_options": {"include_usage": True}}
    return [ep.request_bytes({**body, "model": f"{SCRIPT};id={tag}-{i}"}) for i in range(n)]


async def floor_client(ep: Endpoint, reqs: list[bytes], streams: int) -> dict[str, int]:
    """The floor: first-content stamps by request id, streams kept alive, nothing else."""
    firsts: dict[str, int] = {}
    queue = list(enumerate(reqs))

    async def stream() -> None:
        reader, writer = await asyncio.open_connection(ep.host, ep.port)
        while queue:
            i, payload = queue.pop()
            writer.write(payload)
            await reader.readuntil(b"\r\n\r\n")
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                data = await reader.readexactly(size + 2)
                if i not in firsts and b'"content":" w' in data:
                    firsts[i] = perf_counter_ns()
        writer.close()

    await asyncio.gather(*(stream() for _ in range(streams)))
    return firsts


def server_first(base: str, tag: str, n: int) -> list[int]:
    root = base.removesuffix("/v1")
    with httpx.Client(timeout=30) as c:
        return [c.get(f"{root}/_replay/log/{tag}-{i}").json()["first_content_sent_ns"] for i in range(n)]


def closed_loop_rows(base: str, ep: Endpoint, streams: int, per_stream: int) -> list[list[str]]:
    n = streams * per_stream
    rows = []
    tag = f"floor{streams}"
    t = perf_counter_ns()
    firsts = asyncio.run(floor_client(ep, payloads(ep, tag, n), streams))
    wall = (perf_counter_ns() - t) / 1e9
    truth = server_first(base, tag, n)
    errors = [(firsts[i] - truth[i]) / 1e6 for i in range(n)]
    rows.append(["floor (raw socket)", streams, "-", "-", f"{percentile(errors, 50):.2f}", f"{percentile(errors, 99):.2f}",
                 f"{n / wall:.0f}"])
    for workers in (1, 2):
        tag = f"load{streams}w{workers}"
        items = [Item(i, 0.0, p) for i, p in enumerate(payloads(ep, tag, n))]
        records, start = run_point(ep, items, max_concurrency=streams, workers=workers)
        truth = server_first(base, tag, n)
        errors = [(r.first_ns - truth[r.index]) / 1e6 for r in records if r.first_ns]
        s = summarize(records, start_ns=start, end_ns=max(r.done_ns for r in records))
        rows.append([f"tryouts load, {workers} worker{'s' * (workers > 1)}", streams, f"{s['median_ttft_ms']:.1f}",
                     f"{s['completed']}/{n}", f"{percentile(errors, 50):.2f}", f"{percentile(errors, 99):.2f}",
                     f"{s['request_throughput']:.0f}"])
    return rows


def engine_rows(base: str, streams: int, per_stream: int) -> list[list[str]]:
    """``tryouts run``'s engine (run_cells) on one model at ``streams`` concurrent requests: in this event loop
    (client processes 0) and through one worker process (providers/offload.py), the same TTFT error measure."""
    import tempfile

    from tryouts.engine.events import CellDelta
    from tryouts.engine.run import Policy, run_cells
    from tryouts.store import Store
    from tryouts.types import Cell, GenParams, Message, ModelSpec, Request

    n = streams * per_stream
    rows = []
    spec = ModelSpec.parse(f"openai-compat:{base}#{SCRIPT};id=@prompt")
    for procs in (0, 1):
        tag = f"run{streams}p{procs}"
        cells = [Cell(spec=spec, request=Request(messages=[Message(role="user", content=f"{tag}-{i}")],
                                                 params=GenParams(max_tokens=16)), model_index=0, case_index=i,
                      repeat_index=0) for i in range(n)]
        firsts: dict[int, int] = {}

        def on_event(ev, firsts=firsts) -> None:
            if isinstance(ev, CellDelta) and ev.delta.text and ev.cell.case_index not in firsts:
                firsts[ev.cell.case_index] = ev.delta.t_ns

        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"{tmp}/b.db")
            run_id = store.create_run("suite", [spec.ref], {})
            policy = Policy(concurrency={"openai-compat": streams}, use_cache=False, client_processes=procs)
            t = perf_counter_ns()
            asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=policy, on_event=on_event,
                                  stream_deltas=True))
            wall = (perf_counter_ns() - t) / 1e9
            results, _ = store.results(run_id, columns=["ok", "ttft_ms"])
            store.close()
        truth = server_first(base, tag, n)
        errors = [(firsts[i] - truth[i]) / 1e6 for i in range(n) if i in firsts]
        ttft = [r["ttft_ms"] for r in results if r["ok"]]
        rows.append([f"tryouts run, client processes {procs}", streams, f"{percentile(ttft, 50):.1f}",
                     f"{len(ttft)}/{n}", f"{percentile(errors, 50):.2f}", f"{percentile(errors, 99):.2f}",
                     f"{n / wall:.0f}"])
    return rows


async def floor_open_loop(ep: Endpoint, reqs: list[bytes], offsets: list[float]) -> list[float]:
    """The open-loop floor: a bare loop that sleeps to each due time and writes the request on an idle
    kept-alive connection (reading answers in their own tasks); its dispatch lags in ms."""
    idle: list[tuple] = []
    lags: list[float] = []
    tasks = set()

    async def answer(conn: tuple) -> None:
        reader, _ = conn
        await reader.readuntil(b"\r\n\r\n")
        while int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readuntil(b"\r\n")
        await reader.readuntil(b"\r\n")
        idle.append(conn)

    for _ in range(64):
        idle.append(await asyncio.open_connection(ep.host, ep.port))
    start = perf_counter_ns() + 50_000_000
    for payload, offset in zip(reqs, offsets, strict=True):
        due = start + round(offset * 1e9)
        await asyncio.sleep(max(0.0, (due - perf_counter_ns()) / 1e9))
        conn = idle.pop() if idle else await asyncio.open_connection(ep.host, ep.port)
        lags.append((perf_counter_ns() - due) / 1e6)
        conn[1].write(payload)
        task = asyncio.create_task(answer(conn))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return lags


def open_loop_rows(ep: Endpoint, rates: list[float], seconds: float) -> list[list[str]]:
    rows = []
    for rate in rates:
        n = max(20, int(rate * seconds))
        offsets = arrival_offsets(n, rate, seed=1)
        lags = asyncio.run(floor_open_loop(ep, payloads(ep, f"floorpoisson{rate:g}", n), offsets))
        rows.append([f"{rate:g}", "floor", "-", f"{n}/{n}", f"{percentile(lags, 50):.2f}", f"{percentile(lags, 99):.2f}",
                     "-"])
        items = [Item(i, offsets[i], p) for i, p in enumerate(payloads(ep, f"poisson{rate:g}", n))]
        for workers in (1, 2):
            records, start = run_point(ep, items, rate=rate, workers=workers)
            s = summarize(records, start_ns=start, end_ns=max(r.done_ns for r in records))
            sends = sorted(r.sent_ns for r in records if r.sent_ns)
            offered = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9) if len(sends) > 1 else 0
            rows.append([f"{rate:g}", workers, f"{offered:.1f}", f"{s['completed']}/{n}",
                         f"{s['median_dispatch_lag_ms']:.2f}", f"{s['p99_dispatch_lag_ms']:.2f}",
                         f"{s['median_ttft_ms']:.1f}"])
    return rows


def table(head: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 32, 128, 512])
    ap.add_argument("--per-stream", type=int, default=6)
    ap.add_argument("--rates", type=float, nargs="+", default=[50, 200, 500, 1000])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each open-loop point")
    args = ap.parse_args()
    with start_replay_server() as base:
        ep = Endpoint.parse(base)
        asyncio.run(floor_client(ep, payloads(ep, "warm", 4), 2))  # the server's first requests are slower
        closed = [row for s in args.streams for row in closed_loop_rows(base, ep, s, args.per_stream)
                  + engine_rows(base, s, args.per_stream)]
        opened = open_loop_rows(ep, args.rates, args.seconds)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, Python {platform.python_version()}; server script "
          f"{SCRIPT} (true TTFT 50 ms)\n")
    print(table(["client", "streams", "TTFT p50 ms", "ok", "TTFT error p50 ms", "TTFT error p99 ms", "req/s"],
                closed))
    print()
    print(table(["target req/s (Poisson)", "workers", "offered req/s", "ok", "dispatch lag p50 ms",
                 "dispatch lag p99 ms", "TTFT p50 ms"], opened))


if __name__ == "__main__":
    main()
