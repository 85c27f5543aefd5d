"""Two runs compared, as GitHub-flavoured Markdown: what a CI job posts as its summary.

``tryouts diff A B --format markdown`` (or ``--baseline``) renders :func:`tryouts.report.diff_runs` plus
:func:`tryouts.report.regression.regression` as a verdict line, the assertions table (pass rates A → B with the
paired test), the cases that flipped, the timing and cost deltas and the warnings. Labels, case names and
warnings come from suite files and model references: every one is escaped (:func:`md`), so a label cannot
add a link, an image, HTML or a table cell to the summary.
"""

from __future__ import annotations

import re
from typing import Any

from ..labels import short_label
from .safe_text import visible_controls

__all__ = ["code", "diff_markdown", "md"]

#: flipped cases listed per model before "and N more"
FLIPS_SHOWN = 20

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def md(value: Any, limit: int = 200) -> str:
    """``value`` as inert Markdown text on one line: ``<``, ``>`` and ``&`` as entities, every Markdown
    punctuation backslash-escaped, line breaks as spaces, control characters (ESC, bidi overrides...) as visible
    escapes (:func:`~tryouts.report.safe_text.visible_controls`), at most ``limit`` characters."""
    text = visible_controls(" ".join(str(value).split()))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def code(value: Any, limit: int = 200) -> str:
    """``value`` as a Markdown code span on one line (its backticks replaced: a span cannot be closed early;
    control characters as visible escapes)."""
    text = visible_controls(" ".join(str(value).replace("`", "'").split()))
    return f"`{text[: limit - 1] + '…' if len(text) > limit else text}`"


def _rate(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:+,.1f}"


def _usd(x: str | None) -> str:
    return "unknown" if x is None else f"${float(x):,.6f}".rstrip("0").rstrip(".")


def diff_markdown(result: dict[str, Any], *, fail_on_regression: bool = False) -> str:
    """The diff and regression report (``result`` as ``tryouts diff --format json`` prints it) as Markdown."""
    reg = result.get("regression") or {"models": [], "regressed": [], "warnings": []}
    out = [f"### Tryouts: {code(result['run_b'])} against {code(result['run_a'])}", ""]
    if reg["regressed"]:
        names = ", ".join(md(short_label(m)) for m in reg["regressed"])
        gate = " (the job fails: --fail-on-regression)" if fail_on_regression else ""
        out.append(f"**Regression:** {names}: a lower pass rate that the paired test supports{gate}.")
    elif any(m["cases"] for m in reg["models"]):
        out.append("**No supported regression** in the assertion pass rates.")
    else:
        out.append("No model with assertions in both runs: only outputs, timing and cost are compared.")
    out.append("")
    rows = [m for m in reg["models"] if m["cases"]]
    if rows:
        out += ["| Model | Cases | Pass A | Pass B | Δ [95% CI] | p | Verdict | Cost A → B |",
                "|---|--:|--:|--:|--:|--:|---|--:|"]
        for m in rows:
            c = m.get("comparison") or {}
            diff = "–" if c.get("diff") is None else f"{c['diff']:+.2f}"
            if c.get("low") is not None:
                diff += f" [{c['low']:+.2f}, {c['high']:+.2f}]"
            p = "–" if c.get("p_value") is None else f"{c['p_value']:.3f}"
            verdict = md(c.get("verdict") or "–")
            out.append(f"| {md(short_label(m['model']))} | {m['cases']} | {_rate(m['pass_rate_a'])} | "
                       f"{_rate(m['pass_rate_b'])} | {diff} | {p} | {'**' + verdict + '**' if m['regressed'] else verdict} | "
                       f"{_usd(m['cost_usd_a'])} → {_usd(m['cost_usd_b'])} |")
        out.append("")
        for m in rows:
            for key, what in (("flipped_to_fail", "pass → fail"), ("flipped_to_pass", "fail → pass")):
                cases = m[key]
                if cases:
                    shown = ", ".join(code(c, 80) for c in cases[:FLIPS_SHOWN])
                    more = f" and {len(cases) - FLIPS_SHOWN} more" if len(cases) > FLIPS_SHOWN else ""
                    out.append(f"- {md(short_label(m['model']))}, {what} ({len(cases)}): {shown}{more}")
        if any(m["flipped_to_fail"] or m["flipped_to_pass"] for m in rows):
            out.append("")
    if result["models"]:
        out += ["| Model | Outputs changed | Status changed | ΔTTFT p50 ms | ΔE2E p50 ms | ΔCost USD |",
                "|---|--:|--:|--:|--:|--:|"]
        for m in result["models"]:
            cost = _usd(m["cost_usd_delta_total"])
            if m["cost_unknown_pairs"]:
                cost += f" ({m['cost_unknown_pairs']} unknown)"
            out.append(f"| {md(short_label(m['model']))} | {m['n_changed']}/{m['n_matched']} | "
                       f"{m['n_status_changed']} | {_ms(m['ttft_ms_delta_p50'])} | {_ms(m['e2e_ms_delta_p50'])} | "
                       f"{cost} |")
        out.append("")
    for w in reg["warnings"]:
        out.append(f"> ⚠ {md(w, 400)}")
    return "\n".join(out).rstrip() + "\n"
