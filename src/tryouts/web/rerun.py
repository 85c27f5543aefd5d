"""Re-running one model of a stored run from the dashboard, under the same rules as starting a run there.

The request says only *which* run and *which* model (by index): the model reference, its options, the prompt,
parameters and checks all come from the store, never from the request, so nothing the caller sends can choose
where requests go. They still pass the dashboard's policy (web/policy.py), exactly as ``POST /api/compare`` and
``POST /api/suite-runs`` check theirs:

* a **compare** run starts a live comparison of that one model (its stored options, redacted values left out:
  a redacted key is read from the environment again), the same prompt, system prompt, parameters, expected
  answer and checks; the model reference and its options go through :meth:`WebPolicy.check_model` when this
  user's Tryouts signed them (usecases/compare.py, trust.py), else through :meth:`WebPolicy.check_stored_model`
  (what a dashboard with no ``--allow-*`` flag allows: a row anyone could have written is not the token
  holder's word);
* a **suite** run runs its suite file again (read from the file, never from the suite text stored with the run,
  which anyone with write access to a shared store could change) with only that model, in the background, as
  ``POST /api/suite-runs`` does; the file must still pass :meth:`WebPolicy.suite_path` (a YAML file of the
  owner's in the suite folder);
* other kinds (eval tasks, load benchmarks) are refused: they are re-run from the terminal.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

from fastapi import HTTPException, Request

from ..errors import TryoutsError
from ..redact import redact
from .policy import Refused

#: a stored option value that redaction replaced (store/rows.py): sent again it would be a wrong key
REDACTED = "***"


def _options(stored: dict[str, Any] | None) -> dict[str, Any]:
    """A result's stored options without the values redaction blanked."""
    return {k: v for k, v in (stored or {}).items() if not (isinstance(v, str) and REDACTED in v)}


def _signed(run: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """True when this user's Tryouts signed the compare run's stored models and options (usecases/compare.py)."""
    from ..trust import verify
    from ..usecases.compare import signed_fields

    models = run.get("models") if isinstance(run.get("models"), list) else []
    by_index = {r.get("model_index"): r.get("options") for r in rows}
    fields = signed_fields(models, [by_index.get(i) for i in range(len(models))])
    return verify(fields, (run.get("meta") or {}).get("signature") if isinstance(run.get("meta"), dict) else None)


def _prompt(run: dict[str, Any]) -> tuple[str, str | None]:
    """(prompt, system) of a compare run's request; 400 for messages the dashboard cannot start again."""
    messages = (run.get("request") or {}).get("messages") or []
    system = [m for m in messages if m.get("role") == "system"]
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) != 1 or len(system) > 1 or len(messages) != len(users) + len(system) or \
            not all(isinstance(m.get("content"), str) for m in messages):
        raise HTTPException(400, "This run's prompt is a conversation the dashboard cannot start again: re-run it "
                                 "with 'tryouts compare' in a terminal.")
    return users[0]["content"], (system[0]["content"] if system else None)


async def rerun_compare(request: Request, run: dict[str, Any], index: int) -> dict[str, Any]:
    """Start a live comparison of model ``index`` of compare run ``run`` (see the module docstring)."""
    from ..types import GenParams

    store, policy = request.app.state.store, request.app.state.policy
    prompt, system = _prompt(run)
    rows, _ = store.results(run["id"], columns=["model_index", "options", "case"])
    mine = [r for r in rows if r["model_index"] == index]
    ref = run["models"][index]
    options = _options(mine[0]["options"] if mine else {})
    case = (mine[0].get("case") if mine else None) or None
    try:
        if _signed(run, rows):  # what this user's own comparison stored: this dashboard's permissions apply
            policy.check_model(ref, options)
        else:  # anyone with write access to the store could have written it: only what no --allow-* flag allows
            policy.check_stored_model(ref, options)
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from None
    try:
        params = GenParams.model_validate((run.get("request") or {}).get("params") or {})
    except ValueError:
        raise HTTPException(400, "This run's parameters cannot be read back: re-run it with 'tryouts compare'.") from None
    key = secrets.token_urlsafe(12)
    live = request.app.state.live.start(key, prompt, [ref], system=system, params=params, options=[options],
                                        case=case)
    for _ in range(50):  # the run is recorded in the comparison's first step
        if live.run_id is not None or live.done:
            break
        await asyncio.sleep(0)
    return {"kind": "compare", "key": key, "events": f"/api/compare/{key}/events", "run_id": live.run_id,
            "page": f"/runs/{live.run_id}" if live.run_id else None}


def rerun_suite(request: Request, run: dict[str, Any], index: int) -> dict[str, Any]:
    """Run the suite of suite run ``run`` again with only model ``index``, in the background."""
    from ..suite.issues import SuiteError
    from ..usecases.suites import (
        SuitePlan,
        check_scorers,
        suite_of_run,
        suite_policy,
    )

    store, policy = request.app.state.store, request.app.state.policy
    meta = run.get("meta") or {}
    if not meta.get("suite_path"):
        raise HTTPException(400, "This run has no suite file: re-run it from a terminal.")
    try:
        path = policy.suite_path(str(meta["suite_path"]))
    except Refused as exc:
        raise HTTPException(exc.status, f"Re-running a suite from the dashboard needs its suite file in the suite "
                                        f"folder: {exc.message}") from None
    try:
        # the file, never the suite text stored with the run: on a shared store anyone who can write a row could
        # plant a suite there, and the owner's click would run its options; the file passed the policy above
        suite = suite_of_run(meta, path)
        if index >= len(suite.models):
            raise HTTPException(404, f"The suite of run {run['id']} has no model {index}.")
        ran = (run.get("models") or [])[index:index + 1]
        if ran and redact(suite.models[index].model) != ran[0]:  # the file changed: never re-run another model
            raise HTTPException(409, f"The suite file's model {index} is no longer the one this run ran (the file "
                                     "changed since): re-run it from a terminal with 'tryouts run'.")
        one = suite.model_copy(update={"models": [suite.models[index]]})
        check_scorers(one)
        plan = SuitePlan(suite=one, cells=list(one.cells()), policy=suite_policy(one, False), path=path)
    except SuiteError:
        raise HTTPException(400, "The suite of this run cannot be read back: run 'tryouts run "
                                 f"{str(meta['suite_path'])[:200]} --dry-run' in a terminal to see why.") from None
    except TryoutsError:
        raise HTTPException(400, "The suite of this run cannot be run again as it is: run 'tryouts run "
                                 f"{str(meta['suite_path'])[:200]} --dry-run' in a terminal to see why.") from None
    run_id = launch_suite(request, store, plan)
    return {"kind": "suite", "run_id": run_id, "cells": len(plan.cells), "page": f"/runs/{run_id}",
            "progress": f"/api/suite-runs/{run_id}"}


def launch_suite(request: Request, store: Any, plan: Any) -> str:
    """Record a suite run and run it in a background thread, its messages kept for ``GET /api/suite-runs/RUN``;
    returns its run id. A run that ends with an exception keeps its results and is marked interrupted."""
    from ..usecases.suites import execute_suite, start_suite

    run_id = start_suite(store, plan).run_id
    log: list[str] = request.app.state.suite_logs.setdefault(run_id, [])

    def work() -> None:
        try:
            execute_suite(store, plan, say=log.append)
        except BaseException as exc:  # recorded results stay; the run says it did not finish
            log.append(f"{type(exc).__name__}: {exc}")
            store.finish_run(run_id, "interrupted")

    threading.Thread(target=work, name=f"suite-{run_id}", daemon=True).start()
    return run_id


async def rerun_model(request: Request, run: dict[str, Any], index: int) -> dict[str, Any]:
    """Start a new run of run ``run`` limited to model ``index`` (see the module docstring)."""
    if index >= len(run["models"]):
        raise HTTPException(404, f"Run {run['id']} has no model {index} (it has {len(run['models'])}).")
    if run["kind"] == "compare":
        return await rerun_compare(request, run, index)
    if run["kind"] == "suite":
        return rerun_suite(request, run, index)
    raise HTTPException(400, f"A {run['kind']} run is re-run from the terminal (the dashboard re-runs compare and "
                             "suite runs).")


__all__ = ["launch_suite", "rerun_model"]
