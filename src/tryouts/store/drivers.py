"""A run shared by several drivers: the slices of a sweep (``tryouts run --shard i/n``) against one ledger.

Each driver registers the slice it runs in ``run_drivers`` (``i/n``, or ``all``) with its owner (``PID@HOST``)
and a heartbeat. The run's own ``owner`` is then :data:`SHARED`: it stays ``running`` while any driver beats,
and shows as stale once none has for :data:`~tryouts.store.liveness.STALE_AFTER_S`. Two live drivers never
hold overlapping slices. The last driver to finish takes the run over (an atomic compare-and-set on its
owner, so exactly one does) and finishes it: scoring, quality, status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from ..errors import StoreError
from . import schema
from .liveness import staleness, this_owner

#: ``runs.owner`` of a run whose drivers are in ``run_drivers``
SHARED = "drivers"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) as ``(i, n)``; ValueError says what is wrong."""
    left, sep, right = text.partition("/")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        raise ValueError(f"--shard {text!r} should be I/N, e.g. 0/4 (slices 0, 1, 2 and 3 of 4)")
    i, n = int(left), int(right)
    if n < 1 or i >= n:
        raise ValueError(f"--shard {text!r}: I must be from 0 to N-1 and N at least 1 (e.g. 0/4 ... 3/4)")
    return i, n


def overlaps(a: str, b: str) -> bool:
    """Whether two slices (``i/n`` or ``all``) may hold the same cell: slices of different N always may."""
    if a == "all" or b == "all":
        return True
    (i, n), (j, m) = parse_shard(a), parse_shard(b)
    return n != m or i == j


def _alive(row: Any) -> bool:
    return staleness({"status": "running", "owner": row["owner"], "heartbeat_at": row["heartbeat_at"],
                      "started_at": row["started_at"]}) is None


class DriverStore:
    """The drivers of shared runs (mixed into :class:`tryouts.store.Store`)."""

    engine: Any
    _heartbeat: Any

    def create_shared_run(self, run_id: str, kind: str, models: list[str], request: dict[str, Any],
                          meta: dict[str, Any]) -> bool:
        """Record run ``run_id`` unless it exists (two drivers may start it at once); True when this call made it."""
        from .._version import __version__
        from ..redact import redact as redact_text
        from . import _dialect_insert

        with self.engine.begin() as conn:
            done = conn.execute(_dialect_insert(conn)(schema.runs).values(
                id=run_id, kind=kind, status="running", started_at=_now(), models=[redact_text(m) for m in models],
                request=request, meta=meta, tryouts_version=__version__, owner=SHARED, heartbeat_at=_now(),
            ).on_conflict_do_nothing())
        return done.rowcount == 1

    def join_run(self, run_id: str, shard: str) -> None:
        """Run slice ``shard`` of ``run_id`` from this process. Refused (StoreError) while a single process runs
        the whole run, or a live driver holds an overlapping slice."""
        r, d = schema.runs, schema.run_drivers
        me, now = this_owner(), _now()
        with self.engine.begin() as conn:
            run = conn.execute(select(r).where(r.c.id == run_id).with_for_update()).mappings().one()
            if run["status"] == "running" and run["owner"] != SHARED and staleness(run) is None:
                raise StoreError(f"Run {run_id} is being run by process {str(run['owner']).replace('@', ' on ')}: "
                                 "wait for it to end, or stop it and run the slices again.")
            rows = conn.execute(select(d).where(d.c.run_id == run_id, d.c.finished_at.is_(None))).mappings().all()
            for row in rows:
                if row["owner"] != me and _alive(row) and overlaps(row["shard"], shard):
                    raise StoreError(
                        f"Slice {row['shard']} of run {run_id} is being run by process "
                        f"{row['owner'].replace('@', ' on ')}, and it overlaps --shard {shard}: run another "
                        "slice with the same N, or wait for that one to end.")
            values = {"owner": me, "started_at": now, "heartbeat_at": now, "finished_at": None}
            if conn.execute(update(d).where(d.c.run_id == run_id, d.c.shard == shard).values(**values)).rowcount == 0:
                conn.execute(insert(d).values(run_id=run_id, shard=shard, **values))
            conn.execute(update(r).where(r.c.id == run_id).values(
                status="running", finished_at=None, owner=SHARED, heartbeat_at=now))
        self._heartbeat.hold(run_id)

    def leave_run(self, run_id: str, shard: str) -> bool:
        """This driver's slice is done (or stopped). True when no other driver is still at work: this one has
        taken the run over and should finish it; False when another will."""
        r, d = schema.runs, schema.run_drivers
        me = this_owner()
        self._heartbeat.release(run_id)
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.run_id == run_id, d.c.shard == shard, d.c.owner == me)
                         .values(finished_at=_now()))
        with self.engine.begin() as conn:
            rows = conn.execute(select(d).where(d.c.run_id == run_id, d.c.finished_at.is_(None))).mappings().all()
            if any(_alive(row) for row in rows):
                return False
            took = conn.execute(update(r).where(r.c.id == run_id, r.c.owner == SHARED)
                                .values(owner=me, heartbeat_at=_now()))
        if took.rowcount == 1:
            self._heartbeat.hold(run_id)
        return took.rowcount == 1

    def drivers(self, run_id: str) -> list[dict[str, Any]]:
        """A run's drivers: shard, owner, started, last heartbeat, finished, and whether each is alive."""
        d = schema.run_drivers
        with self.engine.connect() as conn:
            rows = conn.execute(select(d).where(d.c.run_id == run_id).order_by(d.c.shard)).mappings().all()
        return [{**dict(row), "alive": row["finished_at"] is None and _alive(row)} for row in rows]

    def _beat_drivers(self, conn: Any, run_ids: list[str]) -> None:
        d = schema.run_drivers
        conn.execute(update(d).where(d.c.run_id.in_(run_ids), d.c.owner == this_owner(), d.c.finished_at.is_(None))
                     .values(heartbeat_at=_now()))
