"""The dashboard's run-detail page and API on a run of 2,000 results, on this machine.

    .venv/bin/python benchmarks/dashboard.py [--cases 500] [--models 4] [--reps 30]

1. Stores a real suite run through the CLI: CASES cases x MODELS models (scripted replay models with
   assertions, so quality, pass rates and intervals are computed) = 2,000 results by default.
2. Starts `tryouts ui --no-browser` in a subprocess on 127.0.0.1.
3. API latency: REPS timed GETs of each run-detail endpoint (after one warm-up call), p50 and p95.
4. Page: Debian's Chromium through Playwright opens /runs/RUN REPS/3 times (fresh page each time, warm
   server): first contentful paint, DOMContentLoaded, and "usable" = the summary table and the first grid row
   are in the DOM; also the time until the charts have drawn (Plotly's SVG present).

Targets (issue 7): API p50 <= 100 ms, page usable <= 1 s. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

from tryouts.testing.replay import start_replay_server

ANSWERS = ("Paris is the capital of France.", "I think it is Lyon.", "Paris.", "The capital is Paris, yes.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_run(folder: Path, base: str, cases: int, models: int, db: Path) -> str:
    with open(folder / "cases.csv", "w") as f:
        f.write("n,answer\n" + "".join(f"{i},Paris\n" for i in range(cases)))
    lines = [
        "models:",
        *(f'  - {{model: "openai-compat:{base}#text={urllib.parse.quote(ANSWERS[m % len(ANSWERS)], safe="")}", '
          f"label: model-{m}}}" for m in range(models)),
        'prompts: ["Question {{n}}: what is the capital of France?"]',
        "dataset: {path: cases.csv, expected: answer}",
        "concurrency: {default: 32}",
    ]
    (folder / "suite.yaml").write_text("\n".join(lines) + "\n")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(folder / "suite.yaml"), "--db", str(db),
                        "--no-progress", "--format", "json"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr + p.stdout)
    import json

    run = json.loads(p.stdout)
    print(f"stored run {run['run']['id']}: {len(run['results'])} results in {time.perf_counter() - t:.1f} s",
          file=sys.stderr)
    return run["run"]["id"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def time_api(base: str, run_id: str, reps: int) -> list[tuple[str, float, float, int]]:
    rows = []
    with httpx.Client(timeout=60) as client:
        for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/results?limit=500",
                     f"/api/runs/{run_id}/results?view=failures", f"/api/runs/{run_id}/charts", "/api/runs"):
            client.get(base + path).raise_for_status()  # warm-up
            times, size = [], 0
            for _ in range(reps):
                t = time.perf_counter()
                r = client.get(base + path)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                size = len(r.content)
            rows.append((path.replace(run_id, "RUN"), statistics.median(times), pct(times, 95), size))
    return rows


def time_page(base: str, run_id: str, reps: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"fcp": [], "dcl": [], "usable": [], "charts": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage"])
        try:
            for i in range(reps + 1):
                page = browser.new_page()
                page.goto(f"{base}/runs/{run_id}", wait_until="commit")
                page.wait_for_function("document.querySelector('table') && document.querySelectorAll('table tr').length > 2",
                                       timeout=30000)
                usable = page.evaluate("performance.now()")
                page.wait_for_selector(".main-svg", timeout=30000)
                charts = page.evaluate("performance.now()")
                timing = page.evaluate("""() => {
                    const nav = performance.getEntriesByType('navigation')[0];
                    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                    return {dcl: nav.domContentLoadedEventEnd, fcp: fcp ? fcp.startTime : null};
                }""")
                if i > 0:  # the first is a warm-up (browser caches, server imports)
                    out["usable"].append(usable)
                    out["charts"].append(charts)
                    out["dcl"].append(timing["dcl"])
                    if timing["fcp"] is not None:
                        out["fcp"].append(timing["fcp"])
                page.close()
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_replay_server() as base_url:
        folder = Path(tmp)
        db = folder / "bench.db"
        run_id = store_run(folder, base_url, args.cases, args.models, db)
        port = free_port()
        ui = subprocess.Popen([sys.executable, "-m", "tryouts", "ui", "--no-browser", "--port", str(port),
                               "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(base + "/api/csrf", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or ui.poll() is not None:
                        raise SystemExit("the dashboard did not start: " + (ui.stdout.read() if ui.stdout else "")) from None
                    time.sleep(0.1)
            api = time_api(base, run_id, args.reps)
            page = time_page(base, run_id, max(3, args.reps // 3))
        finally:
            ui.terminate()
            ui.wait(10)
    n = args.cases * args.models
    print(f"\n### Dashboard, run of {n:,} results ({platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()})\n")
    print("| API endpoint | p50 ms | p95 ms | bytes |\n|---|---:|---:|---:|")
    for path, p50, p95, size in api:
        print(f"| `GET {path}` | {p50:.1f} | {p95:.1f} | {size:,} |")
    print("\n| Page `/runs/RUN` | p50 ms | max ms |\n|---|---:|---:|")
    for key, name in (("fcp", "first contentful paint"), ("dcl", "DOMContentLoaded"),
                      ("usable", "usable (summary + grid in the DOM)"), ("charts", "charts drawn")):
        if page[key]:
            print(f"| {name} | {statistics.median(page[key]):.0f} | {max(page[key]):.0f} |")


if __name__ == "__main__":
    main()
