"""`tryouts run --shard I/N --run-id ID`: several drivers share one run, each running a deterministic slice.

The drivers are real `tryouts run` processes against the scripted replay server and one SQLite ledger
(the PostgreSQL ledger is exercised with Ray in test_ray_executor.py).
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tryouts.store import Store
from tryouts.suite import load_suite
from tryouts.usecases.suites import SuitePlan


def tryouts(*args, timeout=300):
    p = subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=timeout)
    p.said = " ".join((p.stdout + p.stderr).split())  # the terminal wraps long lines
    return p


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "tryouts", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def write_suite(tmp_path, url, *, n=30, ttft=0, name="suite.yaml", models=None):
    cases = "\n".join(f"  - {{id: c{i}, vars: {{n: '{i}'}}}}" for i in range(n))
    refs = models or [f"openai-compat:{url}#tokens=3;ttft_ms={ttft}", f"openai-compat:{url}#tokens=4;ttft_ms={ttft}"]
    body = "models:\n" + "".join(f"  - model: \"{r}\"\n    label: m{i}\n" for i, r in enumerate(refs))
    body += f"prompts: [\"Count to {{{{ n }}}}\"]\ncases:\n{cases}\nrepeats: 2\nconcurrency: {{openai-compat: 4}}\n"
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def rows(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
            return (0, 0, 0)
        return con.execute("SELECT count(*), count(DISTINCT cell_key), count(DISTINCT model_index || '/' || "
                           "case_index || '/' || repeat_index) FROM results").fetchone()
    finally:
        con.close()


def test_slices_are_a_partition_and_keys_do_not_depend_on_order(tmp_path, replay_server):
    path = write_suite(tmp_path, replay_server, n=50)
    suite = load_suite(path)
    cells = list(suite.cells())
    assert len({c.key for c in cells}) == len(cells) == 200
    for n in (1, 3, 7):
        slices = [[c for c in cells if SuitePlan(suite, cells, None, None, shard=(i, n)).mine(c)] for i in range(n)]
        assert sum(len(s) for s in slices) == len(cells)
        assert set().union(*({c.key for c in s} for s in slices)) == {c.key for c in cells}
        if n == 3:
            assert all(40 < len(s) < 95 for s in slices), [len(s) for s in slices]  # a hash spreads them
    # the same model and case have the same key when the models are listed in another order
    swapped = write_suite(tmp_path, replay_server, n=50, name="swapped.yaml",
                          models=[f"openai-compat:{replay_server}#tokens=4;ttft_ms=0"])
    text = open(swapped).read().replace("label: m0", "label: m1")
    open(swapped, "w").write(text)
    keys = {c.key for c in load_suite(swapped).cells()}
    assert keys and keys <= {c.key for c in cells}


def test_two_drivers_share_a_run_and_the_last_finishes_it(tmp_path, replay_server):
    db = str(tmp_path / "ledger.db")
    path = write_suite(tmp_path, replay_server, n=40, ttft=20)
    a = start("run", path, "--db", db, "--shard", "0/2", "--run-id", "sweep-a", "--no-progress")
    b = start("run", path, "--db", db, "--shard", "1/2", "--run-id", "sweep-a", "--no-progress")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    assert rows(db) == (160, 160, 160)
    both = outs[0][0] + outs[1][0]
    assert both.count("Summary") == 1, both  # the last driver finishes the run and prints it
    assert "other drivers are still at work" in both
    store = Store(db)
    run = store.get_run_row("sweep-a")
    assert run["status"] == "done" and run["meta"]["n_cells"] == 160
    drivers = store.drivers("sweep-a")
    assert [d["shard"] for d in drivers] == ["0/2", "1/2"] and all(d["finished_at"] for d in drivers)
    # running it again sends nothing: every cell of the run has its row
    again = tryouts("run", path, "--db", db, "--shard", "1/2", "--run-id", "sweep-a", "--no-progress")
    assert again.returncode == 0 and "0 of 160 cells to run" in again.said, again.stdout + again.stderr
    assert rows(db)[0] == 160


def test_a_missing_slice_leaves_the_run_interrupted_until_it_runs(tmp_path, replay_server):
    db = str(tmp_path / "ledger.db")
    path = write_suite(tmp_path, replay_server, n=20)
    first = tryouts("run", path, "--db", db, "--shard", "0/2", "--no-progress", "-f", "json")
    assert first.returncode == 0, first.stderr
    assert "have no result: run their slices" in first.said
    run_id = json.loads(first.stdout)["run"]["id"]
    assert run_id.startswith("sweep-")  # no --run-id: one made from the suite, the same for every driver
    assert json.loads(first.stdout)["run"]["status"] == "interrupted"
    done_first = rows(db)[0]
    assert 0 < done_first < 80
    second = tryouts("run", path, "--db", db, "--shard", "1/2", "--no-progress")
    assert second.returncode == 0, second.stderr
    assert rows(db) == (80, 80, 80)
    assert Store(db).get_run_row(run_id)["status"] == "done"


def test_overlapping_slices_are_refused_while_their_driver_lives(tmp_path, replay_server):
    db = str(tmp_path / "ledger.db")
    path = write_suite(tmp_path, replay_server, n=40, ttft=400)
    a = start("run", path, "--db", db, "--shard", "0/2", "--run-id", "s1", "--no-progress")
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(db) or rows(db)[0] == 0:
            assert a.poll() is None and time.monotonic() < deadline, a.communicate()
            time.sleep(0.2)
        same = tryouts("run", path, "--db", db, "--shard", "0/2", "--run-id", "s1")
        assert same.returncode == 1 and "Slice 0/2 of run s1 is being run by process" in same.said, same.stderr
        other_n = tryouts("run", path, "--db", db, "--shard", "1/3", "--run-id", "s1")
        assert other_n.returncode == 1 and "overlaps --shard 1/3" in other_n.said
        whole = tryouts("run", "--resume", "s1", "--db", db)
        assert whole.returncode == 1 and "being run by its --shard drivers" in whole.said, whole.stderr
        other = write_suite(tmp_path, replay_server, n=3, name="other.yaml")
        wrong = tryouts("run", other, "--db", db, "--shard", "1/2", "--run-id", "s1")
        assert wrong.returncode == 1 and "holds other cells than this suite's" in wrong.said
        bad = tryouts("run", path, "--db", db, "--shard", "2/2")
        assert bad.returncode == 1 and "I must be from 0 to N-1" in bad.said and "Traceback" not in bad.said
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait()
    # its driver is gone (kill -9): the slice can be taken over at once, and the run completes exactly once
    for shard in ("0/2", "1/2"):
        p = tryouts("run", path, "--db", db, "--shard", shard, "--run-id", "s1", "--no-progress")
        assert p.returncode == 0, p.stderr
    assert rows(db) == (160, 160, 160)
    assert Store(db).get_run_row("s1")["status"] == "done"


@pytest.mark.parametrize("args, message", [
    (["--run-id", "bad id!"], "--run-id 'bad id!': use 1 to 40 letters"),
    (["--shard", "1/x"], "should be I/N"),
    (["--executor", "spark"], "--executor must be local or ray"),
])
def test_bad_sweep_options_say_what_to_do(tmp_path, replay_server, args, message):
    path = write_suite(tmp_path, replay_server, n=1)
    p = tryouts("run", path, "--db", str(tmp_path / "x.db"), *args)
    assert p.returncode == 1 and message in p.said and "Traceback" not in p.said, p.stderr
