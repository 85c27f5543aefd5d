"""Hardware descriptions and the decode-speed estimate from memory bandwidth (tryouts.memory.hardware)."""

from __future__ import annotations

import pytest

from tryouts.catalog import lookup
from tryouts.errors import UsageError
from tryouts.memory import estimate_entry
from tryouts.memory.hardware import GPU_SPEEDS, bytes_per_token, cpu, gpu, parse_ram, speed, unified


def test_dense_model_reads_every_weight_but_the_embedding_table():
    e = estimate_entry(lookup("llama-3.1-8b-instruct"), "bf16", context=4096)
    table = 2 * 128_256 * 4096  # bf16 token embeddings: one row is read per token
    assert bytes_per_token(e) == e.weights_bytes - table + e.kv_bytes
    s = speed(e, gpu("H100"))
    assert s["ms_per_token"] == pytest.approx(1000 * bytes_per_token(e) / 3.35e12, abs=0.01)
    # the prompt's compute counts on a GPU with known FLOP/s: 2 x 8.03 B x 256 tokens / 989 TFLOP/s = 4.2 ms
    assert s["ttft_ms"] == pytest.approx(s["ms_per_token"] + 1000 * 2 * 8_030_261_248 * 256 / 989e12, abs=0.1)
    assert s["compute_counted"] and s["estimate"]


def test_moe_reads_only_the_experts_a_token_uses():
    """Qwen3-30B-A3B: 8 of 128 experts per token, so the routed experts count for 1/16 of their bytes."""
    e = estimate_entry(lookup("qwen3-30b-a3b"), "bf16", context=1)
    experts = e.weight_bytes_by_class["experts"]
    skipped_share = (e.params_total - e.params_active) / e.params_by_class["experts"]
    expected = e.weights_bytes - e.weight_bytes_by_class.get("embeddings", 0) * ("lm_head" in e.weight_bytes_by_class)
    expected -= round(experts * skipped_share) - e.kv_bytes
    assert bytes_per_token(e) == expected
    assert bytes_per_token(e) < 0.15 * e.weights_bytes  # about 3.3 B of 30.5 B parameters are read


def test_machines_and_their_usable_memory():
    assert parse_ram("32GB") == parse_ram("32") == 32 * 2**30  # RAM is sold in binary sizes
    assert parse_ram("32GiB") == 32 * 2**30 and parse_ram("500MB") == 500_000_000
    assert cpu(32 * 2**30).usable_bytes == int(0.85 * 32 * 2**30)
    assert unified(16 * 2**30).usable_bytes == int(16 * 2**30 * 2 / 3)  # 10,922.67 MiB, as Metal reports
    assert unified(64 * 2**30, "m3 max").usable_bytes == 48 * 2**30 and unified(64 * 2**30, "M3-Max").bandwidth == 400e9
    assert gpu("RTX-4090").bandwidth == 1008e9 and gpu(memory=24_000_000_000).bandwidth is None
    assert gpu("L4", bandwidth=250e9).bandwidth == 250e9
    assert all(src.startswith("http") for _, _, src in GPU_SPEEDS.values())
    assert speed(estimate_entry(lookup("llama-3.1-8b-instruct"), "bf16"), gpu(memory=24_000_000_000)) is None
    for bad in (lambda: unified(16 * 2**30, "M9"), lambda: gpu("Voodoo"), lambda: parse_ram("0GB"), lambda: gpu()):
        with pytest.raises(UsageError):
            bad()
