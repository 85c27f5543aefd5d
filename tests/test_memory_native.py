"""Checkpoints published low-bit (gpt-oss's MXFP4 experts, DeepSeek-V3's block-scaled FP8), the ``native`` dtype,
GGUF files of MXFP4 models and llama.cpp's sliding-window rule, each checked against a real figure.

Real figures (sizes in GB = 10^9 bytes unless GiB is said):

* gpt-oss-20b checkpoint: 4.79 + 4.80 + 4.17 = 13.76 GB of safetensors
  (https://huggingface.co/openai/gpt-oss-20b/tree/main); gpt-oss-120b: 60.8 GiB ("checkpoint size", gpt-oss model
  card, arXiv 2508.10925, table 1), 65.2 GB in the repository's ``original/`` folder
  (https://huggingface.co/openai/gpt-oss-120b/tree/main/original).
* DeepSeek-V3 checkpoint: 688,586,727,753 bytes of weight files, main model + the multi-token-prediction (MTP)
  layer (https://huggingface.co/deepseek-ai/DeepSeek-V3, revision afb92e1f; "685B = 671B main model + 14B MTP
  module" in the README is a parameter count).
* GGUF of gpt-oss: unsloth/gpt-oss-20b-GGUF Q4_K_M 11.6 GB, F16 13.8 GB, Q2_K 11.5 GB
  (https://huggingface.co/unsloth/gpt-oss-20b-GGUF/tree/main); bartowski's MXFP4 file 12.1 GB
  (https://huggingface.co/bartowski/openai_gpt-oss-20b-GGUF); unsloth/gpt-oss-120b-GGUF per file type, e.g.
  Q4_K_M 58.46 GiB, Q8_0 59.03 GiB, F16 60.88 GiB (https://ailocalcheck.com/model/unsloth/gpt-oss-120b-GGUF, which
  prints GiB as "GB": its F16 is the 60.87 GiB llama-bench reports for that file); ggml-org/gpt-oss-120b-GGUF
  (MXFP4_MOE) 59.02 GiB by llama-bench (https://community.frame.work/t/will-the-ai-max-395-128gb-be-able-to-run-gpt-oss-120b/73280/26).
* llama.cpp's KV cache for a 32-layer model with 8 KV heads of 128 at 32,768 tokens: "size = 4096.00 MiB
  (32768 cells, 32 layers)": the full context, as for Mistral 7B v0.1, which llama.cpp runs as ``llama``.
"""

from __future__ import annotations

import ctypes
import json
import math
import re
from pathlib import Path

import pytest

from tryouts.memory import (
    Arch,
    class_counts,
    estimate,
    estimate_entry,
    fp8_block_bytes,
    ggml_bytes,
    gguf_types,
    inventory,
    kv_cache_bytes,
    mxfp4_bytes,
    parse_dtype,
    resolve,
)
from tryouts.memory.params import Tensor

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"
GiB = 2**30

#: DeepSeek-V3/R1 config.json quantization_config (https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json)
DEEPSEEK_FP8 = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}


def _catalog(name: str, native: str | None):
    catalog = pytest.importorskip("tryouts.catalog")
    entry = catalog.find_model(name)
    if entry.arch.native_format != native:  # another engineer sets it in the catalog data; the test does not wait
        entry = entry.model_copy(update={"arch": entry.arch.model_copy(update={"native_format": native})})
    return entry


def _gpt_oss_config(layers: int, experts: int) -> dict:
    """gpt-oss-20b (24 layers, 32 experts) / -120b (36, 128): config.json's numbers, as the catalog carries them."""
    return {"model_type": "gpt_oss", "num_hidden_layers": layers, "num_local_experts": experts,
            "num_experts_per_tok": 4, "hidden_size": 2880, "intermediate_size": 2880, "num_attention_heads": 64,
            "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088, "tie_word_embeddings": False,
            "attention_bias": True, "sliding_window": 128, "max_position_embeddings": 131072,
            "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
            "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}}


# ---------------------------------------------------------------------- the byte rules


def test_mxfp4_is_17_bytes_per_32_weights_and_fp8_block_adds_a_float32_per_128x128():
    experts = Tensor("blk.0.ffn_down_exps.weight", "experts", (32, 2880, 2880), 0)
    assert mxfp4_bytes(experts) == 32 * 2880 * 90 * 17 == experts.numel * 17 // 32  # 4.25 bits per weight
    # DeepSeek-V3's kv_a_proj_with_mqa (576 x 7168): weight_scale_inv is [5, 56] (576 = 4.5 blocks of 128)
    assert fp8_block_bytes(Tensor("attn_kv_a_mqa.weight", "attention", (576, 7168))) == 576 * 7168 + 4 * 5 * 56
    assert fp8_block_bytes(Tensor("ffn_gate_exps.weight", "experts", (256, 2048, 7168))) == \
        256 * 2048 * 7168 + 4 * 256 * 16 * 56
    assert parse_dtype("mxfp4").kind == "mxfp4" and parse_dtype("fp8_block").name == "fp8-block"
    assert parse_dtype("native").kind == "native" and parse_dtype("MXFP4_MOE").kind == "gguf"
    assert parse_dtype("fp8").label == "FP8 weights (per-tensor scale)"  # vLLM's dynamic fp8 is still there


# ---------------------------------------------------------------------- gpt-oss vs transformers


def _hf_class(name: str) -> str:
    n = name.lower()
    for key, cls in (("norm", "norms"), ("lm_head", "lm_head"), ("embed", "embeddings"), ("router", "router"),
                     ("experts", "experts")):
        if key in n:
            return cls
    return "attention"  # q/k/v/o, their biases and the sinks


def test_gpt_oss_inventory_equals_the_parameters_transformers_builds():
    transformers = pytest.importorskip("transformers")
    import torch

    cfg = transformers.AutoConfig.for_model(
        "gpt_oss", vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=8,
        pad_token_id=None, bos_token_id=None, eos_token_id=None)
    arch = Arch.from_config(cfg.to_dict())
    assert arch.model_type == "gpt_oss" and not arch.notes  # exact, not read as Llama-like
    assert (arch.sliding_window, arch.sliding_layers, arch.attn_sinks, arch.expert_bias) == (8, 2, True, True)
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
        real: dict[str, int] = {}
        for n, p in model.named_parameters():
            real[_hf_class(n)] = real.get(_hf_class(n), 0) + p.numel()
        assert class_counts(inventory(arch)) == real
        assert estimate(arch, name).weights_bytes == sum(p.numel() * p.element_size() for p in model.parameters())


@pytest.mark.parametrize("layers, experts, total", [(24, 32, 20_914_757_184), (36, 128, 116_829_156_672)])
def test_gpt_oss_real_size_counts(layers, experts, total):
    """20.91 B and 116.83 B: the model card's totals, the catalog's params.total and transformers' count agree."""
    transformers = pytest.importorskip("transformers")
    import torch

    data = _gpt_oss_config(layers, experts)
    cfg = transformers.AutoConfig.for_model("gpt_oss", **{k: v for k, v in data.items()
                                                          if k not in ("model_type", "quantization_config")})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    assert sum(p.numel() for p in model.parameters()) == total == estimate(Arch.from_config(data)).params_total


# ---------------------------------------------------------------------- native checkpoints vs their files


def test_gpt_oss_native_is_the_published_mxfp4_checkpoint():
    small = Arch.from_config(_gpt_oss_config(24, 32))
    assert small.native_format == "mxfp4" and any("MXFP4" in n for n in small.notes)
    native = estimate(small, "native")
    assert native.dtype == "native" and native.dtype_label.startswith("native = mxfp4")
    assert native.weights_bytes == 13_761_264_768
    assert native.weights_bytes == pytest.approx((4.79 + 4.80 + 4.17) * 1e9, rel=1e-3)  # the three safetensors
    assert native.storage["experts"].startswith("MXFP4") and native.storage["attention"] == "bf16"
    assert native.kv_dtype == "bf16"
    # bf16 stays what bf16 is (41.8 GB); native runs within 16 GB with a 4k context (OpenAI: "within 16GB")
    assert estimate(small, "bf16").weights_bytes == 2 * 20_914_757_184
    assert native.total_bytes < 16e9
    big = estimate(Arch.from_config(_gpt_oss_config(36, 128)), "native")
    assert big.weights_bytes == pytest.approx(60.8 * GiB, rel=1e-3)  # model card: checkpoint 60.8 GiB
    assert big.weights_bytes == pytest.approx(65.2e9, rel=1e-3)  # the original/ folder
    # the catalog entries give the same bytes (their arch.native_format)
    for name, est in (("gpt-oss-20b", native), ("gpt-oss-120b", big)):
        from_catalog = estimate_entry(_catalog(name, "mxfp4"), "native")
        assert from_catalog.weights_bytes == est.weights_bytes and from_catalog.params_total == est.params_total


def test_deepseek_v3_native_is_the_published_fp8_block_checkpoint():
    cfg = json.loads((EXAMPLES / "deepseek-v3.json").read_text()) | {"quantization_config": DEEPSEEK_FP8}
    arch = Arch.from_config(cfg)
    assert arch.native_format == "fp8-block"
    e = estimate(arch, "native")
    assert e.params_total == 671_026_404_352  # no MTP layer (transformers does not load it)
    assert e.storage == {"embeddings": "bf16", "norms": "bf16", "attention": "fp8", "mlp": "fp8", "router": "bf16",
                         "experts": "fp8", "shared_experts": "fp8", "lm_head": "bf16"}
    # the checkpoint adds the MTP layer: one more MoE decoder layer, eh_proj (7168 x 14336), its own embedding and
    # head (129280 x 7168), three norms, all bf16 but the layer's FP8 weights, + the e_score_correction_bias buffers
    # (float32, 256 per MoE layer) the inventory leaves out
    layer = estimate(arch.with_(layers=62), "native").weights_bytes - e.weights_bytes
    mtp = layer + 2 * (7168 * 14336 + 2 * 129280 * 7168 + 3 * 7168)
    files = e.weights_bytes + mtp + 4 * 256 * (58 + 1)
    assert files == pytest.approx(688_586_727_753, rel=1e-4)  # within the safetensors headers (12 MB)
    assert e.weights_bytes == pytest.approx(673.15e9, rel=1e-4)
    # the catalog counts 671.0 B: the same format, scaled
    catalog = estimate_entry(_catalog("deepseek-v3", "fp8"), "native")
    assert catalog.dtype_label.startswith("native = fp8-block")
    assert catalog.weights_bytes == pytest.approx(e.weights_bytes, rel=1e-4)
    # the per-tensor fp8 dtype is unchanged: one scale per tensor, embeddings 16-bit
    assert estimate(arch, "fp8").weights_bytes < e.weights_bytes


def test_native_without_a_low_bit_checkpoint_is_bf16():
    arch = resolve(str(EXAMPLES / "llama-3.1-70b.json"))
    assert arch.native_format is None
    assert estimate(arch, "native").weights_bytes == estimate(arch, "bf16").weights_bytes
    other = Arch.from_config(json.loads((EXAMPLES / "llama-3.1-70b.json").read_text())
                             | {"quantization_config": {"quant_method": "awq", "bits": 4}})
    assert other.native_format is None and any("'awq'" in n and "bf16" in n for n in other.notes)
    mixtral = resolve(str(EXAMPLES / "mixtral-8x7b.json"))
    assert estimate(mixtral, "mxfp4").weights_bytes < estimate(mixtral, "bf16").weights_bytes / 3
    dense = estimate(arch, "mxfp4")
    assert dense.weights_bytes == estimate(arch, "bf16").weights_bytes and any("no routed experts" in a
                                                                             for a in dense.assumptions)


# ---------------------------------------------------------------------- GGUF of MXFP4 models


#: unsloth/gpt-oss-120b-GGUF, GiB per file type (ailocalcheck's listing of the repository)
UNSLOTH_120B_GIB = {"Q2_K": 58.27, "Q3_K_S": 58.27, "Q3_K_M": 58.33, "Q4_0": 58.32, "Q4_1": 58.41, "Q4_K_S": 58.45,
                    "Q4_K_M": 58.46, "Q5_K_S": 58.56, "Q5_K_M": 58.57, "Q6_K": 58.94, "Q8_0": 59.03, "F16": 60.88}


def test_gguf_of_gpt_oss_keeps_the_mxfp4_experts():
    big = _catalog("gpt-oss-120b", "mxfp4")
    q4 = estimate_entry(big, "Q4_K_M")
    assert q4.weights_bytes == 62_755_699_968  # not 87.7 GB (experts requantized), 58.45 GiB
    assert q4.storage["experts"].startswith("MXFP4") and q4.storage["lm_head"] == "Q8_0"  # 2880 % 256: Q6_K -> Q8_0
    for ftype, gib in UNSLOTH_120B_GIB.items():  # the listed sizes include each file's metadata (~15 MB)
        assert estimate_entry(big, f"gguf:{ftype}").weights_bytes / GiB == pytest.approx(gib, rel=5e-4), ftype
    assert estimate_entry(big, "MXFP4_MOE").weights_bytes / GiB == pytest.approx(59.02, rel=2e-4)  # ggml-org
    small = _catalog("gpt-oss-20b", "mxfp4")
    for ftype, gb in (("Q4_K_M", 11.6), ("F16", 13.8), ("Q2_K", 11.5), ("MXFP4_MOE", 12.1)):
        assert estimate_entry(small, f"gguf:{ftype}").weights_bytes == pytest.approx(gb * 1e9, abs=0.05e9), ftype
    # a bf16 fine-tune of gpt-oss (no MXFP4 in its source) is requantized like any model: its experts grow
    requantized = estimate_entry(_catalog("gpt-oss-120b", None), "Q4_K_M")
    assert requantized.weights_bytes > 1.35 * q4.weights_bytes and "MXFP4" not in requantized.storage["experts"]


def test_gguf_types_of_mxfp4_moe_and_biases():
    arch = Arch.from_config(_gpt_oss_config(2, 4)).with_(vocab_size=512)
    tensors = inventory(arch)
    types = dict(zip((t.name for t in tensors), gguf_types(tensors, "MXFP4_MOE", arch), strict=True))
    assert types["blk.0.ffn_down_exps.weight"] == "MXFP4" and types["blk.0.ffn_down_exps.bias"] == "F32"
    assert types["blk.0.attn_q.weight"] == types["output.weight"] == types["token_embd.weight"] == "Q8_0"
    assert types["blk.0.attn_sinks.weight"] == types["blk.0.ffn_gate_inp.weight"] == "F32"
    f16 = dict(zip((t.name for t in tensors), gguf_types(tensors, "F16", arch), strict=True))
    assert f16["blk.1.ffn_up_exps.weight"] == "MXFP4" and f16["blk.1.attn_k.weight"] == "F16"


# ---------------------------------------------------------------------- llama.cpp: sliding windows


def test_llama_cpp_runs_mistral_v0_1_with_full_attention():
    mistral = _catalog("mistral-7b-instruct-v0.1", None)
    full = 2 * 32 * 8 * 128 * 2 * 32768
    q4 = estimate_entry(mistral, "Q4_K_M", context=32768)
    assert q4.kv_bytes == full == 4096 * 2**20  # llama.cpp: "size = 4096.00 MiB (32768 cells, 32 layers)"
    assert any("llama.cpp runs 'mistral' with full attention" in a for a in q4.assumptions)
    bf16 = estimate_entry(mistral, "bf16", context=32768)  # transformers/vLLM keep the 4096-token window
    assert bf16.kv_bytes == 2 * 32 * 8 * 128 * 2 * 4096 == full // 8
    assert not any("llama.cpp" in a for a in bf16.assumptions)
    # gpt-oss (openai-moe in llama.cpp) keeps its window in GGUF: 12 of 24 layers hold 128 tokens
    oss = Arch.from_config(_gpt_oss_config(24, 32))
    assert estimate(oss, "Q4_K_M", context=32768).kv_bytes == kv_cache_bytes(oss, 32768) == \
        2 * 8 * 64 * 2 * (12 * 32768 + 12 * 128)


@pytest.mark.parametrize("model_type, windowed", [
    ("gemma2", True), ("gemma3_text", True), ("cohere2", True), ("gpt_oss", True), ("llama4_text", True),
    ("mistral", False), ("phi3", False), ("starcoder2", False), ("qwen2", False),
])
def test_llama_cpp_sliding_window_architectures(model_type, windowed):
    arch = Arch(model_type=model_type, layers=4, hidden_size=64, intermediate_size=96, attention_heads=4, kv_heads=2,
                head_dim=16, vocab_size=300, sliding_window=16, sliding_window_layers=2)
    gguf, hf = estimate(arch, "Q8_0", context=1000), estimate(arch, "bf16", context=1000)
    assert hf.kv_bytes == kv_cache_bytes(arch, 1000)
    assert (gguf.kv_bytes == hf.kv_bytes) is windowed
    if not windowed:
        assert gguf.kv_bytes == kv_cache_bytes(arch.with_(sliding_window=None), 1000)


# ---------------------------------------------------------------------- the CLI


def _cli(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["memory", *args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_native_dtype_and_the_all_table(capsys, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_gpt_oss_config(24, 32)))
    code, out, _ = _cli(capsys, str(config), "--dtype", "native", "--format", "json")
    row = json.loads(out)["estimates"][0]
    assert code == 0 and row["dtype"] == "native" and row["weights_bytes"] == 13_761_264_768
    code, out, _ = _cli(capsys, str(config), "--dtype", "all", "--format", "json")
    dtypes = [e["dtype"] for e in json.loads(out)["estimates"]]
    assert dtypes[:3] == ["fp32", "bf16", "native"]
    code, out, _ = _cli(capsys, str(config))
    assert code == 0 and "native (mxfp4)" in out and "13.76 GB" in out
    code, out, _ = _cli(capsys, str(EXAMPLES / "llama-3.1-70b.json"), "--format", "json")
    assert "native" not in [e["dtype"] for e in json.loads(out)["estimates"]]  # nothing low-bit to show
    code, out, _ = _cli(capsys, str(config), "--dtype", "fp8-block", "--format", "json")
    assert code == 0 and json.loads(out)["estimates"][0]["dtype"] == "fp8-block"


# ---------------------------------------------------------------------- llama.cpp's quantizer on a tiny gpt-oss


def _write_gpt_oss_gguf(arch: Arch, path: Path, mxfp4_experts: bool) -> None:
    """A tiny gpt-oss GGUF as the converter writes one: F32 tensors, the experts ggml MXFP4 when the source is."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "gpt-oss")
    w.add_context_length(256)
    w.add_embedding_length(arch.hidden_size)
    w.add_block_count(arch.layers)
    w.add_feed_forward_length(arch.intermediate_size)
    w.add_expert_feed_forward_length(int(arch.moe_intermediate_size))
    w.add_head_count(arch.attention_heads)
    w.add_head_count_kv(arch.kv_heads)
    w.add_key_length(arch.head_dim)
    w.add_value_length(arch.head_dim)
    w.add_rope_dimension_count(arch.head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_sliding_window(int(arch.sliding_window))
    w.add_expert_count(int(arch.experts))
    w.add_expert_used_count(int(arch.experts_per_token))
    w.add_vocab_size(arch.vocab_size)
    w.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    rng = np.random.default_rng(0)
    for t in inventory(arch):
        if mxfp4_experts and t.cls == "experts" and t.name.endswith(".weight"):
            blocks = rng.integers(0, 256, (*t.shape[:-1], t.shape[-1] // 32, 17), dtype=np.uint8)
            blocks[..., 0] = 120  # the E8M0 scale byte of each block: 2^-7
            w.add_tensor(t.name, blocks.reshape(*t.shape[:-1], -1), raw_dtype=gguf.GGMLQuantizationType.MXFP4)
        else:
            w.add_tensor(t.name, rng.standard_normal(t.shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _quantize(src: Path, out: Path, ftype: str, allow_requantize: bool = False) -> int:
    llama_cpp = pytest.importorskip("llama_cpp")
    import gguf

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(gguf.LlamaFileType[f"MOSTLY_{ftype}"])
    params.nthread = 1
    params.allow_requantize = allow_requantize
    return llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))


@pytest.mark.slow
def test_llama_cpp_quantizes_a_gpt_oss_gguf_as_modelled(tmp_path):
    pytest.importorskip("llama_cpp")
    gguf = pytest.importorskip("gguf")
    arch = Arch(model_type="gpt_oss", layers=4, hidden_size=256, intermediate_size=256, attention_heads=4,
                kv_heads=2, head_dim=64, vocab_size=300, qkv_bias=True, o_bias=True, attn_sinks=True,
                router_bias=True, expert_bias=True, experts=4, experts_per_token=2, moe_intermediate_size=256,
                sliding_window=8, sliding_window_layers=2)
    tensors = inventory(arch)

    def real(path: Path) -> dict[str, int]:
        return {t.name: int(t.n_bytes) for t in gguf.GGUFReader(str(path)).tensors}

    def ours(a: Arch, ftype: str) -> dict[str, int]:
        return {t.name: ggml_bytes(g, t.numel) for t, g in zip(tensors, gguf_types(tensors, ftype, a), strict=True)}

    native = arch.with_(native_format="mxfp4")
    src = tmp_path / "mxfp4-experts.gguf"
    _write_gpt_oss_gguf(arch, src, mxfp4_experts=True)
    assert real(src) == ours(native, "F32")  # the converter's output: experts MXFP4, the rest F32
    # MXFP4_MOE keeps the experts and puts every other matrix at Q8_0
    assert _quantize(src, tmp_path / "moe.gguf", "MXFP4_MOE") == 0
    assert real(tmp_path / "moe.gguf") == ours(native, "MXFP4_MOE")
    # Q4_K_M refuses: "requantizing from type mxfp4 is disabled"; with --allow-requantize the experts become K-quants
    assert _quantize(src, tmp_path / "refused.gguf", "Q4_K_M") != 0
    assert _quantize(src, tmp_path / "requant.gguf", "Q4_K_M", allow_requantize=True) == 0
    assert real(tmp_path / "requant.gguf") == ours(arch, "Q4_K_M")
    # from an all-F32 source (a bf16 fine-tune), MXFP4_MOE quantizes the experts to the same bytes
    f32 = tmp_path / "f32.gguf"
    _write_gpt_oss_gguf(arch, f32, mxfp4_experts=False)
    assert _quantize(f32, tmp_path / "moe2.gguf", "MXFP4_MOE") == 0
    assert real(tmp_path / "moe2.gguf") == ours(native, "MXFP4_MOE")
    # read back as a GGUF file: its own bytes, and another type keeps the experts MXFP4
    from_file = resolve(str(tmp_path / "moe.gguf"))
    assert from_file.model_type == "gpt_oss" and from_file.native_format == "mxfp4"
    assert from_file.expert_bias and from_file.attn_sinks and from_file.router_bias
    assert estimate(from_file, "file").weights_bytes == sum(real(tmp_path / "moe.gguf").values())
    assert estimate(from_file, "native").weights_bytes == estimate(from_file, "file").weights_bytes
    assert estimate(from_file, "Q4_K_M").storage["experts"].startswith("MXFP4")
    assert math.isclose(estimate(from_file, "gguf:F32").weights_bytes, sum(real(src).values()))
    assert re.search(r"MXFP4", str(estimate(from_file, "file").storage))
