"""Score one result against its case: the case's assertions and, with an expected answer, reference metrics.

Assertions are validated when the suite is loaded (:func:`validate_asserts`), so a bad regex or JSON
Schema is refused before anything runs. Reference metrics computed by default are the cheap, dependency-free
ones (exact match, token F1, edit similarity); BLEU, chrF and ROUGE need the ``quality`` extra and are added
when it is installed.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from .assertions import parse_assertion, score_case
from .reference import edit_similarity, exact_match, token_f1

_DEFAULT_METRICS = {"exact_match": exact_match, "token_f1": token_f1, "edit_similarity": edit_similarity}


def validate_asserts(asserts: list[dict[str, Any]], where: str) -> list[Any]:
    """Parse every assertion of a case; raises UsageError naming ``where[i]`` and the field."""
    return [parse_assertion(dict(spec), f"{where}[{i}]") for i, spec in enumerate(asserts or [])]


@functools.cache
def warm_reference_metrics() -> None:
    """Import what scoring a case imports on first use (sacrebleu; rouge_score, which imports nltk, scipy,
    sklearn...: 2-3 s on 2 cores) before any request is timed: done on the event loop when the first result
    comes back, it landed in the TTFT of every request then in flight (1.3-6.2 s instead of 4-15 ms)."""
    if importlib.util.find_spec("sacrebleu") is not None and importlib.util.find_spec("rouge_score") is not None:
        reference_scores("warm up", "warm up")


def reference_scores(text: str, expected: str) -> dict[str, float]:
    """Reference metrics of ``text`` against ``expected``."""
    scores = {name: float(fn(text, expected)) for name, fn in _DEFAULT_METRICS.items()}
    if importlib.util.find_spec("sacrebleu") is not None and importlib.util.find_spec("rouge_score") is not None:
        from .reference import bleu, chrf, rouge

        scores["bleu"] = float(bleu(text, expected))
        scores["chrf"] = float(chrf(text, expected))
        scores.update({k: float(v) for k, v in rouge(text, expected).items()})
    return scores


def score_result(case: dict[str, Any] | None, *, text: str, ok: bool, e2e_ms: float | None,
                 cost_usd: float | None) -> dict[str, Any] | None:
    """The ``scores`` of a result, or None when its case has neither assertions nor an expected answer."""
    if not case or not (case.get("asserts") or case.get("expected")):
        return None
    scores: dict[str, Any] = {}
    if case.get("asserts"):
        checks = validate_asserts(case["asserts"], "assert")
        verdict = score_case(checks, text=text if ok else "", e2e_ms=e2e_ms, cost_usd=cost_usd)
        scores["assert"] = {"passed": bool(verdict["passed"]) and ok, "score": verdict["score"] if ok else 0.0,
                            "results": verdict["results"]}
    if case.get("expected") is not None:
        scores["reference"] = reference_scores(text if ok else "", str(case["expected"]))
    return scores
