"""The results store: runs and their results, in SQLite by default or PostgreSQL by URL.

Every result is committed the moment it completes, so a crash loses nothing already measured.
SQLite runs in WAL mode, so a reader (``tryouts runs``, the dashboard) never blocks a run.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, insert, make_url, select, update

from .._version import __version__
from ..errors import StoreError
from ..redact import redact as redact_text
from ..types import Result
from . import schema
from .batches import BatchStore
from .drivers import SHARED, DriverStore
from .liveness import STALE_AFTER_S, Heartbeat, staleness, this_owner
from .load import LoadStore
from .migrations import migrate
from .readable import listed, listed_query, run_counts
from .reviews import ReviewStore
from .rows import _dec, _jsonable, flat_result, result_row, run_dict

if TYPE_CHECKING:
    from ..records import ResultRecord, RunRecord

#: the verdicts of a pairwise vote: A better, B better, equally good, both bad
VERDICTS = ("a", "b", "tie", "both_bad")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def new_run_id() -> str:
    """A sortable, readable run id: ``YYYYMMDD-HHMMSS-xxxx`` (UTC)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _url(target: str | Path) -> str:
    """An SQLAlchemy URL: a path becomes SQLite; ``postgresql://`` (or ``postgres://``) means psycopg 3, the
    driver of the ``postgres`` extra, whichever driver this SQLAlchemy would pick by default."""
    text = str(target)
    for plain in ("postgresql://", "postgres://"):
        if text.startswith(plain):
            return "postgresql+psycopg://" + text[len(plain):]
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _shown(url: str) -> str:
    """``url`` as messages show it: any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://…" if "@" in url else url


def _open_error(url: str, exc: BaseException) -> StoreError:
    """What went wrong opening ``url``, in words that say what to do next (never the password)."""
    shown = _shown(url)
    try:
        u = make_url(url)
    except Exception:
        u = None
    if u is not None and u.get_backend_name() == "postgresql":
        if isinstance(exc, ImportError):  # the driver, or its libpq, is missing
            driver = u.get_driver_name()
            hint = ("install it with pip install 'tryouts[postgres]'" if driver == "psycopg" else
                    f"install {driver}, or use a postgresql:// URL (psycopg 3: pip install 'tryouts[postgres]')")
            return StoreError(f"The results database {shown} needs the PostgreSQL driver {driver}, which is not "
                              f"installed: {hint}.")
        where = f"PostgreSQL at {u.host or 'the local socket'}" + (f":{u.port}" if u.port else "")
        detail = str(getattr(exc, "orig", None) or exc).strip()
        low = detail.lower()
        if "connection refused" in low or "could not connect" in low or "no such file or directory" in low:
            return StoreError(f"Cannot reach {where}: the connection was refused. Start the server, or check the "
                              "host and port in --db (or TRYOUTS_DB).")
        if "could not translate host name" in low or "name or service not known" in low:
            return StoreError(f"Cannot find the host of {where}. Check the host name in --db (or TRYOUTS_DB).")
        if "password" in low and ("authentication failed" in low or "no password supplied" in low):
            return StoreError(f"{where} refused user {u.username!r}: wrong or missing password. Check the password "
                              "(in the URL, PGPASSWORD or ~/.pgpass) or the user name in --db.")
        if "does not exist" in low and "database" in low:
            port = f" -p {u.port}" if u.port else ""
            return StoreError(f"{where} has no database {u.database!r}. Create it (createdb -h {u.host}{port} -U "
                              f"{u.username} {u.database}) or name another in --db.")
        if "timeout" in low or "timed out" in low:
            return StoreError(f"{where} did not answer in time. Check that the host and port in --db are right and "
                              "reachable from this machine.")
        first = next((line for line in detail.splitlines() if line.strip()), type(exc).__name__)
        if u.password:
            first = first.replace(u.password, "***")
        return StoreError(f"Cannot use the results database {shown} ({first}). "
                          "Check the URL in --db, the server and the user's rights.")
    return StoreError(f"Cannot open the results database {shown} ({exc}). Check the path or URL, or pass another "
                      "with --db.")


#: seconds to wait for a PostgreSQL server before saying it cannot be reached (unless the URL says otherwise)
CONNECT_TIMEOUT_S = 10


def _dialect_insert(conn: Any) -> Any:
    """The INSERT of the connection's database, with ON CONFLICT (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class Store(LoadStore, DriverStore, BatchStore, ReviewStore):
    """A results database. ``target`` is a file path (SQLite) or an SQLAlchemy URL."""

    def __init__(self, target: str | Path) -> None:
        self._heartbeat = Heartbeat(self._beat)  # keeps the runs this process runs marked alive
        _STORES.add(self)
        if "://" not in str(target) and Path(target).expanduser().is_dir():
            raise StoreError(f"The results database {target} is a folder: give a file inside it, e.g. --db "
                             f"{Path(target) / 'tryouts.db'}.")
        try:
            real = _url(target)
        except OSError as exc:  # the database's folder cannot be created
            why = f"{exc.filename} is a file" if isinstance(exc, FileExistsError) else f"{exc.strerror}: {exc.filename}"
            raise StoreError(f"Cannot create the folder of the results database {target} ({why}). Pass another "
                             "path with --db.") from None
        self.url = _shown(real)  # for messages: never the password
        shown = self.url

        def _read_only(context: Any) -> None:  # a write to a read-only SQLite file: say so, not the SQL
            if "readonly database" in str(context.original_exception):
                raise StoreError(f"The results database {shown} is read-only: make the file and its folder "
                                 "writable, or pass another with --db.") from None

        try:
            pg = real.startswith("postgresql")
            args = {"connect_timeout": CONNECT_TIMEOUT_S} if pg and "connect_timeout=" not in real else {}
            self.engine: Engine = create_engine(real, connect_args=args, pool_pre_ping=pg)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "handle_error", _read_only)
            with self.engine.begin() as conn:
                migrate(conn)
        except StoreError:
            raise
        except Exception as exc:
            raise _open_error(real, exc) from None

    def close(self) -> None:
        self._heartbeat.stop()
        self.engine.dispose()

    # ---- writing ------------------------------------------------------------------------------

    def create_run(self, kind: str, models: list[str], request: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
        """Record a new run (status ``running``) and return its id."""
        run_id = new_run_id()
        with self.engine.begin() as conn:
            conn.execute(
                insert(schema.runs).values(
                    id=run_id,
                    kind=kind,
                    status="running",
                    started_at=_now(),
                    models=[redact_text(m) for m in models],  # a URL in a ref may carry user:pass
                    request=request,
                    meta=meta or {},
                    tryouts_version=__version__,
                    owner=this_owner(),
                    heartbeat_at=_now(),
                )
            )
        self._heartbeat.hold(run_id)
        return run_id

    def claim_run(self, run_id: str) -> None:
        """Mark a run ``running`` again, owned by this process (resume), unless another process runs it.

        Raises StoreError when its owner is alive (see store/liveness.py): two processes resuming one run
        would run its missing cells twice. Two claims at once: one wins, the other is refused.
        """
        r = schema.runs
        with self.engine.begin() as conn:
            row = conn.execute(select(r).where(r.c.id == run_id)).mappings().one()
            if row["status"] == "running" and staleness(row) is None:
                who = (f"process {row['owner'].replace('@', ' on ')}" if row["owner"] and row["owner"] != SHARED
                       else "its --shard drivers" if row["owner"] else "another process")
                raise StoreError(
                    f"Run {run_id} is being run by {who}: wait for it to end, or stop it (Ctrl-C) and resume "
                    f"again. If that process is gone, the run shows as stale within {STALE_AFTER_S:.0f} s.")
            same = [r.c.id == run_id, r.c.status == row["status"],
                    r.c.owner.is_(None) if row["owner"] is None else r.c.owner == row["owner"],
                    r.c.heartbeat_at.is_(None) if row["heartbeat_at"] is None else r.c.heartbeat_at == row["heartbeat_at"]]
            done = conn.execute(update(r).where(*same).values(
                status="running", finished_at=None, owner=this_owner(), heartbeat_at=_now()))
            if done.rowcount != 1:
                raise StoreError(f"Run {run_id} was just resumed by another process; let that one finish.")
        self._heartbeat.hold(run_id)

    def _beat(self, run_ids: list[str]) -> None:
        r = schema.runs
        with self.engine.begin() as conn:
            conn.execute(update(r).where(r.c.id.in_(run_ids), r.c.owner.in_([this_owner(), SHARED]),
                                         r.c.status == "running").values(heartbeat_at=_now()))
            self._beat_drivers(conn, run_ids)

    def held_runs(self) -> list[str]:
        """The runs this store created or claimed and has not finished (to mark them when interrupted)."""
        return self._heartbeat.held()

    def add_result(self, run_id: str, r: Result) -> int:
        """Commit one result now; return its row id."""
        with self.engine.begin() as conn:
            row = self._text_safe(result_row(run_id, r))
            return int(conn.execute(insert(schema.results).values(**row)).inserted_primary_key[0])

    def add_results(
        self, run_id: str, results: list[Result], cache_entries: list[tuple[str, str, dict[str, Any]]] = ()
    ) -> None:
        """Commit several results, and the cache entries (key, model, response) they make, in one transaction.

        Idempotent per cell: a result whose cell (model, case, repeat), or its stable cell key, already has a
        row in the run is left out, and the row already there stays (an executor may deliver a result twice, or rerun a lost cell).
        """
        c = schema.cache
        with self.engine.begin() as conn:
            if results:
                res = schema.results
                # no conflict target: a row is left out whether its indices or its cell key are already there
                conn.execute(_dialect_insert(conn)(res).on_conflict_do_nothing(),
                             [self._text_safe(result_row(run_id, r)) for r in results])
            for key, model, response in cache_entries:
                # one statement, so two writers putting the same key at once (a team's shared PostgreSQL
                # store) both succeed instead of one failing on the primary key and losing its results
                values = {"key": key, "created_at": _now(), "model": model, "response": response, "hits": 0}
                upsert = _dialect_insert(conn)(c).values(**values)
                conn.execute(upsert.on_conflict_do_update(
                    index_elements=[c.c.key], set_={k: upsert.excluded[k] for k in values if k != "key"}))

    def _text_safe(self, row: dict[str, Any]) -> dict[str, Any]:
        """PostgreSQL's text cannot hold NUL characters (SQLite's can, and a model may emit one): there they
        become U+FFFD, so the row is stored rather than refused. JSON columns keep them (escaped)."""
        if self.engine.dialect.name != "postgresql":
            return row
        return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in row.items()}


    def done_cells(self, run_id: str) -> set[tuple[int, int, int]]:
        """(model_index, case_index, repeat_index) of every result recorded for a run."""
        res = schema.results
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(res.c.model_index, res.c.case_index, res.c.repeat_index).where(res.c.run_id == run_id)
            ).all()
        return {tuple(r) for r in rows}

    def set_run_status(self, run_id: str, status: str) -> None:
        """Change a run's status and clear its end time (a resumed run is running again)."""
        with self.engine.begin() as conn:
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(status=status, finished_at=None))

    def cache_get(self, key: str) -> dict[str, Any] | None:
        """A cached response for ``key`` (and count the hit), or None."""
        c = schema.cache
        with self.engine.begin() as conn:
            row = conn.execute(select(c.c.response).where(c.c.key == key)).first()
            if row is None:
                return None
            conn.execute(update(c).where(c.c.key == key).values(hits=c.c.hits + 1))
        return row[0]

    def cache_put(self, key: str, model: str, response: dict[str, Any]) -> None:
        """Remember a fresh response under ``key`` (replacing an older one)."""
        self.add_results("", [], [(key, model, response)])

    def model_history(self, model: str, limit: int = 200) -> list[dict[str, Any]]:
        """Recent fresh, successful results of a model: e2e_ms, output_tokens, input_tokens, cost_total."""
        res = schema.results
        q = (
            select(res.c.e2e_ms, res.c.output_tokens, res.c.input_tokens, res.c.cost_total)
            .where(res.c.model == model, res.c.ok.is_(True), res.c.cached.is_(False))
            .order_by(res.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def model_figures(self, model: str, limit: int = 500) -> dict[str, Any] | None:
        """What this user measured for a model reference: TTFT p50 over fresh successful results, and the mean
        quality (judge score normalized to 0–1, else assertion pass) over scored ones; None if never run."""
        res = schema.results
        q = (
            select(res.c.ttft_ms, res.c.scores, res.c.ok, res.c.cached)
            .where(res.c.model == model)
            .order_by(res.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        if not rows:
            return None
        from ..stats import percentile

        ttft = [r["ttft_ms"] for r in rows if r["ok"] and not r["cached"] and r["ttft_ms"] is not None]
        quality = []
        for r in rows:
            s = r["scores"] or {}
            if (s.get("judge") or {}).get("normalized") is not None:
                quality.append(float(s["judge"]["normalized"]))
            elif s.get("assert"):
                quality.append(1.0 if s["assert"].get("passed") else 0.0)
        return {"n": len(rows), "ttft_p50_ms": percentile(ttft, 50), "quality": sum(quality) / len(quality) if quality
                else None, "n_scored": len(quality)}

    def finish_run(self, run_id: str, status: str = "done") -> None:
        """Mark a run finished (``done``, ``failed`` or ``interrupted``)."""
        self._heartbeat.release(run_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.runs).where(schema.runs.c.id == run_id).values(status=status, finished_at=_now())
            )

    def update_scores(self, scores: dict[int, dict[str, Any]]) -> None:
        """Replace the ``scores`` of results by id (scoring done after the run: embedding, custom, judge)."""
        res = schema.results
        with self.engine.begin() as conn:
            for result_id, value in scores.items():
                conn.execute(update(res).where(res.c.id == result_id).values(scores=_jsonable(value)))

    def update_run_meta(self, run_id: str, patch: dict[str, Any]) -> None:
        """Merge ``patch`` into a run's ``meta`` (e.g. its quality summary)."""
        r = schema.runs
        with self.engine.begin() as conn:
            meta = conn.execute(select(r.c.meta).where(r.c.id == run_id)).scalar_one()
            conn.execute(update(r).where(r.c.id == run_id).values(meta={**(meta or {}), **_jsonable(patch)}))

    def add_judgments(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Record judge calls (see ``schema.judgments``); ``cost_total`` may be a Decimal."""
        if not rows:
            return
        now = _now()
        clean = [self._text_safe({**row, "run_id": run_id, "created_at": row.get("created_at") or now,
                                  "cost_total": _dec(row.get("cost_total"))}) for row in rows]
        with self.engine.begin() as conn:
            conn.execute(insert(schema.judgments), clean)

    def judgments(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """A run's judge calls, oldest first."""
        j = schema.judgments
        q = select(j).where(j.c.run_id == run_id).order_by(j.c.id)
        if kind is not None:
            q = q.where(j.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def add_vote(self, run_id: str, *, case_index: int, repeat_index: int, result_a: int, result_b: int,
                 model_a: str, model_b: str, verdict: str, source: str = "human") -> int:
        """Record one pairwise vote (``verdict``: a, b, tie or both_bad) and return its id."""
        if verdict not in VERDICTS:
            raise StoreError(f"A vote is one of {', '.join(VERDICTS)}, not {verdict!r}.")
        with self.engine.begin() as conn:
            return int(conn.execute(insert(schema.votes).values(
                run_id=run_id, case_index=case_index, repeat_index=repeat_index, result_a=result_a,
                result_b=result_b, model_a=model_a, model_b=model_b, verdict=verdict, source=source,
                created_at=_now(),
            )).inserted_primary_key[0])

    def votes(self, run_id: str, source: str | None = None) -> list[dict[str, Any]]:
        """A run's votes, oldest first; ``source`` "human", a judge's "judge:REF", or "judge" for every judge."""
        v = schema.votes
        q = select(v).where(v.c.run_id == run_id).order_by(v.c.id)
        if source == "judge":
            q = q.where(v.c.source.like("judge:%"))
        elif source is not None:
            q = q.where(v.c.source == source)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ---- reading ------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = 50) -> list[dict[str, Any]]:
        """Runs, newest first, each with its counts of results and failures (a load benchmark's: its measured
        requests, and those that did not complete); store/readable.py says what a list reads of each."""
        q = listed_query(self.engine.dialect.name)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            counts = run_counts(conn)
        return [{**listed(row), **counts.get(row["id"], {"n_results": 0, "n_failed": 0})} for row in rows]

    def resolve_run_id(self, ref: str) -> str:
        """A full run id from an id, a unique prefix of one, or ``latest``."""
        r = schema.runs
        with self.engine.connect() as conn:
            if ref in ("latest", "last"):
                found = conn.execute(select(r.c.id).order_by(r.c.started_at.desc(), r.c.id.desc()).limit(1)).scalars().all()
            else:
                found = conn.execute(select(r.c.id).where(r.c.id.startswith(ref, autoescape=True)).limit(2)).scalars().all()
        if not found:
            raise StoreError(f"No run {ref!r} in {self.url}. List runs with 'tryouts runs'.")
        if len(found) > 1:
            raise StoreError(f"{ref!r} matches several runs; give more of the id ('tryouts runs' lists them).")
        return found[0]

    def get_run_row(self, ref: str) -> dict[str, Any]:
        """One run without its results."""
        run_id = self.resolve_run_id(ref)
        with self.engine.connect() as conn:
            run = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).mappings().one()
        return run_dict(run)

    def results(self, run_id: str, *, columns: list[str] | None = None, offset: int = 0, limit: int | None = None,
                ids: list[int] | None = None, cell: tuple[int, int, int] | None = None,
                ) -> tuple[list[dict[str, Any]], int]:
        """Some of a run's results, in ``get_run`` order, and how many there are in all (or of ``ids``).

        ``columns``: only these fields (``id`` always), much cheaper than :meth:`get_run` for a summary of a
        large run; ``offset``/``limit``: a page; ``ids``: only these results; ``cell``: the result of one
        (model_index, case_index, repeat_index), as stored (redacted).
        """
        res = schema.results
        cols = [res.c.id, *(res.c[c] for c in columns if c != "id")] if columns else [res]
        where = [res.c.run_id == run_id] + ([res.c.id.in_(ids)] if ids is not None else [])
        if cell is not None:
            where += [res.c.model_index == cell[0], res.c.case_index == cell[1], res.c.repeat_index == cell[2]]
        q = select(*cols).where(*where).order_by(res.c.case_index, res.c.model_index, res.c.repeat_index, res.c.id)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        # the page and its total from one snapshot while a run is writing (PostgreSQL's default, READ
        # COMMITTED, would let a row committed between the two queries into the total only)
        snapshot = {"isolation_level": "REPEATABLE READ"} if self.engine.dialect.name == "postgresql" else {}
        with self.engine.connect().execution_options(**snapshot) as conn:
            rows = conn.execute(q).mappings().all()
            total = conn.execute(select(func.count()).select_from(res).where(*where)).scalar_one()
        return [flat_result(r) for r in rows], int(total)

    def count_results(self, run_id: str) -> tuple[int, int]:
        """(results, failed results) of a run, counted by the database."""
        res = schema.results
        with self.engine.connect() as conn:
            n, failed = conn.execute(select(func.count(), func.count().filter(res.c.ok.is_(False)))
                                     .where(res.c.run_id == run_id)).one()
        return int(n), int(failed or 0)

    def iter_results(self, run_id: str, columns: list[str]) -> Iterator[dict[str, Any]]:
        """Every result of a run, ``columns`` only, streamed from the database in pages (a summary of a
        1,000,000-cell run holds one page of rows at a time, not the run)."""
        res = schema.results
        q = select(res.c.id, *(res.c[c] for c in columns if c != "id")).where(res.c.run_id == run_id).order_by(res.c.id)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(q).mappings():
                yield flat_result(row)

    def records(self, ref: str, *, offset: int = 0, limit: int | None = None, ids: list[int] | None = None,
                cell: tuple[int, int, int] | None = None) -> list[ResultRecord]:
        """A run's results as typed records (:class:`tryouts.records.ResultRecord`), in :meth:`get_run` order;
        the arguments as :meth:`results`."""
        from ..records import ResultRecord

        rows, _ = self.results(self.resolve_run_id(ref), offset=offset, limit=limit, ids=ids, cell=cell)
        return [ResultRecord.model_validate(r) for r in rows]

    def run_record(self, ref: str) -> RunRecord:
        """One run (without its results) as a typed record (:class:`tryouts.records.RunRecord`)."""
        from ..records import RunRecord

        return RunRecord.model_validate(self.get_run_row(ref))

    def get_run(self, ref: str) -> dict[str, Any]:
        """One run and its results (flat dicts, see :func:`flat_result`), in case then model order."""
        run_id = self.resolve_run_id(ref)
        res = schema.results
        with self.engine.connect() as conn:
            run = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).mappings().one()
            rows = conn.execute(
                select(schema.results)
                .where(schema.results.c.run_id == run_id)
                .order_by(res.c.case_index, res.c.model_index, res.c.repeat_index, res.c.id)
            ).mappings().all()
        return {"run": run_dict(run), "results": [flat_result(row) for row in rows]}


#: every Store opened in this process (see interrupt_held_runs)
_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


def interrupt_held_runs() -> list[tuple[str, str]]:
    """Mark every run a Store of this process still holds (created or resumed, not finished) as interrupted.

    The CLI calls it when Ctrl-C or SIGTERM ends a command, so no run stays ``running``; (id, kind) of each.
    """
    marked = []
    for store in list(_STORES):
        for run_id in store.held_runs():
            try:
                store.finish_run(run_id, "interrupted")
                marked.append((run_id, store.get_run_row(run_id)["kind"]))
            except Exception:  # the database is gone too: the run shows as stale instead
                continue
    return marked


#: how long a SQLite connection waits for another process's lock (the drivers of a sharded run share a file)
_BUSY_TIMEOUT_S = 10.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Per-connection settings: wait for locks, WAL (readers never block the writer), foreign keys.

    Switching a file to WAL can answer "database is locked" at once, without waiting on the busy timeout,
    while another process is creating or converting the same file (two drivers starting together), so the
    switch is retried until the timeout; a file that is already WAL needs no switch.
    """
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    cur.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()
