"""``tryouts score``: add scores to a stored run (embedding similarity, custom scorers, an LLM judge)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ..usecases.scoring import check_judge_ready
from . import app
from .common import DB_HELP, open_store, scoring_from_options


@app.command(rich_help_panel="Quality")
def score(
    run: str = typer.Argument("latest", help="A run id, a unique prefix of one, or 'latest'."),
    suite_file: Path | None = typer.Option(
        None, "--suite", help="Take the scoring section from this suite (default: the run's own suite file)."),
    judge: str | None = typer.Option(None, "--judge", help="A judge model, e.g. openai:gpt-6.1-terra (any provider)."),
    rubric: str | None = typer.Option(None, "--rubric", help="Have the judge score every answer on this rubric."),
    scale: str = typer.Option("1-5", "--scale", help="The rubric's scale, LOW-HIGH."),
    pairwise: bool = typer.Option(False, "--pairwise", help="Have the judge compare the models' answers in pairs "
                                  "(asked in both orders; only consistent verdicts count)."),
    embedding: str | None = typer.Option(None, "--embedding", help="A sentence-transformers model: similarity to "
                                         "each case's expected answer."),
    scorer: list[str] = typer.Option([], "--scorer", help="A custom scorer, file.py:function or module:function "
                                     "(repeatable)."),
    option: list[str] = typer.Option([], "--judge-option", "-o", help="A judge provider option KEY=VALUE "
                                     "(repeatable), e.g. -o base_url=http://127.0.0.1:8080/v1."),
    batch: bool = typer.Option(False, "--batch", help="Send the judge's calls through its provider's batch API "
                               "(OpenAI, Anthropic, OpenRouter): half price, within 24 h; stopped, run the same command again "
                               "to collect them (docs/batch.md)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Score a stored run: only what is missing is computed, so it can be re-run (failed judge calls are retried).

    With no scoring options, the run's suite file's 'scoring' section is used. Exit code 2 when judge calls
    failed (run it again to retry them), 1 on bad usage.

    Examples: tryouts score latest --judge openai:gpt-6.1-terra --rubric "Is the answer correct and complete?"
    · tryouts score RUN --embedding sentence-transformers/all-MiniLM-L6-v2 · tryouts score RUN --scorer examples/scorers.py:names_a_capital
    """
    from ..errors import UsageError
    from ..scoring.summary import quality_report
    from ..suite import load_suite
    from ..usecases.scoring import score_run
    from ..usecases.suites import suite_of_run, suite_policy, trusted
    from .render import make_console
    from .views import print_summary

    store = open_store(db)
    data = store.get_run(run)
    run_id, meta = data["run"]["id"], data["run"]["meta"]
    console = make_console()
    explicit = judge or rubric or pairwise or embedding or scorer
    suite = None
    gone = "The suite file {} is gone; pass --suite FILE or scoring options such as --judge."
    if suite_file is not None:
        if not suite_file.is_file():
            raise UsageError(gone.format(suite_file))
        suite = load_suite(suite_file)
    elif not explicit and (meta.get("suite") or meta.get("suite_path")):
        # the suite as it ran, stored with the run, or its file: only when this user signed them (trust.py)
        if not meta.get("suite") and trusted(meta) and not Path(str(meta["suite_path"])).is_file():
            raise UsageError(gone.format(meta["suite_path"]))
        suite = suite_of_run(meta, run_id=run_id, command=f"tryouts score {run_id} --suite {{file}}")
    if explicit:
        scoring = scoring_from_options(judge=judge, rubric=rubric, scale=scale, pairwise=pairwise,
                                       embedding=embedding, scorers=scorer, judge_options=option)
        base_dir = Path.cwd()
    elif suite is not None and suite.scoring is not None:
        scoring, base_dir = suite.scoring, suite.base_dir
    else:
        raise UsageError(f"Run {run_id} has no scoring section in its suite: give scoring options, e.g. --judge "
                         "openai:gpt-6.1-terra --rubric 'Is it correct?', or --embedding MODEL, or --scorer file.py:fn.")
    policy = suite_policy(suite, no_cache=True) if suite is not None else None
    if batch:
        from ..engine.policy import Policy

        policy = policy or Policy()
        policy.batch = True
    check_judge_ready(scoring)
    report = score_run(store, run_id, scoring, base_dir=base_dir, policy=policy,
                       say=lambda msg: console.print(Text(msg), highlight=False))
    data = store.get_run(run_id)
    labels = meta.get("labels") or data["run"]["models"]
    quality = quality_report(data["results"], labels)
    store.update_run_meta(run_id, {"quality": quality})
    print_summary(console, data["results"], labels, quality)
    j = report.get("judge")
    if j:
        cost = "unknown" if j["cost_usd"] is None else f"${float(j['cost_usd']):.4f}"
        console.print(f"Judge {j['judge']}: {j['calls']} calls ({j['failed']} failed), cost {cost}, "
                      f"{j['e2e_ms_total'] / 1000:.1f} s of requests — recorded apart from the run's results."
                      + (f" Pairwise: {j['pairs']} pairs, {j['votes_added']} new judge votes, "
                         f"{j['inconsistent_pairs']} inconsistent (not counted)." if j["pairs"] else "")
                      + (f" {j['identical_pairs']} pairs of identical answers not judged." if j["identical_pairs"]
                         else ""),
                      highlight=False)
    console.print(f"Next: tryouts rank {run_id}" if j and j["pairs"] else f"Next: tryouts show {run_id}")
    return 2 if j and j["failed"] else 0
