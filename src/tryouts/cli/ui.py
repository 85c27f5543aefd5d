"""``tryouts ui``: the dashboard in the browser."""

from __future__ import annotations

import typer

from . import app
from .common import DB_HELP


def _lan_addresses() -> list[str]:
    """This machine's own non-loopback addresses, read locally (nothing is contacted)."""
    import ipaddress
    import socket

    found: list[str] = []
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            continue
        if not ip.is_loopback and not ip.is_link_local and addr not in found:
            found.append(addr)
    return found


@app.command(rich_help_panel="Run")
def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on (default: this machine only). "
                             "Every request needs the access token, on any address."),
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port (0: any free port)."),
    token: str | None = typer.Option(None, "--token", help="The access token (default: $TRYOUTS_UI_TOKEN, or a "
                                     "random one; printed in the address). Other users can see command lines: "
                                     "prefer the environment variable."),
    allow_options: str | None = typer.Option(
        None, "--allow-options", metavar="NAMES",
        help="Provider options the dashboard may send beyond the safe ones, comma-separated (e.g. "
        "base_url,extra_body; 'all' for every option). base_url also allows model references with a URL "
        "(openai-compat:http://host/v1#model). Default: none."),
    allow_local_paths: bool = typer.Option(False, "--allow-local-paths", help="Let the dashboard use local "
                                           "paths as models (hf:/path, llamacpp:./m.gguf) and in the memory "
                                           "calculator and cards."),
    suite_dir: str | None = typer.Option(None, "--suite-dir", help="The folder suite files are run from "
                                         "(default: the current folder)."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open the dashboard in the browser."),
    run: str | None = typer.Option(None, "--run", help="Open this run's page (an id, a prefix, or 'latest')."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Start the dashboard: compare models live, browse runs, charts, diff, catalog, memory, advisor, arena.

    Serves on http://127.0.0.1:8765 by default and opens the browser (--no-browser to not). Every request
    needs the access token in the printed address (a cookie keeps it after the first visit). Options and
    model references that choose where requests go or what code runs are refused unless --allow-options /
    --allow-local-paths allow them (docs/security.md). Stop with Ctrl-C.
    """
    import os
    import signal
    import socket
    import webbrowser

    import uvicorn

    from ..errors import UsageError
    from ..paths import default_db
    from ..web import TOKEN_ENV, create_app, is_loopback, new_token  # the one import of the dashboard

    loopback = is_loopback(host)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or new_token()
    if not token:
        raise UsageError("--token must not be empty: leave it out to get a random one.")
    if port == 0:
        with socket.socket() as s:
            s.bind((host if loopback else "0.0.0.0", 0))
            port = s.getsockname()[1]
    db_path = db or default_db()
    application = create_app(db_path, host=host, port=port, token=token, allow_options=allow_options,
                             allow_local_paths=allow_local_paths, suite_dir=suite_dir)
    path = "/"
    if run:
        path = f"/runs/{application.state.store.resolve_run_id(run)}"
    hosts = [host]
    if host in ("0.0.0.0", "::", ""):
        hosts = _lan_addresses() or ["127.0.0.1"]
    urls = [f"http://{f'[{h}]' if ':' in h else h}:{port}{path}?token={token}" for h in hosts]
    config = uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    # from the first line printed, a SIGTERM asks the server to stop (uvicorn's own handler takes over once it
    # runs): the CLI's handler would raise KeyboardInterrupt, which an event loop starting up may swallow, and
    # the dashboard would then serve on after being told to stop
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    print(f"Tryouts dashboard: {urls[0]}", flush=True)
    for extra in urls[1:]:
        print(f"                   {extra}", flush=True)
    if not loopback:
        print("Anyone who can reach this address needs that token; keep it private. Ctrl-C stops.", flush=True)
    if browser:
        try:
            wildcard = host in ("0.0.0.0", "::", "")
            webbrowser.open(f"http://127.0.0.1:{port}{path}?token={token}" if wildcard else urls[0])
        except Exception:
            pass
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0
