"""The run engine at scale: 500 prompts x 4 models x 5 repeats = 10,000 cells on this machine.

    .venv/bin/python benchmarks/engine_scale.py [--prompts 500] [--repeats 5] [--concurrency 64]

Generates a suite (a CSV dataset of prompts, four OpenAI-compatible models served by the scripted replay
server on 127.0.0.1 with no artificial delays) and runs it through the real CLI in a subprocess:

1. a full run: cells/s (cells / wall time of the `tryouts run` process) and its peak RSS, with the streams
   read in the run's own event loop (``--client-processes 0``) and by a worker process (the default at
   this concurrency, providers/offload.py);
2. the same suite again, killed with SIGKILL once half of its cells are stored, then
   `tryouts run --resume RUN`: the rows must be exactly one per cell.

Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tryouts.testing.replay import start_replay_server

MODELS = ("tokens=8", "tokens=16;per_chunk=4", "tokens=4;reasoning=2", "tokens=12;usage=never")


def write_suite(folder: Path, base: str, prompts: int, repeats: int, concurrency: int) -> Path:
    with open(folder / "prompts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "question"])
        for i in range(prompts):
            w.writerow([i, f"What is pretrained model number {i} good for?"])
    models = "\n".join(f'  - model: "openai-compat:{base}#{s}"\n    label: m{i}' for i, s in enumerate(MODELS))
    suite = folder / "scale.yaml"
    suite.write_text(
        f"description: engine scale benchmark\nmodels:\n{models}\n"
        "prompts:\n  - \"Q{{n}}: {{question}}\"\n"
        "dataset: prompts.csv\n"
        f"repeats: {repeats}\n"
        f"concurrency: {{openai-compat: {concurrency}}}\n"
        "defaults:\n  params: {max_tokens: 64}\n"
    )
    return suite


def tryouts(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "tryouts", "run", *args, "--db", str(db), "--no-progress", "--no-cache"]


def rows(db: Path) -> tuple[int, int]:
    con = sqlite3.connect(db, timeout=30)
    try:
        total = con.execute("SELECT count(*) FROM results").fetchone()[0]
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT run_id, model_index, case_index, repeat_index FROM results)"
        ).fetchone()[0]
        return total, distinct
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    n_cells = args.prompts * len(MODELS) * args.repeats
    env = {**os.environ, "TRYOUTS_CACHE_DIR": tempfile.mkdtemp(), "TRYOUTS_CONFIG_DIR": tempfile.mkdtemp()}
    with tempfile.TemporaryDirectory() as tmp, start_replay_server() as base:
        folder = Path(tmp)
        suite = write_suite(folder, base, args.prompts, args.repeats, args.concurrency)

        full = []
        for procs in ("0", "auto"):  # streams read in the run's own event loop, then by a worker process (default)
            db = folder / f"full-{procs}.db"
            extra = ["--client-processes", procs] if procs != "auto" else []
            t = time.perf_counter()
            subprocess.run(tryouts(str(suite), *extra, db=db), check=True, env=env, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t
            full.append((procs, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rows(db)))

        db2 = folder / "killed.db"
        t = time.perf_counter()
        proc = subprocess.Popen(tryouts(str(suite), db=db2), env=env, stdout=subprocess.DEVNULL)
        while rows(db2)[0] < n_cells // 2 and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = rows(db2)[0]
        run_id = sqlite3.connect(db2).execute("SELECT id FROM runs").fetchone()[0]
        subprocess.run(tryouts("--resume", run_id, db=db2), check=True, env=env, stdout=subprocess.DEVNULL)
        wall2 = time.perf_counter() - t
        resumed_rows = rows(db2)

    print(f"\n{n_cells} cells ({args.prompts} prompts x {len(MODELS)} models x {args.repeats} repeats), concurrency "
          f"{args.concurrency}; Python {platform.python_version()}, {os.cpu_count()} cores\n")
    print("| run | wall (s) | cells/s | peak RSS of `tryouts run` (MB) | rows (total / distinct cells) |")
    print("|---|---:|---:|---:|---:|")
    for procs, wall, peak_mb, full_rows in full:
        print(f"| full run, client processes {procs} | {wall:.1f} | {n_cells / wall:.0f} | {peak_mb:.0f} | "
              f"{full_rows[0]} / {full_rows[1]} |")
    print(f"| SIGKILL at {at_kill} rows, then --resume | {wall2:.1f} | {n_cells / wall2:.0f} | "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} | {resumed_rows[0]} / {resumed_rows[1]} |")


if __name__ == "__main__":
    main()
