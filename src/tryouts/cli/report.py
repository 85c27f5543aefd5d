"""``tryouts export`` and ``tryouts diff``: a stored run as a file, and two runs compared."""

from __future__ import annotations

import typer

from . import app
from .common import DB_HELP, open_store

RUN_HELP = "A run id, a unique prefix of one, or 'latest'."


@app.command(rich_help_panel="Results")
def export(
    run: str = typer.Argument(..., help=RUN_HELP),
    fmt: str = typer.Option(..., "--format", "-f", help="csv, json, jsonl or html (one self-contained page)."),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write to this file (default: standard output; for html, ./tryouts-RUN.html)."
    ),
    full_paths: bool = typer.Option(False, "--full-paths", help="html: show local paths (model files, the suite, "
                                    "in errors) whole; by default they are cut to their last part, so a shared "
                                    "page does not show your folders."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Export a stored run: csv, json or jsonl for scripts, html to read and share.

    The html page is one self-contained file (no script): the summary, each model's quality
    with 95% intervals, paired comparisons and pass@k, charts, the per-case pass/fail grid with
    each first failing check, and the outputs side by side. A load benchmark (tryouts load)
    exports its points (json, csv: one row per point), its requests (jsonl) or a report with
    its charts (html).

    Example: tryouts export latest --format html
    """
    import sys
    from pathlib import Path

    from ..errors import UsageError
    from ..report import FORMATS, export_run

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    store = open_store(db)
    row = store.get_run_row(run)
    if row["kind"] == "load":  # a load benchmark: its points, requests and charts
        from ..usecases.load_results import export_load

        data = {"run": row}
        text = export_load(store, row["id"], fmt)
    else:
        data = store.get_run(run)
        if fmt != "html":  # each result's human review from the dashboard, or null (docs/json.md)
            from ..report import with_reviews

            data = with_reviews(data, store.reviews(data["run"]["id"]))
        text = export_run(data, fmt, full_paths=full_paths)
    default_name = output is None and fmt == "html"
    if default_name:  # in the current folder, whatever the stored run id holds (a shared ledger may hold anything)
        from ..paths import default_file_name

        output = default_file_name("tryouts-", str(data["run"]["id"]), ".html")
    if output is None or output == "-":
        if sys.stdout.isatty():  # shown on a terminal: its control characters as visible escapes, never run
            from ..report.safe_text import visible_controls

            text = visible_controls(text)
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    path = Path(output).expanduser()
    try:
        if not default_name:  # the folders of a path the user gave; never those of a name made from data
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"Cannot write {path} ({exc.strerror or exc}); pass another path with --output.") from exc
    print(path)
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.1f}"


def _usd(value: str | None, unknown: int = 0) -> str:
    """A cost delta in USD; ``unknown`` pairs (a price unknown on either side) are left out and said so."""
    if value is None:
        return "unknown"
    f = float(value)
    sign = "+" if f > 0 else "-" if f < 0 else "±"
    text = f"{sign}${abs(f):.6f}" if abs(f) < 0.01 else f"{sign}${abs(f):,.4f}"
    if f == 0:
        text = "±0"
    return f"{text} ({unknown} unknown)" if unknown else text


@app.command(rich_help_panel="Results")
def diff(
    run_a: str | None = typer.Argument(None, help="The first run (A): " + RUN_HELP + " With --baseline: the run to "
                                       "compare with its baseline (default latest)."),
    run_b: str | None = typer.Argument(None, help="The second run (B): " + RUN_HELP),
    baseline: bool = typer.Option(False, "--baseline", help="Compare the run with its suite's baseline (tryouts "
                                  "baseline set)."),
    name: str | None = typer.Option(None, "--name", help="With --baseline: the baseline's name, when set with --name."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit 5 when a model's pass rate is "
                                            "lower in B and the paired test supports it (for CI)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table, json, or markdown (a summary for a CI "
                            "job, e.g. >> $GITHUB_STEP_SUMMARY)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show a short diff of each changed output."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Compare two runs result by result: changed outputs, timing and cost deltas (B - A), and for suites with
    assertions the cases that flipped and each model's pass rate with a paired test.

    Results are matched on model, case and repeat. Examples: tryouts diff 20250101-1200 latest -v ·
    tryouts diff --baseline latest --fail-on-regression (exit 5 on a supported regression) ·
    tryouts diff --baseline -f markdown >> "$GITHUB_STEP_SUMMARY"
    """
    import json
    import sys

    from rich.table import Table
    from rich.text import Text

    from ..errors import UsageError
    from ..report import diff_runs
    from .render import make_console, short_label

    if fmt not in ("table", "json", "markdown"):
        raise UsageError(f"--format must be table, json or markdown, not {fmt!r}.")
    store = open_store(db)
    if baseline:
        from ..usecases.baseline import find_baseline

        if run_b is not None:
            raise UsageError("--baseline compares one run with its baseline: give one run (or none: latest).")
        run_b = run_a or "latest"
        run_a = find_baseline(store, run_b, name)
    elif run_a is None or run_b is None:
        raise UsageError("Give two runs (tryouts diff RUN_A RUN_B), or --baseline [RUN].")
    from ..report.regression import regression

    data_a, data_b = store.get_run(run_a), store.get_run(run_b)
    result = diff_runs(data_a, data_b)
    result["regression"] = regression(data_a, data_b)
    code = 5 if fail_on_regression and result["regression"]["regressed"] else 0
    if fmt == "json":
        print(json.dumps(result, indent=2, default=str))
        return code
    if fmt == "markdown":
        from ..report.markdown import diff_markdown

        sys.stdout.write(diff_markdown(result, fail_on_regression=fail_on_regression))
        return code

    console = make_console()
    console.print(Text.assemble(("A ", "bold"), result["run_a"], "  →  ", ("B ", "bold"), result["run_b"]))
    if not result["models"]:
        console.print("No results match between the two runs (same model, case and repeat).")
    else:
        table = Table(header_style="bold")
        table.add_column("Model", overflow="fold", max_width=40)
        for name in ("Changed", "Status changed", "ΔTTFT p50 ms", "ΔE2E p50 ms", "ΔCost USD"):
            table.add_column(name, justify="right")
        for m in result["models"]:
            changed = f"{m['n_changed']}/{m['n_matched']}"
            table.add_row(
                Text(short_label(m["model"])),
                Text(changed, style="yellow" if m["n_changed"] else "green"),
                str(m["n_status_changed"]),
                _ms(m["ttft_ms_delta_p50"]),
                _ms(m["e2e_ms_delta_p50"]),
                _usd(m["cost_usd_delta_total"], m["cost_unknown_pairs"]),
            )
        console.print(table)

    changed = [p for p in result["pairs"] if p["output_changed"] or p["ok_a"] != p["ok_b"]]
    for p in changed:
        status = "" if p["ok_a"] == p["ok_b"] else f" ({'ok' if p['ok_a'] else 'failed'} → {'ok' if p['ok_b'] else 'failed'})"
        line = Text.assemble(
            ("~ ", "yellow"), (short_label(p["model"]), "bold"), f" · case {p['case']} · repeat {p['repeat_index']}",
            (" output changed" if p["output_changed"] else " output unchanged"), status,
        )
        console.print(line)
        if verbose and p["diff"]:
            for ln in p["diff"].splitlines():
                style = "green" if ln.startswith("+") else "red" if ln.startswith("-") else "dim"
                console.print(Text("    " + ln, style=style))
    for side, label in (("only_in_a", "A"), ("only_in_b", "B")):
        only = result[side]
        if only["models"]:
            console.print(Text(f"Only in {label}: models " + ", ".join(only["models"])))
        if only["cases"]:
            console.print(Text(f"Only in {label}: cases " + ", ".join(only["cases"])))
        if only["results"] and not (only["models"] or only["cases"]):
            console.print(Text(f"Only in {label}: {only['results']} result(s) without a partner"))
    _print_regression(console, result["regression"])
    if code:
        console.print(Text(f"Exit 5: regressed: {', '.join(result['regression']['regressed'])} (--fail-on-regression)",
                           style="red"))
    return code


def _print_regression(console, reg: dict) -> None:
    """Pass rates A → B per model with the paired test, the flipped cases, and the warnings."""
    from rich.table import Table
    from rich.text import Text

    from .render import short_label

    rows = [m for m in reg["models"] if m["cases"]]
    if rows:
        table = Table(title="Assertions, B against A", title_justify="left", header_style="bold")
        for col in ("Model", "Cases", "Pass A", "Pass B", "Δ [95% CI]", "p", "Verdict", "Cost A → B USD"):
            table.add_column(col, justify="left" if col in ("Model", "Verdict") else "right", overflow="fold")
        for m in rows:
            c = m["comparison"] or {}
            ci = f" [{c['low']:+.2f}, {c['high']:+.2f}]" if c.get("low") is not None else ""
            table.add_row(Text(short_label(m["model"])), str(m["cases"]), f"{m['pass_rate_a']:.2f}",
                          f"{m['pass_rate_b']:.2f}", f"{c.get('diff', 0):+.2f}{ci}",
                          "-" if c.get("p_value") is None else f"{c['p_value']:.3f}",
                          Text(c.get("verdict") or "-", style="red" if m["regressed"] else ""),
                          f"{m['cost_usd_a'] or '?'} → {m['cost_usd_b'] or '?'}")
        console.print(table)
    for m in rows:
        for kind, cases, style in (("pass → fail", m["flipped_to_fail"], "red"),
                                   ("fail → pass", m["flipped_to_pass"], "green")):
            if cases:
                console.print(Text(f"{short_label(m['model'])}: {kind}: {', '.join(cases)}", style=style))
    for w in reg["warnings"]:
        console.print(Text(f"Warning: {w}", style="yellow"))
