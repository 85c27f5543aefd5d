"""The dashboard's answers to an attacker's audit, replayed against a real uvicorn server on 127.0.0.1.

Model-name prefixes in any case meet the local-path rule; whether a file exists never changes an answer;
what one comparison request may make the server compute is bounded; numbers in ids are ASCII digits only; the
catalog page applies the API's caps. (The browser's cookie staying off shared host names: test_web_browser.py
and test_web_security.py.)
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from helpers import events_until_end, serve_dashboard, text_model

SECRET = "TOP-SECRET-README-CONTENT 42"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "web.db"


def client(app) -> httpx.Client:
    return httpx.Client(headers={"Authorization": f"Bearer {app.state.token}", "X-Tryouts-CSRF": app.state.csrf},
                        timeout=60)


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "README.md").write_text(f"# Secret model\n\n{SECRET}\n")
    (path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 128, "vocab_size": 1000}))
    return path




# ---- 3. a prefix in upper case is still a prefix ---------------------------------------------------


def test_upper_case_prefixes_get_no_local_path_past_the_check(db, tmp_path):
    folder = _model_folder(tmp_path / "secret-model")
    names = [f"HF:{folder}", f"Hf:{folder}", f"hF:{folder}", f" HF: {folder}", f"LLAMACPP:{folder}",
             "HF:/etc", "Hf:~", f"hf:HF:{folder}", f"HF:hf:{folder}"]
    with serve_dashboard(db) as (url, app), client(app) as c:
        for name in names:
            card = c.get(f"{url}/api/models/{quote(name, safe='/')}/card")
            mem = c.get(f"{url}/api/memory", params={"model": name})
            page = c.get(f"{url}/models/{quote(name, safe='/')}")
            for r in (card, mem, page):
                assert r.status_code == 400, (name, r.status_code, r.text[:300])
                assert SECRET not in r.text and '"folder"' not in r.text
            assert "--allow-local-paths" in card.json()["detail"] or "one prefix" in card.json()["detail"]
    policy = app.state.policy
    assert policy.check_name(" HF:org/name ") == "hf:org/name"  # what is checked is what is passed on
    assert policy.check_name("LlamaCpp:org/name") == "llamacpp:org/name"
    with serve_dashboard(db, allow_local_paths=True) as (url, app), client(app) as c:
        r = c.get(f"{url}/api/models/{quote(f'HF:{folder}', safe='/')}/card")
        assert r.status_code == 200 and r.json()["folder"] == str(folder)  # the owner allowed paths


# ---- 5. an existing path and a missing one get the same answer -------------------------------------


def test_whether_a_name_exists_on_disk_changes_no_answer(db, tmp_path, monkeypatch):
    work = tmp_path / "work"
    _model_folder(work / "present_dir" / "inner")
    (work / "present_dir" / "README.md").write_text(SECRET)
    monkeypatch.chdir(work)  # the server's working folder: relative names would be found there

    def answers(c, url, name):
        out = []
        for r in (c.get(f"{url}/api/models/{quote(name, safe='/')}/card"),
                  c.get(f"{url}/api/memory", params={"model": name}),
                  c.get(f"{url}/models/{quote(name, safe='/')}")):
            assert SECRET not in r.text and "LlamaForCausalLM" not in r.text, (name, r.text[:300])
            bare = name.split(":", 1)[-1]
            body = r.text
            for shown in (quote(name, safe=""), name, name.lower(), quote(bare, safe=""), bare):
                body = body.replace(shown, "NAME")
            out.append((r.status_code, body))
        return out

    with serve_dashboard(db) as (url, app), client(app) as c:
        for present, absent in (("present_dir", "absent_dir"), ("present_dir/inner", "present_dir/absent"),
                                ("hf:present_dir", "hf:absent_dir"), ("HF:present_dir/inner", "HF:absent/inner")):
            assert answers(c, url, present) == answers(c, url, absent), (present, absent)


# ---- 4. bounded work per comparison request --------------------------------------------------------


def test_compare_caps_the_lengths_that_set_the_scoring_work(db):
    from tryouts.web.api import MAX_ASSERTION, MAX_EXPECTED, MAX_EXPECTED_WORK, MAX_PROMPT

    base = {"prompt": "hi", "models": ["openai-compat:http://127.0.0.1:9/v1#m"], "max_tokens": 16}
    too_long = [
        ({"prompt": "p" * (MAX_PROMPT + 1)}, "prompt"),
        ({"system": "s" * (MAX_PROMPT + 1)}, "system"),
        ({"expected": "e" * (MAX_EXPECTED + 1)}, "expected"),
        ({"asserts": ["contains:" + "a" * MAX_ASSERTION]}, "asserts"),
        ({"expected": "e" * 2000, "max_tokens": MAX_EXPECTED_WORK // 2000 + 1}, "max_tokens"),
    ]
    with serve_dashboard(db, allow_options="base_url") as (url, app), client(app) as c:
        for change, field in too_long:
            r = c.post(f"{url}/api/compare", json={**base, **change})
            assert r.status_code == 422, (field, r.status_code)
            assert field in json.dumps(r.json()["detail"]), r.text[:500]
        assert app.state.live.runs == {}  # nothing started
        ok = {**base, "expected": "e" * 2000, "max_tokens": MAX_EXPECTED_WORK // 2000,
              "asserts": ["contains:" + "a" * (MAX_ASSERTION - 9)]}
        r = c.post(f"{url}/api/compare", json=ok)
        assert r.status_code == 200, r.text[:500]
        c.post(f"{url}/api/compare/{r.json()['key']}/stop")


# ---- 6. ids and event numbers: ASCII digits only ----------------------------------------------------


def test_non_ascii_digits_in_pair_keys_and_last_event_id_are_no_server_error(db, replay_server):
    models = [text_model(replay_server, "Paris is the capital"), text_model(replay_server, "Lyon, surely")]
    with serve_dashboard(db, allow_options="base_url") as (url, app), client(app) as c:
        r = c.post(f"{url}/api/compare", json={"prompt": "Capital of France?", "models": models})
        assert r.status_code == 200, r.text
        key, events = r.json()["key"], r.json()["events"]
        run_id = events_until_end(c, url, events)[-1]["run_id"]
        for last in ("²".encode("latin-1"), "١".encode(), "1²".encode(), b"\xb2\xb2", b"12345678901234567890"):
            got = events_until_end(c, url, events, headers={"Last-Event-ID": last})  # the whole history again, or the end
            assert got and got[-1]["type"] == "end"
        everything = events_until_end(c, url, events)
        assert len(events_until_end(c, url, events, headers={"Last-Event-ID": "1"})) == len(everything) - 2  # ASCII resumes
        pair = c.get(f"{url}/api/runs/{run_id}/arena/next").json()["pair"]
        a, b, sig = pair.split(".")
        for forged in (f"².{b}.{sig}", f"١.{b}.{sig}", f"{a}.١.{sig}", f"{a}.{b}.١{sig[1:]}", f"{a}.{b}.{sig[:-1]}é",
                       "².1.abc", "١.1.abc"):
            r = c.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": forged, "verdict": "a"})
            assert r.status_code == 404, (forged, r.status_code, r.text[:200])
            assert r.headers.get("content-security-policy")  # answered inside the guard, headers on
        assert c.post(f"{url}/api/runs/{run_id}/arena/vote", json={"pair": pair, "verdict": "a"}).status_code == 200
    assert key


# ---- 7. the catalog page has the API's caps ---------------------------------------------------------


def test_the_models_page_caps_context_as_the_api_does(db):
    with serve_dashboard(db) as (url, app), client(app) as c:
        assert c.get(f"{url}/api/models", params={"context": 10**11}).status_code == 422
        for context in (str(10**11), "9" * 30, "9" * 4000, "²", "0"):
            r = c.get(f"{url}/models", params={"context": context})
            assert r.status_code == 400, (context[:40], r.status_code)
            assert 'class="error"' in r.text and "context" in r.text
        assert c.get(f"{url}/models", params={"context": "8192"}).status_code == 200
