"""The review half of the dashboard (docs/dashboard.md): per-result ratings and comments, run tags, deleting a
run, searching outputs, and per-model export, re-run and stop; against a real uvicorn server on 127.0.0.1,
attacked as the security review would (CSRF, results of other runs, bounds, markup, SQL wildcards), and the
store's side on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from helpers import serve_dashboard, text_model
from test_store import make_result as stored_result
from tryouts.errors import StoreError, UsageError
from tryouts.store import Store, schema
from tryouts.store.reviews import MAX_COMMENT, MAX_TAGS, RunBusy, UnknownResult

TOKEN = "a-known-token-for-the-review-tests"
web = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"


def make_result(model="openai:gpt-4o-mini", ok=True, text=None, **kw):
    """A stored-result fixture (tests/test_store.py's) with its own answer text."""
    r = stored_result(model, ok, **kw)
    if text is not None:
        r.text = text
    return r


def serve(db, **kw):
    kw.setdefault("token", TOKEN)
    return serve_dashboard(db, **kw)


def csrf(app) -> dict[str, str]:
    return {"X-Tryouts-CSRF": app.state.csrf}


@pytest.fixture
def db(tmp_path):
    return tmp_path / "review.db"


def two_runs(db) -> tuple[str, list[int], str, list[int]]:
    """Run A (two models: "hello" and a failure "par", labels) and run B (one model, "Lyon is nice")."""
    store = Store(str(db))
    a = store.create_run("suite", ["openai:gpt-4o-mini", "hf:x"], {}, {"labels": ["fast-one", "local-x"]})
    ids_a = [store.add_result(a, make_result()), store.add_result(a, make_result("hf:x", ok=False, model_index=1))]
    store.finish_run(a, "partial")
    b = store.create_run("compare", ["openai:gpt-4o"], {"messages": [{"role": "user", "content": "hi"}]})
    ids_b = [store.add_result(b, make_result("openai:gpt-4o", text="Lyon is nice, 100% sure"))]
    store.finish_run(b, "done")
    return a, ids_a, b, ids_b


# ---- the store, on SQLite and PostgreSQL ------------------------------------------------------------------


def check_store_round_trip(store: Store) -> None:
    a = store.create_run("suite", ["openai:gpt-4o-mini"], {})
    rid = store.add_result(a, make_result(text="Paris it is"))
    other = store.create_run("compare", ["openai:gpt-4o"], {})
    foreign = store.add_result(other, make_result(text="elsewhere"))
    first = store.set_review(a, rid, "good", "fine " + XSS + " \x00")
    assert first["rating"] == "good" and first["comment"] == "fine " + XSS + " \ufffd"  # NUL stored as U+FFFD
    again = store.set_review(a, rid, "bad", "changed")
    assert again["created_at"] == first["created_at"] and again["updated_at"] >= first["updated_at"]
    assert store.reviews(a) == {rid: again} and store.review(a, rid) == again
    with pytest.raises(UnknownResult):
        store.set_review(a, foreign, "good", "")  # a result of another run
    with pytest.raises(UsageError, match="at most 4,000"):
        store.set_review(a, rid, None, "x" * (MAX_COMMENT + 1))
    with pytest.raises(UsageError, match="rating"):
        store.set_review(a, rid, "meh", "")
    assert store.set_review(a, rid, None, "   ") is None and store.review(a, rid) is None  # nothing: removed
    store.set_review(a, rid, None, "y" * MAX_COMMENT)  # the bound itself is allowed

    assert store.add_run_tags(a, ["Prod", "v1.2", "prod"]) == ["prod", "v1.2"]
    with pytest.raises(UsageError, match="not a tag"):
        store.add_run_tags(a, ["a b"])
    with pytest.raises(UsageError, match=f"at most {MAX_TAGS}"):
        store.add_run_tags(a, [f"t{i}" for i in range(MAX_TAGS)])
    assert store.runs_with_tag("PROD") == {a} and store.tags_by_run() == {a: ["prod", "v1.2"]}
    assert store.remove_run_tag(a, "v1.2") and not store.remove_run_tag(a, "v1.2")
    assert store.set_run_tags(other, ["x", "y"]) == ["x", "y"]

    assert store.runs_matching_text("PARIS") == {a}  # case-insensitive
    assert store.runs_matching_text("%") == set() and store.runs_matching_text("_") == set()  # literal wildcards
    assert store.runs_matching_text("' OR 1=1 --") == set()
    assert store.result_ids_matching(a, "it is") == {rid} and store.result_ids_matching(other, "paris") == set()

    store.add_vote(a, case_index=0, repeat_index=0, result_a=rid, result_b=rid, model_a="m", model_b="m", verdict="tie")
    store.add_judgments(a, [{"kind": "rubric", "judge": "j", "result_id": rid, "ok": True, "text": "", "cost_source": "unknown"}])
    store.add_batch_job(a, "job-1", purpose="cells", model="m", model_index=0, provider="openai", server=None,
                        custom_ids=["c"], round_no=1, status="done")
    running = store.create_run("compare", ["openai:gpt-4o"], {})
    with pytest.raises(RunBusy, match="is running"):
        store.delete_run(running)
    with pytest.raises(RunBusy):
        store.delete_run(a)  # not finished yet either
    assert store.reviews(a)  # and nothing of it went
    store.finish_run(a, "done")
    out = store.delete_run(a)
    assert out["deleted"]["results"] == 1 and out["deleted"]["reviews"] == 1 and out["deleted"]["votes"] == 1
    with store.engine.connect() as conn:  # no row of any table still names the run
        for table in schema.metadata.tables.values():
            if "run_id" in table.c:
                n = conn.execute(select(func.count()).select_from(table).where(table.c.run_id == a)).scalar_one()
                assert n == 0, table.name
    with pytest.raises(StoreError):
        store.get_run_row(a)
    assert store.run_tags(other) == ["x", "y"] and store.get_run(other)["results"][0]["id"] == foreign


def test_store_reviews_tags_delete_and_search_on_sqlite(tmp_path):
    check_store_round_trip(Store(tmp_path / "s.db"))


def test_store_reviews_tags_delete_and_search_on_postgresql(pg_url):
    check_store_round_trip(Store(pg_url))


# ---- the API: reviews ----------------------------------------------------------------------------------


def test_a_review_round_trips_and_shows_in_the_run_api_and_exports(db):
    a, ids, _, _ = two_runs(db)
    with serve(db) as (url, app):
        base = f"{url}/api/runs/{a}/results/{ids[1]}/review"
        assert web.get(base).json()["review"] is None
        r = web.put(base, json={"rating": "bad", "comment": "cut short " + XSS}, headers=csrf(app))
        assert r.status_code == 200, r.text
        review = r.json()["review"]
        assert review["rating"] == "bad" and review["comment"] == "cut short " + XSS
        assert web.get(base).json()["review"] == review
        detail = web.get(f"{url}/api/runs/{a}").json()
        assert detail["reviews"] == [review]
        rows = {r["id"]: r for r in web.get(f"{url}/api/runs/{a}/results").json()["results"]}
        assert rows[ids[1]]["review"]["rating"] == "bad" and rows[ids[0]]["review"] is None
        failures = web.get(f"{url}/api/runs/{a}/results?view=failures").json()["results"]
        assert [r["review"]["rating"] for r in failures] == ["bad"]
        one = web.get(f"{url}/api/runs/{a}/models/1/results?download=true")
        assert one.headers["content-disposition"] == f'attachment; filename="tryouts-{a}-model-1.json"'
        body = one.json()
        assert body["label"] == "local-x" and [r["id"] for r in body["results"]] == [ids[1]]
        assert body["results"][0]["review"]["comment"] == "cut short " + XSS
        assert web.get(f"{url}/api/runs/{a}/models/2/results").status_code == 404
        # the page shows it escaped, rated
        html = web.get(f"{url}/runs/{a}").text
        assert f'data-result="{ids[1]}" data-rating="bad"' in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        # neither a rating nor a comment: removed
        assert web.put(base, json={"rating": None, "comment": " "}, headers=csrf(app)).json()["review"] is None
        web.put(base, json={"rating": "good"}, headers=csrf(app))
        assert web.delete(base, headers=csrf(app)).json()["deleted"] is True
        assert web.delete(base, headers=csrf(app)).json()["deleted"] is False
    # the CLI's exports carry it (json, jsonl, csv)
    Store(str(db)).set_review(a, ids[0], "good", "nice, \"quoted\"")
    for fmt in ("json", "jsonl", "csv"):
        p = subprocess.run([sys.executable, "-m", "tryouts", "export", a, "--format", fmt, "--db", str(db)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        if fmt == "json":
            results = json.loads(p.stdout)["results"]
        elif fmt == "jsonl":
            results = [json.loads(line) for line in p.stdout.splitlines()]
        else:
            results = [{**row, "review": json.loads(row["review"]) if row["review"] else None}
                       for row in csv.DictReader(io.StringIO(p.stdout))]
        by_id = {int(r["id"]): r["review"] for r in results}
        assert by_id[ids[0]]["rating"] == "good" and by_id[ids[0]]["comment"] == "nice, \"quoted\"", fmt
        assert by_id[ids[1]] is None, fmt


def test_review_writes_are_guarded_and_bounded(db):
    a, ids_a, _, ids_b = two_runs(db)
    with serve(db) as (url, app):
        base = f"{url}/api/runs/{a}/results/{ids_a[0]}/review"
        for method, path, body in (("PUT", base, {"rating": "good"}), ("DELETE", base, None),
                                   ("POST", f"{url}/api/runs/{a}/tags", {"tags": ["x"]}),
                                   ("PUT", f"{url}/api/runs/{a}/tags", {"tags": ["x"]}),
                                   ("DELETE", f"{url}/api/runs/{a}/tags/x", None), ("DELETE", f"{url}/api/runs/{a}", None),
                                   ("POST", f"{url}/api/runs/{a}/models/0/rerun", {})):
            r = web.request(method, path, json=body)
            assert r.status_code == 403 and "X-Tryouts-CSRF" in r.json()["detail"], (method, path)
            r = web.request(method, path, json=body, headers={**csrf(app), "Origin": "https://evil.example"})
            assert r.status_code == 403 and "Cross-site" in r.json()["detail"], (method, path)
            assert httpx.request(method, path, json=body, headers=csrf(app)).status_code == 401  # no token
        store = Store(str(db))
        assert store.reviews(a) == {} and store.run_tags(a) == [] and store.get_run_row(a)["id"] == a
        # a result of another run, an unknown run, an impossible id
        r = web.put(f"{url}/api/runs/{a}/results/{ids_b[0]}/review", json={"rating": "good"}, headers=csrf(app))
        assert r.status_code == 404 and "has no result" in r.json()["detail"]
        assert web.get(f"{url}/api/runs/{a}/results/{ids_b[0]}/review").status_code == 404
        assert web.delete(f"{url}/api/runs/{a}/results/{ids_b[0]}/review", headers=csrf(app)).status_code == 404
        assert web.put(f"{url}/api/runs/nope/results/1/review", json={}, headers=csrf(app)).status_code == 404
        for bad_id in ("0", "-1", str(2**63), "1e3", "..%2F..%2Fetc"):
            r = web.put(f"{url}/api/runs/{a}/results/{bad_id}/review", json={}, headers=csrf(app))
            assert r.status_code in (404, 422), bad_id
        # bounds: a 422 that says what is allowed
        r = web.put(base, json={"rating": "meh"}, headers=csrf(app))
        assert r.status_code == 422 and "good" in json.dumps(r.json())
        r = web.put(base, json={"comment": "x" * (MAX_COMMENT + 1)}, headers=csrf(app))
        assert r.status_code == 422 and "at most 4,000 characters" in r.json()["detail"]
        assert web.put(base, json={"comment": "x" * MAX_COMMENT}, headers=csrf(app)).status_code == 200
        r = web.post(f"{url}/api/runs/{a}/tags", json={"tags": ["<script>"]}, headers=csrf(app))
        assert r.status_code == 422 and "not a tag" in r.json()["detail"]
        for tags in (["x" * 33], [""], ["a/b"], ["../etc"], [f"t{i}" for i in range(MAX_TAGS + 1)]):
            assert web.post(f"{url}/api/runs/{a}/tags", json={"tags": tags}, headers=csrf(app)).status_code == 422
        assert store.run_tags(a) == []
        assert web.delete(f"{url}/api/runs/nope", headers=csrf(app)).status_code == 404
        assert web.post(f"{url}/api/compare/nope/models/0/stop", headers=csrf(app)).status_code == 404


# ---- tags, search, delete --------------------------------------------------------------------------------


def test_tags_filter_and_search_treats_text_as_text(db):
    a, _, b, ids_b = two_runs(db)
    with serve(db) as (url, app):
        r = web.post(f"{url}/api/runs/{a}/tags", json={"tags": ["Candidate", "v1.2"]}, headers=csrf(app))
        assert r.json()["tags"] == ["candidate", "v1.2"]
        listed = {x["id"]: x for x in web.get(f"{url}/api/runs").json()}
        assert listed[a]["tags"] == ["candidate", "v1.2"] and listed[b]["tags"] == []
        assert [x["id"] for x in web.get(f"{url}/api/runs?tag=candidate").json()] == [a]
        assert web.get(f"{url}/api/runs?tag=../../etc/passwd").json() == []

        def found(q: str) -> set[str]:
            return {x["id"] for x in web.get(f"{url}/api/runs", params={"q": q}).json()}

        assert found("lyon") == {b}  # a word of an output
        assert found("local-x") == {a}  # a label
        assert found("candidate") == {a}  # a tag
        assert found("100%") == {b} and found("%") == {b}  # only the output with a real '%'
        assert found("' OR '1'='1") == set() and found("_") == set()
        page = web.get(f"{url}/runs", params={"tag": "candidate"}).text
        assert f'data-run="{a}"' in page and f'data-run="{b}"' not in page
        assert 'href="/runs?tag=v1.2"' in page
        page = web.get(f"{url}/runs", params={"q": "<script>alert(1)</script>"}).text
        assert "<script>alert(1)</script>" not in page and "No runs" in page
        # within a run: the grid keeps the cases whose outputs match
        run_page = web.get(f"{url}/runs/{b}", params={"q": "LYON"}).text
        assert f'data-id="{ids_b[0]}"' in run_page and "1 case with an output containing" in run_page
        run_page = web.get(f"{url}/runs/{b}", params={"q": "nowhere"}).text
        assert 'data-id="' not in run_page and "No output in this view contains" in run_page
        # remove and replace
        assert web.delete(f"{url}/api/runs/{a}/tags/v1.2", headers=csrf(app)).json()["tags"] == ["candidate"]
        assert web.put(f"{url}/api/runs/{a}/tags", json={"tags": []}, headers=csrf(app)).json()["tags"] == []


def test_deleting_a_run_removes_everything_and_refuses_a_running_one(db):
    a, ids_a, b, _ = two_runs(db)
    store = Store(str(db))
    store.set_review(a, ids_a[0], "good", "ok")
    store.add_run_tags(a, ["gone"])
    store.add_vote(a, case_index=0, repeat_index=0, result_a=ids_a[0], result_b=ids_a[1], model_a="x", model_b="y",
                   verdict="a")
    running = store.create_run("compare", ["openai:gpt-4o"], {})  # this process's: alive
    with serve(db) as (url, app):
        r = web.delete(f"{url}/api/runs/{running}", headers=csrf(app))
        assert r.status_code == 409 and "running" in r.json()["detail"]
        r = web.delete(f"{url}/api/runs/{a}", headers=csrf(app))
        assert r.status_code == 200 and r.json()["deleted"]["results"] == 2
        assert web.get(f"{url}/api/runs/{a}").status_code == 404
        assert web.delete(f"{url}/api/runs/{a}", headers=csrf(app)).status_code == 404
    assert store.reviews(a) == {} and store.run_tags(a) == [] and store.votes(a) == []
    assert {r["id"] for r in store.list_runs(None)} == {b, running}
    # the CLI: asks for --yes without a terminal, then deletes
    cmd = [sys.executable, "-m", "tryouts", "delete", b, "--db", str(db)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "--yes" in p.stderr + p.stdout
    p = subprocess.run([*cmd, "--yes"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and f"Deleted run {b}" in p.stdout
    p = subprocess.run([*cmd, "--yes"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "No run" in p.stderr + p.stdout


# ---- per model: re-run and stop ---------------------------------------------------------------------------


def wait_for(predicate, what: str, limit_s: float = 60.0):
    """Poll until ``predicate()`` is truthy (a wait, not a timed assertion: the limit only ends a hung test)."""
    deadline = time.monotonic() + limit_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
    return value


def events_of(url: str, path: str, on_event=None) -> list[dict]:
    events: list[dict] = []
    with web.stream("GET", url + path, timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if on_event is not None:
                    on_event(events)
                if events[-1]["type"] == "end":
                    break
    return events


def test_rerun_of_one_compare_model_takes_nothing_from_the_request(db, replay_server):
    models = [text_model(replay_server, "one two"), text_model(replay_server, "alpha beta gamma")]
    with serve(db, allow_options="base_url") as (url, app):
        r = web.post(f"{url}/api/compare", json={"prompt": "Say words", "system": "Be brief", "models": models,
                                                 "max_tokens": 16, "expected": "alpha", "asserts": ["contains:beta"]},
                     headers=csrf(app))
        first = events_of(url, r.json()["events"])[0]["run_id"]
        out = web.post(f"{url}/api/runs/{first}/models/1/rerun", headers=csrf(app),
                       json={"base_url": "http://evil.example/v1", "models": ["openai:gpt-4o"], "prompt": "other"})
        assert out.status_code == 200, out.text
        body = out.json()
        assert body["kind"] == "compare" and body["run_id"] and body["page"] == f"/runs/{body['run_id']}"
        events_of(url, body["events"])
        data = Store(str(db)).get_run(body["run_id"])
        assert data["run"]["models"] == [models[1]] and data["run"]["status"] == "done"
        assert data["run"]["request"]["messages"] == Store(str(db)).get_run(first)["run"]["request"]["messages"]
        (row,) = data["results"]
        assert row["text"] == "alpha beta gamma" and row["scores"]["assert"]["passed"] is True
        assert row["case"]["expected"] == "alpha"
        assert web.post(f"{url}/api/runs/{first}/models/2/rerun", headers=csrf(app)).status_code == 404
    # a dashboard that does not allow URLs refuses the same re-run, as it refuses the comparison
    with serve(db) as (url, app):
        r = web.post(f"{url}/api/runs/{first}/models/0/rerun", headers=csrf(app))
        assert r.status_code == 400 and "--allow-options base_url" in r.json()["detail"]


def test_rerun_of_one_suite_model_runs_that_model_only(db, replay_server, tmp_path):
    suite = tmp_path / "two.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris it is')}", label: paris}}
  - {{model: "{text_model(replay_server, 'Lyon it is')}", label: lyon}}
prompts: ["Capital of {{{{c}}}}?"]
cases: [{{vars: {{c: France}}, assert: [{{type: icontains, value: paris}}]}}, {{vars: {{c: Italy}}}}]
""")
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    first = Store(str(db)).resolve_run_id("latest")
    # someone with write access to a shared store plants a suite in the run: the re-run reads the file instead
    stored = Store(str(db)).get_run_row(first)["meta"]["suite"]
    planted = json.loads(json.dumps(stored).replace("Lyon%20it%20is", "PLANTED"))
    assert planted != stored
    Store(str(db)).update_run_meta(first, {"suite": planted})
    with serve(db, suite_dir=tmp_path) as (url, app):
        r = web.post(f"{url}/api/runs/{first}/models/1/rerun", headers=csrf(app))
        assert r.status_code == 200, r.text
        new = r.json()["run_id"]
        assert r.json()["cells"] == 2
        wait_for(lambda: web.get(f"{url}/api/suite-runs/{new}").json()["status"] not in ("running",), "suite end")
    data = Store(str(db)).get_run(new)
    assert data["run"]["status"] == "done" and data["run"]["meta"]["labels"] == ["lyon"]
    assert sorted(r["text"] for r in data["results"]) == ["Lyon it is", "Lyon it is"]
    # the file changed since the run (its models swapped): the re-run refuses rather than run another model
    text = suite.read_text()
    swapped = text.replace("Paris%20it%20is", "@@").replace("Lyon%20it%20is", "Paris%20it%20is").replace("@@", "Lyon")
    assert swapped != text
    suite.write_text(swapped)
    with serve(db, suite_dir=tmp_path) as (url, app):
        r = web.post(f"{url}/api/runs/{first}/models/1/rerun", headers=csrf(app))
        assert r.status_code == 409 and "no longer the one" in r.json()["detail"]
    # a suite outside the dashboard's suite folder is refused, as POST /api/suite-runs refuses it
    with serve(db, suite_dir=tmp_path / "user-data") as (url, app):
        r = web.post(f"{url}/api/runs/{first}/models/0/rerun", headers=csrf(app))
        assert r.status_code == 403 and "suite folder" in r.json()["detail"]


def test_stopping_one_model_keeps_its_ttft_and_the_others_finish(db, replay_server):
    slow = f"openai-compat:{replay_server}#tokens=80;ttft_ms=40;itl_ms=60"
    fast = text_model(replay_server, "alpha beta")
    with serve(db, allow_options="base_url") as (url, app):
        r = web.post(f"{url}/api/compare", json={"prompt": "Count", "models": [slow, fast]}, headers=csrf(app))
        key = r.json()["key"]
        stopped = []

        def on_event(events):
            n = sum(e["type"] == "delta" and e["model"] == 0 for e in events)
            if n >= 3 and not stopped:
                stopped.append(web.post(f"{url}/api/compare/{key}/models/0/stop", headers=csrf(app)).json())

        events = events_of(url, r.json()["events"], on_event)
        assert stopped == [{"stopped": True}]
        assert events[-1]["status"] == "partial"
        run_id = events[0]["run_id"]
        assert web.post(f"{url}/api/compare/{key}/models/0/stop", headers=csrf(app)).json() == {"stopped": False}
    data = Store(str(db)).get_run(run_id)
    rows = {r["model_index"]: r for r in data["results"]}
    cut, done = rows[0], rows[1]
    assert done["ok"] and done["text"] == "alpha beta"
    assert not cut["ok"] and cut["error"] == "Stopped from the dashboard" and cut["error_kind"] == "stopped"
    assert cut["text"].split()[:3] == ["w0", "w1", "w2"] and len(cut["text"].split()) < 80
    # what it measured before the stop is kept: TTFT (the server waited 40 ms), chunks, end to end
    assert cut["ttft_ms"] is not None and cut["ttft_ms"] >= 40
    assert cut["n_chunks"] >= 3 and cut["e2e_ms"] >= cut["ttft_ms"]
    sent = [e["result"] for e in events if e["type"] == "result" and e["model"] == 0]
    assert sent and sent[0]["ttft_ms"] == cut["ttft_ms"]
    assert data["run"]["status"] == "partial"


def test_stopping_everything_keeps_the_ttft_of_what_streamed(db, replay_server):
    slow = f"openai-compat:{replay_server}#tokens=80;ttft_ms=30;itl_ms=60"
    with serve(db, allow_options="base_url") as (url, app):
        r = web.post(f"{url}/api/compare", json={"prompt": "Count", "models": [slow, slow]}, headers=csrf(app))
        key = r.json()["key"]

        def on_event(events):
            if sum(e["type"] == "delta" for e in events) == 6:
                web.post(f"{url}/api/compare/{key}/stop", headers=csrf(app))

        events = events_of(url, r.json()["events"], on_event)
    assert events[-1]["status"] == "stopped"
    rows = Store(str(db)).get_run(events[0]["run_id"])["results"]
    assert len(rows) == 2 and all(row["error_kind"] == "stopped" for row in rows)
    # servers on this machine take turns (the machine gate): the first streamed, the second never started
    streamed = [row for row in rows if row["text"]]
    assert streamed, rows
    for row in rows:
        if row["text"]:
            assert row["ttft_ms"] is not None and row["ttft_ms"] >= 30 and row["n_chunks"] >= 1, row
        else:
            assert row["ttft_ms"] is None, row


def test_the_engine_reports_a_stopped_cell_with_what_it_measured(tmp_path, replay_server):
    from tryouts.engine import events as ev
    from tryouts.engine.executor import Cancel
    from tryouts.engine.run import Policy, run_cells
    from tryouts.types import Cell, Message, ModelSpec, Request

    store = Store(tmp_path / "e.db")
    spec = ModelSpec.parse(f"openai-compat:{replay_server}#tokens=80;ttft_ms=20;itl_ms=50")
    cells = [Cell(0, 0, 0, spec, Request(messages=[Message(role="user", content="go")]))]
    run_id = store.create_run("suite", [spec.ref], {})
    cancel, stopped, deltas = Cancel(), [], []

    def on_event(e):
        if isinstance(e, ev.CellDelta):
            deltas.append(e)
            if len(deltas) == 4:
                cancel.stop(0)
        elif isinstance(e, ev.CellStopped):
            stopped.append(e)

    progress = asyncio.run(run_cells(cells, store=store, run_id=run_id, on_event=on_event, cancel=cancel,
                                     stream_deltas=True, policy=Policy(use_cache=False)))
    assert store.done_cells(run_id) == set() and progress.cancelled == 1  # no row: a resume runs it
    (event,) = stopped
    r = event.result
    assert r.error_kind == "stopped" and not r.ok and r.text.split()[:4] == ["w0", "w1", "w2", "w3"]
    assert r.timing.ttft_ms is not None and r.timing.ttft_ms >= 20 and r.timing.n_chunks >= 4
    assert r.attempts == 1
