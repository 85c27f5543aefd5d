"""Issue 4's acceptance: one `tryouts compare` with one model per provider, every wire format replayed locally.

Each provider is pointed at the replay server through the same base-URL override a user would set for a
proxy; each must show text, input/output tokens, TTFT and tokens/s, and a cost where genai-prices knows
the model (unknown stays unknown, local servers cost 0).
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def provider_env(base: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Environment and (model reference, expected cost kind) pairs, for every provider that is installed."""
    root = base.removesuffix("/v1")
    env = {
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base,
        "ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": f"{root}/anthropic",
        "GEMINI_API_KEY": "g-test", "GEMINI_BASE_URL": f"{root}/gemini",
        "OLLAMA_HOST": f"{root}/ollama",
        "AZURE_OPENAI_API_KEY": "az-test", "AZURE_OPENAI_ENDPOINT": root,
        "MISTRAL_API_KEY": "m-test", "MISTRAL_BASE_URL": base,
        "GROQ_API_KEY": "g-test", "GROQ_BASE_URL": base,
        "LMSTUDIO_BASE_URL": base,
    }
    models = [
        ("openai:gpt-4o-mini", "priced"),
        ("anthropic:claude-3-5-haiku-latest", "priced"),
        ("gemini:gemini-2.5-flash", "priced"),
        ("ollama:llama3.1", "free"),
        ("azure:gpt-4o-mini", "priced"),
        ("mistral:mistral-small-latest", "priced"),
        ("groq:llama-3.1-8b-instant", "priced"),
        ("lmstudio:any-local-model", "free"),
        (f"openai-compat:{base}#my-model", "unknown"),
    ]
    from tryouts.providers import all_providers

    names = {p.name for p in all_providers()}
    if "cohere" in names:
        env.update({"COHERE_API_KEY": "co-test", "COHERE_BASE_URL": f"{root}/cohere"})
        models.append(("cohere:command-r", "priced"))
    if "replicate" in names:
        env.update({"REPLICATE_API_TOKEN": "r8-test", "REPLICATE_BASE_URL": f"{root}/replicate"})
        models.append(("replicate:meta/meta-llama-3-8b-instruct", "any"))
    if "bedrock" in names:
        env.update({"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
                    "BEDROCK_ENDPOINT_URL": f"{root}/bedrock"})
        models.append(("bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", "any"))
    return env, models


def test_one_compare_through_every_provider(replay_server, tmp_path):
    env, models = provider_env(replay_server)
    args = [sys.executable, "-m", "tryouts", "compare", "Explain pretrained models in one paragraph",
            "--db", str(tmp_path / "all.db"), "--format", "json", "--max-tokens", "32"]
    for ref, _ in models:
        args += ["-m", ref]
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert p.returncode == 0, p.stderr + p.stdout
    results = json.loads(p.stdout)["results"]
    assert [r["model"] for r in results] == [ref for ref, _ in models]
    for r, (ref, cost) in zip(results, models, strict=True):
        assert r["ok"] and r["text"], (ref, r["error"])
        assert r["input_tokens"] and r["output_tokens"], ref
        assert r["ttft_ms"] > 0 and r["output_tokens_per_s"] > 0, ref
        if cost == "priced":
            assert r["cost_source"] == "genai-prices" and r["cost_usd"] > 0, ref
        elif cost == "free":
            assert r["cost_usd"] == 0 and r["cost_source"] == "local", ref
        elif cost == "unknown":
            assert r["cost_usd"] is None, ref
    table = subprocess.run([sys.executable, "-m", "tryouts", "show", "latest", "--db", str(tmp_path / "all.db"),
                            "--no-outputs"], capture_output=True, text=True, env={**os.environ, **env}).stdout
    assert "anthropic:claude-3-5-haiku-latest" in table and "unknown" in table
