"""The dashboard: a FastAPI app serving server-rendered pages, a JSON API and live comparisons.

``tryouts ui`` runs it on 127.0.0.1 (see :mod:`tryouts.web.security` for the host, token and CSRF rules, and
:mod:`tryouts.web.policy` for what a request may choose: options, model references, paths, suite files).
The pages (``pages.py``, ``templates/``, ``static/``) read the same store as the CLI; every figure on a page
comes from the JSON API under ``/api/`` (``api.py``), documented at ``/docs`` and ``/openapi.json``. Plotly's
JavaScript is served from the installed ``plotly`` package, so the dashboard works offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["TOKEN_ENV", "create_app", "is_loopback", "new_token"]

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def plotly_js() -> Path | None:
    """The plotly.min.js bundled in the installed ``plotly`` package, or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(db: str | Path, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
               allow_options: str | Iterable[str] | None = None, allow_local_paths: bool = False,
               suite_dir: str | Path | None = None) -> Any:
    """The dashboard app over the results database ``db``.

    Args:
        db: the store (a path or database URL).
        host, port: where it is served (the Host check, the random browser name ``app.state.browser_host``
            and the token cookie's name depend on them).
        token: the access token every request needs; required when ``host`` is not a loopback address. On
            loopback, None means ``$TRYOUTS_UI_TOKEN`` or a random one (``app.state.token``).
        allow_options: options the web may send beyond the safe ones (names, or ``all``); ``base_url`` also
            allows model references with a URL.
        allow_local_paths: whether model references and names may be local paths.
        suite_dir: the folder suite files are read from (default: the current folder).
    """
    import os

    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from .._version import __version__
    from ..errors import TryoutsError, UsageError
    from ..store import Store
    from .api import router
    from .live import LiveRuns
    from .policy import Refused, WebPolicy, parse_allow_options
    from .review_api import router as review_router
    from .security import TOKEN_ENV, Guard, browser_host, is_loopback, new_token

    if token is None and not is_loopback(host):
        raise UsageError(f"Serving on {host} (not this machine only) needs an access token: pass --token, or let "
                         "'tryouts ui' generate one.")
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or new_token())
    if len(token) < 8:
        raise UsageError("The access token must be at least 8 characters: pass a longer one, or let "
                         "'tryouts ui' generate one.")
    root = Path(suite_dir).expanduser() if suite_dir is not None else Path.cwd()
    if not root.is_dir():
        raise UsageError(f"The suite folder {root} does not exist: give an existing folder to --suite-dir.")
    app = FastAPI(title="Tryouts dashboard", version=__version__, docs_url=None, redoc_url=None,
                  description="The JSON API behind the Tryouts dashboard. Results are the store's flat result "
                  "objects (docs/json.md). State-changing requests need the X-Tryouts-CSRF header (GET /api/csrf).")
    app.state.store = Store(db)
    app.state.token = token
    app.state.browser_host = browser_host(host)  # the random name the browser keeps its cookie on (security.py)
    app.state.csrf = new_token()
    app.state.policy = WebPolicy(allow_options=parse_allow_options(allow_options),
                                 allow_local_paths=allow_local_paths, suite_dir=root.resolve())
    app.state.pair_secret = new_token()
    app.state.live = LiveRuns(app.state.store)
    app.state.suite_logs = {}
    app.include_router(router)
    app.include_router(review_router)  # ratings, tags, delete, per-model actions (review_api.py)

    @app.exception_handler(TryoutsError)
    async def _tryouts_error(_request, exc: TryoutsError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=400)

    @app.exception_handler(Refused)
    async def _refused(_request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    plotly = plotly_js()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def _plotly() -> Any:
        if plotly is None:
            return JSONResponse({"detail": "plotly is not installed: pip install 'tryouts[web]'"}, status_code=404)
        return FileResponse(plotly, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    try:
        from .pages import router as pages
    except ImportError:  # pages not installed: the API alone
        pages = None
    if pages is not None:
        from .load_pages import router as load_pages

        app.include_router(pages)
        app.include_router(load_pages)
    from .docs import router as docs

    app.include_router(docs)
    from .unreadable import MalformedRows

    app.add_middleware(MalformedRows)  # inside the Guard: an error while answering is a clear 500 (unreadable.py)
    app.add_middleware(Guard, host=host, port=port, token=token, csrf=app.state.csrf,
                       browser_name=app.state.browser_host)
    return app


def __getattr__(name: str) -> Any:  # what ``tryouts ui`` needs of the token, without importing starlette early
    if name in ("TOKEN_ENV", "is_loopback", "new_token"):
        from . import security

        return getattr(security, name)
    raise AttributeError(name)
