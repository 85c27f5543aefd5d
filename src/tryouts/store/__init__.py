"""The results store: runs and their results, in SQLite by default or PostgreSQL by URL.

Every result is committed the moment it completes, so a crash loses nothing already measured.
SQLite runs in WAL mode, so a reader (``tryouts runs``, the dashboard) never blocks a run.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, insert, select, update

from .. import __version__
from ..errors import StoreError
from ..types import Result
from . import schema
from .migrations import migrate

#: the verdicts of a pairwise vote: A better, B better, equally good, both bad
VERDICTS = ("a", "b", "tie", "both_bad")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def new_run_id() -> str:
    """A sortable, readable run id: ``YYYYMMDD-HHMMSS-xxxx`` (UTC)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _url(target: str | Path) -> str:
    text = str(target)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class Store:
    """A results database. ``target`` is a file path (SQLite) or an SQLAlchemy URL."""

    def __init__(self, target: str | Path) -> None:
        self.url = _url(target)
        try:
            self.engine: Engine = create_engine(self.url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.begin() as conn:
                migrate(conn)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"Cannot open the results database {target!s} ({exc}). "
                "Check the path or URL, or pass another with --db."
            ) from exc

    def close(self) -> None:
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
                    models=models,
                    request=request,
                    meta=meta or {},
                    tryouts_version=__version__,
                )
            )
        return run_id

    def add_result(self, run_id: str, r: Result) -> int:
        """Commit one result now; return its row id."""
        with self.engine.begin() as conn:
            return int(conn.execute(insert(schema.results).values(**_row(run_id, r))).inserted_primary_key[0])

    def add_results(
        self, run_id: str, results: list[Result], cache_entries: list[tuple[str, str, dict[str, Any]]] = ()
    ) -> None:
        """Commit several results, and the cache entries (key, model, response) they make, in one transaction."""
        c = schema.cache
        with self.engine.begin() as conn:
            if results:
                conn.execute(insert(schema.results), [_row(run_id, r) for r in results])
            for key, model, response in cache_entries:
                conn.execute(c.delete().where(c.c.key == key))
                conn.execute(insert(c).values(key=key, created_at=_now(), model=model, response=response, hits=0))


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
        clean = [{**row, "run_id": run_id, "created_at": row.get("created_at") or now,
                  "cost_total": _dec(row.get("cost_total"))} for row in rows]
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
        """Runs, newest first, each with its counts of results and failures."""
        r, res = schema.runs, schema.results
        counts = (
            select(
                res.c.run_id,
                func.count().label("n_results"),
                func.sum(func.cast(~res.c.ok, schema.Integer)).label("n_failed"),
            )
            .group_by(res.c.run_id)
            .subquery()
        )
        q = (
            select(r, counts.c.n_results, counts.c.n_failed)
            .outerjoin(counts, counts.c.run_id == r.c.id)
            .order_by(r.c.started_at.desc(), r.c.id.desc())
        )
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {**_run_dict(row), "n_results": int(row["n_results"] or 0), "n_failed": int(row["n_failed"] or 0)}
            for row in rows
        ]

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
        return _run_dict(run)

    def results(self, run_id: str, *, columns: list[str] | None = None, offset: int = 0, limit: int | None = None,
                ids: list[int] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Some of a run's results, in ``get_run`` order, and how many there are in all (or of ``ids``).

        ``columns``: only these fields (``id`` always), much cheaper than :meth:`get_run` for a summary of a
        large run; ``offset``/``limit``: a page; ``ids``: only these results.
        """
        res = schema.results
        cols = [res.c.id, *(res.c[c] for c in columns if c != "id")] if columns else [res]
        where = [res.c.run_id == run_id] + ([res.c.id.in_(ids)] if ids is not None else [])
        q = select(*cols).where(*where).order_by(res.c.case_index, res.c.model_index, res.c.repeat_index, res.c.id)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            total = conn.execute(select(func.count()).select_from(res).where(*where)).scalar_one()
        return [flat_result(r) for r in rows], int(total)

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
        return {"run": _run_dict(run), "results": [flat_result(row) for row in rows]}


def _row(run_id: str, r: Result) -> dict[str, Any]:
    """A result as a row of the results table."""
    t, u, c = r.timing, r.usage, r.cost
    return {
        "run_id": run_id,
        "model_index": r.model_index,
        "case_index": r.case_index,
        "repeat_index": r.repeat_index,
        "model": r.model,
        "provider": r.provider,
        "model_name": r.model_name,
        "options": redact(_jsonable(r.options)),
        "ok": r.ok,
        "error": r.error,
        "error_kind": r.error_kind,
        "text": r.text,
        "reasoning_text": r.reasoning_text,
        "finish_reason": r.finish_reason,
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
        "reasoning_tokens": u.reasoning_tokens,
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
    }


def _run_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "status": row["status"],
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
    for name in ("ok", "tokens_estimated", "cached"):
        if name in d:
            d[name] = bool(d[name])
    if "cost_total" in d:
        total = d.pop("cost_total")
        d["cost_usd"] = float(total) if total is not None else None
        d["cost_usd_exact"] = total
    return d


_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "headers")


def redact(options: dict[str, Any] | None) -> dict[str, Any]:
    """Options with anything that may hold a credential replaced by ``***`` (never stored)."""
    return {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) and k != "api_key_env" else v
        for k, v in (options or {}).items()
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
