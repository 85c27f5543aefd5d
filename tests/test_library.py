"""The library API (README "As a library"): the same use cases the CLI and the dashboard call."""

from __future__ import annotations

import pytest

import tryouts
from tryouts.store import Store
from tryouts.suite.issues import SuiteError


def _suite(tmp_path, replay_server, body="") -> str:
    path = tmp_path / "s.yaml"
    path.write_text(f'models: ["openai-compat:{replay_server}#tokens=3", "openai-compat:{replay_server}#status=400"]\n'
                    'prompts: ["case {{i}}"]\ncases: [{vars: {i: 1}}, {vars: {i: 2}}]\nretries: {max: 0}\n' + body)
    return str(path)


def test_run_suite_stores_scores_and_summarizes_like_tryouts_run(replay_server, tmp_path):
    store = Store(tmp_path / "lib.db")
    seen = []
    outcome = tryouts.run_suite(_suite(tmp_path, replay_server), store=store,
                                on_event=lambda e: seen.append(type(e).__name__))
    assert isinstance(outcome, tryouts.SuiteOutcome)
    assert (outcome.status, outcome.n_cells, outcome.n_failed) == ("partial", 4, 2)
    assert len(outcome.results) == 4 and seen.count("ResultStored") == 4
    assert "quality" in outcome.meta  # the summary `tryouts run` prints
    assert store.get_run_row(outcome.run_id)["status"] == "partial"
    again = tryouts.run_suite(resume=outcome.run_id, store=store)  # nothing missing: nothing runs
    assert again.run_id == outcome.run_id and len(again.results) == 4


def test_load_suite_names_file_and_line(tmp_path, replay_server):
    path = _suite(tmp_path, replay_server, "repeat: 3\n")
    with pytest.raises(SuiteError, match=r"s\.yaml:5: unknown key .repeat."):
        tryouts.load_suite(path)
    with pytest.raises(SuiteError):
        tryouts.run_suite(path, store=Store(tmp_path / "x.db"))
    assert Store(tmp_path / "x.db").list_runs() == []  # refused before anything was recorded


def test_one_status_rule_for_every_kind_of_run():
    from tryouts.types import finished_status

    assert [finished_status(4, 0), finished_status(4, 2), finished_status(4, 4), finished_status(1, 1)] == [
        "done", "partial", "failed", "failed"]
