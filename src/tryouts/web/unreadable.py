"""What the dashboard does with a row of the results database it cannot read.

A shared ledger holds whatever anyone with write access put there: a run whose ``meta`` is not JSON, a
``models`` that is a mapping, a kind no version of Tryouts writes, a cost that is not a number, a text stored as
bytes. The store checks what it can; the dashboard adds two guards of its own, one per kind of answer:

* **Run lists** (``/runs``, ``/api/runs``, the pickers of the diff and load pages) read through
  :func:`readable_runs`: each run is checked against the run record (:class:`tryouts.records.RunRecord`: id,
  kind, status, models, request and meta of their types, labels a list of text). A run that fails is left out
  of the list and reported (a line on ``/runs``, the ``X-Tryouts-Unreadable-Runs`` header of ``/api/runs``),
  and the other runs are listed as usual. When the store cannot decode the list at all (one row fails the whole
  query), the runs are read one by one, so one bad run costs only itself.
* **Every other request** passes :class:`MalformedRows`, an ASGI middleware: an error raised while answering
  (a value a page or figure cannot use) becomes a 500 that names the run asked for and the kind of problem
  ("run X could not be read: a row in the results database is malformed (a value of the wrong type); the
  ledger may have been edited"), as the error page or ``{"detail": ...}`` under ``/api/``, and one warning
  line in the log instead of a traceback. The stored value itself is never echoed: neither the answer nor the
  log quotes the exception's text, only its type and where it was raised.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from typing import Any

log = logging.getLogger("tryouts.web")

#: the header of ``GET /api/runs`` counting the runs left out because they could not be read
UNREADABLE_HEADER = "X-Tryouts-Unreadable-Runs"

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


def _where(exc: BaseException) -> str:
    """``file.py:line`` of the innermost frame of Tryouts' own code that raised ``exc`` (for the log)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "tryouts" in f.filename.replace("\\", "/")]
    if not frames:
        return "?"
    f = frames[-1]
    return f"{f.filename.replace(chr(92), '/').rsplit('/tryouts/', 1)[-1]}:{f.lineno}"


def shown_ref(ref: Any) -> str:
    """A run reference for a message: as given when it looks like one, else a neutral phrase."""
    return str(ref) if isinstance(ref, str) and _SHOWN_REF.fullmatch(ref) else "(an id that cannot be shown)"


def unreadable_message(refs: list[str], exc: BaseException) -> str:
    """The message of an answer that failed on a malformed row (see the module docstring)."""
    what = describe(exc)
    if refs:
        runs = " or ".join(f"run {shown_ref(r)}" for r in refs[:4])
        return (f"{runs[0].upper()}{runs[1:]} could not be read: a row in the results database is malformed "
                f"({what}); the ledger may have been edited. Other runs are not affected.")
    return (f"This request could not be answered: a row in the results database may be malformed ({what}); "
            "the ledger may have been edited. If it was not, this is a bug in Tryouts: please report it.")


# ---- run lists ------------------------------------------------------------------------------------


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
        log.warning("the run list could not be read at once (%s at %s): reading it run by run", describe(exc),
                    _where(exc))
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


def _counts(conn: Any) -> dict[Any, tuple[int, int]]:
    """Results and failures per run (a load benchmark's measured requests and those not completed), as
    :meth:`Store.list_runs` counts them; empty when they cannot be counted."""
    from sqlalchemy import Integer, func, select

    from ..store import schema

    res, lr = schema.results, schema.load_requests
    out: dict[Any, tuple[int, int]] = {}
    try:
        for run_id, n, failed in conn.execute(select(res.c.run_id, func.count(), func.sum(func.cast(~res.c.ok, Integer)))
                                              .group_by(res.c.run_id)):
            out[run_id] = (int(n or 0), int(failed or 0))
        for run_id, n, bad in conn.execute(select(lr.c.run_id, func.count(), func.sum(func.cast(lr.c.status != "ok",
                                                                                                Integer)))
                                           .where(lr.c.phase == "measured").group_by(lr.c.run_id)):
            before = out.get(run_id, (0, 0))
            out[run_id] = (before[0] + int(n or 0), before[1] + int(bad or 0))
    except Exception as exc:  # counts are a nicety of the list
        log.warning("the run list's counts could not be read (%s)", describe(exc))
        return {}
    return out


def _one_by_one(store: Any, limit: int | None) -> list[dict[str, Any]]:
    """:meth:`Store.list_runs`, one run at a time: a run that cannot be read becomes ``{id, unreadable}``."""
    from sqlalchemy import select

    from ..store import schema
    from ..store.rows import run_dict

    r = schema.runs
    q = select(r.c.id).order_by(r.c.started_at.desc(), r.c.id.desc())
    if limit:
        q = q.limit(limit)
    out: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        ids = list(conn.execute(q).scalars())
        counts = _counts(conn)
        for run_id in ids:
            try:
                run = run_dict(conn.execute(select(r).where(r.c.id == run_id)).mappings().one())
            except Exception as exc:  # this run only
                out.append({"id": run_id, "unreadable": f"a row in the results database is malformed "
                                                        f"({describe(exc)})"})
                continue
            meta = run.get("meta")
            if isinstance(meta, dict) and isinstance(meta.get("suite"), dict):  # as list_runs shows it
                run["meta"] = {**meta, "suite": "stored"}
            n, failed = counts.get(run_id, (0, 0))
            out.append({**run, "n_results": n, "n_failed": failed})
    return out


def run_list(store: Any, *, limit: int = 0, kind: str | None = None, status: str | None = None,
             model: str | None = None, q: str | None = None, tag: str | None = None,
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run history, newest first, filtered (``GET /api/runs``, the runs page), each run with its ``tags``;
    and the runs that could not be read (``{id, problem}``)."""
    from .review_api import search_runs

    rows, unreadable = readable_runs(store, None)
    if kind:
        rows = [r for r in rows if r["kind"] == kind]
    if status:
        rows = [r for r in rows if r["status"] == status]
    if model:
        rows = [r for r in rows if any(model.lower() in m.lower() for m in r["models"])]
    rows = search_runs(store, rows, q=q, tag=tag)
    for r in rows:  # a tag row is as writable as any other: only text is a tag
        r["tags"] = [t for t in r["tags"] if isinstance(t, str)]
    return (rows[:limit] if limit else rows), unreadable


# ---- every other answer ---------------------------------------------------------------------------


def _refs(scope: dict[str, Any]) -> list[str]:
    """The runs a request asked for: the path's ``{run}`` and the ``a``, ``b`` and ``run`` query parameters."""
    from urllib.parse import parse_qsl

    refs = []
    run = (scope.get("path_params") or {}).get("run")
    if isinstance(run, str):
        refs.append(run)
    query = scope.get("query_string", b"").decode("latin-1")
    refs += [v for k, v in parse_qsl(query) if k in ("a", "b", "run") and v]
    return list(dict.fromkeys(refs))


class MalformedRows:
    """ASGI middleware: an error raised while answering becomes a clear 500 (see the module docstring).

    An answer already under way (a stream) cannot be replaced: its error goes on to the server as before."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:  # the point: no unhandled 500
            if started:
                raise
            log.warning("%s %s: answered 500 (%s at %s); a row of the results database may be malformed",
                        scope.get("method", "GET"), ascii(scope.get("path", ""))[1:-1][:200], describe(exc),
                        _where(exc))
            response = _answer(scope, _refs(scope), exc)
            await response(scope, receive, send)


def _answer(scope: dict[str, Any], refs: list[str], exc: BaseException) -> Any:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response

    message = unreadable_message(refs, exc)
    if scope.get("path", "").startswith("/api/"):
        return Response(json.dumps({"detail": message}), status_code=500, media_type="application/json")
    title = "Run could not be read" if refs else "Could not answer"
    try:
        from .pages import error_page

        return error_page(Request(scope), 500, title, message)
    except Exception:  # the page itself failed: plain text says the same
        from html import escape

        return HTMLResponse(f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1>"
                            f"<p>{escape(message)}</p>", status_code=500)
