"""Hostile code against the code sandbox (tryouts.scoring.sandbox): every escape attempt must be blocked.

Each attack is model-written code scored against honest tests; the attack either tries to get out (read a
secret, leave a process behind, reach a server on 127.0.0.1) or to change its own verdict. The secrets are
real files and a real environment; the listener is a real server; survivors are looked for in the real /proc.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

from helpers import HOOK_OFF, Listener, require_bwrap
from tryouts.scoring import sandbox
from tryouts.scoring.sandbox import run_tests

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"



def leaked(result, secret: str) -> bool:
    return secret in repr(result)


@pytest.fixture(autouse=True)
def needs_bwrap(request):
    if "refuses" not in request.node.name:
        require_bwrap()


# ---- secrets -----------------------------------------------------------------------------------------------

SCAN_ENVIRON = """
import glob
found = []
for p in glob.glob('/proc/*/environ'):
    try:
        data = open(p, 'rb').read()
    except OSError:
        continue
    if b'OPENAI_API_KEY' in data:
        found.append(data.decode('latin-1'))
print('environ:', found)
def add(a, b):
    raise ValueError(repr(found))
"""


def only_bwrap(tmp_path) -> str:
    """A PATH with bubblewrap and nothing else (the old sandbox fell back to its audit hook without unshare)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "bwrap").symlink_to(shutil.which("bwrap"))
    return str(bin_dir)


def test_parent_environment_is_out_of_reach(tmp_path):
    """The key is in the real environment of the process that scores (as in `tryouts eval-task`)."""
    key = "sk-planted-" + secrets.token_hex(8)
    script = ("import json, sys\nfrom tryouts.scoring.sandbox import run_tests\n"
              "r = run_tests(sys.stdin.read(), 'assert add(2, 3) == 5\\n')\n"
              "print(json.dumps([r.status, r.stdout, r.stderr]))\n")
    env = {**os.environ, "OPENAI_API_KEY": key, "PATH": only_bwrap(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], input=SCAN_ENVIRON, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, out, err = json.loads(done.stdout)
    assert status == "failed"
    assert "environ: []" in out  # the scan ran and found no environment holding a key
    assert key not in out + err


def test_stored_scores_hold_no_key(replay_server, tmp_path):
    """End to end: `tryouts eval-task code` with the key in its environment; the answer hunts for it."""
    key = "sk-planted-" + secrets.token_hex(8)
    data = tmp_path / "code.jsonl"
    data.write_text(json.dumps({"prompt": "Write add(a, b).", "tests": "assert add(2, 3) == 5\n",
                                "entry_point": "add"}) + "\n", encoding="utf-8")
    answer = "```python\n" + SCAN_ENVIRON + "```"
    model = f"openai-compat:{replay_server}#text={urllib.parse.quote(answer, safe='')}"
    db = tmp_path / "t.db"
    env = {**os.environ, "OPENAI_API_KEY": key, "PATH": only_bwrap(tmp_path), "TRYOUTS_DATA_DIR": str(tmp_path / "data"),
           "TRYOUTS_CONFIG_DIR": str(tmp_path / "config"), "TRYOUTS_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "tryouts", "eval-task", "code", "--data", str(data), "--db",
                           str(db), "-m", model, "--format", "json", "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 2), done.stderr
    report = json.loads(done.stdout)
    assert report["models"][0]["intervals"]["pass@1"]["mean"] == 0.0
    with sqlite3.connect(db) as con:
        rows = [r[0] for r in con.execute("SELECT scores FROM results")]
    assert rows and all("ValueError" in r for r in rows)  # the stderr was stored
    assert key not in done.stdout + done.stderr + "".join(rows)
    assert key not in db.read_bytes().decode("latin-1")


def test_keys_file_and_home_are_out_of_reach(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("TRYOUTS_CONFIG_DIR", str(config))
    keys = config / "keys.json"
    secret = "sk-keysfile-" + secrets.token_hex(8)
    keys.write_text(json.dumps({"openai": secret}), encoding="utf-8")
    home_dir = Path(tempfile.mkdtemp(prefix="tryouts-escape-", dir=Path.home()))
    try:
        home_secret = "home-secret-" + secrets.token_hex(8)
        (home_dir / "notes.txt").write_text(home_secret, encoding="utf-8")
        code = ("import glob, os\nfound = []\n"
                f"for p in [{str(keys)!r}, {str(home_dir / 'notes.txt')!r}]:\n"
                "    try:\n        found.append(open(p).read())\n    except OSError as e:\n"
                "        found.append(type(e).__name__)\n"
                "print(found)\n"
                "def add(a, b):\n    return a + b\n")
        r = run_tests(code, ADD_TESTS)
    finally:
        shutil.rmtree(home_dir)
    assert r.status == "passed", r.stderr
    assert "FileNotFoundError" in r.stdout
    assert not leaked(r, secret) and not leaked(r, home_secret)


# ---- processes and network ---------------------------------------------------------------------------------

def survivors(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def test_hook_off_then_a_forked_child_does_not_outlive_the_run():
    marker = "tryouts-survivor-" + secrets.token_hex(6)
    code = HOOK_OFF + f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])
    os._exit(0)
def add(a, b):
    return a + b
"""
    try:
        r = run_tests(code, ADD_TESTS)
        assert r.status == "passed", r.stderr  # the fork worked: the hook was off
        assert survivors(marker) == []
    finally:
        for pid in survivors(marker):
            os.kill(pid, 9)


def test_hook_off_then_a_forked_child_does_not_outlive_a_timeout():
    marker = "tryouts-survivor-" + secrets.token_hex(6)
    code = HOOK_OFF + f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])
while True:
    pass
"""
    try:
        r = run_tests(code, ADD_TESTS, timeout_s=2)
        assert r.status == "timeout"
        assert survivors(marker) == []
    finally:
        for pid in survivors(marker):
            os.kill(pid, 9)


def test_hook_off_then_loopback_is_unreachable(monkeypatch):
    # the old sandbox fell back to the audit hook alone where user namespaces were unavailable; force that
    # (today's sandbox ignores it: it has its namespaces or refuses to run)
    monkeypatch.setattr(sandbox, "network_isolation", lambda: "audit-hook")
    server = Listener()
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()  # the listener counts
        for _ in range(100):
            if server.accepted:
                break
            threading.Event().wait(0.02)
        assert server.accepted == 1
        server.accepted = 0
        code = HOOK_OFF + f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {server.port}), timeout=2).close()
    print('connected')
except OSError as e:
    print('refused', type(e).__name__)
def add(a, b):
    return a + b
"""
        r = run_tests(code, ADD_TESTS)
        assert r.status == "passed", r.stderr
        assert "refused" in r.stdout  # the hook was off: the kernel refused, not the hook
    finally:
        server.close()
    assert server.accepted == 0


# ---- the verdict -------------------------------------------------------------------------------------------

WRONG_ADD = "def add(a, b):\n    return a - b\n"

VERDICT_ATTACKS = {
    # walk up from add() to the harness's frames and call its "finish the run, passed" function
    "stack walk": WRONG_ADD.replace("    return a - b\n", """    import sys
    f = sys._getframe(1)
    while f is not None:
        for name in ('finish', 'done'):
            fn = f.f_locals.get(name)
            if callable(fn):
                try:
                    fn('passed', 0)
                except TypeError:
                    fn(0)
        f = f.f_back
    return a - b
"""),
    # an answer that equals everything
    "always equal": "class Anything:\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = object.__hash__\n"
                    "def add(a, b):\n    return Anything()\n",
    # find the run's token in memory and write a fake verdict line where the harness reads it, then leave
    "fake verdict line": WRONG_ADD + """
import os, re, sys, json
f, tokens, paths = sys._getframe(), [], []
while f is not None:  # the run's token and the verdict's path, wherever they are kept
    for v in list(f.f_locals.values()):
        if type(v) is str and re.fullmatch('[0-9a-f]{32}', v):
            tokens.append(v)
        elif type(v) is str and re.fullmatch('/[^\\n]*(outcome|verdict[.]json)', v):
            paths.append(v)
    f = f.f_back
for path in paths:
    with open(path, 'a') as out:
        for t in tokens or ['0' * 32]:
            out.write(f'passed {t}\\n' + json.dumps({'status': 'passed'}) + '\\n')
print('passed', json.dumps({'status': 'passed', 'passed': True}))
os._exit(0)
""",
}


@pytest.mark.parametrize("attack", sorted(VERDICT_ATTACKS))
def test_wrong_add_cannot_make_itself_pass(attack):
    r = run_tests(VERDICT_ATTACKS[attack], ADD_TESTS)
    assert (r.status, r.passed) != ("passed", True), r.stderr
    assert r.passed is False


@pytest.mark.parametrize("attack", ["always equal", "stack walk"])
def test_wrong_add_cannot_make_itself_pass_without_bwrap(attack, monkeypatch):
    """Where the user opted in to running without bubblewrap, the verdict is still decided outside."""
    monkeypatch.setattr(sandbox, "_cached_probe", lambda: (None, "forced by the test"))
    r = run_tests(VERDICT_ATTACKS[attack], ADD_TESTS, unsafe=True)
    assert r.isolation == "unsafe"
    assert r.passed is False
    assert run_tests("def add(a, b):\n    return a + b\n", ADD_TESTS, unsafe=True).passed


def test_stop_iteration_in_the_code_does_not_end_the_tests_loop():
    # all() over an iteration that StopIteration ended early would be True
    r = run_tests("def is_prime(n):\n    raise StopIteration\n", "assert all(map(is_prime, [2, 3, 5]))\n")
    assert r.status == "failed"
    assert "StopIteration" in r.stderr


def test_pass_at_1_of_a_cheating_answer_is_zero():
    from tryouts.scoring.statistics import pass_at_k

    outcomes = [run_tests(VERDICT_ATTACKS[a], ADD_TESTS).passed for a in sorted(VERDICT_ATTACKS)]
    assert pass_at_k(len(outcomes), sum(outcomes), 1) == 0.0


def test_eval_task_refuses_before_any_model_runs_without_bubblewrap(replay_server, tmp_path):
    data = tmp_path / "code.jsonl"
    data.write_text(json.dumps({"prompt": "Write add(a, b).", "tests": "assert add(2, 3) == 5\n"}) + "\n",
                    encoding="utf-8")
    model = f"openai-compat:{replay_server}#text={urllib.parse.quote('def add(a, b): return a + b', safe='')}"
    db = tmp_path / "t.db"
    env = {k: v for k, v in os.environ.items() if k != "TRYOUTS_UNSAFE_CODE_SANDBOX"}
    env.update(PATH=str(tmp_path), TRYOUTS_DATA_DIR=str(tmp_path / "data"), TRYOUTS_CACHE_DIR=str(tmp_path / "c"))
    command = [sys.executable, "-m", "tryouts", "eval-task", "code", "--data", str(data), "--db", str(db), "-m",
               model, "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "bubblewrap" in done.stderr and "TRYOUTS_UNSAFE_CODE_SANDBOX=1" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    if db.exists():
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 0
    # the opt-in, at the user's own risk: the answer is scored (and a correct one passes)
    done = subprocess.run([*command, "--format", "json"], env={**env, "TRYOUTS_UNSAFE_CODE_SANDBOX": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"][0]["intervals"]["pass@1"]["mean"] == 1.0
