"""Hardware a model must run on (a GPU, a CPU with RAM, or unified memory) and the speed estimate from bandwidth.

Generating a token reads every weight the token uses once, plus the KV cache so far; at batch 1 that read is
the bottleneck, so::

    decode time per token  ≈  bytes read per token / memory bandwidth
    bytes read per token   =  weights − token-embedding table (one row is read; a tied table counts, as the LM
                              head reads it whole) − the routed experts a token skips (MoE: only
                              experts_per_token of experts are read) + the KV cache at the context length
    time to first token    ≈  one such read + prompt FLOPs (2 × active parameters × prompt tokens) / peak
                              16-bit FLOP/s, where the device's FLOP/s are known (GPUs)

These are estimates at the vendor's peak figures: real engines reach roughly 50–85 % of peak bandwidth, so
real decode is slower; the figures are labelled as estimates wherever shown (docs/memory.md compares them
with measurements).

Usable memory: a GPU's CUDA-reported total (:data:`~tryouts.memory.gpus.GPUS`); a CPU machine's RAM less
15 % for the system and other programs; unified memory (Apple silicon) as much as Metal's
``recommendedMaxWorkingSetSize`` allows: two thirds of RAM up to 32 GiB, three quarters above.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UsageError
from .gpus import GPUS, find_gpu

GBPS = 1e9
TFLOPS = 1e12

_NV = "https://www.nvidia.com/en-us/data-center/"
#: GPU name (as in GPUS) -> (memory bandwidth bytes/s, dense 16-bit tensor FLOP/s or None, source)
GPU_SPEEDS: dict[str, tuple[float, float | None, str]] = {
    "H200-141GB": (4800 * GBPS, 989 * TFLOPS, _NV + "h200/"),
    "H100-80GB": (3350 * GBPS, 989 * TFLOPS, _NV + "h100/ (SXM)"),
    "A100-80GB": (2039 * GBPS, 312 * TFLOPS, _NV + "a100/ (SXM)"),
    "A100-40GB": (1555 * GBPS, 312 * TFLOPS, _NV + "a100/"),
    "L40S-48GB": (864 * GBPS, 362 * TFLOPS, _NV + "l40s/"),
    "RTX-A6000-48GB": (768 * GBPS, 155 * TFLOPS, "https://www.nvidia.com/en-us/design-visualization/rtx-a6000/"),
    "L4-24GB": (300 * GBPS, 121 * TFLOPS, _NV + "l4/"),
    "A10G-24GB": (600 * GBPS, None, "https://aws.amazon.com/ec2/instance-types/g5/"),
    "RTX-4090-24GB": (1008 * GBPS, 165 * TFLOPS, "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/"
                      "nvidia-ada-gpu-architecture.pdf"),
    "RTX-3090-24GB": (936 * GBPS, 71 * TFLOPS, "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-"
                      "architecture-whitepaper-v2.pdf"),
    "T4-16GB": (320 * GBPS, 65 * TFLOPS, _NV + "tesla-t4/"),
}

#: Apple silicon chips: unified-memory bandwidth in bytes/s, from Apple's announcements and spec pages
CHIPS: dict[str, tuple[float, str]] = {
    "M1": (68.25 * GBPS, "LPDDR4X-4266 on a 128-bit bus: 4,266 MT/s x 16 bytes (https://www.theregister.com/2020/11/"
           "19/apple_m1_high_bandwidth_memory_performance/)"),
    "M1-Pro": (200 * GBPS, "https://www.apple.com/newsroom/2021/10/introducing-m1-pro-and-m1-max/"),
    "M1-Max": (400 * GBPS, "https://www.apple.com/newsroom/2021/10/introducing-m1-pro-and-m1-max/"),
    "M2": (100 * GBPS, "https://www.apple.com/newsroom/2022/06/apple-unveils-m2/"),
    "M2-Pro": (200 * GBPS, "https://www.apple.com/newsroom/2023/01/apple-unveils-m2-pro-and-m2-max/"),
    "M2-Max": (400 * GBPS, "https://www.apple.com/newsroom/2023/01/apple-unveils-m2-pro-and-m2-max/"),
    "M2-Ultra": (800 * GBPS, "https://www.apple.com/newsroom/2023/06/apple-introduces-m2-ultra/"),
    "M3": (100 * GBPS, "https://www.apple.com/newsroom/2023/10/apple-unveils-m3-m3-pro-and-m3-max/"),
    "M3-Pro": (150 * GBPS, "https://www.apple.com/newsroom/2023/10/apple-unveils-m3-m3-pro-and-m3-max/"),
    "M3-Max": (400 * GBPS, "https://www.apple.com/newsroom/2023/10/apple-unveils-m3-m3-pro-and-m3-max/"),
    "M4": (120 * GBPS, "https://www.apple.com/newsroom/2024/05/apple-introduces-m4-chip/"),
    "M4-Pro": (273 * GBPS, "https://www.apple.com/newsroom/2024/10/apple-introduces-m4-pro-and-m4-max/"),
    "M4-Max": (546 * GBPS, "https://www.apple.com/newsroom/2024/10/apple-introduces-m4-pro-and-m4-max/"),
}
#: the chip assumed for --unified-memory without --chip: the base M4
DEFAULT_CHIP = "M4"
#: a CPU machine without --bandwidth: two channels of DDR5-5600 (5,600 MT/s x 8 bytes x 2 = 89.6 GB/s)
CPU_DEFAULT_BANDWIDTH = 89.6 * GBPS
CPU_DEFAULT_SOURCE = "two DDR5-5600 channels: 5,600 MT/s x 8 bytes x 2 (JEDEC JESD79-5)"
#: share of a CPU machine's RAM a model may use (the rest: the system and other programs)
CPU_USABLE = 0.85
#: Metal's recommendedMaxWorkingSetSize, as llama.cpp prints it: 10,922.67 MB on a 16 GB Mac
#: (abetlen/llama-cpp-python#687), 21,845.34 MB on 32 GB (ggml-org/llama.cpp#2011), about 48 GB on 64 GB
#: (ggml-org/llama.cpp#1870)
UNIFIED_SMALL, UNIFIED_LARGE, UNIFIED_THRESHOLD = 2 / 3, 3 / 4, 32 * 2**30


@dataclass(frozen=True)
class Hardware:
    """Where a model runs: ``kind`` gpu, cpu or unified; memory in bytes; bandwidth in bytes/s; FLOP/s."""

    kind: str
    name: str
    memory_bytes: int
    usable_bytes: int
    bandwidth: float | None = None
    flops: float | None = None
    source: str | None = None

    @property
    def engines(self) -> str:
        """What runs models on it: CUDA engines (vLLM, transformers, llama.cpp) or llama.cpp/Ollama only."""
        return "cuda" if self.kind == "gpu" else "llama.cpp"

    def describe(self) -> str:
        """One line for people: ``RTX-4090-24GB GPU: 25.8 GB usable, 1,008 GB/s``."""
        text = f"{self.name}{' GPU' if self.kind == 'gpu' else ''}: {self.usable_bytes / 1e9:.1f} GB usable"
        if self.usable_bytes != self.memory_bytes:
            text += f" of {self.memory_bytes / 1e9:.1f} GB"
        if self.bandwidth:
            text += f", {self.bandwidth / GBPS:,.0f} GB/s"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())


def find_chip(name: str) -> str:
    """The :data:`CHIPS` key for ``name`` (``m4 pro`` -> ``M4-Pro``); :class:`UsageError` when unknown."""
    for chip in CHIPS:
        if _key(chip) == _key(name.replace("Apple", "").replace("apple", "")):
            return chip
    raise UsageError(f"Unknown chip {name!r}. Known: {', '.join(CHIPS)}; or give --bandwidth in GB/s.")


def gpu(name: str | None = None, memory: int | None = None, bandwidth: float | None = None) -> Hardware:
    """A GPU: a known one by ``name`` (memory, bandwidth and FLOP/s from the tables), or ``memory`` bytes with an
    optional ``bandwidth``; ``memory`` and ``bandwidth`` override a known GPU's figures."""
    if name:
        g = find_gpu(name)
        bw, flops, source = GPU_SPEEDS.get(g.name, (None, None, None))
        mem = memory or g.memory_bytes
        return Hardware("gpu", g.name, mem, mem, bandwidth or bw, flops, source if not bandwidth else "--bandwidth")
    if memory is None:
        raise UsageError("Give the GPU by name (--gpu RTX-4090) or its memory (--gpu-memory 24GB).")
    return Hardware("gpu", f"{memory / 1e9:.0f} GB GPU", memory, memory, bandwidth, None,
                    "--bandwidth" if bandwidth else None)


def cpu(ram: int, bandwidth: float | None = None) -> Hardware:
    """A machine without a GPU: llama.cpp on the CPU, from RAM (:data:`CPU_USABLE` of it usable)."""
    return Hardware("cpu", f"CPU, {ram / 2**30:.0f} GiB RAM", ram, int(ram * CPU_USABLE),
                    bandwidth or CPU_DEFAULT_BANDWIDTH, None, "--bandwidth" if bandwidth else CPU_DEFAULT_SOURCE)


def unified(ram: int, chip: str | None = None, bandwidth: float | None = None) -> Hardware:
    """Unified memory (Apple silicon): the GPU may use Metal's working-set share of RAM (module doc)."""
    name = find_chip(chip) if chip else DEFAULT_CHIP
    bw, source = CHIPS[name]
    share = UNIFIED_SMALL if ram <= UNIFIED_THRESHOLD else UNIFIED_LARGE
    return Hardware("unified", f"{name}, {ram / 2**30:.0f} GiB unified memory", ram, int(ram * share),
                    bandwidth or bw, None, "--bandwidth" if bandwidth else source)


def parse_ram(text: str) -> int:
    """RAM is sold in binary sizes: ``32GB`` (and a bare ``32``) is read as 32 GiB; other units as written."""
    from .gpus import parse_size

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(gb|g)?\s*", str(text), re.IGNORECASE)
    if m:
        value = float(m.group(1))
        if value <= 0:
            raise UsageError(f"The memory size {text!r} must be more than zero, e.g. 32GB.")
        return int(value * 2**30)
    return parse_size(text)


def bytes_per_token(est: Any, context: int | None = None) -> int:
    """Bytes read to generate one token at batch 1 (module doc): weights used per token + the KV cache."""
    by = dict(est.weight_bytes_by_class)
    read = sum(by.values())
    if "lm_head" in by and "embeddings" in by:
        read -= by["embeddings"]  # one row of the table is read; the separate LM head is read whole
    experts = by.get("experts", 0)
    if experts and est.params_active and est.params_by_class.get("experts"):
        routed = est.params_by_class["experts"]
        skipped = est.params_total - est.params_active  # parameters of the experts a token does not use
        read -= round(experts * min(1.0, skipped / routed))
    kv = est.kv_bytes if context is None else round(est.kv_bytes * context / max(1, est.context))
    return max(1, read + kv)


def speed(est: Any, hw: Hardware, prompt_tokens: int = 256) -> dict[str, Any] | None:
    """Estimated decode speed and time to first token of ``est`` on ``hw``; None without a bandwidth.

    Returns ``{"tokens_per_s", "ms_per_token", "ttft_ms", "bytes_per_token", "bandwidth", "compute_counted",
    "estimate": True}``. The KV cache is counted at the estimate's full context (the slowest point).
    """
    if not hw.bandwidth:
        return None
    per_token = bytes_per_token(est)
    ms = 1000 * per_token / hw.bandwidth
    active = est.params_active or est.params_total
    prefill_ms = 1000 * 2 * active * prompt_tokens / hw.flops if hw.flops else 0.0
    return {"tokens_per_s": round(1000 / ms, 2), "ms_per_token": round(ms, 2), "ttft_ms": round(ms + prefill_ms, 1),
            "prompt_tokens": prompt_tokens, "bytes_per_token": per_token, "bandwidth": hw.bandwidth,
            "compute_counted": hw.flops is not None, "estimate": True}


def known_devices() -> list[str]:
    """Names accepted by --gpu and --chip, for help texts and errors."""
    return [*GPUS, *CHIPS]
