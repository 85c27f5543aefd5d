"""``tryouts compare``: one prompt through several models, side by side."""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from ..redact import redact
from . import app
from .common import DB_HELP, open_store, parse_options


@app.command(rich_help_panel="Run")
def compare(
    prompt: str = typer.Argument(..., help="The prompt; '-' reads it from standard input."),
    model: list[str] = typer.Option(..., "--model", "-m", help="A model as PROVIDER:MODEL; repeat for each model."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Model option KEY=VALUE for every model, or N:KEY=VALUE for the N-th model only."
    ),
    system: str | None = typer.Option(None, "--system", "-s", help="A system prompt."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Upper bound on output tokens."),
    temperature: float | None = typer.Option(None, "--temperature", "-t", min=0.0, help="Sampling temperature (0 = greedy)."),
    top_p: float | None = typer.Option(None, "--top-p", help="Nucleus sampling."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, where the provider supports one."),
    price: list[str] = typer.Option(
        [], "--price", help="Price override REF=IN,OUT in USD per million tokens (e.g. 'openai:gpt-6-luna=0.20,0.50')."
    ),
    sequential: bool = typer.Option(False, "--sequential", help="Run one model at a time (cleanest timings)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Show outputs streaming side by side (terminals only)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    expect: str | None = typer.Option(
        None, "--expect", help="The expected answer: each output gets reference metrics (exact match, token F1, "
        "chrF, BLEU, ROUGE, edit similarity).", rich_help_panel="Scoring"),
    assertion: list[str] = typer.Option(
        [], "--assert", "-a", help="A check on each output (repeatable): contains:TEXT, icontains:TEXT, equals:TEXT, "
        "regex:RE, starts-with:TEXT, is-json, json-schema:{...}, length:MIN-MAX, latency-ms:MAX, cost-usd:MAX; "
        "'not-' negates; or a suite mapping such as '{type: contains, value: \\[a, b], mode: any}'.",
        rich_help_panel="Scoring"),
    judge: str | None = typer.Option(None, "--judge", help="A judge model (any provider) for --rubric/--pairwise; its "
                                     "cost and latency are recorded apart.", rich_help_panel="Scoring"),
    rubric: str | None = typer.Option(None, "--rubric", help="Have the judge score each output on this rubric.",
                                      rich_help_panel="Scoring"),
    scale: str = typer.Option("1-5", "--scale", help="The rubric's scale, LOW-HIGH.", rich_help_panel="Scoring"),
    pairwise: bool = typer.Option(False, "--pairwise", help="Have the judge compare the outputs in pairs (both "
                                  "orders; only consistent verdicts count).", rich_help_panel="Scoring"),
    embedding: str | None = typer.Option(None, "--embedding", help="A sentence-transformers model: similarity of each "
                                         "output to --expect.", rich_help_panel="Scoring"),
    scorer: list[str] = typer.Option([], "--scorer", help="A custom scorer, file.py:function or module:function "
                                     "(repeatable).", rich_help_panel="Scoring"),
    judge_option: list[str] = typer.Option([], "--judge-option", help="A judge provider option KEY=VALUE "
                                           "(repeatable).", rich_help_panel="Scoring"),
    fail_on_assert: bool = typer.Option(False, "--fail-on-assert", help="Exit 4 when any output failed its --assert "
                                        "checks (for CI).", rich_help_panel="Scoring"),
    min_pass_rate: str | None = typer.Option(None, "--min-pass-rate", help="Exit 4 when the share of models whose "
                                             "output passed every --assert check is under this, e.g. 0.5 or 50%.",
                                             rich_help_panel="Scoring"),
) -> int:
    """Run one prompt through several models and compare outputs, timing and cost, optionally scored.

    Example: tryouts compare "Explain pretrained models in one paragraph" -m hf:./models/tiny -m openai:gpt-6-luna

    Scored: tryouts compare "What is the capital of France?" -m ... -m ... --expect Paris -a icontains:paris
    --judge openai:gpt-6.1-terra --rubric "Is the answer correct?"

    Exit code 0 when every model succeeded, 2 when some failed (the rest are still stored) or judge calls
    failed, 1 on bad usage.
    """
    import json

    from rich.live import Live

    from ..config import price_overrides
    from ..engine.interrupt import run_interruptible
    from ..errors import UsageError
    from ..pricing import PriceOverride
    from ..types import GenParams, ModelSpec
    from ..usecases.compare import compare as run_compare
    from .render import LiveView, make_console, print_outputs, print_results, print_scores, styled

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    from ..usecases.gates import parse_rate

    try:
        rate = parse_rate(min_pass_rate)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise UsageError("The prompt is empty; give it as an argument or pipe it with '-'.")
    options = parse_options(option, len(model))
    specs = [ModelSpec.parse(ref, opts) for ref, opts in zip(model, options, strict=True)]
    prices = price_overrides()
    for item in price:
        ref, sep, value = item.rpartition("=")
        if not sep or not ref:
            raise UsageError(f"--price {item!r} is not REF=IN,OUT.")
        prices[ref] = PriceOverride.parse(value, ref)
    params = GenParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    # every scoring option is checked before anything is sent
    from ..scoring.assertions import from_cli, parse_assertion
    from .common import scoring_from_options

    asserts = [from_cli(a) for a in assertion]
    for i, spec in enumerate(asserts):
        parse_assertion(dict(spec), f"--assert {assertion[i]!r}")
    if embedding and expect is None:
        raise UsageError("--embedding compares each output with the expected answer: give it with --expect TEXT.")
    scoring = scoring_from_options(judge=judge, rubric=rubric, scale=scale, pairwise=pairwise, embedding=embedding,
                                   scorers=scorer, judge_options=judge_option)
    if scoring is not None:
        from pathlib import Path

        from ..scoring.custom import load_scorer

        for ref in scoring.scorers:
            load_scorer(ref, Path.cwd())
        from ..usecases.scoring import check_judge_ready

        check_judge_ready(scoring)
    case = {"expected": expect, "asserts": asserts} if asserts or expect is not None else None

    console = make_console(stderr=fmt == "json")
    store = open_store(db)
    view = LiveView([redact(s.ref) for s in specs])
    use_live = live and console.is_terminal

    async def go():
        return await run_compare(
            prompt, specs, params=params, system=system, store=store, on_event=view.on_event,
            sequential=sequential, prices=prices, case=case,
        )

    if use_live:
        with Live(view, console=console, refresh_per_second=8, transient=True):
            outcome = run_interruptible(go())
    else:
        outcome = run_interruptible(go())
    scoring_notes: list[str] = []  # printed after the tables, where they are read
    judge_failed = 0
    if scoring is not None:
        from pathlib import Path

        from ..errors import TryoutsError
        from ..usecases.scoring import score_run

        try:
            judge_failed = (score_run(store, outcome.run_id, scoring, base_dir=Path.cwd(), say=scoring_notes.append)
                            .get("judge") or {}).get("failed", 0)
        except TryoutsError as exc:  # the outputs are stored: say so, and how to score them later
            scoring_notes.append(f"Scoring failed: {exc.message}\nThe outputs are stored; score them later with: "
                                 f"tryouts score {outcome.run_id} ...")
            judge_failed = 1
    run = store.get_run(outcome.run_id)
    if fmt == "json":
        print(json.dumps(run, indent=2, default=str))
    else:
        print_outputs(console, run["results"])
        print_results(console, run["results"], title=f"Run {outcome.run_id}")
        print_scores(console, run["results"])
    for note in scoring_notes:
        console.print(Text(note), highlight=False)  # may quote a scorer's or a judge's error: text, never markup
    if fmt != "json":
        console.print(styled("Stored as run [bold]{}[/] in {}. Show it again: tryouts show {}", outcome.run_id, store.url,
                             outcome.run_id))
    if not outcome.all_ok or judge_failed:
        return 2
    from ..usecases.gates import ModelFailures, failures, gate

    per_model = failures(run["results"])
    code, reasons = gate(per_model, fail_on_assert=fail_on_assert)
    if rate is not None:  # one cell per model: the pass rate is over the models together
        together = ModelFailures(label="all models", cells=sum(f.cells for f in per_model),
                                 checked=sum(f.checked for f in per_model), passed=sum(f.passed for f in per_model))
        more_code, more = gate([together], min_pass_rate=rate)
        code, reasons = code or more_code, reasons + more
    for reason in reasons:
        console.print(styled("[red]Exit {}:[/] {}", code, reason))
    return code
