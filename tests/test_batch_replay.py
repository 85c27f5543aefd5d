"""The replay server's batch APIs (OpenAI's Files + Batch APIs, Anthropic's Message Batches), driven with httpx.

The server is the session's real subprocess on 127.0.0.1 (fixture ``replay_server``). ``fail_first`` and
``expire`` count per exact script across the whole session, so each test makes its scripts unique with a
model name of its own (a script part without ``=``).
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tryouts.testing.batchjob import JUNK_TEXT_BYTES, Item, Job, Kept
from tryouts.testing.dialects.openai_batch import parse_multipart
from tryouts.testing.replay import parse_script, start_replay_server

CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def uniq(script: str = "") -> str:
    """``script`` with a model name no other test uses (so that its counts start at zero)."""
    return f"m-{uuid.uuid4().hex[:12]};{script}" if script else f"m-{uuid.uuid4().hex[:12]}"


def line(cid: str, model: str, **over) -> dict:
    return {"custom_id": cid, "method": "POST", "url": CHAT, "body": {"model": model, "messages": MSGS}, **over}


def jsonl(lines: list) -> bytes:
    return b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)


def upload(client: httpx.Client, base: str, lines: list, *, headers=None, purpose: str = "batch") -> dict:
    r = client.post(f"{base}/files", data={"purpose": purpose}, files={"file": ("in.jsonl", jsonl(lines))}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def create(client: httpx.Client, base: str, lines: list, **extra) -> dict:
    fid = upload(client, base, lines)["id"]
    body = {"input_file_id": fid, "endpoint": CHAT, "completion_window": "24h", **extra}
    r = client.post(f"{base}/batches", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def get(client: httpx.Client, base: str, bid: str) -> dict:
    r = client.get(f"{base}/batches/{bid}")
    assert r.status_code == 200, r.text
    return r.json()


def statuses(client: httpx.Client, base: str, bid: str, n: int) -> list[str]:
    return [get(client, base, bid)["status"] for _ in range(n)]


def file_lines(client: httpx.Client, base: str, fid: str | None) -> list[dict]:
    assert fid is not None
    r = client.get(f"{base}/files/{fid}/content")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    return [json.loads(x) for x in r.text.splitlines()]


def run_to_end(client: httpx.Client, base: str, bid: str) -> dict:
    for _ in range(50):
        b = get(client, base, bid)
        if b["status"] in ("completed", "failed", "expired", "cancelled"):
            return b
    raise AssertionError(f"batch {bid} never ended")


# ------------------------------------------------------------------------------------------ OpenAI


def test_upload_get_content_list_delete(replay_server, client):
    data = [line("a", uniq()), line("b", uniq())]
    f = upload(client, replay_server, data)
    assert f["id"].startswith("file-") and f["object"] == "file" and f["purpose"] == "batch"
    assert f["filename"] == "in.jsonl" and f["bytes"] == len(jsonl(data))
    assert abs(f["created_at"] - time.time()) < 60
    assert client.get(f"{replay_server}/files/{f['id']}").json() == f
    assert client.get(f"{replay_server}/files/{f['id']}/content").content == jsonl(data)
    listed = client.get(f"{replay_server}/files").json()
    assert listed["object"] == "list" and listed["data"][0]["id"] == f["id"]  # newest first
    r = client.delete(f"{replay_server}/files/{f['id']}")
    assert r.status_code == 200 and r.json() == {"id": f["id"], "object": "file", "deleted": True}
    for url in (f"/files/{f['id']}", f"/files/{f['id']}/content"):
        r = client.get(replay_server + url)
        assert r.status_code == 404
        assert r.json()["error"]["message"] == f"No such File object: {f['id']}"
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert client.delete(f"{replay_server}/files/{f['id']}").status_code == 404


def test_upload_refusals(replay_server, client):
    r = client.post(f"{replay_server}/files", files={"file": ("x.jsonl", b"{}\n")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    assert r.json()["error"]["code"] == "missing_required_parameter"
    r = client.post(f"{replay_server}/files", data={"purpose": "batch"}, files={"other": ("x.jsonl", b"{}")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = client.post(f"{replay_server}/files", data={"purpose": "batch", "file": "not a file part"}, files={"x": ("a", b"")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = client.post(f"{replay_server}/files", data={"purpose": "nonsense"}, files={"file": ("x.jsonl", b"{}")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = client.post(f"{replay_server}/files", json={"purpose": "batch"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    r = client.put(f"{replay_server}/files")
    assert r.status_code == 405 and r.headers["allow"] == "POST, GET"


def test_multipart_parser():
    body = (
        b"preamble\r\n--b\"1\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        b"--b\"1\r\n"
        b"Content-Disposition: form-data; name=\"file\"; filename=\"a;b.jsonl\"; filename*=utf-8''%C3%A9.jsonl\r\n"
        b"Content-Type: application/jsonl\r\n\r\nline1\r\n\r\nline2\r\n"
        b"--b\"1--\r\nepilogue"
    )
    form = parse_multipart(body, 'multipart/form-data; boundary="b\\"1"')
    assert form == {"purpose": (None, b"batch"), "file": ("é.jsonl", b"line1\r\n\r\nline2")}
    assert parse_multipart(body, "application/json") is None
    assert parse_multipart(body, "multipart/form-data; boundary=other") is None
    assert parse_multipart(body[:-20], 'multipart/form-data; boundary="b\\"1"') is None  # no close delimiter
    many = b"".join(b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(40)) + b"--x--"
    assert parse_multipart(many, "multipart/form-data; boundary=x") is None  # too many parts


def test_batch_steps_and_output_match_the_chat_route(replay_server, client):
    script, slow = uniq("tokens=4;prompt_tokens=20;cached=5;reasoning=2"), uniq("ttft_ms=3000;itl_ms=500")
    b = create(client, replay_server, [line("one", script), line("two", script), line("slow", slow)], metadata={"job": "t1"})
    assert b["id"].startswith("batch_") and b["object"] == "batch" and b["status"] == "validating"
    assert b["endpoint"] == CHAT and b["completion_window"] == "24h" and b["metadata"] == {"job": "t1"}
    assert b["errors"] is None and b["output_file_id"] is None and b["error_file_id"] is None
    assert b["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert b["expires_at"] == b["created_at"] + 86_400
    assert all(b[k] is None for k in ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "cancelled_at"))
    t0 = time.monotonic()
    assert statuses(client, replay_server, b["id"], 3) == ["in_progress", "finalizing", "completed"]
    assert time.monotonic() - t0 < 2.5  # a batch has no timing: ttft_ms/itl_ms are not slept
    done = get(client, replay_server, b["id"])  # an ended batch stays as it is
    assert done["status"] == "completed" and done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["in_progress_at"] and done["finalizing_at"] and done["completed_at"]
    assert done["error_file_id"] is None
    out = file_lines(client, replay_server, done["output_file_id"])
    assert [x["custom_id"] for x in out] == ["one", "two", "slow"]
    direct = client.post(f"{replay_server}/chat/completions", json={"model": script, "messages": MSGS}).json()
    for x in out[:2]:
        assert set(x) == {"id", "custom_id", "response", "error"} and x["error"] is None
        assert x["id"].startswith("batch_req_")
        resp = x["response"]
        assert resp["status_code"] == 200 and len(resp["request_id"]) == 32
        body = resp["body"]
        assert set(body) == set(direct) - {"x_sent_ns"}
        assert body["object"] == "chat.completion" and body["choices"] == direct["choices"]
        assert body["usage"] == direct["usage"] and body["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
        assert body["choices"][0]["message"]["content"] == " w0 w1 w2 w3"
    meta = client.get(f"{replay_server}/files/{done['output_file_id']}").json()
    assert meta["purpose"] == "batch_output" and meta["filename"] == f"{b['id']}_output.jsonl"


def test_usage_never_and_batch_polls(replay_server, client):
    quick, slow = uniq("usage=never"), uniq("batch_polls=3")
    b = create(client, replay_server, [line(f"r{i}", quick if i else slow) for i in range(8)])
    seen = [get(client, replay_server, b["id"]) for _ in range(5)]
    assert [x["status"] for x in seen] == ["in_progress"] * 3 + ["finalizing", "completed"]
    # a share of the items settles at each in-progress poll: 8*j//4 after poll j
    assert [x["request_counts"]["completed"] for x in seen] == [2, 4, 6, 8, 8]
    out = file_lines(client, replay_server, seen[-1]["output_file_id"])
    assert "usage" in out[0]["response"]["body"] and "usage" not in out[1]["response"]["body"]


def test_error_lines_and_fail_first_per_script(replay_server, client):
    flaky, broken, rid = uniq("status=429;fail_first=1;retry_after=3"), uniq("status=500"), uuid.uuid4().hex
    b = create(client, replay_server, [line("f1", flaky), line("ok", uniq(f"id={rid}")), line("f2", flaky), line("x", broken)])
    end = run_to_end(client, replay_server, b["id"])
    assert end["status"] == "completed" and end["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    out = file_lines(client, replay_server, end["output_file_id"])
    err = file_lines(client, replay_server, end["error_file_id"])
    assert [x["custom_id"] for x in out] == ["ok", "f2"]  # the second f request: fail_first is used up
    assert [x["custom_id"] for x in err] == ["f1", "x"]
    assert err[0]["error"] is None and err[0]["response"]["status_code"] == 429
    assert err[0]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"
    assert err[1]["response"]["status_code"] == 500
    assert err[1]["response"]["body"] == {"error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": None, "code": None,
    }}
    # the same counts as the chat route: the flaky script's failure is spent
    r = client.post(f"{replay_server}/chat/completions", json={"model": flaky, "messages": MSGS})
    assert r.status_code == 200
    log = client.get(f"{replay_server.removesuffix('/v1')}/_replay/log/{rid}").json()
    assert log["status"] == 200 and log["stream"] is False and log["n_chunks"] == 1


def test_expire_then_resubmit_succeeds(replay_server, client):
    late, fine = uniq("expire=1"), uniq()
    b = create(client, replay_server, [line("late", late), line("fine", fine)])
    assert statuses(client, replay_server, b["id"], 1) == ["in_progress"]
    end = get(client, replay_server, b["id"])
    assert end["status"] == "expired" and end["expired_at"] and end["completed_at"] is None
    assert end["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert [x["custom_id"] for x in file_lines(client, replay_server, end["output_file_id"])] == ["fine"]
    (gone,) = file_lines(client, replay_server, end["error_file_id"])
    assert gone["custom_id"] == "late" and gone["response"] is None
    assert gone["error"] == {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
    again = run_to_end(client, replay_server, create(client, replay_server, [line("late", late)])["id"])
    assert again["status"] == "completed" and again["error_file_id"] is None
    assert [x["custom_id"] for x in file_lines(client, replay_server, again["output_file_id"])] == ["late"]


def test_cancel_mid_job(replay_server, client):
    b = create(client, replay_server, [line(f"c{i}", uniq("batch_polls=3")) for i in range(4)])
    assert statuses(client, replay_server, b["id"], 1) == ["in_progress"]  # 4*1//4 = 1 item done
    r = client.post(f"{replay_server}/batches/{b['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelling" and r.json()["cancelling_at"]
    end = get(client, replay_server, b["id"])
    assert end["status"] == "cancelled" and end["cancelled_at"]
    assert end["request_counts"] == {"total": 4, "completed": 1, "failed": 3}
    assert [x["custom_id"] for x in file_lines(client, replay_server, end["output_file_id"])] == ["c0"]
    err = file_lines(client, replay_server, end["error_file_id"])
    assert [x["custom_id"] for x in err] == ["c1", "c2", "c3"]
    assert {x["error"]["code"] for x in err} == {"batch_cancelled"} and all(x["response"] is None for x in err)
    again = client.post(f"{replay_server}/batches/{b['id']}/cancel")  # an ended batch comes back unchanged
    assert again.status_code == 200 and again.json() == end
    assert client.get(f"{replay_server}/batches/{b['id']}/cancel").status_code == 405


def test_bad_lines_fail_the_batch(replay_server, client):
    good = uniq()
    lines = [
        line("a", good),
        b"{not json",
        {"method": "POST", "url": CHAT, "body": {"model": good}},
        line("a", good),
        line("u", good, url="/v1/embeddings"),
        line("m", good, method="GET"),
        {"custom_id": "n", "method": "POST", "url": CHAT, "body": {"messages": MSGS}},
        line("s", "tokens=lots"),
    ]
    b = create(client, replay_server, lines)
    assert b["status"] == "validating"
    failed = get(client, replay_server, b["id"])
    assert failed["status"] == "failed" and failed["failed_at"] and failed["in_progress_at"] is None
    assert failed["output_file_id"] is None and failed["error_file_id"] is None
    assert failed["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    errors = failed["errors"]
    assert errors["object"] == "list"
    got = [(e["line"], e["code"], e["param"]) for e in errors["data"]]
    assert got == [
        (2, "invalid_json_line", None),
        (3, "missing_required_parameter", "custom_id"),
        (4, "duplicate_custom_id", "custom_id"),
        (5, "mismatched_endpoint", "url"),
        (6, "invalid_method", "method"),
        (7, "missing_required_parameter", "body.model"),
        (8, "invalid_script", "body.model"),
    ]
    assert "'tokens'" in errors["data"][-1]["message"]
    assert statuses(client, replay_server, b["id"], 1) == ["failed"]
    empty = client.post(f"{replay_server}/batches", json={
        "input_file_id": upload(client, replay_server, [b"", b""])["id"], "endpoint": CHAT, "completion_window": "24h"})
    failed = get(client, replay_server, empty.json()["id"])
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["code"] == "empty_file"


def test_create_refusals_and_unknown_ids(replay_server, client):
    fid = upload(client, replay_server, [line("a", uniq())])["id"]
    base = {"input_file_id": fid, "endpoint": CHAT, "completion_window": "24h"}

    def refused(body: dict, status: int, param: str) -> None:
        r = client.post(f"{replay_server}/batches", json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"

    refused({**base, "input_file_id": "file-nope"}, 404, "input_file_id")
    refused({**base, "endpoint": "/v1/embeddings"}, 400, "endpoint")
    refused({**base, "completion_window": "48h"}, 400, "completion_window")
    refused({"endpoint": CHAT, "completion_window": "24h"}, 400, "input_file_id")
    refused({**base, "metadata": {"k": 1}}, 400, "metadata")
    other = upload(client, replay_server, [line("a", uniq())], purpose="user_data")["id"]
    refused({**base, "input_file_id": other}, 400, "input_file_id")
    for method, url in (("GET", "/batches/batch_nope"), ("POST", "/batches/batch_nope/cancel")):
        r = client.request(method, replay_server + url)
        assert r.status_code == 404 and r.json()["error"]["message"] == "No batch found with id 'batch_nope'."
    r = client.get(f"{replay_server}/batches/x/y/z")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    assert client.delete(f"{replay_server}/batches/x").status_code == 405


def test_list_batches_and_paths_without_v1(replay_server, client):
    root = replay_server.removesuffix("/v1")
    first = create(client, root, [line("a", uniq())])  # /files and /batches, without /v1
    second = create(client, replay_server, [line("a", uniq())])
    page = client.get(f"{root}/batches", params={"limit": 1}).json()
    assert page["object"] == "list" and [x["id"] for x in page["data"]] == [second["id"]] and page["has_more"] is True
    nxt = client.get(f"{replay_server}/batches", params={"limit": 1, "after": second["id"]}).json()
    assert [x["id"] for x in nxt["data"]] == [first["id"]] and nxt["first_id"] == nxt["last_id"] == first["id"]
    assert page["data"][0]["status"] == nxt["data"][0]["status"] == "validating"  # listing does not move a batch
    assert get(client, root, first["id"])["status"] == "in_progress"
    assert client.get(f"{replay_server}/batches/{second['id']}").json()["status"] == "in_progress"


def test_batch_junk_output_is_hostile(replay_server, client):
    b = create(client, replay_server, [line("j1", uniq("batch_junk=1")), line("j2", uniq())])
    end = run_to_end(client, replay_server, b["id"])
    raw = client.get(f"{replay_server}/files/{end['output_file_id']}/content").content.split(b"\n")
    assert raw[-1] == b"" and len(raw) == 7  # 2 real lines + 4 junk, newline-terminated
    parsed = []
    for x in raw[:-1]:
        try:
            parsed.append(json.loads(x)["custom_id"])
        except ValueError:
            parsed.append(None)
    assert parsed[0].startswith("replay-junk-unknown-")
    assert parsed[1:] == ["j1", None, "j2", "j1", None]
    assert raw[-2] == b"x" * JUNK_TEXT_BYTES
    assert end["request_counts"] == {"total": 2, "completed": 2, "failed": 0}


def test_keys_are_required_on_both_batch_apis(client):
    params = {"model": uniq(), "max_tokens": 5, "messages": MSGS}
    with start_replay_server(require_key="sk-batch-123456") as base:
        r = client.post(f"{base}/files", data={"purpose": "batch"}, files={"file": ("x.jsonl", b"{}")})
        assert r.status_code == 401 and "didn't provide an API key" in r.json()["error"]["message"]
        r = client.get(f"{base}/batches", headers={"Authorization": "Bearer sk-wrong-000000"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        good = {"Authorization": "Bearer sk-batch-123456"}
        assert upload(client, base, [line("a", uniq())], headers=good)["object"] == "file"
        url = f"{base.removesuffix('/v1')}/anthropic/v1/messages/batches"
        r = client.post(url, json={"requests": [{"custom_id": "a", "params": params}]})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = client.get(url, headers={"x-api-key": "nope"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "invalid x-api-key"
        r = client.post(url, json={"requests": [{"custom_id": "a", "params": params}]}, headers={"x-api-key": "sk-batch-123456"})
        assert r.status_code == 200 and r.json()["type"] == "message_batch"


# --------------------------------------------------------------------------------------- Anthropic


def anth(replay_server: str) -> str:
    return f"{replay_server.removesuffix('/v1')}/anthropic/v1/messages/batches"


def req(cid: str, model: str, **params) -> dict:
    return {"custom_id": cid, "params": {"model": model, "max_tokens": 64, "messages": MSGS, **params}}


def submit(client: httpx.Client, url: str, requests: list) -> dict:
    r = client.post(url, json={"requests": requests})
    assert r.status_code == 200, r.text
    return r.json()


def aget(client: httpx.Client, url: str, bid: str) -> dict:
    r = client.get(f"{url}/{bid}")
    assert r.status_code == 200, r.text
    return r.json()


def results(client: httpx.Client, batch: dict) -> list[dict]:
    r = client.get(batch["results_url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-jsonl"
    return [json.loads(x) for x in r.text.splitlines()]


def test_message_batch_steps_and_results(replay_server, client):
    url = anth(replay_server)
    script = uniq("tokens=3;prompt_tokens=50;cached=10;cache_write=5;reasoning=2;batch_polls=2")
    b = submit(client, url, [req("first", script), req("second-1", script), req("slow_", uniq("ttft_ms=4000;itl_ms=99"))])
    assert b["id"].startswith("msgbatch_") and b["type"] == "message_batch" and b["processing_status"] == "in_progress"
    assert b["request_counts"] == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert b["ended_at"] is None and b["results_url"] is None and b["archived_at"] is None and b["cancel_initiated_at"] is None
    assert b["created_at"].endswith("Z") and b["expires_at"] > b["created_at"]
    t0 = time.monotonic()
    one, two, end = (aget(client, url, b["id"]) for _ in range(3))
    assert time.monotonic() - t0 < 2.5  # no ttft sleep in a batch
    assert [one["processing_status"], two["processing_status"], end["processing_status"]] == ["in_progress"] * 2 + ["ended"]
    assert [one["request_counts"]["succeeded"], two["request_counts"]["succeeded"]] == [1, 2]  # 3*j//3
    assert [one["request_counts"]["processing"], two["request_counts"]["processing"]] == [2, 1]
    assert end["request_counts"] == {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 0, "expired": 0}
    assert end["ended_at"] and end["results_url"] == f"{url}/{b['id']}/results"
    got = results(client, end)
    assert [x["custom_id"] for x in got] == ["first", "second-1", "slow_"]
    direct = client.post(url.removesuffix("/batches"), json=req("x", script)["params"]).json()
    msg = got[0]["result"]["message"]
    assert got[0]["result"]["type"] == "succeeded" and set(msg) == set(direct) - {"x_sent_ns"}
    assert msg["usage"] == direct["usage"] == {
        "input_tokens": 35, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 5}
    assert [c["type"] for c in msg["content"]] == ["thinking", "text"] and msg["content"][1]["text"] == " w0 w1 w2"
    assert msg["stop_reason"] == "end_turn" and msg["type"] == "message"
    assert aget(client, url, b["id"]) == end  # ended stays ended


def test_message_batch_errored_fail_first_and_expire(replay_server, client):
    url = anth(replay_server)
    flaky, late = uniq("status=529;fail_first=1"), uniq("expire=1")
    b = submit(client, url, [req("f1", flaky), req("f2", flaky), req("late", late), req("bad", uniq("status=400"))])
    aget(client, url, b["id"])
    end = aget(client, url, b["id"])
    assert end["request_counts"] == {"processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 1}
    got = {x["custom_id"]: x["result"] for x in results(client, end)}
    assert got["f1"] == {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}}
    assert got["f2"]["type"] == "succeeded"
    assert got["late"] == {"type": "expired"}
    assert got["bad"]["error"]["error"]["type"] == "invalid_request_error"
    again = submit(client, url, [req("late", late)])  # resent: the expiry is spent
    aget(client, url, again["id"])
    assert results(client, aget(client, url, again["id"]))[0]["result"]["type"] == "succeeded"


def test_message_batch_cancel(replay_server, client):
    url = anth(replay_server)
    b = submit(client, url, [req(f"c{i}", uniq("batch_polls=3")) for i in range(4)])
    assert aget(client, url, b["id"])["request_counts"]["succeeded"] == 1
    r = client.post(f"{url}/{b['id']}/cancel")
    assert r.status_code == 200 and r.json()["processing_status"] == "canceling" and r.json()["cancel_initiated_at"]
    assert r.json()["results_url"] is None
    end = aget(client, url, b["id"])
    assert end["processing_status"] == "ended"
    assert end["request_counts"] == {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 3, "expired": 0}
    got = [(x["custom_id"], x["result"]["type"]) for x in results(client, end)]
    assert got == [("c0", "succeeded"), ("c1", "canceled"), ("c2", "canceled"), ("c3", "canceled")]
    assert client.post(f"{url}/{b['id']}/cancel").json() == end  # an ended batch comes back unchanged


@pytest.mark.parametrize(
    ("requests", "needle"),
    [
        ([], "at least 1 item"),
        ([req("bad id", "m")], "requests.0.custom_id: String should match pattern"),
        ([req("x" * 65, "m")], "requests.0.custom_id"),
        ([req("a", "m"), req("a", "m")], "requests.1.custom_id: Duplicate custom_id 'a'"),
        ([{"custom_id": "a", "params": {"model": "m", "messages": MSGS}}], "requests.0.params.max_tokens: Field required"),
        ([req("a", "m", messages=[{"role": "system", "content": "x"}])], 'requests.0.params.messages: Unexpected role "system"'),
        ([req("a", "tokens=-1")], "requests.0.params.model: script key 'tokens'"),
        ([req("a", "cache_write=x")], "requests.0.params.model: script key 'cache_write'"),
        ([{"custom_id": "a"}], "requests.0.params: Field required"),
    ],
)
def test_message_batch_refusals(replay_server, client, requests, needle):
    r = client.post(anth(replay_server), json={"requests": requests})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert needle in body["error"]["message"]


def test_message_batch_unknown_ids_early_results_delete_and_list(replay_server, client):
    url = anth(replay_server)
    r = client.get(f"{url}/msgbatch_nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    for method, tail in (("GET", "/results"), ("POST", "/cancel"), ("DELETE", "")):
        assert client.request(method, f"{url}/msgbatch_nope{tail}").status_code == 404
    assert client.get(f"{url}/x/y").status_code == 404
    assert client.put(f"{url}/x").status_code == 405
    first = submit(client, url, [req("a", uniq())])
    second = submit(client, url, [req("a", uniq())])
    r = client.get(f"{url}/{first['id']}/results")
    assert r.status_code == 400 and "has not ended" in r.json()["error"]["message"]
    r = client.delete(f"{url}/{first['id']}")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    page = client.get(url, params={"limit": 1}).json()
    assert [x["id"] for x in page["data"]] == [second["id"]] and page["has_more"] is True
    assert page["first_id"] == page["last_id"] == second["id"]
    nxt = client.get(url, params={"limit": 1, "after_id": second["id"]}).json()
    assert [x["id"] for x in nxt["data"]] == [first["id"]]
    aget(client, url, first["id"])
    aget(client, url, first["id"])
    r = client.delete(f"{url}/{first['id']}")
    assert r.status_code == 200 and r.json() == {"id": first["id"], "type": "message_batch_deleted"}
    assert client.get(f"{url}/{first['id']}").status_code == 404


def test_message_batch_junk_results(replay_server, client):
    url = anth(replay_server)
    b = submit(client, url, [req("j1", uniq("batch_junk=1;status=500")), req("j2", uniq())])
    aget(client, url, b["id"])
    end = aget(client, url, b["id"])
    raw = client.get(end["results_url"]).content.split(b"\n")
    assert len(raw) == 7 and raw[-1] == b"" and raw[-2] == b"x" * JUNK_TEXT_BYTES
    ids = []
    for x in raw[:-1]:
        try:
            ids.append(json.loads(x)["custom_id"])
        except ValueError:
            ids.append(None)
    assert ids[0].startswith("replay-junk-unknown-") and ids[1:] == ["j1", None, "j2", "j1", None]
    assert json.loads(raw[1])["result"]["type"] == "errored"
    assert end["request_counts"]["errored"] == 1 and end["request_counts"]["succeeded"] == 1


# ------------------------------------------------------------------------------------------ in-process


def test_job_shares_and_kept_bounds():
    kept: Kept[int, bytes] = Kept(3, max_bytes=10, size=len)
    for i in range(5):
        kept.add(i, b"abcd")
    assert list(kept) == [3, 4] and kept.bytes == 8
    assert kept.discard(3) == b"abcd" and kept.bytes == 4 and kept.discard(3) is None

    class App:  # what Job needs of the app: admit
        def __init__(self):
            self.admitted = []

        def admit(self, s, model, recv_ns, stream):
            self.admitted.append(model)
            return {"sent_ns": [], "first_token_sent_ns": None}

    app = App()
    items = [Item(f"i{k}", "batch_polls=4", parse_script("batch_polls=4")) for k in range(10)]
    job = Job(items, render=lambda it: it.outcome)
    done = []
    while not job.poll(app):
        done.append(job.counts()["succeeded"])
    assert done == [2, 4, 6, 8]  # 10*j//5
    job.finish(app, canceled=True)
    assert job.results("canceled") == ["canceled", "canceled"] and len(app.admitted) == 8
