"""The dashboard's JSON API and guards, against a real uvicorn server on 127.0.0.1 (no browser here: see
test_web_browser.py): host check, token, CSRF, headers; figures equal the store's; live comparisons stream
over server-sent events and can be stopped; the arena; no secret ever in a response."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import httpx
import pytest

from helpers import serve_dashboard, text_model
from tryouts.errors import UsageError

TOKEN = "a-known-token-for-the-api-tests"
#: every request carries the access token (the guards' tests below send none, or a wrong one, on purpose)
web = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def serve(db, **kw):
    """The dashboard with the known token; model references with a URL allowed (the replay server's)."""
    kw.setdefault("token", TOKEN)
    kw.setdefault("allow_options", "base_url")
    return serve_dashboard(db, **kw)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "web.db"


@pytest.fixture
def suite_run(replay_server, tmp_path, db):
    """A stored suite run: two models, three cases with assertions (one model fails one)."""
    import subprocess
    import sys

    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris is the capital')}", label: paris}}
  - {{model: "{text_model(replay_server, 'It is Lyon')}", label: lyon}}
prompts: ["Capital {{{{n}}}}?"]
cases:
  - {{vars: {{n: 1}}, assert: [{{type: icontains, value: paris}}]}}
  - {{vars: {{n: 2}}, assert: [{{type: icontains, value: is}}]}}
  - {{vars: {{n: 3}}, assert: [{{type: icontains, value: is}}]}}
""")
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    from tryouts.store import Store

    return Store(str(db)).get_run("latest")


# ---- guards ---------------------------------------------------------------------------------------


def test_headers_csrf_and_host_check(db):
    with serve(db) as (url, app):
        r = web.get(f"{url}/api/runs")
        assert r.status_code == 200 and r.json() == []
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
        body = {"prompt": "hi", "models": ["openai:gpt-4o-mini"]}
        r = web.post(f"{url}/api/compare", json=body)
        assert r.status_code == 403 and "X-Tryouts-CSRF" in r.json()["detail"]
        csrf = web.get(f"{url}/api/csrf").json()["csrf"]
        assert csrf == app.state.csrf
        r = web.post(f"{url}/api/compare", json=body, headers={"X-Tryouts-CSRF": "wrong"})
        assert r.status_code == 403
        r = web.post(f"{url}/api/compare", json=body,
                     headers={"X-Tryouts-CSRF": csrf, "Origin": "https://evil.example"})
        assert r.status_code == 403 and "Cross-site" in r.json()["detail"]
        # DNS rebinding: a loopback-bound dashboard answers only to loopback host names
        r = web.get(f"{url}/api/runs", headers={"Host": "evil.example"})
        assert r.status_code == 421
        assert web.get(url.replace("127.0.0.1", "localhost") + "/api/runs").status_code == 200


def test_a_non_loopback_bind_needs_the_token(db):
    with pytest.raises(UsageError, match="needs an access token"):
        from tryouts.web import create_app

        create_app(str(db), host="0.0.0.0", token=None)
    with serve(db, host="0.0.0.0", token="s3cret-token") as (url, app):
        r = httpx.get(f"{url}/api/runs")
        assert r.status_code == 401 and "token" in r.json()["detail"]
        assert httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 403
        assert httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(f"{url}/openapi.json").status_code == 401  # every request, docs included
        # 127.0.0.1 sends the browser to this start's random name; there the token becomes a cookie
        port, name = url.rsplit(":", 1)[1], app.state.browser_host
        r = httpx.get(f"{url}/api/runs?token=s3cret-token&limit=5")
        assert r.status_code == 303 and r.headers["location"].startswith(f"http://{name}:{port}/api/runs?")
        with httpx.Client(headers={"Host": f"{name}:{port}"}, follow_redirects=True) as client:
            r = client.get(f"{url}/api/runs?token=s3cret-token&limit=5")
            assert r.status_code == 200  # redirected without the token in the address, cookie set
            assert "token=" not in str(r.url) and "limit=5" in str(r.url)
            assert client.get(f"{url}/api/runs").status_code == 200  # the cookie carries it
        # an address of this machine other than loopback keeps the cookie there (docs/security.md)
        assert app.state.browser_host and httpx.get(f"{url}/api/runs", headers={"Host": "192.0.2.7:1"}).status_code == 401
        assert httpx.get(f"{url}/api/runs?token=wrong").status_code == 403


# ---- figures equal the store's --------------------------------------------------------------------


def test_run_api_equals_the_store(db, suite_run):
    from tryouts.scoring.summary import quality_report
    from tryouts.stats import summarize

    run_id = suite_run["run"]["id"]
    with serve(db) as (url, _):
        runs = web.get(f"{url}/api/runs", params={"kind": "suite"}).json()
        assert [r["id"] for r in runs] == [run_id]
        assert web.get(f"{url}/api/runs", params={"model": "no-such-model"}).json() == []
        detail = web.get(f"{url}/api/runs/{run_id[:12]}").json()
        assert detail["run"]["id"] == run_id and detail["labels"] == ["paris", "lyon"]
        expected = json.loads(json.dumps(summarize(suite_run["results"]), default=str))
        for s in detail["summary"]:
            s.pop("label")
        for s in expected:
            s.pop("label")
        assert detail["summary"] == expected
        assert detail["quality"] == json.loads(json.dumps(quality_report(suite_run["results"], ["paris", "lyon"])))
        everything = web.get(f"{url}/api/runs/{run_id}/results").json()
        assert everything["total"] == 6
        assert everything["results"] == json.loads(json.dumps([{**r, "review": None} for r in suite_run["results"]],
                                                              default=str))  # + the dashboard review (none)
        failures = web.get(f"{url}/api/runs/{run_id}/results", params={"view": "failures"}).json()
        assert [(r["model_index"], r["case_index"]) for r in failures["results"]] == [(1, 0)]
        differ = web.get(f"{url}/api/runs/{run_id}/results", params={"view": "differ"}).json()
        assert differ["total"] == 6  # the two models always answer differently
        page = web.get(f"{url}/api/runs/{run_id}/results", params={"offset": 4, "limit": 10}).json()
        assert len(page["results"]) == 2
        charts = web.get(f"{url}/api/runs/{run_id}/charts").json()
        assert charts["primary"] == "pass"
        by = {m["label"]: m for m in charts["models"]}
        assert by["paris"]["quality"] == 1.0 and by["lyon"]["quality"] == pytest.approx(2 / 3)
        assert len(by["paris"]["e2e_ms"]) == 3
        assert web.get(f"{url}/api/runs/nope").status_code == 404
        d = web.get(f"{url}/api/diff", params={"a": run_id, "b": run_id}).json()
        assert isinstance(d, dict)


def test_live_comparison_streams_and_stores(db, replay_server):
    models = [text_model(replay_server, "one two three four", ";itl_ms=20"),
              text_model(replay_server, "alpha beta", ";itl_ms=20")]
    with serve(db) as (url, app):
        csrf = app.state.csrf
        r = web.post(f"{url}/api/compare", json={"prompt": "Say words", "models": models, "max_tokens": 16},
                     headers={"X-Tryouts-CSRF": csrf})
        assert r.status_code == 200, r.text
        events = []
        with web.stream("GET", url + r.json()["events"], timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "end":
                        break
        kinds = [e["type"] for e in events]
        assert kinds[0] == "run" and kinds[-1] == "end" and events[-1]["status"] == "done"
        run_id = events[0]["run_id"]
        for i, expected in enumerate(("one two three four", "alpha beta")):
            deltas = [e for e in events if e["type"] == "delta" and e["model"] == i]
            assert "".join(d["text"] for d in deltas) == expected and len(deltas) == len(expected.split())
            assert all(b["elapsed_ms"] >= a["elapsed_ms"] for a, b in itertools.pairwise(deltas))
        from tryouts.store import Store

        stored = {r["model_index"]: r for r in Store(str(db)).get_run(run_id)["results"]}
        sent = {e["model"]: e["result"] for e in events if e["type"] == "result"}
        for i in (0, 1):
            assert sent[i]["text"] == stored[i]["text"]
            for key in ("ttft_ms", "e2e_ms", "output_tokens", "output_tokens_per_s", "cost_usd"):
                assert sent[i][key] == stored[i][key], key
        # a late subscriber gets the whole history
        with web.stream("GET", url + r.json()["events"], timeout=30) as stream:
            again = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
        assert [e["type"] for e in again] == kinds
        assert any(x["id"] == run_id and x["kind"] == "compare" for x in web.get(f"{url}/api/runs").json())


def test_stop_keeps_what_was_produced(db, replay_server):
    slow = text_model(replay_server, " ".join(f"w{i}" for i in range(60)), ";itl_ms=100")
    with serve(db) as (url, app):
        r = web.post(f"{url}/api/compare", json={"prompt": "Count", "models": [slow]},
                     headers={"X-Tryouts-CSRF": app.state.csrf})
        key = r.json()["key"]
        events = []
        with web.stream("GET", url + r.json()["events"], timeout=30) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "delta" and sum(e["type"] == "delta" for e in events) == 3:
                    stop = web.post(f"{url}/api/compare/{key}/stop", headers={"X-Tryouts-CSRF": app.state.csrf})
                    assert stop.json() == {"stopped": True}
                if events[-1]["type"] == "end":
                    break
        assert events[-1]["status"] == "stopped"
        from tryouts.store import Store

        data = Store(str(db)).get_run(events[0]["run_id"])
        (result,) = data["results"]
        assert not result["ok"] and result["error"] == "Stopped from the dashboard" and result["error_kind"] == "stopped"
        assert result["text"].startswith(" w0 w1 w2") or result["text"].startswith("w0 w1 w2")
        assert data["run"]["status"] == "interrupted"
        (sent,) = [e["result"] for e in events if e["type"] == "result"]  # the stopped model's stored result
        assert sent["id"] == result["id"] and sent["text"] == result["text"] and not sent["ok"]


def test_bad_compare_requests_say_what_is_wrong(db):
    with serve(db) as (url, app):
        h = {"X-Tryouts-CSRF": app.state.csrf}
        r = web.post(f"{url}/api/compare", json={"prompt": "x", "models": ["nosuch:model"]}, headers=h)
        assert r.status_code == 400 and "nosuch" in r.json()["detail"]
        r = web.post(f"{url}/api/compare", json={"prompt": "", "models": ["openai:gpt-4o"]}, headers=h)
        assert r.status_code == 422
        r = web.post(f"{url}/api/compare", json={"prompt": "x", "models": ["openai:gpt-4o"], "asserts": ["regex:("]},
                     headers=h)
        assert r.status_code == 400 and "assertion 'regex:('" in r.json()["detail"]
        assert "invalid regular expression" in r.json()["detail"] and not app.state.live.runs
        assert web.get(f"{url}/api/compare/nope/events").status_code == 404


def test_arena_api_is_blind_until_the_vote(db, suite_run):
    run_id = suite_run["run"]["id"]
    with serve(db) as (url, app):
        h = {"X-Tryouts-CSRF": app.state.csrf}
        nxt = web.get(f"{url}/api/runs/{run_id}/arena/next").json()
        assert nxt["remaining"] == 3 and "paris" not in json.dumps(nxt) and "lyon" not in json.dumps(nxt)
        assert {nxt["a"], nxt["b"]} == {"Paris is the capital", "It is Lyon"}
        r = web.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": nxt["pair"], "verdict": "a"}, headers=h)
        winner = r.json()["a"]
        assert {r.json()["a"], r.json()["b"]} == {"paris", "lyon"}
        again = web.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": nxt["pair"], "verdict": "b"}, headers=h)
        assert again.status_code == 404  # a pair is voted once
        assert web.get(f"{url}/api/runs/{run_id}/arena/next").json()["remaining"] == 2
        bad = web.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": "x", "verdict": "maybe"}, headers=h)
        assert bad.status_code == 422
        from tryouts.store import Store

        (vote,) = Store(str(db)).votes(run_id, "human")
        assert vote["verdict"] == "a" and vote["model_a"] == winner
        ranking = web.get(f"{url}/api/runs/{run_id}/rank").json()["rankings"]["human"]
        assert ranking["ratings"][0]["model"] == winner


def test_catalog_memory_advisor_and_openapi(db):
    with serve(db) as (url, _):
        models = web.get(f"{url}/api/models", params={"access": "open", "task": "embeddings"}).json()["models"]
        assert models and all(m["access"] == "open" and "embeddings" in m["tasks"] for m in models)
        assert web.get(f"{url}/api/models", params={"task": "dancing"}).status_code == 400
        card = web.get(f"{url}/api/models/llama-3.1-8b-instruct/card").json()
        assert "llama" in json.dumps(card).lower()
        assert web.get(f"{url}/api/models/no-such-model-xyz/card").status_code == 404
        mem = web.get(f"{url}/api/memory", params={"model": "llama-3.1-70b-instruct", "dtype": "fp32",
                                                      "gpu": "H100-80GB"}).json()
        (est,) = mem["estimates"]
        assert 280e9 < est["weights_bytes"] < 285e9 and est["fits"] is False
        assert web.get(f"{url}/api/memory", params={"model": "llama-3.1-70b-instruct", "dtype": "fp7"}).status_code == 400
        rec = web.get(f"{url}/api/recommend", params={"task": "chat", "privacy": "high"}).json()
        assert rec["picks"] and all(p["access"] == "open" for p in rec["picks"])
        mac = web.get(f"{url}/api/recommend", params={"privacy": "high", "unified_memory": "16GB", "chip": "M3",
                                                       "commercial": "true"}).json()
        assert mac["constraints"]["hardware"]["kind"] == "unified" and mac["picks"][0]["speed"]["estimate"]
        assert web.get(f"{url}/api/recommend", params={"ram": "8GB", "gpu": "L4"}).status_code == 400
        page = web.get(f"{url}/advisor", params={"task": "chat", "privacy": "high", "ram": "32GB"})
        assert page.status_code == 200 and "tokens/s (estimate)" in page.text and "licence" in page.text
        spec = web.get(f"{url}/openapi.json").json()
        assert {"/api/runs", "/api/compare", "/api/runs/{run}/arena/vote"} <= set(spec["paths"])
        docs = web.get(f"{url}/docs")
        assert docs.status_code == 200 and "/api/runs/{run}/results" in docs.text and "<script" not in docs.text
        providers = web.get(f"{url}/api/providers").json()
        assert any(p["name"] == "openai" for p in providers)


def test_no_secret_reaches_a_response(db, replay_server, monkeypatch):
    key = "sk-planted-9f8e7d6c5b4a"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with serve(db) as (url, app):
        h = {"X-Tryouts-CSRF": app.state.csrf}
        r = web.post(f"{url}/api/compare", headers=h, json={
            "prompt": "hi", "models": ["openai:gpt-4o-mini", "openai:gpt-4o"],
            "options": [{"base_url": replay_server}, {"base_url": replay_server, "api_key": key}]})
        with web.stream("GET", url + r.json()["events"], timeout=30) as stream:
            streamed = "".join(stream.iter_lines())
        run_id = web.get(f"{url}/api/runs").json()[0]["id"]
        bodies = [streamed] + [web.get(url + path).text for path in (
            "/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/results", f"/api/runs/{run_id}/charts",
            "/api/providers", "/openapi.json", "/docs")]
        assert all(key not in b for b in bodies)
        assert "***" in bodies[3]  # the api_key option is stored redacted


def test_a_bad_suite_is_refused_with_its_line_and_nothing_starts(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [openai:gpt-4o-mini]\nprompts: [hi]\nrepeats: 0\n")
    with serve(db, suite_dir=tmp_path) as (url, app):
        h = {"X-Tryouts-CSRF": app.state.csrf}
        r = web.post(f"{url}/api/suite-runs", json={"path": str(bad)}, headers=h)
        assert r.status_code == 400 and "line 3 (repeats)" in r.json()["detail"]
        assert web.get(f"{url}/api/runs").json() == []
        assert web.post(f"{url}/api/suite-runs", json={"path": str(bad)}).status_code == 403  # CSRF


def test_an_eval_task_run_page_shows_the_task_report(replay_server, tmp_path, db):
    """The run page of `tryouts eval-task` shows the stored report: metrics with intervals (corpus ones too),
    the confusion matrices and the paired comparison, each figure as the store has it."""
    import re
    import subprocess
    import sys

    from tryouts.store import Store

    data = tmp_path / "pn.csv"
    data.write_text("text,label\n" + "".join(f"good thing {i},positive\n" for i in range(6))
                    + "".join(f"bad thing {i},negative\n" for i in range(4)))
    p = subprocess.run([sys.executable, "-m", "tryouts", "eval-task", "classification", "--data", str(data),
                        "--db", str(db), "-m", text_model(replay_server, "positive"),
                        "-m", text_model(replay_server, "Negative.")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    run = Store(str(db)).get_run("latest")["run"]
    report = run["meta"]["eval_task"]
    with serve(db) as (url, _app):
        html = web.get(f"{url}/runs/{run['id']}").text
    assert "<h2 id=\"task\">Task: classification</h2>" in html
    table = html[html.index('id="task-metrics"'):html.index("</table>", html.index('id="task-metrics"'))]
    assert "Accuracy ★" in table and "Macro-F1" in table
    for m in report["models"]:
        row = table[table.index(f'data-model="{m["index"]}"'):]
        row = row[:row.index("</tr>")]
        for name in ("accuracy", "macro_f1"):
            i = m["intervals"][name]
            assert f'data-k="{name}">{i["mean"]:.3f} [{i["low"]:.3f}–{i["high"]:.3f}]</td>' in row
    # the first model answers "positive" to all 10: its matrix is [[0, 4, 0], [0, 6, 0]]
    first = html[html.index('class="confusion" data-model="0"'):]
    cells = re.findall(r'<td class="num">(\d+)</td>', first[:first.index("</table>")])
    assert cells == ["0", "4", "0", "0", "6", "0"]
    c = report["comparisons"][0]
    # 10 cases: the exact test, no interval, and its verdict
    assert c["test"] == "exact permutation" and c["low"] is None and c["diff"] == pytest.approx(-0.2)
    assert f"{c['diff']:+.3f}</td>" in html and f"{c['p_value']:.3f} (exact)" in html and c["verdict"] in html


def test_the_run_page_shows_speed_only_from_valid_timings_and_says_so(db):
    from datetime import UTC, datetime

    from tryouts.store import Store
    from tryouts.types import Message, Request, Result, Timing

    store = Store(str(db))
    run_id = store.create_run("suite", ["openai-compat:m"], {}, {"labels": ["m"], "n_cells": 3})
    store.add_results(run_id, [
        Result(model="openai-compat:m", provider="openai-compat", model_name="m", ok=True, text="x",
               started_at=datetime.now(UTC), timing=Timing(ttft_ms=ttft, e2e_ms=ttft + 5), case_index=i,
               request=Request(messages=[Message(role="user", content="q")]), timing_valid=valid)
        for i, (ttft, valid) in enumerate([(10.0, True), (20.0, True), (5000.0, False)])])
    store.finish_run(run_id)
    with serve(db) as (url, _):
        summary = web.get(f"{url}/api/runs/{run_id}").json()["summary"][0]
        assert summary["timing_excluded"] == 1 and summary["ttft_ms"]["n"] == 2 and summary["ttft_ms"]["mean"] == 15.0
        page = web.get(f"{url}/runs/{run_id}").text
        assert 'id="timing-note"' in page and "leave out 1 cell whose timing" in page
        assert 'data-k="ttft_p50">15' in page  # the median of the two valid cells, not of all three


def test_batch_answers_show_no_timings_on_the_page_in_exports_and_in_show(db, tmp_path):
    from datetime import UTC, datetime

    from tryouts.store import Store
    from tryouts.types import Message, Request, Result, Timing

    store = Store(str(db))
    run_id = store.create_run("suite", ["openai:gpt-4o-mini", "openai-compat:m"], {},
                              {"labels": ["gpt", "m"], "n_cells": 2})
    base = {"provider": "openai", "model_name": "m", "ok": True, "text": "x", "started_at": datetime.now(UTC),
            "request": Request(messages=[Message(role="user", content="q")])}
    store.add_results(run_id, [
        Result(model="openai:gpt-4o-mini", batch=True, **base),
        Result(model="openai-compat:m", model_index=1, timing=Timing(ttft_ms=12.0, e2e_ms=20.0), timing_valid=True,
               **base)])
    store.finish_run(run_id)
    with serve(db) as (url, _):
        api = web.get(f"{url}/api/runs/{run_id}").json()
        assert api["summary"][0]["batch"] == 1 and api["summary"][0]["ttft_ms"]["n"] == 0
        rows = web.get(f"{url}/api/runs/{run_id}/results").json()
        rows = rows["results"] if isinstance(rows, dict) else rows
        assert [r["batch"] for r in rows] == [True, False]
        page = web.get(f"{url}/runs/{run_id}").text
        assert 'data-k="ttft_p50">n/a (batch)' in page and 'data-k="ttft_p50">12' in page
        assert '<b data-k="ttft_ms">n/a (batch)</b>' in page
    html = tmp_path / "r.html"
    p = subprocess.run([sys.executable, "-m", "tryouts", "export", run_id, "-f", "html", "-o", str(html), "--db",
                        str(db)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "TTFT n/a (batch)" in html.read_text() and "TTFT 12" in html.read_text()
    p = subprocess.run([sys.executable, "-m", "tryouts", "show", run_id, "--db", str(db)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "n/a (batch)" in p.stdout
