"""Rows in and out of the results table: a Result becomes a row (secrets masked on the way in), a row
becomes the documented flat object (docs/json.md) or a typed record (tryouts.records)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ..redact import redact as redact_text
from ..redact import redact_options
from ..types import Result
from .liveness import staleness


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def result_row(run_id: str, r: Result) -> dict[str, Any]:
    """A result as a row of the results table: the one way into it, so secrets are masked here (options,
    error, a URL's user-info in the model reference, the server's finish reason and tier; see
    :mod:`tryouts.redact`)."""
    t, u, c = r.timing, r.usage, r.cost
    return {
        "run_id": run_id,
        "model_index": r.model_index,
        "case_index": r.case_index,
        "repeat_index": r.repeat_index,
        "model": redact_text(r.model),
        "provider": r.provider,
        "model_name": r.model_name,
        "options": redact(_jsonable(r.options)),
        "ok": r.ok,
        "error": redact_text(r.error) if r.error else r.error,
        "error_kind": r.error_kind,
        "text": r.text,
        "reasoning_text": r.reasoning_text,
        "finish_reason": redact_text(r.finish_reason) if r.finish_reason else r.finish_reason,
        "started_at": r.started_at.isoformat(),
        "queue_ms": t.queue_ms,
        "load_ms": t.load_ms,
        "ttft_ms": t.ttft_ms,
        "ttfat_ms": t.ttfat_ms,
        "e2e_ms": t.e2e_ms,
        "tpot_ms": t.tpot_ms,
        "output_tokens_per_s": t.output_tokens_per_s,
        "itl_ms": t.itl_ms,
        "n_chunks": t.n_chunks,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "service_tier": redact_text(u.service_tier) if u.service_tier else u.service_tier,
        "tokens_estimated": u.estimated,
        "token_method": u.method,
        "cost_total": _dec(c.total),
        "cost_input": _dec(c.input),
        "cost_output": _dec(c.output),
        "cost_currency": c.currency,
        "cost_source": c.source,
        "server_timings": _jsonable(r.server_timings),
        "request": r.request.model_dump(mode="json"),
        "cached": r.cached,
        "case": _jsonable(r.case),
        "attempts": r.attempts,
        "scores": _jsonable(r.scores),
        "sampling": _jsonable(r.sampling),
        "cell_key": r.cell_key,
        "timing_valid": r.timing_valid,
        "batch": r.batch,
    }


def run_dict(row: Any) -> dict[str, Any]:
    stale = staleness(row)
    return {
        "id": row["id"],
        "kind": row["kind"],
        # a run still marked running whose process is gone is "stale" (store/liveness.py)
        "status": "stale" if stale else row["status"],
        **({"stale_reason": stale} if stale else {}),
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "models": row["models"],
        "request": row["request"],
        "meta": row["meta"],
        "tryouts_version": row["tryouts_version"],
    }


def flat_result(row: Any) -> dict[str, Any]:
    """A stored result as the documented flat JSON object (see docs/json.md); a row of some columns only
    (:meth:`Store.results`) gives those fields."""
    d = dict(row)
    d.pop("run_id", None)
    if "id" in d:
        d["id"] = int(d["id"])
    if "batch" in d:
        d["batch"] = bool(d["batch"])
    for name in ("ok", "tokens_estimated", "cached"):
        if name in d:
            d[name] = bool(d[name])
    if d.get("timing_valid") is not None:
        d["timing_valid"] = bool(d["timing_valid"])
    if "cost_total" in d:
        total = d.pop("cost_total")
        d["cost_usd"] = float(total) if total is not None else None
        d["cost_usd_exact"] = total
    return d


def redact(options: dict[str, Any] | None) -> dict[str, Any]:
    """Options with anything that may hold a credential replaced by ``***`` (never stored)."""
    return redact_options(options)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None
