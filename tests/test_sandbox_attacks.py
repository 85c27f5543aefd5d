"""Attacks from the sandbox audit (tryouts.scoring.sandbox): answers that pass by taking over names the tests
use, hostile return values, and code that fills the disk or leaves files that outlive the run.

Each test plants a wrong answer next to honest tests and checks that the verdict is a failure, and that the
honest answer still passes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import HOOK_OFF, require_bwrap
from tryouts.scoring import sandbox
from tryouts.scoring.sandbox import run_tests

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def needs_bwrap():
    require_bwrap()


# ---- F1: the code's names must not take over the builtins the tests use --------------------------------------

#: name -> (wrong code that also defines a builtin of that name, the tests, the right code)
SHADOWING = {
    "abs": ("def area(r):\n    return 0\ndef abs(x):\n    return 0\n",
            "assert abs(area(1.0) - 3.14159) < 1e-3\n",
            "def area(r):\n    return 3.14159 * r * r\n"),
    "sorted": ("def uniq(x):\n    return x\ndef sorted(x, *a, **k):\n    return [1, 2, 3]\n",
               "assert sorted(uniq([3, 1, 2, 1])) == [1, 2, 3]\n",
               "def uniq(x):\n    return list(set(x))\n"),
    "len": ("def f(x):\n    return 'nope'\ndef len(x):\n    return 3\n",
            "assert len(f('abc')) == 3\n",
            "def f(x):\n    return x\n"),
    "round": ("def mean(x):\n    return -1\ndef round(x, n=0):\n    return 2.0\n",
              "assert round(mean([1, 2, 3]), 2) == 2.0\n",
              "def mean(x):\n    return sum(x) / len(x)\n"),
    "set": ("def dedupe(x):\n    return [1, 3]\ndef set(x):\n    return {1, 2}\n",
            "assert set(dedupe([1, 1, 2])) == {1, 2}\n",
            "def dedupe(x):\n    return list(dict.fromkeys(x))\n"),
    "all": ("def ok(x):\n    return False\nall = lambda xs: True\n",
            "assert all(ok(x) for x in range(3))\n",
            "def ok(x):\n    return True\n"),
    "isinstance": ("def f():\n    return 'x'\ndef isinstance(a, b):\n    return True\n",
                   "assert isinstance(f(), int)\n",
                   "def f():\n    return 1\n"),
    "sum": ("def f():\n    return [1]\ndef sum(x):\n    return 6\n",
            "assert sum(f()) == 6\n",
            "def f():\n    return [1, 2, 3]\n"),
    # HumanEval/2 as eval-task code runs it
    "abs (check(candidate))": (
        "def truncate_number(number):\n    return 0.5\ndef abs(x):\n    return 0\n",
        "def check(candidate):\n    assert candidate(3.5) == 0.5\n    assert abs(candidate(1.33) - 0.33) < 1e-6\n"
        "\ncheck(truncate_number)\n",
        "def truncate_number(number):\n    return number % 1.0\n"),
}


@pytest.mark.parametrize("name", sorted(SHADOWING))
def test_code_cannot_shadow_a_builtin_the_tests_use(name):
    wrong, tests, right = SHADOWING[name]
    r = run_tests(wrong, tests)
    assert r.status == "failed" and r.passed is False, (r.status, r.stderr)
    assert run_tests(right, tests).passed
    # the right answer still passes when it also defines (for itself) a function named like the builtin
    shadow = "\n".join(wrong.split("\n")[2:])
    assert run_tests(right + shadow, tests).passed


def test_star_import_of_the_solution_does_not_bring_shadowed_builtins():
    wrong, tests, _ = SHADOWING["len"]
    r = run_tests(wrong, "from solution import *\n" + tests)
    assert r.status == "failed", r.stderr
    assert run_tests(wrong, "import solution\nassert solution.len('x') == 3\n").passed  # named explicitly


def test_a_patched_module_the_tests_take_from_the_code_is_the_real_one():
    # MBPP-style tests that use `math` without importing it get the code's top-level `math`
    wrong = ("import math\nmath.isclose = lambda *a, **k: True\n"
             "def volume(r):\n    return 0\n")
    tests = "assert math.isclose(volume(1), 4.18879, rel_tol=1e-3)\n"
    r = run_tests(wrong, tests)
    assert r.status == "failed", r.stderr
    right = "import math\ndef volume(r):\n    return 4 / 3 * math.pi * r ** 3\n"
    assert run_tests(right, tests).passed


HOSTILE_VALUES = {
    "always equal": "class A:\n    def __eq__(self, o):\n        return True\n    __hash__ = object.__hash__\n"
                    "def f():\n    return A()\n",
    "always equal in a list": "class A:\n    def __eq__(self, o):\n        return True\n"
                              "    __hash__ = object.__hash__\ndef f():\n    return [A(), A()]\n",
    "int subclass": "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
                    "def f():\n    return I(0)\n",
    "str subclass": "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n"
                    "def f():\n    return S('x')\n",
    "list subclass": "class L(list):\n    def __eq__(self, o):\n        return True\n"
                     "def f():\n    return L()\n",
    "dict with an always-equal key": "class A:\n    def __eq__(self, o):\n        return True\n"
                                     "    def __hash__(self):\n        return hash(7)\n"
                                     "def f():\n    return {A(): 8}\n",
}


@pytest.mark.parametrize("attack", sorted(HOSTILE_VALUES))
@pytest.mark.parametrize("tests", ["assert f() == [7, 8]\n", "assert f() == {7: 8}\n", "assert f() == 7\n",
                                   "assert [7, 8] == f()\n", "assert f() in ([7, 8], {7: 8}, 7)\n"])
def test_a_hostile_return_value_cannot_make_a_comparison_true(attack, tests):
    r = run_tests(HOSTILE_VALUES[attack], tests)
    assert r.passed is False and r.status == "failed", r.stderr


# ---- F3: disk use, and files that outlive the run ------------------------------------------------------------

CHMOD_000 = """
import os
for top in ('/sandbox', '/tmp', os.getcwd()):
    d = os.path.join(top, 'keep', 'inner')
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'blob'), 'wb') as f:
            f.write(b'x' * 1000)
        os.chmod(d, 0)
        os.chmod(os.path.join(top, 'keep'), 0)
    except OSError:
        pass
def add(a, b):
    return a + b
"""


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """tempfile's folder for run_tests: only this test's work folders are there."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.mark.parametrize("unsafe", [False, True])
def test_chmod_000_folders_do_not_outlive_the_run(own_tmp, monkeypatch, unsafe):
    if unsafe:
        monkeypatch.setattr(sandbox, "_cached_probe", lambda: (None, "forced by the test"))
    r = run_tests(CHMOD_000, "assert add(2, 3) == 5\n", unsafe=unsafe)
    assert r.passed, r.stderr
    assert list(own_tmp.iterdir()) == []


def test_remove_tree_restores_permissions(tmp_path):
    top = tmp_path / "work"
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "b" / "c" / "f").write_bytes(b"x")
    (top / "a" / "b" / "link").symlink_to(tmp_path)  # followed by nothing
    for d in (top / "a" / "b" / "c", top / "a" / "b", top / "a"):
        d.chmod(0)
    assert sandbox._remove_tree(top) == ""
    assert not top.exists() and tmp_path.exists()


def test_a_failed_cleanup_is_reported(own_tmp, monkeypatch, caplog):
    monkeypatch.setattr(sandbox.shutil, "rmtree", lambda *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="tryouts.scoring.sandbox"):
        r = run_tests("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n")
    assert r.passed
    assert "could not remove" in r.stderr
    assert any("could not remove" in rec.getMessage() for rec in caplog.records)


NONROOT = r"""
import json, os, shutil, sys, tempfile
tempfile.tempdir = sys.argv[1]
from tryouts.scoring import sandbox
code = sys.argv[2]
out = {}
r = sandbox.run_tests(code, "assert add(2, 3) == 5\n", timeout_s=30)
out["bwrap"] = [r.status, os.listdir(sys.argv[1])]
sizes = sandbox._bwrap_sizes
sandbox._bwrap_sizes = lambda bwrap: False  # an older bubblewrap: /sandbox is a host folder
r = sandbox.run_tests(code, "assert add(2, 3) == 5\n", timeout_s=30)
out["bwrap without --size"] = [r.status, os.listdir(sys.argv[1])]
sandbox._bwrap_sizes = sizes
sandbox._cached_probe = lambda: (None, "forced")
r = sandbox.run_tests(code, "assert add(2, 3) == 5\n", timeout_s=30, unsafe=True)
out["unsafe"] = [r.status, os.listdir(sys.argv[1])]
top = os.path.join(sys.argv[1], "direct")
os.makedirs(top + "/a/b")
open(top + "/a/b/f", "w").close()
os.chmod(top + "/a/b", 0)
os.chmod(top + "/a", 0)
remove = getattr(sandbox, "_remove_tree", None) or (lambda p: shutil.rmtree(p, ignore_errors=True) or "")
out["direct"] = [remove(top), os.listdir(sys.argv[1])]
print(json.dumps(out))
"""


def test_chmod_000_folders_do_not_outlive_the_run_as_a_normal_user():
    """Root removes anything; as a normal user, a folder the code made unreadable used to stay behind."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip("no system Python that another user can run")
    uid = 65534
    outer = Path(tempfile.mkdtemp(prefix="tryouts-test-nobody-", dir="/tmp"))  # pytest's tmp_path is 0700
    outer.chmod(0o755)
    work = outer / "tmp"
    work.mkdir()
    os.chown(work, uid, uid)
    src = outer / "src"  # a copy another user can read: a fresh clone may sit under a 0700 folder
    shutil.copytree(Path(SRC) / "tryouts", src / "tryouts", ignore=shutil.ignore_patterns("__pycache__"))
    for d, _, files in os.walk(src):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    try:
        _run_as(python, uid, work, src)
    finally:
        for d, _, _ in os.walk(outer):
            os.chmod(d, 0o700)  # root
        shutil.rmtree(outer)


def _run_as(python: str, uid: int, work: Path, src: Path) -> None:
    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "PYTHONPATH": str(src), "LANG": "C.UTF-8"}
    done = subprocess.run([python, "-c", NONROOT, str(work), CHMOD_000], env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=drop)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["bwrap"] == ["passed", []], out
    assert out["bwrap without --size"] == ["passed", []], out
    assert out["unsafe"] == ["passed", []], out
    assert out["direct"] == ["", []], out


FILL = """
import errno, os
written = {}
for top in ('/sandbox', '/tmp'):
    n = 0
    try:
        for i in range(4):
            with open(os.path.join(top, f'blob{i}'), 'wb') as f:
                for _ in range(40):
                    f.write(b'x' * (1024 * 1024))
                    f.flush()
                    n += 1024 * 1024
    except OSError as e:
        assert e.errno in (errno.ENOSPC, errno.EFBIG), e
    written[top] = n
print('written', written)
def add(a, b):
    return a + b
"""


def test_the_code_cannot_write_more_than_the_space_limit():
    if not sandbox._bwrap_sizes(sandbox._cached_probe()[0]):
        pytest.skip("this bubblewrap has no --size (0.10 has it): /sandbox and /tmp are not bounded")
    r = run_tests(FILL, f"import solution\nassert max(solution.written.values()) <= {sandbox.SPACE_LIMIT_BYTES}\n"
                        "assert add(2, 3) == 5\n", timeout_s=30)
    assert r.passed, (r.stdout, r.stderr)


# ---- loopback: up inside the sandbox's own network namespace -------------------------------------------------

def test_loopback_is_the_sandboxes_own():
    code = HOOK_OFF + """
import socket
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(1)
socket.create_connection(s.getsockname(), timeout=2).close()
print('self-connect ok')
def add(a, b):
    return a + b
"""
    r = run_tests(code, "assert add(2, 3) == 5\n")
    assert r.passed and "self-connect ok" in r.stdout, r.stderr


def test_module_docstring_no_longer_says_loopback_is_down():
    assert "down loopback" not in sandbox.__doc__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_an_entry_point_named_like_a_builtin_is_checked_as_the_codes():
    """eval-task code calls check(solution.max) for an entry point named like a builtin: the right answer passes,
    and a wrong one fails (a bare `max` in the tests is always the builtin)."""
    from tryouts.tasks.data import TaskCase
    from tryouts.tasks.evaluate import _tests_for

    case = TaskCase(index=0, id="t", line=1, input="", extra={"entry_point": "max"},
                    gold="def check(candidate):\n    assert candidate([1, 5, 2]) == 5\n")
    tests = _tests_for(case)
    assert "check(solution.max)" in tests
    assert run_tests("def max(xs):\n    best = xs[0]\n    for x in xs:\n        best = x if x > best else best\n"
                     "    return best\n", tests).passed
    assert run_tests("def max(xs):\n    return xs[0]\n", tests).passed is False
    plain = TaskCase(index=0, id="t", line=1, input="", extra={"entry_point": "f"}, gold="def check(candidate):\n    pass\n")
    assert _tests_for(plain).endswith("check(f)\n")
