"""``tryouts eval-task``: compare task-specific models on labeled data (docs/tasks.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from . import app
from .compare import DB_HELP, open_store

_TASK_HELP = "classification, ner, translation, summarization, embeddings or code (see docs/tasks.md)."


def _ks(raw: str) -> tuple[int, ...]:
    from ..errors import UsageError

    try:
        ks = sorted({int(x) for x in raw.split(",") if x.strip()})
    except ValueError:
        ks = []
    if not ks or ks[0] < 1:
        raise UsageError(f"--k {raw!r} must be positive whole numbers separated by commas, e.g. --k 1,5.")
    return tuple(ks)


def _ci(p: dict[str, Any] | None, digits: int = 3) -> str:
    if not p or p.get("mean") is None:
        return "-"
    if p.get("low") is None:
        return f"{p['mean']:.{digits}f}"
    return f"{p['mean']:.{digits}f} [{p['low']:.{digits}f}–{p['high']:.{digits}f}]"


def _num(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _title(name: str) -> str:
    from ..tasks.scoring import metric_title

    return metric_title(name)


def _label(ref: str, index: int) -> str:
    """``N. name``: the model's position (comparisons name it) and its short label."""
    from .render import short_label

    name = short_label(ref)
    if len(name) > 40:  # e.g. a replay script
        name = name[:39] + "…"
    return f"{index + 1}. {name}"


def print_report(console: Any, report: dict[str, Any]) -> None:
    """The task report as tables: metrics per model, then task details, then paired comparisons."""
    from rich.table import Table

    from .render import fmt_cost

    task, models = report["task"], report["models"]

    mode = f" ({report['mode']})" if report.get("mode") else ""
    console.print(
        f"[bold]{task}{mode}[/] on {report['data']}: {report['n_cases']} cases, "
        f"{report['repeats']} repeat(s), {len(models)} model(s). Intervals: 95% bootstrap over cases."
    )
    digits = 1 if task == "translation" else 3
    table = Table(title="Task metrics", title_justify="left", header_style="bold")
    names = list(models[0]["intervals"]) if models else []
    extra: list[tuple[str, Any]] = []
    if task == "ner":
        extra = [
            (h, lambda mm, k=k: _num(mm["metrics"].get(k)))
            for h, k in (("Precision", "precision"), ("Recall", "recall"))
        ]
    for col in (
        "Model",
        "Route",
        "Results",
        "Failed",
        "Invalid",
        *(_title(n) + " (95% CI)" for n in names),
        *(h for h, _ in extra),
        "E2E p50 ms",
        "Cost USD",
    ):
        table.add_column(col, justify="left" if col in ("Model", "Route") else "right")
    for mm in models:
        cost = fmt_cost(mm["cost_usd"], mm.get("cost_source"))
        table.add_row(
            Text(_label(mm["model"], mm["index"])),
            mm["route"],
            str(mm["results"]),
            str(mm["failed"]),
            str(mm["invalid"]),
            *(_ci(mm["intervals"][n], digits) for n in names),
            *(fn(mm) for _, fn in extra),
            _num(mm["e2e_ms_p50"], 1),
            cost,
        )
    console.print(table)
    if task == "classification":
        for mm in models:
            conf = mm["metrics"]["confusion"]
            t = Table(
                title=f"Confusion matrix: {_label(mm['model'], mm['index'])} "
                "(rows: gold, columns: predicted)",
                title_justify="left",
                header_style="bold",
            )
            t.add_column("gold \\ predicted")
            for c in conf["columns"]:
                t.add_column(c, justify="right")
            for label, row in zip(conf["labels"], conf["matrix"], strict=True):
                t.add_row(Text(label), *(str(v) for v in row))
            console.print(t)
    if task == "code":
        t = Table(
            title="pass@k and pass^k (mean over cases; from repeats)",
            title_justify="left",
            header_style="bold",
        )
        ks = list(models[0]["metrics"]["pass_k"]) if models else []
        t.add_column("Model")
        for k in ks:
            t.add_column(f"pass@{k}", justify="right")
            t.add_column(f"pass^{k}", justify="right")
        t.add_column("Outcomes")
        for mm in models:
            pk = mm["metrics"]["pass_k"]
            t.add_row(
                Text(_label(mm["model"], mm["index"])),
                *(v for k in ks for v in (_num(pk[k]["pass@k"]), _num(pk[k]["pass^k"]))),
                ", ".join(f"{s} {n}" for s, n in sorted(mm["metrics"]["outcomes"].items())),
            )
        console.print(t)
    if report.get("comparisons"):
        t = Table(
            title=f"Paired comparisons with {_label(models[0]['model'], 0)} ({_title(report['primary'])}, "
            "same cases)",
            title_justify="left",
            header_style="bold",
        )
        for col in ("Model", "Difference (95% CI)", "p-value (test)", "Sign test (wins/losses/ties, p)", "Verdict"):
            t.add_column(col, justify="left" if col in ("Model", "Verdict") else "right")
        for c in report["comparisons"]:
            sign = c.get("sign_test")
            sign_text = (
                f"{sign['wins_b']}/{sign['wins_a']}/{sign['ties']}, p={sign['p_value']:.3g}" if sign else "-"
            )
            diff = "-" if c["diff"] is None else f"{c['diff']:+.{digits}f}"
            if c["diff"] is not None and c.get("low") is not None:
                diff += f" [{c['low']:+.{digits}f}–{c['high']:+.{digits}f}]"
            test = "exact" if str(c.get("test") or "").startswith("exact") else "bootstrap"
            t.add_row(
                Text(_label(c["model"], c["model_index"])),
                diff,
                "-" if c["p_value"] is None else f"{c['p_value']:.3g} ({test})",
                sign_text,
                c.get("verdict") or "",
            )
        console.print(t)
    for mm in models:
        if mm.get("failed") and mm.get("first_error"):
            console.print(Text(f"✗ {_label(mm['model'], mm['index'])}: {mm['failed']} request(s) failed (scored as "
                               f"wrong); first: {mm['first_error']}"), highlight=False)
    if any(mm["route"] != "pipeline" and mm["invalid"] for mm in models):
        console.print(
            "Invalid: answers not in the expected form (no label, no JSON list, no code block); "
            "they score as wrong.",
            style="dim",
        )


def _tiny_models() -> None:
    import shlex

    from ..tasks.tiny import ensure_tiny_task_models, minilm_path

    paths = ensure_tiny_task_models()
    print(
        "# Tiny random-weight task models (chance-level scores); "
        'use with: eval "$(tryouts eval-task --tiny-models)"'
    )
    for name, path in paths.items():
        print(f"export TINY_{name.upper()}={shlex.quote(str(path))}")
    minilm = minilm_path()
    if minilm is not None:
        print(f"export MINILM={shlex.quote(str(minilm))}")


@app.command("eval-task", rich_help_panel="Quality")
def eval_task(
    task: str | None = typer.Argument(None, help=f"The task: {_TASK_HELP} Or a task file (.yaml) with the settings."),
    data: Path | None = typer.Option(None, "--data", "-d", help="Labeled examples: a CSV or JSONL file."),
    model: list[str] = typer.Option(
        [], "--model", "-m", help="A model as PROVIDER:MODEL; repeat for each model."
    ),
    option: list[str] = typer.Option(
        [],
        "--option",
        "-o",
        help="Model option KEY=VALUE for every model, or N:KEY=VALUE for the N-th model only.",
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", "-r", min=1, help="Answers per case and model (code: pass@k). [default: 1]"
    ),
    k: str | None = typer.Option(
        None, "--k", help="k values, e.g. 1,5: pass@k (code) or recall@k (retrieval)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1, help="Use only the first N rows of the data."
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Output tokens per answer (per-task default)."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", "-t", min=0.0, help="Sampling temperature."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, where the provider supports one."),
    timeout_s: float | None = typer.Option(
        None, "--timeout-s", min=0.1, help="Code: time limit per test run, seconds. [default: 10]"
    ),
    src_lang: str | None = typer.Option(
        None, "--src-lang", help="Translation: source language named in prompts."
    ),
    tgt_lang: str | None = typer.Option(
        None, "--tgt-lang", help="Translation: target language named in prompts."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the response cache."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show progress bars (terminals only)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json (the report)."),
    tiny_models: bool = typer.Option(
        False, "--tiny-models", help="Build the tiny offline task models (once) and print their paths."
    ),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Compare models on labeled data: classification, ner, translation, summarization, embeddings, code.

    Example: tryouts eval-task classification -d reviews.csv -m hf:./clf -m openai:gpt-4o-mini

    Local hf: models run as the task's transformers pipeline; other models get a task prompt and their answer
    is parsed. Metrics per model with 95% bootstrap intervals, and each model paired with the first on the
    same cases. Stored as a run ('tryouts show RUN' prints it again). Exit code 0 when every answer was
    obtained, 2 when some requests failed, 1 on bad input.
    """
    import json

    from ..errors import UsageError
    from ..tasks import get_task
    from ..tasks.data import load_dataset
    from ..tasks.evaluate import EvalSettings, evaluate
    from ..types import ModelSpec
    from .compare import parse_options
    from .render import make_console

    if tiny_models:
        _tiny_models()
        return 0
    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    if task is not None and task.endswith((".yaml", ".yml")):  # a task file: its settings, then -m/-o add to them
        from ..tasks.file import load_task_file

        spec_file, file_data = load_task_file(Path(task))
        data = data or file_data
        # a flag given on the command line wins over the file
        task = spec_file.task
        repeats = repeats if repeats is not None else spec_file.repeats
        limit = limit if limit is not None else spec_file.limit
        timeout_s = timeout_s if timeout_s is not None else spec_file.timeout_s
        k = k or (",".join(str(x) for x in spec_file.k) if spec_file.k else None)
        max_tokens = max_tokens if max_tokens is not None else spec_file.max_tokens
        temperature = temperature if temperature is not None else spec_file.temperature
        seed = seed if seed is not None else spec_file.seed
        src_lang, tgt_lang = src_lang or spec_file.src_lang, tgt_lang or spec_file.tgt_lang
        file_models = spec_file.specs()
    else:
        file_models = []
    repeats = repeats if repeats is not None else 1
    timeout_s = timeout_s if timeout_s is not None else 10.0
    if task is None:
        raise UsageError(
            f"Give a task: {_TASK_HELP} E.g. tryouts eval-task classification --data FILE -m MODEL."
        )
    spec = get_task(task)
    if data is None:
        raise UsageError(
            f"Give the labeled data with --data FILE (CSV or JSONL; see docs/tasks.md for {spec.name})."
        )
    if not model and not file_models:
        raise UsageError("Give at least one model with -m PROVIDER:MODEL (repeat -m for each model).")
    ks = _ks(k) if k else (1, 5)
    if spec.name == "code":  # pass@k needs k answers per case; by default pass@1, pass@5 and pass@repeats
        if k and ks[-1] > repeats:
            raise UsageError(
                f"pass@{ks[-1]} needs at least {ks[-1]} answers per case: add --repeats {ks[-1]}."
            )
        ks = ks if k else tuple(sorted({x for x in (1, 5, repeats) if x <= repeats}))
    dataset = load_dataset(spec.name, data, limit=limit)
    refs = [ref for ref, _ in file_models] + list(model)
    options = parse_options(option, len(refs))
    base = [opts for _, opts in file_models] + [{} for _ in model]
    specs = [ModelSpec.parse(ref, {**own, **opts}) for ref, own, opts in zip(refs, base, options, strict=True)]
    settings = EvalSettings(
        repeats=repeats,
        ks=ks,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        timeout_s=timeout_s,
        src_lang=src_lang,
        tgt_lang=tgt_lang,
        use_cache=not no_cache,
    )
    console = make_console(stderr=fmt == "json")
    store = open_store(db)

    from rich.progress import BarColumn, Progress, TextColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        console=console,
        disable=not (progress and console.is_terminal),
    )
    per_model = len(dataset.cases) * (1 if spec.name == "embeddings" else repeats)
    answer_bars = {m: bars.add_task(_label(s.ref, m), total=per_model, failed=0) for m, s in enumerate(specs)}
    test_bars: dict[int, Any] = {}
    failed: dict[tuple[str, int], int] = {}

    def on_progress(stage: str, m: int, ok: bool) -> None:
        if stage in ("answer", "embed"):
            failed[("a", m)] = failed.get(("a", m), 0) + (not ok)
            bars.update(answer_bars[m], advance=1, failed=failed[("a", m)])
        elif stage == "test":
            if m not in test_bars:
                test_bars[m] = bars.add_task(f"tests: {_label(specs[m].ref, m)}", total=per_model, failed=0)
            failed[("t", m)] = failed.get(("t", m), 0) + (not ok)
            bars.update(test_bars[m], advance=1, failed=failed[("t", m)])

    def on_run(run_id: str) -> None:
        console.print(
            f"Run [bold]{run_id}[/]: {spec.name} on {data} — {len(dataset.cases)} cases × {len(specs)} "
            f"model(s){f' × {repeats} repeats' if repeats > 1 and spec.name != 'embeddings' else ''}."
        )

    with bars:
        run_id, report = evaluate(
            spec.name, dataset, specs, store=store, settings=settings, progress=on_progress, on_run=on_run
        )
    if fmt == "json":
        print(json.dumps({"run_id": run_id, **report}, indent=2, default=str))
    else:
        print_report(console, report)
        console.print(
            f"Stored as run [bold]{run_id}[/]. Next: tryouts show {run_id} · tryouts export {run_id} --format csv"
        )
    return 2 if any(m["failed"] for m in report["models"]) else 0
