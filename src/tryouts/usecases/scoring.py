"""Scores computed once a run's answers are stored: embedding similarity, custom scorers, an LLM judge.

:func:`score_run` is called at the end of ``tryouts run`` when the suite has a ``scoring`` section, and by
``tryouts score RUN`` to add scores to a stored run later. It only computes what is missing (a result already
scored by that embedding model, scorer or judge is skipped; a failed judge call is asked again), so it can be
re-run after an interruption. Results' ``scores`` are updated in place in the store; judge calls go to the
``judgments`` table with their own cost and latency; consistent pairwise verdicts become judge votes.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..types import ModelSpec, Request, Result

if TYPE_CHECKING:
    from ..store import Store

Say = Callable[[str], None]


def _label(labels: list[str], r: dict[str, Any]) -> str:
    i = int(r.get("model_index") or 0)
    return labels[i] if i < len(labels) else str(r.get("model"))


def score_run(
    store: Store,
    run_id: str,
    scoring: Any,
    *,
    base_dir: Path | None = None,
    policy: Any = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Add the scores ``scoring`` (a suite's :class:`~tryouts.suite.schema.ScoringSpec`) asks for to a stored run.

    Returns a report: how many results got each kind of score, the judge's calls, cost and latency, and
    the pairwise votes it produced (consistent and inconsistent pairs).
    """
    from ..scoring.custom import apply, load_scorer

    say = say or (lambda msg: None)
    scorers = [load_scorer(ref, base_dir) for ref in scoring.scorers]  # bad references fail before any work
    data = store.get_run(run_id)
    run_id = data["run"]["id"]
    labels = list(data["run"]["meta"].get("labels") or data["run"]["models"])
    results = data["results"]
    scores = {r["id"]: dict(r.get("scores") or {}) for r in results}
    changed: set[int] = set()
    report: dict[str, Any] = {"run_id": run_id}

    if scoring.embedding:
        todo = [r for r in results if (r.get("case") or {}).get("expected") is not None
                and "embedding" not in (scores[r["id"]].get("reference") or {})]
        if todo:
            from ..scoring.embedding import similarities

            say(f"Embedding similarity ({scoring.embedding}) for {len(todo)} answers…")
            ok = [r for r in todo if r["ok"]]
            sims = similarities([(r["text"], str(r["case"]["expected"])) for r in ok], scoring.embedding)
            by_id = {r["id"]: s for r, s in zip(ok, sims, strict=True)}
            for r in todo:
                ref = dict(scores[r["id"]].get("reference") or {})
                ref["embedding"] = by_id.get(r["id"], 0.0)  # a failed answer scores 0, as for the other metrics
                scores[r["id"]]["reference"] = ref
                changed.add(r["id"])
        report["embedding"] = len(todo)

    for scorer in scorers:
        n = 0
        for r in results:
            custom = dict(scores[r["id"]].get("custom") or {})
            if scorer.name in custom:
                continue
            custom[scorer.name] = apply(scorer, r, _label(labels, r))
            scores[r["id"]]["custom"] = custom
            changed.add(r["id"])
            n += 1
        errors = sum(1 for r in results if "error" in (scores[r["id"]].get("custom") or {}).get(scorer.name, {}))
        if errors:
            first = next(scores[r["id"]]["custom"][scorer.name]["error"] for r in results
                         if "error" in (scores[r["id"]].get("custom") or {}).get(scorer.name, {}))
            say(f"Scorer {scorer.ref} raised on {errors} answers (first: {first}).")
        report.setdefault("custom", {})[scorer.name] = {"scored": n, "errors": errors}

    if scoring.judge is not None:
        report["judge"] = _judge(store, run_id, results, labels, scores, changed, scoring.judge, policy, say)

    if changed:
        store.update_scores({i: scores[i] for i in changed})
    return report


def _judge(store: Store, run_id: str, results: list[dict[str, Any]], labels: list[str], scores: dict[int, dict],
           changed: set[int], judge: Any, policy: Any, say: Say) -> dict[str, Any]:
    from ..scoring.arena_stats import same_answer
    from ..scoring.judge import (
        JudgeJob,
        consistent_verdict,
        judge_params,
        judgment_row,
        pairwise_prompt,
        rubric_prompt,
    )

    entry = judge.model
    spec = ModelSpec.parse(entry.model, entry.options)
    params = judge_params(entry.params)
    scale = tuple(judge.scale)
    previous = store.judgments(run_id)
    mine = [j for j in previous if j["judge"] == spec.ref]
    jobs: list[JudgeJob] = []

    def add(kind: str, messages: list, result_id: int, other: int | None = None, order: str | None = None) -> None:
        jobs.append(JudgeJob(0, len(jobs), 0, spec, Request(messages=messages, params=params), kind=kind,
                             result_id=result_id, other_result_id=other, order=order))

    if judge.rubric:
        done = {j["result_id"] for j in mine if j["kind"] == "rubric" and j["ok"]}
        for r in results:
            if r["ok"] and r["id"] not in done:
                case = r.get("case") or {}
                add("rubric", rubric_prompt(r["request"]["messages"], r["text"], judge.rubric, scale,
                                            case.get("expected")), r["id"])
    pairs: list[tuple[dict, dict]] = []
    identical = 0
    if judge.pairwise:
        cells: dict[tuple[int, int], list[dict]] = defaultdict(list)
        for r in results:
            if r["ok"]:
                cells[(r["case_index"], r["repeat_index"])].append(r)
        asked = {(j["result_id"], j["other_result_id"], j["order"]) for j in mine if j["kind"] == "pairwise" and j["ok"]}
        for group in cells.values():
            for a, b in combinations(sorted(group, key=lambda r: r["model_index"]), 2):
                if same_answer(a["text"], b["text"]):  # nothing to choose between: never sent, never a vote
                    identical += 1
                    continue
                pairs.append((a, b))
                messages = a["request"]["messages"]
                if (a["id"], b["id"], "ab") not in asked:
                    add("pairwise", pairwise_prompt(messages, a["text"], b["text"], judge.criteria), a["id"], b["id"], "ab")
                if (a["id"], b["id"], "ba") not in asked:
                    add("pairwise", pairwise_prompt(messages, b["text"], a["text"], judge.criteria), a["id"], b["id"], "ba")

    rows: list[dict[str, Any]] = []
    if jobs:
        say(f"Judge {spec.ref}: {len(jobs)} calls "
            f"({sum(j.kind == 'rubric' for j in jobs)} rubric, {sum(j.kind == 'pairwise' for j in jobs)} pairwise)…")
        got: dict[int, Result] = {}
        from ..engine.run import run_cells

        asyncio.run(run_cells(jobs, store=store, run_id=run_id, policy=policy, batch_purpose="judge",
                              sink=lambda cell, result: got.__setitem__(cell.case_index, result)))
        rows = [judgment_row(job, got[job.case_index], scale) for job in jobs]
        store.add_judgments(run_id, rows)

    all_rows = [*mine, *rows]
    for row in rows:
        if row["kind"] == "rubric" and row["ok"]:
            scores[row["result_id"]]["judge"] = {
                "judge": spec.ref, "score": row["score"], "scale": list(scale),
                "normalized": (row["score"] - scale[0]) / (scale[1] - scale[0]), "rationale": row["rationale"],
            }
            changed.add(row["result_id"])

    votes_added = inconsistent = 0
    if judge.pairwise:
        source = f"judge:{spec.ref}"
        voted = {(v["result_a"], v["result_b"]) for v in store.votes(run_id, source)}
        latest: dict[tuple[int, int, str], dict] = {}
        for row in all_rows:
            if row["kind"] == "pairwise" and row["ok"]:
                latest[(row["result_id"], row["other_result_id"], row["order"])] = row
        for a, b in pairs:
            first, second = latest.get((a["id"], b["id"], "ab")), latest.get((a["id"], b["id"], "ba"))
            if first is None or second is None:
                continue
            verdict = consistent_verdict(first, second)
            if verdict is None:
                inconsistent += 1
                continue
            if (a["id"], b["id"]) not in voted:
                store.add_vote(run_id, case_index=a["case_index"], repeat_index=a["repeat_index"], result_a=a["id"],
                               result_b=b["id"], model_a=_label(labels, a), model_b=_label(labels, b),
                               verdict=verdict, source=source)
                votes_added += 1

    costs = [row["cost_total"] for row in rows if row.get("cost_total") is not None]
    failed = [row for row in rows if not row["ok"]]
    if failed:
        say(f"Judge: {len(failed)} of {len(rows)} calls failed or were unparseable (first: {failed[0]['error']}); "
            "run 'tryouts score' again to retry them.")
    return {
        "judge": spec.ref, "calls": len(rows), "failed": len(failed),
        "cost_usd": str(sum((Decimal(str(c)) for c in costs), Decimal(0))) if costs else None,
        "cost_unknown": sum(1 for row in rows if row.get("cost_total") is None and row["ok"]),
        "e2e_ms_total": sum(row["e2e_ms"] or 0.0 for row in rows),
        "pairs": len(pairs), "votes_added": votes_added, "inconsistent_pairs": inconsistent,
        "identical_pairs": identical,
    }


def check_judge_ready(scoring: Any) -> None:
    """Refuse, before anything is sent, a judge whose provider is not ready here (its key unset, its extra
    missing, its local server down): otherwise every judge call would fail the same way."""
    if scoring is None or scoring.judge is None:
        return
    from ..errors import UsageError
    from ..providers import get_info
    from ..types import ModelSpec
    from .providers import readiness

    entry = scoring.judge.model
    spec = ModelSpec.parse(entry.model, entry.options)
    if spec.options.get("api_key_env") or (spec.options.get("base_url") and spec.provider == "openai-compat"):
        return
    ready, why = readiness(get_info(spec.provider))
    if not ready:
        raise UsageError(f"The judge {spec.ref} is not ready here: {why}. Nothing was sent.")
