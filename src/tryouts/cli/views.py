"""Rich views of stored runs that several commands print: a suite plan and summary, quality with intervals,
an eval-task report."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rich.text import Text

from ..report.safe_text import visible_controls


def print_plan(console, plans, n_cells: int, repeats: int, labels: list[str] | None = None) -> None:
    """The dry-run table: per model its cells, tokens, cost and time; with a batch column where the provider has
    a batch API (the cost streamed and batched)."""
    from rich.table import Table

    from ..labels import short_label
    from .render import fmt_cost

    batchable = any(p.cost_batch_usd is not None for p in plans)
    table = Table(title=f"Plan: {n_cells} cells (repeats: {repeats})", title_justify="left", header_style="bold")
    names = ["Model", "Cells", "In tok (est.)", "Out tok (est.)", "Cost USD (est.)", "Time (est.)"]
    if batchable:
        names[5:5] = ["Streamed USD", "Batched USD"]
    for name in names:
        table.add_column(name, justify="left" if name == "Model" else "right", overflow="fold")
    total = streamed = batched = Decimal(0)
    known = True
    for p in plans:
        bound = "≤" if p.output_basis.startswith("max_tokens") and p.cost_usd is not None and p.cost_usd > 0 else ""
        label = labels[p.model_index] if labels else p.model
        row = [Text(short_label(label) + (" (batch)" if p.batch else "")), str(p.cells), f"~{p.input_tokens:,}",
               ("≤" if p.output_basis.startswith("max_tokens") else "~") + f"{p.output_tokens:,}",
               bound + fmt_cost(p.cost_usd, p.cost_basis)]
        if batchable:
            row += [bound + fmt_cost(p.cost_streamed_usd, p.cost_basis) if p.cost_streamed_usd is not None else "unknown",
                    (bound + fmt_cost(p.cost_batch_usd, "")) if p.cost_batch_usd is not None else "no batch API"]
        row.append("≤ 24 h (batch)" if p.batch else "unknown" if p.seconds is None else f"~{p.seconds:,.0f} s")
        table.add_row(*row)
        if p.cost_usd is None:
            known = False
        else:
            total += p.cost_usd
            streamed += p.cost_streamed_usd if p.cost_streamed_usd is not None else p.cost_usd
            batched += p.cost_batch_usd if p.cost_batch_usd is not None else (p.cost_streamed_usd or p.cost_usd)
    console.print(table)
    both = (f" (all streamed: ${streamed:.4f}; batched where a provider can: ${batched:.4f})"
            if batchable else "")
    console.print(
        f"Estimated cost: {'≥ ' if not known else ''}${total:.4f}" + both
        + (" (some prices unknown)" if not known else "")
        + ". Input tokens ~ characters / 4; output tokens from this model's past runs, else max_tokens "
        "(an upper bound); time from past runs' median latency, else unknown. Batches: docs/batch.md.",
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


def print_summary(console, results: Iterable[dict], labels: list[str] | None = None,
                  quality: dict | None = None) -> list:
    """The summary table (timings, cost, the primary quality metric with its interval), then the quality tables
    and each model's failures with their first reasons; returns those failures per model (for the CI gates).

    ``results`` is read once (a big run's rows may come as a generator: Store.iter_results)."""
    from collections import Counter

    from rich.table import Table

    from ..labels import short_label
    from ..scoring.summary import quality_report, quality_rows
    from ..stats import Summarizer
    from ..usecases.gates import FailureTally

    acc, failures, refs = Summarizer(), Counter(), {}
    tally = FailureTally({i: x for i, x in enumerate(labels or [])})

    def read(rows: Iterable[dict]) -> Iterable[dict]:
        for r in rows:
            acc.add(r)
            tally.add(r)
            if not r["ok"]:
                failures[(r["model_index"], r.get("error_kind"))] += 1
            refs.setdefault(r["model_index"], r["model"])
            yield r

    scored = quality_rows(read(results))  # one pass: the rows are counted as they stream by

    quality = quality if quality is not None else quality_report(scored, labels)
    primary = quality.get("primary")
    by_model = {q["model_index"]: q for q in quality.get("per_model", [])}
    repeats = max((q["pass_at_k"] or {}).get("n", 1) for q in by_model.values()) if by_model else 1
    table = Table(title="Summary", title_justify="left", header_style="bold")
    summaries = acc.summaries()
    names = ["Model", "n", "Failed", "Cached", "TTFT p50", "TTFT p90", "tok/s p50", "E2E p50", "Cost USD",
             "per 1k req"] + ([f"{metric_name(primary)} (95% CI)"] if primary else []) + (
             [f"pass@{repeats}", f"pass^{repeats}"] if repeats > 1 else [])
    for name in names:
        table.add_column(Text(name), justify="left" if name == "Model" else "right", overflow="fold")
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
        def ms(d, key="p50", s=s):
            v = d.get(key) if d else None
            return ("n/a (batch)" if s.get("batch") else "-") if v is None else f"{v:,.1f}"

        table.add_row(
            Text(short_label(label)), str(s["n"]), str(s["failures"]), str(s["cached"]),
            ms(s["ttft_ms"]), ms(s["ttft_ms"], "p90"), ms(s["output_tokens_per_s"]), ms(s["e2e_ms"]), cost,
            "unknown" if per_k is None else f"${float(per_k):.4f}", *extra,
        )
    console.print(table)
    console.print("Timings in ms over fresh, successful results (cached results are never timing samples). "
                  "Quality: mean over cases (repeats averaged first) with a bootstrap 95% interval.", style="dim")
    if excluded := sum(s.get("timing_excluded", 0) for s in summaries):
        console.print(f"Speed figures leave out {excluded} cell(s) whose timing is not valid for comparison: they ran "
                      "beside other work on a shared node (docs/scale.md). Their answers, costs and scores count.",
                      style="dim")
    print_failure_kinds(console, failures, {m: labels[m] if labels and m < len(labels) else ref
                                            for m, ref in refs.items()})
    print_quality(console, quality)
    per_model = tally.models()
    print_failures(console, per_model)
    return per_model


def print_failures(console, per_model: list) -> None:
    """Each model's failed cells (by kind, with the first reason) and failed assertions (with the first failing
    check), so a log says why without ``tryouts show`` (:class:`~tryouts.usecases.gates.ModelFailures`)."""
    from ..labels import short_label
    from ..usecases.gates import kinds_text
    from .render import styled

    lines = []
    for f in per_model:
        if f.failed:
            lines.append(styled("[red]{}[/]: {} of {} cells failed ({}). First: {}", short_label(f.label), f.failed,
                                f.cells, kinds_text(f.kinds), _clip(f.first_error)))
        if f.checked and f.passed < f.checked:
            lines.append(styled("[yellow]{}[/]: {} of {} cells failed their assertions. First: {}",
                                short_label(f.label), f.checked - f.passed, f.checked, _clip(f.first_check)))
    if lines:
        console.print(Text("Failures", style="bold"))
        for line in lines:
            console.print(line)


def _clip(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: failure kinds the summary explains, and what to do about them
_FAILURE_ADVICE = {
    "aborted": "the server ended the stream with no content and no finish reason (it aborted the request: "
               "llama.cpp's server does this when another request arrives); lower that server's concurrency to 1",
    "bad_response": "the server reported an impossible value (a negative or absurd token count); check the server",
    "store": "the row could not be stored as it was; please report it",
}


def print_failure_kinds(console, counts: dict, labels: dict[int, str]) -> None:
    """A line per model and failure kind the summary should not hide (aborted streams, impossible values):
    ``counts`` by (model index, error kind), ``labels`` by model index."""
    from ..labels import short_label

    for (m, kind), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if kind not in _FAILURE_ADVICE:
            continue
        label = labels.get(m, str(m))
        cells = "cell" if n == 1 else "cells"
        console.print(Text(f"{short_label(label)}: {n} {cells} failed ({kind}): {_FAILURE_ADVICE[kind]}.", style="yellow"))


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def print_quality(console, quality: dict) -> None:
    """Every quality metric per model, and each model against the first on the same cases."""
    from rich.table import Table

    from ..labels import short_label

    metrics = quality.get("metrics") or []
    if len(metrics) > 1:
        table = Table(title="Quality (mean [95% CI] over cases)", title_justify="left", header_style="bold")
        table.add_column("Model", overflow="fold")
        for m in metrics:
            table.add_column(Text(metric_name(m)), justify="right")
        for q in quality["per_model"]:
            table.add_row(Text(short_label(q["label"])), *(_rate(q["metrics"].get(m)) for m in metrics))
        console.print(table)
    paired = quality.get("paired") or []
    if paired:
        table = Table(title="Paired comparison with the first model (same cases)", title_justify="left",
                      header_style="bold")
        for name in ("Metric", "Model", "vs", "Cases", "Difference [95% CI]", "p (test)", "Sign test W/L/T, p",
                     "Verdict"):
            table.add_column(name, justify="left" if name in ("Metric", "Model", "vs", "Verdict") else "right",
                             overflow="fold")
        for p in paired:
            st = p["sign_test"]
            interval = "" if p.get("low") is None else f" [{p['low']:+.3f}, {p['high']:+.3f}]"
            test = "exact" if str(p.get("test") or "").startswith("exact") else "bootstrap"
            table.add_row(
                Text(metric_name(p["metric"])), Text(short_label(p["label"])), Text(short_label(p["baseline_label"])), str(p["n"]),
                f"{p['diff']:+.3f}{interval}", f"{_p(p['p_value'])} ({test})",
                f"{st['wins_b']}/{st['wins_a']}/{st['ties']}, {_p(st['p_value'])}", p.get("verdict") or "",
            )
        console.print(table)
        console.print("Difference = model − first model. From 20 cases on: paired bootstrap, 95% interval and p; "
                      "fewer: exact permutation test, p and no interval, and too few cases to tell at 5 or fewer "
                      "(docs/scoring.md).", style="dim")


def _ci(p: dict[str, Any] | None, digits: int = 3) -> str:
    if not p or p.get("mean") is None:
        return "-"
    if p.get("low") is None:
        return f"{p['mean']:.{digits}f}"
    return f"{p['mean']:.{digits}f} [{p['low']:.{digits}f}–{p['high']:.{digits}f}]"


def _num(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _title(name: str) -> str:
    from ..tasks.scoring import metric_title

    return metric_title(name)


def numbered_label(ref: str, index: int) -> str:
    """``N. name``: the model's position (comparisons name it) and its short label."""
    from ..labels import short_label

    name = short_label(ref)
    if len(name) > 40:  # e.g. a replay script
        name = name[:39] + "…"
    return f"{index + 1}. {name}"


def print_report(console: Any, report: dict[str, Any]) -> None:
    """The task report as tables: metrics per model, then task details, then paired comparisons."""
    from rich.table import Table

    from .render import fmt_cost, styled

    task, models = report["task"], report["models"]

    mode = f" ({report['mode']})" if report.get("mode") else ""
    console.print(styled(
        "[bold]{}{}[/] on {}: {} cases, {} repeat(s), {} model(s). Intervals: 95% bootstrap over cases.",
        task, mode, report["data"], report["n_cases"], report["repeats"], len(models)
    ))
    digits = 1 if task == "translation" else 3
    table = Table(title="Task metrics", title_justify="left", header_style="bold")
    names = list(models[0]["intervals"]) if models else []
    extra: list[tuple[str, Any]] = []
    if task == "ner":
        extra = [
            (h, lambda mm, k=k: _num(mm["metrics"].get(k)))
            for h, k in (("Precision", "precision"), ("Recall", "recall"))
        ]
    for col in (
        "Model",
        "Route",
        "Results",
        "Failed",
        "Invalid",
        *(_title(n) + " (95% CI)" for n in names),
        *(h for h, _ in extra),
        "E2E p50 ms",
        "Cost USD",
    ):
        table.add_column(col, justify="left" if col in ("Model", "Route") else "right", overflow="fold")
    for mm in models:
        cost = fmt_cost(mm["cost_usd"], mm.get("cost_source"))
        table.add_row(
            Text(numbered_label(mm["model"], mm["index"])),
            mm["route"],
            str(mm["results"]),
            str(mm["failed"]),
            str(mm["invalid"]),
            *(_ci(mm["intervals"][n], digits) for n in names),
            *(fn(mm) for _, fn in extra),
            _num(mm["e2e_ms_p50"], 1),
            cost,
        )
    console.print(table)
    if task == "classification":
        for mm in models:
            conf = mm["metrics"]["confusion"]
            t = Table(
                title=Text(f"Confusion matrix: {numbered_label(mm['model'], mm['index'])} "
                           "(rows: gold, columns: predicted)", style="italic"),
                title_justify="left",
                header_style="bold",
            )
            t.add_column("gold \\ predicted")
            for c in conf["columns"]:
                t.add_column(Text(str(c)), justify="right")
            for label, row in zip(conf["labels"], conf["matrix"], strict=True):
                t.add_row(Text(str(label)), *(str(v) for v in row))
            console.print(t)
    if task == "code":
        t = Table(
            title="pass@k and pass^k (mean over cases; from repeats)",
            title_justify="left",
            header_style="bold",
        )
        ks = list(models[0]["metrics"]["pass_k"]) if models else []
        t.add_column("Model")
        for k in ks:
            t.add_column(f"pass@{k}", justify="right")
            t.add_column(f"pass^{k}", justify="right")
        t.add_column("Outcomes")
        for mm in models:
            pk = mm["metrics"]["pass_k"]
            t.add_row(
                Text(numbered_label(mm["model"], mm["index"])),
                *(v for k in ks for v in (_num(pk[k]["pass@k"]), _num(pk[k]["pass^k"]))),
                ", ".join(f"{s} {n}" for s, n in sorted(mm["metrics"]["outcomes"].items())),
            )
        console.print(t)
    if report.get("comparisons"):
        t = Table(
            title=Text(f"Paired comparisons with {numbered_label(models[0]['model'], 0)} ({_title(report['primary'])}, "
                       "same cases)", style="italic"),
            title_justify="left",
            header_style="bold",
        )
        for col in ("Model", "Difference (95% CI)", "p-value (test)", "Sign test (wins/losses/ties, p)", "Verdict"):
            t.add_column(col, justify="left" if col in ("Model", "Verdict") else "right")
        for c in report["comparisons"]:
            sign = c.get("sign_test")
            sign_text = (
                f"{sign['wins_b']}/{sign['wins_a']}/{sign['ties']}, p={sign['p_value']:.3g}" if sign else "-"
            )
            diff = "-" if c["diff"] is None else f"{c['diff']:+.{digits}f}"
            if c["diff"] is not None and c.get("low") is not None:
                diff += f" [{c['low']:+.{digits}f}–{c['high']:+.{digits}f}]"
            test = "exact" if str(c.get("test") or "").startswith("exact") else "bootstrap"
            t.add_row(
                Text(numbered_label(c["model"], c["model_index"])),
                diff,
                "-" if c["p_value"] is None else f"{c['p_value']:.3g} ({test})",
                sign_text,
                c.get("verdict") or "",
            )
        console.print(t)
    for mm in models:
        if mm.get("failed") and mm.get("first_error"):
            console.print(Text(f"✗ {numbered_label(mm['model'], mm['index'])}: {mm['failed']} request(s) failed (scored as "
                               f"wrong); first: {mm['first_error']}"), highlight=False)
    if any(mm["route"] != "pipeline" and mm["invalid"] for mm in models):
        console.print(
            "Invalid: answers not in the expected form (no label, no JSON list, no code block); "
            "they score as wrong.",
            style="dim",
        )


POINT_COLUMNS = ("point", "offered req/s", "done req/s", "TTFT p50", "TTFT p99", "TPOT p50", "E2E p99", "ok",
                 "goodput req/s")


def point_row(p: dict) -> list[str]:
    """One load point as a table row (:data:`POINT_COLUMNS`)."""
    rate = p.get("request_rate")
    offered = "inf" if rate in ("inf", None) else f"{rate:.2f}"
    return [p["profile"], offered, f"{p['request_throughput']:.2f}", _ms(p["p50_ttft_ms"]), _ms(p["p99_ttft_ms"]),
            _ms(p["p50_tpot_ms"]), _ms(p["p99_e2el_ms"]), f"{p['completed']}/{p['num_prompts']}",
            _ms(p["request_goodput"])]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def print_load_benchmarks(console: Any, benches: list[dict[str, Any]], side_by_side: bool = False) -> None:
    """Stored load benchmarks (usecases/load_results.py): each one's points, its warnings, and with
    ``side_by_side`` one row per benchmark of its headline figures."""
    from rich.table import Table

    from .render import data_text

    for b in benches:
        table = Table(title=Text(f"{b['run']['id']}  {b['model']}: {b['profile']} ({b['run']['status']}; ms)",
                                 style="table.title"), title_justify="left", header_style="bold")
        for c in POINT_COLUMNS:
            table.add_column(c, justify="left" if c == "point" else "right")
        for p in b["points"]:
            table.add_row(*(data_text(x) for x in point_row(p)))
        console.print(table)
        for w in b.get("warnings", []):
            console.print(Text(w, style="yellow"))
    if not side_by_side:
        return
    table = Table(title="Side by side", title_justify="left", header_style="bold")
    table.add_column("run")
    table.add_column("model", overflow="fold")
    for h in ("max req/s", "max output tok/s", "best TTFT p50 ms", "max goodput req/s", "goodput rate",
              "$/good request", "$/1M output tok"):
        table.add_column(h, justify="right")
    for b in benches:
        h = b["headline"]
        table.add_row(data_text(b["run"]["id"]), data_text(b["model"]), _ms(h["max_request_throughput"]),
                      _ms(h["max_output_throughput"]), _ms(h["min_p50_ttft_ms"]), _ms(h["max_request_goodput"]),
                      _ms(h["goodput_rate"]), _usd(h["min_cost_per_good_request_usd"]),
                      _usd(h["min_cost_per_1m_output_tokens_usd"]))
    console.print(table)


def print_cases(console, results: Iterable[dict], labels: list[str] | None = None, *, width: int = 600) -> None:
    """A suite run's results grouped by case: its id, variables and expected answer, then each model's output
    with pass/fail and the first failing check; a model's repeats with the same output are folded into one line.
    Outputs longer than ``width`` characters are cut, saying how much is left (``--format json`` has it all)."""
    from collections import defaultdict

    from ..labels import short_label
    from ..scoring.summary import assert_verdict

    by_case: dict[int, list[dict]] = defaultdict(list)
    for r in results:
        by_case[r["case_index"]].append(r)
    for index in sorted(by_case):
        rows = sorted(by_case[index], key=lambda r: (r["model_index"], r["repeat_index"]))
        case = rows[0].get("case") or {}
        title = f"Case {case.get('case_id') or index}" + (f" · prompt {case['prompt_id']}" if case.get("prompt_id") else "")
        console.print(Text(title, style="bold"))
        if case.get("vars"):
            console.print(Text(visible_controls("  vars: " + ", ".join(f"{k}={v}" for k, v in case["vars"].items())),
                               style="dim"))
        if case.get("expected") is not None:
            console.print(Text(visible_controls(f"  expected: {case['expected']}"), style="dim"))
        per_model: dict[int, list[dict]] = defaultdict(list)
        for r in rows:
            per_model[r["model_index"]].append(r)
        for m, group in per_model.items():
            label = labels[m] if labels and m < len(labels) else group[0]["model"]
            folded: dict[tuple, list[int]] = {}
            for r in group:
                folded.setdefault((r["ok"], r.get("text") or "", r.get("error") or "", assert_verdict(r)),
                                  []).append(r["repeat_index"])
            for (ok, text, error, verdict), repeats in folded.items():
                mark = Text("✗ ", style="bold red") if not ok or verdict.startswith("fail") else Text("✓ ", style="green")
                head = mark + Text(short_label(label), style="bold")
                if len(group) > 1:
                    head += Text(f" (repeat{'s' if len(repeats) > 1 else ''} {', '.join(map(str, repeats))})",
                                 style="dim")
                if verdict:
                    head += Text(f" · {verdict}", style="green" if verdict == "passed" else "red")
                console.print(Text("  ") + head)
                body = text if ok else (f"{text}\n" if text else "") + f"error: {error}"
                if len(body) > width:
                    body = body[:width] + f"… ({len(body) - width:,} more characters; --format json has all)"
                console.print(Text("    " + visible_controls(body or "(empty)").replace("\n", "\n    ")), overflow="fold")
        console.print()

