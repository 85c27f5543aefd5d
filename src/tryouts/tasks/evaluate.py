"""Run a task: every model on every labeled case, stored as an ``eval-task`` run, scored, reported.

Generators (pipelines and chat models) go through the run engine (:func:`tryouts.engine.run.run_cells`):
one stored result per (model, case, repeat) with timings, tokens and cost. Embedding models are encoded
here directly (timed per case) and stored the same way. Code answers are then run against the case's
tests in the sandbox. Each result's ``scores["task"]`` and the report (``meta["eval_task"]``) are written
to the store, so ``tryouts show`` can print them again.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from ..errors import TryoutsError, UsageError
from ..store import Store
from ..types import (
    Cell,  # one (model, case, repeat) for the run engine
    Cost,
    GenParams,
    Message,
    ModelSpec,
    Request,
    Result,
    Timing,
    Usage,
    finished_status,
)
from . import TaskSpec, get_task
from .data import Dataset, TaskCase
from .prompts import build_prompt
from .scoring import build_report, score_answer

__all__ = ["Cell", "EvalSettings", "evaluate", "model_route", "prepare_spec"]

#: progress(stage, model_index, ok): stage "loading", "answer", "retry", "test" or "embed"
OnProgress = Callable[[str, int, bool], None]


@dataclass
class EvalSettings:
    """How a task run is done (the CLI options of ``tryouts eval-task``)."""

    repeats: int = 1
    ks: tuple[int, ...] = (1, 5)
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    timeout_s: float = 10.0
    src_lang: str | None = None
    tgt_lang: str | None = None
    use_cache: bool = True
    extra_meta: dict[str, Any] = field(default_factory=dict)


def model_route(task: TaskSpec, spec: ModelSpec) -> str:
    """``pipeline`` (a local hf: model as the task's pipeline), ``embedding`` or ``prompt`` (a chat model).

    An ``hf:`` model with ``task=text-generation`` is a chat model: it is prompted like an API model.
    """
    if task.name == "embeddings":
        if spec.provider != "hf":
            raise UsageError(
                f"{spec.ref}: the embeddings task encodes sentence-transformers models in process; "
                "give them as "
                "hf:./folder or hf:ORG/NAME (in the Hugging Face cache when offline)."
            )
        return "embedding"
    if (
        spec.provider == "hf"
        and task.pipeline
        and spec.options.get("task", task.pipeline) != "text-generation"
    ):
        return "pipeline"
    return "prompt"


def prepare_spec(task: TaskSpec, spec: ModelSpec, route: str) -> ModelSpec:
    """``spec`` with the pipeline options its route needs (the user's own options win)."""
    if route != "pipeline":
        return spec
    options = {"task": task.pipeline, **spec.options}
    user_kw = spec.options.get("pipeline_kwargs")
    if user_kw is not None and not isinstance(user_kw, dict):
        raise UsageError(
            f"{spec.ref}: pipeline_kwargs must be a mapping, e.g. -o 'pipeline_kwargs={{aggregation_strategy: "
            f"simple}}', not {user_kw!r}."
        )
    if task.pipeline_kwargs or user_kw:
        options["pipeline_kwargs"] = {
            **task.pipeline_kwargs,
            **(user_kw if isinstance(user_kw, dict) else {}),
        }
    return spec.model_copy(update={"options": options})


def _case_meta(task: str, case: TaskCase) -> dict[str, Any]:
    """What each stored result carries about its case."""
    gold = [e.as_dict() for e in case.gold] if task == "ner" else case.gold
    return {
        "prompt_id": task,
        "case_id": case.id,
        "line": case.line,
        "vars": {"input": case.input, **case.extra},
        "gold": gold,
    }


def _cells(
    task: TaskSpec, data: Dataset, specs: Sequence[ModelSpec], routes: Sequence[str], settings: EvalSettings
) -> list[Cell]:
    params = GenParams(
        max_tokens=settings.max_tokens or task.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
    )
    cells = []
    for m, (spec, route) in enumerate(zip(specs, routes, strict=True)):
        for case in data.cases:
            content = (
                case.input
                if route == "pipeline"
                else build_prompt(
                    task.name, case, data, src_lang=settings.src_lang, tgt_lang=settings.tgt_lang
                )
            )
            request = Request(messages=[Message(role="user", content=content)], params=params)
            cells.extend(Cell(m, case.index, r, spec, request) for r in range(settings.repeats))
    return cells


def _tests_for(case: TaskCase) -> str:
    """The case's tests; HumanEval-style ``def check(candidate)`` tests are called on the entry point."""
    tests, entry = case.gold, case.extra.get("entry_point")
    if (
        entry
        and re.search(r"^def check\(", tests, re.MULTILINE)
        and not re.search(r"^check\(", tests, re.MULTILINE)
    ):
        # an entry point named like a builtin (``max``) is the code's only as solution.max: a bare name in the
        # tests always means the builtin (scoring/sandbox_child.py), so a model cannot shadow what tests call
        tests += f"\n\nimport solution\ncheck(solution.{entry})\n" if hasattr(builtins, entry) \
            else f"\n\ncheck({entry})\n"
    return tests


def _run_code(
    rows: list[dict[str, Any]], data: Dataset, timeout_s: float, progress: OnProgress
) -> dict[int, dict[str, Any] | None]:
    """Run each answer's code with its case's tests in the sandbox: result id -> outcome (None: no code)."""
    import os

    from ..scoring.sandbox import extract_code, run_tests

    def one(row: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        code = extract_code(row["text"]) if row["ok"] else ""
        if not code.strip():
            outcome = None
        else:
            res = run_tests(code, _tests_for(data.cases[row["case_index"]]), timeout_s=timeout_s)
            outcome = {
                "status": res.status,
                "passed": bool(res.passed),
                "duration_ms": res.duration_ms,
                "stderr": res.stderr,
            }
        progress("test", row["model_index"], bool(outcome and outcome["passed"]))
        return row["id"], outcome

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return dict(pool.map(one, rows))


def _embedding_result(
    spec: ModelSpec,
    m: int,
    case: TaskCase,
    meta: dict[str, Any],
    text: str,
    ms: float,
    load_ms: float | None,
    n_tokens: int,
    prompt: str,
) -> Result:
    return Result(
        model=spec.ref,
        provider=spec.provider,
        model_name=spec.model,
        ok=True,
        text=text,
        finish_reason="stop",
        started_at=datetime.now(UTC),
        timing=Timing(load_ms=load_ms, ttft_ms=ms, e2e_ms=ms, n_chunks=1),
        usage=Usage(input_tokens=n_tokens, output_tokens=0, method="exact"),
        cost=Cost(total=Decimal(0), input=Decimal(0), output=Decimal(0), source="local"),
        request=Request(messages=[Message(role="user", content=prompt)]),
        options=spec.options,
        case=meta,
        model_index=m,
        case_index=case.index,
        repeat_index=0,
    )


def _run_embeddings(
    data: Dataset,
    specs: Sequence[ModelSpec],
    store: Store,
    run_id: str,
    ks: Sequence[int],
    progress: OnProgress,
) -> dict[str, Any]:
    """Encode every case with every embedding model (timed per case); store one result per case.

    STS: both sentences are encoded together; the answer is their cosine similarity. Retrieval: the corpus is
    encoded once (its time is ``corpus_encode_ms``), then each query; the answer is the rank of the query's
    document among all documents by cosine similarity.
    """
    import numpy as np

    from ..engine.execute import failed_result
    from ..providers.hf import looks_like_path
    from ..scoring.embedding import load_embedder

    try:  # the terminal shows our progress bars, not transformers' "Loading weights"
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    extra: dict[str, Any] = {"corpus_encode_ms": {}}
    for m, spec in enumerate(specs):
        source = str(Path(spec.model).expanduser()) if looks_like_path(spec.model) else spec.model
        progress("loading", m, True)
        results, t = [], perf_counter_ns()
        try:
            embedder = load_embedder(source)
            load_ms: float | None = (perf_counter_ns() - t) / 1e6

            def encode(texts: list[str], embedder: Any = embedder) -> tuple[Any, float, int]:
                t0 = perf_counter_ns()
                vectors = embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
                ms = (perf_counter_ns() - t0) / 1e6
                n_tokens = sum(len(ids) for ids in embedder.tokenizer(texts)["input_ids"])
                return vectors, ms, n_tokens

            if data.mode == "retrieval":
                corpus, corpus_ms, _ = encode(data.corpus)
                extra["corpus_encode_ms"][spec.ref] = corpus_ms
            for case in data.cases:
                meta = _case_meta("embeddings", case)
                if data.mode == "sts":
                    vectors, ms, n_tok = encode([case.input, case.extra["sentence2"]])
                    sim = float(np.dot(vectors[0], vectors[1]))
                    scores = {"valid": True, "similarity": sim}
                    text, prompt = json.dumps({"similarity": sim}), f"{case.input}\n{case.extra['sentence2']}"
                else:
                    vectors, ms, n_tok = encode([case.input])
                    order = np.argsort(-(corpus @ vectors[0]), kind="stable")
                    rank = int(np.flatnonzero(order == case.gold)[0]) + 1
                    scores = {
                        "valid": True,
                        "rank": rank,
                        "rr": 1.0 / rank,
                        **{f"recall@{k}": 1.0 if rank <= k else 0.0 for k in ks},
                    }
                    text, prompt = (
                        json.dumps({"rank": rank, "top": [int(i) for i in order[: max(ks)]]}),
                        case.input,
                    )
                result = _embedding_result(spec, m, case, meta, text, ms, load_ms, n_tok, prompt)
                result.scores = {"task": scores}
                results.append(result)
                load_ms = None
                progress("embed", m, True)
        except TryoutsError as exc:  # this model fails on every case; the others go on
            results = []
            for case in data.cases:
                request = Request(messages=[Message(role="user", content=case.input)])
                r = failed_result(
                    spec,
                    request,
                    exc,
                    model_index=m,
                    case_index=case.index,
                    repeat_index=0,
                    case=_case_meta("embeddings", case),
                )
                r.scores = {"task": {"valid": False, "similarity": None, "rank": None, "rr": 0.0}}
                results.append(r)
                progress("embed", m, False)
        store.add_results(run_id, results)
    return extra


def evaluate(
    task_name: str,
    data: Dataset,
    specs: Sequence[ModelSpec],
    *,
    store: Store,
    settings: EvalSettings | None = None,
    progress: OnProgress | None = None,
    on_run: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Run ``task_name`` on ``data`` with every model; store and score it; return ``(run_id, report)``.

    The report (see :func:`tryouts.tasks.scoring.build_report`) is also stored as the run's
    ``meta["eval_task"]``. ``on_run`` is called with the run id as soon as the run exists.

    Raises:
        UsageError: a model that cannot run this task (e.g. an API model for embeddings), bad settings.
    """

    from ..engine.events import CellRetry, ModelLoading, ResultStored
    from ..engine.interrupt import run_interruptible
    from ..engine.run import Policy, run_cells

    settings = settings or EvalSettings()
    task = get_task(task_name)
    report_progress = progress or (lambda stage, m, ok: None)
    if settings.repeats < 1:
        raise UsageError("--repeats must be at least 1.")
    if not specs:
        raise UsageError("Give at least one model with -m PROVIDER:MODEL.")
    if task.name == "code":  # refuse before any model runs where the code cannot be isolated
        from ..scoring.sandbox import require_isolation

        require_isolation()
    routes = [model_route(task, s) for s in specs]
    specs = [prepare_spec(task, s, r) for s, r in zip(specs, routes, strict=True)]
    repeats = 1 if task.name == "embeddings" else settings.repeats  # encoding is deterministic
    cells = [] if task.name == "embeddings" else _cells(task, data, specs, routes, settings)
    meta = {
        "task": task.name,
        "data": str(data.path),
        "n_cases": len(data.cases),
        "repeats": repeats,
        "routes": routes,
        "labels": [s.ref for s in specs],
        **settings.extra_meta,
    }
    run_id = store.create_run(
        "eval-task",
        [s.ref for s in specs],
        {"task": task.name, "data": str(data.path), "cases": len(data.cases)},
        meta,
    )
    if on_run:
        on_run(run_id)
    try:
        extra: dict[str, Any] = {}
        if task.name == "embeddings":
            extra = _run_embeddings(data, specs, store, run_id, settings.ks, report_progress)
        else:

            def on_event(event: Any) -> None:
                if isinstance(event, ResultStored):
                    report_progress("answer", event.model_index, bool(event.result.ok))
                elif isinstance(event, CellRetry | ModelLoading):
                    report_progress("retry" if isinstance(event, CellRetry) else "loading", event.model_index, True)

            cases = {c.index: _case_meta(task.name, c) for c in data.cases}
            run_interruptible(
                run_cells(
                    cells,
                    store=store,
                    run_id=run_id,
                    policy=Policy(use_cache=settings.use_cache),
                    cases=cases,
                    on_event=on_event,
                    allow_cache=repeats == 1,
                )
            )
        rows = store.get_run(run_id)["results"]
        outcomes = _run_code(rows, data, settings.timeout_s, report_progress) if task.name == "code" else {}
        by_model: list[list[dict[str, Any]]] = [[] for _ in specs]
        scored: list[dict[tuple[int, int], dict[str, Any]]] = [{} for _ in specs]
        updates: dict[int, dict[str, Any]] = {}
        for row in rows:
            m, key = row["model_index"], (row["case_index"], row["repeat_index"])
            by_model[m].append(row)
            if task.name == "embeddings":
                scored[m][key] = (row.get("scores") or {}).get("task") or {"valid": False}
                continue
            s = score_answer(
                task.name,
                row["text"],
                row["ok"],
                pipeline=routes[m] == "pipeline",
                case=data.cases[row["case_index"]],
                data=data,
                sandbox=outcomes.get(row["id"]),
            )
            scored[m][key] = s
            updates[row["id"]] = {**(row.get("scores") or {}), "task": s}
        if updates:
            store.update_scores(updates)
        report = build_report(
            task.name,
            data,
            [{"model": s.ref, "route": r} for s, r in zip(specs, routes, strict=True)],
            scored,
            by_model,
            repeats=repeats,
            ks=settings.ks,
        )
        report.update(extra)
        store.update_run_meta(run_id, {"eval_task": report})
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted")
        raise
    except Exception:
        store.finish_run(run_id, "failed")
        raise
    n_failed = sum(m["failed"] for m in report["models"])
    n_total = sum(m["results"] for m in report["models"])
    store.finish_run(run_id, finished_status(n_total, n_failed))
    return run_id, report
