"""A suite run from start to finish, the same from the terminal and the dashboard: its policy, its cases,
its record in the store, and what happens after the cells (scoring, quality, final status)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def suite_policy(suite: Any, no_cache: bool):
    """The engine's Policy from a suite's concurrency, retries and timeouts (``no_cache``: --no-cache)."""
    from ..engine.run import Policy

    conc = dict(suite.concurrency or {})
    retries, timeouts = suite.retries, suite.timeouts
    return Policy(
        concurrency=conc,
        default_concurrency=int(conc.get("default", 4)),
        max_retries=retries.max,
        backoff_s=retries.backoff_s,
        max_backoff_s=retries.max_backoff_s,
        connect_timeout_s=timeouts.connect_s,
        first_token_timeout_s=timeouts.first_token_s,
        total_timeout_s=timeouts.total_s,
        use_cache=not no_cache,
    )


def suite_cases(suite: Any) -> dict[int, dict]:
    """Each case's metadata by case index, stored with its results (ids, vars, expected, assertions)."""
    return {
        item.index: {"prompt_id": item.prompt_id, "case_id": item.case_id, "vars": item.vars, "expected": item.expected,
                     "asserts": item.asserts}
        for item in suite.case_items()
    }


def create_suite_run(store, suite: Any, suite_file: Path, cells: list) -> str:
    """Record a new suite run (its meta: path, fingerprint, labels...) and return its id."""
    from ..engine.plan import fingerprint

    meta = {"suite_path": str(suite_file.resolve()), "fingerprint": fingerprint(cells), "n_cells": len(cells),
            "labels": suite.model_labels(), "repeats": suite.repeats,
            "description": getattr(suite, "description", None)}
    return store.create_run("suite", [s.ref for s in suite.model_specs()],
                            {"suite": meta["suite_path"], "cases": len(suite.case_items())}, meta)


def finish_suite_run(store, run_id: str, suite: Any, policy: Any, say) -> None:
    """After the cells: the suite's scoring (a failure is reported, the answers stay), the quality summary
    stored in the run's meta, and the final status."""
    from ..errors import TryoutsError
    from ..scoring.summary import quality_report

    data = store.get_run(run_id)
    n_failed = sum(not r["ok"] for r in data["results"])
    if suite.scoring is not None:
        from .scoring import score_run

        try:
            score_run(store, run_id, suite.scoring, base_dir=suite.base_dir, policy=policy, say=say)
        except TryoutsError as exc:  # the answers are stored: say so, and how to score them later
            say(f"Scoring failed: {exc.message}\nThe {len(data['results'])} results are stored; add the scores "
                f"later with: tryouts score {run_id}")
        data = store.get_run(run_id)
    store.update_run_meta(run_id, {"quality": quality_report(data["results"], suite.model_labels())})
    store.finish_run(run_id, "done" if n_failed == 0 else ("failed" if n_failed == len(data["results"]) else "partial"))


def check_scorers(suite: Any) -> None:
    """Load every custom scorer the suite's ``scoring`` names, so a bad one is refused before anything is sent."""
    if suite.scoring is not None and suite.scoring.scorers:
        from ..scoring.custom import load_scorer

        for ref in suite.scoring.scorers:
            load_scorer(ref, suite.base_dir)


def load_for_resume(store: Any, run_ref: str, suite_file: Path | None = None) -> tuple[str, Any, list]:
    """(run id, suite, cells) of a stored suite run to resume: the suite file it was run from (or
    ``suite_file``) must still describe the same cells; UsageError says what to do otherwise."""
    from ..engine.plan import fingerprint
    from ..errors import UsageError
    from ..suite import load_suite

    row = store.get_run_row(run_ref)
    run_id, meta = row["id"], row["meta"]
    if row["kind"] != "suite":
        raise UsageError(f"Run {run_id} is a {row['kind']} run; only suite runs can be resumed.")
    path = suite_file or Path(meta["suite_path"])
    suite = load_suite(path)
    cells = list(suite.cells())
    if fingerprint(cells) != meta.get("fingerprint"):
        raise UsageError(
            f"{path} no longer describes run {run_id} (its prompts, cases, models or dataset changed). "
            "Resume with the suite as it was, or start a new run."
        )
    return run_id, suite, cells


def run_suite_cells(store: Any, run_id: str, suite: Any, cells: list, policy: Any, *,
                    skip: set | None = None, on_event: Any = None):
    """The coroutine that runs a suite's cells (those not in ``skip``) into run ``run_id``. Repeats are
    independent samples, so a suite with more than one repeat neither reads nor fills the response cache."""
    from ..config import price_overrides
    from ..engine.run import run_cells

    return run_cells(cells, store=store, run_id=run_id, policy=policy, skip=skip, cases=suite_cases(suite),
                     prices=price_overrides(), on_event=on_event, allow_cache=suite.repeats == 1)
