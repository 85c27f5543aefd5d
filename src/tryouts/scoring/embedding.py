"""Embedding similarity: cosine similarity of a sentence-transformers model's embeddings.

The model is named by a Hub id (``sentence-transformers/all-MiniLM-L6-v2``, loaded through the Hub cache;
``HF_HUB_OFFLINE=1`` is respected) or a local folder, and loaded once per process. ``sts_spearman`` measures
how well a model's similarities rank labelled sentence pairs, with a bootstrap interval, which is how two
embedding models are compared honestly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..errors import MissingExtraError, ModelNotFoundError


@functools.lru_cache(maxsize=4)
def load_embedder(model: str) -> Any:
    """A SentenceTransformer for a Hub id or a local folder (cached per process)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingExtraError("Embedding similarity", "local", "sentence-transformers") from exc
    try:
        return SentenceTransformer(model)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"Could not load the embedding model {model!r} ({exc}). Give a sentence-transformers model's Hub id "
            "(in the Hugging Face cache when offline) or a local folder."
        ) from exc


def similarities(pairs: Sequence[tuple[str, str]], model: str) -> list[float]:
    """Cosine similarity of each (a, b) pair, in [-1, 1]."""
    import numpy as np

    if not pairs:
        return []
    embedder = load_embedder(model)
    a = embedder.encode([p[0] for p in pairs], normalize_embeddings=True, convert_to_numpy=True)
    b = embedder.encode([p[1] for p in pairs], normalize_embeddings=True, convert_to_numpy=True)
    return [float(x) for x in np.sum(a * b, axis=1)]


def embedding_similarity(text: str, expected: str, model: str) -> float:
    """Cosine similarity between an answer and the expected answer."""
    return similarities([(text, expected)], model)[0]


def sts_spearman(
    predicted: Sequence[float], gold: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """Spearman correlation of predicted similarities with gold scores, with a bootstrap interval over pairs.

    Args:
        predicted: a model's similarity per pair.
        gold: the labelled similarity per pair (any monotone scale).
        confidence: the interval's coverage.
        n_resamples: bootstrap resamples of the pairs.
        seed: makes the interval reproducible.
    """
    import numpy as np
    from scipy.stats import spearmanr

    x, y = np.asarray(predicted, dtype=float), np.asarray(gold, dtype=float)
    if len(x) != len(y):
        raise ValueError("predicted and gold must have the same length")
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:  # too few pairs, or one side constant: no correlation
        return {"n": n, "rho": None, "low": None, "high": None}
    rho = float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue
        stats.append(float(spearmanr(x[idx], y[idx]).statistic))
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(stats, [alpha, 1 - alpha]) if stats else (rho, rho))
    return {"n": n, "rho": rho, "low": float(low), "high": float(high)}
