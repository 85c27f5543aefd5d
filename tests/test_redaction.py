"""Issue 12, part 2: keys never reach the store, the exports, the dashboard API or the screen.

Every provider that takes a key is pointed at the replay server with a distinct planted key (groq's only in
keys.json) and a script whose error echoes the request's credentials back (``echo_auth=1``), as a careless
server or proxy does. One ``tryouts compare`` runs them all; then ``show``, every export format and the
dashboard API read the run back. No planted secret may appear anywhere, nor in the database file's bytes.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys

import httpx

from helpers import serve_dashboard
from tryouts import errors
from tryouts.keys import set_key
from tryouts.providers import all_providers
from tryouts.redact import redact, redact_options

SCRIPT = "status=401;echo_auth=1;tokens=2"
#: OpenAI-compatible presets without a base-URL variable: the URL is in the reference
NO_URL_VAR = {"openai-compat"}
#: providers that take no key at all (in process, or Ollama with none)
KEYLESS = {"vllm", "hf", "llamacpp", "ollama"}
#: the provider whose key is only in keys.json (the others' are in the environment)
KEY_ONLY_IN_FILE = "groq"


def _planted(name: str) -> str:
    """A key with no recognisable shape: only the registry of keys read can catch it."""
    return f"planted{name.replace('-', '')}{secrets.token_hex(6)}"


def _setup(replay_server: str) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(environment, model references, planted secrets by where they went) for every provider with a key."""
    root = replay_server.removesuffix("/v1")
    env: dict[str, str] = {}
    refs: list[str] = []
    planted: dict[str, str] = {}
    dialect = {"anthropic": "anthropic", "gemini": "gemini", "cohere": "cohere", "replicate": "replicate"}
    for info in all_providers():
        if info.name in KEYLESS or info.local:
            continue
        if info.name == "bedrock":
            key_id = "AKIA" + secrets.token_hex(8).upper()
            planted["bedrock AWS_ACCESS_KEY_ID"] = key_id
            planted["bedrock AWS_SECRET_ACCESS_KEY"] = "awsSecret" + secrets.token_hex(12)
            env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": planted["bedrock AWS_SECRET_ACCESS_KEY"],
                        "AWS_REGION": "us-east-1", "BEDROCK_ENDPOINT_URL": f"{root}/bedrock"})
            refs.append(f"bedrock:{SCRIPT}")
            continue
        key_var = next(v for v in info.env if v.endswith(("_KEY", "_TOKEN")))
        url_var = next((v for v in info.env if v.endswith(("_BASE_URL", "_ENDPOINT"))), None)
        key = _planted(info.name)
        planted[f"{info.name} {key_var}"] = key
        if info.name == KEY_ONLY_IN_FILE:
            set_key(key_var, key)  # keys.json (mode 600) in this test's own config directory
        else:
            env[key_var] = key
        if info.name in dialect:
            env[url_var] = f"{root}/{dialect[info.name]}"
            model = f"replay/{SCRIPT}" if info.name == "replicate" else SCRIPT
            refs.append(f"{info.name}:{model}")
        elif info.name == "azure":
            env[url_var] = root
            refs.append(f"azure:{SCRIPT}")
        elif info.name in NO_URL_VAR:
            # credentials written into the base URL: user-info in the reference itself
            password = "urlPass" + secrets.token_hex(6)
            planted["openai-compat URL password"] = password
            planted["openai-compat URL Basic"] = base64.b64encode(f"alice:{password}".encode()).decode()
            host = replay_server.removeprefix("http://")
            refs.append(f"openai-compat:http://alice:{password}@{host}#{SCRIPT}")
        else:
            env[url_var] = replay_server
            refs.append(f"{info.name}:{SCRIPT}")
    assert planted[f"{KEY_ONLY_IN_FILE} GROQ_API_KEY"] not in env.values()
    return env, refs, planted


def _run(args: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> tuple[str, str]:
    """``tryouts ARGS`` in a subprocess: (stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=300)
    assert p.returncode in ok, p.stdout + p.stderr
    return p.stdout, p.stderr


def _assert_clean(where: str, text: str, planted: dict[str, str]) -> None:
    leaked = [name for name, secret in planted.items() if secret in text]
    assert not leaked, f"{where} shows {leaked}"


def test_no_planted_key_reaches_the_store_show_exports_dashboard_or_screen(replay_server, tmp_path):
    env, refs, planted = _setup(replay_server)
    db = tmp_path / "runs.db"
    # a base_url with user:pass given as an option (its Basic auth replaces the key), secrets in extra_body, headers
    url_password = "optPass" + secrets.token_hex(6)
    body_secret = "bodySecret" + secrets.token_hex(6)
    header_secret = "headerSecret" + secrets.token_hex(6)
    planted.update({"base_url option password": url_password, "extra_body client_secret": body_secret,
                    "headers option value": header_secret})
    refs.append(f"openai:{SCRIPT};id=url-userinfo")  # a second OpenAI model, for the options below
    i_openai = len(refs)
    host = replay_server.removeprefix("http://")
    options = [
        "-o", f"{i_openai}:base_url=http://bob:{url_password}@{host}",
        "-o", f'{i_openai}:extra_body={{"client_secret": "{body_secret}", "metadata": {{"note": "fine"}}}}',
        "-o", f'{i_openai}:headers={{"X-Proxy-Password": "{header_secret}"}}',
    ]
    args = ["compare", "Say hi", "--db", str(db), "--max-tokens", "8"]
    for ref in refs:
        args += ["-m", ref]
    screens: dict[str, str] = {}
    screens["compare (table)"], screens["compare (table) stderr"] = _run([*args, *options], env, ok=(2,))
    screens["compare (json)"], screens["compare (json) stderr"] = _run([*args, *options, "--format", "json"], env,
                                                                       ok=(2,))
    run = json.loads(screens["compare (json)"])
    run_id = run["run"]["id"]
    screens["show (json)"] = "\n".join(_run(["show", run_id, "--format", "json", "--db", str(db)], env))
    screens["show (table)"] = "\n".join(_run(["show", run_id, "--db", str(db)], env))
    for fmt in ("csv", "json", "jsonl", "html"):
        out = tmp_path / f"export.{fmt}"
        screens[f"export {fmt} (screen)"] = "\n".join(
            _run(["export", run_id, "--format", fmt, "--output", str(out), "--db", str(db)], env))
        screens[f"export {fmt}"] = out.read_text()
    with serve_dashboard(db) as (url, _app):
        for path in ("/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/results"):
            screens[f"GET {path}"] = httpx.get(url + path, timeout=30).text
    for where, text in screens.items():
        _assert_clean(where, text, planted)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("runs.db"))
    leaked = [name for name, secret in planted.items() if secret.encode() in raw]
    assert not leaked, f"the database file holds {leaked}"
    results = run["results"]
    assert [r["ok"] for r in results] == [False] * len(refs)
    # the servers did echo the credentials: each error shows where they were masked
    echoed = [r["model"] for r in results if "***" not in (r["error"] or "")]
    assert not echoed, f"no masked credential in the errors of {echoed}"
    assert all(r["error_kind"] in ("auth", "bad_request") for r in results), [r["error"] for r in results]
    opts = results[i_openai - 1]["options"]
    assert opts["headers"] == "***" and opts["extra_body"]["client_secret"] == "***"
    assert opts["extra_body"]["metadata"] == {"note": "fine"} and opts["base_url"].startswith("http://***@")
    compat = next(r for r in results if r["provider"] == "openai-compat")
    assert compat["model"].startswith("openai-compat:http://***@")


def test_every_error_message_is_redacted_where_it_is_made():
    set_key("MISTRAL_API_KEY", "mistralPlanted0123456789")
    from tryouts.keys import get_key

    assert get_key("MISTRAL_API_KEY") == "mistralPlanted0123456789"  # reading it registers it
    exc = errors.AuthError("Mistral said: invalid key mistralPlanted0123456789 (x-api-key: zz9secret99; "
                           "https://u:pw12345678@h/v1?key=AIzaSyFAKEfake0123456789abcdefghijklm)")
    assert "mistralPlanted" not in str(exc) and "zz9secret99" not in exc.message
    assert "pw12345678" not in exc.message and "AIzaSy" not in exc.message
    assert "https://***@h/v1?key=***" in exc.message and exc.args == (exc.message,)
    # prose stays readable: the names of options and variables are not secrets
    hint = "GROQ_API_KEY is not set: export GROQ_API_KEY=<your key>; or pass -o api_key_env=MY_VAR, max_tokens=5"
    assert redact(hint) == hint


def test_redact_options_keeps_what_is_not_a_secret():
    opts = {"base_url": "https://me:p4ssw0rd-x@proxy/v1", "api_key_env": "MY_KEY", "tokenizer": "gpt2",
            "one_token_per_chunk": True, "api_key": "k-123", "headers": {"X-Title": "t"},
            "extra_body": {"clientSecret": "abc", "nested": [{"password": "p"}, "Bearer Ab1234567890"], "seed": 3}}
    assert redact_options(opts) == {
        "base_url": "https://***@proxy/v1", "api_key_env": "MY_KEY", "tokenizer": "gpt2", "one_token_per_chunk": True,
        "api_key": "***", "headers": "***",
        "extra_body": {"clientSecret": "***", "nested": [{"password": "***"}, "Bearer ***"], "seed": 3},
    }


def test_the_replay_server_really_echoes_credentials(replay_server):
    """The echo the main test relies on: without redaction the key would be in the error body."""
    root = replay_server.removesuffix("/v1")
    r = httpx.post(f"{root}/anthropic/v1/messages", headers={"x-api-key": "echoMe12345678", "anthropic-version": "x"},
                   json={"model": SCRIPT, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401 and "echoMe12345678" in r.text
    r = httpx.post(f"{replay_server}/chat/completions", headers={"Authorization": "Bearer echoMe87654321"},
                   json={"model": SCRIPT, "messages": []})
    assert r.status_code == 401 and "echoMe87654321" in r.json()["error"]["message"]
