"""A run against its baseline: the cases that flipped pass→fail and fail→pass, and each model's quality and cost
deltas with a paired test, so that a CI gate fails only on a difference the cases support.

A case's score is the share of its repeats whose assertions all passed (a failed request fails its checks).
Per model matched in both runs (the same suite label, else the same reference), over the cases both runs have: ``flipped_to_fail`` and
``flipped_to_pass`` (case labels), the paired comparison of B against A
(:func:`tryouts.scoring.statistics.paired_comparison`: a bootstrap with an interval from 20 cases, else an
exact permutation test), ``regressed`` (B is worse and the test supports it), and the cost delta. The runs'
generation parameters and options are compared too: ``warnings`` says where they differ, because then the
runs do not measure the same thing.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from ..stats import decimal_str, result_cost
from .diff import case_key, case_label

__all__ = ["regression"]


def _name(run: dict[str, Any], r: dict[str, Any]) -> str:
    """A result's model as the two runs share it: its suite label (a model upgraded under the same label is
    the same model to a baseline), else its reference."""
    labels = (run["run"].get("meta") or {}).get("labels") or []
    m = r.get("model_index") or 0
    return str(labels[m]) if m < len(labels) else r["model"]


def _scores(run: dict[str, Any]) -> dict[str, dict[Any, float]]:
    """Per model, per case: the share of repeats that passed their assertions (cases with checks)."""
    sums: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in run["results"]:
        check = (r.get("scores") or {}).get("assert") if isinstance(r.get("scores"), dict) else None
        if check is not None:
            sums[_name(run, r)][case_key(r)].append(1.0 if check.get("passed") and r.get("ok") else 0.0)
    return {m: {c: sum(v) / len(v) for c, v in cases.items()} for m, cases in sums.items()}


def _settings(run: dict[str, Any]) -> dict[str, Any]:
    """Per model reference: the generation parameters and options its results were asked with."""
    out: dict[str, Any] = {}
    for r in run["results"]:
        out.setdefault(_name(run, r), ((r.get("request") or {}).get("params"), r.get("options"), r["model"]))
    return out


def regression(a: dict[str, Any], b: dict[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Run ``b`` against its baseline ``a`` (each as :meth:`Store.get_run` returns it); see the module docstring.

    Returns ``{"baseline", "run", "models": [...], "regressed": [model refs], "warnings": [...]}``; each model:
    ``model``, ``cases`` (compared), ``pass_rate_a``, ``pass_rate_b``, ``flipped_to_fail``, ``flipped_to_pass``,
    ``comparison`` (the paired test of B − A), ``regressed``, ``cost_usd_a``, ``cost_usd_b`` (decimal strings over
    the known costs; None when none is known).
    """
    from ..scoring.statistics import paired_comparison

    sa, sb = _scores(a), _scores(b)
    models = []
    for ref in [m for m in sb if m in sa]:
        common = [c for c in sb[ref] if c in sa[ref]]
        xa, xb = [sa[ref][c] for c in common], [sb[ref][c] for c in common]
        comparison = paired_comparison(xa, xb, seed=seed) if common else None
        worse = bool(comparison and comparison["significant"] and comparison["diff"] < 0)
        models.append({
            "model": ref, "cases": len(common),
            "pass_rate_a": sum(xa) / len(xa) if xa else None, "pass_rate_b": sum(xb) / len(xb) if xb else None,
            "flipped_to_fail": [case_label(c) for c in common if sa[ref][c] == 1.0 and sb[ref][c] < 1.0],
            "flipped_to_pass": [case_label(c) for c in common if sa[ref][c] < 1.0 and sb[ref][c] == 1.0],
            "comparison": comparison, "regressed": worse,
            "cost_usd_a": _cost(a, ref), "cost_usd_b": _cost(b, ref),
        })
    warnings = []
    ka, kb = _settings(a), _settings(b)
    for ref in [m for m in kb if m in ka]:
        if ka[ref][0] != kb[ref][0]:
            pa, pb = ka[ref][0] or {}, kb[ref][0] or {}
            changed = ", ".join(f"{k} {pa.get(k)} → {pb.get(k)}" for k in sorted({*pa, *pb}) if pa.get(k) != pb.get(k))
            warnings.append(f"{ref}: the generation parameters differ ({changed}): the runs may not measure the "
                            "same thing")
        if ka[ref][1] != kb[ref][1]:
            warnings.append(f"{ref}: the model options differ between the runs")
        if ka[ref][2] != kb[ref][2]:
            warnings.append(f"{ref}: a different model under the same label ({ka[ref][2]} in the baseline, "
                            f"{kb[ref][2]} now)")
    missing = [m for m in sa if m not in sb]
    if missing:
        warnings.append(f"in the baseline only: {', '.join(missing)}")
    if not models:
        warnings.append("no model with assertions is in both runs: nothing to compare")
    return {"baseline": a["run"]["id"], "run": b["run"]["id"], "models": models,
            "regressed": [m["model"] for m in models if m["regressed"]], "warnings": warnings}


def _cost(run: dict[str, Any], ref: str) -> str | None:
    known = [c for r in run["results"] if _name(run, r) == ref and (c := result_cost(r)) is not None]
    return decimal_str(sum(known, Decimal(0))) if known else None
