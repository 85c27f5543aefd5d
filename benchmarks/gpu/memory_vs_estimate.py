"""Tryouts' memory estimate (``tryouts.memory.estimate`` on ``Arch.from_config`` of the same config numbers)
against the measured CUDA peak, for the runs recorded by decode_roofline.py and quantized.py.

Reads their JSON files, prints one line per run and, with ``--json``, the comparison. The estimate counts a fixed
1 GiB + 5 % overhead for the runtime (CUDA context, allocator slack), which ``torch.cuda.max_memory_allocated``
does not see; both the total and the weights + KV part are compared. Target (issue 19): total within 15 % of
``torch.cuda.max_memory_allocated``. Runs measured without a GPU have no peak and are listed as not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

TARGET = 0.15


def compare(run: dict) -> dict:
    est = run.get("estimate") or {}
    peak = run.get("peak_allocated_bytes")
    row = {k: run.get(k) for k in ("arch", "mode", "batch", "quantization") if k in run}
    row.update(estimate_total_bytes=est.get("total_bytes"),
               estimate_weights_kv_bytes=(est.get("weights_bytes") or 0) + (est.get("kv_bytes") or 0),
               measured_peak_bytes=peak)
    if not peak or not est:
        row["status"] = "not measured (no CUDA peak in this run)"
        return row
    row["total_error"] = (est["total_bytes"] - peak) / peak
    row["weights_kv_error"] = (row["estimate_weights_kv_bytes"] - peak) / peak
    row["within_target"] = abs(row["total_error"]) <= TARGET
    row["status"] = "ok" if row["within_target"] else "outside 15 %"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="JSON written by decode_roofline.py / quantized.py (--out)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = []
    for path in a.files:
        with open(path) as f:
            data = json.load(f)
        rows += [{"source": data.get("benchmark"), **compare(r)} for r in data.get("runs", []) if "error" not in r]
    lines = []
    for r in rows:
        what = " ".join(str(r[k]) for k in ("arch", "mode", "quantization", "batch") if r.get(k) is not None)
        if "total_error" in r:
            lines.append(f"{what}: estimate {r['estimate_total_bytes'] / 2**30:.2f} GiB, measured "
                         f"{r['measured_peak_bytes'] / 2**30:.2f} GiB ({100 * r['total_error']:+.1f} %) {r['status']}")
        else:
            lines.append(f"{what}: {r['status']}")
    common.emit({"benchmark": "memory_vs_estimate", "target": TARGET, "rows": rows}, a.json, a.out, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
