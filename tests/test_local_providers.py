"""The in-process routes (hf, llamacpp) and llama.cpp's server, on the tiny demo models."""

import asyncio

import pytest

from tryouts import errors
from tryouts.engine.execute import execute
from tryouts.providers import create_provider
from tryouts.providers.hf import IncrementalDetokenizer
from tryouts.types import GenParams, Message, ModelSpec, Request
from tryouts.usecases.compare import compare

pytestmark = pytest.mark.slow

REQ = Request(messages=[Message(role="user", content="Explain pretrained models.")], params=GenParams(max_tokens=20, temperature=0))


async def run_one(spec: ModelSpec, request: Request = REQ):
    provider = create_provider(spec)
    load_ms = await provider.load()
    try:
        return await execute(provider, request, load_ms=load_ms, tokenizer_ref=spec.options.get("tokenizer"))
    finally:
        await provider.aclose()


@pytest.fixture(scope="module")
def local_results(demo_models):
    async def both():
        hf = await run_one(ModelSpec.parse(f"hf:{demo_models.hf_dir}"))
        # an F32 KV cache makes llama.cpp match the fp32 transformers model token for token
        gguf = await run_one(ModelSpec.parse(f"llamacpp:{demo_models.gguf_path}", {"kv_type": "f32"}))
        return hf, gguf

    return asyncio.run(both())


@pytest.mark.parametrize("which", [0, 1], ids=["hf", "llamacpp"])
def test_local_route_measures_and_counts_exactly(local_results, which):
    r = local_results[which]
    assert r.ok, r.error
    assert r.text
    assert r.usage.output_tokens == 20 and not r.usage.estimated and r.usage.method == "exact"
    assert r.usage.input_tokens > 5
    assert r.finish_reason == "length"
    t = r.timing
    assert t.load_ms > 0
    assert 0 < t.ttft_ms <= t.e2e_ms
    assert t.tpot_ms > 0 and t.output_tokens_per_s == pytest.approx(1000 / t.tpot_ms)
    assert t.n_chunks >= 1 and len(t.itl_ms) == t.n_chunks - 1
    assert r.cost.total == 0 and r.cost.source == "local"


def test_same_weights_same_greedy_text_in_both_backends(local_results):
    hf, gguf = local_results
    assert hf.text == gguf.text


def test_openai_compat_against_llamacpp_server_without_usage(demo_models, llamacpp_server_url):
    spec = ModelSpec.parse(f"openai-compat:{llamacpp_server_url}#tiny", {"tokenizer": str(demo_models.hf_dir)})
    r = asyncio.run(run_one(spec))
    assert r.ok, r.error
    assert r.text
    # llama.cpp's server sends no usage when streaming: counted with the model's own tokenizer, marked
    assert r.usage.estimated and r.usage.method == f"tokenizer+template:{demo_models.hf_dir}"
    assert r.usage.output_tokens > 0
    assert 0 < r.timing.ttft_ms <= r.timing.e2e_ms
    assert r.cost.total is None and r.cost.source == "unknown"  # no price known: unknown, not 0


def test_openai_compat_without_tokenizer_uses_the_stated_fallback(llamacpp_server_url):
    r = asyncio.run(run_one(ModelSpec.parse(f"openai-compat:{llamacpp_server_url}#tiny")))
    assert r.ok and r.usage.estimated and r.usage.method == "fallback:chars/4"


def test_dead_server_is_a_clear_error():
    from tryouts.demo.server import free_port

    r = asyncio.run(run_one(ModelSpec.parse(f"openai-compat:http://127.0.0.1:{free_port()}/v1#x")))
    assert not r.ok and r.error_kind == "connect"
    assert "Cannot connect" in r.error and "server running" in r.error


def test_compare_runs_local_models_one_at_a_time(demo_models, tmp_path):
    from tryouts.store import Store

    store = Store(tmp_path / "r.db")
    out = asyncio.run(compare(
        "Hello", [f"hf:{demo_models.hf_dir}", f"llamacpp:{demo_models.gguf_path}", "openai:gpt-4o-mini"],
        params=GenParams(max_tokens=8, temperature=0), store=store,
    ))
    hf, gguf, api = out.results
    assert hf.ok and gguf.ok and not api.ok
    assert api.error_kind == "missing_key" and "OPENAI_API_KEY" in api.error
    # the second local model waited for the first: its queue time covers the first one's work
    waited = max(hf.timing.queue_ms, gguf.timing.queue_ms)
    assert waited >= min(hf.timing.e2e_ms, gguf.timing.e2e_ms)
    stored = store.get_run(out.run_id)
    assert [r["model"] for r in stored["results"]] == [r.model for r in out.results]
    assert stored["run"]["status"] == "partial"


def test_hf_errors(tmp_path):
    with pytest.raises(errors.ModelNotFoundError, match="No model folder"):
        create_provider(ModelSpec.parse(f"hf:{tmp_path}/missing"))
    with pytest.raises(errors.UsageError, match="dtype"):
        create_provider(ModelSpec.parse(f"hf:{tmp_path}", {"dtype": "int3"}))
    provider = create_provider(ModelSpec.parse("hf:no-such-org/no-such-model-xyz"))
    with pytest.raises(errors.ModelNotFoundError, match="hf download"):
        asyncio.run(provider.load())


def test_llamacpp_errors(tmp_path):
    with pytest.raises(errors.ModelNotFoundError, match="No GGUF file"):
        create_provider(ModelSpec.parse(f"llamacpp:{tmp_path}/none.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    provider = create_provider(ModelSpec.parse(f"llamacpp:{junk}"))
    with pytest.raises(errors.ModelNotFoundError, match="could not load"):
        asyncio.run(provider.load())


def test_incremental_detokenizer_never_splits_characters(demo_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo_models.hf_dir)
    text = "Quantization héllo € 日本語 models"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tok)
    pieces = [detok.add([i]) for i in ids]
    assert "".join(pieces) == tok.decode(ids)
    assert not any("\ufffd" in p for p in pieces)


def test_hf_batching_keeps_per_request_results_and_timings(demo_models, tmp_path):

    from tryouts.engine.run import Policy, run_cells
    from tryouts.store import Store
    from tryouts.types import Cell

    questions = ["What is a model?", "Hi", "Explain quantization in detail please", "Why?", "Name three", "Ok"]

    def cells(options):
        spec = ModelSpec.parse(f"hf:{demo_models.hf_dir}", options)
        return [Cell(0, i, 0, spec, Request(messages=[Message(role="user", content=q)],
                                           params=GenParams(max_tokens=12, temperature=0)))
                for i, q in enumerate(questions)]

    store = Store(tmp_path / "b.db")
    runs = {}
    for name, options in (("single", {}), ("batched", {"batch_size": 4})):
        run_id = store.create_run("suite", ["hf"], {})
        asyncio.run(run_cells(cells(options), store=store, run_id=run_id, policy=Policy(use_cache=False)))
        runs[name] = store.get_run(run_id)["results"]
    single, batched = runs["single"], runs["batched"]
    assert len(batched) == 6 and all(r["ok"] for r in batched)
    for a, b in zip(single, batched, strict=True):
        assert b["output_tokens"] == 12 and b["token_method"] == "exact"
        assert b["text"] == a["text"]  # left padding + attention mask: the same greedy answer
        assert 0 < b["ttft_ms"] <= b["e2e_ms"] and b["tpot_ms"] > 0
    assert batched[0]["load_ms"] > 0 and all(r["load_ms"] is None for r in batched[1:])


def test_hf_quantization_on_cpu_is_a_clear_error(demo_models):
    provider = create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", {"quantization": "nf4", "device": "cpu"}))
    with pytest.raises(errors.UsageError, match=r"CUDA GPU.*llamacpp"):
        asyncio.run(provider.load())
    with pytest.raises(errors.UsageError, match="int8, int4, nf4"):
        create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}", {"quantization": "int3"}))


def test_hf_task_pipeline_model(demo_models, tmp_path):
    """A tiny random-weight BERT classifier runs as a text-classification pipeline through compare."""
    import json

    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(demo_models.hf_dir)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                        pad_token_id=tok.pad_token_id)
    folder = tmp_path / "tiny-classifier"
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    spec = ModelSpec.parse(f"hf:{folder}", {"task": "text-classification"})
    out = asyncio.run(compare("This model is great", [spec], params=GenParams(max_tokens=4)))
    (r,) = out.results
    assert r.ok, r.error
    (prediction,) = json.loads(r.text)
    assert prediction["label"] in ("negative", "positive") and 0 <= prediction["score"] <= 1
    assert r.usage.input_tokens > 0 and r.usage.output_tokens == 0 and r.timing.ttft_ms > 0
    with pytest.raises(errors.ModelNotFoundError, match="pipeline"):
        asyncio.run(create_provider(ModelSpec.parse(f"hf:{folder}", {"task": "no-such-task"})).load())
