"""What the dashboard does with a row of the results database it cannot read.

A shared ledger holds whatever anyone with write access put there: a run whose ``meta`` is not JSON, a
``models`` that is a mapping, a kind no version of Tryouts writes, a cost that is not a number, a text stored as
bytes. The store checks what it can; the dashboard adds two guards of its own, one per kind of answer:

* **Run lists** (``/runs``, ``/api/runs``, the pickers of the diff and load pages) read through
  :func:`tryouts.store.readable.readable_runs`, as ``tryouts runs`` does: each run is checked against the run record (:class:`tryouts.records.RunRecord`: id,
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
from typing import Any

from ..errors import raised_at
from ..store.readable import describe, readable_runs, shown_ref

log = logging.getLogger("tryouts.web")

#: the header of ``GET /api/runs`` counting the runs left out because they could not be read
UNREADABLE_HEADER = "X-Tryouts-Unreadable-Runs"

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
                        raised_at(exc))
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
