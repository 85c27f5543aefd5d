"""Statistics over stored results: percentiles, descriptions and a per-model summary.

Pure arithmetic over the flat result dicts of docs/json.md (no CLI, no store). Cached results are never
timing samples (docs/metrics.md, pitfall 1): they count in ``n`` and ``cached`` but feed no timing,
speed or token statistics.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

#: the figures :func:`summarize` describes per model, each a field of the flat result
TIMING_FIELDS = ("ttft_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s", "output_tokens")
#: the stored fields a run's summary and quality report read (Store.results(columns=...)): a summary of a
#: 100,000-cell run reads these, not every output and request
SUMMARY_FIELDS = ["model_index", "case_index", "repeat_index", "model", "ok", "cached", "error_kind", *TIMING_FIELDS,
                  "cost_total", "scores", "timing_valid", "batch", "error", "case"]

_PER_1K_PLACES = Decimal("1e-12")


def _clean(values: Iterable[Any]) -> list[float]:
    """The numbers among ``values``: None and NaN dropped."""
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if not math.isnan(f):
            out.append(f)
    return out


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation, like ``numpy.percentile``'s default.

    None values are ignored; an empty input gives None.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, not {q!r}")
    xs = sorted(_clean(values))
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


def describe(values: Iterable[float | None]) -> dict[str, Any]:
    """``{n, mean, std, p50, p90, p95, p99}`` of the non-None values.

    ``std`` is the sample standard deviation (0.0 for a single value). With no values, ``n`` is 0
    and every other figure is None.
    """
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "p50": None, "p90": None, "p95": None, "p99": None}
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "p50": percentile(xs, 50),
        "p90": percentile(xs, 90),
        "p95": percentile(xs, 95),
        "p99": percentile(xs, 99),
    }


def to_decimal(value: Any) -> Decimal | None:
    """A cost as Decimal (from a decimal string, int or Decimal), or None when unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def decimal_str(value: Decimal | None) -> str | None:
    """A Decimal as a plain decimal string (never exponent notation), or None."""
    if value is None:
        return None
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def result_cost(r: dict[str, Any]) -> Decimal | None:
    """The exact cost of one flat result (``cost_usd_exact``, else ``cost_usd``), None when unknown."""
    exact = r.get("cost_usd_exact")
    return to_decimal(exact if exact is not None else r.get("cost_usd"))


def summarize(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per model, in ``model_index`` order.

    Each: ``model_index``, ``model`` and ``label`` (the model reference), ``n`` results, ``failures``,
    ``cached``; :func:`describe` of ``ttft_ms``, ``tpot_ms``, ``e2e_ms``, ``output_tokens_per_s`` and
    ``output_tokens`` over successful, non-cached results whose timing is valid (``timing_excluded``: how many
    others were left out, run beside other work on a shared node; ``batch``: how many were answered by a batch
    API, which has no timings); ``cost_total_usd`` (exact sum of the known
    costs, a decimal string; None when no cost is known, never a made-up 0), ``cost_unknown`` (successful
    results whose cost is unknown) and ``cost_per_1k_requests_usd`` (mean known cost of successful, non-cached
    results × 1000, a decimal string, or None when none is known). ``results`` is read once: a generator of a
    big run's rows (Store.iter_results) keeps memory to a few numbers per row.
    """
    acc = Summarizer()
    for r in results:
        acc.add(r)
    return acc.summaries()


class _Model:
    __slots__ = ("batch", "cached", "cost_n", "costs", "excluded", "failures", "known", "n", "passes", "per_request",
                 "timed", "unknown")

    def __init__(self) -> None:
        self.n = self.failures = self.cached = self.excluded = self.unknown = self.cost_n = self.batch = 0
        self.known = False
        self.costs = self.per_request = Decimal(0)
        self.timed = {name: array("d") for name in TIMING_FIELDS}  # 8 bytes a value
        self.passes: list[float] = []


class Summarizer:
    """:func:`summarize` one row at a time (``add``), keeping numbers rather than rows."""

    def __init__(self) -> None:
        self._models: dict[tuple[int, str], _Model] = {}

    def add(self, r: dict[str, Any]) -> None:
        key = (int(r.get("model_index") or 0), str(r.get("model")))
        m = self._models.get(key)
        if m is None:
            m = self._models[key] = _Model()
        ok, cached = bool(r.get("ok")), bool(r.get("cached"))
        m.n += 1
        m.failures += not ok
        m.cached += cached
        cost = result_cost(r)
        if cost is not None:
            m.known, m.costs = True, m.costs + cost
            if ok and not cached:
                m.per_request += cost
                m.cost_n += 1
        elif ok:
            m.unknown += 1
        if ok and not cached:
            if r.get("batch"):  # answered by a batch API: no timings at all
                m.batch += 1
            elif r.get("timing_valid") is False:  # run beside other work on a shared node: no speed sample
                m.excluded += 1
            else:
                for name in TIMING_FIELDS:
                    v = r.get(name)
                    if v is not None and not math.isnan(float(v)):
                        m.timed[name].append(float(v))
        a = (r.get("scores") or {}).get("assert")
        if a:
            m.passes.append(1.0 if a["passed"] else 0.0)

    def summaries(self) -> list[dict[str, Any]]:
        out = []
        for (index, ref), m in sorted(self._models.items(), key=lambda kv: kv[0]):
            per_1k = None
            if m.cost_n:
                per_1k = decimal_str((m.per_request / m.cost_n * 1000).quantize(_PER_1K_PLACES))
            summary: dict[str, Any] = {"model_index": index, "model": ref, "label": ref, "n": m.n,
                                       "failures": m.failures, "cached": m.cached, "timing_excluded": m.excluded,
                                       "batch": m.batch}
            for name in TIMING_FIELDS:
                summary[name] = describe(m.timed[name])
            summary["cost_total_usd"] = decimal_str(m.costs) if m.known else None
            summary["cost_unknown"] = m.unknown
            summary["cost_per_1k_requests_usd"] = per_1k
            if m.passes:  # the share of cases whose assertions all passed, with a bootstrap 95% interval
                from .scoring.statistics import bootstrap_mean

                summary["assert_pass_rate"] = bootstrap_mean(m.passes)
            out.append(summary)
        return out


def sampling_text(sampling: dict[str, Any] | None) -> str:
    """``greedy (temperature 0)``, or each parameter with its value, marking defaults and unknown server defaults."""
    if not sampling:
        return "not recorded"
    if sampling.get("temperature") == 0:
        return "greedy (temperature 0)"
    defaults = set(sampling.get("defaults") or ())
    parts = []
    for name in ("temperature", "top_p", "top_k", "min_p"):
        if name not in sampling:
            continue
        value = sampling[name]
        if value is None:
            parts.append(f"{name} = the server's default" if name in defaults else "")
        else:
            parts.append(f"{name} {value:g}" + (" (default)" if name in defaults else ""))
    return ", ".join(p for p in parts if p) or "the provider's defaults"
