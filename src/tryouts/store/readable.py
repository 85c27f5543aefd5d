"""Reading a run list from a results database that anyone with write access may have edited.

A shared ledger holds whatever was put there: a run whose ``meta`` is not JSON, a ``models`` that is a mapping,
a kind no version of Tryouts writes. :func:`readable_runs` checks each run of :meth:`Store.list_runs` against the
run record (:class:`tryouts.records.RunRecord`: id, kind, status, models, request and meta of their types, labels
a list of text) and returns the runs that can be shown apart from ``{id, problem}`` for each that cannot. When the
list cannot be decoded at all (one row fails the whole query), the runs are read one by one, so one bad run
costs only itself. Both faces list runs through it (``tryouts runs``, the dashboard's lists). A problem is told
in words and the exception's type (:func:`describe`), never with the stored value.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("tryouts.store")

_SHOWN_REF = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A run reference as it may be repeated in a message (anything else is "the run asked for")."""

_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("JSONDecodeError",), "a column that is not valid JSON"),
    (("UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError"), "text that is not valid UTF-8"),
    (("ValidationError", "ResponseValidationError"), "a value outside what the column may hold"),
    (("Overflow", "InvalidOperation", "DivisionByZero", "DivisionUndefined", "OverflowError", "ZeroDivisionError",
      "ArithmeticError", "DecimalException"), "a number out of range"),
    (("TypeError", "UndefinedError"), "a value of the wrong type"),
    (("KeyError", "IndexError", "LookupError", "AttributeError"), "a missing or misplaced field"),
    (("ValueError",), "a value of the wrong form"),
    (("MemoryError", "RecursionError"), "a value too large or too deeply nested"),
)


def describe(exc: BaseException) -> str:
    """The kind of problem ``exc`` says a row has, in words and the exception's type, never its message (which
    may quote the stored value)."""
    names = [c.__name__ for c in type(exc).__mro__]
    for found, words in _KINDS:
        if any(n in found for n in names):
            return f"{words}: {type(exc).__name__}"
    return type(exc).__name__


def shown_ref(ref: Any) -> str:
    """A run reference for a message: as given when it looks like one, else a neutral phrase."""
    return str(ref) if isinstance(ref, str) and _SHOWN_REF.fullmatch(ref) else "(an id that cannot be shown)"


def _problem(row: Any) -> str | None:
    """Why a run of a list cannot be shown (None: it can): the columns that fail the run record."""
    from pydantic import ValidationError

    from ..records import RunRecord

    if not isinstance(row, dict):
        return "not a run"
    if row.get("unreadable"):  # the store's own placeholder for a row it could not read
        why = row["unreadable"]
        return why[:300] if isinstance(why, str) else "the store could not read it"
    try:
        RunRecord.model_validate({k: v for k, v in row.items() if k != "tags"})
    except ValidationError as exc:
        columns = []
        for err in exc.errors(include_input=False, include_url=False)[:4]:
            loc = err.get("loc") or ("?",)
            msg = str(err.get("msg") or "not valid")  # pydantic's own words: what was expected, never the value
            columns.append(f"column {loc[0]}: {msg[:1].lower()}{msg[1:120]}")
        return "; ".join(dict.fromkeys(columns))
    labels = row["meta"].get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        return "column meta: labels is not a list of text"
    return None


def _placeholder(row: Any, why: str) -> dict[str, Any]:
    run_id = row.get("id") if isinstance(row, dict) else None
    return {"id": shown_ref(run_id), "problem": why}


def readable_runs(store: Any, limit: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The runs of :meth:`Store.list_runs` that can be shown, and ``{id, problem}`` for each that cannot."""
    try:
        rows = store.list_runs(limit)
    except Exception as exc:  # one row the store cannot decode fails the whole query
        log.warning("the run list could not be read at once (%s): reading it run by run", describe(exc))
        rows = _one_by_one(store, limit)
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for row in rows:
        why = _problem(row)
        if why is None:
            good.append(row)
        else:
            bad.append(_placeholder(row, why))
    return good, bad


def run_counts(conn: Any) -> dict[Any, dict[str, int]]:
    """``{"n_results", "n_failed"}`` per run: its results and failures (a load benchmark's: its measured requests
    and those not completed); empty when they cannot be counted (counts are a nicety of a list)."""
    from sqlalchemy import Integer, func, select

    from . import schema

    res, lr = schema.results, schema.load_requests
    out: dict[Any, dict[str, int]] = {}
    try:
        rows = [*conn.execute(select(res.c.run_id, func.count(), func.sum(func.cast(~res.c.ok, Integer)))
                              .group_by(res.c.run_id)),
                *conn.execute(select(lr.c.run_id, func.count(), func.sum(func.cast(lr.c.status != "ok", Integer)))
                              .where(lr.c.phase == "measured").group_by(lr.c.run_id))]
        for run_id, n, failed in rows:
            before = out.get(run_id, {"n_results": 0, "n_failed": 0})
            out[run_id] = {"n_results": before["n_results"] + int(n or 0),
                           "n_failed": before["n_failed"] + int(failed or 0)}
    except Exception as exc:
        log.warning("the run list's counts could not be read (%s)", describe(exc))
        return {}
    return out


def listed_query(dialect: str) -> Any:
    """The select of a run list, newest first: every column of ``runs``, with :func:`listed_columns` in place of
    ``meta`` and ``request``; :func:`listed` makes a row of it a run."""
    from sqlalchemy import select

    from . import schema

    r = schema.runs
    plain = [c for c in r.c if c.name not in ("meta", "request")]
    return select(*plain, *listed_columns(dialect)).order_by(r.c.started_at.desc(), r.c.id.desc())


def listed(row: Any) -> dict[str, Any]:
    """A row of :func:`listed_query` as run lists show it: its stored suite (left to ``get_run``) marked
    ``"stored"``; a ``meta`` or ``request`` over :data:`MAX_LISTED` marks the run unreadable."""
    from .rows import run_dict

    run = run_dict(row)
    if row["suite_type"] == "object" and isinstance(run["meta"], dict):
        run["meta"] = {**run["meta"], "suite": "stored"}
    for name in ("meta", "request"):
        if (row[f"{name}_size"] or 0) > MAX_LISTED:
            run["unreadable"] = f"column {name}: over {MAX_LISTED:,} characters"
    return run


def _one_by_one(store: Any, limit: int | None) -> list[dict[str, Any]]:
    """:meth:`Store.list_runs`, one run at a time: a run that cannot be read becomes ``{id, unreadable}``."""
    from sqlalchemy import select

    from . import schema

    r = schema.runs
    q = select(r.c.id).order_by(r.c.started_at.desc(), r.c.id.desc())
    if limit:
        q = q.limit(limit)
    out: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        ids = list(conn.execute(q).scalars())
        counts = run_counts(conn)
        one = listed_query(store.engine.dialect.name)
        for run_id in ids:
            try:
                run = listed(conn.execute(one.where(r.c.id == run_id)).mappings().one())
            except Exception as exc:  # this run only
                out.append({"id": run_id, "unreadable": f"a row in the results database is malformed "
                                                        f"({describe(exc)})"})
                continue
            out.append({**run, **counts.get(run_id, {"n_results": 0, "n_failed": 0})})
    return out


#: the most characters of a run's ``meta`` or ``request`` that a run list reads: a legitimate ``meta`` is its
#: stored suite (at most 4 MB, suite/resolved.py) and a few small fields; over it the run is listed as unreadable
MAX_LISTED = 16_000_000


def listed_columns(dialect: str) -> list[Any]:
    """The columns a run list selects in place of ``meta`` and ``request``, computed by the database so that a
    huge value is never parsed, nor handed to this process: ``meta`` without its stored suite (only ``get_run``
    reads it) and ``suite_type`` (its JSON type, to mark it ``"stored"``), each NULL when the column is over
    :data:`MAX_LISTED` characters, with ``meta_size`` and ``request_size`` to say so. (SQLite still reads a
    huge text once to measure it.) On SQLite a ``meta`` that is not JSON fails the query, and
    :func:`readable_runs` then reads the runs one by one."""
    from sqlalchemy import JSON, Text, case, cast, func, type_coerce

    from . import schema

    r = schema.runs
    meta_size = func.length(cast(r.c.meta, Text))
    request_size = func.length(cast(r.c.request, Text))
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        meta = cast(cast(r.c.meta, JSONB).op("-")("suite"), JSON)
        suite_type = func.jsonb_typeof(cast(r.c.meta, JSONB).op("->")("suite"))
    else:
        meta = type_coerce(func.json_remove(r.c.meta, "$.suite"), JSON)
        suite_type = func.json_type(r.c.meta, "$.suite")
    small = meta_size <= MAX_LISTED  # tested first: a huge value is never parsed
    return [
        type_coerce(case((small, meta), else_=None), JSON).label("meta"),
        case((small, suite_type), else_=None).label("suite_type"), meta_size.label("meta_size"),
        type_coerce(case((request_size <= MAX_LISTED, r.c.request), else_=None), JSON).label("request"),
        request_size.label("request_size"),
    ]
