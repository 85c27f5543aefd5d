"""Run model-written Python against a task's tests in a throwaway subprocess (the ``code`` task).

:func:`run_tests` runs ``code`` and then ``tests`` (plain Python with ``assert``) and reports a
:class:`SandboxResult`: ``passed``, ``failed`` (an exception in the tests), ``error`` (the code itself could
not run: a ``SyntaxError``, an ``ImportError``, an exception at import time) or ``timeout``.
:func:`extract_code` takes the code out of a model's answer.

What the sandbox does:

* a fresh ``python -I`` process (no user site, no ``PYTHON*`` variables, no current directory on
  ``sys.path``) in a new session, with stdin closed and a small explicit environment: no API key or other
  variable of ours reaches the code;
* its own temporary working directory (also ``HOME`` and ``TMPDIR``), deleted afterwards;
* limits: wall-clock ``timeout_s`` (then the whole process group is killed with SIGKILL), CPU time just
  above it, address space ``memory_mb`` (big allocations raise ``MemoryError``), 64 MB per written file,
  no core dumps; stdout and stderr go to files and come back cut to 4000 characters each;
* no network: where unprivileged user namespaces work (probed once, :func:`network_isolation`) the process
  runs in a new, empty network namespace through ``unshare --user --net --map-root-user``, where even
  loopback is down. In every case an audit hook (:func:`sys.addaudithook`, which cannot be removed) is
  installed before the code runs and refuses sockets other than Unix ones, ``connect``/``bind``/``sendto``,
  name lookups, starting processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``,
  ``os.fork``), signals to other processes and loading native libraries with ``ctypes``;
* the outcome is reported through a file with a random token, so code that calls ``sys.exit(0)`` or
  ``os._exit(0)`` before the tests have run is not counted as passing.

What it does NOT protect against:

* it is meant for honest-but-buggy code (infinite loops, huge allocations, a stray ``requests.get``), not
  for a hostile adversary. With only the audit hook in force (``network == "audit-hook"``) determined code
  can get around it: audit hooks are a CPython convenience, not a security boundary (code can reach the
  interpreter's internals, rebind the hook's data, or use an extension module that makes system calls
  directly). The network namespace is a real kernel boundary, but only for the network;
* the file system is not isolated: the working directory is a temporary one, but nothing is chrooted or
  mounted read-only, so the code can read and write whatever your user can (the tests could be read too);
* there is no limit on the number of processes (``RLIMIT_NPROC`` counts all of your user's processes, so
  setting it could break other work); starting processes is refused by the audit hook instead;
* CPU time and memory are limited per process, not as a cgroup; disk use is limited per file only.

For untrusted code from the internet, run Tryouts itself in a container or VM.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError

__all__ = ["SandboxResult", "extract_code", "network_isolation", "run_tests"]

#: stdout and stderr are cut to this many characters
OUTPUT_LIMIT = 4000
#: the largest file the code may write (RLIMIT_FSIZE)
FILE_LIMIT_BYTES = 64 * 1024 * 1024
#: below this the interpreter itself cannot start under RLIMIT_AS
MIN_MEMORY_MB = 64

_PY_LANGS = frozenset({"", "python", "python3", "py", "py3"})
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)[^`\n]*$")


@dataclass(frozen=True)
class SandboxResult:
    """What happened when code and tests ran in the sandbox."""

    #: "passed" | "failed" | "timeout" | "error" (error: the code could not even run, e.g. a SyntaxError)
    status: str
    #: status == "passed"
    passed: bool
    #: wall-clock time from starting the process to its end (or to the kill)
    duration_ms: float
    #: the process's stdout, cut to 4000 characters
    stdout: str
    #: the process's stderr, cut to 4000 characters; the traceback of a failure or error is here
    stderr: str
    #: the network isolation that was in force: "netns" (a new, empty network namespace) or "audit-hook"
    network: str


def extract_code(text: str) -> str:
    """The Python code in a model's answer.

    The longest fenced block marked ```` ```python ````, ```` ```py ```` (also ``python3``, ``py3``) or
    left bare, with its common indentation removed; a block the answer never closes (the model ran out of
    tokens) runs to the end. Without such a block, the whole text with surrounding whitespace stripped.
    """
    lines = text.splitlines()
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group("fence"), m.group("lang").lower()
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if lang in _PY_LANGS:
            blocks.append(textwrap.dedent("\n".join(lines[i + 1:j])).strip("\n"))
        i = j + 1
    if blocks:
        return max(blocks, key=len)  # the first of equally long blocks
    return text.strip()


def _unshare_prefix() -> list[str] | None:
    """The command prefix that runs a program in a new user and network namespace, if that works here.

    Works means: ``unshare`` exists, an interpreter started through it exits cleanly, and the only network
    interface it can see is loopback.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--user", "--net", "--map-root-user", "--"]
    probe = "import socket, sys; sys.stdout.write(','.join(sorted(n for _, n in socket.if_nameindex())))"
    try:
        done = subprocess.run([*prefix, sys.executable, "-I", "-c", probe], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=20, env=_child_env(None))
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or done.stdout.strip() != "lo":
        return None
    return prefix


@lru_cache(maxsize=1)
def _cached_prefix() -> tuple[str, ...] | None:
    prefix = _unshare_prefix()
    return tuple(prefix) if prefix else None


def network_isolation() -> str:
    """The network isolation :func:`run_tests` uses on this machine: ``"netns"`` or ``"audit-hook"``.

    ``"netns"`` when the code can run in a new user and network namespace (probed once per process, then
    cached); ``"audit-hook"`` when it cannot (containers often forbid user namespaces) and only the audit
    hook, which is installed in both cases, keeps the code off the network.
    """
    return "netns" if _cached_prefix() else "audit-hook"


def _child_env(home: str | None) -> dict[str, str]:
    """The whole environment the code sees: nothing of ours is inherited."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if home:
        env.update(HOME=home, TMPDIR=home)
    return env


def _limiter(timeout_s: float, memory_mb: int):
    """The ``preexec_fn`` that sets the child's resource limits (values computed here, not in the child)."""
    cpu = math.ceil(timeout_s) + 1
    limits = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2),
        (resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ]

    def preexec() -> None:
        for which, value in limits:
            resource.setrlimit(which, value)

    return preexec


def _read_cut(path: Path, limit: int = OUTPUT_LIMIT) -> str:
    """The file's text, cut in the middle to at most ``limit`` characters (start and end are kept)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            if size <= 4 * limit:  # at most 4 bytes a character: small enough to read whole
                text = f.read().decode("utf-8", "replace")
            else:
                head = f.read(2 * limit).decode("utf-8", "replace")
                f.seek(size - 2 * limit)
                text = head + "\n" + f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    if len(text) <= limit:
        return text
    marker = f"\n[... cut {len(text) - limit} characters ...]\n"
    keep = limit - len(marker)
    return text[:keep // 2] + marker + text[len(text) - (keep - keep // 2):]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tests(code: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 1024) -> SandboxResult:
    """Run ``code`` followed by ``tests`` (plain Python using ``assert``) in a fresh subprocess.

    The code runs as the module ``solution`` (so an ``if __name__ == "__main__":`` block does not run),
    then the tests run in the same namespace, so they call the code's functions by name (or
    ``import solution``). ``SystemExit`` counts as an error in the code and as a failure in the tests, so
    tests must not end with ``sys.exit(0)`` (``unittest.main()`` does). See the module docstring for the
    isolation and its limits.

    Args:
        code: the model's code (see :func:`extract_code`).
        tests: the task's tests; must compile, else :class:`~tryouts.errors.UsageError`.
        timeout_s: wall-clock limit for the whole run, interpreter start included.
        memory_mb: address-space limit of the process (at least 64).

    Returns:
        a :class:`SandboxResult`; never raises for anything the code does.
    """
    if not isinstance(code, str) or not isinstance(tests, str):
        raise UsageError("run_tests needs the code and the tests as strings.")
    if not (isinstance(timeout_s, int | float) and 0 < timeout_s < math.inf):
        raise UsageError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}.")
    if not isinstance(memory_mb, int) or memory_mb < MIN_MEMORY_MB:
        raise UsageError(f"memory_mb must be an integer of at least {MIN_MEMORY_MB} (Python needs that much "
                         f"to start), not {memory_mb!r}.")
    try:
        compile(tests, "tests.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        raise UsageError(f"The tests are not valid Python ({e}); fix the task's tests.") from e

    prefix = _cached_prefix() if network_isolation() == "netns" else None
    network = "netns" if prefix else "audit-hook"
    root = Path(tempfile.mkdtemp(prefix="tryouts-sandbox-"))
    try:
        work = root / "work"
        work.mkdir()
        nonce = secrets.token_hex(16)
        payload, outcome = root / "payload.json", root / "outcome"
        job = {"code": code, "tests": tests, "nonce": nonce, "outcome": str(outcome)}
        payload.write_text(json.dumps(job), encoding="utf-8")
        command = [*(prefix or ()), sys.executable, "-I", "-c", _BOOTSTRAP, str(payload)]
        timed_out = False
        with open(root / "stdout", "wb") as out, open(root / "stderr", "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(command, cwd=work, env=_child_env(str(work)), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True, close_fds=True,
                                    preexec_fn=_limiter(timeout_s, memory_mb))
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            else:
                _kill_group(proc.pid)  # anything the code left behind in its group
            duration_ms = (time.perf_counter() - t0) * 1000
        status, note = _status(proc.returncode, timed_out, outcome, nonce)
        stderr = _read_cut(root / "stderr")
        if note:  # said after whatever the process wrote, within the same 4000 characters
            note = f"[tryouts sandbox] {note}"
            stderr = (_read_cut(root / "stderr", OUTPUT_LIMIT - len(note) - 1) + "\n" + note).lstrip("\n")
        return SandboxResult(status=status, passed=status == "passed", duration_ms=round(duration_ms, 3),
                             stdout=_read_cut(root / "stdout"), stderr=stderr, network=network)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _status(returncode: int, timed_out: bool, outcome: Path, nonce: str) -> tuple[str, str | None]:
    """The status from how the process ended and what the bootstrap reported with the run's token.

    Also a note for stderr when the process ended without reporting (killed, or exited from inside the code).
    """
    if timed_out:
        return "timeout", "killed: the wall-clock time limit ran out"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout", "killed: the CPU time limit ran out"
    try:
        words = [line.split() for line in outcome.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        words = []
    steps = [w[0] for w in words if len(w) == 2 and w[1] == nonce]
    ended = (f"the process was killed by signal {-returncode}" if returncode < 0
             else f"the process exited with code {returncode}")
    if "passed" in steps and returncode == 0:
        return "passed", None
    if {"failed", "error"} & set(steps):
        return ("failed" if "failed" in steps else "error"), None
    if "code-ok" in steps:  # the tests were running
        return "failed", f"{ended} while the tests ran"
    return "error", f"{ended} before the code had run (the tests did not run)"


# Runs in the child as `python -I -c _BOOTSTRAP <payload>`. Everything happens inside main() so nothing of
# the bootstrap is left in __main__'s globals; the payload file (it holds the token) is deleted before the
# code runs. Exits with os._exit so threads or atexit handlers the code left behind cannot change the result.
_BOOTSTRAP = r'''
def main():
    import json, linecache, os, socket, sys, traceback, types

    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    os.unlink(path)
    del sys.argv[1:]
    code, tests, nonce, outcome = payload["code"], payload["tests"], payload["nonce"], payload["outcome"]
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    stderr = sys.stderr

    class SandboxBlocked(PermissionError):
        """Raised by the Tryouts sandbox's audit hook."""

    SandboxBlocked.__qualname__ = "SandboxBlocked"  # tracebacks say SandboxBlocked, not main.<locals>...

    net = "network access is blocked in the Tryouts sandbox"
    proc = "starting processes is blocked in the Tryouts sandbox"
    blocked = {
        "socket.connect": net, "socket.bind": net, "socket.sendto": net, "socket.getaddrinfo": net,
        "socket.gethostbyname": net, "socket.gethostbyaddr": net, "socket.getnameinfo": net,
        "subprocess.Popen": proc, "os.system": proc, "os.exec": proc, "os.posix_spawn": proc,
        "os.spawn": proc, "os.fork": proc, "os.forkpty": proc, "os.startfile": proc,
        "ctypes.dlopen": "loading native libraries with ctypes is blocked in the Tryouts sandbox",
    }
    own_pid, own_pgid, unix = os.getpid(), os.getpgid(0), socket.AF_UNIX

    def hook(event, args):
        if event in blocked:
            raise SandboxBlocked(f"{blocked[event]} ({event})")
        if event == "socket.__new__" and args[1] != unix:
            raise SandboxBlocked(f"{net} (socket.__new__)")
        if (event == "os.kill" and args[0] not in (0, own_pid)) or (
                event == "os.killpg" and args[0] != own_pgid):
            raise SandboxBlocked(f"signalling other processes is blocked in the Tryouts sandbox ({event})")

    try:  # subprocess forks through this without an audit event of its own
        import _posixsubprocess

        def fork_exec(*args, **kwargs):
            raise SandboxBlocked(f"{proc} (_posixsubprocess.fork_exec)")

        _posixsubprocess.fork_exec = fork_exec
    except ImportError:
        pass
    sys.addaudithook(hook)

    def report(word):
        with open(outcome, "a", encoding="utf-8") as f:
            f.write(f"{word} {nonce}\n")

    def finish(word, rc, note=None):
        if note:
            print(note, file=stderr)
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__, stderr):
            try:
                stream.flush()
            except Exception:
                pass
        report(word)
        os._exit(rc)

    module = types.ModuleType("solution")
    module.__file__ = "solution.py"
    sys.modules["solution"] = module
    namespace = module.__dict__
    for name, source, word, rc in (("solution.py", code, "error", 2), ("tests.py", tests, "failed", 1)):
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        try:
            exec(compile(source, name, "exec", dont_inherit=True), namespace)
        except SystemExit as e:
            where = "the code" if word == "error" else "the tests"
            finish(word, rc, f"SystemExit({e.code!r}) raised in {where}: the tests did not complete.")
        except BaseException as e:
            try:  # without this bootstrap's own frame
                traceback.print_exception(type(e), e, e.__traceback__.tb_next, file=stderr)
            except BaseException:
                pass
            finish(word, rc)
        if word == "error":
            report("code-ok")
    finish("passed", 0)


main()
'''
