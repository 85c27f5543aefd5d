"""``tryouts providers``: what Tryouts can talk to, and whether each is ready here."""

from __future__ import annotations

import typer

from ..usecases.providers import readiness
from . import app


@app.command(rich_help_panel="Setup")
def providers(fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json.")) -> int:
    """List providers, the environment variables they read, and whether each is ready here."""
    import json

    from rich.table import Table
    from rich.text import Text

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
                      Text.assemble(("✓ ", "green") if r["ready"] else ("✗ ", "red"), r["status"]))
    make_console().print(table)
    return 0
