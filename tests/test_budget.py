"""A run's cost budget (engine/budget.py, `tryouts run --budget`): cells start only while they fit, the run stops
at the budget and resumes with more, and a model without a price is refused before anything is recorded. Against
the replay server with priced scripted models (known usage: 11 input tokens, 4 output tokens per answer)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from tryouts.engine.budget import CostBudget
from tryouts.errors import UsageError
from tryouts.store import Store
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request


def _cell(m: int, c: int) -> Cell:
    return Cell(spec=ModelSpec.parse("x:y"), request=Request(messages=[Message(role="user", content="q")],
                                                               params=GenParams(max_tokens=4)),
                model_index=m, case_index=c, repeat_index=0)


def test_cells_start_only_while_they_fit():
    b = CostBudget(Decimal("1.00"), {0: Decimal("0.30"), 1: Decimal("0")})
    assert b.try_start(_cell(0, 0)) and b.try_start(_cell(0, 1)) and b.try_start(_cell(0, 2))
    assert b.reserved == Decimal("0.90") and not b.try_start(_cell(0, 3)) and b.stopped
    assert not b.try_start(_cell(1, 0))  # once stopped, nothing starts, not even a free cell
    b.finish(_cell(0, 0), Decimal("0.25"))
    assert b.spent == Decimal("0.25") and b.reserved == Decimal("0.60")
    b.finish(_cell(0, 1), None)  # no known cost: nothing spent
    assert b.spent == Decimal("0.25") and b.reserved == Decimal("0.30")
    b.finish(_cell(0, 2), Decimal("0.50"))  # dearer than expected: the next cells of its model are expected so
    assert b.per_cell[0] == Decimal("0.50") and b.spent == Decimal("0.75") and b.reserved == 0


def _tryouts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tryouts", "run", *args], capture_output=True, text=True,
                          timeout=180)


def test_a_run_stops_at_its_budget_and_resumes_with_more(replay_server, tmp_path):
    # 11 input + 4 output tokens at $1000/M in and $2000/M out: $0.011 + $0.008 = $0.019 a cell
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "openai-compat:{replay_server}#tokens=4;ttft_ms=5", options: {{price: "1000,2000"}}}}
prompts: ["q {{{{i}}}}"]
cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(20))}]
defaults: {{params: {{max_tokens: 4}}}}
concurrency: {{openai-compat: 1}}
""")
    db = str(tmp_path / "t.db")
    first = _tryouts(str(suite), "--db", db, "--budget", "0.2")
    assert first.returncode == 3, first.stderr + first.stdout
    assert "Stopped at the budget" in first.stderr and "--resume" in first.stderr
    store = Store(db)
    run = store.get_run("latest")
    spent = sum(Decimal(r["cost_usd_exact"]) for r in run["results"])
    assert 0 < len(run["results"]) < 20 and spent <= Decimal("0.2")
    assert run["run"]["status"] == "interrupted" and run["run"]["meta"]["stopped"]["reason"] == "budget"
    again = _tryouts("--resume", run["run"]["id"], "--db", db, "--budget", "5", "-f", "json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["results"]) == 20  # every cell once
    assert Store(db).get_run_row(run["run"]["id"])["status"] == "done"


def test_a_budget_needs_every_price_and_a_real_amount(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"models: ['openai-compat:{replay_server.replace('127.0.0.1', 'localhost')}#tokens=2']\n"
                     "prompts: ['a']\n")
    db = str(tmp_path / "t.db")
    for budget, words in (("lots", "not an amount of USD"), ("-1", "above 0"), ("nan", "above 0")):
        p = _tryouts(str(suite), "--db", db, "--budget", budget)
        assert p.returncode == 1 and words in p.stdout + p.stderr, p.stdout + p.stderr
    assert Store(db).list_runs() == []


def test_the_library_takes_a_budget_too(replay_server, tmp_path):
    from tryouts import run_suite

    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "openai-compat:{replay_server}#tokens=4", options: {{price: "1000,2000"}}}}
prompts: ["q {{{{i}}}}"]
cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(6))}]
concurrency: {{openai-compat: 1}}
""")
    store = Store(tmp_path / "t.db")
    with pytest.raises(UsageError, match="does not cover one cell"):  # max_tokens unset: the default bounds a cell
        run_suite(suite, store=store, budget_usd="0.05", say=lambda _m: None)
    assert store.list_runs() == []
    suite.write_text(suite.read_text() + "defaults: {params: {max_tokens: 4}}\n")
    out = run_suite(suite, store=store, budget_usd="0.05", say=lambda _m: None)
    assert out.status == "interrupted" and out.meta["stopped"]["reason"] == "budget" and 0 < len(out.results) < 6
