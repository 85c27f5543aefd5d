"""Ties in the arena's ranking: models whose bootstrap intervals overlap share a rank (LMSYS: 1 + the number of
models whose lower bound exceeds this model's upper bound), with the range of ranks the intervals allow — in
`tryouts rank` (table and JSON) and the dashboard's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from helpers import serve_dashboard, text_model
from tryouts.scoring.arena_stats import ci_ranks
from tryouts.store import Store


def row(model, rating, low, high):
    return {"model": model, "rating": rating, "low": low, "high": high}


def test_ranks_follow_the_lmsys_rule_and_mark_overlaps():
    rows = ci_ranks([row("a", 1100, 1050, 1150), row("b", 1010, 960, 1060), row("c", 920, 850, 990),
                     row("d", 750, 700, 800), row("e", None, None, None)])
    by = {r["model"]: r for r in rows}
    assert [by[m]["rank"] for m in "abcd"] == [1, 1, 2, 4]  # c: only a's whole interval is above c's
    assert [by[m]["rank_range"] for m in "abcd"] == [[1, 2], [1, 3], [2, 3], [4, 4]]
    assert by["a"]["tied_with"] == ["b"] and by["b"]["tied_with"] == ["a", "c"] and by["c"]["tied_with"] == ["b"]
    assert by["d"]["tied_with"] == []
    assert by["e"]["rank"] is None and by["e"]["rank_range"] is None and by["e"]["tied_with"] == []


def test_without_intervals_ranks_follow_the_ratings():
    rows = ci_ranks([row("a", 1100, None, None), row("b", 1000, None, None), row("c", 1000, None, None)])
    assert [(r["rank"], r["rank_range"], r["tied_with"]) for r in rows] == [(1, [1, 1], []), (2, [2, 3], []),
                                                                             (2, [2, 3], [])]


def tryouts(*args):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


@pytest.fixture
def voted_run(replay_server, tmp_path):
    """Three models; votes where `top` and `peer` beat `low` every time and split evenly between them."""
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris')}", label: top}}
  - {{model: "{text_model(replay_server, 'It is Paris')}", label: peer}}
  - {{model: "{text_model(replay_server, 'Lyon')}", label: low}}
prompts: ["Capital?"]
""")
    db = str(tmp_path / "t.db")
    p = tryouts("run", str(suite), "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    store = Store(db)
    data = store.get_run("latest")
    run_id = data["run"]["id"]
    ids = {r["model_index"]: r["id"] for r in data["results"]}
    names = ["top", "peer", "low"]

    def add(i, j, verdict, n):
        for _ in range(n):
            store.add_vote(run_id, case_index=0, repeat_index=0, result_a=ids[i], result_b=ids[j], model_a=names[i],
                           model_b=names[j], verdict=verdict)

    add(0, 2, "a", 15)
    add(2, 1, "b", 15)
    add(0, 1, "a", 8)
    add(1, 0, "a", 8)
    return db, run_id


def test_rank_marks_models_the_votes_do_not_separate(voted_run):
    db, _ = voted_run
    p = tryouts("rank", "latest", "--db", db, "-f", "json", "--resamples", "300")
    assert p.returncode == 0, p.stderr
    by = {r["model"]: r for r in json.loads(p.stdout)["rankings"]["human"]["ratings"]}
    assert by["top"]["rank"] == by["peer"]["rank"] == 1 and by["low"]["rank"] == 3
    assert by["top"]["tied_with"] == ["peer"] and by["low"]["tied_with"] == []
    assert by["top"]["rank_range"] == [1, 2] and by["low"]["rank_range"] == [3, 3]
    table = tryouts("rank", "latest", "--db", db, "--resamples", "300").stdout
    lines = {line.split("│")[2].strip(): line for line in table.splitlines() if line.count("│") > 5}
    assert lines["top"].split("│")[1].strip() == "1=" and lines["peer"].split("│")[1].strip() == "1="
    assert lines["low"].split("│")[1].strip() == "3" and "1–2" in lines["top"]
    legend = " ".join(table.split())
    assert "'=' marks a rank shared by models the votes do not separate" in legend


def test_the_api_ranks_carry_the_ties(voted_run):
    db, run_id = voted_run
    with serve_dashboard(db) as (url, app):
        c = httpx.Client(headers={"Authorization": f"Bearer {app.state.token}"}, timeout=60)
        human = c.get(f"{url}/api/runs/{run_id}/rank", params={"resamples": 300}).json()["rankings"]["human"]
        by = {r["model"]: r for r in human["ratings"]}
        assert (by["top"]["rank"], by["peer"]["rank"], by["low"]["rank"]) == (1, 1, 3)
        assert by["peer"]["tied_with"] == ["top"] and "style_control" not in human
