"""The code sandbox (tryouts.scoring.sandbox): outcomes, limits, isolation and extract_code.

Most tests run twice: with the isolation this machine offers (a network namespace where user namespaces
work) and with the audit-hook fallback forced, so both paths are exercised wherever user namespaces work.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tryouts.errors import UsageError
from tryouts.scoring import sandbox
from tryouts.scoring.sandbox import SandboxResult, extract_code, network_isolation, run_tests

BLOCKED_NET = "network access is blocked in the Tryouts sandbox"
BLOCKED_PROC = "starting processes is blocked in the Tryouts sandbox"


@pytest.fixture(params=["native", "audit-hook"])
def mode(request, monkeypatch) -> str:
    """The isolation run_tests is expected to report: what this machine has, or the forced fallback."""
    if request.param == "audit-hook":
        monkeypatch.setattr(sandbox, "network_isolation", lambda: "audit-hook")
        return "audit-hook"
    return network_isolation()


class Listener:
    """A real TCP server on 127.0.0.1 in a thread that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


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

@pytest.mark.parametrize("where", ["code", "tests"])
def test_infinite_loop_is_killed(mode, where, tmp_path):
    pid_file = tmp_path / "pid"
    loop = f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\nwhile True:\n    pass\n"
    code, tests = (loop, "assert True") if where == "code" else ("x = 1", loop)
    r = run_tests(code, tests, timeout_s=1.0)
    assert (r.status, r.passed) == ("timeout", False)
    assert 1000 <= r.duration_ms < 1000 + 3000
    assert "time limit" in r.stderr
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


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
    code = "import os\nprint(sorted(os.environ))\n"
    r = run_tests(code, "assert 'OPENAI_API_KEY' not in os.environ\nassert 'PYTHONPATH' not in os.environ\n")
    assert r.status == "passed", r.stderr
    assert "sk-planted" not in r.stdout
    assert "OPENAI_API_KEY" not in r.stdout


def test_own_temporary_directory_is_deleted(tmp_path):
    out = tmp_path / "cwd"
    code = f"import os\nopen('scratch.txt', 'w').write('x')\nopen({str(out)!r}, 'w').write(os.getcwd())\n"
    r = run_tests(code, "import os\nassert os.path.exists('scratch.txt')\n")
    assert r.status == "passed", r.stderr
    cwd = out.read_text()
    assert cwd != os.getcwd() and "tryouts-sandbox-" in cwd
    assert not os.path.exists(cwd)


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
    r = run_tests("import os, socket, subprocess\n", f"{call}\n")
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
        r = run_tests("import os, signal\n", f"os.kill({victim.pid}, signal.SIGTERM)\n")
        assert r.status == "failed"
        assert "signalling other processes is blocked" in r.stderr
        assert victim.poll() is None
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


def test_network_isolation_is_probed_once():
    sandbox._cached_prefix.cache_clear()  # other tests may have probed (or cleared) it already
    first = network_isolation()
    assert first in ("netns", "audit-hook")
    assert network_isolation() == first
    assert sandbox._cached_prefix.cache_info().misses == 1


def test_network_namespace_itself_has_no_network(listener):
    """Without the audit hook: a process in the namespace sees only loopback and cannot reach our server."""
    if network_isolation() != "netns":
        pytest.skip("user namespaces do not work here; run_tests falls back to the audit hook")
    prefix = list(sandbox._cached_prefix())
    code = ("import socket\n"
            "print(sorted(n for _, n in socket.if_nameindex()))\n"
            f"socket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n")
    done = subprocess.run([*prefix, sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout.strip() == "['lo']"
    assert done.returncode != 0
    assert "OSError" in done.stderr or "Error" in done.stderr
    assert listener.accepted == 0


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
