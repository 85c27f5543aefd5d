"""tryouts load against another load tool, guidellm, on the same scripted server, schedule and data (issue 14).

    python -m venv /tmp/gl && /tmp/gl/bin/pip install guidellm     # its own environment: it pulls torch
    .venv/bin/python benchmarks/load_crosscheck.py --guidellm /tmp/gl/bin/guidellm [--requests 600]

The replay server (127.0.0.1) sends 16 content chunks, the first 50 ms after it reads a request, then 5 ms
apart: whatever a tool reports above 50 ms TTFT is the server's own overhead plus the tool's. Both tools get
the same synthetic prompts (32 tokens by the demo model's tokenizer, built offline) and the same points:
constant 50 and 200 requests/s, and closed loops of 32 and 128 streams. guidellm runs as its CLI does
(``guidellm run``, OpenAI HTTP backend, HTTP/1.1); tryouts as ``tryouts load`` does (usecases.load.run_load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tryouts.demo.models import ensure_demo_models
from tryouts.testing.replay import start_replay_server
from tryouts.usecases.load import LoadSettings, run_load

SCRIPT = "tokens=16;ttft_ms=50;itl_ms=5"
POINTS = (("constant", "rate", 50), ("constant", "rate", 200), ("concurrent", "streams", 32),
          ("concurrent", "streams", 128))


def guidellm(exe: str, root: str, tokenizer: Path, kind: str, key: str, value: int, n: int, out: Path) -> dict:
    subprocess.run([
        exe, "run", "--backend", f"kind=openai_http,target={root},model={SCRIPT},http2=false",
        "--profile", f"kind={kind},{key}={value}", "--constraint", f"kind=max_requests,count={n}",
        "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
        "--data", "kind=synthetic_text,prompt_tokens=32,output_tokens=16",
        "--output", f"kind=json,path={out}", "--disable-console"],
        check=True, capture_output=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    m = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    ttft, itl = (m[k]["successful"]["percentiles"] for k in ("time_to_first_token_ms", "inter_token_latency_ms"))
    return {"completed": m["request_totals"]["successful"], "p50_ttft": ttft["p50"], "p99_ttft": ttft["p99"],
            "p50_itl": itl["p50"], "rps": m["requests_per_second"]["successful"]["mean"]}


def tryouts(base: str, tokenizer: Path, kind: str, value: int, n: int) -> dict:
    settings = LoadSettings(profile=kind, requests=n, rate=value if kind == "constant" else None,
                            streams=value if kind == "concurrent" else None, prompt_tokens="32",
                            tokenizer=str(tokenizer), max_tokens=16)
    t = run_load(f"openai-compat:{base}#{SCRIPT}", settings)
    return {"completed": t["completed"], "p50_ttft": t["p50_ttft_ms"], "p99_ttft": t["p99_ttft_ms"],
            "p50_itl": t["p50_itl_ms"], "rps": t["request_throughput"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guidellm", required=True, help="the guidellm executable (in its own environment)")
    ap.add_argument("--requests", type=int, default=600)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = ensure_demo_models(Path(tmp) / "demo").hf_dir
        print("| point | tool | completed | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | req/s |\n|---|---|---|---|---|---|---|")
        with start_replay_server() as base:
            for kind, key, value in POINTS:
                rows = {"guidellm": guidellm(args.guidellm, base.removesuffix("/v1"), tokenizer, kind, key, value,
                                             args.requests, Path(tmp) / f"{kind}{value}.json"),
                        "tryouts load": tryouts(base, tokenizer, kind, value, args.requests)}
                for tool, r in rows.items():
                    print(f"| {kind} {key}={value} | {tool} | {r['completed']} | {r['p50_ttft']:.1f} | "
                          f"{r['p99_ttft']:.1f} | {r['p50_itl']:.2f} | {r['rps']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
