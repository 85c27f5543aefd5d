#!/usr/bin/env bash
# The GPU benchmarks of issue 19 in one bounded command (benchmarks/gpu/README.md).
# Usage: benchmarks/gpu/run_all.sh OUT_DIR [PYTHON]
# Prerequisites on the GPU machine: this repository installed (pip install -e .) with a CUDA build of torch,
# transformers, bitsandbytes; for vllm_inproc.py also `pip install vllm`. Installs nothing itself.
set -u
OUT=${1:?usage: run_all.sh OUT_DIR [PYTHON]}
PY=${2:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
step() {  # step NAME SECONDS ARGS...: one script, bounded in time, its JSON in OUT, its log next to it
  local name=$1 limit=$2; shift 2
  echo "== $name (at most ${limit}s)"
  timeout "$limit" "$PY" "$HERE/$name.py" "$@" --json --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  echo "   exit $? -> $OUT/$name.json ($OUT/$name.log)"
}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))" \
  || { echo "run_all.sh: needs a CUDA GPU"; exit 2; }
step decode_roofline 1500 --batches 1,32
step quantized 900 --arch llama3.1-8b
step vllm_inproc 1800 --batches 1,32
"$PY" "$HERE/memory_vs_estimate.py" "$OUT/decode_roofline.json" "$OUT/quantized.json" --json \
  --out "$OUT/memory_vs_estimate.json" >"$OUT/memory_vs_estimate.log" 2>&1
echo "== memory_vs_estimate -> $OUT/memory_vs_estimate.json"
