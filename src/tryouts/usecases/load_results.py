"""Stored load benchmarks read back: one benchmark with its points, its requests as records, several side by side."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError


def load_benchmark(store: Any, ref: str) -> dict[str, Any]:
    """A stored load benchmark: ``run`` (its row), ``model``, ``profile``, ``summary`` (a sweep's rates, a
    search's goodput rate) and ``points`` (each point's figures, load/metrics.py's keys, plus ``point_index``)."""
    run = store.get_run_row(ref)
    if run["kind"] != "load":
        raise UsageError(f"Run {run['id']} is a {run['kind']} run, not a load benchmark: show it with "
                         f"'tryouts show {run['id']}'. Load benchmarks are the runs of kind 'load' in 'tryouts runs'.")
    from .load import client_warning

    points = [{**p["figures"], "point_index": p["point_index"]} for p in store.load_points(run["id"])]
    meta = run.get("meta") or {}
    warnings = [f"Point {p['point_index']} ({p['profile']}): {w}" for p in points if (w := client_warning(p))]
    warnings += [f"Point {p['point_index']} ({p['profile']}) was over-saturated: requests in flight and TTFT kept "
                 "rising, so its figures describe a growing queue, not a steady state." for p in points
                 if p.get("over_saturated")]
    return {"run": run, "model": (run.get("models") or ["?"])[0], "profile": meta.get("profile", "?"),
            "summary": meta.get("summary") or {}, "points": points, "warnings": warnings}


def heaviest_point(bench: dict[str, Any]) -> int | None:
    """The index of the point that completed the most requests per second (the timeline charts show it)."""
    done = [p for p in bench["points"] if p.get("completed")]
    return max(done, key=lambda p: p["request_throughput"])["point_index"] if done else None


#: what ``tryouts export`` writes for a load benchmark
LOAD_FORMATS = ("json", "csv", "jsonl", "html")


def export_load(store: Any, ref: str, fmt: str, point: int | None = None) -> str:
    """A stored load benchmark as ``json`` (its points' figures), ``csv`` (one row per point), ``jsonl`` (one
    request per line, every point) or ``html`` (a self-contained report with the charts; ``point``: the
    load point its timelines show, the heaviest by default)."""
    import json

    from ..report.load_report import points_csv, render_load_html

    bench = load_benchmark(store, ref)
    run_id = bench["run"]["id"]
    if fmt == "json":
        return json.dumps(bench, indent=2, default=str) + "\n"
    if fmt == "csv":
        return points_csv(bench)
    if fmt == "jsonl":
        return "".join(json.dumps({"run_id": run_id, **row}, default=str) + "\n" for row in store.load_requests(run_id))
    if fmt == "html":
        point = heaviest_point(bench) if point is None else point
        timeline = point_records(store, run_id, point) if point is not None else None
        return render_load_html([bench], timeline, point)
    raise UsageError(f"Unknown export format {fmt!r} for a load benchmark: choose one of {', '.join(LOAD_FORMATS)}.")


def point_records(store: Any, run_id: str, point_index: int, *, measured_only: bool = True) -> list[Any]:
    """One point's requests as :class:`~tryouts.load.metrics.RequestRecord` (times in ns from the point's start)."""
    from ..load.metrics import RequestRecord

    rows = store.load_requests(run_id, point_index)
    return [RequestRecord.from_row(r) for r in rows if not measured_only or r["phase"] == "measured"]


def recompute(store: Any, run_id: str, point_index: int) -> dict[str, Any]:
    """A stored point's figures computed again from its stored requests (they match the stored figures)."""
    from decimal import Decimal

    from ..load.metrics import SLO, summarize

    point = next((p for p in store.load_points(run_id) if p["point_index"] == point_index), None)
    if point is None:
        raise UsageError(f"Run {run_id} has no load point {point_index}.")
    records = point_records(store, run_id, point_index)
    slo_ms = point["settings"].get("slo_ms") or {}
    run = store.get_run_row(run_id)
    hourly = ((run.get("request") or {}).get("settings") or {}).get("hourly_usd")
    ends = [r.done_ns for r in records if r.done_ns is not None]
    return summarize(records, start_ns=0, end_ns=max(ends) if ends else 0,
                     slo=SLO(slo_ms.get("ttft"), slo_ms.get("tpot"), slo_ms.get("e2el")),
                     hourly_usd=Decimal(hourly) if hourly is not None else None)


def compare_benchmarks(store: Any, refs: list[str]) -> list[dict[str, Any]]:
    """Several stored load benchmarks (:func:`load_benchmark`), each with its headline figures: the highest
    completed request rate and output tokens/s over its points, the goodput rate where it searched for one,
    and its lowest cost per good request and per 1M output tokens."""
    if len(refs) < 2:
        raise UsageError("Give two or more load benchmarks to compare: tryouts load compare RUN RUN ...")
    out = []
    seen: set[str] = set()
    for ref in refs:
        bench = load_benchmark(store, ref)
        if bench["run"]["id"] in seen:
            raise UsageError(f"{ref} names run {bench['run']['id']} a second time: give different runs.")
        seen.add(bench["run"]["id"])
        bench["headline"] = headline(bench)
        out.append(bench)
    return out


def headline(bench: dict[str, Any]) -> dict[str, Any]:
    """The figures that sum a benchmark up in one row."""
    points = bench["points"]

    def best(key: str, pick: Any = max) -> float | None:
        values = [p[key] for p in points if p.get(key) is not None]
        return pick(values) if values else None

    return {
        "points": len(points),
        "max_request_throughput": best("request_throughput"),
        "max_output_throughput": best("output_throughput"),
        "min_p50_ttft_ms": best("p50_ttft_ms", min),
        "max_request_goodput": best("request_goodput"),
        "goodput_rate": bench["summary"].get("goodput_rate"),
        "min_cost_per_good_request_usd": best("cost_per_good_request_usd", min),
        "min_cost_per_1m_output_tokens_usd": best("cost_per_1m_output_tokens_usd", min),
    }
