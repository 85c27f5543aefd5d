"""``tryouts eval-task``: compare task-specific models on labeled data (docs/tasks.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from . import app
from .common import DB_HELP, open_store
from .views import numbered_label, print_report

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

    Example: tryouts eval-task classification -d reviews.csv -m hf:./clf -m openai:gpt-6-luna

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
    from .common import parse_options
    from .render import make_console, styled

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
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        console=console,
        disable=not (progress and console.is_terminal),
    )
    per_model = len(dataset.cases) * (1 if spec.name == "embeddings" else repeats)
    answer_bars = {m: bars.add_task(numbered_label(s.ref, m), total=per_model, failed=0) for m, s in enumerate(specs)}
    test_bars: dict[int, Any] = {}
    failed: dict[tuple[str, int], int] = {}

    def on_progress(stage: str, m: int, ok: bool) -> None:
        if stage in ("answer", "embed"):
            failed[("a", m)] = failed.get(("a", m), 0) + (not ok)
            bars.update(answer_bars[m], advance=1, failed=failed[("a", m)])
        elif stage == "test":
            if m not in test_bars:
                test_bars[m] = bars.add_task(f"tests: {numbered_label(specs[m].ref, m)}", total=per_model, failed=0)
            failed[("t", m)] = failed.get(("t", m), 0) + (not ok)
            bars.update(test_bars[m], advance=1, failed=failed[("t", m)])

    def on_run(run_id: str) -> None:
        console.print(styled(
            "Run [bold]{}[/]: {} on {} — {} cases × {} model(s){}.", run_id, spec.name, data, len(dataset.cases),
            len(specs), f" × {repeats} repeats" if repeats > 1 and spec.name != "embeddings" else ""
        ))

    with bars:
        run_id, report = evaluate(
            spec.name, dataset, specs, store=store, settings=settings, progress=on_progress, on_run=on_run
        )
    if fmt == "json":
        print(json.dumps({"run_id": run_id, **report}, indent=2, default=str))
    else:
        print_report(console, report)
        console.print(styled(
            "Stored as run [bold]{}[/]. Next: tryouts show {} · tryouts export {} --format csv", run_id, run_id, run_id
        ))
    return 2 if any(m["failed"] for m in report["models"]) else 0
