"""Tryouts' decode-speed estimate against llama.cpp's measured decode speed on this machine.

    .venv/bin/python benchmarks/decode_estimate.py [--array-mib 512] [--bw-repeats 10] [--tokens 128]
                                                   [--repeats 5] [--threads 1,2] [--n-ctx 512]
                                                   [--max-seconds 300] [--json [FILE]]

The estimate (``tryouts.memory.hardware``): decode time per token = bytes read per token / memory bandwidth,
an upper bound on speed when every weight and the KV cache come from RAM once per token. Here it is
computed for the real SmolLM2-135M-Instruct Q4_1 GGUF (``tryouts.demo.real.ensure_smollm2``) from the
file's own tensor table (``resolve(path)``, ``estimate(arch, dtype="file", context=n_ctx)``) at this
machine's measured bandwidth, and compared with llama.cpp's decode speed for the same file.

1. **Bandwidth**, like STREAM, single-threaded, with numpy arrays of ``--array-mib`` MiB each (default 512,
   16x a 32 MiB L3), best of ``--bw-repeats``:
   * copy: ``np.copyto(b, a)``, counted as read + write (2 x the array's bytes, STREAM's convention, which
     does not count the write-allocate read);
   * read: three read-only reductions over one float64 array, ``a.sum()`` (numpy's pairwise sum),
     ``a.max()`` and ``np.bitwise_or.reduce`` of its bits; each is a lower bound on read bandwidth (a
     reduction can be limited by its arithmetic, as ``sum`` is), so the fastest is taken as the read
     bandwidth, and that is the estimate's bandwidth (decode mostly reads);
   * read with 2 threads: the same fastest reduction on two halves of the array in two threads (numpy
     releases the GIL), for the 2-thread decode.
   This machine is a small VM on a shared host, and its bandwidth moves from minute to minute with the
   neighbours' load (by up to 2x between runs), so all of it is measured twice, before and after the
   decode, and the best of both is used; both are reported.
2. **Decode** with the ``llama_cpp`` binding: the model loaded with ``n_ctx=--n-ctx``, ``n_threads`` and
   ``n_threads_batch`` = 1, then 2, default ``n_batch``; one warm-up generation, then ``--repeats`` times:
   ``llm.reset()``, llama.cpp's counters reset (``llama_perf_context_reset``), a fixed prompt evaluated and
   ``--tokens`` tokens generated greedily (``temp=0``; an end-of-sequence token does not stop the loop, so
   every repeat generates exactly ``--tokens``). What is timed:
   * **decode tokens/s (llama.cpp)** = ``n_eval / t_eval_ms``: llama.cpp's own counters, the one-token
     ``llama_decode`` calls only (the prompt's evaluation is ``t_p_eval_ms``, apart; sampling is outside);
     ``n_eval`` = tokens - 1 (the last generated token is not fed back);
   * **decode tokens/s (wall)** = (tokens - 1) / (time of the last token - time of the first token), stamped
     with ``perf_counter`` as the binding yields them: the same evaluations plus greedy sampling over the
     49,152-token vocabulary and the binding's Python per token.
   The best of the repeats is reported (as the bandwidth is), with the median beside it.
3. **The estimate** at the measured read bandwidth (1 thread; and at the 2-thread read bandwidth for the
   2-thread runs): ``speed(est, cpu(ram, bandwidth=read))``, whose bytes per token count the KV cache at the
   full ``n_ctx`` (the tool's convention, the slowest point), and, as a closer match to what this run
   holds, ``bytes_per_token(est, context=prompt + tokens / 2)``, the mean KV length during the decode.

Prints a table (Markdown, for benchmarks/RESULTS.md); ``--json`` prints the results as JSON instead
(``--json FILE`` writes them to FILE as well as printing the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

PROMPT = ("Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. "
          "Describe the sea, the weather and every person in the village.")


class Deadline:
    """A wall-clock budget for the whole run: every loop checks it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise SystemExit(f"--max-seconds ran out during {what}")


def _best(fn: Any, repeats: int, deadline: Deadline, what: str) -> float:
    best = float("inf")
    for _ in range(repeats):
        deadline.check(what)
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bandwidth(mib: int, repeats: int, deadline: Deadline) -> dict[str, Any]:
    """STREAM-like copy and read bandwidths in bytes/s (module doc)."""
    a = np.ones(mib * 2**20 // 8, dtype=np.float64)
    b = np.empty_like(a)
    np.copyto(b, a)  # touch every page of b before timing
    bits = a.view(np.uint64)
    n = a.nbytes
    copy = 2 * n / _best(lambda: np.copyto(b, a), repeats, deadline, "the copy bandwidth")
    reads = {
        "sum": n / _best(a.sum, repeats, deadline, "the read bandwidth (sum)"),
        "max": n / _best(a.max, repeats, deadline, "the read bandwidth (max)"),
        "bitwise_or": n / _best(lambda: np.bitwise_or.reduce(bits), repeats, deadline, "the read bandwidth (or)"),
    }
    kernel = max(reads, key=reads.__getitem__)
    halves = (a[: len(a) // 2], a[len(a) // 2:]) if kernel != "bitwise_or" else (bits[: len(a) // 2], bits[len(a) // 2:])
    reduce = {"sum": np.sum, "max": np.max, "bitwise_or": np.bitwise_or.reduce}[kernel]

    def two() -> None:
        ts = [threading.Thread(target=reduce, args=(h,)) for h in halves]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)

    read2 = n / _best(two, repeats, deadline, "the 2-thread read bandwidth")
    return {"array_bytes": n, "repeats": repeats, "copy": copy, "read_by_kernel": reads, "read_kernel": kernel,
            "read": reads[kernel], "read_2_threads": read2}


def decode(path: Path, threads: int, n_ctx: int, tokens: int, repeats: int, deadline: Deadline) -> dict[str, Any]:
    """llama.cpp's decode speed for ``path`` with ``threads`` threads (module doc)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          seed=0, verbose=False)
    ctx = llm._ctx.ctx
    prompt = llm.tokenize(PROMPT.encode("utf-8"), add_bos=True)
    if len(prompt) + tokens > n_ctx:
        raise SystemExit(f"--n-ctx {n_ctx} is too small for {len(prompt)} prompt + {tokens} tokens")

    def once(count: int) -> dict[str, float]:
        llm.reset()
        llama_cpp.llama_perf_context_reset(ctx)
        stamps: list[float] = []
        for _ in llm.generate(prompt, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) >= count:  # bounded: exactly `count` tokens, end-of-sequence or not
                break
        p = llama_cpp.llama_perf_context(ctx)
        return {"n_p_eval": p.n_p_eval, "t_p_eval_ms": p.t_p_eval_ms, "n_eval": p.n_eval, "t_eval_ms": p.t_eval_ms,
                "llama_tps": 1000 * p.n_eval / p.t_eval_ms if p.t_eval_ms else 0.0,
                "wall_tps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0}

    deadline.check(f"the warm-up ({threads} threads)")
    once(min(16, tokens))
    runs = []
    for _ in range(repeats):
        deadline.check(f"the decode ({threads} threads)")
        runs.append(once(tokens))
    if any(r["n_eval"] != tokens - 1 for r in runs):
        raise SystemExit(f"expected n_eval = {tokens - 1}, got {[r['n_eval'] for r in runs]}")
    llama = [r["llama_tps"] for r in runs]
    wall = [r["wall_tps"] for r in runs]
    llm.close()
    return {"threads": threads, "prompt_tokens": len(prompt), "tokens": tokens, "runs": runs,
            "llama_tps_best": max(llama), "llama_tps_median": statistics.median(llama),
            "wall_tps_best": max(wall), "wall_tps_median": statistics.median(wall)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--array-mib", type=int, default=512)
    ap.add_argument("--bw-repeats", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE")
    args = ap.parse_args(argv)
    if not (1 <= args.bw_repeats <= 50 and 1 <= args.repeats <= 50 and 2 <= args.tokens <= 4096):
        ap.error("--bw-repeats and --repeats must be 1..50, --tokens 2..4096")
    deadline = Deadline(args.max_seconds)

    from tryouts.demo.real import ensure_smollm2
    from tryouts.memory import estimate, resolve
    from tryouts.memory.hardware import bytes_per_token, cpu, speed

    path = ensure_smollm2()
    before = bandwidth(args.array_mib, args.bw_repeats, deadline)
    threads = [int(t) for t in args.threads.split(",")][:4]
    runs = [decode(path, t, args.n_ctx, args.tokens, args.repeats, deadline) for t in threads]
    after = bandwidth(args.array_mib, args.bw_repeats, deadline)
    bw = {k: max(before[k], after[k]) for k in ("copy", "read", "read_2_threads")}
    bw.update(array_bytes=before["array_bytes"], repeats=args.bw_repeats, before=before, after=after)

    est = estimate(resolve(str(path)), dtype="file", context=args.n_ctx)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mean_ctx = runs[0]["prompt_tokens"] + args.tokens // 2
    rows = []
    for r in runs:
        read = bw["read"] if r["threads"] == 1 else bw["read_2_threads"]
        s = speed(est, cpu(ram, bandwidth=read))
        mean_bytes = bytes_per_token(est, context=mean_ctx)
        rows.append({**{k: v for k, v in r.items() if k != "runs"}, "bandwidth": read,
                     "estimate_tps": s["tokens_per_s"], "bytes_per_token": s["bytes_per_token"],
                     "estimate_tps_mean_kv": read / mean_bytes, "bytes_per_token_mean_kv": mean_bytes,
                     "ratio_llama": r["llama_tps_best"] / s["tokens_per_s"],
                     "ratio_wall": r["wall_tps_best"] / s["tokens_per_s"],
                     "ratio_llama_mean_kv": r["llama_tps_best"] * mean_bytes / read})
    result = {"model": path.name, "file_bytes": path.stat().st_size, "n_ctx": args.n_ctx,
              "weights_by_class": dict(est.weight_bytes_by_class), "kv_bytes_at_n_ctx": est.kv_bytes,
              "mean_kv_context": mean_ctx, "bandwidth": bw, "rows": rows, "runs": runs,
              "machine": {"cpus": os.cpu_count(), "ram_bytes": ram, "python": platform.python_version(),
                          "numpy": np.__version__, "llama_cpp": __import__("llama_cpp").__version__}}
    if args.json == "-":
        print(json.dumps(result, indent=1))
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))

    gb = 1e9

    def line(b: dict[str, Any]) -> str:
        reads = ", ".join(f"{k} {v / gb:.1f}" for k, v in b["read_by_kernel"].items())
        return (f"copy {b['copy'] / gb:.1f} GB/s (read + write), read {b['read'] / gb:.1f} GB/s ({reads}), "
                f"read with 2 threads {b['read_2_threads'] / gb:.1f} GB/s")

    print(f"{path.name}: {result['file_bytes'] / 1e6:.1f} MB file; n_ctx {args.n_ctx}; "
          f"prompt {runs[0]['prompt_tokens']} tokens, {args.tokens} generated, best of {args.repeats}")
    print(f"bandwidth, {bw['array_bytes'] / 2**20:.0f} MiB arrays, best of {bw['repeats']}, 1 thread unless said:")
    print(f"  before the decode: {line(before)}")
    print(f"  after the decode:  {line(after)}")
    print(f"  best of both:      copy {bw['copy'] / gb:.1f} GB/s, read {bw['read'] / gb:.1f} GB/s, "
          f"read with 2 threads {bw['read_2_threads'] / gb:.1f} GB/s")
    print(f"bytes per token: {rows[0]['bytes_per_token'] / 1e6:.1f} MB with the KV cache at n_ctx "
          f"({est.kv_bytes / 1e6:.1f} MB of it), {rows[0]['bytes_per_token_mean_kv'] / 1e6:.1f} MB at the mean "
          f"KV length ({mean_ctx})\n")
    print("| threads | bandwidth used (read) | estimate tok/s (KV at n_ctx) | estimate tok/s (mean KV) "
          "| measured tok/s, llama.cpp counters (best / median) | measured tok/s, wall (best / median) "
          "| measured / estimate (counters, wall) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['threads']} | {r['bandwidth'] / gb:.1f} GB/s | {r['estimate_tps']:.1f} "
              f"| {r['estimate_tps_mean_kv']:.1f} | {r['llama_tps_best']:.1f} / {r['llama_tps_median']:.1f} "
              f"| {r['wall_tps_best']:.1f} / {r['wall_tps_median']:.1f} "
              f"| {r['ratio_llama']:.2f}, {r['ratio_wall']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
