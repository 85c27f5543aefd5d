"""``tryouts providers``: what Tryouts can talk to, and whether each is ready here."""

from __future__ import annotations

import typer

from . import app


def readiness(info) -> tuple[bool, str]:
    """(ready, why) for a provider: its extra installed and, for key-only APIs, its key set."""
    import os

    from ..providers import missing_requirements

    missing = missing_requirements(info)
    if missing:
        return False, f"pip install 'tryouts[{info.extra}]' (missing {', '.join(missing)})"
    keys = [v for v in info.env if v.endswith("_API_KEY")]
    if info.name == "openai-compat":
        return True, "give the server's URL: openai-compat:URL#MODEL"
    from ..keys import get_key

    if info.needs_key and keys and not any(get_key(k) for k in keys):
        return False, f"set {' or '.join(keys)}"
    if info.server:
        url = (os.environ.get(info.server_env) if info.server_env else None) or info.server
        if not url.startswith(("http://", "https://")):
            url = "http://" + url  # OLLAMA_HOST may be host:port
        if not _listening(url, default_port=_port(info.server)):
            return False, f"nothing listening at {url}: start the server (or set {info.server_env})"
        return True, f"server at {url}"
    return True, "ready"


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(url).port


def _listening(url: str, default_port: int | None = None, timeout: float = 0.3) -> bool:
    """Whether a TCP connection to the URL's host and port opens (no request is sent)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or default_port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@app.command(rich_help_panel="Setup")
def providers(fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json.")) -> int:
    """List providers, the environment variables they read, and whether each is ready here."""
    import json

    from rich.table import Table

    from ..errors import UsageError
    from ..providers import all_providers
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    rows = []
    for info in all_providers():
        ready, why = readiness(info)
        rows.append({"name": info.name, "description": info.description, "example": info.example,
                     "local": info.local, "env": list(info.env), "extra": info.extra, "ready": ready, "status": why})
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(header_style="bold")
    for name in ("Provider", "What", "Example", "Reads", "Ready"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["description"], r["example"], "\n".join(r["env"]),
                      ("[green]✓[/] " if r["ready"] else "[red]✗[/] ") + r["status"])
    make_console().print(table)
    return 0
