"""Load benchmarks as charts and as one self-contained html page (``tryouts export RUN -f html`` on a load run).

A benchmark here is what :func:`tryouts.usecases.load_results.load_benchmark` returns: its run row, model,
profile, summary and points (each point's figures, load/metrics.py's keys). The same charts (report/svg.py)
are shown by the dashboard's load pages. docs/load.md says how to read each one.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

from .._version import __version__
from .svg import Series, chart

#: the charts, in the order they are shown: key, title, what it tells
CHARTS = (
    ("latency", "Latency against throughput",
     "Each marker is a load point: E2E latency p50 (solid) and p99 (dashed) at the request rate it completed. "
     "Where the line turns up, the server is queueing."),
    ("ttft", "TTFT percentile band against rate",
     "The band spans TTFT p50 to p99 at each load point's completed request rate; the line is p50."),
    ("itl", "ITL percentile band against rate",
     "The band spans the inter-token latency p50 to p99; the line is p50."),
    ("pareto", "Tokens/s per user against total tokens/s",
     "Each marker is a load point: total output tokens/s (x) against what one user sees, 1000 / TPOT p50 (y). "
     "The dashed line joins the points no other point beats on both (the Pareto front)."),
    ("goodput", "Goodput knee",
     "Completed requests/s and good requests/s (meeting every SLO) against the offered rate; the mark is the "
     "goodput rate a search found. Past the knee, more load buys no more good answers."),
    ("concurrency", "Requests in flight over time",
     "One load point (the heaviest): how many requests were in flight at each moment, from the first due time."),
    ("ttft_timeline", "TTFT by send time",
     "The same point: each request's TTFT at the time it was sent. A rising cloud with rising concurrency is "
     "over-saturation."),
)


def _label(bench: dict[str, Any], many: bool) -> str:
    """A series' name: the run and model when several benchmarks share a chart, else nothing."""
    return bench["run"]["id"] if many else ""  # the tables above say which model each run measured


def _named(name: str, what: str) -> str:
    return f"{name} {what}".strip()


def _rate_x(p: dict[str, Any]) -> float:
    return float(p.get("request_throughput") or 0.0)


def benchmark_charts(benches: list[dict[str, Any]], timeline: list[Any] | None = None) -> dict[str, str]:
    """The SVG of each chart in :data:`CHARTS` for one or more benchmarks; ``timeline``: the request records
    (:class:`~tryouts.load.metrics.RequestRecord`, ns from the point's start) of the point to show over time."""
    many = len(benches) > 1
    latency, ttft, itl, pareto, goodput = [], [], [], [], []
    marks = []
    for i, b in enumerate(benches):
        name = _label(b, many)
        pts = sorted((p for p in b["points"] if p.get("completed")), key=_rate_x)
        latency += [Series(_named(name, "p50"), [(_rate_x(p), p["p50_e2el_ms"]) for p in pts if p.get("p50_e2el_ms") is not None],
                           color=i, tips=[_tip(p, "E2E p50", "p50_e2el_ms") for p in pts if p.get("p50_e2el_ms") is not None]),
                    Series(_named(name, "p99"), [(_rate_x(p), p["p99_e2el_ms"]) for p in pts if p.get("p99_e2el_ms") is not None],
                           color=i, dashed=True,
                           tips=[_tip(p, "E2E p99", "p99_e2el_ms") for p in pts if p.get("p99_e2el_ms") is not None])]
        for target, key in ((ttft, "ttft"), (itl, "itl")):
            have = [p for p in pts if p.get(f"p50_{key}_ms") is not None and p.get(f"p99_{key}_ms") is not None]
            target.append(Series(_named(name, "p50 (band to p99)"), [(_rate_x(p), p[f"p50_{key}_ms"]) for p in have], color=i,
                                 band=[(_rate_x(p), p[f"p50_{key}_ms"], p[f"p99_{key}_ms"]) for p in have],
                                 tips=[f"{p['profile']} at {_rate_x(p):.2f} req/s: {key.upper()} p50 "
                                       f"{p[f'p50_{key}_ms']:.2f} ms, p99 {p[f'p99_{key}_ms']:.2f} ms" for p in have]))
        per_user = [(float(p["output_throughput"]), 1000.0 / p["median_tpot_ms"]) for p in pts
                    if p.get("median_tpot_ms") and p.get("output_throughput") is not None]
        if per_user:
            pareto += [Series(_named(name, "load points"), per_user, kind="scatter", color=i),
                       Series(_named(name, "Pareto front"), pareto_front(per_user), color=i, dashed=True)]
        offered = sorted((p for p in b["points"] if isinstance(p.get("request_rate"), int | float)),
                         key=lambda p: p["request_rate"])
        if any(p.get("request_goodput") is not None for p in offered):
            goodput += [Series(_named(name, "completed"), [(p["request_rate"], p["request_throughput"]) for p in offered],
                               color=i, dashed=True),
                        Series(_named(name, "good"), [(p["request_rate"], p["request_goodput"] or 0.0) for p in offered],
                               color=i, tips=[f"{p['request_rate']:.2f} req/s offered: {p['request_goodput'] or 0:.2f} "
                                              f"good req/s, SLO attainment {100 * (p['slo_attainment'] or 0):.1f} %"
                                              for p in offered])]
            if b["summary"].get("goodput_rate"):
                marks.append((float(b["summary"]["goodput_rate"]), f"goodput {b['summary']['goodput_rate']:.2f}"))
    out = {
        "latency": chart(CHARTS[0][1], "completed requests/s", "E2E latency (ms)", latency),
        "ttft": chart(CHARTS[1][1], "completed requests/s", "TTFT (ms)", ttft),
        "itl": chart(CHARTS[2][1], "completed requests/s", "ITL (ms)", itl),
        "pareto": chart(CHARTS[3][1], "total output tokens/s", "output tokens/s per user", pareto),
        "goodput": chart(CHARTS[4][1], "offered requests/s", "requests/s", goodput, marks=marks,
                         empty="No SLOs on an open-loop point: give --slo (e.g. --slo ttft:500) to see goodput."),
    }
    if timeline is not None:
        out["concurrency"] = chart(CHARTS[5][1], "seconds from the point's start", "requests in flight",
                                   [Series("in flight", in_flight(timeline), kind="step")])
        sent = [(r.sent_ns / 1e9, r.ttft_ms()) for r in timeline if r.ok and r.sent_ns is not None]
        stride = max(1, len(sent) // 2000)
        out["ttft_timeline"] = chart(CHARTS[6][1], "send time (s from the point's start)", "TTFT (ms)",
                                     [Series("TTFT", sent[::stride], kind="scatter")])
    return out


def _tip(p: dict[str, Any], what: str, key: str) -> str:
    return f"{p['profile']} at {_rate_x(p):.2f} req/s: {what} {p[key]:.1f} ms"


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both coordinates (higher is better on both), by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return sorted(front)


def in_flight(records: list[Any], max_vertices: int = 1500) -> list[tuple[float, float]]:
    """Requests in flight over time (seconds, count), as step vertices; at most about ``max_vertices``
    (each bucket keeps its highest count, so a peak is never smoothed away)."""
    events = sorted([(r.sent_ns, 1) for r in records if r.sent_ns is not None]
                    + [(r.done_ns, -1) for r in records if r.sent_ns is not None and r.done_ns is not None],
                    key=lambda e: (e[0], e[1]))
    steps, cur = [], 0
    for t, d in events:
        cur += d
        steps.append((t / 1e9, float(cur)))
    if len(steps) <= max_vertices:
        return steps
    lo, hi = steps[0][0], steps[-1][0]
    width = (hi - lo) / max_vertices or 1.0
    buckets: dict[int, tuple[float, float]] = {}
    for t, c in steps:
        k = int((t - lo) / width)
        if k not in buckets or c > buckets[k][1]:
            buckets[k] = (lo + k * width, c)
    return [buckets[k] for k in sorted(buckets)]


#: the columns of a load point in the csv export and the html table
POINT_KEYS = ("point_index", "profile", "request_rate", "max_concurrency", "num_prompts", "completed", "failed",
              "rate_limited", "incomplete", "duration", "request_throughput", "output_throughput",
              "total_token_throughput", "max_concurrent_requests", "mean_ttft_ms", "p50_ttft_ms", "p99_ttft_ms",
              "mean_tpot_ms", "p50_tpot_ms", "p99_tpot_ms", "p50_itl_ms", "p99_itl_ms", "p50_e2el_ms", "p99_e2el_ms",
              "p99_scheduled_ttft_ms", "p99_dispatch_lag_ms", "slo_attainment", "request_goodput", "token_goodput",
              "over_saturated", "cost_usd", "cost_per_1m_output_tokens_usd", "cost_per_good_request_usd")


def points_csv(bench: dict[str, Any]) -> str:
    """One row per load point: :data:`POINT_KEYS` first, then every other figure."""
    keys = list(POINT_KEYS) + sorted({k for p in bench["points"] for k in p} - set(POINT_KEYS))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run_id", *keys])
    for p in bench["points"]:
        w.writerow([bench["run"]["id"], *(_csv(p.get(k)) for k in keys)])
    return buf.getvalue()


def _csv(v: Any) -> Any:
    """A figure as a csv cell; text a spreadsheet would run as a formula gets a leading ``'`` (csv_safe)."""
    from .safe_text import csv_safe

    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return csv_safe(json.dumps(v) if isinstance(v, dict | list) else v)


CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6570; --line: #d5dae0; --bg: #fff; --soft: #f5f7f9;
        --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e4e6ea; --muted: #9aa3ad; --line: #343a42; --bg: #15171b;
        --soft: #1e2126; --warn: #e3b341; } }
body { margin: 0 auto; padding: 24px; max-width: 1400px; color: var(--fg); background: var(--bg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 26px 0 8px; }
.muted { color: var(--muted); } .warn { color: var(--warn); }
table { border-collapse: collapse; } th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right;
  font-variant-numeric: tabular-nums; white-space: nowrap; } th:first-child, td:first-child { text-align: left; }
thead th { background: var(--soft); } .scroll { overflow-x: auto; max-width: 100%; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 18px; }
figure { margin: 0; } figure svg { width: 100%; height: auto; } figcaption { color: var(--muted); font-size: 12px; }
code, .ref { overflow-wrap: anywhere; }
"""


def _n(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"
    return escape(str(v))


def points_table(bench: dict[str, Any]) -> str:
    """The load points of one benchmark as an html table (the figures users compare first)."""
    cols = (("profile", "point"), ("request_rate", "offered req/s"), ("request_throughput", "done req/s"),
            ("output_throughput", "output tok/s"), ("p50_ttft_ms", "TTFT p50"), ("p99_ttft_ms", "TTFT p99"),
            ("p50_tpot_ms", "TPOT p50"), ("p50_itl_ms", "ITL p50"), ("p99_e2el_ms", "E2E p99"),
            ("p99_dispatch_lag_ms", "lag p99"), ("completed", "ok"), ("slo_attainment", "SLO met"),
            ("request_goodput", "goodput req/s"), ("cost_per_1m_output_tokens_usd", "$/1M out"),
            ("cost_per_good_request_usd", "$/good req"))
    head = "".join(f"<th>{escape(label)}</th>" for _, label in cols)
    rows = []
    for p in bench["points"]:
        cells = []
        for key, _ in cols:
            v = p.get(key)
            if key == "completed":
                text = f"{p.get('completed', 0)}/{p.get('num_prompts', 0)}"
            elif key == "slo_attainment":
                text = "–" if v is None else f"{100 * v:.1f} %"
            elif key.startswith("cost"):
                text = "–" if v is None else f"${v:.6f}" if v < 0.01 else f"${v:,.4f}"
            else:
                text = _n(v)
            cells.append(f"<td>{text}</td>")
        rows.append(f'<tr data-point="{p.get("point_index", 0)}">{"".join(cells)}</tr>')
    return f'<div class="scroll"><table class="points"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def render_load_html(benches: list[dict[str, Any]], timeline: list[Any] | None = None,
                     timeline_point: int | None = None) -> str:
    """One self-contained html page (no script, no external resource) for one or more load benchmarks."""
    charts = benchmark_charts(benches, timeline)
    title = ("Load benchmark " + escape(benches[0]["run"]["id"]) if len(benches) == 1
             else "Load benchmarks " + ", ".join(escape(b["run"]["id"]) for b in benches))
    parts = [f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
             f'content="default-src \'none\'; style-src \'unsafe-inline\'"><meta name="viewport" content="width=device-width, '
             f'initial-scale=1"><title>{title}</title><style>{CSS}</style></head><body><h1>Tryouts · {title}</h1>']
    for b in benches:
        run, s = b["run"], b["summary"]
        facts = [("model", b["model"]), ("profile", b["profile"]), ("status", run.get("status")),
                 ("started (UTC)", (run.get("started_at") or "")[:19].replace("T", " "))]
        for key in ("synchronous_rate", "saturated_rate", "goodput_rate", "failing_rate", "stopped_over_saturated_at"):
            if s.get(key) is not None:
                facts.append((key.replace("_", " "), f"{s[key]:.2f} req/s"))
        if s.get("slo_ms"):
            facts.append(("SLOs (ms)", ", ".join(f"{k} ≤ {v:g}" for k, v in s["slo_ms"].items())))
        parts.append(f'<h2>{escape(run["id"])}</h2><p class="ref">'
                     + " · ".join(f'<span class="muted">{escape(k)}</span> {escape(str(v))}' for k, v in facts) + "</p>")
        parts += [f'<p class="warn">{escape(w)}</p>' for w in b.get("warnings", [])]
        parts.append(points_table(b))
    parts.append('<h2>Charts</h2><div class="charts">')
    for key, _name, caption in CHARTS:
        if key in charts:
            note = f" Point {timeline_point}." if key in ("concurrency", "ttft_timeline") and timeline_point is not None else ""
            parts.append(f'<figure id="chart-{key}">{charts[key]}<figcaption>{escape(caption + note)}</figcaption></figure>')
    parts.append(f'</div><p class="muted">Definitions: Tryouts {escape(__version__)}, docs/load.md and docs/metrics.md. '
                 'Times are milliseconds; TTFT and E2E from t0 (the request sent).</p></body></html>\n')
    return "".join(parts)
