"""CI gates: exit codes from failed cells and assertions, and each model's failures with their first reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tryouts.usecases.gates import EXIT_ASSERTIONS, EXIT_FAILED_CELLS, failures, gate, parse_rate


def _row(m, ok=True, passed=None, error=None, kind=None, case="c1"):
    scores = {"assert": {"passed": passed, "results": [
        {"type": "icontains", "passed": passed, "reason": "does not contain 'paris'" if not passed else ""}]}} \
        if passed is not None else None
    return {"model_index": m, "model": f"m{m}", "ok": ok, "error": error, "error_kind": kind, "scores": scores,
            "case": {"case_id": case}, "case_index": 0, "repeat_index": 0}


def test_gate_codes_and_reasons():
    rows = [_row(0, passed=True), _row(0, passed=False, case="c2"), _row(1, ok=False, error="HTTP 500: boom",
                                                                          kind="server")]
    per = failures(rows, {0: "gpt", 1: "claude"})
    assert (per[0].checked, per[0].passed, per[0].first_check) == (2, 1, "case c2: icontains failed (does not "
                                                                         "contain 'paris')")
    assert (per[1].failed, per[1].kinds, per[1].first_error) == (1, {"server": 1}, "case c1: HTTP 500: boom")
    assert gate(per) == (0, [])
    code, reasons = gate(per, fail_on_error=True)
    assert code == EXIT_FAILED_CELLS and reasons == ["claude: 1 of 1 cells failed (--fail-on-error)"]
    code, reasons = gate(per, fail_on_assert=True)
    assert code == EXIT_ASSERTIONS and "gpt: 1 of 2 cells failed their assertions" in reasons[0]
    assert gate(per, min_pass_rate=0.5)[0] == 0 and gate(per, min_pass_rate=0.6)[0] == EXIT_ASSERTIONS
    everything = failures([_row(0, ok=False, error="refused", kind="auth")])
    code, reasons = gate(everything)  # nothing to compare: always a failure
    assert code == EXIT_FAILED_CELLS and "every cell failed (1); the first reason: case c1: refused" in reasons[0]
    code, reasons = gate(failures([_row(0)]), fail_on_assert=True)
    assert code == EXIT_ASSERTIONS and "no cell has assertions" in reasons[0]


@pytest.mark.parametrize(("text", "rate"), [("0.9", 0.9), ("90%", 0.9), ("100%", 1.0), ("0", 0.0), (None, None)])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["1.5", "-1", "ninety", "120%"])
def test_parse_rate_refuses(text):
    with pytest.raises(ValueError, match="min-pass-rate"):
        parse_rate(text)


def _suite(tmp_path, base, models):
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "models:\n" + "".join(f'  - model: "openai-compat:{base}#{m}"\n    label: {label}\n' for label, m in models)
        + "prompts:\n  - \"Capital of {{country}}?\"\n"
        "cases:\n  - {id: fr, vars: {country: France}, assert: [{type: icontains, value: paris}]}\n"
        "  - {id: it, vars: {country: Italy}, assert: [{type: icontains, value: rome}]}\n"
        "retries: {max: 0}\n")
    return suite


def _run(suite, db, *args):
    return subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache",
                           "--no-progress", *args], capture_output=True, text=True, timeout=120)


def test_run_prints_failures_and_gates_on_assertions(replay_server, tmp_path):
    suite = _suite(tmp_path, replay_server, [("good", "text=Paris%20or%20Rome"), ("half", "text=Paris"),
                                             ("broken", "status=400")])
    p = _run(suite, tmp_path / "a.db")
    out = " ".join(p.stdout.split())
    assert p.returncode == 0, p.stdout + p.stderr  # no gate asked for: a completed run
    assert "Failures" in out
    assert "broken: 2 of 2 cells failed (bad_request ×2). First: case fr: " in out
    assert "half: 1 of 2 cells failed their assertions. First: case it: icontains failed" in out
    assert "good:" not in out.split("Failures", 1)[1]
    p = _run(suite, tmp_path / "b.db", "--fail-on-assert")
    assert p.returncode == 4
    assert "Exit 4: half: 1 of 2 cells failed their assertions (--fail-on-assert)" in " ".join(p.stderr.split())
    p = _run(suite, tmp_path / "c.db", "--min-pass-rate", "50%")  # half is at 50 %; broken's failed cells fail too
    assert p.returncode == 4 and p.stderr.split() == "Exit 4: broken: pass rate 0.0% is under --min-pass-rate 50.0%".split()
    p = _run(suite, tmp_path / "d.db", "--min-pass-rate", "0.75", "--fail-on-error")
    assert p.returncode == 2  # --fail-on-error's code comes first; both reasons are printed
    err = " ".join(p.stderr.split())
    assert "broken: 2 of 2 cells failed (--fail-on-error)" in err and "pass rate 50.0% is under" in err


def test_a_run_where_every_cell_failed_exits_2_saying_why(replay_server, tmp_path):
    suite = _suite(tmp_path, replay_server, [("down", "status=401")])
    p = _run(suite, tmp_path / "r.db")
    assert p.returncode == 2
    assert "every cell failed (2); the first reason: case fr:" in " ".join(p.stderr.split())
    p = _run(suite, tmp_path / "r.db", "--min-pass-rate", "two")
    assert p.returncode == 1 and "give a share such as 0.9" in p.stderr


def test_compare_gates_on_assertions(replay_server, tmp_path):
    base = ["compare", "Capital of France?", "-m", f"openai-compat:{replay_server}#text=Paris", "-m",
            f"openai-compat:{replay_server}#text=Lyon", "-a", "icontains:paris", "--db", str(tmp_path / "r.db"),
            "--no-live"]

    def go(*args):
        return subprocess.run([sys.executable, "-m", "tryouts", *base, *args], capture_output=True, text=True,
                              timeout=120)

    assert go().returncode == 0  # as before: every model answered
    p = go("--fail-on-assert")
    assert p.returncode == 4 and "#text=Lyon: 1 of 1 cells failed their assertions" in " ".join(p.stdout.split())
    assert go("--min-pass-rate", "50%").returncode == 0
    p = go("--min-pass-rate", "51%")
    assert p.returncode == 4 and "all models: pass rate 50.0% is under --min-pass-rate 51.0%" in " ".join(
        p.stdout.split())
