"""Task-specific model comparison on labeled data (docs/tasks.md): ``tryouts eval-task TASK``.

The tasks and how each is run and scored:

==============  =======================  ====================================================================
task            local ``hf:`` route       metrics (per model; 95% bootstrap intervals over cases)
==============  =======================  ====================================================================
classification  text-classification      accuracy*, macro-F1, per-label P/R/F1, confusion matrix
ner             token-classification     entity-level micro P/R/F1 (exact text + type), mean sentence F1*
                (aggregation simple)
translation     seq2seq ``generate``     sentence chrF* and BLEU (0-100), corpus chrF and BLEU
summarization   seq2seq ``generate``     ROUGE-1, ROUGE-2, ROUGE-L* (F-measure, 0-1)
embeddings      sentence-transformers    STS: Spearman rho* (bootstrap over pairs); retrieval: recall@k*, MRR
code            (prompted)               pass@1* over repeats, pass@k and pass^k, sandbox outcomes
==============  =======================  ====================================================================

``*`` marks the primary metric: the one compared between models (model N vs model 1: from 20 cases on, a
paired bootstrap difference with its interval and p-value; below, an exact permutation test with no interval
and "too few cases to tell" at 5 cases or fewer; plus an exact sign test on the per-case scores).

Modules: :mod:`.data` (loading), :mod:`.prompts` (prompts and answer parsing), :mod:`.metrics` (pure
metrics), :mod:`.scoring` (per-result scores and the report), :mod:`.evaluate` (running and storing),
:mod:`.tiny` (tiny offline models for the examples and tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

__all__ = ["TASKS", "TaskSpec", "get_task"]


@dataclass(frozen=True)
class TaskSpec:
    """A task: how a local ``hf:`` model runs it, what a chat model may answer, and its primary metric."""

    name: str
    summary: str
    pipeline: str | None
    primary: str
    max_tokens: int
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)
    formats: tuple[str, ...] = ("csv", "jsonl")


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "classification",
            "text -> one label; accuracy, macro-F1, confusion matrix",
            "text-classification",
            "accuracy",
            16,
        ),
        TaskSpec(
            "ner",
            "named entities; entity-level precision, recall, F1",
            "token-classification",
            "sentence_f1",
            512,
            {"aggregation_strategy": "simple"},
            ("jsonl",),
        ),
        TaskSpec("translation", "source -> target; chrF and BLEU", "translation", "chrf", 256),
        TaskSpec("summarization", "text -> summary; ROUGE", "summarization", "rougeL", 256),
        TaskSpec("embeddings", "STS Spearman or retrieval recall@k", None, "spearman", 1),
        TaskSpec(
            "code", "functional correctness in a sandbox; pass@k", None, "pass@1", 1024, formats=("jsonl",)
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; a UsageError lists the tasks otherwise."""
    try:
        return TASKS[name.strip().lower()]
    except KeyError:
        raise UsageError(
            f"Unknown task {name!r}: choose one of {', '.join(TASKS)} (see docs/tasks.md)."
        ) from None
