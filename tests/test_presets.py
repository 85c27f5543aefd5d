"""OpenAI-compatible presets: each is data, checked against the replay server like a user's proxy."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from tryouts.engine.execute import execute
from tryouts.providers import create_provider
from tryouts.providers.presets import PRESETS
from tryouts.types import GenParams, Message, ModelSpec, Request

REQ = Request(messages=[Message(role="user", content="hi")], params=GenParams(max_tokens=8))
PRICED = {  # a priced model for each paid preset (deepseek-chat by the catalog's newer sourced price)
    "mistral": "mistral-small-latest", "openrouter": "openai/gpt-4o-mini", "groq": "llama-3.1-8b-instant",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "deepseek": "deepseek-chat",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
}


def run(ref, options=None):
    provider = create_provider(ModelSpec.parse(ref, options or {}))

    async def go():
        await provider.load()
        try:
            return await execute(provider, REQ)
        finally:
            await provider.aclose()

    return asyncio.run(go()), provider


@pytest.mark.parametrize("name", sorted(PRICED))
def test_paid_preset_streams_and_prices(name, replay_server, monkeypatch):
    preset = PRESETS[name]
    monkeypatch.setenv(preset.key_env, "sk-test")
    monkeypatch.setenv(preset.base_url_env, replay_server)
    r, provider = run(f"{name}:{PRICED[name]}")
    assert r.ok, r.error
    assert r.text and r.usage.output_tokens and not r.usage.estimated
    assert r.cost.source == ("catalog (2025-09-29)" if name == "deepseek" else "genai-prices") and r.cost.total > 0
    assert provider.chat_url == f"{replay_server}/chat/completions"


@pytest.mark.parametrize("name", sorted(PRICED))
def test_paid_preset_without_key_names_it(name):
    from tryouts.errors import MissingKeyError

    with pytest.raises(MissingKeyError, match=PRESETS[name].key_env):
        run(f"{name}:{PRICED[name]}")


def test_azure_deployment_url_api_version_and_api_key_header(replay_server, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", replay_server.removesuffix("/v1"))
    r, provider = run("azure:gpt-4o-mini", {"api_version": "2025-01-01-preview"})
    assert r.ok, r.error
    assert provider.chat_url.endswith("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2025-01-01-preview")
    assert provider._headers["api-key"] == "azure-test-key" and "Authorization" not in provider._headers
    assert r.cost.source == "genai-prices"


def test_azure_without_endpoint_says_what_to_set(monkeypatch):
    from tryouts.errors import UsageError

    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(UsageError, match="AZURE_OPENAI_ENDPOINT"):
        create_provider(ModelSpec.parse("azure:my-deployment"))


@pytest.mark.parametrize("name", ["lmstudio", "vllm-server", "llamacpp-server"])
def test_local_server_presets_need_no_key_and_cost_nothing(name, replay_server, monkeypatch):
    monkeypatch.setenv(PRESETS[name].base_url_env, replay_server)
    r, _ = run(f"{name}:any-model")
    assert r.ok, r.error
    assert r.cost.total == 0 and r.cost.source == "local"


def test_groq_usage_inside_x_groq_is_read():
    provider = create_provider(ModelSpec.parse("groq:llama-3.1-8b-instant"))
    chunk = {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}}}
    events = provider._parse(json.dumps(chunk), 1)
    usage = next(e.usage for e in events if hasattr(e, "usage"))
    assert (usage.input_tokens, usage.output_tokens) == (12, 34)


def test_providers_command_probes_local_servers(replay_server):
    env = {**os.environ, "LMSTUDIO_BASE_URL": replay_server, "VLLM_BASE_URL": "http://127.0.0.1:9/v1"}
    out = subprocess.run([sys.executable, "-m", "tryouts", "providers", "-f", "json"], capture_output=True,
                         text=True, env=env, check=True).stdout
    by = {r["name"]: r for r in json.loads(out)}
    assert by["lmstudio"]["ready"] and replay_server in by["lmstudio"]["status"]
    assert not by["vllm-server"]["ready"] and "nothing listening" in by["vllm-server"]["status"]
    assert not by["groq"]["ready"] and "GROQ_API_KEY" in by["groq"]["status"]


def test_llamacpp_server_requests_ask_for_a_fresh_prompt_unless_told_otherwise():
    """Repeats are independent samples: llama.cpp's server is asked not to reuse the previous prompt's cached
    prefix (`cache_prompt: false`); `prefix_cache=true` or an explicit extra_body leaves it to the server."""
    def body(ref: str, **options):
        return create_provider(ModelSpec.parse(ref, {"base_url": "http://127.0.0.1:9/v1", **options})).body(REQ)

    assert body("llamacpp-server:m")["cache_prompt"] is False
    assert "cache_prompt" not in body("llamacpp-server:m", prefix_cache=True)
    assert body("llamacpp-server:m", extra_body={"cache_prompt": True})["cache_prompt"] is True
    assert "cache_prompt" not in body("openai:gpt-6-luna") and "cache_prompt" not in body("vllm-server:m")
