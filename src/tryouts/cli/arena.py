"""``tryouts arena`` (blind pairwise votes in the terminal) and ``tryouts rank`` (Bradley–Terry ratings)."""

from __future__ import annotations

import typer
from rich.text import Text

from ..usecases.arena import arena_pairs, identical_pairs, rankings
from . import app
from .common import DB_HELP, open_store

KEYS = {"a": "a", "b": "b", "t": "tie", "tie": "tie", "x": "both_bad", "bad": "both_bad"}


@app.command(rich_help_panel="Quality")
def arena(
    run: str = typer.Argument("latest", help="A run id, a unique prefix of one, or 'latest'."),
    limit: int = typer.Option(0, "--limit", "-n", min=0, help="Stop after this many votes (0 = until done or quit)."),
    seed: int | None = typer.Option(None, "--seed", help="Fix the order of the pairs (default: random)."),
    reveal: bool = typer.Option(False, "--reveal", help="Name the two models after each vote (default: only at the end)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Vote blind on pairs of answers from a run: A, B, tie or both bad. Votes are stored for 'tryouts rank'.

    Two models' answers to the same prompt are shown as A and B in random order, without their names.
    Keys: a = A is better, b = B is better, t = tie, x = both bad, s = skip, q = quit.
    """
    from rich.panel import Panel
    from rich.text import Text

    from .render import make_console, short_label, styled

    store = open_store(db)
    data = store.get_run(run)
    run_id, meta = data["run"]["id"], data["run"]["meta"]
    labels = meta.get("labels") or data["run"]["models"]
    console = make_console()

    def label(r: dict) -> str:
        return labels[r["model_index"]] if r["model_index"] < len(labels) else r["model"]

    voted = {(v["result_a"], v["result_b"]) for v in store.votes(run_id, "human")}
    pairs = arena_pairs(data["results"], voted, seed)
    same = identical_pairs(data["results"])
    skipped = (f" Not shown: {same} pair{'s' * (same != 1)} of identical answers (the same text once whitespace "
               "at both ends is trimmed), with nothing to choose between." if same else "")
    if not pairs:
        console.print((f"Nothing to vote on in run {run_id}: it needs two or more models with answers to the same "
                       "case, and every such pair has a vote already." if voted else
                       f"Nothing to vote on in run {run_id}: it needs two or more models with answers to the same "
                       "case.") + skipped)
        return 0
    total = min(len(pairs), limit) if limit else len(pairs)
    console.print(styled("Arena on run [bold]{}[/]: {} pairs to vote on. "
                         "Keys: [bold]a[/] A better · [bold]b[/] B better · [bold]t[/] tie · [bold]x[/] both bad · "
                         "[bold]s[/] skip · [bold]q[/] quit", run_id, len(pairs)))
    if skipped:
        console.print(Text(skipped.strip(), style="dim"))
    n_votes = 0
    for i, (x, y) in enumerate(pairs[:total], 1):
        messages = x["request"]["messages"]
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        console.rule(f"{i}/{total} · case {x['case_index'] + 1}")
        console.print(Text(prompt, style="dim"))  # Text: never markup, whatever the prompt holds
        console.print(Panel(Text(x["text"]), title="A", title_align="left"))
        console.print(Panel(Text(y["text"]), title="B", title_align="left"))
        while True:
            try:
                key = console.input("Vote [a/b/t/x, s skip, q quit]: ").strip().lower()
            except EOFError:
                key = "q"
            if key in KEYS or key in ("s", "skip", "q", "quit"):
                break
            console.print("Type a, b, t (tie), x (both bad), s (skip) or q (quit).")
        if key in ("q", "quit"):
            break
        if key in ("s", "skip"):
            continue
        store.add_vote(run_id, case_index=x["case_index"], repeat_index=x["repeat_index"], result_a=x["id"],
                       result_b=y["id"], model_a=label(x), model_b=label(y), verdict=KEYS[key], source="human")
        n_votes += 1
        if reveal:
            console.print(Text(f"A was {short_label(label(x))}, B was {short_label(label(y))}.", style="dim"))
    console.print(f"{n_votes} votes stored. Ratings: tryouts rank {run_id}")
    return 0


def _rank_cell(row: dict, rows: list[dict]) -> str:
    """The "#" of a rating row: its rank, marked "=" when another model shares it."""
    if row.get("rank") is None:
        return "-"
    shared = any(o is not row and o.get("rank") == row["rank"] for o in rows)
    return f"{row['rank']}=" if shared else str(row["rank"])


def _range_cell(row: dict) -> str:
    rr = row.get("rank_range")
    return "-" if not rr else str(rr[0]) if rr[0] == rr[1] else f"{rr[0]}–{rr[1]}"


def _ci_cell(row: dict | None) -> str:
    return f"{row['low']:.0f}–{row['high']:.0f}" if row and row.get("low") is not None else "-"


def _style_line(fit: dict) -> str:
    """The style coefficients of a style-controlled fit, in one line."""
    parts = []
    for c in fit["coefficients"]:
        if c["coef"] is None:
            parts.append(f"{c['feature']} n/a (equal in every pair)")
        else:
            ci = f" [{c['low']:+.2f}, {c['high']:+.2f}]" if c["low"] is not None else ""
            parts.append(f"{c['feature']} {c['coef']:+.2f}{ci}")
    return (f"Style coefficients ({fit['votes']} votes; change in the log-odds of preferring A per standardized unit "
            "of the normalized difference A - B): " + ", ".join(parts))


@app.command(rich_help_panel="Quality")
def rank(
    run: str = typer.Argument("latest", help="A run id, a unique prefix of one, or 'latest'."),
    source: str = typer.Option("all", "--source", help="Whose votes: human (the arena), judge (LLM judges) or all "
                               "(both, in separate tables)."),
    resamples: int = typer.Option(1000, "--resamples", min=0, help="Bootstrap refits for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (results are reproducible)."),
    style_control: bool = typer.Option(False, "--style-control", help="Also fit the ratings with the answers' "
                                       "style as covariates (length, Markdown headers, list items, bold), as "
                                       "Chatbot Arena does, and show them beside the plain ones."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table or json."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> int:
    """Rank a run's models by Bradley–Terry ratings from pairwise votes, with bootstrap 95% intervals.

    Human arena votes and LLM-judge verdicts are ranked apart (never mixed). Ratings are on an Elo-like scale
    (mean 1000; +400 means 10:1 odds of being preferred). A model's rank is 1 + the number of models whose
    whole interval lies above its own, so models the votes do not separate share a rank. "Both bad" votes
    express no preference and are counted, not rated; a vote on two identical answers counts as a tie.
    """
    import json

    from rich.table import Table

    from ..errors import UsageError
    from .render import make_console, short_label

    if fmt not in ("table", "json"):
        raise UsageError(f"--format must be table or json, not {fmt!r}.")
    if source not in ("human", "judge", "all"):
        raise UsageError(f"--source must be human, judge or all, not {source!r}.")
    store = open_store(db)
    run_id = store.resolve_run_id(run)
    out = rankings(store, run_id, source, resamples=resamples, seed=seed, style_control=style_control)
    if fmt == "json":
        print(json.dumps({"run_id": run_id, "rankings": out}, indent=2))
        return 0
    console = make_console()
    if not out:
        console.print(f"No votes on run {run_id} yet. Vote with: tryouts arena {run_id} (or have a judge vote: "
                      f"tryouts score {run_id} --judge MODEL --pairwise)")
        return 0
    for name, r in out.items():
        title = "Human votes (arena)" if name == "human" else f"Judge votes ({name.removeprefix('judge:')})"
        same = f"; {r['identical']} on identical answers, counted as ties" if r.get("identical") else ""
        table = Table(title=Text(f"{title}: {r['votes']} votes, {r['decisive']} rated (ties count half; 'both bad' "
                                 f"is not rated{same})", style="italic"), title_justify="left", header_style="bold")
        styled = {row["model"]: row for row in r["style_control"]["ratings"]} if "style_control" in r else None
        columns = ["#", "Model", "Rating", "95% CI", "Ranks"]
        if styled is not None:
            columns += ["Style-ctl", "Style 95% CI", "Style #"]
        for col in [*columns, "W", "L", "T", "Both bad"]:
            table.add_column(col, justify="left" if col == "Model" else "right")
        for row in r["ratings"]:
            rated = row["rating"] is not None
            cells = [_rank_cell(row, r["ratings"]), Text(short_label(row["model"])),
                     f"{row['rating']:.0f}" if rated else "-", _ci_cell(row), _range_cell(row)]
            if styled is not None:
                sc = styled.get(row["model"])
                cells += [f"{sc['rating']:.0f}" if sc else "-", _ci_cell(sc),
                          _rank_cell(sc, r["style_control"]["ratings"]) if sc else "-"]
            table.add_row(*cells, str(row["wins"]), str(row["losses"]), str(row["ties"]), str(row["both_bad"]))
        console.print(table)
        if styled is not None:
            console.print(Text(_style_line(r["style_control"])), style="dim")
    console.print("Bradley–Terry ratings, mean 1000; intervals from refits on resampled votes. # is 1 + the number "
                  "of models whose whole interval lies above this one's (as the LMSYS leaderboard ranks): '=' marks "
                  "a rank shared by models the votes do not separate (tied: their intervals overlap); Ranks is the "
                  "range of ranks the intervals allow." + (" Style-controlled: refitted with the differences in "
                  "length, headers, list items and bold as covariates (docs/scoring.md)." if style_control else ""),
                  style="dim")
    return 0
