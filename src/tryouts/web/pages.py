"""The dashboard's pages: server-rendered HTML (Jinja2 over ``templates/``) with ``static/app.js`` for the live
parts (streaming comparisons, charts, the arena).

What comes from the store is rendered on the server, so a run page is usable at once; every figure a page shows
is computed by the same functions that answer the JSON API (``api.py``), so the page and ``/api/`` agree.
Templates autoescape everything: a model's output is always text, never markup (nothing is marked ``|safe``;
the load pages' SVG charts, escaped where they are drawn, are the one insert: web/load_pages.py).
Each page carries the CSRF token in ``<meta name="csrf-token">`` for the script's POST requests.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from . import TEMPLATES_DIR, api, review_api

router = APIRouter(include_in_schema=False)

CASES_PER_PAGE = 40
"""Rows (cases) of a run's output grid per page."""
FOLD_CHARS, FOLD_LINES = 1500, 24
"""An output longer than this (characters or lines) is shown folded, with a "show all" toggle (docs/dashboard.md)."""

VIEWS = {"all": "All", "failures": "Failures only", "differ": "Outputs differ"}
TASKS = ["chat", "code", "classification", "ner", "translation", "summarization", "embeddings"]
DTYPES = ["fp32", "fp16", "bf16", "fp8", "int8", "int4", "nf4", "gguf:Q8_0", "gguf:Q6_K", "gguf:Q5_K_M", "gguf:Q4_K_M"]
KV_DTYPES = ["fp32", "fp16", "bf16", "fp8", "q8_0", "q4_0"]


# ---- formatting (Jinja filters) -------------------------------------------------------------------


def fmt_num(value: Any, digits: int = 1) -> str:
    """A number with thousands separators and ``digits`` decimals; ``–`` when unknown."""
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}"


def fmt_cost(value: Any, source: str | None = None) -> str:
    """A cost in USD; ``unknown`` when the price is unknown (never shown as 0)."""
    if value is None:
        return "unknown"
    f = float(value)
    if f == 0:
        return {"local": "0 (local)", "cache": "0 (cached)"}.get(source or "", "$0")
    return f"${f:.6f}" if abs(f) < 0.01 else f"${f:,.4f}"


def fmt_tokens(value: Any, estimated: bool = False) -> str:
    """A token count, ``~`` when Tryouts counted it itself."""
    if value is None:
        return "–"
    return f"{'~' if estimated else ''}{int(value)}"


def fmt_interval(metric: dict[str, Any] | None, digits: int = 2) -> str:
    """``mean [low–high]`` of a quality metric (``–`` when absent)."""
    if not metric or metric.get("mean") is None:
        return "–"
    text = f"{metric['mean']:.{digits}f}"
    if metric.get("low") is not None and metric.get("high") is not None:
        text += f" [{metric['low']:.{digits}f}–{metric['high']:.{digits}f}]"
    return text


def fmt_gb(value: Any) -> str:
    """Bytes as GB (10^9), two decimals."""
    return "–" if value is None else f"{float(value) / 1e9:,.2f} GB"


def fmt_count(value: Any) -> str:
    """A parameter count as 1.2 B / 350 M."""
    if value is None:
        return "–"
    v = float(value)
    return f"{v / 1e9:,.1f} B" if v >= 999.5e6 else f"{v / 1e6:,.0f} M"


def fmt_tokens_short(value: Any) -> str:
    """A context size as 128k / 1M."""
    if value is None:
        return "–"
    v = int(value)
    if v >= 1_000_000 and v % 1_000_000 == 0:
        return f"{v // 1_000_000}M"
    if v >= 1000:
        return f"{v / 1024:.0f}k" if v % 1024 == 0 else f"{v / 1000:.0f}k"
    return str(v)


def fmt_time(value: str | None) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return (value or "")[:19].replace("T", " ") or "–"


def short_label(ref: str) -> Any:
    """A model reference shortened for headers (local paths to their last part, URLs to host and name), in a
    ``<bdi>`` so a direction control in a label (U+202E) cannot reorder the text after it."""
    from markupsafe import Markup

    from ..labels import short_label as short

    return Markup("<bdi>{}</bdi>").format(short(ref))


def bidi(value: Any) -> Any:
    """Any text from a user or a model in a ``<bdi>`` (direction-isolated)."""
    from markupsafe import Markup

    return Markup("<bdi>{}</bdi>").format("" if value is None else value)


def score_badges(scores: dict[str, Any] | None) -> list[dict[str, str]]:
    """A result's scores as short badges ``{name, value, state}`` (state ``pass``/``fail``/``""``)."""
    out: list[dict[str, str]] = []
    scores = scores or {}
    a = scores.get("assert")
    if isinstance(a, dict):
        out.append({"name": "assert", "value": f"{'pass' if a.get('passed') else 'fail'} {fmt_num(a.get('score'), 2)}",
                    "state": "pass" if a.get("passed") else "fail"})
    for name, value in (scores.get("reference") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append({"name": name, "value": fmt_num(value, 2), "state": ""})
    for name, value in (scores.get("custom") or {}).items():
        if isinstance(value, dict):
            shown = "error" if value.get("error") else fmt_num(value.get("score"), 2)
            state = "" if value.get("passed") is None else ("pass" if value["passed"] else "fail")
            out.append({"name": name, "value": shown, "state": state})
    j = scores.get("judge")
    if isinstance(j, dict) and j.get("score") is not None:
        out.append({"name": "judge", "value": f"{j['score']} ({fmt_num(j.get('normalized'), 2)})", "state": ""})
    return out


@lru_cache(maxsize=1)
def _metric_title(name: str) -> str:
    from ..tasks.scoring import metric_title

    return metric_title(name)


@lru_cache(maxsize=1)
def environment() -> Any:
    """The Jinja2 environment over ``templates/`` (autoescaped), made once: it keeps the compiled templates
    (recompiling run.html cost some 70 ms a page; a changed file is still reloaded)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    from ..stats import sampling_text

    env.filters.update(num=fmt_num, cost=fmt_cost, tokens=fmt_tokens, interval=fmt_interval, gb=fmt_gb,
                       sampling=sampling_text, count=fmt_count, ctx=fmt_tokens_short, when=fmt_time, short=short_label,
                       bidi=bidi,
                       metric_title=_metric_title)
    env.globals.update(score_badges=score_badges, urlencode=urlencode)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` with ``context``, the CSRF token and the current path."""
    context.setdefault("page", "")
    html = environment().get_template(template).render(csrf=request.app.state.csrf, path=request.url.path,
                                                       **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A page that says what went wrong and what to do."""
    return render(request, "error.html", status=status, title=title, detail=detail)


def _int(value: str | None, default: int, name: str, minimum: int = 0) -> int:
    if value in (None, ""):
        return default
    text = str(value).replace("_", "").replace(",", "")
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text.strip()):
        raise HTTPException(400, f"{name} must be a whole number, not {str(value)[:40]!r}.")
    n = int(text)
    if n < minimum:
        raise HTTPException(400, f"{name} must be at least {minimum}.")
    return n


def _float(value: str | None, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value))
    except ValueError:
        raise HTTPException(400, f"{name} must be a number, not {value!r}.") from None


# ---- new comparison ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    """New comparison: pick models, type a prompt, watch the outputs stream in side by side."""
    q = request.query_params
    prefill = {"models": q.getlist("model"), "prompt": q.get("prompt", ""), "system": q.get("system", ""),
               "max_tokens": q.get("max_tokens", "256"), "temperature": q.get("temperature", ""),
               "expected": q.get("expected", ""), "asserts": "\n".join(q.getlist("assert"))}
    return render(request, "compare.html", page="compare", title="New comparison", prefill=prefill,
                  prefill_json=json.dumps(prefill["models"]))


# ---- runs ----------------------------------------------------------------------------------------


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    """Run history, newest first, with filters; pick two runs to diff. A run that cannot be read is listed
    apart, with why (web/unreadable.py)."""
    from .unreadable import run_list

    q = request.query_params
    filters = {k: q.get(k, "").strip() for k in ("kind", "status", "model", "q", "tag")}
    try:
        limit = _int(q.get("limit"), 200, "limit")
    except HTTPException as exc:
        return error_page(request, 400, "Bad filter", exc.detail)
    rows, unreadable = run_list(request.app.state.store, limit=limit, kind=filters["kind"] or None,
                                status=filters["status"] or None, model=filters["model"] or None,
                                q=filters["q"] or None, tag=filters["tag"] or None)
    return render(request, "runs.html", page="runs", title="Runs", runs=rows, filters=filters, limit=limit,
                  unreadable=unreadable)


def _prompt_of(result: dict[str, Any]) -> str:
    messages = (result.get("request") or {}).get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


def output_grid(labels: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the outputs grid: one per case, with each model's results (repeats in order) in label order. A
    result whose model index is not one of ``labels`` is left out (the digest counts it: web/digest.py); a
    stored index never sizes the grid."""
    from ..records import index_in

    cases: dict[int, dict[str, Any]] = {}
    for r in rows:
        i = r["model_index"]
        if not index_in(i, len(labels)):
            continue
        case = cases.setdefault(r["case_index"], {"index": r["case_index"], "case": r.get("case") or {},
                                                  "prompt": _prompt_of(r), "cells": [[] for _ in labels]})
        case["cells"][i].append(r)
    for case in cases.values():
        for cell in case["cells"]:
            cell.sort(key=lambda r: (r["repeat_index"], r["id"]))
    return [cases[k] for k in sorted(cases)]


@router.get("/runs/{run}", response_class=HTMLResponse)
def run_page(request: Request, run: str) -> HTMLResponse:
    """One run: summary with intervals, paired comparisons, charts, and the outputs grid (by view, paged)."""
    from ..errors import TryoutsError
    from .digest import recent_runs, select_light
    from .run_charts import PLOTLY_AUTO_MAX, svg_charts

    try:
        kind = request.app.state.store.get_run_row(run)["kind"]
    except TryoutsError:
        kind = None  # said below, as for any run
    if kind == "load":
        from .load_pages import load_run_page

        return load_run_page(request, run)
    q = request.query_params
    view = q.get("view", "all")
    if view not in VIEWS:
        return error_page(request, 400, "Unknown view", f"view must be one of {', '.join(VIEWS)}, not {view!r}.")
    try:
        run_row, digest = api.run_digest(request, run)  # figures over every result, kept per run state
        page_no = _int(q.get("page"), 1, "page", minimum=1)
    except HTTPException as exc:
        return error_page(request, exc.status_code, "Run not found" if exc.status_code == 404 else "Bad request",
                          exc.detail)
    summary = api.summary_from(run_row, digest)
    run_id = summary["run"]["id"]
    store = request.app.state.store
    light = digest.light()  # {id, case_index, flags} per result (web/digest.py)
    search = q.get("q", "").strip()  # the cases with an output containing it (review_api.py)
    light = review_api.cases_matching(store, run_id, light, search)
    counts = {v: len(select_light(light, v)) for v in VIEWS}
    chosen = select_light(light, view)
    case_order = sorted({r["case_index"] for r in chosen})
    pages = max(1, -(-len(case_order) // CASES_PER_PAGE))
    page_no = min(page_no, pages)
    shown_cases = set(case_order[(page_no - 1) * CASES_PER_PAGE:page_no * CASES_PER_PAGE])
    ids = [r["id"] for r in chosen if r["case_index"] in shown_cases]
    full, _ = store.results(run_id, ids=ids) if ids else ([], 0)
    labels = summary["labels"]
    quality = summary["quality"]
    per_model_quality = {m["model_index"]: m["metrics"] for m in quality.get("per_model", [])}
    others = [r for r in recent_runs(store, 50) if r["id"] != run_id]
    return render(request, "run.html", page="run", title=f"Run {run_id}", s=summary, run=summary["run"],
                  labels=labels, grid=output_grid(labels, full), view=view, views=VIEWS, counts=counts,
                  page_no=page_no, pages=pages, n_cases_view=len(case_order), quality=quality,
                  per_model_quality=per_model_quality, others=others, charts=svg_charts(digest),
                  plotly_auto=digest.n_results <= PLOTLY_AUTO_MAX, fold_chars=FOLD_CHARS, fold_lines=FOLD_LINES,
                  **review_api.run_page_extras(store, run_id, search))  # tags, reviews, search


@router.get("/diff", response_class=HTMLResponse)
def diff_page(request: Request) -> HTMLResponse:
    """Two runs compared result by result (B − A): per-model deltas and each changed output's diff."""
    from .unreadable import readable_runs

    q = request.query_params
    a, b = q.get("a", "").strip(), q.get("b", "").strip()
    runs, _ = readable_runs(request.app.state.store, 200)
    result = None
    if a and b:
        try:
            result = api.diff(request, a, b)
        except HTTPException as exc:
            return error_page(request, exc.status_code, "Cannot diff", exc.detail)
    show_all = q.get("all") == "1"
    pairs = []
    if result is not None:
        pairs = [p for p in result["pairs"] if show_all or p["output_changed"] or p["ok_a"] != p["ok_b"]]
    return render(request, "diff.html", page="diff", title="Diff", runs=runs, a=a, b=b, d=result, pairs=pairs,
                  show_all=show_all)


# ---- catalog, memory, advisor --------------------------------------------------------------------


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> HTMLResponse:
    """The model catalog with the filters of ``tryouts models``."""
    q = request.query_params
    f = {k: q.get(k, "").strip() for k in ("access", "task", "min_context", "max_price", "license", "fits", "dtype",
                                           "context", "search")}
    f["dtype"] = f["dtype"] or "bf16"
    error, rows, left_out = None, [], {}
    try:
        if f["access"] not in ("", "open", "commercial"):
            raise HTTPException(400, "access must be open or commercial.")
        out = api.models(request, access=f["access"] or None, task=f["task"] or None,
                         min_context=f["min_context"] or None, max_price=f["max_price"] or None,
                         license=f["license"] or None, fits=f["fits"] or None, dtype=f["dtype"],
                         context=_int(f["context"], 4096, "context", minimum=1))
        rows, left_out = out["models"], out["left_out"]
    except HTTPException as exc:
        error = exc.detail
    if f["search"]:
        needle = f["search"].lower()
        rows = [r for r in rows if needle in " ".join([r["id"], r["name"], r.get("maker") or "", *r.get("aliases", []),
                                                       *r.get("routes", [])]).lower()]
    return render(request, "models.html", page="models", title="Models", rows=rows, left_out=left_out, f=f,
                  error=error, tasks=TASKS, dtypes=DTYPES, status=400 if error else 200)


@router.get("/models/{name:path}", response_class=HTMLResponse)
def card_page(request: Request, name: str) -> HTMLResponse:
    """A model's card: catalog facts, price, routes, the model card's sections and metrics, config.json."""
    try:
        card = api.card(request, name)
    except HTTPException as exc:
        title = "Model not found" if exc.status_code == 404 else "Not allowed here"
        return error_page(request, exc.status_code, title, exc.detail)
    return render(request, "card.html", page="card", title=(card.get("entry") or {}).get("name") or name, c=card,
                  name=name)


@router.get("/memory", response_class=HTMLResponse)
def memory_page(request: Request) -> HTMLResponse:
    """The memory calculator: weights, KV cache and overhead per weight format, and whether it fits a GPU."""
    from ..memory.gpus import GPUS

    q = request.query_params
    f = {k: q.get(k, "").strip() for k in ("model", "dtype", "context", "batch", "kv_dtype", "gpu", "gpu_memory")}
    f["dtype"] = f["dtype"] or "all"
    result, error = None, None
    if f["model"]:
        try:
            result = api.memory(request, model=f["model"], dtype=f["dtype"],
                                context=_int(f["context"], 4096, "context", minimum=1),
                                batch=_int(f["batch"], 1, "batch", minimum=1), kv_dtype=f["kv_dtype"] or None,
                                gpu=f["gpu"] or None, gpu_memory=f["gpu_memory"] or None)
        except HTTPException as exc:
            error = exc.detail
    assumptions = list(dict.fromkeys(a for e in (result or {}).get("estimates", []) for a in e["assumptions"]))
    return render(request, "memory.html", page="memory", title="Memory calculator", f=f, r=result, error=error,
                  gpus=list(GPUS.values()), dtypes=DTYPES, kv_dtypes=KV_DTYPES, assumptions=assumptions,
                  catalog_ids=_open_model_ids(), status=400 if error else 200)


def _open_model_ids() -> list[str]:
    """Catalog ids of the models whose memory can be estimated (those with architecture numbers)."""
    from ..catalog import load_catalog

    return [e.id for e in load_catalog() if e.arch is not None]


@router.get("/advisor", response_class=HTMLResponse)
def advisor_page(request: Request) -> HTMLResponse:
    """The selection advisor: constraints in, a ranked short list with reasons out."""
    q = request.query_params
    f = {"task": q.get("task", "chat"), "budget": q.get("budget", "medium"), "privacy": q.get("privacy", "normal"),
         "offline": q.get("offline") == "1", "latency_ms": q.get("latency_ms", "").strip(),
         "gpu_memory": q.get("gpu_memory", "").strip(), "quality": q.get("quality", "good"),
         "fine_tune": q.get("fine_tune") == "1", "context": q.get("context", "").strip(), "top": q.get("top", "").strip(),
         "gpu": q.get("gpu", "").strip(), "ram": q.get("ram", "").strip(),
         "unified_memory": q.get("unified_memory", "").strip(), "commercial": q.get("commercial") == "1",
         "open_weights": q.get("open_weights") == "1"}
    result, error = None, None
    if "task" in q:
        try:
            result = api.recommend(request, task=f["task"], budget=f["budget"], privacy=f["privacy"],
                                   offline=f["offline"], latency_ms=_float(f["latency_ms"], "latency_ms"),
                                   gpu_memory=f["gpu_memory"] or None, quality=f["quality"], fine_tune=f["fine_tune"],
                                   context=_int(f["context"], 4096, "context", minimum=1),
                                   top=min(_int(f["top"], 5, "top", minimum=1), 50), gpu=f["gpu"] or None,
                                   ram=f["ram"] or None, unified_memory=f["unified_memory"] or None,
                                   commercial=f["commercial"], open_weights=f["open_weights"])
        except HTTPException as exc:
            error = exc.detail
    return render(request, "advisor.html", page="advisor", title="Advisor", f=f, r=result, error=error,
                  tasks=TASKS, status=400 if error else 200)


# ---- arena ---------------------------------------------------------------------------------------


@router.get("/arena/{run}", response_class=HTMLResponse)
def arena_page(request: Request, run: str) -> HTMLResponse:
    """Blind pairwise voting on a run's outputs, then the ranking with intervals (driven by app.js)."""
    from ..errors import TryoutsError

    try:
        row = request.app.state.store.get_run_row(run)
    except TryoutsError as exc:
        return error_page(request, 404, "Run not found", exc.message)
    return render(request, "arena.html", page="arena", title=f"Arena · {row['id']}", run=row)
