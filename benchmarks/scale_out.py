"""Sweeps at scale: 10,000 and 100,000 cells through the local executor and through Ray, on this machine.

    .venv/bin/python benchmarks/scale_out.py [--sizes 10000,100000] [--executors local,ray] [--pg URL]

A generated suite (a CSV dataset of prompts, four OpenAI-compatible models served by the scripted replay
server on 127.0.0.1 with no artificial delays, concurrency 64) runs through the real CLI in a subprocess
(`tryouts run --no-progress --no-cache`, `--executor ray` starting a Ray for the run). For each run: wall
time, cells/s, the driver's peak RSS (its own, from wait4: Ray's workers are other processes), and the rows
(one per cell). Then:

* Ray's start-up (``ray.init`` + ``ray.shutdown`` of a local Ray) measured on its own, and Ray's overhead per
  cell: (Ray's wall - its start-up - the local executor's wall) / cells, from the same size;
* the ledger's write rate: ``Store.add_results`` of 20,000 results in batches of 500 (what the driver's sink
  does), on SQLite and, with ``--pg``, on PostgreSQL.

Prints Markdown tables for benchmarks/RESULTS.md. Every loop is bounded (the sizes given, a 30-minute limit
per run); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tryouts.testing.replay import start_replay_server

MODELS = ("tokens=8", "tokens=16;per_chunk=4", "tokens=4;reasoning=2", "tokens=12;usage=never")
RUN_LIMIT_S = 1800


def write_suite(folder: Path, base: str, cells: int, concurrency: int) -> Path:
    repeats = 10 if cells >= 100_000 else 5
    prompts = cells // (len(MODELS) * repeats)
    with open(folder / f"prompts{cells}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "question"])
        for i in range(prompts):
            w.writerow([i, f"What is pretrained model number {i} good for?"])
    models = "\n".join(f'  - model: "openai-compat:{base}#{s}"\n    label: m{i}' for i, s in enumerate(MODELS))
    suite = folder / f"scale{cells}.yaml"
    suite.write_text(
        f"description: scale-out benchmark\nmodels:\n{models}\n"
        "prompts:\n  - \"Q{{n}}: {{question}}\"\n"
        f"dataset: prompts{cells}.csv\n"
        f"repeats: {repeats}\n"
        f"concurrency: {{openai-compat: {concurrency}}}\n"
        "defaults:\n  params: {max_tokens: 64}\n"
    )
    return suite


def rows(db: Path) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*), count(DISTINCT cell_key) FROM results").fetchone()
    finally:
        con.close()


def run_cli(suite: Path, db: Path, executor: str) -> dict:
    cmd = [sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-progress", "--no-cache",
           "--executor", executor]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + RUN_LIMIT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"{executor} run of {suite.name} took more than {RUN_LIMIT_S} s")
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{executor} run failed:\n{err[-3000:]}")
    total, distinct = rows(db)
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "rows": total, "distinct": distinct}


def ray_startup() -> float:
    code = ("import time, os; os.environ['RAY_USAGE_STATS_ENABLED'] = '0'; t = time.perf_counter(); import ray; "
            "ray.init(include_dashboard=False, _node_ip_address='127.0.0.1', log_to_driver=False); ray.shutdown(); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def write_rate(target: str, n: int = 20_000, batch: int = 500) -> float:
    """Results per second through Store.add_results, in the driver's sink's batches."""
    from tryouts.store import Store
    from tryouts.types import Message, Request, Result, Timing, Usage

    store = Store(target)
    run_id = store.create_run("suite", ["m"], {})
    req = Request(messages=[Message(role="user", content="What is pretrained model number 7 good for?")])
    now = datetime.now(UTC)
    results = [Result(model="m", provider="openai-compat", model_name="m", ok=True, text="w0 w1 w2 w3 w4 w5 w6 w7",
                      started_at=now, timing=Timing(ttft_ms=1.0, e2e_ms=2.0, itl_ms=[0.1] * 7, n_chunks=8),
                      usage=Usage(input_tokens=11, output_tokens=8), request=req, model_index=i % 4,
                      case_index=i // 4, cell_key=f"{i:064x}", timing_valid=True) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        store.add_results(run_id, results[start:start + batch])
    rate = n / (time.perf_counter() - t0)
    store.finish_run(run_id)
    store.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--executors", default="local,ray")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database) for the write rate")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    executors = args.executors.split(",")
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    runs: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp, start_replay_server() as base:
        folder = Path(tmp)
        for cells in sizes:
            suite = write_suite(folder, base, cells, args.concurrency)
            for executor in executors:
                db = folder / f"{executor}{cells}.db"
                runs[(cells, executor)] = r = run_cli(suite, db, executor)
                print(f"  {executor} {cells}: {r['wall']:.1f} s, {cells / r['wall']:.0f} cells/s, "
                      f"{r['rss_mb']:.0f} MB", flush=True)
        startup = ray_startup() if "ray" in executors else None
        sqlite_rate = write_rate(str(folder / "writes.db"))
    pg_rate = write_rate(args.pg) if args.pg else None

    print("\n| executor | cells | wall (s) | cells/s | driver peak RSS (MB) | rows (total / distinct keys) |")
    print("|---|---:|---:|---:|---:|---:|")
    for (cells, executor), r in runs.items():
        print(f"| {executor} | {cells:,} | {r['wall']:.1f} | {cells / r['wall']:.0f} | {r['rss_mb']:.0f} | "
              f"{r['rows']} / {r['distinct']} |")
    if startup is not None:
        print(f"\nRay start-up (init + shutdown of a local Ray): {startup:.1f} s")
        for cells in sizes:
            if (cells, "local") in runs and (cells, "ray") in runs:
                extra = runs[(cells, "ray")]["wall"] - startup - runs[(cells, "local")]["wall"]
                print(f"Ray's overhead at {cells:,} cells: {extra * 1000 / cells:.2f} ms per cell "
                      f"({extra:.1f} s beyond the local executor and Ray's start-up)")
    print(f"\nLedger write rate (Store.add_results, batches of 500): SQLite {sqlite_rate:,.0f} rows/s"
          + (f", PostgreSQL {pg_rate:,.0f} rows/s" if pg_rate else ""))


if __name__ == "__main__":
    main()
