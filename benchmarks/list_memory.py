"""Peak memory of `tryouts runs` on a ledger where one run's `meta` holds a huge value, against the same ledger
without it (the floor, measured in the same run).

A shared results database may hold anything anyone wrote. Before run lists measured `meta` in the database
(store/readable.py), one 200 MB value made every `tryouts runs` parse it (841 MB). Each figure is the child's
peak resident memory (ru_maxrss of a fresh `python -m tryouts runs`), the best of ``--repeats``.

    python benchmarks/list_memory.py --mb 200 --runs 50 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ledger(folder: Path, runs: int, huge_mb: int) -> Path:
    """A SQLite ledger of ``runs`` small comparison runs and, when ``huge_mb``, one more with that much in meta."""
    from tryouts.store import Store

    db = folder / f"ledger-{huge_mb}.db"
    store = Store(db)
    for i in range(runs):
        store.create_run("compare", ["openai:gpt-6-luna"], {"messages": [{"role": "user", "content": f"hi {i}"}]},
                         {"labels": ["a"]})
    if huge_mb:
        big = store.create_run("compare", ["openai:gpt-6-luna"], {"messages": []}, {})
        store.close()
        con = sqlite3.connect(db)  # written as a hostile writer would: past the store's own checks
        con.execute("UPDATE runs SET meta = ? WHERE id = ?", (json.dumps({"pad": "x" * (huge_mb * 1_000_000)}), big))
        con.commit()
        con.close()
    else:
        store.close()
    return db


def peak(db: Path) -> tuple[float, float]:
    """(peak MB, seconds) of one `tryouts runs --db DB` in a fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "p = subprocess.run([sys.executable, '-m', 'tryouts', 'runs', '-n', '0', '--db', sys.argv[1]], "
            "capture_output=True); assert p.returncode == 0, p.stderr; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=True,
                         timeout=600)
    kb, seconds = out.stdout.split()
    return int(kb) / 1024, float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200, help="size of the huge value in MB (default 200)")
    ap.add_argument("--runs", type=int, default=50, help="small runs in the ledger (default 50)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor_db, huge_db = ledger(folder, args.runs, 0), ledger(folder, args.runs, args.mb)
        started = time.monotonic()
        floor = min(peak(floor_db) for _ in range(args.repeats))
        huge = min(peak(huge_db) for _ in range(args.repeats))
        print(json.dumps({"value_mb": args.mb, "runs": args.runs, "floor_mb": round(floor[0], 1),
                          "floor_s": round(floor[1], 2), "huge_mb": round(huge[0], 1), "huge_s": round(huge[1], 2),
                          "extra_mb_per_value_mb": round((huge[0] - floor[0]) / args.mb, 2),
                          "wall_s": round(time.monotonic() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
