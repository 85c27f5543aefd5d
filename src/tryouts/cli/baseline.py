"""``tryouts baseline``: name the run a suite's later runs are compared with (``tryouts diff --baseline``)."""

from __future__ import annotations

import typer

from . import app
from .common import DB_HELP, open_store

baseline_app = typer.Typer(help="The run later runs of a suite are compared with: tryouts diff --baseline, "
                           "--fail-on-regression (docs/json.md).", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline", rich_help_panel="Results")


@baseline_app.command("set")
def set_(
    run: str = typer.Argument("latest", help="A run id, a unique prefix of one, or 'latest'."),
    name: str | None = typer.Option(None, "--name", help="File the baseline under this name (default: the run's "
                                    "suite file)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Make RUN the baseline of its suite (or of --name). Example: tryouts baseline set latest"""
    from ..usecases.baseline import set_baseline

    run_id, key = set_baseline(open_store(db), run, name)
    print(f"Run {run_id} is the baseline of {key}. Compare a later run with: tryouts diff --baseline RUN")
    return 0


@baseline_app.command("show")
def show(
    run: str = typer.Argument("latest", help="A run of the suite (the baseline of its suite is shown)."),
    name: str | None = typer.Option(None, "--name", help="The baseline's name, when it was set with --name."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Print the baseline run of RUN's suite (or of --name)."""
    from ..usecases.baseline import find_baseline

    print(find_baseline(open_store(db), run, name))
    return 0
