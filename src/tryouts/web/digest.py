"""A run's figures for the dashboard, computed in one pass over its rows and kept while the run is unchanged.

The run page, ``/api/runs/{run}``, ``/api/runs/{run}/charts`` and the views of ``/api/runs/{run}/results``
all need figures over *every* result of a run: the per-model summary, quality, how many results failed, how
many cases there are, which results belong to each view (failures, outputs differ) and the charts' samples.
On a run of 100,000 results, reading and decoding every row costs seconds, so they are computed once, by one
streaming pass over the columns they need (plain tuples, not mappings), and kept per run and **state**:

* the number of results and the largest result id (results added or removed),
* the run's status and finish time, and a hash of its meta (a run ends, or is (re)scored: every scoring path,
  ``tryouts run``, ``tryouts score``, ``tryouts eval-task``, stores the new quality summary in the meta).

The state costs one indexed ``count``/``max`` query per request (a few ms at 100,000 results). A few runs are
kept per dashboard (:data:`KEEP`); two requests for the same run and state compute it once (the second waits).
The figures are those of :func:`tryouts.stats.summarize`, :func:`tryouts.scoring.summary.quality_report` and
:func:`tryouts.web.api.select_results`, on the same values in the same order.
"""

from __future__ import annotations

import hashlib
import json
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..records import index_in
from ..stats import TIMING_FIELDS

#: runs whose figures a dashboard keeps (least recently used first out)
KEEP = 6

#: the columns one pass reads (``cost_total`` as the flat result's ``cost_usd_exact``)
COLUMNS = ("id", "model_index", "case_index", "repeat_index", "model", "ok", "cached", *TIMING_FIELDS,
           "cost_total", "scores", "timing_valid", "batch", "text")

FAILED, DIFFERS = 1, 2
"""Flags of a result: in the *failures* view (a failed request or a failed assertion), in *outputs differ*."""


@dataclass
class Digest:
    """What the run page and the run API need of every result of one run, in ``get_run`` order."""

    run_id: str
    summary: list[dict[str, Any]]
    quality: dict[str, Any]
    n_results: int
    n_failed: int
    n_cases: int
    n_skipped: int = 0  # results left out: a model index not one of the run's models, or a case or repeat not >= 0
    ids: array = field(default_factory=lambda: array("q"))
    cases: array = field(default_factory=lambda: array("q"))
    flags: bytearray = field(default_factory=bytearray)
    samples: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # what is derived from it (charts), made once
    _light: list[dict[str, Any]] | None = None

    def view_ids(self, view: str) -> list[int]:
        """The ids of a view's results (``all``, ``failures``, ``differ``), in order."""
        if view == "all":
            return list(self.ids)
        flag = FAILED if view == "failures" else DIFFERS
        return [i for i, f in zip(self.ids, self.flags, strict=True) if f & flag]

    def counts(self) -> dict[str, int]:
        """How many results each view holds."""
        return {"all": len(self.ids), "failures": sum(1 for f in self.flags if f & FAILED),
                "differ": sum(1 for f in self.flags if f & DIFFERS)}

    def light(self) -> list[dict[str, Any]]:
        """Every result as ``{id, case_index, flags}`` (built once): what the page's views and search filter."""
        if self._light is None:
            self._light = [{"id": i, "case_index": c, "flags": f}
                           for i, c, f in zip(self.ids, self.cases, self.flags, strict=True)]
        return self._light


def select_light(light: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    """The rows of :meth:`Digest.light` in a view."""
    if view == "all":
        return light
    flag = FAILED if view == "failures" else DIFFERS
    return [r for r in light if r["flags"] & flag]


def _failed(ok: bool, scores: dict[str, Any] | None) -> bool:
    return not ok or ((scores or {}).get("assert") or {}).get("passed") is False


def compute(store: Any, run: dict[str, Any], labels: list[str]) -> Digest:
    """One pass over the run's rows (see the module docstring)."""
    from sqlalchemy import select

    from ..scoring.summary import quality_report
    from ..stats import Summarizer
    from ..store import schema

    res = schema.results
    names = list(COLUMNS)
    q = (select(*(res.c[c] for c in names)).where(res.c.run_id == run["id"])
         .order_by(res.c.case_index, res.c.model_index, res.c.repeat_index, res.c.id))
    meta_quality = (run.get("meta") or {}).get("quality")
    acc = Summarizer()
    digest = Digest(run_id=run["id"], summary=[], quality={}, n_results=0, n_failed=0, n_cases=0)
    samples = digest.samples
    scored: list[dict[str, Any]] = []  # what quality_report reads, when the run's meta has no quality summary
    seen_models: set[int] = set()
    texts: dict[int, set[str]] = {}  # repeat -> the outputs of the current case (rows come case by case)
    rows_of_case: list[tuple[int, int]] = []  # (position, repeat) of the current case's rows
    current_case: int | None = None
    flags = digest.flags
    models = run.get("models")
    n_models = len(models) if isinstance(models, list) else 0

    def close_case() -> None:
        differing = {rep for rep, seen in texts.items() if len(seen) > 1}
        if differing:
            for pos, rep in rows_of_case:
                if rep in differing:
                    flags[pos] |= DIFFERS
        texts.clear()
        rows_of_case.clear()

    with store.engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(q)
        for row in result:
            r = dict(zip(names, row, strict=True))
            r["ok"], r["cached"], r["batch"] = bool(r["ok"]), bool(r["cached"]), bool(r["batch"])
            if r["timing_valid"] is not None:
                r["timing_valid"] = bool(r["timing_valid"])
            r["cost_usd_exact"] = r.pop("cost_total")
            case, rep, model = r["case_index"], r["repeat_index"], r["model_index"]
            if not (index_in(model, n_models) and index_in(case, 1 << 62) and index_in(rep, 1 << 62)):
                digest.n_skipped += 1  # a stored index is never trusted to size anything (records.index_in)
                continue
            acc.add(r)
            if case != current_case:
                close_case()
                current_case = case
                digest.n_cases += 1
            pos = len(flags)
            flags.append(FAILED if _failed(r["ok"], r["scores"]) else 0)
            texts.setdefault(rep, set()).add((r["text"] or "").strip())
            rows_of_case.append((pos, rep))
            digest.ids.append(int(r["id"]))
            digest.cases.append(case)
            digest.n_results += 1
            digest.n_failed += not r["ok"]
            if r["ok"] and not r["cached"]:
                s = samples.setdefault(model, {"e2e_ms": [], "ttft_ms": []})
                if r["e2e_ms"] is not None:
                    s["e2e_ms"].append(r["e2e_ms"])
                if r["ttft_ms"] is not None:
                    s["ttft_ms"].append(r["ttft_ms"])
            if meta_quality is None and (r["scores"] or model not in seen_models):
                scored.append({"model_index": model, "case_index": case, "scores": r["scores"]})
                seen_models.add(model)
        close_case()
    digest.summary = acc.summaries()
    for s in digest.summary:
        s["label"] = labels[s["model_index"]] if s["model_index"] < len(labels) else s["model"]
    digest.quality = meta_quality or quality_report(scored, labels)
    return digest


def _state(store: Any, run: dict[str, Any]) -> tuple[Any, ...]:
    from sqlalchemy import func, select

    from ..store import schema

    res = schema.results
    with store.engine.connect() as conn:
        n, last = conn.execute(select(func.count(), func.max(res.c.id)).where(res.c.run_id == run["id"])).one()
    meta = json.dumps(run.get("meta"), sort_keys=True, default=str, separators=(",", ":"))
    return (run["id"], int(n), last, run.get("status"), run.get("finished_at"),
            hashlib.sha256(meta.encode()).hexdigest())


class Digests:
    """The digests one dashboard keeps (:data:`KEEP` runs), computed once per run and state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[tuple[Any, ...], Digest]] = OrderedDict()
        self._computing: dict[str, threading.Lock] = {}

    def get(self, store: Any, run: dict[str, Any], labels: list[str]) -> Digest:
        state = _state(store, run)
        run_id = run["id"]
        with self._lock:
            lock = self._computing.setdefault(run_id, threading.Lock())
        with lock:  # a second request for the same run waits for the first's pass
            with self._lock:
                kept = self._kept.get(run_id)
                if kept is not None and kept[0] == state:
                    self._kept.move_to_end(run_id)
                    return kept[1]
            digest = compute(store, run, labels)
            with self._lock:
                self._kept[run_id] = (state, digest)
                self._kept.move_to_end(run_id)
                while len(self._kept) > KEEP:
                    self._kept.popitem(last=False)
            return digest


def digests(app: Any) -> Digests:
    """The app's digests (made on first use)."""
    found = getattr(app.state, "digests", None)
    if found is None:
        with _APP_LOCK:
            found = getattr(app.state, "digests", None)
            if found is None:
                found = app.state.digests = Digests()
    return found


_APP_LOCK = threading.Lock()


def recent_runs(store: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest runs' ``id`` and ``kind`` (the run page's "Diff against" list), without the result counts of
    ``Store.list_runs``, which reads every result of the store (0.1 s at 100,000 results)."""
    from sqlalchemy import select

    from ..store import schema

    r = schema.runs
    q = select(r.c.id, r.c.kind).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [dict(row) for row in conn.execute(q).mappings()]
