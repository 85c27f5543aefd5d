"""A run as ONE self-contained html page to share: the summary, the quality figures with their intervals,
paired comparisons and pass@k, charts, the per-case pass/fail grid, an eval-task's report and the outputs side by
side (report/html_quality.py draws the quality parts).

No external resource of any kind (inline CSS, no script, no font, no image; the charts are inline SVG drawn in
Python), and a Content Security Policy that forbids loading anything. Every prompt, variable, output, label and
error is untrusted and escaped with :func:`e`: planted markup shows as text and never runs. Local paths (in model
references, labels, the suite's path, error messages) are cut to their last part unless ``full_paths``; prompts
and outputs are shown as they are.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..records import index_in
from ..stats import decimal_str, result_cost, summarize, to_decimal

if TYPE_CHECKING:
    from .html_quality import Names

CSP = "default-src 'none'; style-src 'unsafe-inline'"

CSS = """
:root { --fg: #1b1f24; --muted: #5b6570; --line: #d5dae0; --bg: #fff; --soft: #f5f7f9;
        --ok: #1a7f37; --bad: #b42318; --accent: #2f5bb7; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 24px; max-width: 1600px; color: var(--fg); background: var(--bg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h1 .brand { color: var(--accent); }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 10px 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
      font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.prompt pre { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 8px; }
.prompt .role { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 6px 8px; vertical-align: top; text-align: left; }
thead th { background: var(--soft); }
table.summary td.num, table.summary th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.grid { table-layout: fixed; }
table.grid th.case, table.grid td.case { width: 22%; }
td.case .vars { margin: 6px 0 0; padding: 0; list-style: none; font-size: 12px; }
td.case .vars code { font: 12px ui-monospace, monospace; }
td.case pre { font-size: 12px; background: var(--soft); padding: 6px; border-radius: 4px; margin-top: 6px; }
.res + .res { border-top: 1px dashed var(--line); margin-top: 8px; padding-top: 8px; }
.res .stats { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.res.fail .stats .status { color: var(--bad); font-weight: 600; }
.res.ok .stats .status { color: var(--ok); }
.res .err { color: var(--bad); margin: 6px 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.badge { display: inline-block; font-size: 11px; border: 1px solid var(--line); border-radius: 3px;
         padding: 0 4px; margin-left: 4px; color: var(--muted); }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
.empty { color: var(--muted); }
footer { margin-top: 28px; font-size: 12px; color: var(--muted); }
@media print {
  @page { size: landscape; margin: 12mm; }
  body { padding: 0; max-width: none; font-size: 11px; }
  pre { font-size: 10px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  details { display: block; }
}
"""


def e(value: Any) -> str:
    """Escape anything for html text and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _cost(value: Any, source: str | None = None) -> str:
    d = to_decimal(value)
    if d is None:
        return "unknown"
    if source == "local" and d == 0:
        return "0 (local)"
    if source == "cache" and d == 0:
        return "0 (cached)"
    if d == 0:
        return "$0"
    f = float(d)
    return f"${f:.6f}" if f < 0.01 else f"${f:,.4f}"


def _tokens(r: dict[str, Any]) -> str:
    n = r.get("output_tokens")
    if n is None:
        return "– tok"
    return f"{'~' if r.get('tokens_estimated') else ''}{n} tok"


def _messages(request: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((request or {}).get("messages") or [])


def _prompt_block(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        parts.append(
            f'<div class="prompt"><div class="role">{e(m.get("role"))}</div><pre>{e(m.get("content"))}</pre></div>'
        )
    return "".join(parts)


def _header(data: dict[str, Any], names: Names) -> str:
    from .quality import result_status

    run = data["run"]
    results = data["results"]
    meta = run.get("meta") or {}
    statuses = [result_status(r) for r in results]
    outcome = f"{statuses.count('request failed')} request(s) failed"
    if "passed" in statuses or "assertion failed" in statuses:
        outcome += f", {statuses.count('assertion failed')} failed their assertions"
    rows = [
        ("Run", run.get("id")),
        ("Kind", run.get("kind")),
        ("Status", run.get("status")),
        ("Started (UTC)", (run.get("started_at") or "")[:19].replace("T", " ")),
        ("Finished (UTC)", (run.get("finished_at") or "")[:19].replace("T", " ") or "–"),
        ("Models", ", ".join(names.label(i) for i in range(len(names.refs)))),
        ("Results", f"{len(results)} ({outcome})"),
    ]
    if data.get("left_out"):
        rows.append(("Left out", f"{data['left_out']} result(s) whose model index is not one of the run's "
                                 f"{len(names.refs)} models: the ledger may have been edited"))
    if meta.get("suite_path"):
        rows.insert(2, ("Suite", names.path(meta["suite_path"])))
    if meta.get("description"):
        rows.insert(3, ("Description", meta["description"]))
    if meta.get("repeats") and meta["repeats"] > 1:
        rows.append(("Repeats", meta["repeats"]))
    prompt_ids = sorted({str(r["case"].get("prompt_id")) for r in results if r.get("case") and r["case"].get("prompt_id")})
    if prompt_ids:
        rows.append(("Prompts", ", ".join(prompt_ids)))
    params = (run.get("request") or {}).get("params")
    if params:
        shown = {k: v for k, v in params.items() if v is not None}
        rows.append(("Parameters", json.dumps(shown, default=str)))
    listed = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    messages = _messages(run.get("request"))
    prompt = f"<h2>Prompt</h2>{_prompt_block(messages)}" if messages else ""
    paths = ("Full local paths are shown (--full-paths)." if names.full_paths else
             "Local paths are shortened to their last part (tryouts export --full-paths shows them whole).")
    return (
        f'<header><h1><span class="brand">Tryouts</span> · run {e(run.get("id"))}</h1>'
        f'<dl class="meta">{listed}</dl><p class="muted">{e(paths)}</p></header>{prompt}'
    )


def _summary(summaries: list[dict[str, Any]], names: Names) -> str:
    heads = [
        ("Model", ""), ("Results", "num"), ("Failures", "num"), ("Cached", "num"), ("TTFT p50 ms", "num"),
        ("TTFT p90 ms", "num"), ("tok/s p50", "num"), ("E2E p50 ms", "num"), ("Out tok p50", "num"),
        ("Cost total", "num"), ("Cost / 1k req", "num"),
    ]
    thead = "".join(f'<th class="{c}">{e(h)}</th>' for h, c in heads)
    body = []
    unknown = False
    for s in summaries:
        unknown = unknown or s["cost_unknown"] > 0
        total = _cost(s["cost_total_usd"])
        if s["cost_unknown"] and s["cost_total_usd"] is not None:
            total += f" + {s['cost_unknown']} unknown"
        cells = [
            names.header(int(s["model_index"])),
            str(s["n"]),
            str(s["failures"]),
            str(s["cached"]),
            *(_num(v) if v is not None or not s.get("batch") else "n/a (batch)" for v in (
                s["ttft_ms"]["p50"], s["ttft_ms"]["p90"], s["output_tokens_per_s"]["p50"], s["e2e_ms"]["p50"])),
            _num(s["output_tokens"]["p50"], 0),
            e(total),
            e(_cost(s["cost_per_1k_requests_usd"])),
        ]
        body.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' for (_, c), v in zip(heads, cells, strict=True)) + "</tr>")
    notes = ['Timing figures are over successful, fresh results: cached results are never timing samples.']
    if unknown:
        notes.append("unknown cost: no price is known for that model (never shown as 0).")
    note_html = "".join(f'<p class="muted">{e(n)}</p>' for n in notes)
    return (
        f'<h2>Summary</h2><table class="summary"><thead><tr>{thead}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table>{note_html}'
    )


def _case_cell(case_index: int, rs: list[dict[str, Any]]) -> str:
    first = rs[0]
    case = first.get("case") or {}
    title = f"#{case_index}"
    ids = " / ".join(str(case[k]) for k in ("prompt_id", "case_id") if case.get(k) is not None)
    parts = [f"<strong>{e(title)}</strong>"]
    if ids:
        parts.append(f' <span class="muted">{e(ids)}</span>')
    variables = case.get("vars") or {}
    if variables:
        items = "".join(
            f"<li><code>{e(k)}</code> = {e(v if isinstance(v, str) else json.dumps(v, default=str))}</li>"
            for k, v in variables.items()
        )
        parts.append(f'<ul class="vars">{items}</ul>')
    users = [m for m in _messages(first.get("request")) if m.get("role") == "user"]
    if users:
        parts.append(f"<pre>{e(users[-1].get('content'))}</pre>")
    if case.get("expected") is not None:
        expected = case["expected"]
        text = expected if isinstance(expected, str) else json.dumps(expected, default=str)
        parts.append(f'<div class="muted">expected</div><pre>{e(text)}</pre>')
    return f'<td class="case">{"".join(parts)}</td>'


#: a result's status line and css class, by :func:`tryouts.report.quality.result_status`
_STATUS = {"ok": ("✓ ok", "ok"), "passed": ("✓ passed", "ok"), "assertion failed": ("✗ assertion failed", "afail"),
           "request failed": ("✗ request failed", "fail")}


def _result_block(r: dict[str, Any], many_repeats: bool, names: Names) -> str:
    from ..scoring.summary import assert_verdict
    from .html_quality import result_checks
    from .quality import result_status

    status, cls = _STATUS[result_status(r)]
    stats = [
        e("TTFT n/a (batch)" if r.get("batch") else f"TTFT {_num(r.get('ttft_ms'))} ms"),
        e(_tokens(r)),
        e(_cost(r.get("cost_usd_exact"), r.get("cost_source"))),
    ]
    if r.get("e2e_ms") is not None:
        stats.insert(1, e(f"E2E {_num(r.get('e2e_ms'), 0)} ms"))
    badges = ""
    if many_repeats:
        badges += f'<span class="badge">repeat {e(r.get("repeat_index"))}</span>'
    if r.get("cached"):
        badges += '<span class="badge">cached</span>'
    body = [f'<div class="stats"><span class="status">{e(status)}</span> {" · ".join(stats)}{badges}</div>']
    if r.get("reasoning_text"):
        body.append(f"<details><summary>reasoning</summary><pre>{e(r['reasoning_text'])}</pre></details>")
    if r.get("text") or r.get("ok"):
        body.append(f'<pre class="out">{e(r.get("text") or "")}</pre>')
    if not r.get("ok"):
        body.append(f'<p class="err">✗ {e(names.path(r.get("error")))}</p>')
    elif cls == "afail":
        body.append(f'<p class="check">✗ {e(names.path(assert_verdict(r).removeprefix("failed: ")))}</p>')
    body.append(result_checks(r, names))
    return f'<div class="res {cls}">{"".join(body)}</div>'


def _grid(data: dict[str, Any], names: Names) -> str:
    results = data["results"]
    order = list(range(len(names.refs)))
    cases: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for r in results:
        cases.setdefault(int(r.get("case_index") or 0), {}).setdefault(int(r.get("model_index") or 0), []).append(r)
    many_repeats = any(len(rs) > 1 for by_model in cases.values() for rs in by_model.values())
    head = '<th class="case">Case</th>' + "".join(f"<th>{names.header(i)}</th>" for i in order)
    rows = []
    for ci in sorted(cases):
        by_model = cases[ci]
        all_rs = [r for i in order for r in by_model.get(i, [])]
        cells = [_case_cell(ci, all_rs)]
        for i in order:
            rs = sorted(by_model.get(i, []), key=lambda r: (r.get("repeat_index") or 0, r.get("id") or 0))
            inner = "".join(_result_block(r, many_repeats, names) for r in rs) or '<span class="empty">no result</span>'
            cells.append(f"<td>{inner}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        return '<h2>Outputs</h2><p class="muted">No results recorded.</p>'
    return f'<h2>Outputs</h2><table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_html(data: dict[str, Any], full_paths: bool = False) -> str:
    """The page for one run (see the module docstring); ``full_paths`` shows local paths whole."""
    from . import html_quality as hq

    run = data["run"]
    names = hq.Names.of(data, full_paths)
    # a result whose model index is not one of the run's models is left out (and said): a stored index is
    # never trusted to size a list (a shared ledger's row may hold any number)
    kept = [r for r in data["results"] if index_in(r.get("model_index"), len(names.refs))]
    if len(kept) < len(data["results"]):
        data = {**data, "results": kept, "left_out": len(data["results"]) - len(kept)}
    summaries = summarize(data["results"])
    total = [c for c in (result_cost(r) for r in data["results"]) if c is not None]
    total_text = _cost(decimal_str(sum(total)) if total else None)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Tryouts · run {e(run.get('id'))}</title>"
        f"<style>{CSS}{hq.QUALITY_CSS}</style></head><body>"
        f"{_header(data, names)}{_summary(summaries, names)}{hq.quality_section(data, names)}"
        f"{hq.task_section(data, names)}{hq.charts_section(data, names, summaries)}{hq.verdicts_section(data, names)}"
        f"{_grid(data, names)}"
        f"<footer>Generated by Tryouts {e(__version__)} from run {e(run.get('id'))} · total cost "
        f"{e(total_text)} · durations in milliseconds, timings as defined in Tryouts' docs/metrics.md.</footer>"
        "</body></html>\n"
    )
