"""The dashboard's run page and its API on runs of 2,000 and 100,000 results, on this machine.

    .venv/bin/python benchmarks/dashboard.py [--sizes 2000,100000] [--models 4] [--reps 10] [--budget 600]

1. Builds a store with one suite-like run per size: SIZE results over MODELS models (SIZE / MODELS cases),
   synthetic results (timings, usage, prices, an assertion and token F1 per result, outputs of a few hundred
   characters that differ between models, some in Markdown) inserted in bulk through the store API
   (``Store.add_results`` in chunks), and the run's quality summary stored in its meta as ``tryouts run``
   does.
2. Starts ``tryouts ui --no-browser`` on 127.0.0.1 (a subprocess, with a known token).
3. API: REPS timed GETs of each run-page endpoint after a warm-up (the first request after a change of run
   can be slower: its time is printed as "first").
4. Page: Debian's Chromium through Playwright opens /runs/RUN REPS times (a fresh page each time, warm
   server and browser cache), after a warm-up load: first contentful paint, DOMContentLoaded, first chart
   visible (the first animation frame with an ``<svg>`` in ``#charts`` of non-zero size: server-drawn or
   Plotly's, noted by a script Playwright adds to the page), the interactive (Plotly) charts drawn when the
   page draws them by itself, all from the navigation's start; and the grid's second page (navigation to
   ``?page=2`` until its rows are in the DOM, timed from Python).

Every step has a timeout and the whole script stops measuring after BUDGET seconds (what was measured is
printed). Prints Markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

TOKEN = "benchmark-token-for-the-dashboard"
ANSWERS = (
    "Paris is the capital of France.",
    "I think it is **Lyon**, though Paris is the capital.\n\n- reason one\n- reason two",
    "Paris.",
    "The capital is `Paris`, yes.\n\n```\nprint('Paris')\n```",
)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_run(db: Path, size: int, models: int) -> str:
    """A suite-like run of ``size`` synthetic results, inserted in bulk through the store API."""
    from tryouts.scoring.summary import quality_report, quality_rows
    from tryouts.store import Store
    from tryouts.types import Cost, GenParams, Message, Request, Result, Timing, Usage

    store = Store(str(db))
    refs = [f"openai-compat:http://127.0.0.1:9/v1#bench-model-{m}" for m in range(models)]
    labels = [f"model-{m}" for m in range(models)]
    cases = size // models
    run_id = store.create_run("suite", refs, {"suite": "bench.yaml", "cases": cases},
                              {"labels": labels, "n_cells": cases * models, "repeats": 1})
    t = time.perf_counter()
    now = datetime.now(UTC)
    chunk: list[Result] = []
    for c in range(cases):
        request = Request(messages=[Message(role="user", content=f"Question {c}: what is the capital of France?")],
                          params=GenParams(max_tokens=128))
        for m in range(models):
            text = f"{ANSWERS[m % len(ANSWERS)]} (case {c})" + " filler" * (10 + (c * 7 + m) % 40)
            ok = (c * 13 + m) % 97 != 0
            passed = ok and "Paris" in text.split(".")[0]
            ttft = 40.0 + m * 15 + (c * 37 % 50)
            e2e = ttft + 200 + (c * 53 % 300)
            out_tokens = 20 + (c + m) % 60
            chunk.append(Result(
                model=refs[m], provider="openai-compat", model_name=f"bench-model-{m}", ok=ok,
                error=None if ok else "HTTP 500 from the server", error_kind=None if ok else "server",
                text=text if ok else "", started_at=now, finish_reason="stop",
                timing=Timing(ttft_ms=ttft, e2e_ms=e2e, output_tokens_per_s=out_tokens / (e2e - ttft) * 1000,
                              n_chunks=out_tokens),
                usage=Usage(input_tokens=12, output_tokens=out_tokens),
                cost=Cost(total=Decimal("0.000001") * (m + 1) * out_tokens, source="override"),
                request=request, case={"prompt_id": "p0", "case_id": str(c), "vars": {"n": str(c)},
                                       "expected": "Paris"},
                scores={"assert": {"passed": passed, "score": 1.0 if passed else 0.0,
                                   "results": [{"type": "icontains", "passed": passed}]},
                        "reference": {"token_f1": round(((c * 31 + m * 17) % 100) / 100, 2)}},
                model_index=m, case_index=c, cell_key=f"{m}:{c}:0", timing_valid=True))
            if len(chunk) >= 5000:
                store.add_results(run_id, chunk)
                chunk = []
    if chunk:
        store.add_results(run_id, chunk)
    scored = quality_rows(store.iter_results(run_id, ["model_index", "case_index", "scores"]))
    store.update_run_meta(run_id, {"quality": quality_report(scored, labels)})
    n, failed = store.count_results(run_id)
    store.finish_run(run_id, "partial" if failed else "done")
    print(f"stored run {run_id}: {n:,} results in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return run_id


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def time_api(base: str, run_id: str, reps: int, deadline: float) -> list[tuple[str, float, float, float, int]]:
    rows = []
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for path in (f"/runs/{run_id}", f"/api/runs/{run_id}", f"/api/runs/{run_id}/charts",
                     f"/api/runs/{run_id}/results?limit=500", f"/api/runs/{run_id}/results?view=failures&limit=500",
                     f"/api/runs/{run_id}/results?view=differ&limit=500", f"/runs/{run_id}?page=2"):
            t = time.perf_counter()
            client.get(base + path).raise_for_status()  # warm-up
            first = (time.perf_counter() - t) * 1000
            times, size = [], 0
            for _ in range(reps):
                if time.monotonic() > deadline:
                    break
                t = time.perf_counter()
                r = client.get(base + path)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                size = len(r.content)
            if times:
                rows.append((path.replace(run_id, "RUN"), first, statistics.median(times), pct(times, 95), size))
    return rows


def time_page(base: str, run_id: str, reps: int, deadline: float, step_s: float) -> dict[str, list[float]]:
    """Page loads in Chromium; a step that takes longer than ``step_s`` is recorded as inf (printed as "> N s")."""
    from playwright.sync_api import TimeoutError as Timeout
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"fcp": [], "dcl": [], "chart": [], "interactive": [], "grid2": []}
    # in the page, from its first script on: each animation frame, note when a chart (an <svg> in #charts with a
    # size) is first there and when Plotly's charts are drawn (performance.now(): ms since navigation start)
    watch = """(() => {
        const seen = {};
        window.__bench = seen;
        const tick = () => {
            if (seen.chart === undefined && Array.from(document.querySelectorAll('#charts svg')).some(s => {
                const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0; })) seen.chart = performance.now();
            const box = document.getElementById('charts');
            if (seen.interactive === undefined && box && box.dataset.drawn === '1') seen.interactive = performance.now();
            if (seen.interactive === undefined) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
    })();"""
    ms = step_s * 1000
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
        context.add_init_script(watch)
        try:
            for i in range(reps + 1):
                if time.monotonic() > deadline:
                    break
                got: dict[str, float] = {}
                page = context.new_page()
                try:
                    page.goto(f"{base}/runs/{run_id}", wait_until="commit", timeout=ms)
                    page.wait_for_function("() => window.__bench && window.__bench.chart !== undefined",
                                           timeout=ms)
                    got["chart"] = page.evaluate("window.__bench.chart")
                    page.wait_for_load_state("domcontentloaded", timeout=ms)
                    got["dcl"] = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
                    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
                    if fcp is not None:
                        got["fcp"] = fcp
                    auto = page.evaluate("(document.getElementById('charts') || {dataset: {}}).dataset.interactive")
                    if auto in (None, "auto"):  # the page draws Plotly's charts by itself (before: always)
                        try:
                            page.wait_for_function("() => window.__bench.interactive !== undefined", timeout=ms)
                            got["interactive"] = page.evaluate("window.__bench.interactive")
                        except Timeout:
                            got["interactive"] = math.inf
                    t = time.perf_counter()
                    page.goto(f"{base}/runs/{run_id}?page=2#outputs", wait_until="commit", timeout=ms)
                    page.wait_for_selector("#grid tbody tr", state="attached", timeout=ms)
                    got["grid2"] = (time.perf_counter() - t) * 1000
                except Timeout:
                    for key in out:
                        got.setdefault(key, math.inf)
                finally:
                    page.close()
                if i > 0:  # the first is a warm-up (browser caches, server imports)
                    for key, value in got.items():
                        out[key].append(value)
        finally:
            context.close()
            browser.close()
    return out


def start_ui(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "tryouts", "ui", "--no-browser", "--port", str(port), "--db",
                           str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRYOUTS_UI_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{port}"
    limit = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/api/csrf", timeout=2, headers={"Authorization": f"Bearer {TOKEN}"})
            return ui, base
        except httpx.TransportError:
            if time.monotonic() > limit or ui.poll() is not None:
                ui.kill()
                raise SystemExit("the dashboard did not start") from None
            time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,100000", help="results per run, comma-separated")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget", type=float, default=600, help="seconds of measuring at most (builds excluded)")
    ap.add_argument("--db", help="reuse (or build into) DB.SIZE files instead of temporary ones")
    ap.add_argument("--step-timeout", type=float, default=60, help="seconds one page step may take")
    args = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for size in sizes:
            db = Path(args.db + f".{size}") if args.db else Path(tmp) / f"bench-{size}.db"
            if db.exists():
                from tryouts.store import Store

                runs[size] = (db, Store(str(db)).get_run_row("latest")["id"])
            else:
                t = time.perf_counter()
                runs[size] = (db, build_run(db, size, args.models))
                print(f"built {size:,} results in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        deadline = time.monotonic() + args.budget
        for size in sizes:
            db, run_id = runs[size]
            ui, base = start_ui(db)
            try:
                reps = args.reps if size <= 10_000 else max(2, args.reps // 3)
                api = time_api(base, run_id, reps, deadline)
                page = time_page(base, run_id, reps, deadline, args.step_timeout)
            finally:
                ui.terminate()
                ui.wait(10)
            report.append((size, api, page))
    print(f"\n### Dashboard ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    for size, api, page in report:
        print(f"Run of {size:,} results ({args.models} models):\n")
        print("| Request | first ms | p50 ms | p95 ms | bytes |\n|---|---:|---:|---:|---:|")
        for path, first, p50, p95, nbytes in api:
            print(f"| `GET {path}` | {first:.0f} | {p50:.1f} | {p95:.1f} | {nbytes:,} |")
        print("\n| Page `/runs/RUN` in Chromium | p50 ms | max ms | loads |\n|---|---:|---:|---:|")
        for key, name in (("fcp", "first contentful paint"), ("dcl", "DOMContentLoaded"), ("chart", "first chart visible"),
                          ("interactive", "interactive (Plotly) charts drawn"), ("grid2", "grid page 2 rendered")):
            if page[key]:
                p50, top = statistics.median(page[key]), max(page[key])
                shown = [f"{v:.0f}" if math.isfinite(v) else f"> {args.step_timeout * 1000:.0f}" for v in (p50, top)]
                print(f"| {name} | {shown[0]} | {shown[1]} | {len(page[key])} |")
        print()


if __name__ == "__main__":
    main()
