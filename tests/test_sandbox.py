"""The code sandbox (tryouts.scoring.sandbox): outcomes, limits, isolation and extract_code.

Most tests run twice: in bubblewrap (skipped where it cannot isolate processes; `make test` installs it) and
in the unsafe mode a user can opt in to (bubblewrap forced missing), so both paths are exercised. Escape
attempts by hostile code are in tests/test_sandbox_escapes.py.
"""

from __future__ import annotations

import glob
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import HOOK_OFF, Listener, require_bwrap
from tryouts.errors import UsageError
from tryouts.scoring import sandbox
from tryouts.scoring.sandbox import SandboxResult, extract_code, network_isolation, run_tests

BLOCKED_NET = "network access is blocked in the Tryouts sandbox"
BLOCKED_PROC = "starting processes is blocked in the Tryouts sandbox"



def force_unsafe(monkeypatch) -> None:
    """bubblewrap missing, and the user opted in to running code without it."""
    monkeypatch.setattr(sandbox, "_cached_probe", lambda: (None, "forced by the test"))
    monkeypatch.setenv("TRYOUTS_UNSAFE_CODE_SANDBOX", "1")


@pytest.fixture(params=["bwrap", "unsafe"])
def mode(request, monkeypatch) -> str:
    """The network isolation run_tests is expected to report: bubblewrap's, or the opted-in unsafe mode's."""
    if request.param == "unsafe":
        force_unsafe(monkeypatch)
        return "audit-hook"
    require_bwrap()
    return "netns"


@pytest.fixture
def listener():
    server = Listener()
    # the listener works: a connection from this process is counted (so zero later means something)
    socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    for _ in range(50):
        if server.accepted:
            break
        threading.Event().wait(0.02)
    assert server.accepted == 1
    server.accepted = 0
    yield server
    server.close()


# ---- outcomes ----------------------------------------------------------------------------------------------

def test_correct_code_passes(mode):
    r = run_tests("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n")
    assert isinstance(r, SandboxResult)
    assert (r.status, r.passed, r.network) == ("passed", True, mode)
    assert r.stderr == ""
    assert 0 < r.duration_ms < 10_000


def test_wrong_code_fails_with_the_assertion_in_stderr(mode):
    r = run_tests("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5, 'add(2, 3) should be 5'\n")
    assert (r.status, r.passed) == ("failed", False)
    assert "AssertionError: add(2, 3) should be 5" in r.stderr
    assert 'File "tests.py", line 1' in r.stderr


def test_exception_in_tests_is_a_failure():
    r = run_tests("def f(x):\n    return 1 / x\n", "assert f(0) == 0\n")
    assert r.status == "failed"
    assert "ZeroDivisionError" in r.stderr
    assert 'File "solution.py", line 2, in f' in r.stderr


def test_stdout_is_returned():
    r = run_tests("print('hello from the code')", "print('hello from the tests')")
    assert r.status == "passed"
    assert r.stdout == "hello from the code\nhello from the tests\n"


@pytest.mark.parametrize("code, kind", [
    ("def f(:\n    pass\n", "SyntaxError"),
    ("import no_such_module_for_tryouts\n", "ModuleNotFoundError"),
    ("def f():\n    return 1\nraise ValueError('at import')\n", "ValueError: at import"),
    ("x = input()\n", "EOFError"),  # stdin is closed
])
def test_code_that_cannot_run_is_an_error(code, kind):
    r = run_tests(code, "assert True\n")
    assert (r.status, r.passed) == ("error", False)
    assert kind in r.stderr


def test_main_block_of_the_code_does_not_run():
    code = "def f():\n    return 2\nif __name__ == '__main__':\n    raise SystemExit('main ran')\n"
    r = run_tests(code, "import solution\nassert solution.f() == 2 and f() == 2\n")
    assert r.status == "passed", r.stderr


@pytest.mark.parametrize("code", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"])
def test_exiting_before_the_tests_is_not_a_pass(code):
    r = run_tests(code, "assert False, 'the tests ran'\n")
    assert r.status == "error"
    assert "the tests ran" not in r.stderr
    assert "[tryouts sandbox]" in r.stderr or "SystemExit(0)" in r.stderr


def test_exiting_while_the_tests_run_is_a_failure():
    r = run_tests("import os\ndef f():\n    os._exit(0)\n", "f()\n")
    assert r.status == "failed"
    assert "exited with code 0 while the tests ran" in r.stderr


def test_invalid_tests_are_a_usage_error():
    with pytest.raises(UsageError, match="tests are not valid Python"):
        run_tests("x = 1", "assert (\n")


@pytest.mark.parametrize("kwargs", [{"timeout_s": 0}, {"timeout_s": -1.0}, {"timeout_s": float("nan")},
                                    {"memory_mb": 16}, {"memory_mb": 1.5}])
def test_bad_limits_are_a_usage_error(kwargs):
    with pytest.raises(UsageError):
        run_tests("x = 1", "assert x == 1", **kwargs)


# ---- limits ------------------------------------------------------------------------------------------------

def processes_with(marker: str) -> list[int]:
    """The processes of this machine whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("where", ["code", "function", "tests"])
def test_infinite_loop_is_killed(mode, where):
    marker = "tryouts-loop-" + secrets.token_hex(6)
    # the loop runs in a process whose command line carries the marker (the audit hook is switched off)
    spin = (HOOK_OFF + "import os, sys\ndef spin():\n    os.execv(sys.executable, [sys.executable, '-c', "
            f"'while True: pass', {marker!r}])\n")
    code, tests = {"code": (spin + "spin()\n", "assert True"), "function": (spin, "spin()\n"),
                   "tests": ("x = 1", "while True:\n    pass\n")}[where]
    try:
        r = run_tests(code, tests, timeout_s=1.0)
        assert (r.status, r.passed) == ("timeout", False)
        assert 1000 <= r.duration_ms < 1000 + 3000
        assert "time limit" in r.stderr
        assert processes_with(marker) == []
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_memory_limit(mode):
    code = "def grab():\n    return bytearray(2 * 1024 ** 3)\n"
    r = run_tests(code, "assert len(grab()) == 2 * 1024 ** 3\n", memory_mb=256)
    assert (r.status, r.passed) == ("failed", False)
    assert "MemoryError" in r.stderr


def test_output_is_cut_to_4000_characters():
    r = run_tests("print('START' + 'x' * 100_000 + 'END')\nimport sys\nprint('E' * 9000, file=sys.stderr)\n",
                  "assert True")
    assert r.status == "passed"
    assert len(r.stdout) <= 4000 and len(r.stderr) <= 4000
    assert r.stdout.startswith("START") and r.stdout.rstrip().endswith("END")
    assert "cut" in r.stdout


def test_concurrent_runs_from_threads():
    cases = [(f"def f():\n    return {i}\n", f"assert f() == {i if i % 2 else -1}\n") for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: run_tests(*c, timeout_s=20), cases))
    assert [r.status for r in results] == ["failed", "passed"] * 4


# ---- isolation ---------------------------------------------------------------------------------------------

def test_environment_is_not_inherited(mode, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    code = "import os\nprint(sorted(os.environ))\ndef env():\n    return dict(os.environ)\n"
    tests = ("import os\nassert 'OPENAI_API_KEY' not in os.environ and 'PYTHONPATH' not in os.environ\n"
             "assert 'OPENAI_API_KEY' not in env() and 'PYTHONPATH' not in env()\n"
             "assert set(env()) <= {'PATH', 'LANG', 'LC_ALL', 'HOME', 'TMPDIR', 'PWD'}, env()\n")
    r = run_tests(code, tests)
    assert r.status == "passed", r.stderr
    assert "sk-planted" not in r.stdout
    assert "OPENAI_API_KEY" not in r.stdout


def test_own_temporary_directory_is_deleted(mode):
    name = "scratch-" + secrets.token_hex(6)
    code = (f"import os\nopen({name!r}, 'w').write('x')\nprint(os.getcwd(), os.environ['HOME'])\n"
            f"def exists():\n    return os.path.exists({name!r})\n")
    r = run_tests(code, "assert exists()\n")
    assert r.status == "passed", r.stderr
    cwd, home = r.stdout.split()
    assert cwd == home and cwd != os.getcwd()
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "tryouts-sandbox-*", name))
    assert not os.path.exists(os.path.join(cwd, name))


def test_tcp_connect_is_blocked(mode, listener):
    code = ("import socket\n"
            "def call():\n"
            f"    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            f"    s.connect(('127.0.0.1', {listener.port}))\n"
            "    return 'connected'\n")
    r = run_tests(code, "assert call() == 'connected'\n")
    assert (r.status, r.passed) == ("failed", False)
    assert BLOCKED_NET in r.stderr
    assert listener.accepted == 0


def test_create_connection_is_blocked(mode, listener):
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {listener.port}), timeout=2).close()\n"
    r = run_tests(code, "assert True\n")
    assert r.status == "error"
    assert BLOCKED_NET in r.stderr
    assert listener.accepted == 0


@pytest.mark.parametrize("call, message", [
    ("socket.getaddrinfo('localhost', 80)", BLOCKED_NET),
    ("socket.gethostbyname('localhost')", BLOCKED_NET),
    ("socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 9))", BLOCKED_NET),
    ("subprocess.run(['true'])", BLOCKED_PROC),
    ("os.system('true')", BLOCKED_PROC),
    ("os.fork()", BLOCKED_PROC),
    ("os.execv('/bin/true', ['true'])", BLOCKED_PROC),
    ("os.posix_spawn('/bin/true', ['true'], {})", BLOCKED_PROC),
    ("__import__('_posixsubprocess').fork_exec()", BLOCKED_PROC),
    ("__import__('ctypes').CDLL('libc.so.6')", "ctypes is blocked"),
])
def test_refused_calls(mode, call, message):
    r = run_tests(f"import os, socket, subprocess\ndef call():\n    {call}\n", "call()\n")
    assert (r.status, r.passed) == ("failed", False)
    assert message in r.stderr
    assert "SandboxBlocked" in r.stderr


def test_unix_socketpair_still_works():
    # asyncio's event loop needs a socketpair; blocking all sockets would break ordinary code
    r = run_tests("import asyncio\nasync def two():\n    return 2\n", "assert asyncio.run(two()) == 2\n")
    assert r.status == "passed", r.stderr


def test_signalling_other_processes_is_blocked():
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        r = run_tests(f"import os, signal\ndef kill():\n    os.kill({victim.pid}, signal.SIGTERM)\n", "kill()\n")
        assert r.status == "failed"
        assert "signalling other processes is blocked" in r.stderr
        assert victim.poll() is None
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_isolation_is_probed_once():
    sandbox._cached_probe.cache_clear()  # other tests may have probed (or cleared) it already
    first = sandbox.isolation()
    assert first in ("bwrap", "none")
    assert network_isolation() == ("netns" if first == "bwrap" else "audit-hook")
    assert sandbox._cached_probe.cache_info().misses == 1


def test_bubblewrap_itself_isolates(listener, tmp_path):
    """Without the audit hook: inside bubblewrap only loopback, no other process, none of our files."""
    require_bwrap()
    secret = tmp_path / "secret.txt"
    secret.write_text("x", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    code = ("import os, socket\n"
            "print(sorted(n for _, n in socket.if_nameindex()))\n"
            "print(sorted(p for p in os.listdir('/proc') if p.isdigit()), os.getcwd())\n"
            f"print(os.path.exists({str(secret)!r}), os.path.exists('/etc/passwd'), os.path.exists('/home'))\n"
            f"socket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n")
    done = subprocess.run([*sandbox._bwrap_command("bwrap", str(work)), sys.executable, "-I", "-c", code],
                          capture_output=True, text=True, timeout=30, env=sandbox._child_env("/sandbox"))
    assert done.stdout.splitlines() == ["['lo']", "['1', '2'] /sandbox", "False False False"]
    assert done.returncode != 0
    assert "OSError" in done.stderr or "Error" in done.stderr
    assert listener.accepted == 0


def test_refuses_without_bubblewrap(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.delenv("TRYOUTS_UNSAFE_CODE_SANDBOX", raising=False)
    sandbox._cached_probe.cache_clear()
    try:
        assert sandbox.isolation() == "none"
        with pytest.raises(sandbox.SandboxUnavailable) as info:
            run_tests("def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\n")
        message = str(info.value)
        assert "bubblewrap (bwrap) is not installed" in message
        assert "apt-get install bubblewrap" in message and "TRYOUTS_UNSAFE_CODE_SANDBOX=1" in message
        assert "Traceback" not in message
        monkeypatch.setenv("TRYOUTS_UNSAFE_CODE_SANDBOX", "1")  # the opt-in, at the user's own risk
        r = run_tests("def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\n")
        assert (r.status, r.isolation, r.network) == ("passed", "unsafe", "audit-hook")
        wrong = run_tests("def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3\n")
        assert wrong.status == "failed"
    finally:
        sandbox._cached_probe.cache_clear()


# ---- the tests' view of the code ---------------------------------------------------------------------------

def test_values_travel_as_data(mode):
    code = ("import math, os\nLIMIT = 3\ndef pid():\n    return os.getpid()\n"
            "def echo(x):\n    return x\n"
            "def big():\n    return 2 ** 200, -0.0, float('inf'), 1 + 2j, b'\\x00\\xff', 'ü\\ud800'\n")
    tests = ("values = [None, True, 7, 2.5, 'text', b'by', [1, (2, 3)], {'k': [1]}, {1, 2}, frozenset({3}),"
             " {(1, 2): 'tuple key'}]\n"
             "for v in values:\n    r = echo(v)\n    assert r == v and type(r) is type(v), (v, r)\n"
             "n, z, inf, c, b, s = big()\n"
             "assert n == 2 ** 200 and str(z) == '-0.0' and inf == float('inf') and c == 1 + 2j\n"
             "assert b == b'\\x00\\xff' and s == 'ü\\ud800' and LIMIT == 3 and math.sqrt(9) == 3.0\n"
             "import solution\nassert solution.echo(5) == 5\n"
             "import os\nassert pid() != os.getpid()  # the code runs in a process of its own\n")
    r = run_tests(code, tests)
    assert r.status == "passed", r.stderr


def test_in_place_changes_and_objects_of_the_code(mode):
    code = ("import os\nTESTS = []\ndef sort_in_place(xs):\n    TESTS.append(xs)\n    xs.sort()\n"
            "def fill(d):\n    d['x'] = 1\n"
            "class Stack:\n    def __init__(self):\n        self.items = []\n"
            "    def push(self, x):\n        self.items.append(x)\n"
            "    def pop(self):\n        return self.items.pop()\n")
    tests = ("xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]\n"
             "xs.append(0)\nassert TESTS == []  # a copy travelled, and the code's names are copies too\n"
             "d = {}\nfill(d)\nassert d == {'x': 1}\n"
             "s = Stack()\ns.push(4)\ns.push(5)\nassert s.pop() == 5 and s.items == [4]\n")
    r = run_tests(code, tests)
    assert r.status == "passed", r.stderr


def test_exceptions_of_the_code_reach_the_tests(mode):
    code = ("class Custom(Exception):\n    pass\n"
            "def check(x):\n    if x < 0:\n        raise ValueError('negative')\n    raise Custom('mine')\n")
    tests = ("try:\n    check(-1)\nexcept ValueError as e:\n    assert str(e) == 'negative'\n"
             "else:\n    raise AssertionError('no ValueError')\n"
             "try:\n    check(1)\nexcept Exception as e:\n    assert 'Custom: mine' in str(e)\n")
    r = run_tests(code, tests)
    assert r.status == "passed", r.stderr


def test_objects_of_the_code_are_not_compared_by_the_code(mode):
    code = "class Anything:\n    def __eq__(self, other):\n        return True\ndef f():\n    return Anything()\n"
    r = run_tests(code, "assert f() == 5\n")
    assert r.status == "failed"
    assert "only compares data" in r.stderr
    r = run_tests(code, "assert f()\n")
    assert r.status == "failed"
    r = run_tests("def f():\n    return 1\n", "f(lambda: 1)\n")
    assert r.status == "failed" and "cannot be passed to the code" in r.stderr


# ---- extract_code ------------------------------------------------------------------------------------------

def test_extract_code_fenced():
    text = "Here you go:\n\n```python\ndef f(x):\n    return x * 2\n```\n\nThis doubles x."
    assert extract_code(text) == "def f(x):\n    return x * 2"


def test_extract_code_unfenced():
    assert extract_code("\n  def f():\n    return 1\n\n") == "def f():\n    return 1"


def test_extract_code_takes_the_longest_python_block():
    text = ("Usage:\n```py\nf(1)\n```\nCode:\n```\ndef f(x):\n    return x + 1\n```\n"
            "Install:\n```bash\npip install something-long-enough-to-be-the-longest-block-here\n```\n"
            "Shorter:\n```python3\nx = 1\n```\n")
    assert extract_code(text) == "def f(x):\n    return x + 1"


def test_extract_code_only_non_python_blocks_gives_the_whole_text():
    text = "Run:\n```bash\nls\n```"
    assert extract_code(text) == text


def test_extract_code_unclosed_and_indented_and_tilde_fences():
    assert extract_code("Sure:\n```python\ndef f():\n    return 3\n") == "def f():\n    return 3"
    assert extract_code("1. Code:\n   ```python\n   def g():\n       pass\n   ```\n") == "def g():\n    pass"
    assert extract_code("~~~python\nprint('```')\n~~~\n") == "print('```')"


def test_extracted_code_runs():
    answer = "```python\ndef square(n):\n    return n * n\n```"
    assert run_tests(extract_code(answer), "assert square(7) == 49").passed


def test_a_python_environment_under_tmp_is_mounted_not_hidden():
    """A venv under /tmp (a CI checkout) is mounted on top of the sandbox's empty /tmp: mounted before it, it
    was hidden and bwrap could not find the interpreter (found by a fresh clone's CI)."""
    import shutil
    import venv

    require_bwrap()
    env_dir = Path(tempfile.mkdtemp(prefix="tryouts-venv-", dir="/tmp")) / "venv"
    venv.create(env_dir, with_pip=False)
    src = Path(sandbox.__file__).resolve().parents[2]
    script = (f"import sys; sys.path.insert(0, {str(src)!r})\n"
              "from tryouts.scoring import sandbox\n"
              "r = sandbox.run_tests('def add(a, b):\\n    return a + b\\n', 'assert add(2, 3) == 5\\n')\n"
              "print(r.status, r.isolation)\n")
    try:
        done = subprocess.run([str(env_dir / "bin" / "python"), "-c", script], capture_output=True, text=True,
                              timeout=120)
    finally:
        shutil.rmtree(env_dir.parent, ignore_errors=True)
    assert done.stdout.split() == ["passed", "bwrap"], done.stderr[-2000:]
