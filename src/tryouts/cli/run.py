"""``tryouts run``: a suite of prompts x cases x models x repeats, with progress, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from ..usecases.suites import cost_budget, execute_suite, plan_suite, start_suite
from . import app
from .common import DB_HELP, open_store
from .views import print_plan, print_summary


@app.command(rich_help_panel="Run")
def run(
    suite_file: Path | None = typer.Argument(None, help="The suite file (YAML); see docs/suites.md."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the cost/time estimate; send nothing."),
    resume: str | None = typer.Option(None, "--resume", help="Run only the cells still missing from run RUN."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the response cache."),
    fail_on_error: bool = typer.Option(False, "--fail-on-error", help="Exit 2 when any cell failed (for CI)."),
    fail_on_assert: bool = typer.Option(False, "--fail-on-assert", help="Exit 4 when any cell failed its assertions "
                                        "(for CI; docs/json.md lists the exit codes)."),
    min_pass_rate: str | None = typer.Option(None, "--min-pass-rate", help="Exit 4 when a model's assertion pass rate "
                                             "is under this share, e.g. 0.9 or 90%."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars (terminals only)."),
    budget: str | None = typer.Option(None, "--budget", help="USD this invocation may spend: cells start only while "
                                      "the spend so far, the cells in flight and the next cell's estimated cost fit "
                                      "(the rest wait for --resume)."),
    client_processes: int | None = typer.Option(
        None, "--client-processes", help="Worker processes that send and read the API streams, so that many "
        "concurrent requests do not queue on one event loop (default: 1 when a server gets 32 or more at once; "
        "0: never)."),
    executor: str = typer.Option("local", "--executor", help="Where the cells run: local (this process) or ray (a "
                                 "Ray cluster; docs/scale.md)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="The Ray cluster to attach to (HOST:PORT, or "
                                           "'auto'); default RAY_ADDRESS, else a Ray started for this run."),
    shard: str | None = typer.Option(None, "--shard", help="Run slice I of N of the cells (0 <= I < N), into a run "
                                     "shared with the other slices' drivers (--run-id, or one made from the suite)."),
    run_name: str | None = typer.Option(None, "--run-id", help="Run into this run id, shared by every driver given "
                                        "it: created by the first, joined by the others; its missing cells run."),
    batch: bool = typer.Option(False, "--batch", help="Send the cells of providers with a batch API (OpenAI, "
                               "Anthropic, OpenRouter) as batch jobs: half price, answers within 24 h, no timings; the others "
                               "stream as usual (docs/batch.md)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json (the run as 'show --format json')."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Run a suite: every prompt and case through every model, repeats times.

    Example: tryouts run examples/support.yaml --dry-run, then tryouts run examples/support.yaml

    Results are committed as they complete; after a crash or Ctrl-C, 'tryouts run --resume RUN' runs only
    the missing cells. Exit code 0 when the run completed (failed cells are recorded and shown, each model's
    first reason printed), 2 when every cell failed or, with --fail-on-error, any did, 4 with --fail-on-assert
    or --min-pass-rate when assertions failed, 1 on bad input (a suite error names file, line and field), 3 when
    --budget stopped it, 130 when interrupted with Ctrl-C (143 with SIGTERM); the run is then marked
    interrupted. A run whose process
    died (kill -9) shows as stale in 'tryouts runs' and resumes the same way; a run that another process is
    running cannot be resumed.

    A sweep too big for one machine: --executor ray runs the cells on a Ray cluster, and --shard I/N runs one
    slice of them per driver (a Slurm array, several machines) into one run; give every driver the same
    --db postgresql+psycopg://... (docs/scale.md).
    """
    import json
    import re

    from ..errors import UsageError
    from ..store.drivers import parse_shard
    from .render import make_console, styled

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    from ..usecases.gates import parse_rate

    try:
        pass_rate = parse_rate(min_pass_rate)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    store = open_store(db)
    console = make_console(stderr=fmt == "json")
    if client_processes is not None and not 0 <= client_processes <= 16:
        raise UsageError("--client-processes must be between 0 and 16.")
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor must be local or ray, not {executor!r}.")
    if (shard or run_name) and resume:
        raise UsageError("--resume runs a whole run's missing cells: give either --resume RUN, or --run-id RUN "
                         "(with --shard I/N for one slice).")
    if run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}", run_name):
        raise UsageError(f"--run-id {run_name!r}: use 1 to 40 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit.")
    try:
        sliced = parse_shard(shard) if shard is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    plan = plan_suite(store, suite_file, resume=resume, no_cache=no_cache, batch=batch)
    plan.shard, plan.shared_id = sliced, run_name
    if executor == "ray" and plan.policy.batch:
        raise UsageError("Batch jobs are sent and polled from this machine, not a Ray cluster: drop --executor ray "
                         "(or --batch / the suite's batch: true).")
    if executor == "ray":
        from ..engine.ray_executor import RayExecutor

        plan.executor = RayExecutor(address=ray_address)
    if client_processes is not None:
        plan.policy.client_processes = client_processes
    if budget is not None:
        from decimal import Decimal, InvalidOperation

        try:
            plan.budget_usd = Decimal(budget)
        except InvalidOperation:
            plan.budget_usd = None
        if plan.budget_usd is None or not plan.budget_usd.is_finite() or plan.budget_usd <= 0:
            raise UsageError(f"--budget {budget!r} is not an amount of USD above 0, e.g. --budget 5.")
        plan.budget = cost_budget(store, plan)  # before the run is recorded: an unpriced model stops here
    suite, cells, labels = plan.suite, plan.cells, plan.labels

    if dry_run:
        from ..config import price_overrides
        from ..engine.plan import estimate

        plans = estimate(cells, store=store, policy=plan.policy, prices=price_overrides())
        if fmt == "json":
            print(json.dumps({"cells": len(cells), "models": [p.as_dict() for p in plans]}, indent=2))
        else:
            print_plan(console, plans, len(cells), suite.repeats, labels)
        return 0

    run_id = start_suite(store, plan).run_id
    console.print(styled("Run [bold]{}[/]: {} of {} cells to run ({} models, {} cases, {} repeats).", run_id,
                         plan.to_run(), len(cells), len(labels), len(suite.case_items()), suite.repeats))

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..engine.events import BatchUpdate, CellRetry, LaneThrottled, ResultStored

    bars = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("[red]{task.fields[failed]} failed[/] [dim]{task.fields[cached]} cached[/]"),
        TimeRemainingColumn(), console=console, disable=not (progress and console.is_terminal),
    )
    tasks = {m: bars.add_task(labels[m], total=plan.to_run(m), failed=0, cached=0) for m in range(len(labels))}
    failed = {m: 0 for m in tasks}
    cached = {m: 0 for m in tasks}

    def on_event(event: Any) -> None:
        if isinstance(event, ResultStored):
            m = event.model_index
            failed[m] += not event.result.ok
            cached[m] += event.result.cached
            bars.update(tasks[m], advance=1, failed=failed[m], cached=cached[m])
        elif isinstance(event, CellRetry):
            bars.console.print(styled("[yellow]retry[/] {} case {}: {}", labels[event.model_index],
                                      event.cell.case_index, event.message))
        elif isinstance(event, BatchUpdate):
            bars.console.print(styled("[cyan]batch[/] {}: {}", labels[event.model_index], event.message))
        elif isinstance(event, LaneThrottled):
            bars.console.print(styled("[yellow]throttled[/] {}: {}", event.lane, event.reason) if event.reason
                               else styled("[green]no longer throttled[/] {}", event.lane))

    def say(msg: str) -> None:  # plain text that may quote an error: never markup
        console.print(Text(msg), highlight=False)

    try:  # Ctrl-C or SIGTERM: generation stops, what is done stays recorded, the run is marked interrupted
        with bars:
            outcome = execute_suite(store, plan, on_event=on_event, say=say)
    except KeyboardInterrupt as exc:
        done = len(store.done_cells(run_id))
        console.print(f"\nInterrupted: {done} of {len(cells)} cells are recorded. "
                      f"Resume with: tryouts run --resume {run_id}", highlight=False)
        return getattr(exc, "exit_code", 130)
    if outcome.status == "running":  # a slice of a shared run whose other drivers are still at work
        return 0
    from ..stats import SUMMARY_FIELDS
    from ..usecases.gates import failures, gate

    if fmt == "json":
        print(json.dumps(store.get_run(run_id), indent=2, default=str))
        per_model = failures(store.iter_results(run_id, SUMMARY_FIELDS), dict(enumerate(labels)))
    else:
        per_model = print_summary(console, store.iter_results(run_id, SUMMARY_FIELDS), labels,
                                  outcome.meta.get("quality"))
        console.print(styled("Stored as run [bold]{}[/] ({} failed cells). Next: tryouts show {} · tryouts export {} "
                             "--format html", run_id, outcome.n_failed, run_id, run_id))
    stop = outcome.meta.get("stopped") or {}
    if stop.get("reason") == "budget":
        left = len(cells) - len(store.done_cells(run_id))
        from .render import SafeConsole

        SafeConsole(stderr=True, markup=False).print(styled(
            "[yellow]Stopped at the budget:[/] ${} spent of ${}; {} cells not run. Resume with: tryouts run --resume "
            "{} --budget USD", stop["spent_usd"], stop["budget_usd"], left, run_id))
        return 3
    code, reasons = gate(per_model, fail_on_error=fail_on_error, fail_on_assert=fail_on_assert,
                         min_pass_rate=pass_rate)
    if reasons:
        from .render import SafeConsole

        err = SafeConsole(stderr=True, markup=False)
        for reason in reasons:
            err.print(styled("[red]Exit {}:[/] {}", code, reason))
    return code
