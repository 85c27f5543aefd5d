"""``tryouts run``: a suite of prompts x cases x models x repeats, with progress, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from . import app
from .compare import DB_HELP, open_store


def _policy(suite: Any, no_cache: bool):
    from ..engine.run import Policy

    conc = dict(suite.concurrency or {})
    retries, timeouts = suite.retries, suite.timeouts
    return Policy(
        concurrency=conc,
        default_concurrency=int(conc.get("default", 4)),
        max_retries=retries.max,
        backoff_s=retries.backoff_s,
        max_backoff_s=retries.max_backoff_s,
        connect_timeout_s=timeouts.connect_s,
        first_token_timeout_s=timeouts.first_token_s,
        total_timeout_s=timeouts.total_s,
        use_cache=not no_cache,
    )


def _cases(suite: Any) -> dict[int, dict]:
    return {
        item.index: {"prompt_id": item.prompt_id, "case_id": item.case_id, "vars": item.vars, "expected": item.expected,
                     "asserts": item.asserts}
        for item in suite.case_items()
    }


def print_plan(console, plans, n_cells: int, repeats: int, labels: list[str] | None = None) -> None:
    from rich.table import Table

    from .render import fmt_cost, short_label

    table = Table(title=f"Plan: {n_cells} cells (repeats: {repeats})", title_justify="left", header_style="bold")
    for name in ("Model", "Cells", "In tok (est.)", "Out tok (est.)", "Cost USD (est.)", "Time (est.)"):
        table.add_column(name, justify="left" if name == "Model" else "right")
    total = 0
    known = True
    for p in plans:
        bound = p.output_basis.startswith("max_tokens") and p.cost_usd is not None and p.cost_usd > 0
        label = labels[p.model_index] if labels else p.model
        table.add_row(
            Text(short_label(label)), str(p.cells), f"~{p.input_tokens:,}",
            ("≤" if p.output_basis.startswith("max_tokens") else "~") + f"{p.output_tokens:,}",
            ("≤" if bound else "") + fmt_cost(p.cost_usd, p.cost_basis),
            "unknown" if p.seconds is None else f"~{p.seconds:,.0f} s",
        )
        if p.cost_usd is None:
            known = False
        else:
            total += p.cost_usd
    console.print(table)
    console.print(
        f"Estimated cost: {'≥ ' if not known else ''}${total:.4f}"
        + (" (some prices unknown)" if not known else "")
        + ". Input tokens ~ characters / 4; output tokens from this model's past runs, else max_tokens "
        "(an upper bound); time from past runs' median latency, else unknown.",
        style="dim",
    )


def _rate(p: dict | None, digits: int = 2) -> str:
    if not p or p.get("mean") is None:
        return "-"
    return f"{p['mean']:.{digits}f} [{p['low']:.{digits}f}–{p['high']:.{digits}f}] n={p['n']}"


METRIC_NAMES = {"pass": "Pass rate", "judge": "Judge score (0–1)", "embedding": "Embedding sim.",
                "token_f1": "Token F1"}


def metric_name(metric: str) -> str:
    """How a quality metric is called in tables."""
    return METRIC_NAMES.get(metric, metric.replace("custom:", "Scorer "))


def print_summary(console, results: list[dict], labels: list[str] | None = None,
                  quality: dict | None = None) -> None:
    """The summary table (timings, cost, the primary quality metric with its interval), then the quality tables."""
    from rich.table import Table

    from ..scoring.summary import quality_report
    from ..stats import summarize
    from .render import short_label

    def ms(d, key="p50"):
        v = d.get(key) if d else None
        return "-" if v is None else f"{v:,.1f}"

    quality = quality if quality is not None else quality_report(results, labels)
    primary = quality.get("primary")
    by_model = {q["model_index"]: q for q in quality.get("per_model", [])}
    repeats = max((q["pass_at_k"] or {}).get("n", 1) for q in by_model.values()) if by_model else 1
    table = Table(title="Summary", title_justify="left", header_style="bold")
    summaries = summarize(results)
    names = ["Model", "n", "Failed", "Cached", "TTFT p50", "TTFT p90", "tok/s p50", "E2E p50", "Cost USD",
             "per 1k req"] + ([f"{metric_name(primary)} (95% CI)"] if primary else []) + (
             [f"pass@{repeats}", f"pass^{repeats}"] if repeats > 1 else [])
    for name in names:
        table.add_column(name, justify="left" if name == "Model" else "right")
    for s in summaries:
        cost = "unknown" if s["cost_total_usd"] is None else f"${float(s['cost_total_usd']):.4f}"
        if s.get("cost_unknown") and s["cost_total_usd"] is not None:
            cost += f" (+{s['cost_unknown']} unknown)"
        per_k = s.get("cost_per_1k_requests_usd")
        label = labels[s["model_index"]] if labels and s["model_index"] < len(labels) else s["model"]
        q = by_model.get(s["model_index"], {})
        extra = [_rate(q.get("metrics", {}).get(primary))] if primary else []
        if repeats > 1:
            pak = q.get("pass_at_k") or {}
            n = pak.get("n")
            at, hat = (pak.get(k, {}) for k in ("pass@k", "pass^k"))  # stored as JSON: string keys
            if n == repeats and (n in at or str(n) in at):
                extra += [f"{at.get(n, at.get(str(n))):.2f}", f"{hat.get(n, hat.get(str(n))):.2f}"]
            else:
                extra += ["-", "-"]
        table.add_row(
            Text(short_label(label)), str(s["n"]), str(s["failures"]), str(s["cached"]),
            ms(s["ttft_ms"]), ms(s["ttft_ms"], "p90"), ms(s["output_tokens_per_s"]), ms(s["e2e_ms"]), cost,
            "unknown" if per_k is None else f"${float(per_k):.4f}", *extra,
        )
    console.print(table)
    console.print("Timings in ms over fresh, successful results (cached results are never timing samples). "
                  "Quality: mean over cases (repeats averaged first) with a bootstrap 95% interval.", style="dim")
    print_failure_kinds(console, results, labels)
    print_quality(console, quality)


#: failure kinds the summary explains, and what to do about them
_FAILURE_ADVICE = {
    "aborted": "the server ended the stream with no content and no finish reason (it aborted the request: "
               "llama.cpp's server does this when another request arrives); lower that server's concurrency to 1",
    "bad_response": "the server reported an impossible value (a negative or absurd token count); check the server",
    "store": "the row could not be stored as it was; please report it",
}


def print_failure_kinds(console, results: list[dict], labels: list[str] | None = None) -> None:
    """A line per model and failure kind the summary should not hide (aborted streams, impossible values)."""
    from collections import Counter

    from .render import short_label

    counts = Counter((r["model_index"], r.get("error_kind")) for r in results if not r["ok"])
    for (m, kind), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if kind not in _FAILURE_ADVICE:
            continue
        label = labels[m] if labels and m < len(labels) else next(r["model"] for r in results if r["model_index"] == m)
        cells = "cell" if n == 1 else "cells"
        console.print(f"[yellow]{escape(short_label(label))}: {n} {cells} failed ({kind}): {_FAILURE_ADVICE[kind]}.[/]")


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def print_quality(console, quality: dict) -> None:
    """Every quality metric per model, and each model against the first on the same cases."""
    from rich.table import Table

    from .render import short_label

    metrics = quality.get("metrics") or []
    if len(metrics) > 1:
        table = Table(title="Quality (mean [95% CI] over cases)", title_justify="left", header_style="bold")
        table.add_column("Model")
        for m in metrics:
            table.add_column(metric_name(m), justify="right")
        for q in quality["per_model"]:
            table.add_row(short_label(q["label"]), *(_rate(q["metrics"].get(m)) for m in metrics))
        console.print(table)
    paired = quality.get("paired") or []
    if paired:
        table = Table(title="Paired comparison with the first model (same cases)", title_justify="left",
                      header_style="bold")
        for name in ("Metric", "Model", "vs", "Cases", "Difference [95% CI]", "p (test)", "Sign test W/L/T, p",
                     "Verdict"):
            table.add_column(name, justify="left" if name in ("Metric", "Model", "vs", "Verdict") else "right")
        for p in paired:
            st = p["sign_test"]
            interval = "" if p.get("low") is None else f" [{p['low']:+.3f}, {p['high']:+.3f}]"
            test = "exact" if str(p.get("test") or "").startswith("exact") else "bootstrap"
            table.add_row(
                metric_name(p["metric"]), short_label(p["label"]), short_label(p["baseline_label"]), str(p["n"]),
                f"{p['diff']:+.3f}{interval}", f"{_p(p['p_value'])} ({test})",
                f"{st['wins_b']}/{st['wins_a']}/{st['ties']}, {_p(st['p_value'])}", p.get("verdict") or "",
            )
        console.print(table)
        console.print("Difference = model − first model. From 20 cases on: paired bootstrap, 95% interval and p; "
                      "fewer: exact permutation test, p and no interval, and too few cases to tell at 5 or fewer "
                      "(docs/scoring.md).", style="dim")


def create_suite_run(store, suite: Any, suite_file: Path, cells: list) -> str:
    """Record a new suite run (its meta: path, fingerprint, labels...) and return its id."""
    from ..engine.plan import fingerprint

    meta = {"suite_path": str(suite_file.resolve()), "fingerprint": fingerprint(cells), "n_cells": len(cells),
            "labels": suite.model_labels(), "repeats": suite.repeats,
            "description": getattr(suite, "description", None)}
    return store.create_run("suite", [s.ref for s in suite.model_specs()],
                            {"suite": meta["suite_path"], "cases": len(suite.case_items())}, meta)


def finish_suite_run(store, run_id: str, suite: Any, policy: Any, say) -> None:
    """After the cells: the suite's scoring (a failure is reported, the answers stay), the quality summary
    stored in the run's meta, and the final status."""
    from ..errors import TryoutsError
    from ..scoring.summary import quality_report

    data = store.get_run(run_id)
    n_failed = sum(not r["ok"] for r in data["results"])
    if suite.scoring is not None:
        from ..scoring.run_scoring import score_run

        try:
            score_run(store, run_id, suite.scoring, base_dir=suite.base_dir, policy=policy, say=say)
        except TryoutsError as exc:  # the answers are stored: say so, and how to score them later
            say(f"Scoring failed: {exc.message}\nThe {len(data['results'])} results are stored; add the scores "
                f"later with: tryouts score {run_id}")
        data = store.get_run(run_id)
    store.update_run_meta(run_id, {"quality": quality_report(data["results"], suite.model_labels())})
    store.finish_run(run_id, "done" if n_failed == 0 else ("failed" if n_failed == len(data["results"]) else "partial"))


@app.command(rich_help_panel="Run")
def run(
    suite_file: Path | None = typer.Argument(None, help="The suite file (YAML); see docs/suites.md."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the cost/time estimate; send nothing."),
    resume: str | None = typer.Option(None, "--resume", help="Run only the cells still missing from run RUN."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the response cache."),
    fail_on_error: bool = typer.Option(False, "--fail-on-error", help="Exit 2 when any cell failed (for CI)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars (terminals only)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json (the run as 'show --format json')."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Run a suite: every prompt and case through every model, repeats times.

    Example: tryouts run examples/support.yaml --dry-run, then tryouts run examples/support.yaml

    Results are committed as they complete; after a crash or Ctrl-C, 'tryouts run --resume RUN' runs only
    the missing cells. Exit code 0 when the run completed (failed cells are recorded and shown), 2 with
    --fail-on-error when any cell failed, 1 on bad input (a suite error names file, line and field), 130
    when interrupted with Ctrl-C (143 with SIGTERM); the run is then marked interrupted. A run whose process
    died (kill -9) shows as stale in 'tryouts runs' and resumes the same way; a run that another process is
    running cannot be resumed.
    """
    import json

    from ..errors import UsageError
    from ..suite import load_suite
    from .render import make_console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    store = open_store(db)
    console = make_console(stderr=fmt == "json")
    run_id = None
    meta: dict[str, Any] = {}
    if resume:
        from ..engine.plan import fingerprint

        data = store.get_run(resume)
        run_id, meta = data["run"]["id"], data["run"]["meta"]
        if data["run"]["kind"] != "suite":
            raise UsageError(f"Run {run_id} is a {data['run']['kind']} run; only suite runs can be resumed.")
        path = suite_file or Path(meta["suite_path"])
        suite = load_suite(path)
        cells = list(suite.cells())
        if fingerprint(cells) != meta.get("fingerprint"):
            raise UsageError(
                f"{path} no longer describes run {run_id} (its prompts, cases, models or dataset changed). "
                "Resume with the suite as it was, or start a new run."
            )
    else:
        if suite_file is None:
            raise UsageError("Give a suite file (tryouts run suite.yaml) or --resume RUN.")
        suite = load_suite(suite_file)
        cells = list(suite.cells())
    policy = _policy(suite, no_cache)
    labels = suite.model_labels()
    if suite.scoring is not None and suite.scoring.scorers:  # a bad scorer is refused before anything is sent
        from ..scoring.custom import load_scorer

        for ref in suite.scoring.scorers:
            load_scorer(ref, suite.base_dir)
    cases = _cases(suite)

    if dry_run:
        from ..config import price_overrides
        from ..engine.plan import estimate

        plans = estimate(cells, store=store, policy=policy, prices=price_overrides())
        if fmt == "json":
            print(json.dumps({"cells": len(cells), "models": [p.as_dict() for p in plans]}, indent=2))
        else:
            print_plan(console, plans, len(cells), suite.repeats, labels)
        return 0

    from ..config import price_overrides
    from ..engine.plan import fingerprint
    from ..engine.run import run_cells

    if run_id is None:
        run_id = create_suite_run(store, suite, Path(suite_file), cells)
        skip: set = set()
    else:
        store.claim_run(run_id)  # refused while another process runs it
        skip = store.done_cells(run_id)
    console.print(f"Run [bold]{run_id}[/]: {len(cells) - len(skip)} of {len(cells)} cells to run "
                  f"({len(labels)} models, {len(cases)} cases, {suite.repeats} repeats).")

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("[red]{task.fields[failed]} failed[/] [dim]{task.fields[cached]} cached[/]"),
        TimeRemainingColumn(), console=console, disable=not (progress and console.is_terminal),
    )
    totals: dict[int, int] = {}
    for c in cells:
        if (c.model_index, c.case_index, c.repeat_index) not in skip:
            totals[c.model_index] = totals.get(c.model_index, 0) + 1
    tasks = {m: bars.add_task(labels[m], total=totals.get(m, 0), failed=0, cached=0) for m in range(len(labels))}
    failed = {m: 0 for m in tasks}
    cached = {m: 0 for m in tasks}

    def on_event(kind: str, cell: Any, payload: Any) -> None:
        if kind == "result":
            m = cell.model_index
            failed[m] += not payload.ok
            cached[m] += payload.cached
            bars.update(tasks[m], advance=1, failed=failed[m], cached=cached[m])
        elif kind == "retry":
            bars.console.print(f"[yellow]retry[/] {escape(labels[cell.model_index])} case {cell.case_index}: {escape(str(payload))}",
                               highlight=False)

    from ..engine.interrupt import run_interruptible

    try:  # Ctrl-C or SIGTERM: generation stops, what is done stays recorded, the run is marked interrupted
        with bars:
            run_interruptible(run_cells(
                cells, store=store, run_id=run_id, policy=policy, skip=skip, cases=cases,
                prices=price_overrides(), on_event=on_event, allow_cache=suite.repeats == 1,
            ), say=lambda msg: console.print(msg, highlight=False))
        finish_suite_run(store, run_id, suite, policy, say=lambda msg: console.print(msg, highlight=False))
    except KeyboardInterrupt as exc:
        store.finish_run(run_id, "interrupted")
        done = len(store.done_cells(run_id))
        console.print(f"\nInterrupted: {done} of {len(cells)} cells are recorded. "
                      f"Resume with: tryouts run --resume {run_id}", highlight=False)
        return getattr(exc, "exit_code", 130)
    data = store.get_run(run_id)
    n_failed = sum(not r["ok"] for r in data["results"])
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        print_summary(console, data["results"], labels, data["run"]["meta"].get("quality"))
        console.print(f"Stored as run [bold]{run_id}[/] ({n_failed} failed cells). "
                      f"Next: tryouts show {run_id} · tryouts export {run_id} --format html")
    return 2 if fail_on_error and n_failed else 0
