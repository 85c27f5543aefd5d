"""Load benchmarks in the store: a run of kind ``load`` has load points, and each point its requests.

A point's row keeps its settings and its figures (load/metrics.py's keys); its requests keep every time
(milliseconds from the point's start), token count and status, so the figures can be recomputed, charted
and compared without rerunning anything. Writes are idempotent per point and per request.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ..redact import _known
from ..redact import redact as redact_text
from . import schema

#: request rows per INSERT statement (a point may have a million)
BATCH = 2000


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: NaN and infinities become None (PostgreSQL's JSON refuses them), others via
    ``str`` (decimals)."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [fix(x) for x in v]
        return v

    return json.loads(json.dumps(fix(value), default=str))


class LoadStore:
    """The load-benchmark half of :class:`tryouts.store.Store` (it needs ``self.engine``)."""

    engine: Any

    def add_load_point(self, run_id: str, point_index: int, profile: str, settings: dict[str, Any],
                       figures: dict[str, Any], requests: list[dict[str, Any]]) -> None:
        """Commit one load point and its request rows (:meth:`RequestRecord.to_row`) in one transaction.
        A point or request already stored stays as it is. Errors and request ids are redacted: a hostile
        server may echo a key into either."""
        from . import _dialect_insert

        known = _known()
        now = datetime.now(UTC).isoformat()
        p, r = schema.load_points, schema.load_requests
        with self.engine.begin() as conn:
            ins = _dialect_insert(conn)
            conn.execute(ins(p).on_conflict_do_nothing(index_elements=[p.c.run_id, p.c.point_index]), [{
                "run_id": run_id, "point_index": point_index, "profile": profile, "settings": json_safe(settings),
                "figures": json_safe(figures), "created_at": now}])
            rows = [{**row, "run_id": run_id, "point_index": point_index,
                     "error": _clean(row.get("error"), known), "request_id": _clean(row.get("request_id"), known),
                     "rate_limit": json_safe({k: _clean(str(v), known) for k, v in (row.get("rate_limit") or {}).items()})
                     or None}
                    for row in requests]
            stmt = ins(r).on_conflict_do_nothing(index_elements=[r.c.run_id, r.c.point_index, r.c.request_index])
            for i in range(0, len(rows), BATCH):
                conn.execute(stmt, rows[i:i + BATCH])

    def load_points(self, run_id: str) -> list[dict[str, Any]]:
        """A load run's points in order: ``point_index``, ``profile``, ``settings``, ``figures``, ``created_at``."""
        p = schema.load_points
        with self.engine.connect() as conn:
            rows = conn.execute(select(p).where(p.c.run_id == run_id).order_by(p.c.point_index)).mappings().all()
        return [{k: row[k] for k in ("point_index", "profile", "settings", "figures", "created_at")} for row in rows]

    def load_requests(self, run_id: str, point_index: int | None = None) -> list[dict[str, Any]]:
        """A load run's request rows (one point's, or all), by point then request index."""
        r = schema.load_requests
        where = [r.c.run_id == run_id] + ([r.c.point_index == point_index] if point_index is not None else [])
        with self.engine.connect() as conn:
            rows = conn.execute(select(r).where(*where).order_by(r.c.point_index, r.c.request_index)).mappings().all()
        return [{k: v for k, v in row.items() if k not in ("id", "run_id")} for row in rows]


def _clean(text: str | None, known: list[str]) -> str | None:
    if text is None:
        return None
    text = redact_text(text, known).replace("\x00", "\ufffd")
    return text[:2000]
