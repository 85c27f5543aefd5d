"""The dashboard's JSON API under ``/api/`` (documented at ``/docs`` and ``/openapi.json``).

Every page reads the same endpoints. Results are the store's flat result objects (docs/json.md); runs are the
store's run objects; nothing here ever returns an API key or other secret (options are stored redacted).
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints, model_validator

from ..errors import TryoutsError
from ..records import ResultsPage, RunRecord
from ..stats import SUMMARY_FIELDS
from .policy import Refused, WebPolicy

router = APIRouter(prefix="/api")

#: the longest prompt and system prompt, expected answer and assertion a live comparison takes (characters);
#: the expected answer is scored by an edit distance costing its length times the output's, hence the bound on
#: its length times max_tokens (1,000 characters with up to 4,000 tokens, 10,000 with up to 400)
MAX_PROMPT = 200_000
MAX_EXPECTED = 10_000
MAX_EXPECTED_WORK = 4_000_000
MAX_ASSERTION = 2_000

View = Literal["all", "failures", "differ"]


class CompareIn(BaseModel):
    """Start a live comparison: one prompt through several models."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, description="The user prompt.")
    models: list[str] = Field(min_length=1, max_length=12, description="Model references PROVIDER:MODEL.")
    options: list[dict[str, Any]] | None = Field(default=None, description="Provider options, one mapping per model.")
    system: str | None = Field(default=None, max_length=MAX_PROMPT, description="An optional system prompt.")
    max_tokens: int = Field(default=256, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0)
    expected: str | None = Field(default=None, max_length=MAX_EXPECTED,
                                 description="The expected answer: each output gets reference metrics.")
    asserts: list[Annotated[str, StringConstraints(max_length=MAX_ASSERTION)]] = Field(
        default_factory=list, max_length=50, description="Checks on each output, as tryouts compare --assert "
        "takes them (contains:Paris, length:1-400, is-json, ...).")


    @model_validator(mode="after")
    def _bounded_scoring(self) -> CompareIn:
        if self.expected and len(self.expected) * self.max_tokens > MAX_EXPECTED_WORK:
            raise ValueError(f"the expected answer's length times max_tokens is at most {MAX_EXPECTED_WORK:,} "
                             f"(scoring compares them character by character): {len(self.expected):,} characters "
                             f"allow max_tokens up to {MAX_EXPECTED_WORK // len(self.expected):,}. Shorten the "
                             "expected answer or lower max_tokens.")
        return self


class CompareOut(BaseModel):
    key: str = Field(description="The live comparison's key (for its events and stop).")
    events: str = Field(description="The server-sent events URL.")


class VoteIn(BaseModel):
    pair: str = Field(description="The pair's key from GET /api/runs/{run}/arena/next.")
    verdict: Literal["a", "b", "tie", "both_bad"]


class FastJSON(JSONResponse):
    """JSON straight from ``json.dumps`` (the store's objects are JSON-ready): FastAPI's generic encoder costs
    tens of milliseconds on a page of 500 results."""

    def render(self, content: Any) -> bytes:
        import json

        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _store(request: Request):
    return request.app.state.store


def _fail(exc: TryoutsError, status: int = 400) -> HTTPException:
    return HTTPException(status_code=status, detail=exc.message)


def _policy(request: Request) -> WebPolicy:
    return request.app.state.policy


def _refuse(exc: Refused) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


#: the largest context, batch and offset a request may ask for (bounded work per request)
MAX_CONTEXT = 10_000_000
MAX_BATCH = 4096
MAX_OFFSET = 1_000_000_000
_DIGITS = re.compile(r"[0-9]{1,18}")
"""An id or event number: ASCII digits only (``str.isdigit`` also takes '²' and '١', which ``int`` refuses)."""


def _run(request: Request, ref: str) -> dict[str, Any]:
    try:
        return _store(request).get_run(ref)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None


def _labels(data: dict[str, Any]) -> list[str]:
    return list(data["run"]["meta"].get("labels") or data["run"]["models"])


@router.get("/csrf", summary="The CSRF token state-changing requests send as X-Tryouts-CSRF")
def csrf(request: Request) -> dict[str, str]:
    return {"csrf": request.app.state.csrf}


@router.get("/runs", summary="Run history, newest first, with filters")
def runs(request: Request, response: Response, limit: int = Query(100, ge=0, le=10000), kind: str | None = None,
         status: str | None = None, model: str | None = Query(None, description="A substring of a model reference."),
         q: str | None = Query(None, description="Text in the run id, a model, a label, a tag or an output."),
         tag: str | None = None) -> list[RunRecord]:
    """Each run carries its ``tags``; ``tag`` keeps the runs tagged so (review_api.search_runs). A run whose row
    cannot be read is left out, counted in the ``X-Tryouts-Unreadable-Runs`` header (web/unreadable.py)."""
    from .unreadable import UNREADABLE_HEADER, run_list

    rows, unreadable = run_list(_store(request), limit=limit, kind=kind, status=status, model=model, q=q, tag=tag)
    if unreadable:
        response.headers[UNREADABLE_HEADER] = str(len(unreadable))
    return rows


#: what a run's summary needs of each result (a fraction of the row: no texts, requests or gaps)
SUMMARY_COLUMNS = SUMMARY_FIELDS


def _summary_data(request: Request, ref: str) -> dict[str, Any]:
    """The run and the summary columns of its results."""
    store = _store(request)
    try:
        run = store.get_run_row(ref)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None
    results, _ = store.results(run["id"], columns=SUMMARY_COLUMNS)
    return {"run": run, "results": results}


def run_summary(data: dict[str, Any]) -> dict[str, Any]:
    """A run with its per-model summary and quality (no results)."""
    from ..scoring.summary import quality_report
    from ..stats import summarize

    labels = _labels(data)
    results = data["results"]
    summaries = summarize(results)
    for s in summaries:
        s["label"] = labels[s["model_index"]] if s["model_index"] < len(labels) else s["model"]
    quality = data["run"]["meta"].get("quality") or quality_report(results, labels)
    cases = sorted({r["case_index"] for r in results})
    return {"run": data["run"], "labels": labels, "summary": summaries, "quality": quality,
            "n_results": len(results), "n_failed": sum(1 for r in results if not r["ok"]), "n_cases": len(cases)}


def run_digest(request: Request, ref: str) -> tuple[dict[str, Any], Any]:
    """The run (without results) and its digest (web/digest.py): the figures over every result, computed in one
    pass and kept while the run is unchanged."""
    from .digest import digests

    store = _store(request)
    try:
        run = store.get_run_row(ref)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None
    return run, digests(request.app).get(store, run, _labels({"run": run}))


def summary_from(run: dict[str, Any], d: Any) -> dict[str, Any]:
    """:func:`run_summary` of a run from its digest (the same figures; read-only: they are shared)."""
    return {"run": run, "labels": _labels({"run": run}), "summary": d.summary, "quality": d.quality,
            "n_results": d.n_results, "n_failed": d.n_failed, "n_cases": d.n_cases, "n_skipped": d.n_skipped}


def summary_of(request: Request, ref: str) -> dict[str, Any]:
    """:func:`run_summary` of a run, from its digest (computed once per run state)."""
    return summary_from(*run_digest(request, ref))


@router.get("/runs/{run}", summary="One run: its models, per-model summary with intervals, and quality",
            response_class=FastJSON)
def run_detail(request: Request, run: str) -> Any:
    """With the run's ``tags`` and its human ``reviews`` (review_api.py)."""
    out = summary_of(request, run)
    store = _store(request)
    out["tags"], out["reviews"] = store.run_tags(out["run"]["id"]), list(store.reviews(out["run"]["id"]).values())
    return FastJSON(out)


def select_results(results: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    """``all``; ``failures`` (failed requests or failed assertions); ``differ`` (cells whose models' outputs differ)."""
    if view == "failures":
        return [r for r in results if not r["ok"] or ((r.get("scores") or {}).get("assert") or {}).get("passed") is False]
    if view == "differ":
        by_cell: dict[tuple[int, int], set[str]] = {}
        for r in results:
            by_cell.setdefault((r["case_index"], r["repeat_index"]), set()).add((r["text"] or "").strip())
        return [r for r in results if len(by_cell[(r["case_index"], r["repeat_index"])]) > 1]
    return results


@router.get("/runs/{run}/results", summary="A run's results (the store's flat objects), by view, paged",
            response_class=FastJSON, responses={200: {"model": ResultsPage}})
def run_results(request: Request, run: str, view: View = "all", offset: int = Query(0, ge=0, le=MAX_OFFSET),
                limit: int = Query(500, ge=1, le=20000)) -> Any:
    store = _store(request)
    try:
        run_id = store.resolve_run_id(run)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None
    from ..report import with_reviews  # each result's human review (review_api.py), or null

    if view == "all":
        rows, total = store.results(run_id, offset=offset, limit=limit)
        rows = with_reviews({"results": rows}, store.reviews(run_id))["results"]
        return FastJSON({"total": total, "offset": offset, "results": rows})
    chosen = run_digest(request, run_id)[1].view_ids(view)  # select_results, kept per run state
    page = chosen[offset:offset + limit]
    rows, _ = store.results(run_id, ids=page) if page else ([], 0)
    rows = with_reviews({"results": rows}, store.reviews(run_id))["results"]
    return FastJSON({"total": len(chosen), "offset": offset, "results": rows})


@router.get("/runs/{run}/charts", summary="Per-model points for the charts: quality vs cost and speed, latencies",
            response_class=FastJSON)
def run_charts(request: Request, run: str) -> Any:
    from .run_charts import chart_data

    return FastJSON(chart_data(run_digest(request, run)[1]))


@router.get("/diff", summary="Two runs compared result by result (B − A)")
def diff(request: Request, a: str, b: str) -> dict[str, Any]:
    """Each changed pair with its word diff (``words``: [op, text] with op ``=``, ``-``, ``+``), or, for two long
    outputs, both side by side (``side``): report/diff.py."""
    from ..report.diff import diff_runs

    return diff_runs(_run(request, a), _run(request, b), words=True)


@router.get("/providers", summary="Providers and whether each is ready here (never a key)")
def providers(request: Request) -> list[dict[str, Any]]:
    from ..providers import all_providers
    from ..usecases.providers import readiness

    out = []
    for info in all_providers():
        ready, why = readiness(info)
        out.append({"name": info.name, "local": info.local, "env": list(info.env), "ready": ready, "status": why})
    return out


@router.get("/models", summary="The catalog, with the filters of 'tryouts models'")
def models(request: Request, access: Literal["open", "commercial"] | None = None, task: str | None = None,
           min_context: str | None = None, max_price: str | None = None, license: str | None = None,
           fits: str | None = Query(None, description="A memory size such as 24GB."), dtype: str = "bf16",
           context: int = Query(4096, ge=1, le=MAX_CONTEXT)) -> dict[str, Any]:
    from ..catalog import load_catalog
    from ..catalog.query import Filters, parse_money, parse_size, parse_tokens, select

    if not 1 <= context <= MAX_CONTEXT:  # the page passes its own numbers
        raise HTTPException(400, f"context is between 1 and {MAX_CONTEXT:,}.")
    try:
        f = Filters(access=access, task=task or None,
                    min_context=parse_tokens(min_context) if min_context else None,
                    max_price=parse_money(max_price) if max_price else None,
                    licenses=tuple(x for x in (license or "").split(",") if x),
                    fits_bytes=parse_size(fits) if fits else None, dtype=dtype, context=context)
        sel = select(load_catalog(), f)
    except TryoutsError as exc:
        raise _fail(exc) from None
    return {"models": [r.to_dict() for r in sel.rows], "left_out": sel.left_out}


@router.get("/models/{name:path}/card", summary="A model's card: catalog entry, model card, config.json facts")
def card(request: Request, name: str) -> dict[str, Any]:
    from ..catalog.card import build_card

    policy = _policy(request)
    try:
        name = policy.check_name(name)
    except Refused as exc:
        raise _refuse(exc) from None
    try:
        return build_card(name, online=False, local_paths=policy.allow_local_paths).to_dict()
    except TryoutsError as exc:
        raise _fail(exc, 404) from None


@router.get("/memory", summary="Memory needed to serve a model (weights, KV cache, overhead) and whether it fits")
def memory(request: Request, model: str, dtype: str = "all", context: int = Query(4096, ge=1, le=MAX_CONTEXT),
           batch: int = Query(1, ge=1, le=MAX_BATCH), kv_dtype: str | None = None, gpu: str | None = None,
           gpu_memory: str | None = None) -> dict[str, Any]:
    from ..memory import estimate
    from ..memory.gpus import find_gpu, parse_size
    from ..memory.resolve import resolve

    policy = _policy(request)
    try:
        model = policy.check_name(model)
    except Refused as exc:
        raise _refuse(exc) from None
    if context > MAX_CONTEXT or batch > MAX_BATCH:  # the page passes its own numbers
        raise HTTPException(400, f"context is at most {MAX_CONTEXT:,} and batch at most {MAX_BATCH:,}.")
    from ..catalog import lookup

    try:
        arch = resolve(model, catalog=lookup, local_paths=policy.allow_local_paths)
        gpu_bytes, gpu_name = None, None
        if gpu:
            g = find_gpu(gpu)
            gpu_bytes, gpu_name = g.memory_bytes, g.name
        elif gpu_memory:
            gpu_bytes, gpu_name = parse_size(gpu_memory), gpu_memory
        dtypes = ["fp32", "fp16", "bf16", "int8", "nf4", "gguf:Q8_0", "gguf:Q4_K_M"] if dtype == "all" else [dtype]
        rows = []
        for d in dtypes:
            est = estimate(arch, d, context=context, batch=batch, kv_dtype=kv_dtype)
            row = est.to_dict()
            row["fits"] = est.fits(gpu_bytes) if gpu_bytes else None
            rows.append(row)
    except TryoutsError as exc:
        raise _fail(exc) from None
    return {"model": model, "gpu": gpu_name, "gpu_bytes": gpu_bytes, "estimates": rows}


@router.get("/recommend", summary="The selection advisor: constraints in, a ranked short list with reasons out")
def recommend(request: Request, task: str = "chat", budget: str = "medium", privacy: str = "normal",
              offline: bool = False, latency_ms: float | None = None, gpu_memory: str | None = None,
              quality: str = "good", fine_tune: bool = False, context: int = Query(4096, ge=1, le=MAX_CONTEXT),
              top: int = Query(5, ge=1, le=50), gpu: str | None = None, ram: str | None = None,
              unified_memory: str | None = None, chip: str | None = None, bandwidth: float | None = None,
              commercial: bool = False, open_weights: bool = False) -> dict[str, Any]:
    from ..usecases.recommend import advise_with_catalog

    if context > MAX_CONTEXT or top > 50:  # the page passes its own numbers
        raise HTTPException(400, f"context is at most {MAX_CONTEXT:,} and top at most 50.")
    try:
        return advise_with_catalog(_store(request), task=task, budget=budget, privacy=privacy, offline=offline,
                                   latency_ms=latency_ms, gpu_memory=gpu_memory, quality=quality,
                                   fine_tune=fine_tune, context=context, top=top, gpu=gpu, ram=ram,
                                   unified_memory=unified_memory, chip=chip, bandwidth=bandwidth,
                                   commercial=commercial, open_weights=open_weights)
    except TryoutsError as exc:
        raise _fail(exc) from None


# ---- live comparisons ------------------------------------------------------------------------------


@router.post("/compare", summary="Start a live comparison (stored as a compare run)", response_model=CompareOut)
async def start_compare(request: Request, body: CompareIn) -> CompareOut:
    from ..types import GenParams, ModelSpec

    options = body.options or [{} for _ in body.models]
    if len(options) != len(body.models):
        raise HTTPException(400, "options must have one mapping per model")
    try:
        for m, o in zip(body.models, options, strict=True):
            _policy(request).check_model(m, o)
    except Refused as exc:
        raise _refuse(exc) from None
    try:
        for m, o in zip(body.models, options, strict=True):
            spec = ModelSpec.parse(m, o)
            from ..providers import get_info

            get_info(spec.provider)
        params = GenParams(max_tokens=body.max_tokens, temperature=body.temperature)
        from ..scoring.assertions import from_cli, parse_assertion

        asserts = [from_cli(a) for a in body.asserts if a.strip()]
        for text, spec in zip([a for a in body.asserts if a.strip()], asserts, strict=True):
            parse_assertion(dict(spec), f"assertion {text!r}")
    except TryoutsError as exc:
        raise _fail(exc) from None
    case = {"expected": body.expected, "asserts": asserts} if asserts or body.expected else None
    key = secrets.token_urlsafe(12)
    request.app.state.live.start(key, body.prompt, body.models, system=body.system, params=params, options=options,
                                 case=case)
    return CompareOut(key=key, events=f"/api/compare/{key}/events")


@router.get("/compare/{key}/events", summary="Server-sent events of a live comparison (history first)")
async def compare_events(request: Request, key: str) -> StreamingResponse:
    from .live import sse

    live = request.app.state.live.runs.get(key)
    if live is None:
        raise HTTPException(404, f"No live comparison {key[:40]!r}: finished ones are released a minute after "
                            "they end; open the run's page from Runs.")
    last = request.headers.get("last-event-id")
    start = int(last) + 1 if last and _DIGITS.fullmatch(last) else 0

    async def events():
        async for i, event in live.stream(start):
            if await request.is_disconnected():
                return
            yield sse(event, i)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/compare/{key}/stop", summary="Stop a live comparison (finished models stay stored)")
async def stop_compare(request: Request, key: str) -> dict[str, Any]:
    if key not in request.app.state.live.runs:
        raise HTTPException(404, f"No live comparison {key[:40]!r}: it may have finished (see Runs).")
    return {"stopped": request.app.state.live.stop(key)}


# ---- arena -----------------------------------------------------------------------------------------


def _pair_key(request: Request, run_id: str, a_id: int, b_id: int) -> str:
    """A pair's key, signed so the server keeps no state per GET (``a.b.signature``)."""
    import hashlib
    import hmac

    sig = hmac.new(request.app.state.pair_secret.encode(), f"{run_id}:{a_id}:{b_id}".encode(), hashlib.sha256)
    return f"{a_id}.{b_id}.{sig.hexdigest()[:32]}"


def _pair_ids(request: Request, run_id: str, key: str) -> tuple[int, int] | None:
    import hmac

    parts = key.split(".")
    if len(parts) != 3 or not _DIGITS.fullmatch(parts[0]) or not _DIGITS.fullmatch(parts[1]) or len(key) > 100:
        return None
    a_id, b_id = int(parts[0]), int(parts[1])
    return (a_id, b_id) if hmac.compare_digest(_pair_key(request, run_id, a_id, b_id).encode(), key.encode()) else None


@router.get("/runs/{run}/arena/next", summary="The next blind pair to vote on (no model names)")
def arena_next(request: Request, run: str) -> dict[str, Any]:
    """Two answers that are the same text are never offered (``identical`` counts those pairs)."""
    from ..usecases.arena import arena_pairs, identical_pairs

    data = _run(request, run)
    run_id = data["run"]["id"]
    store = _store(request)
    voted = {(v["result_a"], v["result_b"]) for v in store.votes(run_id, "human")}
    pairs = arena_pairs(data["results"], voted)
    identical = identical_pairs(data["results"])
    if not pairs:
        return {"pair": None, "remaining": 0, "identical": identical}
    x, y = pairs[0]
    key = _pair_key(request, run_id, x["id"], y["id"])
    return {"pair": key, "remaining": len(pairs), "identical": identical, "messages": x["request"]["messages"],
            "a": x["text"], "b": y["text"]}


@router.post("/runs/{run}/arena/vote", summary="Store a human vote on a pair; reveals the two models")
def arena_vote(request: Request, run: str, body: VoteIn) -> dict[str, Any]:
    """Refused (409) for two answers that are the same text: :func:`arena_next` never offers such a pair."""
    from ..usecases.arena import same_answer

    data = _run(request, run)
    run_id = data["run"]["id"]
    ids = _pair_ids(request, run_id, body.pair)
    voted = {frozenset((v["result_a"], v["result_b"])) for v in _store(request).votes(run_id, "human")}
    if ids is None or frozenset(ids) in voted:
        raise HTTPException(404, "Unknown or already used pair: ask for the next one.")
    a_id, b_id = ids
    labels = _labels(data)
    by_id = {r["id"]: r for r in data["results"]}
    if a_id not in by_id or b_id not in by_id:
        raise HTTPException(404, "Unknown or already used pair: ask for the next one.")
    a, b = by_id[a_id], by_id[b_id]
    if same_answer(a["text"], b["text"]):
        raise HTTPException(409, "The two answers are the same text (once whitespace at both ends is trimmed): "
                                 "there is nothing to choose between them, so this pair takes no vote.")
    la, lb = labels[a["model_index"]], labels[b["model_index"]]
    vote_id = _store(request).add_vote(run_id, case_index=a["case_index"], repeat_index=a["repeat_index"],
                                       result_a=a_id, result_b=b_id, model_a=la, model_b=lb, verdict=body.verdict)
    return {"vote": vote_id, "a": la, "b": lb}


@router.get("/runs/{run}/rank", summary="Bradley–Terry ratings with bootstrap intervals, human and judge apart")
def rank(request: Request, run: str, resamples: int = Query(500, ge=0, le=1000),
         style_control: bool = Query(False, description="Also the ratings controlled for style (length, Markdown)."),
         ) -> dict[str, Any]:
    """Each rating row has ``rank`` (1 + the models whose whole interval lies above), ``rank_range`` and
    ``tied_with``; votes on identical answers count as ties; ``style_control`` adds the style-controlled fit."""
    from ..usecases.arena import rankings

    store = _store(request)
    try:
        run_id = store.resolve_run_id(run)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None
    return {"run_id": run_id, "rankings": rankings(store, run_id, resamples=resamples, style_control=style_control)}


# ---- suite runs ------------------------------------------------------------------------------------


class SuiteRunIn(BaseModel):
    """Start a suite run from a suite file on this machine (the dashboard is local: the path is the server's)."""

    path: str = Field(min_length=1, description="The suite file (YAML), e.g. examples/offline.yaml.")


def suite_problems(exc: Any, given: str) -> str:
    """A suite's problems by line and field only: the web never repeats a file's content."""
    import re

    where = []
    for issue in exc.issues[:10]:
        field = issue.path if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\[\]]{0,80}", issue.path or "") else ""
        spot = f"line {issue.line}" if issue.line is not None else "the file"
        where.append(f"{spot} ({field})" if field else spot)
    more = f" and {len(exc.issues) - 10} more" if len(exc.issues) > 10 else ""
    return (f"The suite file {given[:200]!r} has problems at {', '.join(where)}{more}. Run 'tryouts run "
            f"{given[:200]} --dry-run' in a terminal to see them.")


@router.post("/suite-runs", summary="Start a suite run in the background (as 'tryouts run'); returns its run id")
def start_suite_run(request: Request, body: SuiteRunIn) -> dict[str, Any]:

    from ..suite.issues import SuiteError
    from ..usecases.suites import plan_suite

    try:
        path = _policy(request).suite_path(body.path)
    except Refused as exc:
        raise _refuse(exc) from None
    store = _store(request)
    try:
        plan = plan_suite(store, path)  # as in a terminal: a bad scorer is refused before anything is sent
    except SuiteError as exc:
        raise HTTPException(400, suite_problems(exc, body.path)) from None
    except TryoutsError:
        raise HTTPException(400, f"The suite {body.path[:200]!r} cannot be run as it is: run 'tryouts run "
                            f"{body.path[:200]} --dry-run' in a terminal to see why.") from None
    from .rerun import launch_suite

    run_id = launch_suite(request, store, plan)
    return {"run_id": run_id, "cells": len(plan.cells), "page": f"/runs/{run_id}"}


@router.get("/suite-runs/{run}", summary="Progress of a suite run: results stored of cells, status, messages")
def suite_run_progress(request: Request, run: str) -> dict[str, Any]:
    store = _store(request)
    try:
        row = store.get_run_row(run)
    except TryoutsError as exc:
        raise _fail(exc, 404) from None
    done = len(store.done_cells(row["id"]))
    return {"run_id": row["id"], "status": row["status"], "done": done, "cells": row["meta"].get("n_cells"),
            "messages": request.app.state.suite_logs.get(row["id"], [])}
