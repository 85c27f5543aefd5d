"""Quantized loading through Tryouts' ``hf`` route: ``quantization=int8`` and ``nf4`` (bitsandbytes) against
bf16, with the memory taken (``torch.cuda.max_memory_allocated``), load time and decode speed. CUDA only: on
a machine without a CUDA GPU it exits with status 2 and a message. README.md in this folder.

Each architecture's random-weight model (real shapes) is saved once to a scratch folder with a word
tokenizer, then loaded by Tryouts' ``HFProvider`` with each quantization and run on a prompt: tokens/s come
from the route's own stamped events (after the first token), memory from the CUDA allocator's peak.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common


async def run_route(folder: str, opts: dict, prompt: str, new_tokens: int) -> dict:
    import torch

    from tryouts.providers import create_provider
    from tryouts.types import Delta, Finish, GenParams, Message, ModelSpec, Request

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    p = create_provider(ModelSpec.parse(f"hf:{folder}", opts))
    t = time.perf_counter()
    await p.load()
    load_s = time.perf_counter() - t
    after_load = torch.cuda.max_memory_allocated()
    req = Request(messages=[Message(role="user", content=prompt)],
                  params=GenParams(max_tokens=new_tokens, temperature=0.0))
    stamps, finish = [], None
    async for ev in p.stream(req):
        if isinstance(ev, Delta):
            stamps.append(ev.t)
        elif isinstance(ev, Finish):
            finish = ev.t
    decode_s = (stamps[-1] - stamps[0]) / 1e9 if len(stamps) > 1 else 0.0
    out = {"load_s": load_s, "peak_after_load_bytes": after_load,
           "peak_allocated_bytes": torch.cuda.max_memory_allocated(), "tokens": len(stamps),
           "tokens_per_s": (len(stamps) - 1) / decode_s if decode_s else None,
           "generate_s": ((finish or 0) - stamps[0]) / 1e9 if stamps else None,
           "plan": repr(getattr(p, "plan", None))}
    await p.aclose()
    del p
    gc.collect()
    torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", choices=sorted(common.ARCHS), help="repeatable (default: llama3.1-8b)")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--quant", default="bf16,int8,nf4")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--scratch", default=None, help="folder for the saved models (default: a temporary one)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    common.need_cuda("quantized.py")
    import importlib.util

    import torch
    if importlib.util.find_spec("bitsandbytes") is None:
        print("quantized.py: bitsandbytes is not installed (pip install bitsandbytes).", file=sys.stderr)
        return 2
    result: dict = {"benchmark": "quantized", "env": common.environment("cuda"), "runs": []}
    lines = []
    for arch in a.arch or ["llama3.1-8b"]:
        scratch = tempfile.mkdtemp(prefix=f"tryouts-{arch}-", dir=a.scratch)
        try:
            common.save_folder(arch, a.tiny, scratch, torch.bfloat16)
            for q in a.quant.split(","):
                opts = {"dtype": "bfloat16"} if q == "bf16" else {"dtype": "bfloat16", "quantization": q}
                try:
                    run = asyncio.run(run_route(scratch, opts, common.prompt_of(128), a.new_tokens))
                except Exception as exc:  # one failing quantization must not hide the others' figures
                    run = {"error": f"{type(exc).__name__}: {exc}"}
                run.update(arch=arch, quantization=q,
                           estimate=common.memory_estimate(arch, a.tiny, "bf16" if q == "bf16" else q, 128 + a.new_tokens, 1))
                result["runs"].append(run)
                lines.append(f"{arch} {q:5s}: " + (run.get("error") or
                             f"peak {run['peak_allocated_bytes'] / 2**30:.2f} GiB, {run['tokens_per_s'] or 0:.1f} tok/s, "
                             f"load {run['load_s']:.1f} s, estimate {run['estimate']['total_bytes'] / 2**30:.2f} GiB"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    common.emit(result, a.json, a.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
