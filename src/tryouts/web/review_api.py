"""The dashboard's review API: per-result ratings and comments, run tags, deleting a run, and per-model actions
(export one model's results, re-run one model, stop one model of a live comparison).

Every write needs the CSRF header (web/security.py); a result that is not the run's is a 404, a bad rating,
comment or tag a 422 that says what is allowed, an unknown run a 404, deleting a running run a 409. Re-running
takes nothing from the request but the run and the model's index: see web/rerun.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from ..errors import TryoutsError, UsageError
from ..paths import default_file_name
from ..store.reviews import MAX_COMMENT, MAX_TAGS, RunBusy, UnknownResult
from .api import FastJSON

router = APIRouter(prefix="/api")

#: the largest result id a path may name (a 64-bit id)
MAX_ID = 2**63 - 1
#: the most models a run's model index may reach
MAX_MODELS = 10_000

ResultId = Annotated[int, Path(ge=1, le=MAX_ID, description="The result's id (the `id` of a result object).")]
ModelIndex = Annotated[int, Path(ge=0, le=MAX_MODELS, description="The model's position in the run (`model_index`).")]


class ReviewIn(BaseModel):
    """A human review of one result: a rating and/or a comment (neither: the review is removed)."""

    rating: Literal["good", "bad"] | None = Field(None, description="good or bad, or none.")
    comment: str = Field("", description=f"Free text, at most {MAX_COMMENT:,} characters (longer: 422).")


class TagsIn(BaseModel):
    """Tags for a run: 1 to 32 letters, digits and . _ : + - each (lower-cased), at most MAX_TAGS a run."""

    tags: list[str] = Field(max_length=MAX_TAGS, description=f"The tags (at most {MAX_TAGS}).")


def _store(request: Request) -> Any:
    return request.app.state.store


def _run_id(request: Request, run: str) -> str:
    try:
        return _store(request).resolve_run_id(run)
    except TryoutsError as exc:
        raise HTTPException(404, exc.message) from None


def _unprocessable(exc: UsageError) -> HTTPException:
    return HTTPException(422, exc.message)


def search_runs(store: Any, rows: list[dict[str, Any]], *, q: str | None, tag: str | None) -> list[dict[str, Any]]:
    """``rows`` (a run list) each with its ``tags``, keeping those tagged ``tag`` and those where ``q`` is in the
    id, a model, a label, a tag, the description or an output (case-insensitive, taken literally; the outputs
    through a bounded search of the store, :meth:`Store.runs_matching_text`)."""
    from ..store.reviews import like_text

    tags = store.tags_by_run()
    rows = [{**r, "tags": tags.get(r["id"], [])} for r in rows]
    if tag and tag.strip():
        wanted = tag.strip().lower()
        rows = [r for r in rows if wanted in r["tags"]]
    needle = like_text(q or "")
    if needle:
        in_outputs = store.runs_matching_text(needle)

        def found(r: dict[str, Any]) -> bool:
            meta = r.get("meta") or {}
            words = [r["id"], *r["models"], *(meta.get("labels") or []), *r["tags"], meta.get("description") or ""]
            return r["id"] in in_outputs or any(needle in str(w).lower() for w in words)

        rows = [r for r in rows if found(r)]
    return rows


def cases_matching(store: Any, run_id: str, light: list[dict[str, Any]], search: str) -> list[dict[str, Any]]:
    """The rows of ``light`` (a run's results, ``id`` and ``case_index`` at least) in the cases where some
    output contains ``search`` (every model of such a case stays, to compare); all of them for no search."""
    if not search.strip():
        return light
    ids = store.result_ids_matching(run_id, search)
    cases = {r["case_index"] for r in light if r["id"] in ids}
    return [r for r in light if r["case_index"] in cases]


def run_page_extras(store: Any, run_id: str, search: str) -> dict[str, Any]:
    """What the run page shows of the review: ``tags``, ``reviews`` by result id, the ``search`` text and
    ``search_qs``, the query string that keeps it in the page's links."""
    from urllib.parse import urlencode

    from ..store.reviews import MAX_QUERY

    search = search.strip()[:MAX_QUERY]
    return {"tags": store.run_tags(run_id), "reviews": store.reviews(run_id), "search": search,
            "search_qs": ("&" + urlencode({"q": search})) if search else ""}


# ---- reviews ------------------------------------------------------------------------------------------


@router.get("/runs/{run}/reviews", summary="Every review of a run (ratings and comments by result id)")
def run_reviews(request: Request, run: str) -> dict[str, Any]:
    """``{run_id, reviews: [{result_id, rating, comment, created_at, updated_at}]}``."""
    run_id = _run_id(request, run)
    return {"run_id": run_id, "reviews": list(_store(request).reviews(run_id).values())}


@router.get("/runs/{run}/results/{result_id}/review", summary="One result's review (null when it has none)")
def get_review(request: Request, run: str, result_id: ResultId) -> dict[str, Any]:
    """404 when the result is not one of the run's."""
    run_id = _run_id(request, run)
    try:
        return {"run_id": run_id, "result_id": result_id, "review": _store(request).review(run_id, result_id)}
    except UnknownResult as exc:
        raise HTTPException(404, exc.message) from None


@router.put("/runs/{run}/results/{result_id}/review", summary="Rate and comment one result (replaces its review)")
def put_review(request: Request, body: ReviewIn, run: str, result_id: ResultId) -> dict[str, Any]:
    """Neither a rating nor a comment (only white space) removes the review: ``review`` is then null."""
    run_id = _run_id(request, run)
    try:
        review = _store(request).set_review(run_id, result_id, body.rating, body.comment)
    except UnknownResult as exc:
        raise HTTPException(404, exc.message) from None
    except UsageError as exc:
        raise _unprocessable(exc) from None
    return {"run_id": run_id, "result_id": result_id, "review": review}


@router.delete("/runs/{run}/results/{result_id}/review", summary="Remove one result's review")
def delete_review(request: Request, run: str, result_id: ResultId) -> dict[str, Any]:
    """``deleted``: whether it had one; 404 when the result is not one of the run's."""
    run_id = _run_id(request, run)
    try:
        return {"run_id": run_id, "result_id": result_id, "deleted": _store(request).delete_review(run_id, result_id)}
    except UnknownResult as exc:
        raise HTTPException(404, exc.message) from None


# ---- tags ---------------------------------------------------------------------------------------------


@router.get("/runs/{run}/tags", summary="A run's tags")
def get_tags(request: Request, run: str) -> dict[str, Any]:
    """``{run_id, tags}``, sorted."""
    run_id = _run_id(request, run)
    return {"run_id": run_id, "tags": _store(request).run_tags(run_id)}


@router.post("/runs/{run}/tags", summary="Add tags to a run (those it has stay)")
def add_tags(request: Request, run: str, body: TagsIn) -> dict[str, Any]:
    """The run's tags after; 422 for a tag that is not one, or past the limit."""
    run_id = _run_id(request, run)
    try:
        return {"run_id": run_id, "tags": _store(request).add_run_tags(run_id, body.tags)}
    except UsageError as exc:
        raise _unprocessable(exc) from None


@router.put("/runs/{run}/tags", summary="Replace a run's tags")
def put_tags(request: Request, run: str, body: TagsIn) -> dict[str, Any]:
    """The run's tags after (an empty list removes them all); 422 as for adding."""
    run_id = _run_id(request, run)
    try:
        return {"run_id": run_id, "tags": _store(request).set_run_tags(run_id, body.tags)}
    except UsageError as exc:
        raise _unprocessable(exc) from None


@router.delete("/runs/{run}/tags/{tag}", summary="Remove one tag from a run")
def delete_tag(request: Request, run: str, tag: Annotated[str, Path(max_length=100)]) -> dict[str, Any]:
    """``removed``: whether the run had it; the run's tags after."""
    run_id = _run_id(request, run)
    removed = _store(request).remove_run_tag(run_id, tag)
    return {"run_id": run_id, "removed": removed, "tags": _store(request).run_tags(run_id)}


# ---- deleting a run -----------------------------------------------------------------------------------


@router.delete("/runs/{run}", summary="Delete a run and all its rows (results, scores, votes, reviews, tags...)")
def delete_run(request: Request, run: str) -> dict[str, Any]:
    """409 while the run is running (stop it first); a stale run can be deleted."""
    run_id = _run_id(request, run)
    try:
        out = _store(request).delete_run(run_id)
    except RunBusy as exc:
        raise HTTPException(409, exc.message) from None
    request.app.state.suite_logs.pop(run_id, None)
    return out


# ---- per model: export, re-run, stop -------------------------------------------------------------------


def _model(run: dict[str, Any], index: int) -> tuple[str, str]:
    """(reference, label) of model ``index`` of ``run``; 404 when it has no such model."""
    models = run["models"]
    if index >= len(models):
        raise HTTPException(404, f"Run {run['id']} has no model {index} (it has {len(models)}).")
    labels = (run.get("meta") or {}).get("labels") or models
    return models[index], str(labels[index] if index < len(labels) else models[index])


@router.get("/runs/{run}/models/{index}/results", summary="One model's results with their reviews (an export)",
            response_class=FastJSON)
def model_results(request: Request, run: str, index: ModelIndex,
                  download: bool = Query(False, description="Send as a file to save (Content-Disposition).")) -> Any:
    """``{run, model_index, model, label, results}``, each result with its ``review`` (the run's stored suite
    left out of ``run.meta``)."""
    from ..report import with_reviews

    store = _store(request)
    try:
        row = store.get_run_row(run)
    except TryoutsError as exc:
        raise HTTPException(404, exc.message) from None
    ref, label = _model(row, index)
    meta = {k: v for k, v in (row.get("meta") or {}).items() if k != "suite"}  # the stored suite: up to 4 MB
    data = with_reviews({"run": {**row, "meta": meta}, "results": store.model_results(row["id"], index)},
                        store.reviews(row["id"]))
    out = {"run": data["run"], "model_index": index, "model": ref, "label": label, "results": data["results"]}
    name = default_file_name("tryouts-", str(row["id"]), f"-model-{index}.json")  # an id may hold quotes, breaks
    headers = {"Content-Disposition": f'attachment; filename="{name}"'} if download else {}
    return FastJSON(out, headers=headers)


@router.post("/runs/{run}/models/{index}/rerun", summary="Start a new run of this run limited to one model")
async def rerun(request: Request, run: str, index: ModelIndex) -> dict[str, Any]:
    """The model, its options, prompt and parameters come from the store and pass the dashboard's policy as
    ``POST /api/compare`` or ``POST /api/suite-runs`` (web/rerun.py): the body is ignored."""
    from .rerun import rerun_model

    try:
        row = _store(request).get_run_row(run)
    except TryoutsError as exc:
        raise HTTPException(404, exc.message) from None
    _model(row, index)
    return await rerun_model(request, row, index)


@router.post("/compare/{key}/models/{index}/stop", summary="Stop one model of a live comparison (the others go on)")
async def stop_model(request: Request, key: str, index: ModelIndex) -> dict[str, Any]:
    """What that model streamed is kept, with its TTFT: stored as a failed result "Stopped from the dashboard"."""
    live = request.app.state.live.runs.get(key)
    if live is None:
        raise HTTPException(404, f"No live comparison {key[:40]!r}: it may have finished (see Runs).")
    if index >= len(live.models):
        raise HTTPException(404, f"This comparison has no model {index} (it has {len(live.models)}).")
    return {"stopped": request.app.state.live.stop_model(key, index)}
