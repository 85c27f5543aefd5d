"""The provider batch jobs of runs (docs/batch.md), mixed into :class:`tryouts.store.Store`.

A job is recorded as soon as the provider accepted it, before it is polled: a run stopped while its jobs
run (Ctrl-C, a crash, a closed laptop) finds them on ``--resume``, collects what they answered and sends
again only what expired or failed. A job's results, once recorded, mark it ``collected``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from ..redact import redact as redact_text
from . import schema


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class BatchStore:
    """Batch jobs by run (the engine's ``RunContext.jobs``)."""

    engine: Any

    def add_batch_job(self, run_id: str, job_id: str, *, purpose: str, model: str, model_index: int, provider: str,
                      server: str | None, custom_ids: list[str], round_no: int, status: str,
                      info: dict[str, Any] | None = None) -> None:
        """Record a job the provider accepted."""
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(schema.batch_jobs).values(
                run_id=run_id, job_id=job_id, purpose=purpose, model=redact_text(model), model_index=model_index,
                provider=provider, server=server, custom_ids=custom_ids, round=round_no, status=status,
                collected=False, created_at=now, updated_at=now, info=info or {}))

    def update_batch_job(self, run_id: str, job_id: str, *, status: str, collected: bool = False,
                         info: dict[str, Any] | None = None) -> None:
        """A job's new status (and ``collected`` once its results are recorded)."""
        j = schema.batch_jobs
        values: dict[str, Any] = {"status": status, "collected": collected, "updated_at": _now()}
        if info is not None:
            values["info"] = info
        with self.engine.begin() as conn:
            conn.execute(update(j).where(j.c.run_id == run_id, j.c.job_id == job_id).values(**values))

    def batch_jobs(self, run_id: str, purpose: str | None = None, *, open_only: bool = False) -> list[dict[str, Any]]:
        """A run's jobs, oldest first (``open_only``: those whose results are not collected yet)."""
        j = schema.batch_jobs
        q = select(j).where(j.c.run_id == run_id)
        if purpose is not None:
            q = q.where(j.c.purpose == purpose)
        if open_only:
            q = q.where(j.c.collected.is_(False))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(j.c.created_at, j.c.job_id)).mappings()]
