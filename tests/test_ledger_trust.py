"""A shared results database is written by others: a run's stored suite is used only when this user signed it.

The attacker here can write any row of the ledger (a SQLite file on a shared disk, a team's PostgreSQL); the owner
then types ordinary commands with their own keys. Everything runs for real: `tryouts run`, `tryouts run --resume`
and `tryouts score` as subprocesses, the scripted replay server as the model, a listener on 127.0.0.1 as the
attacker's server, and plain sqlite3 for the tampering (an attacker needs no Tryouts for that).
"""

import json
import sqlite3
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

from helpers import serve_http, text_model
from tryouts.trust import key_path

OWNER_KEY = "sk-ownersecret0123456789abcdefABCDEF"


def tryouts(*args, env=None, timeout=180):
    import os

    full = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=timeout,
                       env=full)
    p.said = " ".join((p.stdout + p.stderr).split())
    return p


def suite_file(tmp_path, url, *, scoring=True):
    path = tmp_path / "suite.yaml"
    body = (f"models:\n  - model: \"{text_model(url, 'Paris')}\"\n    label: m\n"
            "prompts: [\"Capital of {{ c }}?\"]\n"
            "cases:\n  - {id: fr, vars: {c: France}, expected: Paris}\n  - {id: de, vars: {c: Germany}, expected: Berlin}\n")
    if scoring:
        body += "scoring:\n  scorers: [\"scorers.py:says_paris\"]\n"
        (tmp_path / "scorers.py").write_text("def says_paris(output, case):\n    return 'Paris' in output\n")
    path.write_text(body)
    return path


def meta_of(db, run_id):
    con = sqlite3.connect(db)
    try:
        return json.loads(con.execute("SELECT meta FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        con.close()


def set_meta(db, run_id, meta, *, delete_results=False, status=None):
    con = sqlite3.connect(db)
    try:
        con.execute("UPDATE runs SET meta = ? WHERE id = ?", (json.dumps(meta), run_id))
        if delete_results:
            con.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
        if status:
            con.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))
        con.commit()
    finally:
        con.close()


def first_run(tmp_path, replay_server, db, **kw):
    path = suite_file(tmp_path, replay_server, **kw)
    p = tryouts("run", str(path), "--db", str(db), "--no-progress", "-f", "json")
    assert p.returncode == 0, p.stderr
    return path, json.loads(p.stdout)["run"]["id"]


class Listener(BaseHTTPRequestHandler):
    """The attacker's server: records every request's headers and answers like a chat API."""

    seen: ClassVar[list] = []

    def do_POST(self):
        Listener.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_runs_are_signed_and_a_signed_run_resumes_from_its_stored_suite(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    path, run_id = first_run(tmp_path, replay_server, db)
    meta = meta_of(db, run_id)
    assert meta["signature"].startswith("hmac-sha256:v1:") and meta["suite"]
    assert oct(key_path().stat().st_mode & 0o777) == "0o600"
    path.unlink()  # the stored suite is enough: no file is needed
    set_meta(db, run_id, meta, delete_results=True, status="interrupted")
    p = tryouts("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert p.returncode == 0 and "2 of 2 cells to run" in p.said, p.stdout + p.stderr
    p = tryouts("score", run_id, "--db", str(db))
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_planted_scorer_never_runs_and_a_planted_url_never_gets_the_key(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    _, run_id = first_run(tmp_path, replay_server, db)
    meta = meta_of(db, run_id)
    marker = tmp_path / "PWNED"
    Listener.seen = []
    with serve_http(Listener) as evil:
        hostile = json.loads(json.dumps(meta))
        hostile["suite"]["scoring"] = {"scorers": ["builtins:exec"]}
        for m in hostile["suite"]["models"]:
            m["model"] = "openai:gpt-6-luna"
            m["options"] = {"base_url": f"{evil}/v1"}
        set_meta(db, run_id, hostile)
        con = sqlite3.connect(db)  # the planted code, in an answer the scorer would run
        con.execute("UPDATE results SET text = ? WHERE run_id = ?", (f"open({str(marker)!r}, 'w').write('x')", run_id))
        con.commit()
        con.close()
        env = {"OPENAI_API_KEY": OWNER_KEY}
        score = tryouts("score", run_id, "--db", str(db), env=env)
        assert score.returncode == 1, score.stdout + score.stderr
        assert "not signed by you" in score.said and f"tryouts score {run_id} --suite" in score.said
        assert "Traceback" not in score.stderr
        set_meta(db, run_id, hostile, delete_results=True, status="interrupted")
        resume = tryouts("run", "--resume", run_id, "--db", str(db), "--no-progress", env=env)
        assert resume.returncode == 1 and "not signed by you" in resume.said, resume.stdout + resume.stderr
        assert f"--resume {run_id}" in resume.said
        # the same with a signature copied from another of the owner's runs: it covers other values
        hostile["signature"] = meta["signature"]
        set_meta(db, run_id, hostile)
        again = tryouts("run", "--resume", run_id, "--db", str(db), "--no-progress", env=env)
        assert again.returncode == 1 and "not signed by you" in again.said
    assert not marker.exists()
    assert Listener.seen == []  # nothing, not even a warm-up, reached the attacker's server
    assert OWNER_KEY not in score.said + resume.said + again.said


def test_a_run_another_user_recorded_resumes_only_from_a_file_the_owner_names(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    other = tmp_path / "teammate-config"
    other.mkdir()
    path = suite_file(tmp_path, replay_server, scoring=False)
    p = tryouts("run", str(path), "--db", str(db), "--no-progress", "-f", "json",
                env={"TRYOUTS_CONFIG_DIR": str(other)})  # the teammate, with their own key
    assert p.returncode == 0, p.stderr
    run_id = json.loads(p.stdout)["run"]["id"]
    set_meta(db, run_id, meta_of(db, run_id), delete_results=True, status="interrupted")
    refused = tryouts("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"tryouts run {path} --resume {run_id}" in refused.said  # the command to give, with the file named
    ok = tryouts("run", str(path), "--resume", run_id, "--db", str(db), "--no-progress")
    assert ok.returncode == 0 and "2 of 2 cells to run" in ok.said, ok.stdout + ok.stderr
    # a file that no longer describes the run is still refused
    path.write_text(path.read_text().replace("Germany", "Spain"))
    set_meta(db, run_id, meta_of(db, run_id), delete_results=True, status="interrupted")
    changed = tryouts("run", str(path), "--resume", run_id, "--db", str(db), "--no-progress")
    assert changed.returncode == 1 and "no longer describes" in changed.said


def test_a_run_from_before_signing_asks_for_its_file(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    path, run_id = first_run(tmp_path, replay_server, db, scoring=False)
    meta = meta_of(db, run_id)
    del meta["signature"]
    set_meta(db, run_id, meta, delete_results=True, status="interrupted")
    refused = tryouts("run", "--resume", run_id, "--db", str(db), "--no-progress")
    assert refused.returncode == 1 and "not signed by you" in refused.said
    ok = tryouts("run", str(path), "--resume", run_id, "--db", str(db), "--no-progress")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_a_dashboard_re_run_takes_its_permissions_only_for_what_the_owner_signed(tmp_path, replay_server,
                                                                                    monkeypatch):
    from helpers import cli_compare
    from test_web_review import csrf, serve, web

    db = tmp_path / "ledger.db"
    ref = text_model(replay_server, "one two")
    cli_compare(ref, db, "--format", "json")
    cli_compare(ref, db, "--format", "json", env={"TRYOUTS_CONFIG_DIR": str(tmp_path)})  # another user's run
    con = sqlite3.connect(db)
    (mine, theirs) = [r[0] for r in con.execute("SELECT id FROM runs ORDER BY started_at, id")]
    con.close()
    monkeypatch.setenv("OPENAI_API_KEY", OWNER_KEY)
    Listener.seen = []
    with serve_http(Listener) as evil, serve(db, allow_options="base_url") as (url, app):
        # the owner's own comparison of a local server re-runs with the owner's --allow-options
        assert web.post(f"{url}/api/runs/{mine}/models/0/rerun", headers=csrf(app)).status_code == 200
        # a teammate's comparison of a URL is not the token holder's word: refused whatever the flags say
        r = web.post(f"{url}/api/runs/{theirs}/models/0/rerun", headers=csrf(app))
        assert r.status_code == 400 and "results database" in r.json()["detail"], r.text
        # the owner's run, its model and options changed in the database: the signature no longer holds
        con = sqlite3.connect(db)
        con.execute("UPDATE runs SET models = ? WHERE id = ?", (json.dumps(["openai:gpt-6-luna"]), mine))
        con.execute("UPDATE results SET options = ? WHERE run_id = ?", (json.dumps({"base_url": f"{evil}/v1"}), mine))
        con.commit()
        con.close()
        r = web.post(f"{url}/api/runs/{mine}/models/0/rerun", headers=csrf(app))
        assert r.status_code == 400 and "'base_url'" in r.json()["detail"], r.text
        assert OWNER_KEY not in r.text
    assert Listener.seen == []


def test_the_response_cache_answers_only_with_what_this_user_stored(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    path = suite_file(tmp_path, replay_server, scoring=False)

    def run():
        p = tryouts("run", str(path), "--db", str(db), "--no-progress", "-f", "json")
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)["results"]

    def cache(sql, *args):
        con = sqlite3.connect(db)
        con.execute(sql, args)
        con.commit()
        con.close()

    assert not any(r["cached"] for r in run())
    served = run()
    assert all(r["cached"] and r["text"] == "Paris" for r in served)  # the owner's own entries answer
    # a planted answer (the entry's shape, a signature copied from another entry) is a miss: the model answers
    con = sqlite3.connect(db)
    entries = [json.loads(r[0]) for r in con.execute("SELECT response FROM cache")]
    con.close()
    planted = {**entries[0], "text": "Berlin, trust me", "signature": entries[1]["signature"]}
    cache("UPDATE cache SET response = ?", json.dumps(planted))
    fresh = run()
    assert not any(r["cached"] for r in fresh) and all(r["text"] == "Paris" for r in fresh)
    # a row of the wrong shape is a miss too, never a crash that leaves the run 'running'
    for bad in ('"just text"', "[1, 2]", '{"text": 5, "usage": "lots"}'):
        cache("UPDATE cache SET response = ?", bad)
        assert not any(r["cached"] for r in run())


def test_a_malformed_row_stops_a_command_with_one_line_never_a_traceback(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    _, run_id = first_run(tmp_path, replay_server, db, scoring=False)
    con = sqlite3.connect(db)
    con.execute("UPDATE results SET cost_total = 'abc' WHERE run_id = ?", (run_id,))
    con.commit()
    con.close()
    p = tryouts("show", run_id, "--db", str(db))
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "unexpected" in p.said and "results database may be malformed" in p.said and "TRYOUTS_DEBUG=1" in p.said
    assert "abc" not in p.stderr  # the stored value is not echoed
    debug = tryouts("show", run_id, "--db", str(db), env={"TRYOUTS_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_one_unreadable_run_leaves_tryouts_runs_listing_the_others(tmp_path, replay_server):
    db = tmp_path / "ledger.db"
    _, good = first_run(tmp_path, replay_server, db, scoring=False)
    _, bad = first_run(tmp_path, replay_server, db, scoring=False)
    _, wrong = first_run(tmp_path, replay_server, db, scoring=False)
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET meta = '{oops' WHERE id = ?", (bad,))  # not JSON: the whole query used to fail
    con.execute("UPDATE runs SET models = '{\"a\": 1}' WHERE id = ?", (wrong,))
    con.commit()
    con.close()
    table = tryouts("runs", "--db", str(db))
    assert table.returncode == 0, table.stderr
    assert good in table.stdout and bad not in table.stdout and wrong not in table.stdout
    assert f"Run {bad} could not be read" in table.said and f"Run {wrong} could not be read" in table.said
    assert "oops" not in table.said and "Traceback" not in table.stderr
    listed = tryouts("runs", "--db", str(db), "-f", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [good]
