"""vLLM in process: Tryouts' ``vllm:`` route against vLLM's own ``LLM.generate`` on the same random-weight
models (real architectures) and the same prompt, at batch 1 and batch 32. Needs a CUDA GPU and vLLM
(``pip install vllm`` on the GPU machine); without either it exits with status 2 and a message.

Each engine runs in its own child process (two vLLM engines do not share one GPU's memory budget): this script
calls itself with ``--engine tryouts`` or ``--engine own``. Figures: aggregate output tokens/s over the batch,
from the first token to the last (Tryouts: its stamped events; own: wall time of generate minus a 1-token
generate). README.md in this folder.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common


async def tryouts_engine(folder: str, batch: int, prompt: str, new: int) -> dict:
    from tryouts.providers import create_provider
    from tryouts.types import Delta, GenParams, Message, ModelSpec, Request

    p = create_provider(ModelSpec.parse(f"vllm:{folder}", {"max_model_len": 4096}))
    await p.load()
    req = Request(messages=[Message(role="user", content=prompt)], params=GenParams(max_tokens=new, temperature=0.0))

    async def one() -> list[int]:
        return [ev.t async for ev in p.stream(req) if isinstance(ev, Delta)]

    t = time.perf_counter_ns()
    streams = await asyncio.gather(*(one() for _ in range(batch)))
    firsts = [s[0] for s in streams if s]
    last = max(s[-1] for s in streams if s)
    tokens = sum(len(s) for s in streams)
    await p.aclose()
    decode_s = (last - max(firsts)) / 1e9
    return {"ttft_s": (min(firsts) - t) / 1e9, "tokens": tokens,
            "tokens_per_s": (tokens - batch) / decode_s if decode_s > 0 else None}


def own_engine(folder: str, batch: int, prompt: str, new: int) -> dict:
    from vllm import LLM, SamplingParams

    llm = LLM(model=folder, max_model_len=4096)
    text = llm.get_tokenizer().apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                   add_generation_prompt=True)
    llm.generate([text], SamplingParams(max_tokens=1, temperature=0.0))  # warm-up

    def timed(n: int) -> tuple[float, int]:
        t = time.perf_counter()
        outs = llm.generate([text] * batch, SamplingParams(max_tokens=n, temperature=0.0))
        return time.perf_counter() - t, sum(len(o.outputs[0].token_ids) for o in outs)

    first_s, _ = timed(1)
    full_s, tokens = timed(new)
    return {"ttft_s": first_s, "tokens": tokens, "tokens_per_s": (tokens - batch) / max(full_s - first_s, 1e-9)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", choices=sorted(common.ARCHS))
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--engine", choices=["tryouts", "own"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    common.need_cuda("vllm_inproc.py")
    if importlib.util.find_spec("vllm") is None:
        print("vllm_inproc.py: vLLM is not installed: pip install vllm on the GPU machine (no CPU wheel).",
              file=sys.stderr)
        return 2
    prompt = common.prompt_of(128)
    if a.engine:  # a child: one engine, one batch size per line of JSON
        out = []
        for b in (int(x) for x in a.batches.split(",")):
            r = (asyncio.run(tryouts_engine(a.folder, b, prompt, a.new_tokens)) if a.engine == "tryouts"
                 else own_engine(a.folder, b, prompt, a.new_tokens))
            out.append({"batch": b, **r})
        print("RESULT " + json.dumps(out))
        return 0
    import torch

    result: dict = {"benchmark": "vllm_inproc", "env": common.environment("cuda"), "runs": []}
    lines = []
    for arch in a.arch or sorted(common.ARCHS):
        scratch = tempfile.mkdtemp(prefix=f"tryouts-{arch}-", dir=a.scratch)
        try:
            common.save_folder(arch, a.tiny, scratch, torch.bfloat16)
            for engine in ("tryouts", "own"):
                p = subprocess.run([sys.executable, __file__, "--engine", engine, "--folder", scratch,
                                    "--batches", a.batches, "--new-tokens", str(a.new_tokens)],
                                   capture_output=True, text=True, timeout=900)
                got = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
                if p.returncode or not got:
                    result["runs"].append({"arch": arch, "engine": engine, "error": p.stderr[-2000:]})
                    lines.append(f"{arch} {engine}: failed (see JSON)")
                    continue
                for r in json.loads(got[-1][7:]):
                    result["runs"].append({"arch": arch, "engine": engine, **r})
                    lines.append(f"{arch} {engine:7s} batch {r['batch']:3d}: {r['tokens_per_s'] or 0:9.1f} tok/s")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    common.emit(result, a.json, a.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
