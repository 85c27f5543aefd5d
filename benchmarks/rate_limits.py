"""Fixed against adaptive concurrency under a server's rate limits.

    .venv/bin/python benchmarks/rate_limits.py [--cells 2000] [--rpm 3000] [--tpm 0] [--fixed 16]

The scripted replay server (on 127.0.0.1) enforces a token bucket of ``--rpm`` requests and ``--tpm`` tokens per
minute (one second of burst) and sends OpenAI's ``x-ratelimit-*`` headers; a request over it gets a 429 with
Retry-After. Each answer is 20 tokens, 50 ms to the first and 5 ms between the others (150 ms in all), for an
11-token prompt. A suite of ``--cells`` cells runs through the real CLI (``tryouts run --no-cache``) three ways:

* ``fixed``: ``--fixed`` requests in flight, ``adaptive: false`` (what a client that only reacts to 429s does:
  the cell that got one waits its Retry-After and retries, up to 3 times);
* ``adaptive``: starting at 4 in flight, growing to at most 64, pacing to the headers (engine/throttle.py);
* ``adaptive, no headers``: the same against a server that sends no rate-limit headers, only 429s
  (additive increase, multiplicative decrease alone).

For each: wall time, 429s (the server's count of refused requests, as a share of all it received), cells that
failed, and utilisation: requests admitted / what the bucket allowed between the first and the last arrival
(its one-second burst plus the rate times that span). Target for adaptive: >= 90 % utilisation with < 1 % of
requests answered 429. Prints a Markdown table for benchmarks/RESULTS.md. Bounded: the cells given, a
10-minute limit per run; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tryouts.testing.replay import start_replay_server

RUN_LIMIT_S = 600
ANSWER = "tokens=20;ttft_ms=50;itl_ms=5;prompt_tokens=11"


def write_suite(folder: Path, base: str, name: str, cells: int, limits: str, concurrency: int, rate: str) -> Path:
    data = folder / "prompts.csv"
    if not data.exists():
        with open(data, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n"])
            w.writerows([i] for i in range(cells))
    suite = folder / f"{name}.yaml"
    suite.write_text(
        f"description: rate-limit benchmark ({name})\n"
        f'models:\n  - model: "openai-compat:{base}#{ANSWER};{limits};bucket={name}"\n    label: m\n'
        'prompts:\n  - "Question {{n}}"\n'
        "dataset: prompts.csv\n"
        f"concurrency: {{openai-compat: {concurrency}}}\n"
        f"rate_limits: {{openai-compat: {rate}}}\n"
        "defaults:\n  params: {max_tokens: 32}\n"
    )
    return suite


def run(folder: Path, base: str, name: str, cells: int, limits: str, concurrency: int, rate: str,
        rpm: float, tpm: float) -> dict:
    suite = write_suite(folder, base, name, cells, limits, concurrency, rate)
    db = folder / f"{name}.db"
    cmd = [sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-progress", "--no-cache"]
    root = base.removesuffix("/v1")
    before = len(httpx.get(f"{root}/_replay/arrivals").json()["arrivals"])
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=RUN_LIMIT_S, check=False)
    wall = time.perf_counter() - t0
    bucket = httpx.get(f"{root}/_replay/limits").json()[name]
    arrivals = [t for t, _ in httpx.get(f"{root}/_replay/arrivals").json()["arrivals"][before:]]
    span = (max(arrivals) - min(arrivals)) / 1e9
    per_s = [r / 60.0 for r in (rpm, tpm / 31.0) if r]  # 31 tokens a request: 11 in, 20 out
    rate_s = min(per_s)
    allowed = rate_s * 1.0 + rate_s * span  # one second of burst, then the refill
    con = sqlite3.connect(db)
    n, failed = con.execute("SELECT count(*), sum(1 - ok) FROM results").fetchone()
    con.close()
    total = bucket["admitted"] + bucket["refused"]
    return {"name": name, "wall": wall, "span": span, "admitted": bucket["admitted"], "refused": bucket["refused"],
            "share_429": bucket["refused"] / total if total else 0.0, "util": bucket["admitted"] / allowed,
            "rows": n, "failed": failed or 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=2000)
    ap.add_argument("--rpm", type=float, default=3000)
    ap.add_argument("--tpm", type=float, default=0)
    ap.add_argument("--fixed", type=int, default=16)
    args = ap.parse_args()
    limits = f"rpm={int(args.rpm)}" + (f";tpm={int(args.tpm)}" if args.tpm else "")
    runs = [
        ("fixed", limits, args.fixed, "{adaptive: false}"),
        ("adaptive", limits, 4, "{max_concurrency: 64}"),
        ("adaptive_no_headers", limits + ";rl_headers=0", 4, "{max_concurrency: 64}"),
    ]
    out = []
    with tempfile.TemporaryDirectory() as tmp, start_replay_server() as base:
        for name, lim, conc, rate in runs:
            r = run(Path(tmp), base, name, args.cells, lim, conc, rate, args.rpm, args.tpm)
            out.append(r)
            print(f"{name}: {r}", file=sys.stderr)
    print(f"\n{args.cells} cells, limit {limits.replace(';', ', ')} per minute (1 s burst), answers of 150 ms; "
          f"{platform.python_version()}, {platform.machine()}\n")
    print("| client | wall s | 429s (share of requests) | failed cells | utilisation of the allowed rate |")
    print("|---|---:|---:|---:|---:|")
    for r in out:
        print(f"| {r['name']} | {r['wall']:.1f} | {r['refused']} ({r['share_429']:.2%}) | {r['failed']} "
              f"| {r['util']:.1%} |")


if __name__ == "__main__":
    main()
