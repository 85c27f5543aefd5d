"""A run stores its suite as it ran: resume and score need neither the file, nor its dataset, nor its variables."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

JUDGE = "text=%7B%22score%22%3A%204%7D"  # always {"score": 4}


def _tryouts(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=120,
                          env=env or os.environ.copy())


def test_resume_and_score_from_the_stored_suite_alone(replay_server, tmp_path):
    (tmp_path / "q.csv").write_text("city,answer\nParis,France\nRome,Italy\nBern,Switzerland\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "# an old server, commented out: ${TRYOUTS_T_GONE}\n"
        "models:\n  - model: \"openai-compat:${TRYOUTS_T_URL}#text=Somewhere\"\n    label: m\n"
        "prompts:\n  - \"Where is {{city}}? (costs $${price})\"\n"
        "dataset: {path: q.csv, expected: answer}\n"
        "scoring:\n  judge:\n    model: \"openai-compat:${TRYOUTS_T_URL}#" + JUDGE + "\"\n    rubric: Right?\n")
    env = {**os.environ, "TRYOUTS_T_URL": replay_server}
    env.pop("TRYOUTS_T_GONE", None)
    db = tmp_path / "r.db"
    p = _tryouts("run", str(suite), "--db", str(db), "--no-cache", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    con = sqlite3.connect(db)
    run_id = con.execute("SELECT id FROM runs").fetchone()[0]
    con.execute("DELETE FROM results WHERE case_index = 2")  # a cell lost: resume must run it again
    con.execute("DELETE FROM judgments")
    con.commit()
    con.close()
    suite.unlink()
    (tmp_path / "q.csv").unlink()
    bare = {k: v for k, v in os.environ.items() if k != "TRYOUTS_T_URL"}
    p = _tryouts("run", "--resume", run_id, "--db", str(db), "--no-cache", env=bare)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 of 3 cells to run" in " ".join(p.stdout.split())
    con = sqlite3.connect(db)
    rows = con.execute("SELECT case_index, ok, request FROM results ORDER BY case_index").fetchall()
    assert [(c, ok) for c, ok, _ in rows] == [(0, 1), (1, 1), (2, 1)]
    assert "Where is Bern? (costs ${price})" in rows[2][2]  # the escaped ${ stays text, never a variable
    p = _tryouts("score", run_id, "--db", str(db), env=bare)  # the judge's URL came from the stored suite
    assert p.returncode == 0, p.stdout + p.stderr
    assert con.execute("SELECT count(*), min(score) FROM judgments").fetchone() == (3, 4)


def test_a_suite_holding_a_credential_is_not_stored(replay_server, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f"models:\n  - model: \"openai-compat:{replay_server}#tokens=2\"\n"
        "    options: {headers: {Authorization: \"Bearer ${TRYOUTS_T_KEY}\"}}\n"
        "prompts: [hi]\n")
    env = {**os.environ, "TRYOUTS_T_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}
    db = tmp_path / "r.db"
    p = _tryouts("run", str(suite), "--db", str(db), "--no-cache", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    meta = sqlite3.connect(db).execute("SELECT meta FROM runs").fetchone()[0]
    assert "abcdefghijklmnopqrstuvwxyz" not in meta
    assert '"suite_not_stored": "it holds a value that looks like a credential' in meta


def test_the_stored_suite_plans_the_same_cells(tmp_path, monkeypatch):
    import glob

    from tryouts.engine.plan import fingerprint
    from tryouts.suite import load_suite, loads_suite
    from tryouts.suite.resolved import load_resolved, resolved

    monkeypatch.setenv("TRYOUTS_DEMO", str(tmp_path))
    suites = [load_suite(f) for f in sorted(glob.glob("examples/*.yaml"))]
    suites.append(loads_suite(  # a model's own params beside the defaults, a system prompt, repeats, chat prompts
        "models:\n  - {model: 'openai-compat:http://127.0.0.1:9/v1#m', params: {temperature: 0.5}, label: a}\n"
        "  - openai:gpt-4o-mini\n"
        "defaults: {params: {max_tokens: 4}, system: Be brief.}\nrepeats: 2\n"
        "prompts:\n  - 'Q {{x}}'\n  - {id: chat, messages: [{role: user, content: 'hi {{x}}'}]}\n"
        "cases: [{vars: {x: 1}}, {id: two, vars: {x: 2}, expected: b}]\n", source=str(tmp_path / "s.yaml")))
    assert len(suites) >= 9
    for suite in suites:
        data, why = resolved(suite)
        assert why is None
        again = load_resolved(data, suite._source)
        assert fingerprint(list(again.cells())) == fingerprint(list(suite.cells())), suite._label
