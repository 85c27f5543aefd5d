"""OpenRouter's Batch API: the replay of it over httpx, the client (providers/batch_openrouter.py) against the
replay and against hostile results, and a suite run end to end through the CLI with ``openrouter:`` models in
batches beside a streamed one.

The replay server is the session's subprocess on 127.0.0.1 (fixture ``replay_server``); ``fail_first`` and
``expire`` count per exact script across the session, so each test makes its scripts unique (``uniq``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import subprocess
import sys
import uuid

import httpx
import pytest

from tryouts import errors
from tryouts.testing.batchjob import JUNK_TEXT_BYTES
from tryouts.testing.dialects.openrouter_batch import BATCH_ID
from tryouts.testing.replay import start_replay_server

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def uniq(script: str = "") -> str:
    """``script`` with a model name no other test uses (so that its counts start at zero)."""
    name = f"or-{uuid.uuid4().hex[:12]}"
    return f"{name};{script}" if script else name


def req(cid: str, **body) -> dict:
    return {"custom_id": cid, "body": {"messages": MSGS, **body}}


def batch_body(model: str, requests: list, **extra) -> dict:
    return {"endpoint": CHAT, "model": model, **extra, "requests": requests}


def create(client: httpx.Client, base: str, model: str, requests: list, **extra) -> dict:
    r = client.post(f"{base}/batches", json=batch_body(model, requests, **extra))
    assert r.status_code == 202, r.text
    return r.json()


def get(client: httpx.Client, base: str, bid: str) -> dict:
    r = client.get(f"{base}/batches/{bid}")
    assert r.status_code == 200, r.text
    return r.json()


def run_to_end(client: httpx.Client, base: str, bid: str) -> dict:
    for _ in range(50):
        b = get(client, base, bid)
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return b
    raise AssertionError(f"batch {bid} never ended")


# ------------------------------------------------------------------------------------------ the replay


def test_create_poll_and_inline_results_match_the_chat_route(replay_server, client):
    script = uniq("tokens=4;prompt_tokens=20;cached=5;reasoning=2")
    b = create(client, replay_server, script, [req("one"), req("two"), req("slow")])
    assert BATCH_ID.fullmatch(b["id"]) and b["object"] == "batch" and b["status"] == "validating"
    assert b["endpoint"] == CHAT and b["model"] == script and b["completion_window"] == "24h"
    assert b["results"] is None and b["usage"] is None and b["error"] is None and b["finalized_at"] is None
    assert b["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    assert b["expires_at"] == b["created_at"] + 86_400
    seen = [get(client, replay_server, b["id"]) for _ in range(3)]
    assert [x["status"] for x in seen] == ["in_progress", "finalizing", "completed"]
    assert all(x["results"] is None for x in seen[:2])  # results only once completed
    done = seen[-1]
    assert done["finalized_at"] and done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    rows = done["results"]
    assert [x["custom_id"] for x in rows] == ["one", "two", "slow"]
    direct = client.post(f"{replay_server}/chat/completions", json={"model": script, "messages": MSGS}).json()
    for row in rows:
        assert set(row) == {"id", "custom_id", "response", "error"} and row["error"] is None
        assert row["id"].startswith("batch_req_") and row["response"]["status_code"] == 200
        body = row["response"]["body"]
        assert body["object"] == "chat.completion" and body["choices"] == direct["choices"]
        assert body["usage"] == direct["usage"] and body["choices"][0]["message"]["content"] == " w0 w1 w2 w3"
    n_in, n_out = direct["usage"]["prompt_tokens"], direct["usage"]["completion_tokens"]
    assert done["usage"] == {"prompt_tokens": 3 * n_in, "completion_tokens": 3 * n_out,
                             "total_tokens": 3 * (n_in + n_out), "cost": None, "is_byok": False}
    assert get(client, replay_server, b["id"]) == done  # ended stays ended
    # the quickstart's path, relative to the replay's root, serves the same batch
    beta = client.get(f"{replay_server.removesuffix('/v1')}/beta/batches/{b['id']}").json()
    assert beta["id"] == b["id"] and beta["status"] == "completed"


def test_results_pages_with_cursors(replay_server, client):
    b = create(client, replay_server, uniq("tokens=1"), [req(f"p{i}") for i in range(5)])
    r = client.get(f"{replay_server}/batches/{b['id']}/results")
    assert r.status_code == 409 and "has not finished" in r.json()["error"]["message"]
    inline = run_to_end(client, replay_server, b["id"])["results"]
    got, cursor, pages = [], None, 0
    while True:
        page = client.get(f"{replay_server}/batches/{b['id']}/results",
                          params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert page["object"] == "list"
        got += page["data"]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        assert base64.urlsafe_b64decode(cursor + "==").decode().startswith(f"v1:{b['id']}:")
    assert pages == 3 and got == inline
    for bad in ("nope", base64.urlsafe_b64encode(b"v1:batch-other:0").decode()):
        r = client.get(f"{replay_server}/batches/{b['id']}/results", params={"cursor": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == 400


def test_batch_polls_settle_a_share_at_each_poll(replay_server, client):
    b = create(client, replay_server, uniq("batch_polls=3;usage=never"), [req(f"r{i}") for i in range(8)])
    seen = [get(client, replay_server, b["id"]) for _ in range(5)]
    assert [x["status"] for x in seen] == ["in_progress"] * 3 + ["finalizing", "completed"]
    assert [x["request_counts"]["completed"] for x in seen] == [2, 4, 6, 8, 8]  # 8*j//4 after poll j
    assert "usage" not in seen[-1]["results"][0]["response"]["body"]


def test_error_rows_and_fail_first(replay_server, client):
    flaky = uniq("status=429;fail_first=1")
    b = create(client, replay_server, flaky, [req("f1"), req("f2")])
    end = run_to_end(client, replay_server, b["id"])
    assert end["status"] == "completed" and end["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    first, second = end["results"]
    assert first["response"] is None and first["error"]["type"] == first["error"]["error_type"] == "rate_limit_exceeded"
    assert first["error"]["param"] is None and "Rate limit" in first["error"]["message"]
    assert second["error"] is None and second["response"]["status_code"] == 200  # fail_first is spent
    broken = run_to_end(client, replay_server, create(client, replay_server, uniq("status=500"), [req("x")])["id"])
    assert broken["results"][0]["error"]["type"] == "server" and broken["usage"]["completion_tokens"] == 0


def test_expire_ends_the_batch_without_results_then_a_resubmission_succeeds(replay_server, client):
    late = uniq("expire=1")
    b = create(client, replay_server, late, [req("late"), req("fine")])
    end = run_to_end(client, replay_server, b["id"])
    assert end["status"] == "expired" and end["results"] is None and end["error"] is None and end["finalized_at"]
    assert end["request_counts"] == {"total": 2, "completed": 1, "failed": 1}  # the first item expired
    r = client.get(f"{replay_server}/batches/{b['id']}/results")
    assert r.status_code == 200 and r.json()["data"] == [] and r.json()["has_more"] is False
    again = run_to_end(client, replay_server, create(client, replay_server, late, [req("late")])["id"])
    assert again["status"] == "completed" and again["results"][0]["response"]["status_code"] == 200


def test_cancel_and_delete(replay_server, client):
    b = create(client, replay_server, uniq("batch_polls=3"), [req(f"c{i}") for i in range(4)])
    r = client.delete(f"{replay_server}/batches/{b['id']}")
    assert r.status_code == 409  # still running
    assert get(client, replay_server, b["id"])["request_counts"]["completed"] == 1
    r = client.post(f"{replay_server}/batches/{b['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "in_progress"  # until the provider confirms
    end = get(client, replay_server, b["id"])
    assert end["status"] == "cancelled" and end["results"] is None
    assert end["request_counts"] == {"total": 4, "completed": 1, "failed": 3}
    r = client.post(f"{replay_server}/batches/{b['id']}/cancel")
    assert r.status_code == 409 and "already ended" in r.json()["error"]["message"]
    assert client.get(f"{replay_server}/batches/{b['id']}/cancel").status_code == 405
    r = client.delete(f"{replay_server}/batches/{b['id']}")
    assert r.status_code == 200 and r.json() == {"id": b["id"], "object": "batch", "deleted": True}
    assert client.get(f"{replay_server}/batches/{b['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"requests": [req("a")], "endpoint": CHAT, "model": "m"}, "before requests"),
        ({"endpoint": CHAT, "requests": [req("a")], "model": "m"}, "before requests"),
        ({"endpoint": "/v1/embeddings", "model": "m", "requests": [req("a")]}, "endpoint"),
        ({"endpoint": CHAT, "requests": [req("a")]}, "model"),
        ({"endpoint": CHAT, "model": "tokens=lots", "requests": [req("a")]}, "'tokens'"),
        ({"endpoint": CHAT, "model": "m", "completion_window": "48h", "requests": [req("a")]}, "24h"),
        ({"endpoint": CHAT, "model": "m", "requests": []}, "non-empty"),
        ({"endpoint": CHAT, "model": "m", "requests": [req(f"r{i}") for i in range(5001)]}, "at most 5000"),
        ({"endpoint": CHAT, "model": "m", "requests": [req("a", model="other")]}, "does not match"),
    ],
)
def test_refused_at_once(replay_server, client, body, needle):
    r = client.post(f"{replay_server}/batches", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 400 and needle in r.json()["error"]["message"]


def test_not_json_is_refused_at_the_beta_path(replay_server, client):
    r = client.post(f"{replay_server.removesuffix('/v1')}/beta/batches", content=b"{nope")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("requests", "needle"),
    [
        ([req("a"), req("a")], "requests[1].custom_id: duplicate"),
        ([req("a"), "b"], "requests[1]: each request must be an object"),
        ([{"body": {"messages": MSGS}}], "requests[0].custom_id"),
        ([{"custom_id": "a", "body": "hi"}], "requests[0].body"),
        ([req("a", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])],
         "text-only"),
        ([req("a", modalities=["text", "audio"])], "text-only"),
    ],
)
def test_failed_at_validation(replay_server, client, requests, needle):
    b = create(client, replay_server, uniq(), requests)
    assert b["status"] == "validating"  # a 202 says the batch was stored, not that it is valid
    failed = get(client, replay_server, b["id"])
    assert failed["status"] == "failed" and needle in failed["error"]["message"]
    assert failed["results"] is None and failed["finalized_at"]
    assert get(client, replay_server, b["id"])["status"] == "failed"


def test_routes_beside_openai_and_the_beta_list(replay_server, client):
    root = replay_server.removesuffix("/v1")
    first = create(client, root + "/beta", uniq(), [req("a")])
    second = create(client, replay_server, uniq(), [req("a")])
    page = client.get(f"{root}/beta/batches", params={"limit": 1}).json()
    assert page["object"] == "list" and [x["id"] for x in page["data"]] == [second["id"]] and page["has_more"]
    assert "results" not in page["data"][0] and page["data"][0]["status"] == "validating"  # no step
    nxt = client.get(f"{root}/beta/batches", params={"limit": 1, "after": second["id"]}).json()
    assert [x["id"] for x in nxt["data"]] == [first["id"]]
    assert all(x["id"].startswith("batch_") for x in client.get(f"{replay_server}/batches").json()["data"])  # OpenAI's
    r = client.post(f"{replay_server}/batches", json={"input_file_id": "file-nope", "endpoint": CHAT,
                                                       "completion_window": "24h"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "input_file_id"  # still OpenAI's create
    assert client.get(f"{root}/beta/batches/batch-1-nope").status_code == 404


def test_batch_junk_results_are_hostile(replay_server, client):
    b = create(client, replay_server, uniq("batch_junk=1"), [req("j1"), req("j2")])
    rows = run_to_end(client, replay_server, b["id"])["results"]
    assert len(rows) == 6
    assert rows[0]["custom_id"].startswith("replay-junk-unknown-") and rows[1]["custom_id"] == "j1"
    assert isinstance(rows[2], str) and rows[3]["custom_id"] == "j2" and rows[4]["custom_id"] == "j1"
    assert rows[5] == "x" * JUNK_TEXT_BYTES


def test_the_key_is_required(client):
    with start_replay_server(require_key="sk-or-123456") as base:
        root = base.removesuffix("/v1")
        body = batch_body(uniq(), [req("a")])
        for url in (f"{base}/batches", f"{root}/beta/batches"):
            assert client.post(url, json=body).status_code == 401
            assert client.post(url, json=body, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
            r = client.post(url, json=body, headers={"Authorization": "Bearer sk-or-123456"})
            assert r.status_code == 202 and r.json()["status"] == "validating"


# ------------------------------------------------------------------------------------------ the client


def _api(monkeypatch, base_url: str):
    from tryouts.providers.batch import batch_api
    from tryouts.providers.openai_compat import OpenAICompatProvider
    from tryouts.types import ModelSpec

    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    monkeypatch.setenv("OPENROUTER_BASE_URL", base_url)
    model = uniq("tokens=3;prompt_tokens=9")
    provider = OpenAICompatProvider(ModelSpec(ref=f"openrouter:{model}", provider="openrouter", model=model),
                                    preset="openrouter")
    return batch_api(provider)


def _request(text: str = "hi"):
    from tryouts.types import Message, Request

    return Request(messages=[Message(role="user", content=text)])


def test_the_client_against_the_replay(replay_server, monkeypatch):
    from tryouts.providers.batch import supports_batch
    from tryouts.providers.batch_openrouter import OpenRouterBatch
    from tryouts.types import Delta, Finish, UsageReport

    assert supports_batch("openrouter") and not supports_batch("groq")
    api = _api(monkeypatch, replay_server)
    assert isinstance(api, OpenRouterBatch) and api.root == f"{replay_server}/batches"
    assert api.client.headers["authorization"] == "Bearer sk-or-test"
    line = json.loads(api.line("c1", _request()))
    assert list(line) == ["custom_id", "body"] and "model" not in line["body"] and "stream" not in line["body"]

    async def go():
        sent = []
        real = api._json

        async def spy(method, url, **kw):
            sent.append(kw.get("content"))
            return await real(method, url, **kw)

        api._json = spy
        try:
            job = await api.submit([api.line(f"c{i}", _request()) for i in range(3)], "run-1")
            assert list(json.loads(sent[0])) == ["endpoint", "model", "completion_window", "requests"]
            assert job.status == "validating" and not job.ended and BATCH_ID.fullmatch(job.id)
            statuses = []
            while not job.ended:
                job = await api.poll(job.id)
                statuses.append(job.status)
            assert statuses == ["in_progress", "finalizing", "completed"]
            assert job.counts == {"total": 3, "completed": 3, "failed": 0} and job.info == {}
            got = await api.results(job, {"c0", "c1", "c2", "other"})
            assert sorted(got.items) == ["c0", "c1", "c2"] and got.skipped == 0
            events = got.items["c0"].events
            assert [e.text for e in events if isinstance(e, Delta)] == [" w0 w1 w2"]
            assert [e.usage.input_tokens for e in events if isinstance(e, UsageReport)] == [9]
            assert isinstance(events[-1], Finish)
            again = await api.results(job, {"c1"})  # nothing cached now: the batch is read again
            assert list(again.items) == ["c1"] and again.skipped == 2
            # the pages of /results give the same rows as the inline results
            monkeypatch.setattr("tryouts.providers.batch_openrouter.PAGE", 1)
            rows = await api._pages(job.id, 3)
            assert [r["custom_id"] for r in rows] == ["c0", "c1", "c2"]
            with pytest.raises(errors.ProviderError) as cancelled:
                await api.cancel(job.id)
            assert cancelled.value.status == 409  # the batch has ended: nothing to cancel
        finally:
            await api.aclose()

    asyncio.run(go())


def test_the_client_sees_a_failed_an_expired_and_a_junk_batch(replay_server, monkeypatch):
    api = _api(monkeypatch, replay_server)

    async def ended(model: str, n: int = 2):
        api.provider._model = model
        job = await api.submit([api.line(f"c{i}", _request()) for i in range(n)], "run")
        while not job.ended:
            job = await api.poll(job.id)
        return job, await api.results(job, {f"c{i}" for i in range(n)})

    async def go():
        try:
            api.provider._model = uniq()  # an image part: the batch fails at validation
            bad = await api.submit([json.dumps({"custom_id": "c0", "body": {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "x"}}]}]}}).encode()], "run")
            while not bad.ended:
                bad = await api.poll(bad.id)
            assert bad.status == "failed" and "text-only" in bad.failed and "OpenRouter Batch API" in bad.failed
            job, got = await ended(uniq("expire=1"))
            assert job.status == "expired" and got.items == {}  # no rows: the engine sends them again
            job, got = await ended(uniq("batch_junk=1;status=503"))
            assert sorted(got.items) == ["c0", "c1"] and got.skipped == 4
            item = got.items["c0"]
            assert item.events is None and item.resend and isinstance(item.error, errors.ServerError)
            assert "503" in item.error.message
        finally:
            await api.aclose()

    asyncio.run(go())


def test_the_client_reads_hostile_rows(replay_server, monkeypatch):
    from tryouts.providers.batch import Collected

    api = _api(monkeypatch, replay_server)
    ok = {"status_code": 200, "body": {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}}
    rows = [
        {"custom_id": "ok", "response": ok, "error": None},
        {"custom_id": "e429", "response": None, "error": {"type": "rate_limit_exceeded", "message": "slow"}},
        {"custom_id": "e402", "response": None, "error": {"type": "x", "code": 402, "message": "pay"}},
        {"custom_id": "e400", "response": None, "error": {"type": "invalid_prompt", "message": "no"}},
        {"custom_id": "r500", "response": {"status_code": 500, "body": {"error": {"message": "boom"}}}, "error": None},
        {"custom_id": "exp", "response": None, "error": {"type": "batch_expired", "message": "late"}},
        {"custom_id": "can", "response": None, "error": {"error_type": "batch_cancelled", "message": "gone"}},
        {"custom_id": "odd", "response": {"status_code": "200"}, "error": None},
        {"custom_id": "none"},
        {"custom_id": "ok", "response": ok, "error": None},  # a repeat
        "not a row", 5, None, {"custom_id": 7}, {"custom_id": "stranger", "response": ok},
    ]
    got = Collected()
    api._collect(rows, {"ok", "e429", "e402", "e400", "r500", "exp", "can", "odd", "none"}, got, api._item)
    assert got.skipped == 6
    it = got.items
    assert it["ok"].events and it["ok"].error is None
    assert isinstance(it["e429"].error, errors.RateLimitError) and it["e429"].resend
    assert it["e402"].error.status == 402 and not it["e402"].resend
    assert isinstance(it["e400"].error, errors.BadRequestError) and "invalid_prompt: no" in it["e400"].error.message
    assert isinstance(it["r500"].error, errors.ServerError) and it["r500"].resend and "boom" in it["r500"].error.message
    assert it["exp"].resend and "not run before its batch expired" in it["exp"].error.message
    assert it["can"].resend and "not run before its batch was cancelled" in it["can"].error.message
    assert isinstance(it["odd"].error, errors.BadResponseError) and isinstance(it["none"].error, errors.BadResponseError)
    assert "%2F" in f"{api.root}/{api._id('../../admin', 'batch id')}"  # an id is one path segment
    with pytest.raises(errors.BadResponseError):
        api._id("x" * 300, "batch id")

    async def bounded():
        monkeypatch.setattr("tryouts.providers.batch.MAX_RESULTS_BYTES", 10)
        try:
            with pytest.raises(errors.BadResponseError, match="over 10 bytes"):
                await api._get(f"{replay_server}/models")
        finally:
            await api.aclose()

    asyncio.run(bounded())


# ------------------------------------------------------------------------------------------ end to end


def _rows(db, where="1=1"):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM results WHERE {where} ORDER BY model_index, case_index")]
    finally:
        con.close()


def test_a_suite_in_openrouter_batches_beside_a_streamed_model(replay_server, tmp_path):
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "OPENROUTER_BASE_URL": replay_server, "OPENROUTER_API_KEY": "x", "COLUMNS": "250"}
    models = (
        f'  - model: "openrouter:tokens=5;prompt_tokens=20;batch_polls=2;bucket=a{tag}"\n    label: or\n'
        f'  - model: "openrouter:tokens=2;expire=1;bucket=b{tag}"\n    label: expires\n'
        f'  - model: "openrouter:tokens=2;status=500;fail_first=1;bucket=c{tag}"\n    label: fails-once\n'
        f'  - model: "openrouter:tokens=2;status=400;bucket=d{tag}"\n    label: bad-request\n'
        f'  - model: "openrouter:tokens=2;batch_junk=1;bucket=e{tag}"\n    label: junk\n'
        f'  - model: "openai-compat:{replay_server}#tokens=3"\n    label: streamed\n')
    suite = tmp_path / "s.yaml"
    suite.write_text(f"models:\n{models}prompts:\n  - \"Q{{{{n}}}}\"\ncases:\n"
                     + "".join(f"  - vars: {{n: {i}}}\n" for i in range(2)) + "batch: true\nbatch_poll_s: 0.05\n")
    db = tmp_path / "r.db"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db), "--no-cache", *args],
                              capture_output=True, text=True, env=env, timeout=180)

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    text = " ".join(dry.stdout.split())
    assert "or (batch)" in text and "junk (batch)" in text and "≤ 24 h (batch)" in text
    assert "streamed (batch)" not in text  # openai-compat has no batch API: it streams in the same run
    p = run()
    assert p.returncode == 0, p.stdout + p.stderr
    out = " ".join(p.stdout.split())
    assert "sent to the OpenRouter Batch API" in out and "result lines skipped" in out
    rows = _rows(db)
    by = {m: [r for r in rows if r["model_index"] == m] for m in range(6)}
    assert len(rows) == 12
    assert all(r["ok"] and r["batch"] == 1 and r["ttft_ms"] is None and r["e2e_ms"] is None for r in by[0])
    assert [r["text"] for r in by[0]] == [" w0 w1 w2 w3 w4"] * 2 and {r["output_tokens"] for r in by[0]} == {5}
    assert {r["input_tokens"] for r in by[0]} == {20} and {r["attempts"] for r in by[0]} == {1}
    # no documented batch rate and no batch price: the cost is unknown, never the standard price
    assert all(r["cost_total"] is None for m in range(5) for r in by[m])
    # the first cell's request expired, so the whole batch ended "expired" without results: both were sent again
    assert all(r["ok"] for r in by[1]) and [r["attempts"] for r in by[1]] == [2, 2]
    assert all(r["ok"] for r in by[2]) and sorted(r["attempts"] for r in by[2]) == [1, 2]  # a retryable 500
    assert all(not r["ok"] and r["attempts"] == 1 and "400" in r["error"] for r in by[3])  # not retryable
    assert all(r["ok"] for r in by[4]) and [r["text"] for r in by[4]] == [" w0 w1"] * 2  # junk counted, not believed
    assert all(r["ok"] and r["batch"] == 0 and r["ttft_ms"] is not None for r in by[5])
    con = sqlite3.connect(db)
    jobs = con.execute("SELECT model_index, round, collected, provider FROM batch_jobs ORDER BY model_index, round").fetchall()
    assert jobs == [(0, 1, 1, "openrouter"), (1, 1, 1, "openrouter"), (1, 2, 1, "openrouter"),
                    (2, 1, 1, "openrouter"), (2, 2, 1, "openrouter"), (3, 1, 1, "openrouter"), (4, 1, 1, "openrouter")]
