"""A run's quality as every report reads it: the labels, the per-model figures with intervals, and each case's
pass/fail per model with the first failing check.

Plain data from the dict :meth:`tryouts.store.Store.get_run` returns (docs/json.md); no formatting. The quality
summary is the one stored in the run's meta (``meta.quality``, what ``tryouts show RUN --format json`` prints)
and, for a run that has none, the same :func:`tryouts.scoring.summary.quality_report` that stored it, so a report
and ``show`` cannot disagree.
"""

from __future__ import annotations

from typing import Any

from ..scoring.summary import assert_verdict, first_failing, quality_report, quality_rows

__all__ = ["case_verdicts", "has_assertions", "pass_at_k_figures", "result_status", "run_labels", "run_quality"]


def run_labels(run: dict[str, Any]) -> list[str]:
    """Each model's label (the suite's, else its reference), in model order."""
    models = list(run.get("models") or [])
    labels = list((run.get("meta") or {}).get("labels") or [])
    return [labels[i] if i < len(labels) and labels[i] else m for i, m in enumerate(models)] + labels[len(models):]


def run_quality(data: dict[str, Any]) -> dict[str, Any]:
    """The run's quality summary: ``meta.quality`` when stored (a suite run, ``tryouts score``), else computed
    from its results' scores (:func:`~tryouts.scoring.summary.quality_report`: the same shape)."""
    stored = (data["run"].get("meta") or {}).get("quality")
    if stored:
        return stored
    return quality_report(quality_rows(data["results"]), run_labels(data["run"]))


def pass_at_k_figures(entry: dict[str, Any] | None) -> list[tuple[int, float | None, float | None]]:
    """A model's ``pass_at_k`` (from :func:`run_quality`) as ``(k, pass@k, pass^k)`` rows in k order. Keys are
    integers when computed and strings when read back from the stored JSON: both are read."""
    if not entry:
        return []
    at, hat = entry.get("pass@k") or {}, entry.get("pass^k") or {}
    ks = sorted({int(k) for k in at} | {int(k) for k in hat})

    def get(d: dict[Any, Any], k: int) -> float | None:
        v = d.get(k, d.get(str(k)))
        return None if v is None else float(v)

    return [(k, get(at, k), get(hat, k)) for k in ks]


def has_assertions(results: list[dict[str, Any]]) -> bool:
    """Whether any result carries an assertion verdict (``scores.assert``)."""
    return any(isinstance(r.get("scores"), dict) and r["scores"].get("assert") for r in results)


def result_status(r: dict[str, Any]) -> str:
    """What happened to one result: ``request failed`` (no answer), ``assertion failed``, ``passed`` (its
    assertions held) or ``ok`` (an answer, nothing checked)."""
    if not r.get("ok"):
        return "request failed"
    verdict = assert_verdict(r)
    if verdict.startswith("failed"):
        return "assertion failed"
    return "passed" if verdict == "passed" else "ok"


def case_verdicts(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case (in case order) with each model's outcome over its repeats.

    Returns ``[{"case_index", "case" (the stored case: prompt_id, case_id, vars, expected), "models":
    {model_index: {"results", "request_failed", "checked", "passed", "first_check", "first_error"}}}]``:
    ``checked`` counts the results that carry assertions and ``passed`` those whose assertions all held (a failed
    request is checked and fails, as in the pass rate); ``first_check`` is the first failing check of the first
    answer that failed one (``type failed (reason)``), ``first_error`` the first failed request's error.
    """
    cases: dict[int, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (r.get("case_index") or 0, r.get("model_index") or 0,
                                            r.get("repeat_index") or 0, r.get("id") or 0)):
        ci, mi = int(r.get("case_index") or 0), int(r.get("model_index") or 0)
        entry = cases.setdefault(ci, {"case_index": ci, "case": r.get("case") or {}, "models": {}})
        m = entry["models"].setdefault(mi, {"results": 0, "request_failed": 0, "checked": 0, "passed": 0,
                                            "first_check": None, "first_error": None})
        m["results"] += 1
        if not r.get("ok"):
            m["request_failed"] += 1
            if m["first_error"] is None:
                m["first_error"] = str(r.get("error") or r.get("error_kind") or "no message")
        check = r["scores"].get("assert") if isinstance(r.get("scores"), dict) else None
        if check:
            m["checked"] += 1
            if check.get("passed"):
                m["passed"] += 1
            elif m["first_check"] is None and r.get("ok"):
                m["first_check"] = first_failing(check)
    return [cases[k] for k in sorted(cases)]
