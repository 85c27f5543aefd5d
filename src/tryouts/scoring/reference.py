"""Reference metrics: how close an output is to an expected answer (docs/scoring.md).

``exact_match``, ``token_f1``, ``edit_distance`` and ``edit_similarity`` need nothing outside the standard
library. ``bleu`` and ``chrf`` need ``sacrebleu`` and ``rouge`` needs ``rouge-score`` (the ``quality`` extra);
they import them when called, so this module imports without them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

_SPACES = re.compile(r"\s+")


def normalize_text(s: str) -> str:
    """Lowercase, remove punctuation (any Unicode ``P*`` character), collapse whitespace and strip."""
    s = "".join(ch for ch in s.lower() if not unicodedata.category(ch).startswith("P"))
    return _SPACES.sub(" ", s).strip()


def exact_match(pred: str, ref: str, normalize: bool = True) -> float:
    """1.0 when ``pred`` equals ``ref``, else 0.0.

    With ``normalize`` (default) both are lowercased, stripped of punctuation and have runs of whitespace
    collapsed before comparing; without it the strings must be identical.
    """
    if normalize:
        return 1.0 if normalize_text(pred) == normalize_text(ref) else 0.0
    return 1.0 if pred == ref else 0.0


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style token F1 in [0, 1]: harmonic mean of token precision and recall (multiset overlap).

    Both strings are normalized as in :func:`exact_match` and split on whitespace. Two empty answers score
    1.0; one empty answer scores 0.0. (Unlike SQuAD's script, articles are kept: suites are not all English.)
    """
    p, r = normalize_text(pred).split(), normalize_text(ref).split()
    if not p or not r:
        return 1.0 if p == r else 0.0
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def bleu(pred: str, ref: str) -> float:
    """Sentence-level BLEU from sacrebleu, on sacrebleu's 0-100 scale (not 0-1).

    Uses ``sacrebleu.sentence_bleu`` with its defaults (13a tokenizer, exponential smoothing, effective
    order), so short identical strings score 100.
    """
    import sacrebleu

    return float(sacrebleu.sentence_bleu(pred, [ref]).score)


def chrf(pred: str, ref: str) -> float:
    """Sentence-level chrF (character n-gram F-score) from sacrebleu, on sacrebleu's 0-100 scale (not 0-1)."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(pred, [ref]).score)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(pred: str, ref: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures in [0, 1] from ``rouge_score`` (Porter stemming on).

    rouge_score's tokenizer keeps only ASCII letters and digits, so text in other scripts scores 0.
    """
    scores = _rouge_scorer().score(ref, pred)  # score(target, prediction)
    return {name: float(scores[name].fmeasure) for name in ("rouge1", "rouge2", "rougeL")}


def edit_distance(pred: str, ref: str) -> int:
    """Levenshtein distance in characters (insertions, deletions and substitutions each cost 1)."""
    if len(pred) < len(ref):
        pred, ref = ref, pred
    prev = list(range(len(ref) + 1))
    for i, a in enumerate(pred, 1):
        cur = [i]
        for j, b in enumerate(ref, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1]


def edit_similarity(pred: str, ref: str) -> float:
    """``1 - edit_distance / max(len(pred), len(ref))`` in [0, 1]; two empty strings score 1.0."""
    longest = max(len(pred), len(ref))
    if longest == 0:
        return 1.0
    return 1.0 - edit_distance(pred, ref) / longest


#: metric name -> function(pred, ref); ``bleu``/``chrf`` return 0-100, ``rouge`` a dict, ``edit_distance`` an int
REFERENCE_METRICS: dict[str, Callable[[str, str], Any]] = {
    "exact_match": exact_match,
    "token_f1": token_f1,
    "bleu": bleu,
    "chrf": chrf,
    "rouge": rouge,
    "edit_distance": edit_distance,
    "edit_similarity": edit_similarity,
}
