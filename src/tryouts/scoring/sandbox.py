"""Run model-written Python against a task's tests, isolated from this machine (the ``code`` task).

:func:`run_tests` runs ``code`` and then ``tests`` (plain Python with ``assert``) and reports a
:class:`SandboxResult`: ``passed``, ``failed`` (an exception in the tests), ``error`` (the code itself could
not run: a ``SyntaxError``, an ``ImportError``, an exception at import time) or ``timeout``.
:func:`extract_code` takes the code out of a model's answer.

How (docs/security.md has the threat model):

* **The verdict is decided outside the code's process.** A harness process (``python -I``, a scrubbed
  environment) runs the tests; the model's code runs in a separate child. The tests get stand-ins for the
  code's functions: a call sends the arguments to the child, the child runs the function and sends the result
  back as data (numbers, strings, bytes, lists, tuples, dicts, sets, ``None``; anything else is an opaque
  handle the tests can call but not compare). The comparisons run in the harness, which the child cannot see
  or touch, so printing "passed", exiting early or patching the test harness's frames cannot make a wrong
  answer pass. The code's top-level names reach the tests' namespace, but never over a builtin: ``abs``,
  ``sorted`` or ``len`` in the tests are Python's even when the code defines its own. Lists, dicts and sets
  passed as arguments are updated in place with the child's copies, so
  tests of in-place functions work; arguments must be data (a ``lambda`` cannot be passed).
* **The child runs in bubblewrap** (``bwrap --unshare-all --die-with-parent --new-session``): new user, pid,
  network, IPC, UTS and mount namespaces, all capabilities dropped. The network namespace is empty but for
  its own loopback, which is up: the code can connect to a listener of its own on 127.0.0.1, never to the
  host's 127.0.0.1 or anything else. A file system built from nothing but read-only ``/usr`` (and
  ``/lib*``), the Python installation and its environment, a fresh ``/proc`` of its own pid namespace, a
  minimal ``/dev``, an empty ``/tmp`` and its own working directory ``/sandbox`` (also ``HOME``), both
  memory file systems of ``SPACE_LIMIT_BYTES`` each that vanish with the sandbox (where bubblewrap is older
  than ``--size``, ``/sandbox`` is a host folder, removed after the run). Your home, ``/etc``, the keys file,
  the store and every other process's ``/proc`` entry are not there. Anything the code starts dies with the
  pid namespace.
* limits: wall-clock ``timeout_s`` (then the harness's process group is killed, and the child with it), CPU
  time just above it, address space ``memory_mb``, 64 MB per written file and 64 MB in each of ``/sandbox``
  and ``/tmp``, no core dumps; stdout and stderr come back cut to 4000 characters each. The host folders of
  a run are removed after it, permissions restored first (the code may have made its folders unreadable); a
  removal that fails anyway is logged and said at the end of ``stderr``. An audit hook refusing sockets, processes and ``ctypes`` gives honest
  code a clear error early; it is a courtesy, not the boundary.

Where bubblewrap is missing or cannot create namespaces (:func:`isolation` probes once), :func:`run_tests`
raises :class:`SandboxUnavailable` instead of running the code half-protected, unless the user opts in with
``TRYOUTS_UNSAFE_CODE_SANDBOX=1`` (or ``unsafe=True``): then the child runs as a plain process (own session,
scrubbed environment, limits, the audit hook, verdict still outside) that can read whatever your user can.

Not covered: the child shares the kernel (a kernel exploit escapes); there is no limit on the number of
processes or threads inside the namespace beyond the memory limit, and CPU/memory are limited per process,
not as a cgroup; the number of files (inodes) in ``/sandbox`` and ``/tmp`` is bounded only by the time limit
(empty files take kernel memory, not space, and are freed with the sandbox); the Python installation and its
site-packages are readable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from ..errors import UsageError
from .sandbox_child import CHILD, HARNESS

__all__ = [
    "SandboxResult", "SandboxUnavailable", "extract_code", "isolation", "network_isolation", "require_isolation",
    "run_tests",
]

#: stdout and stderr are cut to this many characters
OUTPUT_LIMIT = 4000
#: the largest file the code may write (RLIMIT_FSIZE)
FILE_LIMIT_BYTES = 64 * 1024 * 1024
#: the size of each of the sandbox's memory file systems, /sandbox and /tmp (bubblewrap's --size)
SPACE_LIMIT_BYTES = 64 * 1024 * 1024
#: below this the interpreter itself cannot start under RLIMIT_AS
MIN_MEMORY_MB = 64

_log = logging.getLogger(__name__)

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
    #: "bwrap" (namespaces, a file system of its own) or "unsafe" (the user opted in to running without)
    isolation: str = "bwrap"


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


class SandboxUnavailable(UsageError):
    """Raised when the isolation code scoring needs is missing and the user has not opted out of it."""


#: set to 1 to run model code without bubblewrap, at your own risk
UNSAFE_ENV = "TRYOUTS_UNSAFE_CODE_SANDBOX"
#: the largest reply the code may send for one call
REPLY_LIMIT = 32 * 1024 * 1024
#: where the work directory appears inside the sandbox (also HOME and TMPDIR there)
INSIDE = "/sandbox"

_PROBE = r"""
import os, socket, sys
names = sorted(n for _, n in socket.if_nameindex())
home = [p for p in ("/home", "/etc/passwd", sys.argv[1]) if os.path.exists(p)]
pids = [p for p in os.listdir("/proc") if p.isdigit()]
sys.stdout.write("ok" if names == ["lo"] and not home and len(pids) <= 3 and os.getcwd() == "/sandbox" else
                 f"names={names} visible={home} pids={len(pids)}")
"""


def _python_dirs() -> list[str]:
    """The directories the interpreter needs: its installation and the environment (venv) it runs in."""
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, os.path.dirname(sys.executable))}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    dirs.update({sys.base_prefix, sys.prefix})  # the paths as the interpreter knows them
    kept = sorted(d for d in dirs if d and not d.startswith("/usr/") and os.path.isdir(d))
    # a directory inside another kept one comes along with it
    return [d for d in kept if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in kept)]


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Block until ``proc`` exits (True) or ``timeout_s`` passes (False). Popen.wait(timeout) polls, sleeping
    up to 50 ms at a time, so it returns up to 50 ms after the exit; a blocking wait in a thread does not."""
    gone = threading.Event()
    threading.Thread(target=lambda: (proc.wait(), gone.set()), name="tryouts-sandbox-wait", daemon=True).start()
    return gone.wait(timeout_s)


@lru_cache(maxsize=4)
def _bwrap_sizes(bwrap: str) -> bool:
    """Whether this bubblewrap can limit a tmpfs's size (``--size``, bubblewrap 0.10 and some backports)."""
    try:
        done = subprocess.run([bwrap, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=30, env=_child_env(None))
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(re.search(r"^\s*--size\b", done.stdout + done.stderr, re.MULTILINE))


def _bwrap_command(bwrap: str, work: str, extra: tuple[str, ...] = ()) -> list[str]:
    """bubblewrap's arguments: every namespace, and a file system of read-only system and Python files.

    ``/tmp`` and ``/sandbox`` are memory file systems of :data:`SPACE_LIMIT_BYTES` each, gone with the
    sandbox; without ``--size``, ``/tmp`` is unbounded and ``/sandbox`` is ``work`` (removed after the run).
    """
    size = ["--size", str(SPACE_LIMIT_BYTES)] if _bwrap_sizes(bwrap) else []
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        cmd += ["--ro-bind-try", f, f]
    # the empty /tmp first: a Python environment that lives under /tmp (a CI checkout) is mounted on top of it,
    # not hidden by it (bubblewrap mounts in the order given)
    cmd += ["--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/tmp"]
    for d in _python_dirs():
        cmd += ["--ro-bind", d, d]
    cmd += [*size, "--tmpfs", INSIDE] if size else ["--bind", work, INSIDE]
    cmd += ["--chdir", INSIDE, *extra, "--"]
    return cmd


def _probe() -> tuple[str | None, str]:
    """(the bwrap executable, "") when bubblewrap isolates a child here as needed, else (None, why not)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed"
    home = os.path.realpath(os.path.expanduser("~"))
    for d in _python_dirs():  # mounted in the sandbox: must not bring the home directory along
        if d == "/" or home == d or home.startswith(d.rstrip("/") + "/"):
            return None, f"Python runs from {d}, which holds your home directory (use a Python installed elsewhere)"
    work = tempfile.mkdtemp(prefix="tryouts-probe-")
    outside = os.path.join(work, "outside")  # a file of ours the sandbox must not see
    try:
        Path(outside).write_text("x", encoding="utf-8")
        os.mkdir(os.path.join(work, "inside"))
        done = subprocess.run([*_bwrap_command(bwrap, os.path.join(work, "inside")), sys.executable, "-I", "-c",
                               _PROBE, outside],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                              env=_child_env(INSIDE))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"bwrap could not be started ({type(e).__name__})"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0 or done.stdout.strip() != "ok":
        why = (done.stderr.strip().splitlines() or [done.stdout.strip()] or [""])[-1][:200]
        return None, f"bwrap cannot isolate a process here ({why or f'exit code {done.returncode}'})"
    return bwrap, ""


@lru_cache(maxsize=1)
def _cached_probe() -> tuple[str | None, str]:
    return _probe()


def isolation() -> str:
    """``"bwrap"`` when bubblewrap isolates the code on this machine (probed once, then cached), else ``"none"``."""
    return "bwrap" if _cached_probe()[0] else "none"


def network_isolation() -> str:
    """The network isolation :func:`run_tests` gives the code: ``"netns"`` with bubblewrap, else ``"audit-hook"``
    (only when the user opted in to running without it)."""
    return "netns" if isolation() == "bwrap" else "audit-hook"


def unsafe_allowed() -> bool:
    """Whether the user opted in to running model code without bubblewrap (``TRYOUTS_UNSAFE_CODE_SANDBOX=1``)."""
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes")


def require_isolation(unsafe: bool = False) -> str:
    """``"bwrap"``, or ``"unsafe"`` when it is missing and the user opted in; else :class:`SandboxUnavailable`.

    Callers that score many answers call it once first, so a refusal comes before any work.
    """
    if isolation() == "bwrap":
        return "bwrap"
    if unsafe or unsafe_allowed():
        return "unsafe"
    raise SandboxUnavailable(
        f"Scoring code needs bubblewrap to isolate the model's code, and {_cached_probe()[1]}. Install it "
        "(Debian/Ubuntu: apt-get install bubblewrap) on a system that allows user namespaces, or run Tryouts "
        f"in a throwaway container or VM and set {UNSAFE_ENV}=1 to run the code without that isolation, at "
        "your own risk: it could then read your files and API keys.")


def _child_env(home: str | None) -> dict[str, str]:
    """The whole environment the harness and the code see: nothing of ours is inherited."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if home:
        env.update(HOME=home, TMPDIR=home)
    return env


def _limits(timeout_s: float, memory_mb: int) -> list[tuple[str, tuple[int, int]]]:
    """The child's resource limits, by ``resource`` constant name (set by the harness before it starts)."""
    cpu = math.ceil(timeout_s) + 1
    return [("RLIMIT_CPU", (cpu, cpu + 1)), ("RLIMIT_AS", (memory_mb * 1024 * 1024,) * 2),
            ("RLIMIT_FSIZE", (FILE_LIMIT_BYTES,) * 2), ("RLIMIT_CORE", (0, 0))]


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


def _end_child(pids_file: Path) -> None:
    """Make sure the code's processes are gone: kill the child's group (unsafe mode), or wait for the pid
    namespace's init to exit (bubblewrap kills it when the harness dies; the kernel then kills everything
    in the namespace before init's exit is reported)."""
    try:
        pids = json.loads(pids_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for key in ("group", "init"):
        pid = pids.get(key)
        if type(pid) is not int or pid <= 1:
            continue
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # already gone
            continue
        try:
            if key == "group":
                _kill_group(pid)
            elif _is_namespace_init(pid):  # still the sandbox's init, not a new process with its number
                signal.pidfd_send_signal(fd, signal.SIGKILL)  # no-op if bwrap's death already did it
            else:
                continue
            select.select([fd], [], [], 10)
        except OSError:
            pass
        finally:
            os.close(fd)


def _is_namespace_init(pid: int) -> bool:
    """Whether ``pid`` is the first process of a pid namespace below ours (``NSpid: <pid> 1``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) >= 2 and ids[-1] == "1"
    except OSError:
        pass
    return False


def run_tests(code: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 1024,
              unsafe: bool = False) -> SandboxResult:
    """Run ``code`` and then ``tests`` (plain Python using ``assert``), the code isolated from the tests.

    The code runs as the module ``solution`` in its own process (so an ``if __name__ == "__main__":`` block
    does not run); the tests run in the harness with the code's top-level names (functions and classes as
    stand-ins, data values as copies) in their namespace or through ``import solution``. ``SystemExit`` counts
    as an error in the code and as a failure in the tests. See the module docstring for the isolation.

    Args:
        code: the model's code (see :func:`extract_code`).
        tests: the task's tests; must compile, else :class:`~tryouts.errors.UsageError`.
        timeout_s: wall-clock limit for the whole run, interpreters' start included.
        memory_mb: address-space limit of the code's process (at least 64).
        unsafe: run without bubblewrap where it is missing (as ``TRYOUTS_UNSAFE_CODE_SANDBOX=1`` does).

    Returns:
        a :class:`SandboxResult`; never raises for anything the code does.

    Raises:
        SandboxUnavailable: bubblewrap cannot isolate the code here and the user has not opted out.
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
    mode = require_isolation(unsafe)
    root = Path(tempfile.mkdtemp(prefix="tryouts-sandbox-"))
    try:
        work = Path(tempfile.mkdtemp(prefix="tryouts-sandbox-work-"))  # not beside the harness's files
    except BaseException:
        _remove_tree(root)
        raise
    try:
        result = _run(code, tests, mode, root, work, timeout_s, memory_mb)
    finally:
        left = [why for why in (_remove_tree(root), _remove_tree(work)) if why]
    if left:  # files the code made that outlive the run: never silent
        note = "[tryouts sandbox] " + "; ".join(left)
        _log.warning("%s", note)
        stderr = result.stderr[:max(0, OUTPUT_LIMIT - len(note) - 1)]
        result = replace(result, stderr=(stderr + "\n" + note).lstrip("\n"))
    return result


def _run(code: str, tests: str, mode: str, root: Path, work: Path, timeout_s: float,
         memory_mb: int) -> SandboxResult:
    """:func:`run_tests` with its folders made: ``root`` for the harness's files, ``work`` for the code's."""
    child = [sys.executable, "-I", "-u", "-c", CHILD, "{req}", "{rep}"]
    if mode == "bwrap":
        command = [*_bwrap_command(_cached_probe()[0], str(work), ("--info-fd", "{info}")), *child]
    else:
        command = child
    job = {"code": code, "tests": tests, "command": command, "cwd": str(work), "bwrap": mode == "bwrap",
           "own_session": mode != "bwrap", "env": _child_env(INSIDE if mode == "bwrap" else str(work)), "limits": _limits(timeout_s, memory_mb),
           "reply_limit": REPLY_LIMIT, "verdict": str(root / "verdict.json"), "pids": str(root / "pids.json"),
           "stdout": str(root / "code.out"), "stderr": str(root / "code.err")}
    (root / "job.json").write_text(json.dumps(job), encoding="utf-8")
    timed_out = False
    with open(root / "tests.out", "wb") as out, open(root / "tests.err", "wb") as err:
        t0 = time.perf_counter()
        harness = subprocess.Popen([sys.executable, "-I", "-c", HARNESS, str(root / "job.json")], cwd=root,
                                   env=_child_env(str(root)), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err, start_new_session=True, close_fds=True)
        timed_out = not _wait(harness, timeout_s)
        _kill_group(harness.pid)
        harness.wait()
        _end_child(root / "pids.json")
        duration_ms = (time.perf_counter() - t0) * 1000
    try:
        verdict = json.loads((root / "verdict.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        verdict = {}
    if timed_out:
        status, note = "timeout", "killed: the wall-clock time limit ran out"
    elif verdict.get("status") in ("passed", "failed", "error", "timeout"):
        status, note = verdict["status"], verdict.get("note")
    else:
        status, note = "error", f"the test harness ended without a verdict (exit code {harness.returncode})"
    stdout = _join(root / "code.out", root / "tests.out", OUTPUT_LIMIT)
    note = f"[tryouts sandbox] {note}" if note else ""
    stderr = _join(root / "code.err", root / "tests.err", OUTPUT_LIMIT - len(note) - 1)
    if note:  # said after whatever the processes wrote, within the same 4000 characters
        stderr = (stderr + "\n" + note).lstrip("\n")
    return SandboxResult(status=status, passed=status == "passed", duration_ms=round(duration_ms, 3),
                         stdout=stdout, stderr=stderr, network="netns" if mode == "bwrap" else "audit-hook",
                         isolation=mode)


def _unlock(top: Path) -> None:
    """Give every folder under ``top`` (``top`` too) back its owner's rwx: the code may have made folders of
    its work directory unreadable (``chmod 000``), which stops a non-root user from removing their contents.
    Symbolic links are never followed."""
    stack = [str(top)]
    while stack:
        d = stack.pop()
        try:
            if os.path.islink(d):
                continue
            os.chmod(d, 0o700)
            with os.scandir(d) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue


def _remove_tree(top: Path) -> str:
    """Remove ``top`` and everything in it, restoring folders' permissions where that is what stops it.

    Returns "" once ``top`` is gone, else what is left and why (for the caller to report, never to ignore).
    """
    errors: list[str] = []

    def note(func, path, exc) -> None:
        exc = exc[1] if isinstance(exc, tuple) else exc  # onerror gives sys.exc_info(), onexc the exception
        errors.append(f"{path}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")

    handler = {"onexc": note} if sys.version_info >= (3, 12) else {"onerror": note}

    for attempt in range(2):
        if not os.path.lexists(top):
            return ""
        if attempt:
            _unlock(top)
        errors.clear()
        shutil.rmtree(top, **handler)
    if not os.path.lexists(top):
        return ""
    first = f" ({errors[0]})" if errors else ""
    return f"could not remove {top}{first}: the code's files there outlive the run"


def _join(first: Path, second: Path, limit: int) -> str:
    """The code's output followed by the tests' output, cut to ``limit`` characters in all."""
    a, b = _read_cut(first, limit), _read_cut(second, limit)
    if len(a) + len(b) <= limit:
        return a + b
    half = limit // 2
    if len(b) <= half:
        return _read_cut(first, limit - len(b)) + b
    if len(a) <= half:
        return a + _read_cut(second, limit - len(a))
    return _read_cut(first, half) + _read_cut(second, limit - half)
