"""Small static SVG charts: lines, markers, percentile bands, steps and marks on linear axes.

They are drawn here, in Python, so a self-contained HTML report and the dashboard show the same charts with
no script and no external file. Text and axes use ``currentColor`` (readable in light and dark mode); the
series use a palette of mid-tone colours that read on both. Every label is escaped: a model reference is
untrusted text. Each marker carries a ``<title>`` (its values on hover) and a ``data-x``/``data-y`` pair
(what the browser tests read back).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

#: series colours, chosen to read on a white and on a near-black background
PALETTE = ("#3b82f6", "#ef4444", "#10b981", "#f59e0b", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16")


@dataclass
class Series:
    """One series: ``points`` (x, y) joined by a line (``kind`` line), drawn as markers only (scatter), or as a
    step line (step); ``band`` (x, low, high) shades a range behind it; ``tips`` label each point."""

    name: str
    points: list[tuple[float, float]]
    kind: str = "line"
    dashed: bool = False
    band: list[tuple[float, float, float]] = field(default_factory=list)
    tips: list[str] = field(default_factory=list)
    color: int | None = None
    errors: list[tuple[float, float] | None] = field(default_factory=list)
    """Optional (low, high) per point: a vertical error bar (an interval) drawn through the marker."""


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2 or 5 times a power of ten apart) covering ``lo``..``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < hi - step * 1e-9 and len(ticks) < 50:  # the last tick is at or above hi
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


def fmt(v: float) -> str:
    """A tick label: no needless decimals, thousands separated."""
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.1f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def chart(title: str, x_label: str, y_label: str, series: Sequence[Series], *, width: int = 640, height: int = 300,
          marks: Sequence[tuple[float, str]] = (), css_class: str = "chart", y_from_zero: bool = True,
          empty: str = "No data for this chart.") -> str:
    """The chart as an ``<svg>`` element (a string). ``marks``: vertical lines at x with a label. A chart with
    no point says so instead of drawing empty axes."""
    left, right, top, bottom = 64, 16, 34, 46
    legend_h = 18 * ((len(series) + 2) // 3) if len(series) > 1 else 0
    height += legend_h
    xs = [x for s in series for x, _ in s.points] + [x for s in series for x, _, _ in s.band] + [m for m, _ in marks]
    ys = [y for s in series for _, y in s.points] + [v for s in series for _, lo, hi in s.band for v in (lo, hi)]
    ys += [v for s in series for e in s.errors if e is not None for v in e]
    xs = [x for x in xs if math.isfinite(x)]
    ys = [y for y in ys if math.isfinite(y)]
    head = (f'<svg class="{escape(css_class)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
            'font-family="system-ui, sans-serif" font-size="11">')
    parts = [head, f'<text x="{left}" y="18" font-size="13" font-weight="600" fill="currentColor">{escape(title)}'
                   '</text>']
    if not xs or not ys:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="currentColor" '
                     f'opacity="0.7">{escape(empty)}</text></svg>')
        return "".join(parts)
    xt = nice_ticks(min(xs), max(xs))
    yt = nice_ticks(min(0.0, min(ys)) if y_from_zero else min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    pw, ph = width - left - right, height - legend_h - top - bottom

    def px(x: float) -> float:
        return round(left + (x - x0) / ((x1 - x0) or 1) * pw, 2)

    def py(y: float) -> float:
        return round(top + ph - (y - y0) / ((y1 - y0) or 1) * ph, 2)

    for t in yt:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t)}" y2="{py(t)}" stroke="currentColor" '
                     f'stroke-opacity="0.15"/><text x="{left - 6}" y="{py(t) + 4}" text-anchor="end" '
                     f'fill="currentColor">{fmt(t)}</text>')
    for t in xt:
        parts.append(f'<line x1="{px(t)}" x2="{px(t)}" y1="{top + ph}" y2="{top + ph + 4}" stroke="currentColor"/>'
                     f'<text x="{px(t)}" y="{top + ph + 16}" text-anchor="middle" fill="currentColor">{fmt(t)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="currentColor" '
                 'stroke-opacity="0.6"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{top + ph + 34}" text-anchor="middle" fill="currentColor">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle" '
                 f'fill="currentColor">{escape(y_label)}</text>')
    for x, label in marks:
        parts.append(f'<line class="mark" x1="{px(x)}" x2="{px(x)}" y1="{top}" y2="{top + ph}" stroke="currentColor" '
                     f'stroke-dasharray="2 3"/><text x="{px(x) + 4}" y="{top + 10}" fill="currentColor">'
                     f'{escape(label)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[(s.color if s.color is not None else i) % len(PALETTE)]
        parts.append(f'<g class="series" data-name="{escape(s.name)}">')
        if s.band:
            band = sorted(s.band)
            poly = [f"{px(x)},{py(hi)}" for x, _, hi in band] + [f"{px(x)},{py(lo)}" for x, lo, _ in reversed(band)]
            parts.append(f'<polygon class="band" points="{" ".join(poly)}" fill="{color}" fill-opacity="0.18"/>')
        pts = [(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
        if s.kind in ("line", "step") and len(pts) > 1:
            if s.kind == "step":
                path = [f"{px(pts[0][0])},{py(pts[0][1])}"]
                for (_, ya), (xb, yb) in pairwise(pts):
                    path += [f"{px(xb)},{py(ya)}", f"{px(xb)},{py(yb)}"]
            else:
                path = [f"{px(x)},{py(y)}" for x, y in pts]
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            parts.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for (x, _), e in zip(s.points, s.errors, strict=False):
            if e is not None and all(math.isfinite(v) for v in (x, *e)):
                parts.append(f'<path class="err" d="M{px(x)},{py(e[0])}V{py(e[1])}M{px(x) - 4},{py(e[0])}h8'
                             f'M{px(x) - 4},{py(e[1])}h8" stroke="{color}" stroke-width="1.5" fill="none"/>')
        if s.kind != "step":
            r = 2 if s.kind == "scatter" and len(pts) > 60 else 3.5
            for j, (x, y) in enumerate(pts):
                tip = s.tips[j] if j < len(s.tips) else f"{s.name}: {fmt(x)}, {fmt(y)}"
                parts.append(f'<circle class="pt" cx="{px(x)}" cy="{py(y)}" r="{r}" fill="{color}" data-x="{x:.6g}" '
                             f'data-y="{y:.6g}"><title>{escape(tip)}</title></circle>')
        parts.append("</g>")
    if len(series) > 1:
        for i, s in enumerate(series):
            color = PALETTE[(s.color if s.color is not None else i) % len(PALETTE)]
            lx, ly = left + (i % 3) * (pw / 3), height - legend_h + 4 + 18 * (i // 3)
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            room = max(8, int(pw / 3 / 6.2) - 5)  # characters that fit in a legend column
            name = s.name if len(s.name) <= room else s.name[:room // 2 - 1] + "…" + s.name[-(room // 2 - 1):]
            parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"{dash}/>'
                         f'<text x="{lx + 24}" y="{ly + 4}" fill="currentColor">{escape(name)}'
                         f'<title>{escape(s.name)}</title></text>')
    parts.append("</svg>")
    return "".join(parts)
