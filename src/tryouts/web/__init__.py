"""The dashboard: a FastAPI app serving server-rendered pages, a JSON API and live comparisons.

``tryouts ui`` runs it on 127.0.0.1 (see :mod:`tryouts.web.security` for the host, token and CSRF rules).
The pages (``pages.py``, ``templates/``, ``static/``) read the same store as the CLI; every figure on a page
comes from the JSON API under ``/api/`` (``api.py``), documented at ``/docs`` and ``/openapi.json``. Plotly's
JavaScript is served from the installed ``plotly`` package, so the dashboard works offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def create_app(db: str | Path, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> Any:
    """The dashboard app over the results database ``db``.

    Args:
        db: the store (a path or database URL).
        host, port: where it is served (the Host check and the token rule depend on them).
        token: the access token; required when ``host`` is not a loopback address.
    """
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from .. import __version__
    from ..errors import TryoutsError, UsageError
    from ..store import Store
    from .api import router
    from .live import LiveRuns
    from .security import Guard, is_loopback, new_token

    if token is None and not is_loopback(host):
        raise UsageError(f"Serving on {host} (not this machine only) needs an access token: pass --token, or let "
                         "'tryouts ui' generate one.")
    app = FastAPI(title="Tryouts dashboard", version=__version__, docs_url=None, redoc_url=None,
                  description="The JSON API behind the Tryouts dashboard. Results are the store's flat result "
                  "objects (docs/json.md). State-changing requests need the X-Tryouts-CSRF header (GET /api/csrf).")
    app.state.store = Store(db)
    app.state.csrf = new_token()
    app.state.live = LiveRuns(app.state.store)
    app.state.pairs = {}
    app.state.suite_logs = {}
    app.include_router(router)

    @app.exception_handler(TryoutsError)
    async def _tryouts_error(_request, exc: TryoutsError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=400)

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
        app.include_router(pages)
    from .docs import router as docs

    app.include_router(docs)
    app.add_middleware(Guard, host=host, port=port, token=token, csrf=app.state.csrf)
    return app
