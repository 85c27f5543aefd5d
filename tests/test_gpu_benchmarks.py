"""Issue 19, the parts a CPU can check: the hf route's static KV cache (and the compile wiring), and the
benchmarks/gpu scripts on tiny models (their GPU figures come from benchmarks/gpu/run_all.sh on a GPU)."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tryouts import errors
from tryouts.providers import create_provider, hf_fast
from tryouts.types import Delta, GenParams, Message, ModelSpec, Request, Sent

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
QUESTIONS = ["What is a model?", "Hi", "Explain quantization in detail please"]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _script(name: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU / name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _req(q: str, n: int = 12) -> Request:
    return Request(messages=[Message(role="user", content=q)], params=GenParams(max_tokens=n, temperature=0))


async def _answers(folder, options, batched: bool = False):
    p = create_provider(ModelSpec.parse(f"hf:{folder}", options))
    await p.load()
    p.static_len = getattr(p.model, "_previous_max_cache_length", None)  # set by generate with a static cache
    try:
        if batched:
            evs = await p.run_batch([_req(q) for q in QUESTIONS])
            return p, ["".join(e.text for e in ev if isinstance(e, Delta)) for ev in evs]
        out = []
        for q in QUESTIONS:
            out.append("".join([e.text async for e in p.stream(_req(q)) if isinstance(e, Delta)]))
        return p, out
    finally:
        await p.aclose()


@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_static_cache_gives_the_dynamic_cache_greedy_tokens(demo_models, batched):
    opts = {"device": "cpu", "batch_size": 3} if batched else {"device": "cpu"}
    dyn_p, dynamic = asyncio.run(_answers(demo_models.hf_dir, {**opts, "cache": "dynamic"}, batched))
    sta_p, static = asyncio.run(_answers(demo_models.hf_dir, {**opts, "cache": "static", "max_cache_len": 256},
                                         batched))
    assert dyn_p.plan == hf_fast.FastPlan() and dyn_p.static_len is None
    assert sta_p.static_len == 256  # the warm-up in load() ran generate on the static cache
    assert sta_p.plan == hf_fast.FastPlan(cache="static", compile=False, max_cache_len=256)
    assert all(dynamic) and static == dynamic


def test_cpu_defaults_and_option_checks(demo_models):
    p = create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", {"device": "cpu"}))
    asyncio.run(p.load())
    assert p.plan == hf_fast.FastPlan()  # CPU: dynamic cache, no compile
    asyncio.run(p.aclose())

    class Model:  # CUDA defaults, decided from the device name (no GPU needed)
        class config:
            max_position_embeddings = 131072

    cuda = hf_fast.plan_for("hf:x", {}, "cuda:0", Model())
    assert cuda == hf_fast.FastPlan(cache="static", compile=True, max_cache_len=hf_fast.DEFAULT_CACHE_LEN)
    assert "compile_config" in cuda.generate_kwargs() and cuda.generate_kwargs()["cache_implementation"] == "static"
    no_compile = hf_fast.plan_for("hf:x", {"compile": "false"}, "cuda", Model())
    assert no_compile.generate_kwargs()["disable_compile"] is True
    assert hf_fast.plan_for("hf:x", {"cache": "dynamic"}, "cuda", Model()).generate_kwargs() == {}
    for bad, match in (({"cache": "paged"}, "static, dynamic"), ({"cache": "dynamic", "compile": True}, "cache=static"),
                       ({"compile": "maybe"}, "true or false"), ({"max_cache_len": 0}, "whole number")):
        with pytest.raises(errors.UsageError, match=match):
            create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", bad))


def test_static_cache_too_short_for_the_prompt_is_a_clear_error(demo_models):
    async def go():
        p = create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", {"cache": "static", "max_cache_len": 4,
                                                                       "warmup": False}))
        await p.load()
        try:
            return [e async for e in p.stream(_req("a rather long question about models"))]
        finally:
            await p.aclose()

    with pytest.raises(errors.UsageError, match="max_cache_len"):
        asyncio.run(go())


def test_compile_happens_in_load_not_in_ttft(demo_models, monkeypatch):
    """compile=true on CPU (with torch.compile's eager backend, so the test stays fast): generate compiles the
    model's forward during load(), warming up batch 1 and the batch size; later requests start after it."""
    from transformers import CompileConfig

    def quick():
        cfg = CompileConfig(backend="eager", mode=None)
        cfg._compile_all_devices = True
        return cfg

    monkeypatch.setattr(hf_fast, "compile_config", quick)
    calls = []
    real = hf_fast.warm_up
    monkeypatch.setattr(hf_fast, "warm_up", lambda p, b: (calls.append(b), real(p, b)))

    async def go():
        p = create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", {"device": "cpu", "cache": "static",
                                                                       "compile": True, "batch_size": 2,
                                                                       "max_cache_len": 128}))
        await p.load()
        loaded = hf_fast.is_compiled(p.model)
        events = [e async for e in p.stream(_req("Hi", 4))]
        await p.aclose()
        return loaded, events

    compiled_in_load, events = asyncio.run(go())
    assert calls == [2] and compiled_in_load
    assert isinstance(events[0], Sent) and any(isinstance(e, Delta) for e in events)


def test_decode_roofline_tiny_on_cpu():
    p = _script("decode_roofline.py", "--tiny", "--arch", "llama3.1-8b", "--batches", "1,2", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["benchmark"] == "decode_roofline" and data["env"]["device"] == "cpu"
    bw = data["bandwidth_bytes_per_s"]
    assert bw > 0
    assert {(r["mode"], r["batch"]) for r in data["runs"]} == {("dynamic", 1), ("dynamic", 2), ("static", 1),
                                                                ("static", 2)}
    for r in data["runs"]:
        assert r["tokens_per_s"] > 0 and r["weight_bytes_per_token"] > 0 and r["steps"] == data["new_tokens"]
        assert r["roofline_tokens_per_s"] == pytest.approx(bw / r["weight_bytes_per_token"])
        assert r["roofline_pct"] == pytest.approx(100 * r["batch"] * r["tokens_per_s"] / r["roofline_tokens_per_s"])
        assert r["estimate"]["total_bytes"] > r["estimate"]["weights_bytes"] > 0


def test_memory_vs_estimate_reads_the_runs(tmp_path):
    sys.path.insert(0, str(GPU))
    try:
        import memory_vs_estimate
    finally:
        sys.path.remove(str(GPU))
    row = memory_vs_estimate.compare({"arch": "a", "batch": 1, "peak_allocated_bytes": 100,
                                      "estimate": {"total_bytes": 110, "weights_bytes": 80, "kv_bytes": 10}})
    assert row["total_error"] == pytest.approx(0.10) and row["within_target"]
    assert memory_vs_estimate.compare({"estimate": {"total_bytes": 1}})["status"].startswith("not measured")
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"benchmark": "decode_roofline", "runs": [
        {"arch": "a", "mode": "dynamic", "batch": 1, "estimate": {"total_bytes": 5, "weights_bytes": 1, "kv_bytes": 1}}]}))
    p = _script("memory_vs_estimate.py", str(f), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["rows"][0]["status"].startswith("not measured")


@pytest.mark.parametrize("name", ["quantized.py", "vllm_inproc.py"])
def test_cuda_only_scripts_exit_clearly_without_a_gpu(name):
    if _cuda():
        pytest.skip("a CUDA GPU is here: run benchmarks/gpu/run_all.sh instead")
    p = _script(name, "--tiny", timeout=60)
    assert p.returncode == 2
    assert "needs a CUDA GPU" in p.stderr and "Traceback" not in p.stderr


def test_run_all_refuses_without_a_gpu(tmp_path):
    if _cuda():
        pytest.skip("a CUDA GPU is here")
    p = subprocess.run(["bash", str(GPU / "run_all.sh"), str(tmp_path / "out"), sys.executable],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "needs a CUDA GPU" in p.stdout
