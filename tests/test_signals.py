"""Signals and concurrent runs (issue 12, part 5): Ctrl-C and SIGTERM with llama.cpp generating in process
end with the run marked interrupted and the resume command printed (never a segfault); a run whose process
died shows as stale; a second --resume of a run being run is refused with one line."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tryouts import errors
from tryouts.store import Store


def tryouts(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=timeout)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "tryouts", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"})


def rows(db, where="1=1"):
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute(f"SELECT count(*) FROM results WHERE {where}").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_rows(proc, db, at_least, where="1=1", limit_s=120):
    deadline = time.monotonic() + limit_s
    while rows(db, where) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def runs(db):
    return json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)


def slow_suite(tmp_path, replay_server, n, ttft_ms):
    """``n`` cases against one API model answering after ``ttft_ms``, one request at a time."""
    path = tmp_path / "slow.yaml"
    path.write_text(f'models: ["openai-compat:{replay_server}#ttft_ms={ttft_ms};tokens=3"]\nprompts: ["case {{{{i}}}}"]\n'
                    f'cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(n))}]\n'
                    "concurrency: {openai-compat: 1}\n")
    return str(path)


def mixed_suite(tmp_path, gguf, replay_server, n=6):
    """An in-process llama.cpp model that writes long answers, beside an API model: a mixed suite."""
    path = tmp_path / "mixed.yaml"
    path.write_text(textwrap.dedent(f"""\
        models:
          - "llamacpp:{gguf}"
          - "openai-compat:{replay_server}#ttft_ms=30;tokens=3"
        prompts: ["Write a long story number {{{{i}}}}."]
        cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(n))}]
        defaults: {{params: {{max_tokens: 400}}}}
        """))
    return str(path)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_llamacpp_generates_marks_the_run_interrupted(signum, code, demo_models, replay_server,
                                                                      tmp_path):
    """The signal lands while llama.cpp generates in process (after its first answer, during the next): the
    generation thread is stopped and joined before the model is freed, so no segfault (-11), the results
    already made are kept, and the run is interrupted with its resume command. Three times each."""
    s = mixed_suite(tmp_path, demo_models.gguf_path, replay_server)
    for attempt in range(3):
        db = str(tmp_path / f"{signum}-{attempt}.db")
        proc = start("run", s, "--db", db, "--no-cache", "--no-progress")
        wait_rows(proc, db, 1, "model_index = 0")
        time.sleep(0.05 * attempt)  # land at different points of the next generation
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (proc.returncode, out, err)
        assert "Traceback" not in out + err and "Resume with: tryouts run --resume" in out + err
        (run,) = runs(db)
        assert run["status"] == "interrupted"
        assert run["id"] in out + err
        assert rows(db) >= 1
    p = tryouts("run", "--resume", run["id"], "--db", db, "--no-cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert runs(db)[0]["status"] == "done" and rows(db) == 12


def test_a_generation_thread_is_joined_before_the_model_is_freed(demo_models):
    """The consumer of a llama.cpp stream is cancelled mid-answer and the provider closed at once (what a
    stopped run does): the thread is stopped and joined first, the process exits cleanly."""
    script = textwrap.dedent(f"""
        import asyncio, threading
        from tryouts.providers import create_provider
        from tryouts.types import GenParams, Message, ModelSpec, Request

        async def main():
            p = create_provider(ModelSpec.parse("llamacpp:{demo_models.gguf_path}"))
            await p.load()
            req = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=2000))
            got = asyncio.Event()

            async def consume():
                async for ev in p.stream(req):
                    if type(ev).__name__ == "Delta":
                        got.set()

            task = asyncio.create_task(consume())
            await got.wait()
            task.cancel()  # the generator's own finally has not run yet when aclose starts
            await p.aclose()
            alive = [t for t in threading.enumerate() if t.name == "tryouts-local-gen"]
            assert not alive, alive
            print("clean")

        asyncio.run(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "clean" in done.stdout, (done.returncode, done.stderr[-3000:])


def test_a_killed_run_shows_as_stale_and_resumes(replay_server, tmp_path):
    db = str(tmp_path / "k.db")
    s = slow_suite(tmp_path, replay_server, n=20, ttft_ms=250)
    proc = start("run", s, "--db", db, "--no-cache")
    wait_rows(proc, db, 2)
    assert runs(db)[0]["status"] == "running"  # alive: running, not stale
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run,) = runs(db)
    assert run["status"] == "stale" and "is gone without finishing it" in run["stale_reason"]
    table = tryouts("runs", "--db", db).stdout
    assert "stale" in table
    p = tryouts("run", "--resume", run["id"], "--db", db, "--no-cache")
    assert p.returncode == 0, p.stdout + p.stderr
    assert runs(db)[0]["status"] == "done" and rows(db) == 20


def test_a_second_resume_of_a_running_run_is_refused_with_one_line(replay_server, tmp_path):
    db = str(tmp_path / "r.db")
    s = slow_suite(tmp_path, replay_server, n=40, ttft_ms=80)
    first = start("run", s, "--db", db, "--no-cache")
    wait_rows(first, db, 2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    run_id = runs(db)[0]["id"]
    resuming = start("run", "--resume", run_id, "--db", db, "--no-cache")
    try:
        before = rows(db)
        wait_rows(resuming, db, before + 1)
        second = tryouts("run", "--resume", run_id, "--db", db, "--no-cache")
        assert second.returncode == 1
        assert "Traceback" not in second.stdout + second.stderr
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"Run {run_id} is being run by process" in lines[0], second.stderr
        assert second.stdout.strip() == ""
        out, err = resuming.communicate(timeout=120)
        assert resuming.returncode == 0, out + err
    finally:
        if resuming.poll() is None:
            resuming.kill()
    con = sqlite3.connect(db)
    distinct = con.execute("SELECT count(DISTINCT model_index || '/' || case_index || '/' || repeat_index) "
                           "FROM results").fetchone()[0]
    con.close()
    assert rows(db) == distinct == 40 and runs(db)[0]["status"] == "done"


def test_two_claims_at_once_one_wins(tmp_path):
    """Two processes resuming a stale run at the same moment: exactly one claims it."""
    db = tmp_path / "c.db"
    store = Store(db)
    run_id = store.create_run("suite", ["m:x"], {})
    store.finish_run(run_id, "interrupted")
    stores = [Store(db) for _ in range(6)]
    go = threading.Barrier(len(stores))
    won, refused = [], []

    def claim(s: Store) -> None:
        go.wait()
        try:
            s.claim_run(run_id)
            won.append(s)
        except errors.StoreError as exc:
            refused.append(exc.message)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1 and len(refused) == 5, refused
    assert store.get_run_row(run_id)["status"] == "running"


def test_a_run_with_an_old_heartbeat_on_another_machine_is_stale(tmp_path):
    from sqlalchemy import update

    from tryouts.store import schema

    store = Store(tmp_path / "h.db")
    run_id = store.create_run("suite", ["m:x"], {})
    assert store.get_run_row(run_id)["status"] == "running"
    with store.engine.begin() as conn:  # a process on another machine, silent for 10 minutes
        conn.execute(update(schema.runs).values(owner="4242@elsewhere", heartbeat_at="2026-01-01T00:00:00+00:00"))
    row = store.get_run_row(run_id)
    assert row["status"] == "stale" and "no sign of life" in row["stale_reason"]
    with store.engine.begin() as conn:  # the same machine-less owner, beating now: running
        conn.execute(update(schema.runs).values(heartbeat_at=store_now()))
    assert Store(tmp_path / "h.db").get_run_row(run_id)["status"] == "running"
    with pytest.raises(errors.StoreError, match="is being run by process 4242 on elsewhere"):
        Store(tmp_path / "h.db").claim_run(run_id)


def store_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
