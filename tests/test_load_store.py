"""Load benchmarks in the store (store/load.py, usecases/load_results.py), `tryouts load show|compare`, their
exports and the report's charts (report/load_report.py, report/svg.py), against the scripted replay server."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from tryouts.errors import UsageError
from tryouts.load.metrics import RequestRecord
from tryouts.report.load_report import in_flight, pareto_front, render_load_html
from tryouts.report.svg import nice_ticks
from tryouts.store import Store
from tryouts.usecases.load import LoadLedger, LoadSettings, run_load, run_sweep
from tryouts.usecases.load_results import (
    compare_benchmarks,
    export_load,
    load_benchmark,
    point_records,
    recompute,
)


def tryouts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=120)


def _same(stored: dict, again: dict) -> list[str]:
    """The keys whose values differ between a stored point's figures and the same computed again."""
    out = []
    for key, value in again.items():
        if isinstance(value, float) and stored.get(key) is not None:
            if abs(value - stored[key]) > 1e-9 * max(1.0, abs(value)):
                out.append(key)
        elif stored.get(key) != value:
            out.append(key)
    return out


def test_a_point_is_stored_with_every_request_and_its_figures_come_back_from_the_rows(replay_server, tmp_path):
    store = Store(tmp_path / "t.db")
    ref = f"openai-compat:{replay_server}#tokens=4;ttft_ms=10;itl_ms=3"
    settings = LoadSettings(profile="constant", rate=100, requests=12, warmup=2, cooldown=1, slo={"ttft": 1000})
    out = run_load(ref, settings)
    ledger = LoadLedger(store, ref, "constant", settings)
    ledger.point(out)
    ledger.point(out | {"profile": "constant"})  # a second point, to see two kept apart
    ledger.finish(out)
    rows = store.load_requests(ledger.run_id, 0)
    assert [r["phase"] for r in rows] == ["warmup"] * 2 + ["measured"] * 12 + ["cooldown"]
    first = next(r for r in rows if r["phase"] == "measured")
    assert first["due_ms"] == 0.0 and first["status"] == "ok" and len(first["chunk_ms"]) == 4
    assert first["sent_ms"] <= first["first_ms"] <= first["chunk_ms"][-1] <= first["done_ms"]
    assert first["first_ms"] - first["sent_ms"] >= 10  # the server waited 10 ms
    assert rows[0]["due_ms"] < 0  # a warm-up request came before the measured window
    stored = store.load_points(ledger.run_id)[0]["figures"]
    assert stored["completed"] == 12 and stored["slo_attainment"] == 1.0
    assert _same(stored, recompute(store, ledger.run_id, 0)) == []
    # the stored records are the originals, to the nanosecond from the point's start
    again = point_records(store, ledger.run_id, 0)
    assert [(r.first_ns, r.chunk_ns) for r in again] == [
        (r.first_ns - out["start_ns"], [t - out["start_ns"] for t in r.chunk_ns]) for r in out["records"]]
    bench = load_benchmark(store, ledger.run_id)
    assert [p["point_index"] for p in bench["points"]] == [0, 1] and bench["run"]["status"] == "done"
    assert bench["summary"]["completed"] == 12 and "records" not in bench["summary"]


def test_storing_a_point_twice_keeps_the_first_and_hostile_values_are_made_safe(tmp_path, monkeypatch):
    secret = "sk-live-0123456789abcdefXYZ"
    monkeypatch.setenv("SOME_API_KEY", secret)
    store = Store(tmp_path / "t.db")
    run_id = store.create_run("load", ["openai-compat:http://127.0.0.1:9/v1#m"], {}, {"profile": "synchronous"})
    rec = RequestRecord(index=0, due_ns=0, sent_ns=5, done_ns=9, status="error",
                        error=f"the server reported completion_tokens = '{secret}'", request_id=f"id-{secret}\x00",
                        rate_limit={"retry-after": secret})
    figures = {"completed": 0, "p50_ttft_ms": float("nan"), "request_rate": float("inf")}
    store.add_load_point(run_id, 0, "synchronous", {}, figures, [rec.to_row(0)])
    store.add_load_point(run_id, 0, "concurrent", {}, {"completed": 99}, [RequestRecord(0, 0).to_row(0)])
    [point] = store.load_points(run_id)
    assert point["profile"] == "synchronous" and point["figures"] == {"completed": 0, "p50_ttft_ms": None,
                                                                       "request_rate": None}
    [row] = store.load_requests(run_id)
    text = json.dumps(row)
    assert secret not in text and "***" in row["error"] and "\x00" not in row["request_id"]
    assert row["status"] == "error"


def test_a_sweep_is_stored_point_by_point_and_shown_compared_and_exported(replay_server, tmp_path):
    db = str(tmp_path / "t.db")
    ref = f"openai-compat:{replay_server}#tokens=3;ttft_ms=5;itl_ms=2"
    sweep = tryouts("load", ref, "--db", db, "-p", "sweep", "--sweep-size", "3", "--streams", "3", "-n", "6",
                    "--slo", "ttft:1000", "-f", "json")
    assert sweep.returncode == 0, sweep.stderr
    sweep_id = json.loads(sweep.stdout)["run_id"]
    assert f"Stored as run {sweep_id}" in sweep.stderr
    one = tryouts("load", ref, "--db", db, "-p", "concurrent", "--streams", "2", "-n", "4")
    assert one.returncode == 0 and "Stored as run" in one.stdout
    shown = json.loads(tryouts("load", "show", sweep_id, "--db", db, "-f", "json").stdout)
    assert [p["profile"] for p in shown["points"]] == ["synchronous", "concurrent", "constant"]
    assert shown["headline"]["max_request_throughput"] == max(p["request_throughput"] for p in shown["points"])
    again = tryouts("show", sweep_id, "--db", db)  # the generic command knows a load run too
    assert again.returncode == 0 and "synchronous" in again.stdout and "constant" in again.stdout
    runs = json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)
    assert [(r["kind"], r["n_results"], r["n_failed"]) for r in runs] == [("load", 4, 0), ("load", 18, 0)]
    compared = tryouts("load", "compare", sweep_id, "latest", "--db", db)
    assert compared.returncode == 0 and "Side by side" in compared.stdout and sweep_id in compared.stdout
    for args, words in ((["compare", sweep_id], "two or more"), (["compare", sweep_id, sweep_id], "a second time"),
                        (["show"], "Name one stored benchmark"), (["compare", sweep_id, "nope"], "No run 'nope'")):
        p = tryouts("load", *args, "--db", db)
        assert p.returncode == 1 and words in p.stdout + p.stderr, (args, p.stdout + p.stderr)
    csv_text = tryouts("export", sweep_id, "-f", "csv", "--db", db, "-o", "-").stdout
    assert csv_text.splitlines()[0].startswith("run_id,point_index,profile,request_rate") and len(csv_text.splitlines()) == 4
    lines = tryouts("export", sweep_id, "-f", "jsonl", "--db", db, "-o", "-").stdout.splitlines()
    assert len(lines) == 18 and {json.loads(x)["point_index"] for x in lines} == {0, 1, 2}
    html_path = tmp_path / "r.html"
    assert tryouts("export", sweep_id, "-f", "html", "--db", db, "-o", str(html_path)).returncode == 0
    html = html_path.read_text()
    assert html.count("<svg") == 7 and "src=" not in html and "<script" not in html and "http-equiv" in html


def test_reading_a_run_that_is_not_a_load_benchmark_says_so(tmp_path):
    store = Store(tmp_path / "t.db")
    run_id = store.create_run("suite", ["openai:gpt-4o-mini"], {})
    with pytest.raises(UsageError, match="is a suite run, not a load benchmark"):
        load_benchmark(store, run_id)
    with pytest.raises(UsageError, match="two or more"):
        compare_benchmarks(store, [run_id])
    with pytest.raises(UsageError, match="Unknown export format"):
        load_id = store.create_run("load", ["x:y"], {}, {"profile": "synchronous"})
        export_load(store, load_id, "xml")


def test_the_report_escapes_every_stored_string():
    evil = "openai-compat:http://127.0.0.1:1/v1#<img src=x onerror=alert(1)>"
    point = {"point_index": 0, "profile": "<b>p</b>", "request_rate": 2.0, "request_throughput": 1.5,
             "completed": 3, "num_prompts": 3, "p50_e2el_ms": 10.0, "p99_e2el_ms": 20.0, "p50_ttft_ms": 1.0,
             "p99_ttft_ms": 2.0, "median_tpot_ms": 4.0, "output_throughput": 30.0, "request_goodput": 1.0,
             "slo_attainment": 0.5}
    bench = {"run": {"id": "r1", "status": "done", "started_at": "2026-12-03T00:00:00"}, "model": evil,
             "profile": "constant", "summary": {"goodput_rate": 2.0, "slo_ms": {"ttft": 5}}, "points": [point],
             "warnings": ["<script>alert(3)</script>"]}
    html = render_load_html([bench, {**bench, "run": {**bench["run"], "id": "r2<i>"}}])
    tags = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

    Tags().feed(html)
    assert "img" not in tags and "script" not in tags and "b" not in tags and "i" not in tags
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;" in html


def test_chart_helpers_on_hand_computed_cases():
    assert nice_ticks(0, 6.9) == [0, 2, 4, 6, 8]
    assert nice_ticks(79, 244) == [50, 100, 150, 200, 250]
    # (x, y): higher is better on both; (1, 5) beats (0.5, 4); (3, 2) and (2, 3) are beaten by nothing
    assert pareto_front([(1, 5), (0.5, 4), (3, 2), (2, 3), (2, 1)]) == [(1, 5), (2, 3), (3, 2)]
    recs = [RequestRecord(0, 0, sent_ns=0, done_ns=4_000_000_000), RequestRecord(1, 0, sent_ns=1_000_000_000,
                                                                               done_ns=2_000_000_000),
            RequestRecord(2, 0, sent_ns=3_000_000_000, done_ns=None)]
    assert in_flight(recs) == [(0.0, 1.0), (1.0, 2.0), (2.0, 1.0), (3.0, 2.0), (4.0, 1.0)]
    many = [RequestRecord(i, 0, sent_ns=i * 1000, done_ns=i * 1000 + 500) for i in range(10_000)]
    steps = in_flight(many, max_vertices=100)
    assert len(steps) <= 101 and max(c for _, c in steps) == 1.0  # a peak survives the thinning


def test_an_interrupted_sweep_keeps_its_points_and_is_marked_failed(replay_server, tmp_path):
    store = Store(tmp_path / "t.db")
    ref = f"openai-compat:{replay_server}#status=500"  # nothing completes: the sweep stops after two points
    settings = LoadSettings(requests=2, streams=2)
    ledger = LoadLedger(store, ref, "sweep", settings)
    with pytest.raises(UsageError, match="needs completed requests"):
        run_sweep(ref, settings, size=3, ledger=ledger)
    ledger.finish({}, "failed")
    bench = load_benchmark(store, ledger.run_id)
    assert bench["run"]["status"] == "failed" and len(bench["points"]) == 2
    assert all(r["status"] == "error" and r["error"] == "HTTP 500" for r in store.load_requests(ledger.run_id))


def test_a_429_is_its_own_class_and_keeps_its_retry_after(replay_server, tmp_path):
    store = Store(tmp_path / "t.db")
    ref = f"openai-compat:{replay_server}#status=429;retry_after=7"
    settings = LoadSettings(requests=2)
    out = run_load(ref, settings)
    assert out["rate_limited"] == out["failed"] == 2
    ledger = LoadLedger(store, ref, "synchronous", settings)
    ledger.point(out)
    assert [(r["status"], r["rate_limit"]) for r in store.load_requests(ledger.run_id)] == [
        ("rate_limited", {"retry-after": "7"})] * 2


def test_a_busy_client_is_reported_and_warned_about(replay_server):
    from tryouts.usecases.load import client_warning

    calm = run_load(f"openai-compat:{replay_server}#tokens=2;ttft_ms=40", LoadSettings(requests=4))
    busy = run_load(f"openai-compat:{replay_server}#tokens=1", LoadSettings(profile="concurrent", streams=32,
                                                                           requests=1500))
    assert 0 <= calm["client_cpu"] < 0.5 and busy["client_cpu"] > calm["client_cpu"]
    assert client_warning(calm) is None
    assert "busy 95 %" in client_warning({"request_rate": "inf", "client_cpu": 0.95})
    assert client_warning({"request_rate": 50.0, "client_cpu": 0.99, "p99_dispatch_lag_ms": 0.5}) is None
    assert "fell behind" in client_warning({"request_rate": 50.0, "p99_dispatch_lag_ms": 25.0})
