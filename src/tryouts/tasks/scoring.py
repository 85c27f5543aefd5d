"""Scores of each answer, and the report of a task run: metrics per model, intervals, paired comparisons.

Each stored result gets a ``scores["task"]`` mapping (its prediction and per-answer scores); the report
aggregates them per model. Intervals are 95% percentile-bootstrap intervals over cases: of the mean for
per-answer scores (a case's value is the mean over its repeats), and of the statistic itself for corpus
metrics (macro-F1, entity micro F1, corpus BLEU/chrF: recomputed from the resampled cases' counts).
Comparisons pair model N with model 1 on the same cases.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .data import Dataset, Entity, TaskCase
from .metrics import (
    classification_metrics,
    entity_counts,
    entity_prf,
    macro_f1,
    pass_k_table,
    prf,
    sentence_f1,
)
from .prompts import parse_answer

__all__ = [
    "CORPUS_METRICS",
    "METRIC_TITLES",
    "build_report",
    "corpus_intervals",
    "interval_metrics",
    "metric_title",
    "primary_metric",
    "score_answer",
]

#: interval metric -> the per-answer score it averages
_SOURCE = {"accuracy": "correct", "pass@1": "passed", "mrr": "rr"}


#: how a metric is headed in tables (the CLI and the dashboard)
METRIC_TITLES = {
    "accuracy": "Accuracy",
    "sentence_f1": "Sentence F1",
    "chrf": "chrF",
    "bleu": "BLEU",
    "rougeL": "ROUGE-L",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "pass@1": "pass@1",
    "mrr": "MRR",
    "spearman": "Spearman rho",
    "macro_f1": "Macro-F1",
    "entity_f1": "Entity F1",
    "corpus_chrf": "corpus chrF",
    "corpus_bleu": "corpus BLEU",
}


def metric_title(name: str) -> str:
    """A metric's heading in tables (its name when it has none)."""
    return METRIC_TITLES.get(name, name)


def interval_metrics(task: str, mode: str | None, ks: Sequence[int]) -> list[str]:
    """The per-case metrics that get a bootstrap interval, primary first."""
    if task == "embeddings":
        return [f"recall@{k}" for k in ks] + ["mrr"] if mode == "retrieval" else []
    return {
        "classification": ["accuracy"],
        "ner": ["sentence_f1"],
        "translation": ["chrf", "bleu"],
        "summarization": ["rougeL", "rouge1", "rouge2"],
        "code": ["pass@1"],
    }[task]


def primary_metric(task: str, mode: str | None, ks: Sequence[int]) -> str:
    """The metric compared between models."""
    if task == "embeddings" and mode == "sts":
        return "spearman"
    return interval_metrics(task, mode, ks)[0]


def score_answer(
    task: str,
    text: str,
    ok: bool,
    *,
    pipeline: bool,
    case: TaskCase,
    data: Dataset,
    sandbox: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``scores["task"]`` of one answer. A failed request scores as an empty answer (wrong, zero), with
    ``valid`` None: it is counted as failed, not as an answer in the wrong form."""
    from ..scoring.reference import bleu, chrf, rouge

    if task == "code":
        outcome = sandbox or {"status": "error", "passed": False}
        return {
            "valid": bool(sandbox) if ok else None,
            "status": outcome["status"],
            "passed": 1.0 if outcome["passed"] else 0.0,
            "duration_ms": outcome.get("duration_ms"),
            "stderr": (outcome.get("stderr") or "")[-500:],
        }
    pred, valid = parse_answer(task, text, pipeline=pipeline, case=case, data=data) if ok else (None, None)
    if task == "classification":
        return {"pred": pred, "valid": valid, "correct": 1.0 if pred == case.gold else 0.0}
    if task == "ner":
        pred = pred or []
        tp, fp, fn = entity_counts(case.gold, pred)
        return {
            "pred": [e.as_dict() for e in pred],
            "valid": valid,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "sentence_f1": sentence_f1(case.gold, pred),
        }
    pred = pred or ""
    if task == "translation":
        return {"pred": pred, "valid": valid, "bleu": bleu(pred, case.gold), "chrf": chrf(pred, case.gold)}
    if task == "summarization":
        return {"pred": pred, "valid": valid, **rouge(pred, case.gold)}
    raise ValueError(f"score_answer does not score {task} answers")


def _corpus_text_metrics(hyps: list[str], refs: list[str]) -> dict[str, float]:
    import sacrebleu

    return {
        "corpus_bleu": float(sacrebleu.corpus_bleu(hyps, [refs]).score),
        "corpus_chrf": float(sacrebleu.corpus_chrf(hyps, [refs]).score),
    }


def _ops(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Failures, median latency and cost of a model's stored results."""
    e2e = [r["e2e_ms"] for r in rows if r.get("ok") and not r.get("cached") and r.get("e2e_ms") is not None]
    costs = [r.get("cost_usd") for r in rows]
    return {
        "results": len(rows),
        "failed": sum(not r.get("ok") for r in rows),
        "e2e_ms_p50": statistics.median(e2e) if e2e else None,
        "cost_usd": None if any(c is None for c in costs) else float(sum(costs)),
        "cost_source": "local" if rows and all(r.get("cost_source") == "local" for r in rows) else None,
        "first_error": next((r.get("error") for r in rows if not r.get("ok")), None),
    }


def _model_metrics(
    task: str, data: Dataset, scored: dict[tuple[int, int], dict[str, Any]], ks: Sequence[int]
) -> dict[str, Any]:
    """Corpus-level metrics of one model from its answers' scores keyed by (case, repeat)."""
    cases = {c.index: c for c in data.cases}
    keys = sorted(scored)
    if task == "classification":
        return classification_metrics(
            [cases[c].gold for c, _ in keys], [scored[k]["pred"] for k in keys], data.labels
        )
    if task == "ner":
        gold = [cases[c].gold for c, _ in keys]
        pred = [[Entity(e["text"], e["label"]) for e in scored[k]["pred"]] for k in keys]
        return entity_prf(gold, pred)
    if task == "translation":
        return _corpus_text_metrics([scored[k]["pred"] for k in keys], [cases[c].gold for c, _ in keys])
    if task == "code":
        per_case: dict[int, list[float]] = {}
        for (c, _), s in scored.items():
            per_case.setdefault(c, []).append(s["passed"])
        counts = [(len(v), int(sum(v))) for _, v in sorted(per_case.items())]
        return {
            "pass_k": pass_k_table(counts, ks),
            "outcomes": dict(Counter(s["status"] for s in scored.values())),
        }
    if task == "embeddings" and data.mode == "sts":
        from ..scoring.embedding import sts_spearman

        sims = [scored[k].get("similarity") for k in keys]
        if not sims or any(v is None for v in sims):  # the model failed
            return {"spearman": {"n": len(sims), "rho": None, "low": None, "high": None}}
        return {"spearman": sts_spearman(sims, [cases[c].gold for c, _ in keys])}
    return {}


#: corpus metrics with an interval, per task (the name in ``intervals``, and in ``metrics`` where it differs)
CORPUS_METRICS = {
    "classification": ["macro_f1"],
    "ner": ["entity_f1"],
    "translation": ["corpus_chrf", "corpus_bleu"],
}


def _sacrebleu_metric(name: str) -> Any:
    from sacrebleu.metrics import BLEU, CHRF

    return BLEU() if name == "corpus_bleu" else CHRF()


def _case_counts(task: str, name: str, data: Dataset, scored: dict[tuple[int, int], dict[str, Any]]) -> list:
    """Per case (in case order, only the cases this model answered), the counts its corpus metric sums:
    the case's confusion-matrix cells, its entity (tp, fp, fn), or sacrebleu's sentence statistics —
    summed over the case's repeats."""
    import numpy as np

    cases = {c.index: c for c in data.cases}
    keys = sorted(scored)
    if task == "classification":
        labels = data.labels
        width = len(labels) + 1
        rows = []
        for key in keys:
            row = np.zeros(len(labels) * width)
            pred = scored[key]["pred"]
            column = labels.index(pred) if pred is not None else len(labels)
            row[labels.index(cases[key[0]].gold) * width + column] = 1
            rows.append(row)
    elif task == "ner":
        rows = [np.array([scored[k]["tp"], scored[k]["fp"], scored[k]["fn"]], dtype=float) for k in keys]
    else:
        stats = _sacrebleu_metric(name)._extract_corpus_statistics(
            [scored[k]["pred"] for k in keys], [[cases[c].gold for c, _ in keys]]
        )
        rows = [np.asarray(st, dtype=float) for st in stats]
    by_case: dict[int, Any] = {}
    for (c, _), row in zip(keys, rows, strict=True):
        by_case[c] = by_case[c] + row if c in by_case else row
    return [by_case[c] for c in sorted(by_case)]


def _corpus_statistic(task: str, name: str, data: Dataset) -> Any:
    """Maps summed counts (see :func:`_case_counts`) to the corpus metric."""
    if task == "classification":
        size = len(data.labels)
        return lambda total: macro_f1(total.reshape(size, size + 1).tolist())
    if task == "ner":
        return lambda total: prf(*total)["f1"]
    metric = _sacrebleu_metric(name)
    return lambda total: float(metric._compute_score_from_stats(list(total)).score)


def corpus_intervals(
    task: str, data: Dataset, scored: dict[tuple[int, int], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The corpus metrics of one model with 95% bootstrap intervals over cases (cases resampled with
    their repeats; the metric recomputed from each resample's summed counts)."""
    from ..scoring.statistics import bootstrap_statistic

    if not scored:
        return {name: {"n": 0, "mean": None, "low": None, "high": None} for name in CORPUS_METRICS.get(task, [])}
    return {
        name: bootstrap_statistic(_case_counts(task, name, data, scored), _corpus_statistic(task, name, data))
        for name in CORPUS_METRICS.get(task, [])
    }


def _per_case(scored: dict[tuple[int, int], dict[str, Any]], key: str, n_cases: int) -> list[float]:
    """A case's value: the mean over its repeats (a missing answer scores 0)."""
    values: dict[int, list[float]] = {i: [] for i in range(n_cases)}
    for (c, _), s in scored.items():
        values[c].append(float(s.get(key) or 0.0))
    return [sum(v) / len(v) if v else 0.0 for _, v in sorted(values.items())]


def build_report(
    task: str,
    data: Dataset,
    models: Sequence[dict[str, Any]],
    scored: Sequence[dict[tuple[int, int], dict[str, Any]]],
    rows: Sequence[Sequence[dict[str, Any]]],
    *,
    repeats: int,
    ks: Sequence[int],
) -> dict[str, Any]:
    """The task report stored in the run's meta and printed by ``eval-task`` and ``show``.

    Args:
        models: per model ``{"model": ref, "route": "pipeline" | "prompt" | "embedding"}``.
        scored: per model, the ``scores["task"]`` of each answer keyed by ``(case_index, repeat_index)``.
        rows: per model, its stored results (for failures, latency and cost).
    """
    from ..scoring.statistics import MIN_BOOTSTRAP_CASES, bootstrap_mean, paired_comparison
    from .metrics import paired_spearman

    names = interval_metrics(task, data.mode, ks)
    primary = primary_metric(task, data.mode, ks)
    n = len(data.cases)
    out_models = []
    per_case_primary = []
    for m, info in enumerate(models):
        s = scored[m]
        intervals = {name: bootstrap_mean(_per_case(s, _SOURCE.get(name, name), n)) for name in names}
        intervals |= corpus_intervals(task, data, s)
        metrics = _model_metrics(task, data, s, ks)
        if primary == "spearman":
            intervals["spearman"] = {k: metrics["spearman"][k] for k in ("n", "low", "high")} | {
                "mean": metrics["spearman"]["rho"]
            }
        out_models.append(
            {
                "index": m,
                **info,
                **_ops(rows[m]),
                "invalid": sum(1 for v in s.values() if v.get("valid") is False),
                "intervals": intervals,
                "metrics": metrics,
            }
        )
        per_case_primary.append(
            _per_case(s, _SOURCE.get(primary, primary), n) if primary != "spearman" else None
        )
    comparisons = []
    for m in range(1, len(models)):
        base = {
            "baseline": models[0]["model"],
            "model": models[m]["model"],
            "model_index": m,
            "metric": primary,
        }
        if primary == "spearman":
            keys = sorted(scored[0])
            gold = [data.cases[c].gold for c, _ in keys]
            a = [scored[0][k].get("similarity") for k in keys]
            b = [scored[m].get(k, {}).get("similarity") for k in keys]
            if any(v is None for v in a + b):  # a model failed: nothing to compare
                stats = {"n": len(keys), "diff": None, "low": None, "high": None, "p_value": None, "test": None,
                         "min_cases": MIN_BOOTSTRAP_CASES, "verdict": None, "significant": False}
            else:
                stats = paired_spearman(a, b, gold)
            comparisons.append({**base, **stats})
        else:
            comparisons.append({**base, **paired_comparison(per_case_primary[0], per_case_primary[m])})
    return {
        "task": task,
        "mode": data.mode,
        "data": str(data.path),
        "n_cases": n,
        "repeats": repeats,
        "ks": list(ks),
        "labels": data.labels,
        "primary": primary,
        "models": out_models,
        "comparisons": comparisons,
    }
