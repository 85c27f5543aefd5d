"""The run engine against the scripted replay server: retries, timeouts, cache, concurrency, resume."""

import asyncio
import random
import time
import uuid

import pytest

from tryouts.engine.run import Policy, cache_key, run_cells
from tryouts.store import Store
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request


def cells_for(refs, n_cases=1, repeats=1, prompt="hi", options=None):
    # the replay server stands in for remote APIs here: no warm-up request (it would count against fail_first)
    specs = [ModelSpec.parse(r, {"warmup": False} if options is None else options) for r in refs]
    return [
        Cell(m, c, r, specs[m], Request(messages=[Message(role="user", content=f"{prompt} {c}")], params=GenParams(max_tokens=16)))
        for r in range(repeats) for c in range(n_cases) for m in range(len(specs))
    ]


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "engine.db")


def run(store, cells, policy=None, **kw):
    run_id = store.create_run("suite", sorted({c.spec.ref for c in cells}), {})
    t = time.perf_counter()
    progress = asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=policy or Policy(), **kw))
    return run_id, progress, time.perf_counter() - t


def script(base, s):
    return f"openai-compat:{base}#{s};id={uuid.uuid4().hex[:8]}"  # unique: fail_first counts per script


def test_429_is_retried_honouring_retry_after(replay_server, store):
    cells = cells_for([script(replay_server, "fail_first=2;status=429;retry_after=1;tokens=3")])
    run_id, progress, elapsed = run(store, cells, Policy(max_retries=3, backoff_s=0.01))
    (r,) = store.get_run(run_id)["results"]
    assert r["ok"] and r["attempts"] == 3 and progress.retries == 2
    assert elapsed >= 2.0  # two waits of Retry-After: 1 s, not the 10 ms backoff


def test_exponential_backoff_without_retry_after(replay_server, store):
    random.seed(0)
    cells = cells_for([script(replay_server, "fail_first=2;status=500")])
    _, _, elapsed = run(store, cells, Policy(max_retries=2, backoff_s=0.2))
    assert elapsed >= 0.2 * 0.5 + 0.4 * 0.5  # jittered 0.2 s then 0.4 s, each at least half
    p = Policy(backoff_s=1, max_backoff_s=5)
    waits = [p.backoff(n, None) for n in range(1, 8)]
    assert all(0.5 * min(5, 2 ** (n - 1)) <= w <= min(5, 2 ** (n - 1)) for n, w in zip(range(1, 8), waits, strict=True))


def test_retries_are_bounded_and_keep_the_last_error(replay_server, store):
    cells = cells_for([script(replay_server, "status=503")])
    run_id, _, _ = run(store, cells, Policy(max_retries=2, backoff_s=0.01))
    (r,) = store.get_run(run_id)["results"]
    assert not r["ok"] and r["attempts"] == 3 and r["error_kind"] == "server"


def test_auth_errors_are_not_retried(replay_server, store):
    cells = cells_for([script(replay_server, "status=401")])
    run_id, progress, _ = run(store, cells, Policy(max_retries=3, backoff_s=0.01))
    (r,) = store.get_run(run_id)["results"]
    assert r["attempts"] == 1 and r["error_kind"] == "auth" and progress.retries == 0


def test_dropped_stream_is_retried(replay_server, store):
    cells = cells_for([script(replay_server, "fail_first=1;cut_after=2;tokens=5")])
    run_id, _, _ = run(store, cells, Policy(max_retries=2, backoff_s=0.01))
    (r,) = store.get_run(run_id)["results"]
    assert r["ok"] and r["attempts"] == 2 and r["text"] == " w0 w1 w2 w3 w4"


def test_first_token_timeout(replay_server, store):
    cells = cells_for([script(replay_server, "ttft_ms=20000;tokens=2")])
    run_id, _, elapsed = run(store, cells, Policy(max_retries=0, first_token_timeout_s=0.3))
    (r,) = store.get_run(run_id)["results"]
    assert not r["ok"] and r["error_kind"] == "timeout" and "first token" in r["error"]
    assert elapsed < 10  # gave up long before the server's first token (20 s), with room for a loaded machine


def test_cache_serves_a_repeat_run_and_is_flagged(replay_server, store):
    ref = f"openai-compat:{replay_server}#tokens=4"
    first_id, _, _ = run(store, cells_for([ref], n_cases=3))
    second_id, progress, _ = run(store, cells_for([ref], n_cases=3))
    fresh, cached = store.get_run(first_id)["results"], store.get_run(second_id)["results"]
    assert not any(r["cached"] for r in fresh)
    assert all(r["cached"] and r["ok"] for r in cached) and progress.cached[0] == 3
    assert [r["text"] for r in cached] == [r["text"] for r in fresh]
    assert all(r["ttft_ms"] is None and r["e2e_ms"] is None for r in cached)  # never a timing sample
    assert all(r["cost_source"] == "cache" for r in cached)
    # repeats are independent samples: with the cache not allowed, nothing is served from it
    third_id, _, _ = run(store, cells_for([ref], n_cases=3), allow_cache=False)
    assert not any(r["cached"] for r in store.get_run(third_id)["results"])
    # and --no-cache neither reads nor writes
    run(store, cells_for([f"{ref};prompt_tokens=3"], n_cases=1), Policy(use_cache=False))
    fifth_id, _, _ = run(store, cells_for([f"{ref};prompt_tokens=3"], n_cases=1))
    assert not store.get_run(fifth_id)["results"][0]["cached"]


def test_cache_key_covers_what_changes_the_answer():
    spec = ModelSpec.parse("openai:gpt-4o-mini")
    req = Request(messages=[Message(role="user", content="a")])
    assert cache_key(spec, req) == cache_key(ModelSpec.parse("openai:gpt-4o-mini", {"price": "1,2"}), req)
    assert cache_key(spec, req) != cache_key(ModelSpec.parse("openai:gpt-4o"), req)
    assert cache_key(spec, req) != cache_key(spec, Request(messages=[Message(role="user", content="b")]))
    assert cache_key(spec, req) != cache_key(spec, Request(messages=req.messages, params=GenParams(temperature=1)))


def test_concurrency_limit_per_provider_shows_as_queue_time(replay_server, store):
    cells = cells_for([f"openai-compat:{replay_server}#ttft_ms=200;tokens=1"], n_cases=6)
    run_id, _, elapsed = run(store, cells, Policy(concurrency={"openai-compat": 2}, use_cache=False))
    results = store.get_run(run_id)["results"]
    assert elapsed >= 0.6  # 6 cells, 2 at a time, 200 ms each
    waits = sorted(r["queue_ms"] for r in results)
    assert waits[:2] == pytest.approx([0, 0], abs=5) and waits[-1] >= 390  # the last pair waited for two others


def test_skip_runs_only_missing_cells_and_one_row_per_cell(replay_server, store):
    ref = f"openai-compat:{replay_server}#tokens=2"
    cells = cells_for([ref], n_cases=4, repeats=2)
    run_id = store.create_run("suite", [ref], {})
    done = {(0, 0, 0), (0, 2, 1)}
    asyncio.run(run_cells([c for c in cells if (c.model_index, c.case_index, c.repeat_index) in done],
                          store=store, run_id=run_id, policy=Policy(use_cache=False)))
    asyncio.run(run_cells(cells, store=store, run_id=run_id, policy=Policy(use_cache=False),
                          skip=store.done_cells(run_id)))
    assert store.done_cells(run_id) == {(c.model_index, c.case_index, c.repeat_index) for c in cells}
    assert len(store.get_run(run_id)["results"]) == 8


def test_missing_key_fails_only_that_models_cells(replay_server, store):
    cells = cells_for(["openai:gpt-4o-mini", f"openai-compat:{replay_server}#tokens=2"], n_cases=3)
    run_id, progress, _ = run(store, cells)
    results = store.get_run(run_id)["results"]
    api = [r for r in results if r["model"] == "openai:gpt-4o-mini"]
    assert len(api) == 3 and all(r["error_kind"] == "missing_key" for r in api)
    assert all(r["ok"] for r in results if r["model"] != "openai:gpt-4o-mini")
    assert progress.failed[0] == 3 and progress.failed[1] == 0


def test_local_runtimes_are_imported_before_any_request_is_timed(replay_server):
    """torch / llama_cpp load their libraries holding the interpreter lock (the event loop stalls ~0.4 s): a
    run with a local model imports them before any t0; an API-only run never imports them."""
    import subprocess
    import sys

    code = f"""
import asyncio, sys
from tryouts.usecases.compare import compare
seen = {{}}
def on_event(e):
    if type(e).__name__ == "CellStarted":
        seen[e.model_index] = {{"torch": "torch" in sys.modules, "llama_cpp": "llama_cpp" in sys.modules}}
api = "openai-compat:{replay_server}#tokens=2"
asyncio.run(compare("hi", [api], on_event=on_event))
api_only = seen[0]
asyncio.run(compare("hi", [api, "hf:/no/such/model", "llamacpp:/no/such.gguf"], on_event=on_event))
print(api_only, seen[0])
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ("{'torch': False, 'llama_cpp': False} {'torch': True, 'llama_cpp': True}")
