"""What one sandboxed test run costs: `tryouts.scoring.sandbox.run_tests` on a trivial function, per isolation.

    .venv/bin/python benchmarks/sandbox.py [--reps 30]

Times REPS runs of a correct `add` against three asserts (status "passed") in bubblewrap (where it isolates
processes here) and in the unsafe mode a user can opt in to (bubblewrap forced missing), and a bare
`python -I -c pass` subprocess as the floor. Each run starts two interpreters (the tests' harness and the
code's process) and one call per assert crosses a pipe. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from unittest import mock

from tryouts.scoring import sandbox

CODE = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(2, 2) == 4\n"


def timed(fn, reps: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    rows = [("bare `python -I -c pass` subprocess", timed(
        lambda: subprocess.run([sys.executable, "-I", "-c", "pass"], check=True), args.reps))]

    def one() -> None:
        r = sandbox.run_tests(CODE, TESTS, timeout_s=10)
        assert r.passed, r.stderr

    if sandbox.isolation() == "bwrap":
        rows.append(("run_tests, bubblewrap", timed(one, args.reps)))
    with mock.patch.object(sandbox, "_cached_probe", lambda: (None, "forced")), \
            mock.patch.dict(os.environ, {sandbox.UNSAFE_ENV: "1"}):
        rows.append(("run_tests, unsafe mode (forced)", timed(one, args.reps)))
    print(f"\n### Code sandbox ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{args.reps} runs each)\n")
    print("| What | p50 ms | p90 ms |\n|---|---:|---:|")
    for name, ms in rows:
        ms.sort()
        print(f"| {name} | {statistics.median(ms):.1f} | {ms[int(0.9 * (len(ms) - 1))]:.1f} |")


if __name__ == "__main__":
    main()
