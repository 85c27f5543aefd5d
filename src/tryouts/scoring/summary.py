"""Quality of a run per model, with intervals, and paired comparisons between models on the same cases.

Every result may carry several quality figures (its ``scores``). Each becomes a per-result value in [0, 1]
or on its own scale:

* ``pass``: 1 when the case's assertions all passed, else 0;
* ``judge``: the rubric judge's score, normalized to [0, 1] over the rubric's scale;
* ``embedding``: cosine similarity to the expected answer;
* ``custom:NAME``: a custom scorer's score;
* ``token_f1``: token F1 against the expected answer.

The **unit of analysis is the case**: a model's repeats of one case are averaged first, so a case answered
five times does not weigh five times. A model's figure is the mean over cases with a bootstrap 95% interval.
Two models are compared on the cases both answered (:func:`tryouts.scoring.statistics.paired_comparison`):
from 20 cases on, a paired bootstrap of the per-case differences (the interval of the mean difference and a
two-sided p-value); below, an exact permutation test (p-value, no interval) and "too few cases to tell" when
even that cannot reach p < 0.05 (5 cases or fewer); and always an exact sign test. The **primary** metric,
shown in the summary table, is the first present in the order above. With repeats, pass@k and pass^k
(every one of k samples passes) are estimated per case without bias and averaged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

METRIC_ORDER = ("pass", "judge", "embedding", "custom", "token_f1")


def metric_values(r: dict[str, Any]) -> dict[str, float]:
    """The quality figures of one stored result."""
    s = r.get("scores") or {}
    out: dict[str, float] = {}
    if s.get("assert"):
        out["pass"] = 1.0 if s["assert"].get("passed") else 0.0
    if (s.get("judge") or {}).get("normalized") is not None:
        out["judge"] = float(s["judge"]["normalized"])
    ref = s.get("reference") or {}
    if ref.get("embedding") is not None:
        out["embedding"] = float(ref["embedding"])
    for name, v in sorted((s.get("custom") or {}).items()):
        if isinstance(v, dict) and v.get("score") is not None:
            out[f"custom:{name}"] = float(v["score"])
    if ref.get("token_f1") is not None:
        out["token_f1"] = float(ref["token_f1"])
    return out


def first_failing(check: dict[str, Any]) -> str:
    """The first failing assertion of a cell's ``scores.assert``, as ``type failed (reason)``."""
    for item in check.get("results") or ():
        if isinstance(item, dict) and not item.get("passed"):
            kind = item.get("type") or "check"
            reason = item.get("reason") or item.get("error") or ""
            return f"{kind} failed" + (f" ({reason})" if reason else "")
    return "an assertion failed"


def assert_verdict(r: dict[str, Any]) -> str:
    """A stored result's assertions in words: ``""`` (none), ``passed`` or ``failed: `` and the first failing
    check (:func:`first_failing`). A failed request is not a verdict: it is said by its ``ok``."""
    check = (r.get("scores") or {}).get("assert") if isinstance(r.get("scores"), dict) else None
    if not check:
        return ""
    return "passed" if check.get("passed") else "failed: " + first_failing(check)


def quality_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows :func:`quality_report` needs from a stream of a run's rows: those with scores, and one per model
    (so every model is listed). A big unscored run keeps a handful of rows, not all of them."""
    kept, seen = [], set()
    for r in rows:
        if r.get("scores") or r["model_index"] not in seen:
            kept.append(r)
            seen.add(r["model_index"])
    return kept


def _rank(metric: str) -> int:
    return METRIC_ORDER.index(metric.split(":")[0])


def per_case(results: list[dict[str, Any]]) -> dict[str, dict[int, dict[int, float]]]:
    """metric → model_index → case_index → the mean over that case's repeats."""
    sums: dict[str, dict[int, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in results:
        for metric, v in metric_values(r).items():
            sums[metric][int(r["model_index"])][int(r["case_index"])].append(v)
    return {m: {mi: {ci: sum(v) / len(v) for ci, v in cases.items()} for mi, cases in models.items()}
            for m, models in sums.items()}


def pass_at_k_table(results: list[dict[str, Any]], ks: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """model_index → {"n": samples per case, "pass@k": {k: mean}, "pass^k": {k: mean}} from assertion passes.

    Only cases with the same number of samples are compared (``n`` is the smallest); k runs over 1, the
    given ``ks`` and n.
    """
    from .statistics import pass_at_k, pass_hat_k

    samples: dict[int, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        a = (r.get("scores") or {}).get("assert")
        if a is not None:
            samples[int(r["model_index"])][int(r["case_index"])].append(bool(a.get("passed")))
    out: dict[int, dict[str, Any]] = {}
    for m, cases in samples.items():
        n = min(len(v) for v in cases.values())
        if n < 1:
            continue
        kset = sorted({1, n, *(k for k in (ks or []) if 1 <= k <= n)})
        at = {k: sum(pass_at_k(n, sum(v[:n]), k) for v in cases.values()) / len(cases) for k in kset}
        hat = {k: sum(pass_hat_k(n, sum(v[:n]), k) for v in cases.values()) / len(cases) for k in kset}
        out[m] = {"n": n, "cases": len(cases), "pass@k": at, "pass^k": hat}
    return out


def quality_report(results: list[dict[str, Any]], labels: list[str] | None = None,
                   baseline: int = 0) -> dict[str, Any]:
    """Per-model quality (mean and 95% interval per metric), pass@k, and each model paired with the baseline.

    Returns ``{"primary", "metrics", "per_model": [{model_index, label, metrics: {m: {n, mean, low, high}},
    pass_at_k}], "paired": [{metric, model_index, label, baseline, baseline_label, n, diff, low, high,
    p_value, test, min_cases, verdict, significant, sign_test: {...}}]}``; ``paired`` holds every metric,
    model 2.. against model ``baseline`` (``low``/``high`` are None below ``min_cases``: see
    :func:`tryouts.scoring.statistics.paired_comparison`).
    """
    from .statistics import bootstrap_mean, paired_comparison

    table = per_case(results)
    metrics = sorted(table, key=lambda m: (_rank(m), m))
    models = sorted({int(r["model_index"]) for r in results})
    labels = labels or []

    def label(i: int) -> str:
        return labels[i] if i < len(labels) else str(i)

    pak = pass_at_k_table(results)
    per_model = []
    for m in models:
        figures = {metric: bootstrap_mean(list(table[metric][m].values()))
                   for metric in metrics if m in table[metric]}
        per_model.append({"model_index": m, "label": label(m), "metrics": figures, "pass_at_k": pak.get(m)})
    paired = []
    for metric in metrics:
        base = table[metric].get(baseline)
        if not base:
            continue
        for m in models:
            other = table[metric].get(m)
            if m == baseline or not other:
                continue
            common = sorted(set(base) & set(other))
            if len(common) < 2:
                continue
            a, b = [base[c] for c in common], [other[c] for c in common]
            paired.append({"metric": metric, "model_index": m, "label": label(m), "baseline": baseline,
                           "baseline_label": label(baseline), **paired_comparison(a, b)})
    return {"primary": metrics[0] if metrics else None, "metrics": metrics, "per_model": per_model, "paired": paired}
