"""The memory estimator checked against reality.

* Weights: for tiny configs of every supported architecture (GQA, biases, tied and untied embeddings,
  sliding windows, MoE with shared experts, MLA, encoders) and for real-size configs, transformers builds
  the model on the meta device and the estimator's analytic counts must equal the parameters it made,
  class by class, and the fp32/bf16 bytes must equal the parameters' bytes.
* KV cache: tiny random-weight models run forward on CPU with ``use_cache=True``; the formula must equal
  the bytes of the cache tensors they allocate (sliding-window and latent MLA caches included).
* GGUF: a tiny model is written as an F32 GGUF from the estimator's own tensor inventory and quantized by
  llama.cpp (llama-cpp-python); the estimate must equal the quantized tensors' bytes.
* The CLI: JSON numbers, fits / does not fit, clear errors.
"""

from __future__ import annotations

import ctypes
import json
import re
from pathlib import Path

import pytest

from tryouts.memory import (
    GPUS,
    Arch,
    EstimateError,
    class_counts,
    estimate,
    estimate_entry,
    find_gpu,
    fits,
    ggml_bytes,
    gguf_types,
    inventory,
    kv_cache_bytes,
    parse_dtype,
    parse_size,
    resolve,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"

_COMMON = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
               num_key_value_heads=2, pad_token_id=None, bos_token_id=None, eos_token_id=None)

#: name -> (model_type, config kwargs, auto class); every feature the estimator models appears somewhere
TINY = {
    "llama-biases-untied": ("llama", dict(_COMMON, attention_bias=True, mlp_bias=True, tie_word_embeddings=False),
                            "causal"),
    "llama-tied": ("llama", dict(_COMMON, tie_word_embeddings=True), "causal"),
    "mistral-sliding": ("mistral", dict(_COMMON, sliding_window=8), "causal"),
    "mixtral-moe": ("mixtral", dict(_COMMON, num_local_experts=4, num_experts_per_tok=2), "causal"),
    "qwen2-tied-some-sliding": ("qwen2", dict(_COMMON, tie_word_embeddings=True, use_sliding_window=True,
                                              sliding_window=8, max_window_layers=1), "causal"),
    "qwen2_moe-shared-experts": ("qwen2_moe", dict(_COMMON, num_experts=4, num_experts_per_tok=2,
                                                   moe_intermediate_size=32, shared_expert_intermediate_size=48,
                                                   mlp_only_layers=[1]), "causal"),
    "qwen3-qk-norm": ("qwen3", dict(_COMMON, head_dim=24, attention_bias=True), "causal"),
    "qwen3_moe": ("qwen3_moe", dict(_COMMON, head_dim=24, num_experts=4, num_experts_per_tok=2,
                                    moe_intermediate_size=32), "causal"),
    "phi3-fused": ("phi3", dict(_COMMON, sliding_window=15), "causal"),
    "gemma2-alternating": ("gemma2", dict(_COMMON, head_dim=24, sliding_window=8), "causal"),
    "gemma3_text": ("gemma3_text", dict(_COMMON, head_dim=24, sliding_window=8, sliding_window_pattern=3), "causal"),
    "starcoder2-bias-layernorm": ("starcoder2", dict(_COMMON, sliding_window=8), "causal"),
    "deepseek_v3-mla-moe": ("deepseek_v3", dict(_COMMON, num_key_value_heads=4, n_routed_experts=8,
                                                num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=2,
                                                first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=24,
                                                qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=12, n_group=2,
                                                topk_group=1), "causal"),
    "bert": ("bert", dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=96, max_position_embeddings=40), "base"),
    "roberta": ("roberta", dict(vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=96, max_position_embeddings=40, type_vocab_size=1), "base"),
    "distilbert": ("distilbert", dict(vocab_size=300, dim=64, n_layers=2, n_heads=4, hidden_dim=96,
                                      max_position_embeddings=40), "base"),
    "marian": ("marian", dict(vocab_size=300, d_model=64, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
                              decoder_attention_heads=4, encoder_ffn_dim=96, decoder_ffn_dim=96,
                              max_position_embeddings=40, pad_token_id=0, decoder_start_token_id=0), "seq2seq"),
    "m2m_100": ("m2m_100", dict(vocab_size=300, d_model=64, encoder_layers=2, decoder_layers=3,
                                encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=96,
                                decoder_ffn_dim=96, max_position_embeddings=64), "seq2seq"),
}


def _config(model_type: str, kwargs: dict):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoConfig.for_model(model_type, **kwargs)


def _build(cfg, kind: str, dtype=None, meta: bool = True):
    import torch
    import transformers

    auto = {"causal": transformers.AutoModelForCausalLM, "base": transformers.AutoModel,
            "seq2seq": transformers.AutoModelForSeq2SeqLM}[kind]
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if meta:
        with torch.device("meta"):
            return auto.from_config(cfg, **kwargs)
    torch.manual_seed(0)
    return auto.from_config(cfg, **kwargs).eval()


def hf_class(name: str) -> str:
    """The estimator's class for a transformers parameter name (independent of the estimator's own naming)."""
    n = name.lower()
    if "norm" in n:
        return "norms"
    if "lm_head" in n:
        return "lm_head"
    if "pooler" in n:
        return "pooler"
    if "embed" in n or n.endswith("shared.weight"):
        return "embeddings"
    if "shared_expert" in n:
        return "shared_experts"
    if "experts" in n:
        return "experts"
    if re.search(r"mlp\.gate\.weight$", n):
        return "router"
    if "attn" in n or "attention" in n or re.search(r"\.(q|k|v|out)_lin\.", n):
        return "attention"
    return "mlp"


# ---------------------------------------------------------------------- weights vs transformers (meta device)


@pytest.mark.parametrize("case", list(TINY))
def test_analytic_counts_equal_the_parameters_transformers_builds(case):
    model_type, kwargs, kind = TINY[case]
    cfg = _config(model_type, kwargs)
    model = _build(cfg, kind)
    arch = Arch.from_config(cfg.to_dict())
    counts = class_counts(inventory(arch))

    real_by_class: dict[str, int] = {}
    for name, p in model.named_parameters():
        real_by_class[hf_class(name)] = real_by_class.get(hf_class(name), 0) + p.numel()
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert counts == real_by_class

    for torch_dtype, name in (("float32", "fp32"), ("bfloat16", "bf16")):
        import torch

        typed = _build(cfg, kind, dtype=getattr(torch, torch_dtype))
        real_bytes = sum(p.numel() * p.element_size() for p in typed.parameters())
        assert estimate(arch, name).weights_bytes == real_bytes, name


def test_sliding_window_and_moe_structure_are_read_from_the_config():
    g2 = Arch.from_config(_config(*TINY["gemma2-alternating"][:2]).to_dict())
    assert (g2.sliding_window, g2.sliding_layers, g2.tied_embeddings) == (8, 2, True)  # layers 0 and 2 of 3
    g3 = Arch.from_config(_config(*TINY["gemma3_text"][:2]).to_dict())
    assert g3.sliding_layers == 2  # pattern 3: layers 0, 1 slide, layer 2 is global
    q2 = Arch.from_config(_config(*TINY["qwen2-tied-some-sliding"][:2]).to_dict())
    assert q2.sliding_layers == 2  # layers >= max_window_layers
    ds = Arch.from_config(_config(*TINY["deepseek_v3-mla-moe"][:2]).to_dict())
    assert ds.is_mla and ds.dense_layers == (0,) and ds.shared_expert_size == 64 and ds.router_fp32


@pytest.mark.parametrize("config_file, kind, expected", [
    ("llama-3.1-70b.json", "causal", 70_553_706_496),
    ("mixtral-8x7b.json", "causal", 46_702_792_704),
    ("deepseek-v3.json", "causal", 671_026_404_352),
])
def test_real_size_configs_on_the_meta_device(config_file, kind, expected):
    """The shipped example configs: the count equals what transformers instantiates from them."""
    transformers = pytest.importorskip("transformers")
    data = json.loads((EXAMPLES / config_file).read_text())
    cfg = transformers.AutoConfig.for_model(data["model_type"], **{k: v for k, v in data.items() if k != "model_type"})
    model = _build(cfg, kind)
    real = sum(p.numel() for p in model.parameters())
    arch = resolve(str(EXAMPLES / config_file))
    e = estimate(arch, "fp32")
    assert real == expected == e.params_total
    assert e.weights_bytes == 4 * real


def test_llama_3_1_70b_weights_correct_the_seed_table():
    """The seed's table (FP32 ~140 GB, FP16 ~70, INT8 ~35, INT4 ~17) is half the real sizes."""
    arch = resolve(str(EXAMPLES / "llama-3.1-70b.json"))
    e32, e16 = estimate(arch, "fp32"), estimate(arch, "fp16")
    assert abs(e32.params_total - 70.55e9) <= 0.01e9
    assert e32.weights_bytes == pytest.approx(282.2e9, rel=1e-3)
    assert e16.weights_bytes == pytest.approx(141.1e9, rel=1e-3)
    int8, int4, q4 = estimate(arch, "int8"), estimate(arch, "int4"), estimate(arch, "Q4_K_M")
    assert int8.weights_bytes == pytest.approx(72.7e9, rel=2e-3)  # not ~35 GB
    assert int4.weights_bytes == pytest.approx(42.7e9, rel=2e-3)  # not ~17 GB
    assert int4.weights_bytes > 2 * 17e9
    # bartowski/Meta-Llama-3.1-70B-Instruct-GGUF Q4_K_M is 42.52 GB with its metadata
    assert q4.weights_bytes == pytest.approx(42.51e9, rel=1e-3)


# ---------------------------------------------------------------------- KV cache vs the cache tensors


def _cache_bytes(cache) -> int:
    if hasattr(cache, "self_attention_cache"):
        return _cache_bytes(cache.self_attention_cache) + _cache_bytes(cache.cross_attention_cache)
    total = 0
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            total += t.numel() * t.element_size()
    return total


def _run_forward(case: str, tokens: int, batch: int):
    import torch

    model_type, kwargs, kind = TINY[case]
    cfg = _config(model_type, kwargs)
    model = _build(cfg, kind, dtype=torch.float32, meta=False)
    ids = torch.randint(3, 300, (batch, tokens))
    with torch.no_grad():
        if kind == "seq2seq":
            out = model(input_ids=ids, decoder_input_ids=ids, use_cache=True)
        else:
            out = model(input_ids=ids, use_cache=True)
    cache = out.get("cache") or out.get("past_key_values")
    return Arch.from_config(cfg.to_dict()), _cache_bytes(cache)


@pytest.mark.parametrize("case", ["llama-biases-untied", "mixtral-moe", "qwen3-qk-norm", "phi3-fused"])
def test_kv_formula_equals_the_cache_a_model_allocates(case):
    tokens, batch = 11, 3
    arch, actual = _run_forward(case, tokens, batch)
    if arch.sliding_window and arch.sliding_window < tokens:
        pytest.fail("these cases are meant to stay inside any window")
    assert actual == kv_cache_bytes(arch, tokens, batch, "fp32")
    assert actual == 2 * arch.layers * arch.kv_heads * arch.head_dim * 4 * tokens * batch


@pytest.mark.parametrize("case", ["mistral-sliding", "gemma2-alternating", "qwen2-tied-some-sliding",
                                  "starcoder2-bias-layernorm"])
def test_sliding_window_layers_are_capped(case):
    """transformers keeps `window - 1` tokens per sliding layer between steps (the next token makes `window`);
    the estimate counts the `window` a step attends over, i.e. one token more per sliding layer."""
    tokens, batch = 20, 2
    arch, actual = _run_forward(case, tokens, batch)
    assert arch.sliding_layers > 0 and arch.sliding_window < tokens
    assert actual == kv_cache_bytes(arch.with_(sliding_window=arch.sliding_window - 1), tokens, batch, "fp32")
    one_token = 2 * arch.kv_heads * arch.head_dim * 4 * batch
    assert kv_cache_bytes(arch, tokens, batch, "fp32") - actual == arch.sliding_layers * one_token
    assert actual < kv_cache_bytes(arch.with_(sliding_window=None), tokens, batch, "fp32")


def test_mla_caches_the_latent():
    tokens, batch = 9, 2
    arch, actual = _run_forward("deepseek_v3-mla-moe", tokens, batch)
    latent = arch.layers * (arch.kv_lora_rank + arch.qk_rope_head_dim) * 4 * tokens * batch
    assert actual == latent == kv_cache_bytes(arch, tokens, batch, "fp32")
    full = 2 * arch.layers * arch.attention_heads * 28 * 4 * tokens * batch  # what per-head K/V would take
    assert actual < full


def test_encoder_decoder_cache_is_self_plus_cross_attention():
    arch, actual = _run_forward("m2m_100", 7, 2)
    assert actual == kv_cache_bytes(arch, 7, 2, "fp32")


def test_encoder_only_models_have_no_kv_cache():
    arch = Arch.from_config(_config(*TINY["bert"][:2]).to_dict())
    assert kv_cache_bytes(arch, 512, 8) == 0
    assert estimate(arch, "bf16", context=512).kv_bytes == 0


def test_kv_dtype_defaults_to_the_weights_16_bit_type_and_can_be_overridden():
    arch = resolve(str(EXAMPLES / "llama-3.1-70b.json"))
    per_token = 2 * 80 * 8 * 128
    assert estimate(arch, "fp32", context=1000).kv_bytes == per_token * 4 * 1000
    assert estimate(arch, "Q4_K_M", context=1000).kv_bytes == per_token * 2 * 1000
    assert estimate(arch, "bf16", context=1000, batch=4, kv_dtype="fp8").kv_bytes == per_token * 1000 * 4
    assert estimate(arch, "bf16", context=1000, kv_dtype="q8_0").kv_bytes == per_token * 1000 * 34 // 32


# ---------------------------------------------------------------------- GGUF vs llama.cpp's quantizer


def _write_gguf(arch: Arch, path: Path) -> None:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(256)
    w.add_embedding_length(arch.hidden_size)
    w.add_block_count(arch.layers)
    w.add_feed_forward_length(arch.intermediate_size)
    w.add_head_count(arch.attention_heads)
    w.add_head_count_kv(arch.kv_heads)
    w.add_rope_dimension_count(arch.head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(arch.vocab_size)
    w.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    if arch.is_moe:
        w.add_expert_count(int(arch.experts))
        w.add_expert_used_count(int(arch.experts_per_token))
    rng = np.random.default_rng(0)
    for t in inventory(arch):  # the estimator's own names and shapes, which must be llama.cpp's
        w.add_tensor(t.name, rng.standard_normal(t.shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _tiny_llama(**changes) -> Arch:
    base = Arch(model_type="llama", layers=8, hidden_size=256, intermediate_size=512, attention_heads=4, kv_heads=1,
                head_dim=64, vocab_size=300)
    return base.with_(**changes)


@pytest.mark.slow
@pytest.mark.parametrize("arch_name, arch", [
    ("untied, GQA 4", _tiny_llama()),
    ("tied, ffn rows not a multiple of 256", _tiny_llama(tied_embeddings=True, intermediate_size=544, kv_heads=2)),
    ("8 experts", _tiny_llama(experts=8, experts_per_token=2, moe_intermediate_size=256, layers=4)),
])
def test_gguf_estimate_equals_llama_cpp_quantized_bytes(tmp_path, arch_name, arch):
    llama_cpp = pytest.importorskip("llama_cpp")
    gguf = pytest.importorskip("gguf")
    src = tmp_path / "f32.gguf"
    _write_gguf(arch, src)
    tensors = inventory(arch)
    for ftype in ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "IQ4_XS", "Q3_K_L", "Q3_K_M",
                  "Q3_K_S", "Q2_K", "F16"):
        out = tmp_path / f"{ftype}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = int(gguf.LlamaFileType[f"MOSTLY_{ftype}"])
        params.nthread = 1
        assert llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params)) == 0
        real = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(str(out)).tensors}
        ours = {t.name: ggml_bytes(g, t.numel) for t, g in zip(tensors, gguf_types(tensors, ftype, arch), strict=True)}
        assert ours == real, f"{arch_name} {ftype}: " + ", ".join(
            f"{k} {ours[k]} != {real[k]}" for k in ours if ours[k] != real.get(k))
        assert estimate(arch, f"gguf:{ftype}").weights_bytes == sum(real.values())


def test_ggml_block_sizes_match_gguf_py():
    gguf = pytest.importorskip("gguf")
    from tryouts.memory import GGML_BLOCKS

    for name, sizes in GGML_BLOCKS.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]] == sizes


# ---------------------------------------------------------------------- dtypes, quantization rules, helpers


def test_bitsandbytes_keeps_embeddings_lm_head_and_moe_experts_16_bit():
    arch = resolve(str(EXAMPLES / "mixtral-8x7b.json"))
    bf16, nf4, int8 = estimate(arch, "bf16"), estimate(arch, "nf4"), estimate(arch, "int8")
    for cls in ("embeddings", "lm_head", "experts", "router", "norms"):
        assert nf4.weight_bytes_by_class[cls] == bf16.weight_bytes_by_class[cls]
    attn = nf4.params_by_class["attention"]
    assert nf4.weight_bytes_by_class["attention"] == attn // 2 + 4 * (attn // 64)  # 4 bits + fp32 absmax / 64
    rows = 32 * (4096 + 1024 + 1024 + 4096)  # output rows of q, k, v, o in 32 layers
    assert int8.weight_bytes_by_class["attention"] == attn + 4 * rows
    assert any("experts" in a and "stay 16-bit" in a for a in nf4.assumptions)
    fp8 = estimate(arch, "fp8")
    assert fp8.weight_bytes_by_class["experts"] < bf16.weight_bytes_by_class["experts"] / 1.9


def test_nf4_double_quant_is_about_4_13_bits_per_linear_weight():
    arch = resolve(str(EXAMPLES / "llama-3.1-70b.json"))
    e = estimate(arch, "nf4-dq")
    mlp = e.params_by_class["mlp"]
    assert e.weight_bytes_by_class["mlp"] * 8 / mlp == pytest.approx(4 + 8 / 64 + 32 / 16384, abs=1e-3)


def test_dtype_parsing():
    assert parse_dtype("gguf:q4_k_m").name == "Q4_K_M"
    assert parse_dtype("Q8_0").kind == "gguf"
    assert parse_dtype("float16").name == "fp16"
    assert parse_dtype("int4").kind == "bnb"
    from tryouts.errors import UsageError

    with pytest.raises(UsageError, match="Unknown dtype 'int3'"):
        parse_dtype("int3")
    with pytest.raises(UsageError, match="Unknown GGUF type"):
        parse_dtype("gguf:Q9_K")


def test_sizes_and_gpus():
    assert parse_size("24GB") == 24_000_000_000
    assert parse_size("24GiB") == 24 * 2**30
    assert parse_size("80 GB") == 80_000_000_000
    assert parse_size("512mib") == 512 * 2**20
    from tryouts.errors import UsageError

    for bad in ("lots", "24 parsecs", "0GB"):
        with pytest.raises(UsageError):
            parse_size(bad)
    assert find_gpu("h100").name == "H100-80GB"
    assert GPUS["H100-80GB"].memory_bytes == 81_559 * 2**20  # as nvidia-smi reports an H100 80GB
    with pytest.raises(UsageError, match="several"):
        find_gpu("a100")
    assert fits(10, 10) and not fits(11, 10)


def test_overhead_is_stated_and_its_own_line():
    arch = resolve(str(EXAMPLES / "llama-3.1-70b.json"))
    e = estimate(arch, "Q4_K_M", context=8192, batch=2)
    assert e.overhead_bytes == 2**30 + round(0.05 * (e.weights_bytes + e.kv_bytes))
    assert e.total_bytes == e.weights_bytes + e.kv_bytes + e.overhead_bytes
    assert any("overhead" in a for a in e.assumptions)


def test_catalog_entries_give_the_same_split_as_the_config():
    catalog = pytest.importorskip("tryouts.catalog")
    entry = catalog.find_model("meta-llama/Llama-3.1-70B-Instruct")
    from_catalog = estimate_entry(entry, dtype="Q4_K_M", context=4096)
    from_config = estimate(resolve(str(EXAMPLES / "llama-3.1-70b.json")), "Q4_K_M", context=4096)
    assert from_catalog.params_by_class == from_config.params_by_class
    assert from_catalog.total_bytes == from_config.total_bytes
    ds = estimate_entry(catalog.find_model("deepseek-v3"), dtype="bf16", context=4096)
    assert ds.params_total == pytest.approx(671e9, rel=1e-6)  # scaled to the catalog's figure
    assert ds.kv_bytes == 61 * (512 + 64) * 2 * 4096


def test_catalog_entry_without_architecture_is_refused():
    with pytest.raises(EstimateError, match="no architecture numbers"):
        estimate_entry({"name": "Some API model", "params": {"total": None}, "arch": None})


def test_catalog_dict_in_the_shared_format():
    entry = {"name": "dict model", "params": {"total": 8_030_261_248, "active": None},
             "arch": {"type": "llama", "layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
                      "attention_heads": 32, "kv_heads": 8, "head_dim": 128, "vocab_size": 128256,
                      "tied_embeddings": False}}
    e = estimate_entry(entry, dtype="bf16", context=8192)
    assert e.params_total == 8_030_261_248
    assert e.kv_bytes == 2 * 32 * 8 * 128 * 2 * 8192


def test_multimodal_config_uses_its_text_config():
    cfg = {"model_type": "gemma3", "text_config": {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 6,
                                                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                                                    "vocab_size": 300, "sliding_window": 8}}
    arch = Arch.from_config(cfg)
    assert arch.model_type == "gemma3_text" and arch.sliding_layers == 5 and arch.tied_embeddings
    assert any("vision" in n for n in arch.notes)


def test_hub_id_found_in_the_local_cache(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snap = hub / "models--acme--tiny-llama" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (hub / "models--acme--tiny-llama" / "refs").mkdir()
    (hub / "models--acme--tiny-llama" / "refs" / "main").write_text("abc123")
    (snap / "config.json").write_text((EXAMPLES / "llama-3.1-70b.json").read_text())
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    try:
        import huggingface_hub.constants

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    except ImportError:
        pass
    arch = resolve("acme/tiny-llama")
    assert arch.layers == 80 and arch.name == "acme/tiny-llama"
    from tryouts.errors import UsageError

    with pytest.raises(UsageError, match=re.escape("hf download acme/other config.json")):
        resolve("acme/other")


# ---------------------------------------------------------------------- CLI


def _cli(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["memory", *args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_all_dtypes_json(capsys):
    code, out, _ = _cli(capsys, str(EXAMPLES / "llama-3.1-70b.json"), "--dtype", "all", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["params_total"] == 70_553_706_496 and data["model_type"] == "llama"
    by = {e["dtype"]: e for e in data["estimates"]}
    assert set(by) >= {"fp32", "bf16", "int8", "nf4", "Q4_K_M", "Q8_0"}
    assert by["fp32"]["weights_bytes"] == 4 * 70_553_706_496
    assert by["bf16"]["weights_bytes"] == 2 * 70_553_706_496
    assert by["bf16"]["kv_bytes"] == 2 * 80 * 8 * 128 * 2 * 4096
    assert by["Q4_K_M"]["total_bytes"] == sum(by["Q4_K_M"][k] for k in ("weights_bytes", "kv_bytes", "overhead_bytes"))
    assert "fits" not in by["bf16"]


def test_cli_fits_and_does_not_fit(capsys):
    config = str(EXAMPLES / "llama-3.1-70b.json")
    code, out, _ = _cli(capsys, config, "--dtype", "Q4_K_M", "--gpu", "H100-80GB", "--format", "json")
    row = json.loads(out)["estimates"][0]
    assert code == 0 and row["fits"] is True and row["headroom_bytes"] > 30e9
    code, out, _ = _cli(capsys, config, "--dtype", "bf16", "--gpu", "H100-80GB", "--format", "json")
    row = json.loads(out)["estimates"][0]
    assert row["fits"] is False and row["headroom_bytes"] < -60e9
    code, out, _ = _cli(capsys, config, "--dtype", "Q4_K_M", "--gpu-memory", "24GB", "--context", "8192")
    assert code == 0 and "Fits on 24GB" in out and "no" in out and "short" in out
    code, out, _ = _cli(capsys, config, "--gpu", "H100-80GB")
    assert code == 0 and "Q4_K_M" in out and "fits H100-80GB" in out and "Assumptions" in out
    # --context takes the catalog's token counts too (8k = 8,000), as models --context does
    code, out, _ = _cli(capsys, config, "--dtype", "int4", "--context", "8k", "--format", "json")
    assert code == 0 and json.loads(out)["context"] == 8000 and json.loads(out)["warnings"] == []
    # beyond the model's own limit (its config's max_position_embeddings): still estimated, and said
    limit = json.loads(out)["max_context"]
    code, out, _ = _cli(capsys, config, "--dtype", "int4", "--context", str(limit + 1), "--format", "json")
    assert code == 0 and f"beyond the longest context this model supports ({limit:,} tokens)" in json.loads(out)["warnings"][0]


def test_cli_table_for_one_dtype(capsys):
    code, out, _ = _cli(capsys, str(EXAMPLES / "mixtral-8x7b.json"), "--dtype", "gguf:Q4_K_M")
    assert code == 0
    assert "46.70 B parameters, 12.88 B active per token" in out
    assert "experts" in out and "Q6_K" in out and "KV cache" in out and "overhead" in out and "total" in out


def test_cli_unknown_model_says_what_to_do(capsys):
    code, _, err = _cli(capsys, "no-such-model-anywhere")
    assert code == 1 and "Error:" in err and "config.json" in err
    code, _, err = _cli(capsys, "acme/never-downloaded")
    assert code == 1 and "hf download" in err


def test_cli_bad_dtype_and_bad_options(capsys):
    config = str(EXAMPLES / "llama-3.1-70b.json")
    code, _, err = _cli(capsys, config, "--dtype", "int3")
    assert code == 1 and "Unknown dtype 'int3'" in err
    code, _, err = _cli(capsys, config, "--gpu", "Z9000")
    assert code == 1 and "Unknown GPU" in err
    code, _, err = _cli(capsys, config, "--gpu", "L4", "--gpu-memory", "24GB")
    assert code == 1 and "not both" in err
    code, _, err = _cli(capsys, config, "--kv-dtype", "int2")
    assert code == 1 and "--kv-dtype" in err
