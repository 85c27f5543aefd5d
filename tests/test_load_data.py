"""What `tryouts load` sends: synthetic prompts of a token-length distribution counted with the real SmolLM2
tokenizer, output lengths, and the prompt tokens a server that sends no usage is credited with (checked
against llama.cpp's real server's own count)."""

from __future__ import annotations

import random
import statistics

import httpx
import pytest

from tryouts.errors import UsageError
from tryouts.load.prompts import Lengths, output_lengths, prompt_of, synthetic_prompts
from tryouts.tokens import load_counter
from tryouts.usecases.load import LoadSettings, run_load


def test_lengths_parse_draw_and_refuse():
    assert Lengths.parse("256", "--prompt-tokens") == Lengths(256)
    assert Lengths.parse("256:64:32:1024", "--prompt-tokens") == Lengths(256, 64.0, 32, 1024)
    rng = random.Random(1)
    draws = [Lengths(100, 30, 60, 140).draw(rng) for _ in range(2000)]
    assert min(draws) == 60 and max(draws) == 140 and 95 < statistics.mean(draws) < 105
    assert output_lengths(3, Lengths(5), seed=4) == [5, 5, 5]
    for bad in ("x", "0", "10:-1", "10:1:5:2", "1:2:3:4:5"):
        with pytest.raises(UsageError, match="--prompt-tokens"):
            Lengths.parse(bad, "--prompt-tokens")


def test_synthetic_prompts_have_exactly_their_tokens_by_the_real_tokenizer(smollm2):
    counter = load_counter(str(smollm2))
    made = synthetic_prompts(60, Lengths(120, 40, 16, 300), counter, seed=3)
    rng = random.Random(3)
    wanted = [Lengths(120, 40, 16, 300).draw(rng) for _ in range(60)]
    assert [k for _, k in made] == [counter.count(text) for text, _ in made]
    assert sum(k == w for (_, k), w in zip(made, wanted, strict=True)) >= 57  # exact, but for a cut between merges
    assert all(w - 2 <= k <= w for (_, k), w in zip(made, wanted, strict=True))
    assert len({text.split(":")[0] for text, _ in made}) == 60  # a distinct first token each: no shared prefix
    assert synthetic_prompts(5, Lengths(50), counter, seed=3) == synthetic_prompts(5, Lengths(50), counter, seed=3)
    assert prompt_of(counter.count, 1, 7, random.Random(0)).startswith("7:")


def test_a_point_of_synthetic_prompts_on_llamacpps_server_counts_what_the_server_counts(smollm2, smollm2_server_url):
    settings = LoadSettings(profile="synchronous", requests=3, prompt_tokens="64:8", output_tokens="6",
                            tokenizer=str(smollm2), ignore_eos=True)
    out = run_load("llamacpp-server:smollm2", settings, {"base_url": smollm2_server_url})
    assert out["completed"] == 3 and out["data"]["source"] == "synthetic"
    assert 48 <= out["data"]["prompt_tokens_min"] <= out["data"]["prompt_tokens_max"] <= 80
    assert out["input_tokens_counted"] and out["output_tokens_counted_as_chunks"]
    assert all(len(r.chunk_ns) == 6 for r in out["records"])  # ignore_eos: each answer runs to its max_tokens
    # the prompt tokens credited to a request are the server's own count of that prompt (template included)
    counter = load_counter(str(smollm2))
    text, _ = synthetic_prompts(1, Lengths(64, 8), counter, seed=0)[0]
    messages = [{"role": "user", "content": text}]
    served = httpx.post(f"{smollm2_server_url}/chat/completions", json={
        "model": "smollm2", "messages": messages, "max_tokens": 1}, timeout=60).json()
    assert served["usage"]["prompt_tokens"] == counter.count_prompt(messages) == out["records"][0].input_tokens


def test_prompt_tokens_need_a_tokenizer_and_no_suite(replay_server):
    ref = f"openai-compat:{replay_server}#tokens=2"
    with pytest.raises(UsageError, match="give --tokenizer"):
        run_load(ref, LoadSettings(requests=1, prompt_tokens="32"))
    with pytest.raises(UsageError, match="give one"):
        LoadSettings(requests=1, prompt_tokens="32", suite="s.yaml").check()


# ---- any model reference: the provider's own stream ---------------------------------------------------------


def test_a_native_api_is_loaded_through_its_provider_stamped_by_a_worker(replay_server, monkeypatch):
    from helpers import point_at_dialect

    point_at_dialect(replay_server, monkeypatch, "anthropic", "ANTHROPIC_BASE_URL", ANTHROPIC_API_KEY="sk-ant-test")
    out = run_load("anthropic:tokens=4;ttft_ms=30;itl_ms=5", LoadSettings(profile="concurrent", streams=2, requests=6))
    assert out["client"] == "provider" and out["completed"] == 6
    assert all(len(r.chunk_ns) == 4 and r.output_tokens == 4 for r in out["records"])
    # the server waits 30 ms, then 5 ms between chunks: a stamp never comes early, and a busy machine adds little
    assert all(30 <= r.ttft_ms() < 130 and 3 <= statistics.mean(r.itl_ms()) < 15 for r in out["records"])
    limited = run_load("anthropic:status=429;retry_after=4", LoadSettings(requests=2))
    assert limited["rate_limited"] == 2 and limited["records"][0].rate_limit == {"retry-after": "4"}
    with pytest.raises(UsageError, match="leave --ignore-eos out"):
        run_load("anthropic:tokens=2", LoadSettings(requests=1, ignore_eos=True))


def test_an_in_process_model_is_loaded_through_its_provider(demo_models):
    out = run_load(f"llamacpp:{demo_models.gguf_path}", LoadSettings(profile="concurrent", streams=2, requests=4,
                                                                     max_tokens=5))
    assert out["client"] == "provider" and out["completed"] == 4 and out["cost_usd"] == "0"
    assert all(1 <= len(r.chunk_ns) <= 5 and r.input_tokens for r in out["records"])
    assert out["mean_ttft_ms"] > 0 and out["max_concurrent_requests"] <= 2
