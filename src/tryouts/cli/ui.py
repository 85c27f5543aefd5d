"""``tryouts ui``: the dashboard in the browser."""

from __future__ import annotations

import typer

from . import app
from .compare import DB_HELP


@app.command(rich_help_panel="Run")
def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on. Anything but this machine "
                             "(127.0.0.1, localhost, ::1) needs an access token."),
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port (0: any free port)."),
    token: str | None = typer.Option(None, "--token", help="The access token for a non-loopback --host "
                                     "(default: a random one, printed)."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open the dashboard in the browser."),
    run: str | None = typer.Option(None, "--run", help="Open this run's page (an id, a prefix, or 'latest')."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Start the dashboard: compare models live, browse runs, charts, diff, catalog, memory, advisor, arena.

    Serves on http://127.0.0.1:8765 by default and opens the browser (--no-browser to not). Binding another
    address requires an access token (generated and printed, or --token), checked on every request. Stop
    with Ctrl-C.
    """
    import socket
    import webbrowser

    import uvicorn

    from ..errors import UsageError
    from ..paths import default_db
    from ..web import create_app
    from ..web.security import is_loopback, new_token

    loopback = is_loopback(host)
    if not loopback and token is None:
        token = new_token()
    if not loopback and not token:
        raise UsageError("--token must not be empty.")
    if port == 0:
        with socket.socket() as s:
            s.bind((host if loopback else "0.0.0.0", 0))
            port = s.getsockname()[1]
    db_path = db or default_db()
    application = create_app(db_path, host=host, port=port, token=token)
    path = "/"
    if run:
        path = f"/runs/{application.state.store.resolve_run_id(run)}"
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{path}" + (f"?token={token}" if token else "")
    print(f"Tryouts dashboard: {url}", flush=True)
    if token and not loopback:
        print("Anyone who can reach this address needs that token; keep it private. Ctrl-C stops.", flush=True)
    if browser:
        try:
            webbrowser.open(url)
        except Exception:
            pass
    config = uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0
