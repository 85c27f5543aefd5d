"""Honest statistics for comparing models.

Pure functions on plain sequences, numpy (and scipy for the exact binomial
test) only. Every randomised procedure takes a ``seed`` and is deterministic
given it.

- :func:`bootstrap_mean` — percentile-bootstrap interval for a mean score.
- :func:`bootstrap_statistic` — the same for a corpus statistic (macro-F1, micro F1,
  corpus BLEU) computed from per-case counts.
- :func:`paired_comparison` — the comparison of two models on the same cases that the summaries store:
  a paired bootstrap from :data:`MIN_BOOTSTRAP_CASES` cases on, an exact permutation test below, and a
  verdict that never claims more than the test can say.
- :func:`paired_bootstrap` — paired bootstrap of the mean per-case difference.
- :func:`paired_permutation_test` — exact paired permutation (sign-flip) test over all ``2**n`` flips.
- :func:`sign_test` — exact two-sided sign test on per-case wins.
- :func:`pass_at_k` / :func:`pass_hat_k` — unbiased pass@k and pass^k.
- :func:`bradley_terry` — ratings from pairwise votes with bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MIN_BOOTSTRAP_CASES",
    "bootstrap_mean",
    "bootstrap_statistic",
    "bradley_terry",
    "exact_test_can_reject",
    "paired_bootstrap",
    "paired_comparison",
    "paired_permutation_test",
    "paired_verdict",
    "pass_at_k",
    "pass_hat_k",
    "sign_test",
]

_CHUNK = 1_000_000  # max resample-matrix cells materialised at once

#: Fewest paired cases for a bootstrap comparison. A percentile-bootstrap interval is too narrow on few cases
#: (it has no small-sample correction: on normal data a nominal 95% interval covers about 84% of the time
#: at 5 cases, 89% at 10, 93% at 20 and 94% at 30), and its p-value is meaningless on a handful (2 cases of
#: the same sign give p < 0.001). Below this, :func:`paired_comparison` uses the exact permutation test.
MIN_BOOTSTRAP_CASES = 20
_MAX_EXACT = 40  # an exact test enumerates 2**n sign flips, as two halves of 2**(n/2) sums

TOO_FEW = "too few cases to tell"
SUPPORTED = "a difference these cases support"
NOT_SUPPORTED = "no clear difference"


def _as_array(values: Iterable[float], name: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _check_common(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")


def _resampled_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` with-replacement resamples of ``x`` (chunked)."""
    n = x.size
    out = np.empty(n_resamples)
    step = max(1, _CHUNK // n)
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_mean(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean with a percentile-bootstrap confidence interval.

    Args:
        values: Per-case scores.
        confidence: Two-sided coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed for the random generator (results are deterministic given it).

    Returns:
        ``{"n", "mean", "low", "high"}``. With no values the mean and bounds are
        ``None``; with one value ``low == high == mean``.
    """
    _check_common(confidence, n_resamples)
    x = _as_array(values, "values")
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "low": mean, "high": mean}
    rng = np.random.default_rng(seed)
    low, high = _percentile_interval(_resampled_means(x, n_resamples, rng), confidence)
    return {"n": n, "mean": mean, "low": low, "high": high}


def bootstrap_statistic(
    counts: Sequence[Sequence[float]],
    statistic: Callable[[np.ndarray], float | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """A corpus statistic with a percentile-bootstrap interval over cases.

    Corpus metrics are not means of per-case scores: macro-F1 comes from the confusion matrix, micro F1
    from summed true/false positives, corpus BLEU from summed n-gram matches. Each is a function of the
    *sum* of per-case counts, so a resample of cases is a resample of rows of ``counts``; the statistic
    is recomputed on each resample's column sums (the way sacrebleu's own bootstrap works).

    Args:
        counts: One row per case (the case's counts, summed over its repeats), all rows the same length.
        statistic: Maps column sums to the metric (None where undefined, e.g. nothing to score).
        confidence: Two-sided coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples.
        seed: Seed for the random generator (results are deterministic given it).

    Returns:
        ``{"n", "mean", "low", "high"}`` where ``mean`` is the statistic on all cases (the key is shared
        with :func:`bootstrap_mean` so both print alike). No cases or an undefined statistic: ``None``s.
    """
    _check_common(confidence, n_resamples)
    x = np.asarray(counts, dtype=float)
    n = int(x.shape[0]) if x.ndim == 2 else 0
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    if not np.all(np.isfinite(x)):
        raise ValueError("counts contains non-finite values")
    point = statistic(x.sum(axis=0))
    if point is None:
        return {"n": n, "mean": None, "low": None, "high": None}
    point = float(point)
    if n == 1:
        return {"n": 1, "mean": point, "low": point, "high": point}
    rng = np.random.default_rng(seed)
    values = []
    step = max(1, _CHUNK // n)
    for start in range(0, n_resamples, step):
        rows = min(n_resamples, start + step) - start
        idx = rng.integers(0, n, size=(rows, n))
        # how often each case was drawn in each resample, then the resamples' sums as one product
        drawn = np.bincount((idx + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n).reshape(rows, n)
        values.extend(v for v in map(statistic, drawn @ x) if v is not None)
    if not values:
        return {"n": n, "mean": point, "low": None, "high": None}
    low, high = _percentile_interval(np.asarray(values, dtype=float), confidence)
    return {"n": n, "mean": point, "low": low, "high": high}


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xa = _as_array(a, "a")
    xb = _as_array(b, "b")
    if xa.size != xb.size:
        raise ValueError(f"paired scores must have equal length (got {xa.size} and {xb.size})")
    return xa, xb


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap comparison of two models scored on the same cases.

    The per-case differences ``d = b - a`` are resampled (cases, not scores, are
    the unit, so the pairing is kept). The interval is the percentile interval
    of the resampled mean differences. The p-value is two-sided and computed
    from the same bootstrap distribution shifted to be centred on zero (the
    null hypothesis of no mean difference): with observed mean ``dbar`` and
    resampled means ``m*``, ``p = (1 + #{|m* - dbar| >= |dbar|}) / (1 + B)``.
    The ``+1`` terms keep the p-value away from an impossible exact zero.

    On few cases neither figure can be trusted (2 cases of the same sign give ``p < 0.001``): summaries call
    :func:`paired_comparison`, which uses this from :data:`MIN_BOOTSTRAP_CASES` cases on only.

    Args:
        a: Per-case scores of the baseline model.
        b: Per-case scores of the candidate model, same cases in the same order.
        confidence: Two-sided coverage of the interval, in (0, 1).
        n_resamples: Number of bootstrap resamples (``B``).
        seed: Seed for the random generator (results are deterministic given it).

    Returns:
        ``{"n", "diff", "low", "high", "p_value"}`` where ``diff`` is the mean of
        ``b - a`` (positive means ``b`` scores higher). With no cases everything
        but ``n`` is ``None``; with one case the interval collapses to ``diff``
        and ``p_value`` is 1.0.

    Raises:
        ValueError: If ``a`` and ``b`` differ in length.
    """
    _check_common(confidence, n_resamples)
    xa, xb = _paired_arrays(a, b)
    d = xb - xa
    n = int(d.size)
    if n == 0:
        return {"n": 0, "diff": None, "low": None, "high": None, "p_value": None}
    dbar = float(d.mean())
    if n == 1:
        return {"n": 1, "diff": dbar, "low": dbar, "high": dbar, "p_value": 1.0}
    rng = np.random.default_rng(seed)
    means = _resampled_means(d, n_resamples, rng)
    low, high = _percentile_interval(means, confidence)
    extreme = int(np.count_nonzero(np.abs(means - dbar) >= abs(dbar) - 1e-12))
    p_value = min(1.0, (1 + extreme) / (1 + n_resamples))
    return {"n": n, "diff": dbar, "low": low, "high": high, "p_value": float(p_value)}


def _signed_sums(x: np.ndarray) -> np.ndarray:
    """``sum(s_i * x_i)`` for every sign vector ``s`` in ``{-1, +1}**len(x)`` (``2**len(x)`` values)."""
    sums = np.zeros(1)
    for v in x:
        sums = np.concatenate([sums + v, sums - v])
    return sums


def paired_permutation_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Exact two-sided paired permutation test of the mean per-case difference.

    Under the null hypothesis the two models are exchangeable on each case, so each difference
    ``d_i = b_i - a_i`` is as likely to have had the opposite sign. The p-value is the share of all ``2**n``
    sign flips whose ``|sum(s_i * d_i)|`` is at least the observed ``|sum(d_i)|`` — exact, not sampled.
    The flips are enumerated as two halves whose ``2**(n/2)`` sums are matched by a sorted search, so
    ``n`` up to 40 is fast. The smallest possible p-value is ``2 / 2**n`` (every case the same sign):
    with 5 cases or fewer it is above 0.05, see :func:`exact_test_can_reject`.

    Args:
        a: Per-case scores of the baseline model.
        b: Per-case scores of the candidate model, same cases in the same order.

    Returns:
        ``{"n", "diff", "p_value"}``: ``diff`` is the mean of ``b - a``; with no cases both are ``None``;
        ``p_value`` is 1.0 when every difference is zero.

    Raises:
        ValueError: If ``a`` and ``b`` differ in length, or there are more than 40 cases.
    """
    xa, xb = _paired_arrays(a, b)
    d = xb - xa
    n = int(d.size)
    if n == 0:
        return {"n": 0, "diff": None, "p_value": None}
    if n > _MAX_EXACT:
        raise ValueError(f"the exact test enumerates 2**n sign flips: at most {_MAX_EXACT} cases (got {n})")
    mag = np.abs(d)
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(mag.sum()))  # the same sum added in another order
    if observed <= tol:
        p_value = 1.0
    else:
        half = n // 2
        left = _signed_sums(mag[:half])
        right = np.sort(_signed_sums(mag[half:]))
        threshold = observed - tol
        upper = right.size - np.searchsorted(right, threshold - left, side="left")  # left + right >= t
        lower = np.searchsorted(right, -threshold - left, side="right")  # left + right <= -t
        p_value = min(1.0, int(upper.sum() + lower.sum()) / 2.0**n)
    return {"n": n, "diff": float(d.mean()), "p_value": float(p_value)}


def exact_test_can_reject(n: int, confidence: float = 0.95) -> bool:
    """Whether an exact two-sided sign-flip test on ``n`` paired cases can reach ``p < 1 - confidence``.

    Its smallest p-value is ``2 / 2**n`` (the exact sign test's too): 0.0625 at 5 cases, 0.03125 at 6, so
    at the 95% level 6 cases are the fewest that can show a difference at all (ties need more).
    """
    return n >= 1 and 2.0 ** (1 - n) < 1.0 - confidence


def paired_verdict(
    n: int, p_value: float | None, low: float | None, high: float | None, test: str, confidence: float = 0.95
) -> tuple[str | None, bool]:
    """``(verdict, significant)`` of a paired comparison, in words that claim no more than the test.

    An exact test that cannot reach significance with ``n`` cases gives ``"too few cases to tell"``; an exact
    test decides on ``p < 1 - confidence``; a bootstrap on its interval excluding 0 (as the summaries always
    have). Nothing to compare (no p-value) gives ``(None, False)``.
    """
    if p_value is None:
        return None, False
    if test.startswith("exact"):
        if not exact_test_can_reject(n, confidence):
            return TOO_FEW, False
        significant = p_value < 1.0 - confidence
    else:
        significant = low is not None and high is not None and (low > 0 or high < 0)
    return (SUPPORTED if significant else NOT_SUPPORTED), significant


def paired_comparison(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    min_cases: int = MIN_BOOTSTRAP_CASES,
) -> dict[str, Any]:
    """Compare two models on the same cases: the test, its p-value, an interval when it means something.

    With ``min_cases`` (:data:`MIN_BOOTSTRAP_CASES`, 20) cases or more: :func:`paired_bootstrap` (interval
    and p-value), as always. Below: :func:`paired_permutation_test` for an exact p-value and **no interval**
    (``low`` and ``high`` are ``None``): a percentile bootstrap on few cases is too narrow and its p-value
    meaningless. The verdict (:func:`paired_verdict`) is ``"too few cases to tell"`` when the exact test
    cannot reach significance with that many cases (5 or fewer at 95%). The exact sign test is always added.

    Returns:
        ``{"n", "diff", "low", "high", "p_value", "test", "min_cases", "verdict", "significant",
        "sign_test"}``; ``test`` is ``"paired bootstrap"`` or ``"exact permutation"`` (``None`` with no
        cases), ``significant`` whether the verdict is a difference.

    Raises:
        ValueError: If ``a`` and ``b`` differ in length, or ``min_cases`` is above 41.
    """
    _check_common(confidence, n_resamples)
    if min_cases > _MAX_EXACT + 1:
        raise ValueError(f"min_cases must be at most {_MAX_EXACT + 1} (the exact test's limit)")
    xa, xb = _paired_arrays(a, b)
    n = int(xa.size)
    if n >= max(min_cases, 2):
        test = "paired bootstrap"
        stats = paired_bootstrap(xa, xb, confidence=confidence, n_resamples=n_resamples, seed=seed)
    else:
        test = "exact permutation" if n else None
        stats = {**paired_permutation_test(xa, xb), "low": None, "high": None}
    verdict, significant = paired_verdict(
        n, stats["p_value"], stats["low"], stats["high"], test or "", confidence
    )
    return {
        "n": n,
        "diff": stats["diff"],
        "low": stats["low"],
        "high": stats["high"],
        "p_value": stats["p_value"],
        "test": test,
        "min_cases": min_cases,
        "verdict": verdict,
        "significant": significant,
        "sign_test": sign_test(xa, xb),
    }


def sign_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Exact two-sided sign test on paired per-case scores.

    Each case is a win for ``b`` (``b > a``), a win for ``a`` or a tie. Ties
    are dropped and the wins for ``b`` among the rest are tested against a fair
    coin with an exact binomial test.

    Args:
        a: Per-case scores of the baseline model.
        b: Per-case scores of the candidate model, same cases in the same order.

    Returns:
        ``{"n", "wins_b", "wins_a", "ties", "p_value"}``; ``n`` counts all cases
        and ``p_value`` is 1.0 when every case is a tie.

    Raises:
        ValueError: If ``a`` and ``b`` differ in length.
    """
    from scipy.stats import binomtest

    xa, xb = _paired_arrays(a, b)
    wins_b = int(np.count_nonzero(xb > xa))
    wins_a = int(np.count_nonzero(xa > xb))
    ties = int(xa.size) - wins_b - wins_a
    decided = wins_a + wins_b
    p_value = 1.0 if decided == 0 else float(binomtest(wins_b, decided, 0.5).pvalue)
    return {"n": int(xa.size), "wins_b": wins_b, "wins_a": wins_a, "ties": ties, "p_value": p_value}


def _check_nck(n: int, c: int, k: int) -> None:
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need n >= 1, 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate: ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021).

    The probability that at least one of ``k`` samples drawn without
    replacement from ``n`` (of which ``c`` are correct) is correct. Computed as
    a product of ratios, so it is stable for large ``n``.

    Args:
        n: Samples generated for the task.
        c: How many of them passed.
        k: Samples the user is allowed, ``1 <= k <= n``.

    Returns:
        The estimate in ``[0, 1]``.
    """
    _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=float)))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k estimate: ``C(c, k) / C(n, k)``.

    The probability that all ``k`` samples drawn without replacement from
    ``n`` (of which ``c`` are correct) are correct — a reliability measure.

    Args:
        n: Samples generated for the task.
        c: How many of them passed.
        k: Number of samples that must all pass, ``1 <= k <= n``.

    Returns:
        The estimate in ``[0, 1]``.
    """
    _check_nck(n, c, k)
    if c < k:
        return 0.0
    i = np.arange(k, dtype=float)
    return float(np.prod((c - i) / (n - i)))


def _bt_fit(
    ia: np.ndarray, ib: np.ndarray, sa: np.ndarray, m: int, max_iter: int, tol: float = 1e-10
) -> np.ndarray:
    """MM fit of Bradley–Terry strengths; returns log10 strengths (geometric mean 1).

    ``sa`` is the score of the first model in each comparison (1, 0 or 0.5).
    Prior: each model plays one virtual tie against a virtual opponent of
    strength 1 (the geometric mean), i.e. +0.5 win and +1 game against it.
    """
    wins = np.bincount(ia, weights=sa, minlength=m) + np.bincount(ib, weights=1.0 - sa, minlength=m)
    games = np.zeros((m, m))
    np.add.at(games, (ia, ib), 1.0)
    games = games + games.T
    wins = wins + 0.5
    p = np.ones(m)
    for _ in range(max_iter):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1) + 1.0 / (p + 1.0)
        new = wins / denom
        new = new / np.exp(np.log(new).mean())
        done = np.max(np.abs(np.log(new) - np.log(p))) < tol
        p = new
        if done:
            break
    return np.log10(p)


def bradley_terry(
    comparisons: Iterable[tuple[str, str, str]],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    max_iter: int = 1000,
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """Bradley–Terry ratings from pairwise votes, with bootstrap intervals.

    Strengths are fitted with Hunter's (2004) MM algorithm. A tie counts as
    half a win for each side. A tiny prior — one virtual tie per model against
    an average opponent — keeps unbeaten or winless models finite. Ratings are
    on an Elo-like scale, ``400 * log10(strength)``, shifted so the mean rating
    is 1000. Intervals are percentile intervals over refits on comparisons
    resampled with replacement.

    "Both bad" votes express no preference between the two models and are not
    part of this model: the caller must drop them before calling (any outcome
    other than ``"a"``, ``"b"`` or ``"tie"`` is rejected).

    Args:
        comparisons: ``(model_a, model_b, outcome)`` triples, ``outcome`` in
            ``{"a", "b", "tie"}`` naming the winner.
        n_resamples: Bootstrap refits for the intervals (0 gives ``None`` bounds).
        seed: Seed for the random generator (results are deterministic given it).
        max_iter: Maximum MM iterations per fit.
        confidence: Two-sided coverage of the intervals, in (0, 1).

    Returns:
        One dict per model, ``{"model", "rating", "low", "high", "wins",
        "losses", "ties"}``, sorted best first (ties broken by name). Empty
        input gives an empty list.

    Raises:
        ValueError: On an unknown outcome or a model compared with itself.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rows = list(comparisons)
    if not rows:
        return []
    names = sorted({str(r[0]) for r in rows} | {str(r[1]) for r in rows})
    index = {name: i for i, name in enumerate(names)}
    m = len(names)
    score = {"a": 1.0, "b": 0.0, "tie": 0.5}
    ia = np.empty(len(rows), dtype=int)
    ib = np.empty(len(rows), dtype=int)
    sa = np.empty(len(rows))
    for t, (ma, mb, outcome) in enumerate(rows):
        if outcome not in score:
            raise ValueError(f"outcome must be 'a', 'b' or 'tie' (got {outcome!r}); drop 'both bad' votes")
        if ma == mb:
            raise ValueError(f"model {ma!r} compared with itself")
        ia[t], ib[t], sa[t] = index[str(ma)], index[str(mb)], score[outcome]

    def ratings(sel: np.ndarray | slice) -> np.ndarray:
        r = 400.0 * _bt_fit(ia[sel], ib[sel], sa[sel], m, max_iter)
        return r - r.mean() + 1000.0

    point = ratings(slice(None))
    low = high = [None] * m
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        boot = np.array([ratings(rng.integers(0, len(rows), len(rows))) for _ in range(n_resamples)])
        alpha = (1.0 - confidence) / 2.0
        lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
        low, high = [float(v) for v in lo], [float(v) for v in hi]

    wins = np.bincount(ia, weights=sa == 1.0, minlength=m) + np.bincount(ib, weights=sa == 0.0, minlength=m)
    losses = np.bincount(ia, weights=sa == 0.0, minlength=m) + np.bincount(ib, weights=sa == 1.0, minlength=m)
    ties = np.bincount(ia, weights=sa == 0.5, minlength=m) + np.bincount(ib, weights=sa == 0.5, minlength=m)
    out = [
        {
            "model": names[i],
            "rating": float(point[i]),
            "low": low[i],
            "high": high[i],
            "wins": int(wins[i]),
            "losses": int(losses[i]),
            "ties": int(ties[i]),
        }
        for i in range(m)
    ]
    out.sort(key=lambda r: (-r["rating"], r["model"]))
    return out
