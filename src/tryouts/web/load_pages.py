"""The dashboard's load-benchmark pages: one benchmark (``/runs/RUN`` of a load run) and several side by side
(``/load/compare?run=A&run=B``), with the charts of report/load_report.py.

The charts are SVG drawn on the server by report/svg.py, which escapes every label and value it writes (a
model reference is untrusted); they are the only markup these pages insert unescaped, through ``Markup``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

router = APIRouter(include_in_schema=False)

#: the most benchmarks one compare page shows
MAX_COMPARE = 8


def _charts(benches: list[dict[str, Any]], timeline: list[Any] | None) -> list[dict[str, Any]]:
    from ..report.load_report import CHARTS, benchmark_charts

    svgs = benchmark_charts(benches, timeline)
    return [{"key": key, "title": title, "caption": caption, "svg": Markup(svgs[key])}  # escaped in svg.py
            for key, title, caption in CHARTS if key in svgs]


def load_run_page(request: Request, run_id: str) -> HTMLResponse:
    """One stored load benchmark: its settings, points, warnings and charts; ``?point=K`` picks the point the
    timelines show (the heaviest by default)."""
    from ..errors import TryoutsError
    from ..usecases.load_results import heaviest_point, load_benchmark, point_records
    from .pages import _int, error_page, render

    store = request.app.state.store
    try:
        bench = load_benchmark(store, run_id)
    except TryoutsError as exc:
        return error_page(request, 404, "Run not found", exc.message)
    indices = [p["point_index"] for p in bench["points"]]
    try:
        chosen = _int(request.query_params.get("point"), heaviest_point(bench) or 0, "point")
    except HTTPException as exc:
        return error_page(request, 400, "Bad request", exc.detail)
    if indices and chosen not in indices:
        return error_page(request, 404, "No such load point",
                          f"Run {bench['run']['id']} has load points {indices[0]} to {indices[-1]}, not {chosen}.")
    timeline = point_records(store, bench["run"]["id"], chosen) if indices else None
    from .unreadable import readable_runs

    others = [r for r in readable_runs(store, 50)[0] if r["kind"] == "load" and r["id"] != bench["run"]["id"]]
    return render(request, "load.html", page="run", title=f"Load benchmark {bench['run']['id']}", benches=[bench],
                  charts=_charts([bench], timeline), chosen=chosen if indices else None, others=others)


@router.get("/load/compare", response_class=HTMLResponse)
def load_compare_page(request: Request) -> HTMLResponse:
    """Two or more stored load benchmarks on the same charts (``?run=A&run=B``)."""
    from ..errors import TryoutsError
    from ..usecases.load_results import compare_benchmarks
    from .pages import error_page, render

    refs = request.query_params.getlist("run")
    if len(refs) > MAX_COMPARE:
        return error_page(request, 400, "Too many runs", f"Compare at most {MAX_COMPARE} load benchmarks at once.")
    try:
        benches = compare_benchmarks(request.app.state.store, refs)
    except TryoutsError as exc:
        status = 400 if len(refs) < 2 else 404
        return error_page(request, status, "Cannot compare these runs", exc.message)
    return render(request, "load.html", page="run", title="Load benchmarks side by side", benches=benches,
                  charts=_charts(benches, None), chosen=None, others=[])
