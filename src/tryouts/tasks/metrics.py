"""Task metrics on plain Python values: classification, entity matching, retrieval ranks, pass@k tables.

Intervals and paired tests come from :mod:`tryouts.scoring.statistics`; text metrics (BLEU, chrF, ROUGE)
from :mod:`tryouts.scoring.reference`; Spearman from :mod:`tryouts.scoring.embedding`. This module adds only
what those do not have.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .data import Entity

__all__ = [
    "classification_metrics",
    "entity_counts",
    "entity_key",
    "entity_prf",
    "label_scores",
    "macro_f1",
    "match_label",
    "paired_spearman",
    "pass_k_table",
    "prf",
    "recall_at_k",
    "sentence_f1",
]

_SPACES = re.compile(r"\s+")
_WRAPPING = " \t\r\n\"'`*_.,;:!?()[]{}<>"


def match_label(answer: str, labels: Sequence[str]) -> str | None:
    """The label ``answer`` names, or None.

    The answer matches a label when, after stripping surrounding whitespace, quotes, markdown emphasis and
    punctuation (``"Positive."`` -> ``Positive``), it equals the label ignoring case. Anything else (a
    sentence, two labels, an unseen label) is no answer: it counts as wrong and as ``(invalid)``.
    """
    cleaned = _SPACES.sub(" ", answer.strip(_WRAPPING)).casefold()
    for label in labels:
        if cleaned == _SPACES.sub(" ", label.strip()).casefold():
            return label
    return None


def classification_metrics(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall/F1 and the confusion matrix.

    ``pred[i]`` is None for an answer that named no label (wrong for accuracy; a false negative of its gold
    label, a false positive of none). Macro-F1 is the unweighted mean of the per-label F1 over ``labels``;
    a label's precision is 0 when it was never predicted. The matrix has a row per gold label and a column
    per predicted label, plus the column ``(invalid)``.
    """
    if len(gold) != len(pred):
        raise ValueError("gold and pred must have the same length")
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        matrix[index[g]][index[p] if p is not None else len(labels)] += 1
    per_label = dict(zip(labels, label_scores(matrix), strict=True))
    n = len(gold)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    return {
        "n": n,
        "accuracy": correct / n if n else None,
        "macro_f1": macro_f1(matrix),
        "per_label": per_label,
        "invalid": sum(p is None for p in pred),
        "confusion": {"labels": list(labels), "columns": [*labels, "(invalid)"], "matrix": matrix},
    }


def label_scores(matrix: Sequence[Sequence[float]]) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each label of a confusion matrix (rows: gold; columns: the
    labels in the same order, then ``(invalid)``)."""
    out = []
    for i, row in enumerate(matrix):
        tp = row[i]
        predicted = sum(r[i] for r in matrix)
        support = sum(row)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"precision": precision, "recall": recall, "f1": f1, "support": support})
    return out


def macro_f1(matrix: Sequence[Sequence[float]]) -> float | None:
    """The unweighted mean of the labels' F1 (None with no labels)."""
    scores = label_scores(matrix)
    return sum(v["f1"] for v in scores) / len(scores) if scores else None


def entity_key(entity: Entity) -> tuple[str, str]:
    """What must agree for two entities to match: the text (whitespace collapsed, case ignored), the type."""
    return _SPACES.sub(" ", entity.text.strip()).casefold(), entity.label.strip().upper()


def entity_counts(gold: Sequence[Entity], pred: Sequence[Entity]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one sentence, matching by :func:`entity_key`.

    Matching is exact and one-to-one (multisets): a predicted entity is a true positive when a gold entity
    not matched yet has the same text and type. A partial overlap (``New York`` for ``New York City``) or the
    right text with the wrong type is one false positive and one false negative.
    """
    g, p = Counter(map(entity_key, gold)), Counter(map(entity_key, pred))
    tp = sum((g & p).values())
    return tp, sum(p.values()) - tp, sum(g.values()) - tp


def sentence_f1(gold: Sequence[Entity], pred: Sequence[Entity]) -> float:
    """Entity F1 of one sentence; 1.0 when it has no gold entity and none was predicted."""
    tp, fp, fn = entity_counts(gold, pred)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def prf(tp: float, fp: float, fn: float) -> dict[str, Any]:
    """Precision, recall and F1 from true positive, false positive and false negative counts."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def entity_prf(gold: Sequence[Sequence[Entity]], pred: Sequence[Sequence[Entity]]) -> dict[str, Any]:
    """Entity-level micro precision, recall and F1 over all sentences, overall and per type."""
    totals = [0, 0, 0]
    by_type: dict[str, list[int]] = {}
    for g, p in zip(gold, pred, strict=True):
        for i, v in enumerate(entity_counts(g, p)):
            totals[i] += v
        for label in {entity_key(e)[1] for e in [*g, *p]}:
            counts = entity_counts(
                [e for e in g if entity_key(e)[1] == label], [e for e in p if entity_key(e)[1] == label]
            )
            acc = by_type.setdefault(label, [0, 0, 0])
            for i, v in enumerate(counts):
                acc[i] += v
    return {**prf(*totals), "per_type": {k: prf(*v) for k, v in sorted(by_type.items())}}


def recall_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Share of queries whose relevant document ranks ``k`` or better (ranks from 1; None: not ranked)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def _rho_rows(x, ry):
    """Spearman rho of each row of ``x`` with the centred, unit-norm ranks ``ry`` (0 for a constant row)."""
    import numpy as np
    from scipy.stats import rankdata

    r = rankdata(x, axis=1)
    r -= r.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(r, axis=1)
    return np.divide(r @ ry, norm, out=np.zeros(len(r)), where=norm > 0)


def _spearman_swap_p(xa, xb, y) -> float:
    """Exact two-sided p of the rho difference over all ``2**n`` swaps of the two models' scores within pairs.

    Under the null hypothesis the models are exchangeable on each pair. Swapping every pair negates the
    difference, so the half of the swaps that leave the last pair alone give the same p-value.
    """
    import numpy as np
    from scipy.stats import rankdata

    n = len(y)
    ry = rankdata(y) - (n + 1) / 2
    ry = ry / np.linalg.norm(ry)
    observed = abs(float(_rho_rows(xb[None], ry)[0] - _rho_rows(xa[None], ry)[0]))
    total, count, bits = 2 ** (n - 1), 0, np.arange(n - 1)
    for start in range(0, total, 1 << 16):
        codes = np.arange(start, min(total, start + (1 << 16)))
        swap = np.zeros((len(codes), n), dtype=bool)
        swap[:, : n - 1] = (codes[:, None] >> bits) & 1
        diff = _rho_rows(np.where(swap, xa, xb), ry) - _rho_rows(np.where(swap, xb, xa), ry)
        count += int(np.count_nonzero(np.abs(diff) >= observed - 1e-12))
    return count / total


def paired_spearman(
    a: Sequence[float],
    b: Sequence[float],
    gold: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    min_cases: int | None = None,
) -> dict[str, Any]:
    """The difference in Spearman correlation with ``gold``, model ``b`` minus ``a``, and its test.

    From ``min_cases`` pairs on (default :data:`tryouts.scoring.statistics.MIN_BOOTSTRAP_CASES`, 20): a
    paired bootstrap — the same resampled pairs score both models (the pairing is kept); the interval is the
    percentile interval of the resampled differences and the two-sided p-value comes from that distribution
    centred on zero, as in :func:`tryouts.scoring.statistics.paired_bootstrap`. Below: an exact permutation
    test over every swap of the two models' scores within pairs, and no interval (``low``/``high`` None);
    the verdict is "too few cases to tell" when that test cannot reach significance (5 pairs or fewer).

    Returns:
        ``{"n", "diff", "low", "high", "p_value", "test", "min_cases", "verdict", "significant"}`` (see
        :func:`tryouts.scoring.statistics.paired_comparison`); ``diff`` and the rest are None with fewer than
        3 pairs or a constant side (no correlation).
    """
    import numpy as np
    from scipy.stats import spearmanr

    from ..scoring.statistics import MIN_BOOTSTRAP_CASES, paired_verdict

    min_cases = MIN_BOOTSTRAP_CASES if min_cases is None else min_cases
    xa, xb, y = (np.asarray(v, dtype=float) for v in (a, b, gold))
    n = len(y)
    if not len(xa) == len(xb) == n:
        raise ValueError("a, b and gold must have the same length")
    out = {
        "n": n,
        "diff": None,
        "low": None,
        "high": None,
        "p_value": None,
        "test": None,
        "min_cases": min_cases,
        "verdict": None,
        "significant": False,
    }
    if n < 3 or np.ptp(y) == 0 or np.ptp(xa) == 0 or np.ptp(xb) == 0:  # a constant side: no correlation
        return out
    diff = float(spearmanr(xb, y).statistic - spearmanr(xa, y).statistic)
    if n < min_cases:
        out |= {"diff": diff, "p_value": _spearman_swap_p(xa, xb, y), "test": "exact permutation of rho"}
    else:
        out |= {"diff": diff, "low": diff, "high": diff, "p_value": 1.0, "test": "paired bootstrap of rho"}
        rng = np.random.default_rng(seed)
        diffs = []
        for _ in range(n_resamples):
            idx = rng.integers(0, n, n)
            if np.ptp(y[idx]) == 0 or np.ptp(xa[idx]) == 0 or np.ptp(xb[idx]) == 0:
                continue
            diffs.append(float(spearmanr(xb[idx], y[idx]).statistic - spearmanr(xa[idx], y[idx]).statistic))
        if diffs:
            arr = np.asarray(diffs)
            alpha = (1 - confidence) / 2
            low, high = np.quantile(arr, [alpha, 1 - alpha])
            extreme = int(np.count_nonzero(np.abs(arr - diff) >= abs(diff) - 1e-12))
            out |= {
                "low": float(low),
                "high": float(high),
                "p_value": min(1.0, (1 + extreme) / (1 + len(arr))),
            }
    out["verdict"], out["significant"] = paired_verdict(
        n, out["p_value"], out["low"], out["high"], out["test"], confidence
    )
    return out


def pass_k_table(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, dict[str, float | None]]:
    """Mean pass@k and pass^k over cases from per-case ``(samples, passed)``; None when k exceeds samples."""
    from ..scoring.statistics import pass_at_k, pass_hat_k

    table: dict[str, dict[str, float | None]] = {}
    for k in ks:
        usable = [(n, c) for n, c in counts if n >= k]
        ok = bool(counts) and len(usable) == len(counts)
        table[str(k)] = {
            "pass@k": sum(pass_at_k(n, c, k) for n, c in usable) / len(usable) if ok else None,
            "pass^k": sum(pass_hat_k(n, c, k) for n, c in usable) / len(usable) if ok else None,
        }
    return table
