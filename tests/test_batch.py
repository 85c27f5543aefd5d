"""Batch mode end to end: suites sent as OpenAI and Anthropic batch jobs to the replay server, stopped and resumed,
expired and failed items sent again, hostile results, batch prices checked by hand, and judge passes in batches."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from tryouts.pricing import BATCH_RATES, PriceOverride, price
from tryouts.types import Usage

AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


# ---- prices, by hand ---------------------------------------------------------------------------------------


def test_batch_prices_by_hand():
    u = Usage(input_tokens=1234, output_tokens=567)
    # gpt-4o-mini: $0.15 / $0.60 per million tokens; genai-prices has its batch price: $0.075 / $0.30
    std, bat = price("openai", "gpt-4o-mini", u, AT), price("openai", "gpt-4o-mini", u, AT, batch=True)
    assert std.total == Decimal("0.0005253")  # 1234 * 0.15e-6 + 567 * 0.60e-6
    assert bat.total == Decimal("0.00026265") and bat.source == "genai-prices (batch)"
    # claude-3-5-haiku: $0.80 / $4; genai-prices has no batch price: Anthropic's documented 50 % applies
    std, bat = (price("anthropic", "claude-3-5-haiku-latest", u, AT, batch=b) for b in (False, True))
    assert std.total == Decimal("0.0032552")  # 1234 * 0.8e-6 + 567 * 4e-6
    assert bat.total == Decimal("0.0016276") and bat.source == "genai-prices x catalog batch rate"
    assert BATCH_RATES["anthropic"][0] == Decimal("0.5") and "docs.anthropic.com" in BATCH_RATES["anthropic"][1]
    # an override is a standard price: the batch rate applies to it; a provider with no known batch rate: unknown
    o = PriceOverride(input=Decimal(2), output=Decimal(8))
    assert price("openai", "x", u, AT, override=o, batch=True).total == Decimal("0.0035020")  # (2468 + 4536)e-6 / 2
    assert price("mistral", "no-such-model", u, AT, batch=True).total is None


def test_anthropic_results_url_never_leaves_the_providers_host():
    from tryouts.providers.anthropic import AnthropicProvider
    from tryouts.providers.batch import AnthropicBatch, BatchJob
    from tryouts.types import ModelSpec

    p = AnthropicProvider(ModelSpec(ref="anthropic:m", provider="anthropic", model="m", options={"base_url": "http://127.0.0.1:9/x"}))
    api = AnthropicBatch(p, {"x-api-key": "k"})
    ours = "http://127.0.0.1:9/x/v1/messages/batches/msgbatch_1/results"
    for given in ("http://evil.example:9/r", "http://127.0.0.1:10/r", "https://127.0.0.1:9/r", "file:///etc/passwd",
                  None, 5):
        assert api.results_url(BatchJob(id="msgbatch_1", status="ended", info={"results_url": given})) == ours
    same = "http://127.0.0.1:9/elsewhere/results"
    assert api.results_url(BatchJob(id="msgbatch_1", status="ended", info={"results_url": same})) == same
    assert "%2F" in api.results_url(BatchJob(id="../../admin", status="ended"))  # an id is a path segment, encoded


# ---- runs against the replay server ----------------------------------------------------------------------


def _env(replay_server):
    root = replay_server.removesuffix("/v1")
    return {**os.environ, "OPENAI_BASE_URL": replay_server, "OPENAI_API_KEY": "sk-batch-test",
            "ANTHROPIC_BASE_URL": f"{root}/anthropic", "ANTHROPIC_API_KEY": "ak-batch-test"}


def _suite(tmp_path, models: str, *, cases=3, extra="batch: true\n", poll="0.05"):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"models:\n{models}prompts:\n  - \"Q{{{{n}}}}\"\ncases:\n"
                     + "".join(f"  - vars: {{n: {i}}}\n" for i in range(cases)) + f"{extra}batch_poll_s: {poll}\n")
    return suite


def _run(suite, db, env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _rows(db, where="1=1"):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM results WHERE {where} ORDER BY model_index, case_index")]
    finally:
        con.close()


def _batches(replay_server) -> list[dict]:
    return httpx.get(f"{replay_server}/batches", params={"limit": 100},
                     headers={"Authorization": "Bearer x"}).json()["data"]


def test_a_suite_in_batches_beside_a_streamed_model(replay_server, tmp_path):
    env = _env(replay_server)
    models = (
        '  - model: "openai:tokens=5;prompt_tokens=20;batch_polls=2"\n    label: gpt\n'
        '    options: {price: "1.0,2.0"}\n'
        '  - model: "anthropic:tokens=7;prompt_tokens=30"\n    label: claude\n'
        f'  - model: "openai-compat:{replay_server}#tokens=3"\n    label: streamed\n')
    suite = _suite(tmp_path, models)
    db = tmp_path / "r.db"
    dry = _run(suite, db, env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    text = " ".join(dry.stdout.split())
    assert "Streamed USD" in text and "Batched USD" in text and "gpt (batch)" in text and "≤ 24 h (batch)" in text
    assert "no batch API" in text  # the streamed model's provider has none
    p = _run(suite, db, env)
    assert p.returncode == 0, p.stdout + p.stderr
    out = " ".join(p.stdout.split())
    assert "sent to the OpenAI Batch API" in out and "sent to the Anthropic Message Batches" in out
    assert out.count("n/a (batch)") >= 8  # two models' timing columns
    rows = _rows(db)
    assert len(rows) == 9 and all(r["ok"] for r in rows)
    batched = [r for r in rows if r["model_index"] < 2]
    assert all(r["batch"] == 1 and r["ttft_ms"] is None and r["e2e_ms"] is None and r["timing_valid"] is None
               for r in batched)
    gpt = [r for r in rows if r["model_index"] == 0]
    assert [r["text"] for r in gpt] == [" w0 w1 w2 w3 w4"] * 3 and {r["output_tokens"] for r in gpt} == {5}
    # (20 in x $1 + 5 out x $2) per million, halved
    assert {(r["cost_total"], r["cost_source"]) for r in gpt} == {("0.000015", "override x catalog batch rate")}
    assert all(r["batch"] == 0 and r["ttft_ms"] is not None for r in rows if r["model_index"] == 2)
    con = sqlite3.connect(db)
    jobs = con.execute("SELECT purpose, model_index, collected, round FROM batch_jobs ORDER BY model_index").fetchall()
    assert jobs == [("cells", 0, 1, 1), ("cells", 1, 1, 1)]


def test_stop_in_the_middle_of_a_job_then_resume_collects_it(replay_server, tmp_path):
    env = _env(replay_server)
    models = '  - model: "openai:tokens=4;batch_polls=40;bucket=resume"\n    label: gpt\n'
    suite = _suite(tmp_path, models, cases=4, poll="0.1")
    db = tmp_path / "r.db"
    before = len(_batches(replay_server))
    proc = subprocess.Popen([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until the job is recorded and has been polled into progress
            assert proc.poll() is None and time.monotonic() < deadline
            if db.exists():
                try:
                    con = sqlite3.connect(db)
                    row = con.execute("SELECT status FROM batch_jobs").fetchone()
                    con.close()
                except sqlite3.OperationalError:
                    row = None
                if row and row[0] == "in_progress":
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "Resume with: tryouts run --resume" in " ".join(out.split())
    assert _rows(db) == []  # nothing answered yet: no row, the job still runs at the provider
    run_id = sqlite3.connect(db).execute("SELECT id FROM runs").fetchone()[0]
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", "--resume", run_id, "--db", str(db), "--no-cache"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "sent by an earlier attempt of this run" in " ".join(p.stdout.split())
    rows = _rows(db)
    assert len(rows) == 4 and all(r["ok"] and r["batch"] for r in rows)
    assert len(_batches(replay_server)) == before + 1  # collected, never sent twice
    assert sqlite3.connect(db).execute("SELECT collected FROM batch_jobs").fetchall() == [(1,)]


def test_expired_and_failed_items_are_sent_again_and_hostile_results_are_survived(replay_server, tmp_path):
    env = _env(replay_server)
    models = (
        '  - model: "openai:tokens=2;expire=1;bucket=exp"\n    label: expires\n'
        '  - model: "openai:tokens=2;status=500;fail_first=1;bucket=f500"\n    label: fails-once\n'
        '  - model: "openai:tokens=2;status=400;bucket=f400"\n    label: bad-request\n'
        '  - model: "anthropic:tokens=2;expire=1;batch_junk=1"\n    label: claude-junk\n')
    suite = _suite(tmp_path, models, cases=2)
    db = tmp_path / "r.db"
    p = _run(suite, db, env)
    assert p.returncode == 0, p.stdout + p.stderr
    out = " ".join(p.stdout.split())
    rows = _rows(db)
    by = {m: [r for r in rows if r["model_index"] == m] for m in range(4)}
    # expire and fail_first count per exact script: the first of a model's two cells expires (or fails once with
    # a retryable 500), is sent again in a new job, and is answered; the second is answered at once
    for m in (0, 1, 3):
        assert all(r["ok"] for r in by[m]) and sorted(r["attempts"] for r in by[m]) == [1, 2], by[m]
    assert all(not r["ok"] and r["attempts"] == 1 and "400" in r["error"] for r in by[2])  # not retryable
    assert [r["text"] for r in by[3]] == [" w0 w1"] * 2
    assert "result lines skipped" in out  # the junk lines were counted, not believed
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM batch_jobs WHERE round = 2").fetchone()[0] == 3


def test_max_retries_zero_never_resends(replay_server, tmp_path):
    env = _env(replay_server)
    suite = _suite(tmp_path, '  - model: "openai:tokens=2;expire=5;bucket=noresend"\n', cases=1,
                   extra="batch: true\nretries: {max: 0}\n")
    db = tmp_path / "r.db"
    p = _run(suite, db, env)
    assert p.returncode == 2, p.stderr  # its one cell failed: every cell failed
    [row] = _rows(db)
    assert not row["ok"] and "expired" in row["error"] and row["attempts"] == 1
    assert "Not sent again: it was sent 1 time(s), and retries.max is 0." in row["error"]


def test_judge_pass_in_batches(replay_server, tmp_path):
    env = _env(replay_server)
    suite = _suite(tmp_path, f'  - model: "openai-compat:{replay_server}#tokens=3"\n', cases=2, extra="")
    db = tmp_path / "r.db"
    assert _run(suite, db, env).returncode == 0
    judge = "openai:text=%7B%22score%22%3A%204%2C%20%22rationale%22%3A%20%22fine%22%7D;prompt_tokens=90"
    p = subprocess.run([sys.executable, "-m", "tryouts", "score", "latest", "--judge", judge, "--rubric",
                        "Is it right?", "--batch", "--db", str(db)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*), sum(ok), min(score) FROM judgments").fetchone() == (2, 2, 4)
    assert con.execute("SELECT purpose, collected FROM batch_jobs").fetchall() == [("judge", 1)]


def test_batch_refuses_ray(replay_server, tmp_path):
    suite = _suite(tmp_path, '  - model: "openai:tokens=2"\n', cases=1)
    p = _run(suite, tmp_path / "r.db", _env(replay_server), "--executor", "ray")
    assert p.returncode == 1 and "Batch jobs are sent and polled from this machine" in " ".join(p.stderr.split())


def test_every_batch_answer_is_read_bounded(replay_server, monkeypatch):
    import asyncio

    from tryouts import errors
    from tryouts.providers import batch as batch_mod
    from tryouts.providers.batch import OpenAIBatch
    from tryouts.providers.openai_compat import OpenAICompatProvider
    from tryouts.types import Message, ModelSpec, Request

    monkeypatch.setenv("OPENAI_API_KEY", "sk-bounded-test")
    spec = ModelSpec(ref="openai:tokens=2", provider="openai", model="tokens=2", options={"base_url": replay_server})
    api = OpenAIBatch(OpenAICompatProvider(spec, preset="openai"), {"Authorization": "Bearer x"})

    async def go():
        try:
            job = await api.submit([api.line("c1", Request(messages=[Message(role="user", content="hi")]))], "r")
            monkeypatch.setattr(batch_mod, "MAX_RESULTS_BYTES", 100)  # a status answer is bigger than this
            with pytest.raises(errors.BadResponseError, match="over 100 bytes; stopped reading it"):
                await api.poll(job.id)
            with pytest.raises(errors.ProviderError):  # an error status: its body read capped, the provider's error
                await api.poll("batch_no_such_job")
        finally:
            await api.aclose()

    asyncio.run(go())
