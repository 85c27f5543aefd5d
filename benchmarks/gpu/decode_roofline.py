"""Decode tokens/s against the memory-bandwidth roofline, dynamic cache vs static cache (+ torch.compile).

For each architecture (random weights of the real shapes, built from config numbers: no hub access), measures
the device's copy bandwidth, then greedy decode tokens/s at each batch size, with the generate arguments that
Tryouts' ``hf`` route uses (``tryouts.providers.hf_fast.FastPlan``: the same transformers ``generate`` call,
made here directly on the model, since a random 8B model has no tokenizer or folder to load from).

roofline tokens/s = bandwidth / weight bytes per token (bandwidth: copy, read + write counted);
roofline % = batch x per-sequence tokens/s / roofline tokens/s. Tryouts' memory estimate is recorded next to
the measured peak (CUDA). ``--tiny`` shrinks the models for a CPU (tests). README.md in this folder.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

MODES = {"dynamic": ("dynamic", False), "static": ("static", False), "static-compile": ("static", True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", choices=sorted(common.ARCHS), help="repeatable (default: all)")
    ap.add_argument("--tiny", action="store_true", help="shrunk models for a CPU (tests)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--modes", default=None, help="comma list of dynamic, static, static-compile (default: "
                    "dynamic,static-compile on CUDA, dynamic,static elsewhere)")
    ap.add_argument("--prompt-tokens", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=None)
    ap.add_argument("--bandwidth-mib", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--out", help="also write the JSON to this file")
    a = ap.parse_args(argv)

    import torch

    from tryouts.providers.hf_fast import FastPlan

    device = common.pick_device(a.device)
    cuda = device.startswith("cuda")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        common.need_cuda("decode_roofline.py")
    dtype = torch.bfloat16 if cuda else torch.float32
    modes = (a.modes or ("dynamic,static-compile" if cuda else "dynamic,static")).split(",")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}: one of {', '.join(MODES)}")
    batches = [int(b) for b in a.batches.split(",")]
    prompt = a.prompt_tokens or (8 if a.tiny else 128)
    new = a.new_tokens or (12 if a.tiny else 128)
    mib = a.bandwidth_mib or (64 if a.tiny or not cuda else 2048)

    bandwidth = common.copy_bandwidth(device, mib)
    result: dict = {"benchmark": "decode_roofline", "tiny": a.tiny, "env": common.environment(device),
                    "dtype": str(dtype).replace("torch.", ""), "prompt_tokens": prompt, "new_tokens": new,
                    "bandwidth_bytes_per_s": bandwidth, "bandwidth_note": "device copy, read + write counted",
                    "via": "transformers generate with Tryouts' hf_fast.FastPlan arguments", "runs": []}
    lines = [f"device {device}  copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)"]
    for arch in a.arch or sorted(common.ARCHS):
        model = common.build_model(arch, a.tiny, device, dtype)
        wbytes = common.weight_bytes_per_token(model)
        bound = bandwidth / wbytes
        vocab = common.config_dict(arch, a.tiny)["vocab_size"]
        lines.append(f"{arch}: {wbytes / 1e9:.3f} GB of weights per token, roofline {bound:.1f} tok/s")
        for mode in modes:
            cache, compiled = MODES[mode]
            plan = FastPlan(cache=cache, compile=compiled, max_cache_len=prompt + new + 8 if cache == "static" else None)
            kw = plan.generate_kwargs()
            for b in batches:
                if cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                common.timed_generate(model, b, prompt, new, kw, device, vocab)  # warm-up (compiles here)
                rate = common.decode_rate(model, b, prompt, new, kw, device, vocab)
                pct = 100 * b * rate["tokens_per_s"] / bound
                run = {"arch": arch, "mode": mode, "batch": b, "weight_bytes_per_token": wbytes,
                       "roofline_tokens_per_s": bound, **rate,
                       "aggregate_tokens_per_s": b * rate["tokens_per_s"], "roofline_pct": pct,
                       "estimate": common.memory_estimate(arch, a.tiny, "bf16" if cuda else "fp32", prompt + new, b)}
                if cuda:
                    run["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
                    run["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
                result["runs"].append(run)
                lines.append(f"  {mode:15s} batch {b:3d}: {rate['tokens_per_s']:9.1f} tok/s per sequence, "
                             f"{b * rate['tokens_per_s']:9.1f} total, {pct:5.1f} % of roofline")
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    common.emit(result, a.json, a.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
