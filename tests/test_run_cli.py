"""`tryouts run` end to end, in subprocesses, against the scripted replay server."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest


def tryouts(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def suite(tmp_path, body, name="suite.yaml"):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "run.db")


def count_rows(db):
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute("SELECT count(*), count(DISTINCT model_index || '/' || case_index || '/' || repeat_index) "
                               "FROM results").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return (0, 0)


def test_small_suite_runs_and_stores_cases(replay_server, tmp_path, db):
    s = suite(tmp_path, f"""
models:
  - "openai-compat:{replay_server}#tokens=5"
  - model: "openai-compat:{replay_server}#tokens=3;per_chunk=3"
    label: chunky
prompts:
  - "Answer: {{{{question}}}}"
cases:
  - vars: {{question: one}}
    expected: "1"
  - vars: {{question: two}}
  - vars: {{question: three}}
""")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "Summary" in p.stdout and "chunky" in p.stdout
    data = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)
    results = data["results"]
    assert len(results) == 6 and all(r["ok"] for r in results)
    assert data["run"]["kind"] == "suite" and data["run"]["status"] == "done"
    first = results[0]
    assert first["case"]["vars"] == {"question": "one"} and first["case"]["expected"] == "1"
    assert first["request"]["messages"][-1]["content"] == "Answer: one"


def test_dry_run_estimates_cost_and_time(replay_server, tmp_path, db):
    s = suite(tmp_path, f"""
models:
  - openai:gpt-4o-mini
  - "openai-compat:{replay_server}#tokens=4"
prompts: ["Say hi to {{{{name}}}}"]
cases: [{{vars: {{name: Ada}}}}, {{vars: {{name: Alan}}}}]
repeats: 2
defaults: {{params: {{max_tokens: 100}}}}
""")
    p = tryouts("run", s, "--dry-run", "--db", db, "-f", "json")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["cells"] == 8
    api, compat = plan["models"]
    assert api["cells"] == 4 and api["output_tokens"] == 400 and api["output_basis"].startswith("max_tokens")
    assert api["cost_usd"] is not None and float(api["cost_usd"]) > 0  # genai-prices knows gpt-4o-mini
    assert compat["cost_usd"] is None and compat["seconds"] is None  # no price, no history: unknown
    assert count_rows(db) == (0, 0)  # nothing was sent or stored
    # after a real run the estimate uses this model's history
    tryouts("run", s, "--db", db)
    plan = json.loads(tryouts("run", s, "--dry-run", "--db", db, "-f", "json").stdout)
    assert plan["models"][1]["seconds"] is not None and plan["models"][1]["output_basis"].startswith("history")
    table = tryouts("run", s, "--dry-run", "--db", db)
    assert "Plan: 8 cells" in table.stdout and "Estimated cost" in table.stdout


def test_fail_on_error_exit_codes(replay_server, tmp_path, db):
    s = suite(tmp_path, f"""
models: ["openai-compat:{replay_server}#status=400", "openai-compat:{replay_server}#tokens=2"]
prompts: [hello]
retries: {{max: 0}}
""")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr  # completed; the failure is recorded and shown
    assert "1 failed" in p.stdout
    assert tryouts("run", s, "--db", db, "--fail-on-error").returncode == 2


def test_bad_suite_is_refused_with_file_and_line(tmp_path, db):
    s = suite(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: [hi]\nrepeat: 3\n")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 1
    assert "suite.yaml:3" in p.stderr and "repeat" in p.stderr
    assert count_rows(db) == (0, 0)


def slow_suite(tmp_path, replay_server, n=30):
    return suite(tmp_path, f"""
models: ["openai-compat:{replay_server}#ttft_ms=60;tokens=3"]
prompts: ["case {{{{i}}}}"]
cases: [{", ".join(f"{{vars: {{i: {i}}}}}" for i in range(n))}]
concurrency: {{openai-compat: 2}}
""")


def start_and_wait(args, db, at_least):
    proc = subprocess.Popen([sys.executable, "-m", "tryouts", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while count_rows(db)[0] < at_least and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


def test_resume_after_kill_9_gives_exactly_one_row_per_cell(replay_server, tmp_path, db):
    s = slow_suite(tmp_path, replay_server)
    proc = start_and_wait(["run", s, "--db", db, "--no-cache"], db, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = count_rows(db)[0]
    assert 6 <= before < 30
    run_id = json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)[0]["id"]
    p = tryouts("run", "--resume", run_id, "--db", db, "--no-cache")
    assert p.returncode == 0, p.stderr
    assert f"{30 - before} of 30 cells to run" in p.stdout
    assert count_rows(db) == (30, 30)
    assert json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)[0]["status"] == "done"


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(replay_server, tmp_path, db):
    s = slow_suite(tmp_path, replay_server)
    proc = start_and_wait(["run", s, "--db", db, "--no-cache"], db, 4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "Resume with: tryouts run --resume" in out + err
    run_id = json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)[0]["id"]
    assert json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)[0]["status"] == "interrupted"
    assert tryouts("run", "--resume", run_id, "--db", db, "--no-cache").returncode == 0
    assert count_rows(db) == (30, 30)


def test_resume_refuses_a_changed_suite(replay_server, tmp_path, db):
    s = slow_suite(tmp_path, replay_server, n=3)
    assert tryouts("run", s, "--db", db).returncode == 0
    run_id = json.loads(tryouts("runs", "--db", db, "-f", "json").stdout)[0]["id"]
    (tmp_path / "suite.yaml").write_text((tmp_path / "suite.yaml").read_text().replace("\"case ", "\"Case "))
    p = tryouts("run", "--resume", run_id, str(tmp_path / "suite.yaml"), "--db", db)  # the changed file, named
    assert p.returncode == 1 and "no longer describes" in p.stderr
    p = tryouts("run", "--resume", run_id, "--db", db)  # the suite stored with the run: as it ran
    assert p.returncode == 0 and "0 of 3 cells to run" in " ".join(p.stdout.split()), p.stdout + p.stderr


def test_api_keys_never_reach_store_exports_or_output(replay_server, tmp_path, db):
    key = "sk-planted-3f9a7c1e5b"
    env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": replay_server}
    s = suite(tmp_path, "models: [openai:gpt-4o-mini]\nprompts: [hello]\n")
    outputs = [tryouts("run", s, "--db", db, env=env), tryouts("show", "latest", "--db", db, "-f", "json", env=env)]
    assert json.loads(outputs[1].stdout)["results"][0]["ok"]
    for fmt in ("json", "jsonl", "csv", "html"):
        outputs.append(tryouts("export", "latest", "--format", fmt, "--output", str(tmp_path / f"x.{fmt}"),
                               "--db", db, env=env))
    text = "".join(p.stdout + p.stderr for p in outputs)
    files = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    assert key not in text and key.encode() not in files


@pytest.mark.slow
def test_offline_example_runs_as_documented(demo_models, db):
    """docs/suites.md and examples/offline.yaml: TRYOUTS_DEMO=$(tryouts demo --path) tryouts run examples/offline.yaml"""
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "offline.yaml"
    folder = tryouts("demo", "--path", env={"TRYOUTS_CACHE_DIR": str(demo_models.hf_dir.parent.parent.parent)})
    assert folder.returncode == 0 and folder.stdout.strip() == str(demo_models.hf_dir.parent)
    env = {"TRYOUTS_DEMO": folder.stdout.strip()}
    p = tryouts("run", str(example), "--db", db, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    assert "hf-tiny" in p.stdout and "gguf-tiny" in p.stdout
    results = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)["results"]
    assert len(results) == 2 * 3 * 2 and all(r["ok"] and r["output_tokens"] == 16 for r in results)


EXAMPLES = sorted(p for p in (__import__("pathlib").Path(__file__).parent.parent / "examples").glob("*.yaml")
                  if p.name not in ("offline.yaml", "scoring.yaml"))  # each has its own test


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_run_and_record_what_cannot_run_here(example, replay_server, db):
    """With OpenAI pointed at the replay server, OpenAI answers; models unavailable offline are recorded as failed."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": replay_server, "HF_HUB_OFFLINE": "1"}
    p = tryouts("run", str(example), "--db", db, env=env)
    assert p.returncode == 0, p.stderr + p.stdout
    results = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)["results"]
    assert results
    for r in results:
        if r["model"] == "openai:gpt-6-luna":
            assert r["ok"] and r["cost_usd"] is not None, r["error"]
        else:  # a Hub model that is not cached, a GGUF that is not there, a server that is not running
            assert not r["ok"] and r["error_kind"] in {"model_not_found", "connect"}, r["error"]


def test_assertions_and_expected_answers_are_scored(replay_server, tmp_path, db):
    s = suite(tmp_path, f"""
models: ["openai-compat:{replay_server}#tokens=3"]
prompts: ["{{{{q}}}}"]
cases:
  - vars: {{q: one}}
    expected: " w0 w1 w2"
    assert: [{{type: icontains, value: W1}}, {{type: length, max: 100}}]
  - vars: {{q: two}}
    expected: "something else"
    assert: [{{type: contains, value: zzz}}]
""")
    p = tryouts("run", s, "--db", db)
    assert p.returncode == 0, p.stderr
    assert "Pass rate" in p.stdout and "0.50" in p.stdout
    first, second = json.loads(tryouts("show", "latest", "--db", db, "-f", "json").stdout)["results"]
    assert first["scores"]["assert"]["passed"] and first["scores"]["reference"]["exact_match"] == 1.0
    assert not second["scores"]["assert"]["passed"] and second["scores"]["reference"]["token_f1"] == 0.0
    assert "bleu" in first["scores"]["reference"]
