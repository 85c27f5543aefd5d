"""The run page's charts: their data (``/api/runs/{run}/charts``) and the same charts as SVG drawn on the server.

The page shows the SVG at once (no script: the first chart is there with the first paint) and upgrades to
Plotly's interactive charts only later: by itself after the first paint on runs of up to
:data:`PLOTLY_AUTO_MAX` results, on a click beyond (``static/app.js``). Both are drawn from
:func:`chart_data`, with the same choices: quality vs cost and vs speed when the run has quality scores (cost
and tokens/s against TTFT when not), and the latency distributions. Text and axes of the SVG use
``currentColor``, so they follow the page's light or dark palette; every label is escaped (report/svg.py).
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from ..report.svg import PALETTE, Series, chart, fmt, nice_ticks

#: the largest run whose charts turn interactive (Plotly) by themselves after the first paint
PLOTLY_AUTO_MAX = 5000
#: dots drawn per box of the SVG latency chart (evenly spaced order statistics of all the samples)
DOTS_PER_BOX = 100


def chart_data(d: Any) -> dict[str, Any]:
    """Per-model points for the charts, from a run's digest (web/digest.py); made once per digest."""
    if "charts" in d.extra:
        return d.extra["charts"]
    primary = d.quality.get("primary")
    quality = {q["model_index"]: q["metrics"].get(primary) for q in d.quality.get("per_model", [])}
    models = []
    for m in d.summary:
        samples = d.samples.get(m["model_index"]) or {"e2e_ms": [], "ttft_ms": []}
        q = quality.get(m["model_index"]) or {}
        per_1k = m.get("cost_per_1k_requests_usd")
        models.append({
            "model_index": m["model_index"], "label": m["label"],
            "quality": q.get("mean"), "quality_low": q.get("low"), "quality_high": q.get("high"),
            "cost_per_1k_usd": float(per_1k) if per_1k is not None else None,
            "ttft_p50_ms": m["ttft_ms"].get("p50"), "tokens_per_s_p50": m["output_tokens_per_s"].get("p50"),
            "e2e_ms": samples["e2e_ms"], "ttft_ms": samples["ttft_ms"],
        })
    d.extra["charts"] = out = {"primary": primary, "models": models}
    return out


def _missing(models: list[dict[str, Any]], test: Any, what: str) -> str:
    left = [m["label"] for m in models if not test(m)]
    return f" Not shown ({what}): {', '.join(left)}." if left else ""


def _points(models: list[dict[str, Any]], x: str, y: str, interval: bool) -> list[Series]:
    out = []
    for m in models:
        err = [(m["quality_low"], m["quality_high"])] if interval and m["quality_low"] is not None \
            and m["quality_high"] is not None else []
        out.append(Series(m["label"], [(float(m[x]), float(m[y]))], kind="scatter", color=m["model_index"],
                          tips=[f"{m['label']}: {fmt(float(m[x]))}, {fmt(float(m[y]))}"], errors=err))
    return out


def svg_charts(d: Any) -> dict[str, dict[str, str]]:
    """``{"cost"|"speed"|"latency": {"svg": markup, "note": text}}``, as app.js draws them with Plotly."""
    if "svg" in d.extra:
        return d.extra["svg"]
    from markupsafe import Markup

    data = chart_data(d)
    models = data["models"]
    has_q = data["primary"] is not None and any(m["quality"] is not None for m in models)
    quality = f"quality ({data['primary'] or 'none'})"

    def with_cost(m: dict[str, Any]) -> bool:
        return m["cost_per_1k_usd"] is not None

    def with_q(m: dict[str, Any]) -> bool:
        return m["quality"] is not None

    out: dict[str, dict[str, str]] = {}
    if has_q:
        both = [m for m in models if with_cost(m) and with_q(m)]
        svg = chart("Quality vs cost", "USD per 1k requests", quality, _points(both, "cost_per_1k_usd", "quality", True),
                    height=320, empty="Quality vs cost: nothing to plot (no model of this run has both figures).")
        note = "Up and to the left is better; bars are 95% intervals." + _missing(
            models, lambda m: with_cost(m) and with_q(m), "unknown cost or no quality score")
    else:
        both = [m for m in models if with_cost(m) and m["ttft_p50_ms"] is not None]
        svg = chart("Cost vs time to first token", "TTFT p50 (ms)", "USD per 1k requests",
                    _points(both, "ttft_p50_ms", "cost_per_1k_usd", False), height=320,
                    empty="Cost vs time to first token: nothing to plot (no model of this run has both figures).")
        note = ("This run has no quality scores (a suite with assertions or scorers has): cost is plotted against "
                "speed instead. Down and to the left is better." + _missing(
                    models, lambda m: with_cost(m) and m["ttft_p50_ms"] is not None, "unknown cost or no timing"))
    out["cost"] = {"svg": Markup(svg), "note": note}
    if has_q:
        both = [m for m in models if with_q(m) and m["tokens_per_s_p50"] is not None]
        svg = chart("Quality vs speed", "output tokens/s (p50)", quality,
                    _points(both, "tokens_per_s_p50", "quality", True), height=320,
                    empty="Quality vs speed: nothing to plot (no model of this run has both figures).")
        note = "Up and to the right is better." + _missing(
            models, lambda m: with_q(m) and m["tokens_per_s_p50"] is not None, "no score or no timing")
    else:
        both = [m for m in models if m["tokens_per_s_p50"] is not None and m["ttft_p50_ms"] is not None]
        svg = chart("Speed", "TTFT p50 (ms)", "output tokens/s (p50)",
                    _points(both, "ttft_p50_ms", "tokens_per_s_p50", False), height=320,
                    empty="Speed: nothing to plot (no model of this run has both figures).")
        note = "Up and to the left is better." + _missing(
            models, lambda m: m["tokens_per_s_p50"] is not None and m["ttft_p50_ms"] is not None, "no timing")
    out["speed"] = {"svg": Markup(svg), "note": note}
    drawn = sum(min(len(m["e2e_ms"]), DOTS_PER_BOX) + min(len(m["ttft_ms"]), DOTS_PER_BOX) for m in models)
    total = sum(len(m["e2e_ms"]) + len(m["ttft_ms"]) for m in models)
    note = "Fresh, successful results only; each dot is one request." + _missing(
        models, lambda m: len(m["e2e_ms"]) > 0, "no successful fresh result")
    if drawn < total:
        note += f" Here {drawn:,} of the {total:,} samples are drawn as dots (evenly spaced through each box's sorted " \
                "values); the boxes use every sample."
    out["latency"] = {"svg": Markup(box_chart(models)), "note": note}
    d.extra["svg"] = out
    return out


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 by linear interpolation between order statistics (Plotly's default method)."""
    v = sorted(values)

    def q(p: float) -> float:
        k = (len(v) - 1) * p
        lo = math.floor(k)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (k - lo)

    return q(0.25), q(0.5), q(0.75)


def box_chart(models: list[dict[str, Any]], width: int = 1000, height: int = 360) -> str:
    """TTFT and end-to-end per model as box plots (1.5 IQR whiskers) with up to :data:`DOTS_PER_BOX` dots each."""
    traces = [(name, key) for name, key in (("TTFT", "ttft_ms"), ("End to end", "e2e_ms"))
              if any(m[key] for m in models)]
    head = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="Latency distributions" font-family="system-ui, sans-serif" '
            'font-size="11">')
    parts = [head, '<text x="64" y="18" font-size="13" font-weight="600" fill="currentColor">Latency distributions'
                   '</text>']
    values = [v for m in models for _, key in traces for v in m[key] if math.isfinite(v)]
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="currentColor" opacity="0.7">'
                     'Latency distributions: nothing to plot (no successful fresh result).</text></svg>')
        return "".join(parts)
    left, right, top, bottom = 64, 16, 34, 70
    pw, ph = width - left - right, height - top - bottom
    yt = nice_ticks(min(0.0, min(values)), max(values))
    y0, y1 = yt[0], yt[-1]

    def py(y: float) -> float:
        return round(top + ph - (y - y0) / ((y1 - y0) or 1) * ph, 2)

    for t in yt:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t)}" y2="{py(t)}" stroke="currentColor" '
                     f'stroke-opacity="0.15"/><text x="{left - 6}" y="{py(t) + 4}" text-anchor="end" '
                     f'fill="currentColor">{fmt(t)}</text>')
    parts.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" '
                 'fill="currentColor">milliseconds</text>')
    slot = pw / max(len(models), 1)
    box_w = min(60.0, slot / (len(traces) + 1))
    room = max(8, int(slot / 6.2))
    for i, m in enumerate(models):
        cx = left + slot * (i + 0.5)
        name = m["label"] if len(m["label"]) <= room else m["label"][:room // 2 - 1] + "…" + m["label"][-(room // 2 - 1):]
        parts.append(f'<text x="{round(cx, 2)}" y="{top + ph + 16}" text-anchor="middle" fill="currentColor">'
                     f'{escape(name)}<title>{escape(m["label"])}</title></text>')
        for j, (trace, key) in enumerate(traces):
            vs = sorted(v for v in m[key] if math.isfinite(v))
            if not vs:
                continue
            x = cx + (j - (len(traces) - 1) / 2) * box_w * 1.1
            color = PALETTE[j % len(PALETTE)]
            q1, med, q3 = quartiles(vs)
            iqr = q3 - q1
            lo = next(v for v in vs if v >= q1 - 1.5 * iqr)
            hi = next(v for v in reversed(vs) if v <= q3 + 1.5 * iqr)
            half = box_w / 2
            tip = (f"{m['label']} · {trace}: n {len(vs):,}, median {fmt(med)} ms, quartiles {fmt(q1)}–{fmt(q3)} ms, "
                   f"whiskers {fmt(lo)}–{fmt(hi)} ms")
            parts.append(f'<g class="box" data-trace="{escape(trace)}" data-model="{m["model_index"]}" '
                         f'data-n="{len(vs)}" data-median="{med:.6g}"><title>{escape(tip)}</title>'
                         f'<path d="M{x:.2f},{py(lo)}V{py(q1)}M{x:.2f},{py(q3)}V{py(hi)}M{x - half / 2:.2f},{py(lo)}'
                         f'h{half:.2f}M{x - half / 2:.2f},{py(hi)}h{half:.2f}" stroke="{color}" fill="none"/>'
                         f'<rect x="{x - half:.2f}" y="{py(q3)}" width="{box_w:.2f}" height="{max(py(q1) - py(q3), 1):.2f}"'
                         f' fill="{color}" fill-opacity="0.25" stroke="{color}"/>'
                         f'<line x1="{x - half:.2f}" x2="{x + half:.2f}" y1="{py(med)}" y2="{py(med)}" stroke="{color}" '
                         'stroke-width="2"/>')
            step = max(1, len(vs) / DOTS_PER_BOX)
            picks = [vs[min(len(vs) - 1, int(k * step))] for k in range(min(len(vs), DOTS_PER_BOX))]
            parts.append(f'<g class="dots" fill="{color}" fill-opacity="0.6">')
            for k, v in enumerate(picks):
                jitter = ((k * 0.618034) % 1 - 0.5) * half * 0.8
                parts.append(f'<circle cx="{x + jitter:.1f}" cy="{py(v):.1f}" r="1.6"/>')
            parts.append("</g></g>")
    for j, (trace, _) in enumerate(traces):
        lx = left + j * 140
        parts.append(f'<rect x="{lx}" y="{height - 22}" width="14" height="10" fill="{PALETTE[j]}" fill-opacity="0.6"/>'
                     f'<text x="{lx + 20}" y="{height - 13}" fill="currentColor">{trace}</text>')
    parts.append("</svg>")
    return "".join(parts)
