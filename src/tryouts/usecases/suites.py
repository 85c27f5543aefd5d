"""A suite run from start to finish, the same from the terminal and the dashboard: its policy, its cases,
its record in the store, and what happens after the cells (scoring, quality, final status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..records import ResultRecord
    from ..types import RunStatus


def suite_policy(suite: Any, no_cache: bool, batch: bool = False):
    """The engine's Policy from a suite's concurrency, retries, timeouts and batch settings (``no_cache``:
    --no-cache; ``batch``: --batch, every model)."""
    from ..engine.policy import Policy

    conc = dict(suite.concurrency or {})
    retries, timeouts = suite.retries, suite.timeouts
    rates = getattr(suite, "rate_limits", None) or {}
    return Policy(
        requests_per_minute={k: v.requests_per_minute for k, v in rates.items() if v.requests_per_minute},
        tokens_per_minute={k: v.tokens_per_minute for k, v in rates.items() if v.tokens_per_minute},
        rate_windows={k: v.window_s for k, v in rates.items()},
        adaptive={k: v.adaptive for k, v in rates.items()},
        max_concurrency={k: v.max_concurrency for k, v in rates.items() if v.max_concurrency},
        concurrency=conc,
        default_concurrency=int(conc.get("default", 4)),
        max_retries=retries.max,
        backoff_s=retries.backoff_s,
        max_backoff_s=retries.max_backoff_s,
        connect_timeout_s=timeouts.connect_s,
        first_token_timeout_s=timeouts.first_token_s,
        total_timeout_s=timeouts.total_s,
        use_cache=not no_cache,
        batch=batch_models(suite, batch),
        batch_poll_s=float(getattr(suite, "batch_poll_s", 30.0)),
    )


def batch_models(suite: Any, everything: bool = False) -> bool | frozenset[int]:
    """Which models go through batch APIs: all with --batch or the suite's ``batch: true`` (a model's
    ``batch: false`` keeps it streamed), else the models that say ``batch: true``."""
    default = everything or bool(getattr(suite, "batch", False))
    chosen = frozenset(i for i, m in enumerate(suite.models) if (m.batch if m.batch is not None else default))
    return True if len(chosen) == len(suite.models) and chosen else chosen


def suite_cases(suite: Any) -> dict[int, dict]:
    """Each case's metadata by case index, stored with its results (ids, vars, expected, assertions)."""
    return {
        item.index: {"prompt_id": item.prompt_id, "case_id": item.case_id, "vars": item.vars, "expected": item.expected,
                     "asserts": item.asserts}
        for item in suite.case_items()
    }


def stored_description(suite: Any) -> str | None:
    """The suite's description as a run's meta keeps it: redacted (a key written into it never reaches the
    store; one from a ``${...}`` variable is refused when the suite loads, suite/envvars.py)."""
    from ..redact import redact

    description = getattr(suite, "description", None)
    return redact(description) if isinstance(description, str) else description


def create_suite_run(store, suite: Any, suite_file: Path, cells: list) -> str:
    """Record a new suite run (its meta: path, fingerprint, labels...) and return its id."""
    from ..engine.plan import fingerprint

    meta = signed({"suite_path": str(suite_file.resolve()), "fingerprint": fingerprint(cells), "n_cells": len(cells),
                   "labels": suite.model_labels(), "repeats": suite.repeats,
                   "description": stored_description(suite), **stored_suite(suite)})
    return store.create_run("suite", [s.ref for s in suite.model_specs()],
                            {"suite": meta["suite_path"], "cases": len(suite.case_items())}, meta)


def finish_suite_run(store, run_id: str, suite: Any, policy: Any, say) -> None:
    from ..types import finished_status

    """After the cells: the suite's scoring (a failure is reported, the answers stay), the quality summary
    stored in the run's meta, and the final status."""
    from ..errors import TryoutsError
    from ..scoring.summary import quality_report, quality_rows

    n, n_failed = store.count_results(run_id)
    if suite.scoring is not None:
        from .scoring import score_run

        try:
            score_run(store, run_id, suite.scoring, base_dir=suite.base_dir, policy=policy, say=say)
        except TryoutsError as exc:  # the answers are stored: say so, and how to score them later
            say(f"Scoring failed: {exc.message}\nThe {n} results are stored; add the scores "
                f"later with: tryouts score {run_id}")
    scored = quality_rows(store.iter_results(run_id, ["model_index", "case_index", "scores"]))
    store.update_run_meta(run_id, {"quality": quality_report(scored, suite.model_labels())})
    store.finish_run(run_id, finished_status(n, n_failed))


def check_scorers(suite: Any) -> None:
    """Load every custom scorer the suite's ``scoring`` names, so a bad one is refused before anything is sent."""
    if suite.scoring is not None and suite.scoring.scorers:
        from ..scoring.custom import load_scorer

        for ref in suite.scoring.scorers:
            load_scorer(ref, suite.base_dir)


def stored_suite(suite: Any) -> dict:
    """What a run's meta keeps of its suite: ``suite``, the suite as it ran (suite/resolved.py), or
    ``suite_not_stored``, why not."""
    from ..suite.resolved import resolved

    data, why = resolved(suite)
    return {"suite": data} if data is not None else {"suite_not_stored": why}


def _signed_fields(meta: dict) -> dict:
    """The values of a run's meta that choose what runs, where and with which key: the suite as it ran, its
    file's path, and the fingerprint of its cells."""
    return {"suite": meta.get("suite"), "suite_path": meta.get("suite_path"), "fingerprint": meta.get("fingerprint")}


def signed(meta: dict) -> dict:
    """``meta`` with ``signature``: this user's MAC over its suite, suite path and fingerprint (trust.py)."""
    from ..trust import sign

    return {**meta, "signature": sign(_signed_fields(meta))}


def trusted(meta: dict) -> bool:
    """True when this user recorded the run's suite and path as they are now (its signature verifies)."""
    from ..trust import verify

    return verify(_signed_fields(meta), meta.get("signature"))


def untrusted_error(run_id: str, meta: dict, command: str) -> Exception:
    """Why a run's stored suite is not used, and which command to give instead."""
    from ..errors import UsageError

    path = meta.get("suite_path")
    file = path if isinstance(path, str) and path and len(path) < 300 and path.isprintable() else "SUITE.yaml"
    return UsageError(
        f"Run {run_id}'s stored suite is not signed by you: another user or machine recorded it, an older Tryouts "
        "did, or the row was changed since. Anyone who can write to the results database could have put it "
        "there, so Tryouts will not run its models, options or scorers with your keys. Pass the suite file you "
        f"trust instead: {command.format(file=file)}"
    )


def suite_of_run(meta: dict, suite_file: Path | None = None, *, run_id: str = "this run",
                 command: str = "tryouts run {file} --resume RUN") -> Any:
    """The suite of a run: ``suite_file`` when given, else the suite stored with the run (no file, dataset or
    variable needed), else the file it ran from. The stored suite and path are used only when this user signed
    them (:func:`trusted`); otherwise UsageError says to pass the file (``command``, with ``{file}``)."""
    from ..suite import load_suite

    if suite_file is not None:
        return load_suite(suite_file)
    if not trusted(meta):
        raise untrusted_error(run_id, meta, command)
    if meta.get("suite"):
        from ..suite.resolved import load_resolved

        return load_resolved(meta["suite"], meta.get("suite_path"))
    if not meta.get("suite_path"):
        from ..errors import UsageError

        raise UsageError(f"Run {run_id} kept neither its suite nor its file's path: pass the file, "
                         f"{command.format(file='SUITE.yaml')}")
    return load_suite(Path(meta["suite_path"]))


def load_for_resume(store: Any, run_ref: str, suite_file: Path | None = None) -> tuple[str, Any, list]:
    """(run id, suite, cells) of a stored suite run to resume: the suite stored with the run (or ``suite_file``,
    or the file it ran from for a run that stored none) must still describe the same cells; UsageError says what
    to do otherwise."""
    from ..engine.plan import fingerprint
    from ..errors import UsageError

    row = store.get_run_row(run_ref)
    run_id, meta = row["id"], row["meta"]
    if row["kind"] != "suite":
        raise UsageError(f"Run {run_id} is a {row['kind']} run; only suite runs can be resumed.")
    command = f"tryouts run {{file}} --resume {run_id}"
    suite = suite_of_run(meta, suite_file, run_id=run_id, command=command)
    path = suite_file or (Path(meta["suite_path"]) if meta.get("suite_path") else None)  # the user's, or signed
    cells = list(suite.cells())
    if (fingerprint(cells) != meta.get("fingerprint") and suite_file is None and meta.get("suite")
            and path is not None and path.is_file()):
        from ..suite import load_suite

        suite = load_suite(path)  # a stored suite that no longer expands the same: the file it was signed with
        cells = list(suite.cells())
    if fingerprint(cells) != meta.get("fingerprint"):
        raise UsageError(
            f"{path or 'The suite'} no longer describes run {run_id} (its prompts, cases, models or dataset changed). "
            "Resume with the suite as it was, or start a new run."
        )
    return run_id, suite, cells


def run_suite_cells(store: Any, run_id: str, suite: Any, cells: list, policy: Any, *,
                    skip: set | None = None, on_event: Any = None, budget: Any = None, executor: Any = None):
    """The coroutine that runs a suite's cells (those not in ``skip``) into run ``run_id``. Repeats are
    independent samples, so a suite with more than one repeat neither reads nor fills the response cache."""
    from ..config import price_overrides
    from ..engine.run import run_cells

    return run_cells(cells, store=store, run_id=run_id, policy=policy, skip=skip, cases=suite_cases(suite),
                     prices=price_overrides(), on_event=on_event, allow_cache=suite.repeats == 1, budget=budget,
                     executor=executor)


@dataclass
class SuitePlan:
    """A suite about to run: its cells, the cells a resumed run already has (``skip``), and its policy.
    ``run_id`` is None until :func:`start_suite` records the run (a dry run never does)."""

    suite: Any
    cells: list
    policy: Any
    path: Path | None
    run_id: str | None = None
    skip: set = field(default_factory=set)
    #: what this invocation may spend, in USD (None: no limit), and its budget (:func:`cost_budget`)
    budget_usd: Decimal | None = None
    budget: Any = None
    #: ``(i, n)``: run only slice i of n of the cells (``--shard``), into a run shared by several drivers
    shard: tuple[int, int] | None = None
    #: the shared run's id (``--run-id``); with a shard and none given, one is made from the suite's fingerprint
    shared_id: str | None = None
    #: runs the cells (engine/executor.py); None for the in-process one. ``--executor ray``: engine/ray_executor.py
    executor: Any = None

    @property
    def shared(self) -> bool:
        """Whether this plan runs (a slice of) a run that several drivers share."""
        return self.shard is not None or self.shared_id is not None

    @property
    def shard_label(self) -> str:
        return "all" if self.shard is None else f"{self.shard[0]}/{self.shard[1]}"

    def mine(self, cell: Any) -> bool:
        """Whether ``cell`` is in this plan's slice: a hash of its stable key, so every driver agrees."""
        if self.shard is None:
            return True
        i, n = self.shard
        return int(cell.key[:15], 16) % n == i

    @property
    def labels(self) -> list[str]:
        """Each model's label, by model index."""
        return self.suite.model_labels()

    def to_run(self, model_index: int | None = None) -> int:
        """Cells still to run (of one model, or of all)."""
        return sum(1 for c in self.cells if (c.model_index, c.case_index, c.repeat_index) not in self.skip
                   and (model_index is None or c.model_index == model_index))


@dataclass
class SuiteOutcome:
    """A finished (or interrupted) suite run: its id, status, cells, failures, and its results as stored
    (typed records, :class:`tryouts.records.ResultRecord`; docs/json.md), read from the store when first used."""

    run_id: str
    status: RunStatus
    n_cells: int
    n_failed: int
    meta: dict = field(default_factory=dict)
    store: Any = field(default=None, repr=False)
    _results: list | None = field(default=None, repr=False)

    @property
    def results(self) -> list[ResultRecord]:
        """Every result of the run (read on first use: a 100,000-cell run's outputs are not read unless asked)."""
        if self._results is None:
            self._results = self.store.records(self.run_id) if self.store is not None else []
        return self._results


def plan_suite(store: Any, suite_file: str | Path | None = None, *, resume: str | None = None,
               no_cache: bool = False, batch: bool = False) -> SuitePlan:
    """Load a suite file (or the suite of run ``resume``), check it, and plan its cells; nothing is sent or
    recorded. ``batch``: every model through its provider's batch API (--batch); a resumed run also keeps the
    models it sent as batches (their jobs are collected). Errors are
    :class:`~tryouts.suite.issues.SuiteError` (file, line, field) or UsageError."""
    from ..errors import UsageError
    from ..suite import load_suite

    run_id = None
    if resume:
        run_id, suite, cells = load_for_resume(store, resume, Path(suite_file) if suite_file else None)
        path = Path(suite_file) if suite_file else None
    else:
        if suite_file is None:
            raise UsageError("Give a suite file (tryouts run suite.yaml) or --resume RUN.")
        path = Path(suite_file)
        suite = load_suite(path)
        cells = list(suite.cells())
    check_scorers(suite)  # a bad scorer is refused before anything is sent
    policy = suite_policy(suite, no_cache, batch)
    if run_id is not None:  # the models sent as batches before go on as batches: their jobs are collected
        before = (store.get_run_row(run_id).get("meta") or {}).get("batch") or []
        if before and policy.batch is not True:
            policy.batch = frozenset(policy.batch or ()) | frozenset(before)
    return SuitePlan(suite=suite, cells=cells, policy=policy, path=path, run_id=run_id)


def start_suite(store: Any, plan: SuitePlan) -> SuitePlan:
    """Record the run (a new one), or claim the resumed one (refused while another process runs it) and skip
    its recorded cells."""
    if plan.shared:
        join_shared_run(store, plan)
    elif plan.run_id is None:
        plan.run_id = create_suite_run(store, plan.suite, plan.path, plan.cells)
        plan.skip = set()
    else:
        store.claim_run(plan.run_id)
        plan.skip = store.done_cells(plan.run_id)
    if plan.policy.batch:
        models = range(len(plan.suite.models))
        store.update_run_meta(plan.run_id, {"batch": [m for m in models if plan.policy.wants_batch(m)]})
    return plan


def execute_suite(store: Any, plan: SuitePlan, *, on_event: Any = None, say: Any = print) -> SuiteOutcome:
    """Run a started plan's cells, then its scoring and quality summary, and mark it finished.

    Ctrl-C or SIGTERM (in the main thread) stops the cells cleanly: the run is marked interrupted and
    :class:`~tryouts.engine.interrupt.Interrupted` (a KeyboardInterrupt) is raised; what was done is kept.
    """
    from ..engine.interrupt import run_interruptible

    assert plan.run_id is not None, "start_suite first"
    budget = plan.budget if plan.budget is not None else cost_budget(store, plan)
    try:
        run_interruptible(run_suite_cells(store, plan.run_id, plan.suite, plan.cells, plan.policy, skip=plan.skip,
                                          on_event=on_event, budget=budget, executor=plan.executor), say=say)
        if plan.shared and not finish_slice(store, plan, say):
            return outcome_of(store, plan.run_id)
        finish_suite_run(store, plan.run_id, plan.suite, plan.policy, say=say)
        if budget is not None and budget.stopped:  # cells left for a resume with more budget
            store.update_run_meta(plan.run_id, {"stopped": {"reason": "budget", "budget_usd": str(budget.limit),
                                                            "spent_usd": str(budget.spent)}})
            store.finish_run(plan.run_id, "interrupted")
        elif (store.get_run_row(plan.run_id).get("meta") or {}).get("stopped"):  # a resume that ran to its end
            store.update_run_meta(plan.run_id, {"stopped": None})
    except KeyboardInterrupt:
        if not plan.shared or store.leave_run(plan.run_id, plan.shard_label):  # other drivers go on with theirs
            store.finish_run(plan.run_id, "interrupted")
        raise
    return outcome_of(store, plan.run_id)


def shared_run_id(plan: SuitePlan) -> str:
    """The id of a shared run: ``--run-id``, else ``sweep-`` and the suite's fingerprint (the same for every
    driver of the same cells)."""
    from ..engine.plan import fingerprint

    return plan.shared_id or f"sweep-{fingerprint(plan.cells)[:16]}"


def join_shared_run(store: Any, plan: SuitePlan) -> None:
    """Create the shared run (unless a driver did), check it holds the same cells, and register this driver's
    slice; skip the cells outside the slice and those already recorded."""
    from ..engine.plan import fingerprint
    from ..errors import UsageError

    run_id = shared_run_id(plan)
    fp = fingerprint(plan.cells)
    meta = signed({"suite_path": str(plan.path.resolve()) if plan.path else None, "fingerprint": fp,
                   "n_cells": len(plan.cells), "labels": plan.suite.model_labels(), "repeats": plan.suite.repeats,
                   "description": stored_description(plan.suite), **stored_suite(plan.suite)})
    store.create_shared_run(run_id, "suite", [s.ref for s in plan.suite.model_specs()],
                            {"suite": meta["suite_path"], "cases": len(plan.suite.case_items())}, meta)
    row = store.get_run_row(run_id)
    if row["kind"] != "suite" or row["meta"].get("fingerprint") != fp:
        raise UsageError(f"Run {run_id} holds other cells than this suite's (its prompts, cases, models or dataset "
                         "differ): give every driver the same suite, or another --run-id.")
    store.join_run(run_id, plan.shard_label)
    plan.run_id = run_id
    plan.skip = store.done_cells(run_id) | {(c.model_index, c.case_index, c.repeat_index)
                                            for c in plan.cells if not plan.mine(c)}


def finish_slice(store: Any, plan: SuitePlan, say: Any) -> bool:
    """After this driver's slice: True when it is the last driver and every cell has a row (finish the run as a
    whole); otherwise say what remains and return False."""
    last = store.leave_run(plan.run_id, plan.shard_label)
    if not last:
        say(f"Slice {plan.shard_label} of run {plan.run_id} is done; other drivers are still at work, and the "
            "last to end finishes the run.")
        return False
    missing = len(plan.cells) - len(store.done_cells(plan.run_id))
    if missing > 0:
        store.update_run_meta(plan.run_id, {"stopped": {"reason": "slices", "missing_cells": missing}})
        store.finish_run(plan.run_id, "interrupted")
        say(f"Slice {plan.shard_label} of run {plan.run_id} is done, and no other driver is at work, but {missing} "
            f"cell(s) have no result: run their slices, or tryouts run --resume {plan.run_id}.")
        return False
    return True


def cost_budget(store: Any, plan: SuitePlan) -> Any:
    """The :class:`~tryouts.engine.budget.CostBudget` of ``plan.budget_usd`` over the cells still to run, from the
    dry-run estimate (None without a budget). Refused when a model that costs money has no known price."""
    if plan.budget_usd is None:
        return None
    from ..config import price_overrides
    from ..engine.budget import CostBudget
    from ..engine.plan import estimate
    from ..errors import UsageError

    todo = [c for c in plan.cells if (c.model_index, c.case_index, c.repeat_index) not in plan.skip]
    plans = estimate(todo, store=store, policy=plan.policy, prices=price_overrides())
    unpriced = [p.model for p in plans if p.cost_usd is None]
    if unpriced:
        raise UsageError(f"--budget needs every model's price, and {', '.join(unpriced)} has none: give it one "
                         "(the model's price option, e.g. price: \"0.15,0.60\" in USD per 1M input,output tokens), "
                         "or run without --budget.")
    budget = CostBudget.from_plans(plan.budget_usd, plans)
    dear = [(cost, p) for p in plans if (cost := budget.per_cell.get(p.model_index)) and cost > plan.budget_usd]
    if dear:
        cost, p = max(dear, key=lambda x: x[0])
        raise UsageError(f"--budget {plan.budget_usd} USD does not cover one cell of {p.model}, expected to cost "
                         f"{cost:.6f} USD ({p.output_basis} output tokens at its price): raise the budget, or lower "
                         "max_tokens in the suite's defaults.")
    return budget


def outcome_of(store: Any, run_id: str) -> SuiteOutcome:
    """The stored run as a :class:`SuiteOutcome`."""
    run = store.run_record(run_id)
    return SuiteOutcome(run_id=run_id, status=run.status, n_cells=run.meta.get("n_cells", 0),
                        n_failed=store.count_results(run_id)[1], meta=run.meta, store=store)


def run_suite(suite_file: str | Path | None = None, *, store: Any = None, resume: str | None = None,
              no_cache: bool = False, on_event: Any = None, say: Any = print,
              budget_usd: Decimal | str | None = None, executor: Any = None, shard: tuple[int, int] | None = None,
              run_id: str | None = None) -> SuiteOutcome:
    """Run a suite file from start to finish, as ``tryouts run`` does (``resume``: a run's missing cells).

    ``store`` defaults to the user's results database; ``on_event(event)`` sees the engine's typed events
    (engine/events.py: each cell queued, started, retried, its result stored); ``say`` gets the scoring's messages;
    ``budget_usd``: what it may spend (a stopped run has ``meta["stopped"]``); ``executor``: where the cells run
    (None: this process; :class:`~tryouts.engine.ray_executor.RayExecutor`: a Ray cluster); ``shard`` ``(i, n)``
    and ``run_id``: one slice of a run shared by several drivers (docs/scale.md). Blocking: it runs its own event
    loop.
    """
    if store is None:
        from ..paths import default_db
        from ..store import Store

        store = Store(default_db())
    plan = plan_suite(store, suite_file, resume=resume, no_cache=no_cache)
    plan.executor, plan.shard, plan.shared_id = executor, shard, run_id
    if budget_usd is not None:
        plan.budget_usd = Decimal(str(budget_usd))
        plan.budget = cost_budget(store, plan)  # an unpriced model is refused before the run is recorded
    return execute_suite(store, start_suite(store, plan), on_event=on_event, say=say)
