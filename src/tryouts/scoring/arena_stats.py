"""Arena statistics beyond plain Bradley–Terry (docs/scoring.md, "The private arena").

Pure functions on plain values, numpy only (imported when a fit runs); every randomised procedure takes a ``seed``.

- :func:`same_answer` — two answers that are the same text (after trimming whitespace at both ends): never
  put to a vote, and a stored vote on them counts as a tie.
- :func:`ci_ranks` — ranks that show ties: ``rank = 1 +`` the number of models whose whole interval lies
  above this model's (as the LMSYS leaderboard ranks), the range of ranks the intervals allow, and the models
  whose intervals overlap.
- :func:`style_features` / :func:`style_controlled_bt` — style control as Chatbot Arena does it (Li,
  Angelopoulos, Chiang, "Does style matter?", 2024): a Bradley–Terry logistic regression with the normalized
  differences of the two answers' length and Markdown counts as covariates beside the model strengths, with
  bootstrap intervals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["STYLE_FEATURES", "ci_ranks", "same_answer", "style_controlled_bt", "style_features"]

#: the style covariates, in order (LMSYS's first version: answer tokens, headers, list items, bold)
STYLE_FEATURES = ("length", "headers", "lists", "bold")

_LN10 = math.log(10.0)
_CODE_BLOCK = re.compile(r"```[^`]*```")
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def same_answer(a: str | None, b: str | None) -> bool:
    """Whether two answers are the same text once whitespace at both ends is trimmed (nothing else is
    normalized: a difference inside the text, even of spaces or case, keeps them apart)."""
    return a is not None and b is not None and a.strip() == b.strip()


def style_features(text: str) -> tuple[int, int, int, int]:
    """An answer's style counts, in :data:`STYLE_FEATURES` order, as LMSYS counts them.

    ``length`` is the answer's length in estimated tokens, ``ceil(characters / 4)``, the same rule for every
    model (providers' own token counts use different tokenizers and would not compare). Headers (``#`` to
    ``######`` then a space at the start of a line), list items (``1.``, ``-``, ``*`` or ``+`` then a space at
    the start of a line) and bold spans (``**...**`` or ``__...__`` within a line) are counted outside fenced
    code blocks.
    """
    prose = _CODE_BLOCK.sub("", text)
    return (math.ceil(len(text) / 4), len(_HEADER.findall(prose)), len(_LIST_ITEM.findall(prose)),
            len(_BOLD.findall(prose)))


def ci_ranks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``rank``, ``rank_range`` and ``tied_with`` to rating rows (``model``, ``rating``, ``low``,
    ``high``), in place; returns ``rows``.

    With intervals, ``rank`` is 1 + the number of models whose lower bound exceeds this model's upper bound
    (the LMSYS rule: models the votes do not separate share a rank), ``rank_range`` is ``[rank, worst]``
    where ``worst`` is the number of rated models less those whose upper bound is below this model's lower
    bound, and ``tied_with`` lists the other models whose intervals overlap this one's (sorted). Without
    intervals (no bootstrap), ranks follow the point ratings alone and nothing is marked tied. Rows without a
    rating get ``None``, ``None`` and ``[]``.
    """
    rated = [r for r in rows if r.get("rating") is not None]
    with_ci = all(r.get("low") is not None and r.get("high") is not None for r in rated)
    for r in rows:
        r["rank"], r["rank_range"], r["tied_with"] = None, None, []
    for r in rated:
        others = [o for o in rated if o is not r]
        if with_ci:
            above = sum(o["low"] > r["high"] for o in others)
            below = sum(o["high"] < r["low"] for o in others)
            r["tied_with"] = sorted(o["model"] for o in others if o["low"] <= r["high"] and r["low"] <= o["high"])
        else:
            above = sum(o["rating"] > r["rating"] for o in others)
            below = sum(o["rating"] < r["rating"] for o in others)
        r["rank"], r["rank_range"] = 1 + above, [1 + above, len(rated) - below]
    return rows


def _newton(x: np.ndarray, y: np.ndarray, w: np.ndarray, m: int, theta: np.ndarray | None,
            max_iter: int = 100, tol: float = 1e-9) -> np.ndarray:
    """Minimize the penalized logistic loss of :func:`style_controlled_bt` by Newton's method with step
    halving (the loss is strictly convex, so this converges to its one minimum)."""
    import numpy as np

    p = x.shape[1]

    def loss(t: np.ndarray) -> float:
        eta = x @ t
        data = float(np.sum(w * (np.logaddexp(0.0, -eta) + (1.0 - y) * eta)))
        b = _LN10 * t[:m]
        prior = float(np.sum(np.logaddexp(0.0, -b) + 0.5 * b))  # one virtual tie against a rating-0 model
        return data + prior + 0.5 * float(t[m:] @ t[m:])

    t = np.zeros(p) if theta is None else theta.copy()
    current = loss(t)
    for _ in range(max_iter):
        eta = x @ t
        q = 1.0 / (1.0 + np.exp(-eta))
        grad = x.T @ (w * (q - y))
        hess = (x * (w * q * (1.0 - q))[:, None]).T @ x
        qb = 1.0 / (1.0 + np.exp(-_LN10 * t[:m]))
        grad[:m] += _LN10 * (qb - 0.5)
        hess[np.arange(m), np.arange(m)] += _LN10**2 * qb * (1.0 - qb)
        grad[m:] += t[m:]
        hess[np.arange(m, p), np.arange(m, p)] += 1.0
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6:
            candidate = t - scale * step
            value = loss(candidate)
            if value <= current + 1e-12:
                break
            scale /= 2.0
        t, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            break
    return t


def style_controlled_bt(
    comparisons: Iterable[tuple[str, str, str, str, str]],
    *,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Bradley–Terry ratings controlled for style, with bootstrap intervals (Chatbot Arena's style control).

    For vote ``i`` between answers A and B, each style feature ``j`` of :func:`style_features` gives the
    normalized difference ``d_ij = (f_A - f_B) / (f_A + f_B + 1)``, scaled to unit root mean square over the
    votes, ``z_ij = d_ij / sqrt(mean_i d_ij^2)`` (not centred: an order-free feature must change sign when A
    and B swap; a feature equal in every pair is left out). The model is the logistic regression

        P(A preferred) = sigmoid(ln 10 * (beta_A - beta_B) + sum_j gamma_j * z_ij)

    fitted by maximum likelihood with a tie as half a win each, one virtual tie per model against a model of
    strength 0 (as :func:`tryouts.scoring.statistics.bradley_terry`) and a standard normal prior on each
    ``gamma_j``. Ratings are ``400 * beta`` shifted to mean 1000; intervals are percentile intervals over
    refits on votes resampled with replacement (the scaling kept from the full data).

    Args:
        comparisons: ``(model_a, model_b, outcome, text_a, text_b)``, ``outcome`` in ``{"a", "b", "tie"}``.
        n_resamples: Bootstrap refits for the intervals (0 gives ``None`` bounds).
        seed: Seed for the resampling.
        confidence: Two-sided coverage of the intervals, in (0, 1).

    Returns:
        ``{"ratings": [{"model", "rating", "low", "high"}, ...] best first, "coefficients": [{"feature",
        "coef", "low", "high", "scale"}, ...], "votes": n}``; ``coef`` is ``gamma_j`` (change in log-odds of
        preferring A per root-mean-square of the feature's normalized difference), ``None`` for a feature
        that never differed; ``scale`` is that root mean square. Empty input gives empty lists.

    Raises:
        ValueError: On an unknown outcome or a model compared with itself.
    """
    import numpy as np

    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rows = list(comparisons)
    if not rows:
        return {"ratings": [], "coefficients": [], "votes": 0}
    names = sorted({str(r[0]) for r in rows} | {str(r[1]) for r in rows})
    index = {name: i for i, name in enumerate(names)}
    m, n = len(names), len(rows)
    score = {"a": 1.0, "b": 0.0, "tie": 0.5}
    y = np.empty(n)
    diffs = np.empty((n, len(STYLE_FEATURES)))
    x_models = np.zeros((n, m))
    for i, (ma, mb, outcome, ta, tb) in enumerate(rows):
        if outcome not in score:
            raise ValueError(f"outcome must be 'a', 'b' or 'tie' (got {outcome!r}); drop 'both bad' votes")
        if ma == mb:
            raise ValueError(f"model {ma!r} compared with itself")
        fa, fb = np.array(style_features(ta), float), np.array(style_features(tb), float)
        diffs[i] = (fa - fb) / (fa + fb + 1.0)
        x_models[i, index[str(ma)]] += _LN10
        x_models[i, index[str(mb)]] -= _LN10
        y[i] = score[outcome]
    scales = np.sqrt(np.mean(diffs**2, axis=0))
    used = [j for j in range(len(STYLE_FEATURES)) if scales[j] > 1e-12]
    x = np.hstack([x_models, diffs[:, used] / scales[used]])

    def fit(weights: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        return _newton(x, y, weights, m, start)

    point = fit(np.ones(n))
    draws = None
    if n_resamples > 0:
        rng = np.random.default_rng(seed)
        draws = np.array([fit(np.bincount(rng.integers(0, n, n), minlength=n).astype(float), point)
                          for _ in range(n_resamples)])

    def ratings(t: np.ndarray) -> np.ndarray:
        r = 400.0 * t[..., :m]
        return r - r.mean(axis=-1, keepdims=True) + 1000.0

    alpha = (1.0 - confidence) / 2.0
    lo = hi = rlo = rhi = None
    if draws is not None:
        lo, hi = np.quantile(draws, alpha, axis=0), np.quantile(draws, 1.0 - alpha, axis=0)
        rlo, rhi = np.quantile(ratings(draws), [alpha, 1.0 - alpha], axis=0)
    rated = ratings(point)
    out = [{"model": names[i], "rating": float(rated[i]),
            "low": float(rlo[i]) if rlo is not None else None,
            "high": float(rhi[i]) if rhi is not None else None} for i in range(m)]
    out.sort(key=lambda r: (-r["rating"], r["model"]))
    coefficients = []
    for j, feature in enumerate(STYLE_FEATURES):
        k = used.index(j) + m if j in used else None
        coefficients.append({
            "feature": feature, "scale": float(scales[j]),
            "coef": float(point[k]) if k is not None else None,
            "low": float(lo[k]) if k is not None and lo is not None else None,
            "high": float(hi[k]) if k is not None and hi is not None else None,
        })
    return {"ratings": out, "coefficients": coefficients, "votes": n}

