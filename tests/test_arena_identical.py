"""Identical answers in the arena: two answers that are the same text (whitespace at both ends trimmed) are never
put to a vote — in `tryouts arena` and in the dashboard's API, which refuses a vote on them — and a stored vote
on them counts as a tie in the ranking."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys

import httpx
import pytest

from helpers import serve_dashboard, text_model
from tryouts.store import Store
from tryouts.usecases.arena import arena_pairs, identical_pairs, ranking, same_answer


def result(rid, model, text, case=0, ok=True):
    return {"id": rid, "model_index": model, "case_index": case, "repeat_index": 0, "ok": ok, "text": text}


def test_same_answer_trims_only_the_ends():
    assert same_answer("Paris", "Paris")
    assert same_answer("  Paris\n", "Paris")
    assert not same_answer("Paris", "paris")  # case is a difference
    assert not same_answer("Paris is", "Paris  is")  # so is whitespace inside the text
    assert not same_answer("Paris", None)


def test_identical_answers_are_never_paired():
    results = [result(1, 0, "Paris"), result(2, 1, "  Paris\n"), result(3, 2, "paris"), result(4, 3, "Lyon"),
               result(5, 0, "x", case=1), result(6, 1, "x", case=1)]
    for seed in range(20):
        pairs = arena_pairs(results, set(), seed)
        ids = {frozenset((x["id"], y["id"])) for x, y in pairs}
        assert frozenset((1, 2)) not in ids and frozenset((5, 6)) not in ids
        assert all(not same_answer(x["text"], y["text"]) for x, y in pairs)
        assert len(pairs) == 5  # of the 6 pairs of case 0, all but 1-2; none of case 1
    assert identical_pairs(results) == 2


def vote(a, b, verdict, ra, rb):
    return {"model_a": a, "model_b": b, "verdict": verdict, "result_a": ra, "result_b": rb}


def test_a_stored_vote_on_identical_answers_counts_as_a_tie():
    texts = {1: "Same answer", 2: "Same answer ", 3: "Other", 4: "Another"}
    votes = [vote("m1", "m2", "a", 1, 2)] * 6 + [vote("m1", "m2", "both_bad", 1, 2)] + [vote("m1", "m3", "a", 3, 4)]
    plain = ranking(votes, resamples=0)  # without the texts, the six "a" votes are wins
    assert plain["identical"] == 0 and {r["model"]: r["wins"] for r in plain["ratings"]}["m1"] == 7
    out = ranking(votes, resamples=0, texts=texts)
    assert out["identical"] == 6 and out["decisive"] == 7 and out["votes"] == 8
    by = {r["model"]: r for r in out["ratings"]}
    assert by["m1"]["ties"] == 6 and by["m2"]["ties"] == 6 and by["m1"]["wins"] == 1 and by["m2"]["losses"] == 0
    assert by["m1"]["both_bad"] == 1  # "both bad" stays what it was: counted, not rated
    assert by["m1"]["rating"] > by["m2"]["rating"] > by["m3"]["rating"]  # only the m1-m3 win separates them
    assert by["m1"]["rating"] - by["m2"]["rating"] < plain["ratings"][0]["rating"] - by["m2"]["rating"]


def tryouts(*args, input=None):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, input=input,
                          env=dict(os.environ), timeout=300)


@pytest.fixture
def same_run(replay_server, tmp_path):
    """A run of three models on two cases: `same` and `twin` answer the same text, `other` another one."""
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris is the capital')}", label: same}}
  - {{model: "{text_model(replay_server, 'Paris is the capital')}", label: twin}}
  - {{model: "{text_model(replay_server, 'It is Lyon')}", label: other}}
prompts: ["Capital {{{{n}}}}?"]
cases: [{{vars: {{n: 1}}}}, {{vars: {{n: 2}}}}]
""")
    db = str(tmp_path / "a.db")
    p = tryouts("run", str(suite), "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    return db, Store(db).get_run("latest")


def test_cli_arena_skips_identical_answers_and_rank_counts_a_stored_vote_on_them_as_a_tie(same_run):
    db, data = same_run
    run_id = data["run"]["id"]
    p = tryouts("arena", "latest", "--db", db, "--seed", "3", input="a\nb\nt\na\n")
    assert p.returncode == 0, p.stderr + p.stdout
    said = " ".join(p.stdout.split())  # the console wraps long lines
    assert "4 pairs to vote on" in said and "Not shown: 2 pairs of identical answers" in said
    store = Store(db)
    votes = store.votes(run_id, "human")
    assert len(votes) == 4 and all("other" in (v["model_a"], v["model_b"]) for v in votes)
    said = " ".join(tryouts("arena", "latest", "--db", db).stdout.split())
    assert "Nothing to vote on" in said and "Not shown: 2 pairs of identical answers" in said
    # a vote on the identical pair stored anyway (before this rule, or by hand) counts as a tie
    by_model = {(r["model_index"], r["case_index"]): r for r in data["results"]}
    a, b = by_model[(0, 0)], by_model[(1, 0)]
    store.add_vote(run_id, case_index=0, repeat_index=0, result_a=a["id"], result_b=b["id"], model_a="same",
                   model_b="twin", verdict="a")
    out = json.loads(tryouts("rank", "latest", "--db", db, "-f", "json", "--resamples", "50").stdout)
    human = out["rankings"]["human"]
    assert human["identical"] == 1 and human["decisive"] == 5
    by = {r["model"]: r for r in human["ratings"]}
    won = sum(v["verdict"] == ("a" if v["model_a"] == "same" else "b") for v in votes
              if "same" in (v["model_a"], v["model_b"]))
    tied = sum(v["verdict"] == "tie" and "same" in (v["model_a"], v["model_b"]) for v in votes)
    assert by["same"]["wins"] == won and by["same"]["ties"] == tied + 1  # the "a" on identical answers: a tie
    table = " ".join(tryouts("rank", "latest", "--db", db, "--resamples", "50").stdout.split())
    assert "1 on identical answers, counted as ties" in table


def test_the_api_never_offers_identical_answers_and_refuses_a_vote_on_them(same_run):
    db, data = same_run
    run_id = data["run"]["id"]
    with serve_dashboard(db) as (url, app):
        c = httpx.Client(headers={"Authorization": f"Bearer {app.state.token}", "X-Tryouts-CSRF": app.state.csrf},
                         timeout=30)
        seen = 0
        while (nxt := c.get(f"{url}/api/runs/{run_id}/arena/next").json())["pair"]:
            assert not same_answer(nxt["a"], nxt["b"]) and nxt["identical"] == 2
            assert c.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": nxt["pair"], "verdict": "tie"}
                          ).status_code == 200
            seen += 1
        assert seen == 4 and nxt["identical"] == 2
        # a correctly signed key for the identical pair (as a stale page or a script could hold) is refused
        by_model = {(r["model_index"], r["case_index"]): r for r in data["results"]}
        a_id, b_id = by_model[(0, 1)]["id"], by_model[(1, 1)]["id"]
        sig = hmac.new(app.state.pair_secret.encode(), f"{run_id}:{a_id}:{b_id}".encode(), hashlib.sha256)
        r = c.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": f"{a_id}.{b_id}.{sig.hexdigest()[:32]}",
                                                               "verdict": "a"})
        assert r.status_code == 409 and "same text" in r.json()["detail"]
        assert len(Store(db).votes(run_id, "human")) == 4
