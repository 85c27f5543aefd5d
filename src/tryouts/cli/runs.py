"""``tryouts runs`` and ``tryouts show``: the run history."""

from __future__ import annotations

import typer

from . import app
from .common import DB_HELP, open_store


def _check_format(fmt: str) -> None:
    from ..errors import UsageError

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")


@app.command(rich_help_panel="Results")
def runs(
    limit: int = typer.Option(50, "--limit", "-n", min=0, help="Show at most this many runs (0 = all)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """List past runs, newest first."""
    import json

    from rich.table import Table

    from ..store.readable import readable_runs
    from .render import data_text, make_console

    _check_format(fmt)
    rows, unreadable = readable_runs(open_store(db), limit or None)
    for bad in unreadable:  # a run a shared database's writer broke costs only itself (store/readable.py)
        make_console(stderr=True).print(
            f"Run {bad['id']} could not be read ({bad['problem']}): left out. The results database may have been "
            "edited.", highlight=False, soft_wrap=True)
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    console = make_console()
    if not rows:
        console.print("No runs yet. Try: tryouts demo" if not unreadable else "No run that can be read.")
        return 0
    table = Table(header_style="bold")
    for name in ("Run", "Started (UTC)", "Kind", "Status", "Models", "Results", "Failed"):
        table.add_column(name, justify="right" if name in ("Results", "Failed") else "left", overflow="fold",
                         no_wrap=name == "Run", min_width=20 if name == "Run" else None)  # a run id is never split
    for r in rows:
        table.add_row(
            *(data_text(x) for x in (r["id"], r["started_at"][:19].replace("T", " "), r["kind"], r["status"],
                                     "\n".join(r["models"]), r["n_results"], r["n_failed"])),
        )
    console.print(table)
    return 0


@app.command(rich_help_panel="Results")
def show(
    run: str = typer.Argument("latest", help="A run id, a unique prefix of one, or 'latest'."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json (see docs/json.md)."),
    outputs: bool = typer.Option(True, "--outputs/--no-outputs", help="Print each model's output."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Print a stored run again: outputs, then timing, tokens and cost per model."""
    import json

    from .render import make_console, print_outputs, print_results

    _check_format(fmt)
    store = open_store(db)
    if store.get_run_row(run)["kind"] == "load":  # a load benchmark: its points (as tryouts load show)
        from ..usecases.load_results import headline, load_benchmark
        from .views import print_load_benchmarks

        bench = load_benchmark(store, run)
        bench["headline"] = headline(bench)
        if fmt == "json":
            print(json.dumps(bench, indent=2, default=str))
        else:
            print_load_benchmarks(make_console(), [bench])
        return 0
    data = store.get_run(run)
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
        return 0
    from rich.text import Text

    from .render import styled

    console = make_console()
    r = data["run"]
    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in r["request"].get("messages", []))
    console.print(styled("[bold]Run {}[/] · {} · {} · started {} UTC", r["id"], r["kind"], r["status"],
                         r["started_at"][:19]))
    console.print(Text(prompt, style="dim"))
    if r.get("stale_reason"):  # marked running, but its process is gone
        resume = f"; resume with: tryouts run --resume {r['id']}" if r["kind"] == "suite" else ""
        console.print(styled("[yellow]Stale:[/] {}{}", r["stale_reason"], resume))
    if r["kind"] == "eval-task" and r["meta"].get("eval_task"):  # the task report; rows via --format json
        from .views import print_report

        print_report(console, r["meta"]["eval_task"])
        return 0
    if outputs and r["kind"] == "suite":  # grouped by case: vars, expected, each model's output and verdict
        from .views import print_cases

        print_cases(console, data["results"], r["meta"].get("labels"))
    elif outputs:
        print_outputs(console, data["results"])
    if r["kind"] == "suite":  # many cells: the summary per model, with quality and paired comparisons
        from .views import print_summary

        print_summary(console, data["results"], r["meta"].get("labels"), r["meta"].get("quality"))
    else:
        from .render import print_scores

        print_results(console, data["results"])
        print_scores(console, data["results"])
    return 0


@app.command(rich_help_panel="Results")
def delete(
    run: str = typer.Argument(..., help="A run id or a unique prefix of one."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking (needed without a terminal)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Delete a stored run with all of it: results, scores, judgments, votes, batch jobs, reviews and tags.

    A run that is running is refused (stop it first; a stale one can be deleted). Example: tryouts delete
    20260101-120000-ab12 --yes
    """
    import sys

    from ..errors import UsageError

    store = open_store(db)
    row = store.get_run_row(run)
    n, _ = store.count_results(row["id"])
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"Deleting run {row['id']} cannot be undone: add --yes to confirm.")
        if not typer.confirm(f"Delete run {row['id']} ({row['kind']}, {n} results)? This cannot be undone"):
            print("Nothing deleted.")
            return 1
    out = store.delete_run(row["id"])
    print(f"Deleted run {out['run_id']} ({out['deleted'].get('results', 0)} results).")
    return 0
