"""The advisor's points: capability first (size, generation, the format it runs in), then fit, cost and speed.

Capability, in points where 2 points = twice the parameters (docs/advisor.md):

* open models: ``2 x log2(effective B parameters) + 3 x recency − the format's penalty``; a dense model's
  effective size is its parameter count, an MoE's the geometric mean of total and active parameters (a rule of
  thumb: Mixtral 8x7B ≈ a 25 B dense model, Qwen3-30B-A3B ≈ 10 B);
* APIs: by price tier, flagship 18, mid 14, small 11 (about a 512 B, 128 B and 45 B open model), + 3 x recency.

Recency is 0–1 from the knowledge cutoff (2021 → 0, 2026 → 1), 0 when unknown. Format penalties: 16-bit and
the checkpoint's own format 0, 8-bit 0.1, Q6_K 0.2, Q5_K_M 0.3, Q4_K_M 0.6, Q3_K_M 1.5: an 8 B model at 4-bit
(5.4) outranks a 1.5 B model at 16-bit (1.2).
"""

from __future__ import annotations

import math
from typing import Any

#: weight formats tried on a CUDA GPU, widest first ("native": as the checkpoint ships, e.g. gpt-oss's MXFP4)
GPU_FORMATS = ("native", "fp8", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M")
#: on a CPU or unified memory only llama.cpp-family engines (llama.cpp, Ollama, LM Studio) run: GGUF
GGUF_FORMATS = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M")
PENALTY = {"native": 0.0, "bf16": 0.0, "F16": 0.0, "fp8": 0.1, "Q8_0": 0.1, "Q6_K": 0.2, "Q5_K_M": 0.3,
           "Q4_K_M": 0.6, "Q3_K_M": 1.5}
API_CAPABILITY = {"flagship": 18.0, "mid": 14.0, "small": 11.0}
#: quality "good": capability counts up to here (a 45 B-class model); past it a tenth, so cost and fit decide
GOOD_ENOUGH = 11.0
#: "good performance on a budget → Mistral/LLaMA": open models of 7–72 B effective parameters
MID_CLASS = (7e9, 72e9)
MID_CLASS_POINTS = 1.5


def _get(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def recency(entry: Any) -> float:
    """0–1 from the knowledge cutoff (2021 → 0, 2026 → 1): newer models of a size or tier first."""
    cutoff = str(_get(entry, "knowledge_cutoff") or "")
    try:
        year = int(cutoff[:4]) + (int(cutoff[5:7]) - 1) / 12 if len(cutoff) >= 7 else int(cutoff[:4])
    except ValueError:
        return 0.0
    return min(1.0, max(0.0, (year - 2021) / 5))


def effective_params(entry: Any) -> float | None:
    """Parameters a dense model of similar quality would have: total, or √(total x active) for an MoE."""
    params = _get(entry, "params")
    total = _get(params, "total") if params else None
    if not total:
        return None
    active = _get(params, "active")
    return math.sqrt(float(total) * float(active)) if active else float(total)


def capability(entry: Any, api_tier: str | None, fmt: str | None = None) -> float:
    """Capability points (module doc); ``api_tier`` for an API-only model, ``fmt`` the format an open one runs in."""
    rec = 3.0 * recency(entry)
    if _get(entry, "access") != "open":
        return API_CAPABILITY.get(api_tier or "mid", 13.0) + rec
    eff = effective_params(entry)
    if eff is None:
        return API_CAPABILITY["small"] + rec  # size unknown: counted as a small model
    return 2.0 * math.log2(eff / 1e9) + rec - PENALTY.get(fmt or "native", 0.0)


def mid_class(entry: Any) -> bool:
    """Whether an open model is in the Mistral / Llama class (7–72 B effective parameters)."""
    eff = effective_params(entry)
    return _get(entry, "access") == "open" and eff is not None and MID_CLASS[0] <= eff <= MID_CLASS[1]


def quality_points(entry: Any, api_tier: str | None, fmt: str | None, quality: str) -> tuple[float, list[str]]:
    """Points for the quality wanted: ``best`` counts all capability, ``good`` up to :data:`GOOD_ENOUGH`."""
    cap = capability(entry, api_tier, fmt)
    reasons = []
    if quality == "best":
        if _get(entry, "access") != "open" and api_tier == "flagship":
            reasons.append("flagship tier: the best quality")
        return cap, reasons
    points = min(cap, GOOD_ENOUGH) + 0.1 * max(0.0, cap - GOOD_ENOUGH)  # past it, a tenth: a tie-breaker
    if mid_class(entry):
        points += MID_CLASS_POINTS
        reasons.append("Mistral / Llama class (7–72 B): good quality on a budget")
    elif _get(entry, "access") != "open" and api_tier == "mid":
        reasons.append("mid tier: good quality on a budget")
    return points, reasons


def price_points(blended: float | None, budget: str) -> tuple[float, str]:
    """Points for an API's price (USD per million tokens, 3 input : 1 output) under ``budget``, and a reason."""
    if blended is None:
        return -1.0, "API: price unknown to Tryouts"
    per = f"${blended:.2f} per million tokens (3:1 input:output)"
    if budget == "low":
        if blended <= 1.0:
            return 4.0, "cheap API: " + per
        return (1.0 if blended <= 4.0 else -4.0), "API: " + per
    if budget == "medium":
        return (2.0 if blended <= 4.0 else (0.0 if blended <= 15.0 else -2.0)), "API: " + per
    return 1.0, "API: " + per


def formats_for(kind: str | None) -> tuple[str, ...]:
    """The weight formats tried, widest first, on hardware of ``kind`` (gpu, cpu, unified; None: a GPU)."""
    return GGUF_FORMATS if kind in ("cpu", "unified") else GPU_FORMATS


def local_size_points(need: float) -> tuple[float, str | None]:
    """With no hardware given: a model's smallest footprint decides what machine it asks for."""
    if need <= 24e9:
        return 0.5, "fits a 24 GB consumer GPU"
    if need <= 80e9:
        return 0.0, "needs an 80 GB GPU"
    if need <= 141e9:
        return -1.0, "needs a 141 GB GPU"
    return -4.0, "needs several GPUs"
