"""Attacks on the dashboard, replayed against a real uvicorn server on 127.0.0.1 (docs/security.md).

Each test is one finding of the security review: a request another local user or a web page could send, and
what the dashboard must answer. A real listener on 127.0.0.1 records whether the owner's key ever arrives.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest

from helpers import events_until_end, free_port, serve_dashboard, text_model

OWNER_KEY = "sk-owner-secret-5a4b3c2d1e"
SECRET_LINE = "root:$6$SECRETHASHxyz$abcdef:19000:0:99999:7:::"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "web.db"


@contextmanager
def listener():
    """An HTTP server on 127.0.0.1 (as another user could run) that records every request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "listener"}}')

        do_GET = do_POST = _record

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def client(app) -> httpx.Client:
    """A client that holds the access token and the CSRF token."""
    return httpx.Client(headers={"Authorization": f"Bearer {app.state.token}", "X-Tryouts-CSRF": app.state.csrf},
                        timeout=30)




# ---- the token ----------------------------------------------------------------------------------


def test_every_request_needs_the_token_on_loopback_too(db):
    with serve_dashboard(db) as (url, app):
        for path in ("/", "/runs", "/api/csrf", "/api/runs", "/openapi.json"):
            r = httpx.get(url + path)
            assert r.status_code == 401 and "token" in r.json()["detail"], path
        assert len(app.state.token) >= 32  # generated on every start
        assert httpx.get(f"{url}/api/csrf", headers={"Authorization": "Bearer wrong-token"}).status_code == 403
        r = httpx.get(f"{url}/api/csrf", headers={"Authorization": f"Bearer {app.state.token}"})
        assert r.status_code == 200 and r.json()["csrf"] == app.state.csrf


def test_a_known_token_comes_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("TRYOUTS_UI_TOKEN", "token-from-the-environment")
    with serve_dashboard(db) as (url, app):
        assert app.state.token == "token-from-the-environment"
        assert httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer token-from-the-environment"}
                         ).status_code == 200


def test_the_token_cookie_lives_only_on_this_starts_random_browser_name(db):
    """Cookies ignore the port: one on 127.0.0.1 would reach every listener on 127.0.0.1, another user's too."""
    import re

    with serve_dashboard(db, token="the-known-token") as (url, app):
        port = url.rsplit(":", 1)[1]
        name = app.state.browser_host
        assert re.fullmatch(r"[0-9a-f]{16}\.localhost", name)
        # on a shared loopback name: to the same address on the random name, token kept, no cookie set
        for host in ("127.0.0.1", "localhost", "[::1]"):
            r = httpx.get(f"{url}/runs?token=the-known-token&kind=suite", headers={"Host": f"{host}:{port}"})
            assert r.status_code == 303 and "set-cookie" not in r.headers, host
            assert r.headers["location"] == f"http://{name}:{port}/runs?token=the-known-token&kind=suite"
        there = {"Host": f"{name}:{port}"}
        r = httpx.get(f"{url}/runs?token=the-known-token&kind=suite", headers=there)
        assert r.status_code == 303 and r.headers["location"] == "/runs?kind=suite"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"tryouts-token-{port}=the-known-token;") and "domain" not in cookie.lower()
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        # the open redirect: //evil.example/ would send the browser (and the address) to another host
        for path in ("//evil.example/", "/\\evil.example/", "///evil.example/x"):
            location = httpx.get(f"{url}{path}?token=the-known-token", headers=there).headers["location"]
            assert location.startswith("/") and not location.startswith(("//", "/\\")), location
            location = httpx.get(f"{url}{path}?token=the-known-token").headers["location"]
            rest = location.removeprefix(f"http://{name}:{port}/")
            assert rest != location and not rest.startswith(("/", "\\")), location
        jar = {f"tryouts-token-{port}": "the-known-token"}
        page = httpx.get(url + "/runs", cookies=jar, headers=there)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"  # pages too
        assert "the-known-token" not in page.text
        # the cookie counts only on the random name; scripts use Authorization anywhere
        for host in ("127.0.0.1", "localhost", "[::1]"):
            assert httpx.get(url + "/runs", cookies=jar, headers={"Host": f"{host}:{port}"}).status_code == 401
        assert httpx.get(url + "/runs", headers={"Authorization": "Bearer the-known-token"}).status_code == 200
        # another name under .localhost (a guess, or DNS rebinding) is not this dashboard's
        other = {"Host": f"0123456789abcdef.localhost:{port}"}
        assert httpx.get(url + "/runs", cookies=jar, headers=other).status_code == 421
        assert "localhost" not in httpx.get(url + "/runs", headers=other).text  # the name is never told
        assert httpx.get(url + "/runs", cookies={"tryouts_token": "the-known-token"}, headers=there).status_code == 401
    from tryouts.web import create_app

    first, second = (create_app(str(db), token="the-known-token") for _ in range(2))
    assert first.state.browser_host != second.state.browser_host  # a new name on every start
    assert create_app(str(db), host="127.0.0.2", token="the-known-token").state.browser_host is None  # unreachable


# ---- where requests go, what runs ---------------------------------------------------------------


RISKY = [
    ("openai:gpt-4o-mini", {"base_url": "LISTENER"}, "base_url"),
    ("openai:gpt-4o-mini", {"api_key_env": "HOME"}, "api_key_env"),
    ("openai:gpt-4o-mini", {"headers": {"X-A": "b"}}, "headers"),
    ("openai:gpt-4o-mini", {"extra_body": {"a": 1}}, "extra_body"),
    ("hf:org/model", {"trust_remote_code": True}, "trust_remote_code"),
    ("hf:org/model", {"device_map": "auto"}, "device_map"),
    ("hf:org/model", {"quantization": "/tmp/q.json"}, "quantization"),
    ("hf:org/model", {"tokenizer": "/tmp/tok"}, "tokenizer"),
]


def test_options_that_choose_where_requests_go_are_refused_and_the_key_stays_home(db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OWNER_KEY)
    with listener() as (target, seen), serve_dashboard(db) as (url, app), client(app) as c:
        for model, options, name in RISKY:
            options = {k: (target if v == "LISTENER" else v) for k, v in options.items()}
            r = c.post(f"{url}/api/compare", json={"prompt": "hi", "models": [model], "options": [options]})
            assert r.status_code == 400, (name, r.text)
            assert repr(name) in r.json()["detail"] and f"--allow-options {name}" in r.json()["detail"]
        r = c.post(f"{url}/api/compare", json={"prompt": "hi", "models": [f"openai-compat:{target}#m"]})
        assert r.status_code == 400 and "--allow-options base_url" in r.json()["detail"]
        assert seen == []  # nothing reached the listener
        assert c.get(f"{url}/api/runs").json() == []  # and nothing started


def test_allow_options_lets_the_owner_choose_and_a_finished_comparison_is_released(db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OWNER_KEY)
    with listener() as (target, seen), serve_dashboard(db, allow_options="base_url") as (url, app), client(app) as c:
        r = c.post(f"{url}/api/compare", json={"prompt": "hi", "models": ["openai:gpt-4o-mini"],
                                               "options": [{"base_url": target}]})
        assert r.status_code == 200, r.text
        events = events_until_end(c, url, r.json()["events"])
        assert events[-1]["type"] == "end"
        assert seen and seen[0]["authorization"] == f"Bearer {OWNER_KEY}"  # the owner allowed exactly this
        r2 = c.post(f"{url}/api/compare", json={"prompt": "hi", "models": ["openai:gpt-4o-mini"],
                                                "options": [{"extra_body": {"a": 1}}]})
        assert r2.status_code == 400 and "extra_body" in r2.json()["detail"]  # only what was named
        key = r.json()["key"]
        app.state.live.release(key)  # what the server does a minute after the end
        assert key not in app.state.live.runs
        assert c.get(url + r.json()["events"]).status_code == 404


def test_local_paths_are_refused_unless_allowed(db, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 128, "vocab_size": 1000}))
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_LINE)
    with serve_dashboard(db) as (url, app), client(app) as c:
        for ref in (f"hf:{folder}", f"llamacpp:{tmp_path}/m.gguf", "hf:~/models/x", "hf:../up"):
            r = c.post(f"{url}/api/compare", json={"prompt": "hi", "models": [ref]})
            assert r.status_code == 400 and "--allow-local-paths" in r.json()["detail"], ref
        answers = []
        for name in (str(secret), str(folder), str(tmp_path / "no-such-folder"), "/etc/passwd"):
            mem = c.get(f"{url}/api/memory", params={"model": name})
            card = c.get(f"{url}/api/models/{quote(name, safe='/')}/card")
            for r in (mem, card):
                assert r.status_code == 400 and "--allow-local-paths" in r.json()["detail"], (name, r.text)
                assert "SECRETHASH" not in r.text and "root:" not in r.text
            answers.append((mem.json(), card.json()))
        assert answers[1] == answers[2]  # the answer tells nothing about whether a path exists
        long_name = "a" * 5000
        for r in (c.get(f"{url}/api/memory", params={"model": long_name}), c.get(f"{url}/api/models/{long_name}/card"),
                  c.get(f"{url}/models/{long_name}")):
            assert 400 <= r.status_code < 500, r.status_code
        assert "at most" in c.get(f"{url}/api/memory", params={"model": long_name}).json()["detail"]
    with serve_dashboard(db, allow_local_paths=True) as (url, app), client(app) as c:
        r = c.get(f"{url}/api/memory", params={"model": str(folder), "dtype": "fp16"})
        assert r.status_code == 200 and r.json()["estimates"][0]["weights_bytes"] > 0


# ---- suite files --------------------------------------------------------------------------------


def test_suite_files_only_from_the_suite_folder_and_never_echoed(db, tmp_path):
    suites = tmp_path / "suites"
    suites.mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text(SECRET_LINE + "\n")
    (suites / "link.yaml").symlink_to(outside)
    (suites / ".env").write_text(f"OPENAI_API_KEY={OWNER_KEY}\n")
    (suites / "shadow.yaml").write_text(SECRET_LINE + "\n" + SECRET_LINE + "\n")
    (suites / "nul.yaml").write_bytes(b"models: [openai:gpt-4o-mini]\x00\nprompts: [hi]\n")
    with serve_dashboard(db, suite_dir=suites) as (url, app), client(app) as c:
        def post(path: str) -> httpx.Response:
            r = c.post(f"{url}/api/suite-runs", json={"path": path})
            assert "SECRETHASH" not in r.text and OWNER_KEY not in r.text and "root:" not in r.text, r.text
            assert r.headers["content-type"] == "application/json"
            return r

        for path in (str(outside), "../outside.yaml", "link.yaml", "/etc/shadow", "/etc/passwd"):
            r = post(path)
            assert r.status_code in (400, 403), (path, r.status_code)
        assert post("link.yaml").status_code == 403 and "suite folder" in post("link.yaml").json()["detail"]
        assert post(".env").status_code == 400  # not a YAML file: never read
        r = post("shadow.yaml")
        assert r.status_code == 400 and "line 1" in r.json()["detail"] and "--dry-run" in r.json()["detail"]
        r = post("nul.yaml")
        assert r.status_code == 400 and "tryouts run" in r.json()["detail"]
        assert post("no-such.yaml").status_code == 404
        assert c.get(f"{url}/api/runs").json() == []  # nothing started


# ---- bounded work, no state on GET ----------------------------------------------------------------


@pytest.fixture
def labelled_run(replay_server, tmp_path, db):
    """A stored suite run whose second label holds U+202E (right-to-left override)."""
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""
models:
  - {{model: "{text_model(replay_server, 'Paris')}", label: plain}}
  - {{model: "{text_model(replay_server, 'Lyon')}", label: "evil\u202egnp.exe"}}
prompts: ["Capital {{{{n}}}}?"]
cases:
  - {{vars: {{n: 1}}}}
  - {{vars: {{n: 2}}}}
""", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "tryouts", "run", str(suite), "--db", str(db)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    from tryouts.store import Store

    return Store(str(db)).get_run("latest")["run"]["id"]


def test_get_requests_keep_no_state_and_cost_bounded_work(db, labelled_run):
    with serve_dashboard(db) as (url, app), client(app) as c:
        keys = {c.get(f"{url}/api/runs/{labelled_run}/arena/next").json()["pair"] for _ in range(30)}
        assert getattr(app.state, "pairs", {}) == {}  # thirty GETs stored nothing
        key = keys.pop()
        assert c.post(f"{url}/api/runs/{labelled_run}/arena/vote", json={"pair": key, "verdict": "a"}).status_code == 200
        assert c.post(f"{url}/api/runs/{labelled_run}/arena/vote", json={"pair": key, "verdict": "a"}).status_code == 404
        forged = key.rsplit(".", 1)[0] + ".0123456789abcdef0123456789abcdef"
        assert c.post(f"{url}/api/runs/{labelled_run}/arena/vote", json={"pair": forged, "verdict": "a"}).status_code == 404
        for path, params in ((f"/api/runs/{labelled_run}/rank", {"resamples": 5000}),
                             (f"/api/runs/{labelled_run}/results", {"offset": 10**19}),
                             (f"/api/runs/{labelled_run}/results", {"offset": 10**12}),
                             ("/api/recommend", {"context": 10**12}),
                             ("/api/memory", {"model": "llama-3.1-8b-instruct", "batch": 10**9})):
            r = c.get(url + path, params=params)
            assert 400 <= r.status_code < 500 and r.json()["detail"], (path, params, r.status_code)
        r = c.get(f"{url}/api/compare/nope/events", headers={"Last-Event-ID": "9" * 5000})
        assert r.status_code == 404


def test_labels_are_direction_isolated(db, labelled_run):
    with serve_dashboard(db) as (url, app), client(app) as c:
        html = c.get(f"{url}/runs/{labelled_run}").text
        assert "<bdi>evil\u202egnp.exe</bdi>" in html
        css = c.get(f"{url}/static/app.css").text
        assert "unicode-bidi: isolate" in css


# ---- the command --------------------------------------------------------------------------------


def test_ui_on_all_addresses_prints_real_addresses_and_the_known_token(db):
    port = free_port()
    env = dict(os.environ, TRYOUTS_UI_TOKEN="token-from-the-env-var")
    proc = subprocess.Popen([sys.executable, "-m", "tryouts", "ui", "--host", "0.0.0.0", "--port", str(port),
                             "--no-browser", "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("Tryouts dashboard: http://"), first
        assert "0.0.0.0" not in first and "?token=token-from-the-env-var" in first
    finally:  # SIGTERM right after the first line: once, it was lost while the server started and it served on
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("tryouts ui was still serving 30 s after SIGTERM")
