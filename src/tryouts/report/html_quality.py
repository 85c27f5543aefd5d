"""The quality parts of the html report (report/html.py): per-model figures with intervals, paired comparisons,
pass@k, charts, the per-case pass/fail grid and an eval-task's report.

Every figure comes from :mod:`tryouts.report.quality` (the stored ``meta.quality`` that ``tryouts show RUN
--format json`` prints, or the same function that stored it) and ``meta.eval_task``; this module only formats.
Every label, reason and value is escaped with :func:`tryouts.report.html.e`; names pass through
:class:`Names`, which shortens local paths unless the report is asked for full paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..labels import short_paths, short_ref
from ..records import index_in
from .html import e
from .quality import case_verdicts, has_assertions, pass_at_k_figures, run_labels, run_quality

#: how quality metrics are called in headers
METRIC_NAMES = {"pass": "Pass rate (assertions)", "judge": "Judge score (0–1)", "embedding": "Embedding sim.",
                "token_f1": "Token F1"}

QUALITY_CSS = """
table.quality, table.passk, table.paired, table.task { width: auto; min-width: 60%; margin-bottom: 8px; }
caption { text-align: left; font-weight: 600; padding: 8px 0 4px; }
table.quality td.num, table.paired td.num, table.passk td.num, table.task td.num { text-align: right;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.n { color: var(--muted); font-size: 12px; }
th .ref, td .ref { display: block; font-weight: normal; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
tr.significant td { background: #fff8e1; }
table.verdicts td.v { white-space: normal; }
td.v.pass .mark { color: var(--ok); font-weight: 600; }
td.v.fail .mark, td.v.error .mark { color: var(--bad); font-weight: 600; }
td.v .why { font-size: 12px; color: var(--bad); overflow-wrap: anywhere; }
.res.afail .stats .status { color: var(--bad); font-weight: 600; }
.res .check { color: var(--bad); font-size: 12px; margin: 6px 0 0; overflow-wrap: anywhere; }
ul.checks { margin: 4px 0 0; padding-left: 18px; font-size: 12px; }
ul.checks .ok { color: var(--ok); } ul.checks .bad { color: var(--bad); }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.charts figure { margin: 0; flex: 1 1 480px; max-width: 680px; }
.charts svg { width: 100%; height: auto; }
.charts figcaption { color: var(--muted); font-size: 12px; }
"""


@dataclass
class Names:
    """How models and paths are shown: labels (the suite's, else the reference) and references, with local paths
    cut to their last part unless ``full_paths``."""

    labels: list[str]
    refs: list[str]
    full_paths: bool = False
    _cache: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, data: dict[str, Any], full_paths: bool = False) -> Names:
        """The names of a run's models (``data`` as :meth:`Store.get_run` returns it)."""
        run = data["run"]
        models = run.get("models")
        refs = [str(m) for m in models] if isinstance(models, list) else []
        if not refs:  # a run without its model list: the models its results name (never more than its results)
            named: dict[int, str] = {}
            for r in data["results"]:
                if index_in(r.get("model_index"), len(data["results"])):
                    named.setdefault(r["model_index"], str(r.get("model") or r["model_index"]))
            refs = [named.get(i, str(i)) for i in range(max(named) + 1)] if named else []
        labels = run_labels({**run, "models": refs})
        return cls(labels=labels, refs=refs, full_paths=full_paths)

    def path(self, text: Any) -> str:
        """Free text with local paths shortened (unless full paths were asked for)."""
        text = "" if text is None else str(text)
        return text if self.full_paths else short_paths(text)

    def ref(self, ref: Any) -> str:
        """A model reference or label for display."""
        ref = "" if ref is None else str(ref)
        return ref if self.full_paths else short_ref(ref)

    def label(self, index: int) -> str:
        """Model ``index``'s label for display."""
        return self.ref(self.labels[index] if index < len(self.labels) else str(index))

    def header(self, index: int) -> str:
        """A model's header cell content (html): its label, and its reference below when they differ."""
        label = self.label(index)
        ref = self.ref(self.refs[index]) if index < len(self.refs) else ""
        extra = f'<span class="ref"><bdi>{e(ref)}</bdi></span>' if ref and ref != label else ""
        return f"<bdi>{e(label)}</bdi>{extra}"


def metric_name(metric: str) -> str:
    """A quality metric's header."""
    return METRIC_NAMES.get(metric, metric.replace("custom:", "Scorer "))


def ci(p: dict[str, Any] | None, digits: int = 3) -> str:
    """``mean [low–high]`` of a figure (``–`` when absent; the mean alone when it has no interval)."""
    if not p or p.get("mean") is None:
        return "–"
    text = f"{p['mean']:.{digits}f}"
    if p.get("low") is not None and p.get("high") is not None:
        text += f" [{p['low']:.{digits}f}–{p['high']:.{digits}f}]"
    return text


def _num(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


def _p(v: Any) -> str:
    if v is None:
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _test(c: dict[str, Any]) -> str:
    return "exact" if str(c.get("test") or "").startswith("exact") else "bootstrap"


def _diff(c: dict[str, Any], digits: int = 3) -> str:
    if c.get("diff") is None:
        return "–"
    text = f"{c['diff']:+.{digits}f}"
    if c.get("low") is not None and c.get("high") is not None:
        text += f" [{c['low']:+.{digits}f}, {c['high']:+.{digits}f}]"
    return text


def _significant(c: dict[str, Any]) -> bool:
    if "significant" in c:
        return bool(c["significant"])
    return c.get("low") is not None and (c["low"] > 0 or c["high"] < 0)


def _sign(c: dict[str, Any]) -> str:
    st = c.get("sign_test")
    return f"{st['wins_b']}/{st['wins_a']}/{st['ties']}, {_p(st['p_value'])}" if st else "–"


def _table(cls: str, heads: list[tuple[str, str]], rows: list[str], caption: str = "") -> str:
    thead = "".join(f'<th class="{c}">{h}</th>' for h, c in heads)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f'<table class="{cls}">{cap}<thead><tr>{thead}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def quality_section(data: dict[str, Any], names: Names) -> str:
    """Per model: every quality metric as mean [95% interval] (★ the primary), pass@k/pass^k with repeats, then
    the paired comparisons with the first model. Empty when the run has no quality figures."""
    quality = run_quality(data)
    metrics = list(quality.get("metrics") or [])
    if not metrics:
        return ""
    primary = quality.get("primary")
    heads = [("Model", "")] + [(e(metric_name(m)) + (" ★" if m == primary else ""), "num") for m in metrics]
    rows = []
    for q in quality.get("per_model") or []:
        i = int(q["model_index"])
        cells = [f'<td class="label">{names.header(i)}</td>']
        for m in metrics:
            p = (q.get("metrics") or {}).get(m)
            n = f' <span class="n">n={e(p["n"])}</span>' if p and p.get("n") is not None else ""
            cells.append(f'<td class="num" data-k="{e(m)}">{e(ci(p))}{n}</td>')
        rows.append(f'<tr data-model="{i}">{"".join(cells)}</tr>')
    parts = ['<h2 id="quality">Quality</h2>', _table("quality", heads, rows),
             '<p class="muted">Mean over cases (a model\'s repeats of a case averaged first) with a bootstrap 95% '
             "interval [low–high]; n = cases. ★ the primary metric. The same figures as <code>tryouts show RUN "
             "--format json</code> (<code>run.meta.quality</code>).</p>"]
    parts.append(_pass_at_k(quality, names))
    parts.append(_paired(quality, names))
    return "".join(parts)


def _pass_at_k(quality: dict[str, Any], names: Names) -> str:
    figures = {int(q["model_index"]): (q.get("pass_at_k") or {}) for q in quality.get("per_model") or []}
    if not any((f.get("n") or 1) > 1 for f in figures.values()):
        return ""
    ks = sorted({k for f in figures.values() for k, _, _ in pass_at_k_figures(f)})
    heads = [("Model", ""), ("Samples per case", "num")] + [
        h for k in ks for h in ((f"pass@{k}", "num"), (f"pass^{k}", "num"))]
    rows = []
    for i, f in figures.items():
        got = {k: (at, hat) for k, at, hat in pass_at_k_figures(f)}
        cells = [f'<td class="label">{names.header(i)}</td>', f'<td class="num">{e(f.get("n", "–"))}</td>']
        for k in ks:
            at, hat = got.get(k, (None, None))
            cells += [f'<td class="num" data-k="pass@{k}">{_num(at)}</td>',
                      f'<td class="num" data-k="pass^{k}">{_num(hat)}</td>']
        rows.append(f'<tr data-model="{i}">{"".join(cells)}</tr>')
    return ('<h3>Repeats: pass@k and pass^k</h3>' + _table("passk", [(e(h), c) for h, c in heads], rows)
            + '<p class="muted">From the assertion verdicts of each case\'s samples (unbiased estimates, averaged '
              "over cases): pass@k, at least one of k samples passes; pass^k, all k pass.</p>")


def _paired(quality: dict[str, Any], names: Names) -> str:
    paired = quality.get("paired") or []
    if not paired:
        return ""
    heads = [("Metric", ""), ("Model", ""), ("vs", ""), ("Cases", "num"), ("Difference [95% CI]", "num"),
             ("p (test)", "num"), ("Sign test W/L/T, p", "num"), ("Verdict", "")]
    rows = []
    for c in paired:
        p = "–" if c.get("p_value") is None else f"{_p(c['p_value'])} ({_test(c)})"
        cls = ' class="significant"' if _significant(c) else ""
        rows.append(
            f'<tr{cls} data-model="{e(c.get("model_index"))}"><td>{e(metric_name(c["metric"]))}</td>'
            f'<td><bdi>{e(names.label(int(c["model_index"])))}</bdi></td>'
            f'<td><bdi>{e(names.label(int(c.get("baseline") or 0)))}</bdi></td><td class="num">{e(c.get("n"))}</td>'
            f'<td class="num">{e(_diff(c))}</td><td class="num">{e(p)}</td><td class="num">{e(_sign(c))}</td>'
            f'<td>{e(c.get("verdict") or "")}</td></tr>')
    return ('<h3>Paired comparisons with the first model</h3>' + _table("paired", [(e(h), c) for h, c in heads], rows)
            + '<p class="muted">Difference = model − first model, on the cases both answered. From 20 cases on: a '
              "paired bootstrap, its 95% interval and p; fewer: an exact permutation test (p, no interval), and "
              "too few cases to tell at 5 or fewer. Sign test: wins/losses/ties of the model.</p>")


def charts_section(data: dict[str, Any], names: Names, summaries: list[dict[str, Any]]) -> str:
    """Inline SVG charts of the primary quality metric against cost per 1k requests and against TTFT p50, one
    marker per model (no script: report/svg.py). Empty when there is nothing to draw."""
    from .svg import Series, chart

    quality = run_quality(data)
    primary = quality.get("primary")
    if not primary:
        return ""
    figure = {int(q["model_index"]): (q.get("metrics") or {}).get(primary) for q in quality.get("per_model") or []}
    cost, speed = [], []
    for s in summaries:
        i = int(s["model_index"])
        q = figure.get(i) or {}
        if q.get("mean") is None:
            continue
        label = names.label(i)
        tip = f"{label}: {metric_name(primary)} {ci(q)}"
        if s.get("cost_per_1k_requests_usd") is not None:
            x = float(s["cost_per_1k_requests_usd"])
            cost.append(Series(label, [(x, q["mean"])], kind="scatter", tips=[f"{tip}, ${x:,.4f} per 1k requests"],
                               color=i))
        ttft = (s.get("ttft_ms") or {}).get("p50")
        if ttft is not None:
            speed.append(Series(label, [(float(ttft), q["mean"])], kind="scatter",
                                tips=[f"{tip}, TTFT p50 {ttft:,.1f} ms"], color=i))
    figures = []
    for series, title, x_label, caption in (
        (cost, f"{metric_name(primary)} against cost", "cost per 1k requests (USD)",
         "Up and to the left is better: more quality for less money. Models whose price is unknown are left out."),
        (speed, f"{metric_name(primary)} against time to first token", "TTFT p50 (ms)",
         "Up and to the left is better. Cached and failed results are not timing samples."),
    ):
        if series:
            figures.append(f"<figure>{chart(title, x_label, metric_name(primary), series)}"
                           f"<figcaption>{e(caption)}</figcaption></figure>")
    if not figures:
        return ""
    return f'<h2 id="charts">Charts</h2><div class="charts">{"".join(figures)}</div>'


def _case_title(entry: dict[str, Any]) -> str:
    case = entry["case"]
    title = f"<strong>{e(case.get('case_id') or '#' + str(entry['case_index']))}</strong>"
    if case.get("prompt_id"):
        title += f' <span class="muted">prompt {e(case["prompt_id"])}</span>'
    variables = case.get("vars") or {}
    if variables:
        items = "".join(
            f"<li><code>{e(k)}</code> = {e(v if isinstance(v, str) else json.dumps(v, default=str))}</li>"
            for k, v in variables.items())
        title += f'<ul class="vars">{items}</ul>'
    return title


def verdicts_section(data: dict[str, Any], names: Names) -> str:
    """The per-case pass/fail grid: a row per case (id, prompt, variables), a column per model, each cell its
    passes over its samples and the first failing check's reason (or the failed request's error). Empty when no
    result carries assertions."""
    results = data["results"]
    if not has_assertions(results):
        return ""
    order = sorted({int(r.get("model_index") or 0) for r in results})
    heads = [("Case", "case")] + [(names.header(i), "") for i in order]
    rows = []
    for entry in case_verdicts(results):
        cells = [f'<td class="vcase">{_case_title(entry)}</td>']
        for i in order:
            m = entry["models"].get(i)
            if not m:
                cells.append('<td class="v"><span class="empty">no result</span></td>')
                continue
            state = ("error" if m["request_failed"] == m["results"] else
                     "pass" if m["checked"] and m["passed"] == m["checked"] else "fail" if m["checked"] else "")
            mark = {"pass": "✓ passed", "fail": "✗ failed", "error": "✗ request failed"}.get(state, "not checked")
            count = f" {m['passed']}/{m['checked']}" if m["checked"] and (m["checked"] > 1 or state == "fail") else ""
            why = []
            if m["first_check"]:
                why.append(names.path(m["first_check"]))
            if m["request_failed"]:
                failed = f"{m['request_failed']} request{'s' if m['request_failed'] > 1 else ''} failed"
                why.append(f"{failed}: {names.path(m['first_error'])}")
            reason = "".join(f'<div class="why">{e(w)}</div>' for w in why)
            cells.append(f'<td class="v {state}" data-model="{i}"><span class="mark">{e(mark)}</span>{e(count)}'
                         f"{reason}</td>")
        rows.append(f'<tr data-case="{e(entry["case_index"])}">{"".join(cells)}</tr>')
    return ('<h2 id="cases">Cases: pass/fail</h2>'
            + _table("verdicts", heads, rows)
            + '<p class="muted">Each cell: the samples whose assertions all passed, over those checked (a failed '
              "request fails its checks), with the first failing check and its reason.</p>")


def result_checks(r: dict[str, Any], names: Names) -> str:
    """A result's assertion results as a list (each check, passed or not, with its reason); empty without any."""
    check = (r.get("scores") or {}).get("assert") if isinstance(r.get("scores"), dict) else None
    items = [c for c in (check or {}).get("results") or () if isinstance(c, dict)]
    if not items:
        return ""
    lis = []
    for c in items:
        ok = bool(c.get("passed"))
        reason = c.get("reason") or c.get("error") or ""
        text = f"{'✓' if ok else '✗'} {c.get('type') or 'check'}" + (f": {names.path(reason)}" if reason else "")
        lis.append(f'<li class="{"ok" if ok else "bad"}">{e(text)}</li>')
    return f'<details><summary>checks</summary><ul class="checks">{"".join(lis)}</ul></details>'


def task_section(data: dict[str, Any], names: Names) -> str:
    """An eval-task run's report (``meta.eval_task``): each model's metrics with intervals, a classifier's
    confusion matrices, pass@k for code, and the paired comparisons on the primary metric."""
    report = (data["run"].get("meta") or {}).get("eval_task")
    if not report:
        return ""
    from ..tasks.scoring import metric_title

    models = report.get("models") or []
    digits = 1 if report.get("task") == "translation" else 3
    primary = report.get("primary")
    metrics = list((models[0].get("intervals") or {}).keys()) if models else []
    heads = [("Model", ""), ("Route", ""), ("Results", "num"), ("Failed", "num"), ("Invalid", "num")]
    heads += [(e(metric_title(m)) + (" ★" if m == primary else ""), "num") for m in metrics]
    ner = report.get("task") == "ner"
    if ner:
        heads += [("Precision", "num"), ("Recall", "num")]
    rows = []
    for m in models:
        cells = [f'<td class="label"><bdi>{e(names.ref(m.get("model")))}</bdi></td>', f"<td>{e(m.get('route'))}</td>",
                 *(f'<td class="num">{e(m.get(k))}</td>' for k in ("results", "failed", "invalid")),
                 *(f'<td class="num" data-k="{e(n)}">{e(ci((m.get("intervals") or {}).get(n), digits))}</td>'
                   for n in metrics)]
        if ner:
            cells += [f'<td class="num">{_num((m.get("metrics") or {}).get(k))}</td>' for k in ("precision", "recall")]
        rows.append(f'<tr data-model="{e(m.get("index"))}">{"".join(cells)}</tr>')
    mode = f" ({report['mode']})" if report.get("mode") else ""
    parts = [f'<h2 id="task">Task: {e(report.get("task"))}{e(mode)}</h2>',
             f'<p class="muted">{e(report.get("n_cases"))} labeled cases from <code>{e(names.path(report.get("data")))}'
             f"</code>, {e(report.get('repeats'))} repeat(s). Mean [95% bootstrap interval over cases]; ★ the primary "
             "metric, compared between models below.</p>",
             _table("task", [(h if "★" in h or "&" in h else e(h), c) for h, c in heads], rows)]
    if report.get("task") == "classification":
        for m in models:
            conf = (m.get("metrics") or {}).get("confusion") or {}
            if not conf:
                continue
            body = [f"<tr><th>{e(label)}</th>" + "".join(f'<td class="num">{e(v)}</td>' for v in row) + "</tr>"
                    for label, row in zip(conf.get("labels") or [], conf.get("matrix") or [], strict=False)]
            heads_c = [("gold \\ predicted", "")] + [(e(c), "num") for c in conf.get("columns") or []]
            parts.append(_table("task confusion", heads_c, body,
                                caption=f"Confusion matrix: <bdi>{e(names.ref(m.get('model')))}</bdi> (rows: gold, "
                                        "columns: predicted)"))
    if report.get("task") == "code" and models:
        ks = list(((models[0].get("metrics") or {}).get("pass_k") or {}).keys())
        heads_k = [("Model", "")] + [h for k in ks for h in ((f"pass@{e(k)}", "num"), (f"pass^{e(k)}", "num"))]
        heads_k.append(("Outcomes", ""))
        body = []
        for m in models:
            pk = (m.get("metrics") or {}).get("pass_k") or {}
            outcomes = ", ".join(f"{o} {n}" for o, n in sorted(((m.get("metrics") or {}).get("outcomes") or {}).items()))
            body.append(f'<tr><td class="label"><bdi>{e(names.ref(m.get("model")))}</bdi></td>'
                        + "".join(f'<td class="num">{_num((pk.get(k) or {}).get(s))}</td>'
                                  for k in ks for s in ("pass@k", "pass^k"))
                        + f"<td>{e(outcomes)}</td></tr>")
        parts.append(_table("passk task", heads_k, body, caption="pass@k and pass^k (mean over cases, from repeats)"))
    comparisons = report.get("comparisons") or []
    if comparisons:
        body = []
        for c in comparisons:
            p = "–" if c.get("p_value") is None else f"{_p(c['p_value'])} ({_test(c)})"
            cls = ' class="significant"' if _significant(c) else ""
            body.append(f'<tr{cls}><td><bdi>{e(names.ref(c.get("model")))}</bdi></td>'
                        f'<td class="num">{e(_diff(c, digits))}</td><td class="num">{e(p)}</td>'
                        f'<td class="num">{e(_sign(c))}</td><td>{e(c.get("verdict") or "")}</td></tr>')
        caption = (f"Paired comparisons with <bdi>{e(names.ref(models[0].get('model') if models else ''))}</bdi> "
                   f"({e(metric_title(primary or ''))}, same cases)")
        parts.append(_table("paired task", [("Model", ""), ("Difference [95% CI]", "num"), ("p (test)", "num"),
                                            ("Sign test W/L/T, p", "num"), ("Verdict", "")], body, caption=caption))
    for m in models:
        if m.get("failed") and m.get("first_error"):
            parts.append(f'<p class="err">✗ <bdi>{e(names.ref(m.get("model")))}</bdi>: {e(m["failed"])} request(s) '
                         f"failed (scored as wrong); first: {e(names.path(m['first_error']))}</p>")
    return "".join(parts)
