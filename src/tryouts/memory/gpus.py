"""GPU memory sizes and size parsing.

A GPU's marketed "80 GB" is binary: the H100 80GB carries 80 GiB (85.9e9 bytes) of HBM3. CUDA then
reports a little less as total memory (ECC and firmware reservations): ``nvidia-smi`` shows 81,559 MiB on
an H100 80GB. :data:`GPUS` holds that CUDA-reported total, in bytes, because it is what a process can
allocate from; the CUDA context itself is counted in the estimate's overhead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

MIB = 2**20


@dataclass(frozen=True)
class GPU:
    """One GPU model: ``name`` as typed after ``--gpu``, the marketed size and the CUDA-reported total in bytes."""

    name: str
    marketed: str
    memory_bytes: int


#: total memory as ``nvidia-smi`` reports it (MiB x 2**20)
GPUS: dict[str, GPU] = {g.name: g for g in (
    GPU("H200-141GB", "141 GB HBM3e", 143_771 * MIB),
    GPU("H100-80GB", "80 GB HBM3", 81_559 * MIB),
    GPU("A100-80GB", "80 GB HBM2e", 81_920 * MIB),
    GPU("A100-40GB", "40 GB HBM2", 40_960 * MIB),
    GPU("L40S-48GB", "48 GB GDDR6", 46_068 * MIB),
    GPU("RTX-A6000-48GB", "48 GB GDDR6", 49_140 * MIB),
    GPU("L4-24GB", "24 GB GDDR6", 23_034 * MIB),
    GPU("A10G-24GB", "24 GB GDDR6", 23_028 * MIB),
    GPU("RTX-4090-24GB", "24 GB GDDR6X", 24_564 * MIB),
    GPU("RTX-3090-24GB", "24 GB GDDR6X", 24_576 * MIB),
    GPU("T4-16GB", "16 GB GDDR6", 15_360 * MIB),
)}

_UNITS = {"": 1e9, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(text: str) -> int:
    """``24GB`` (10^9 bytes), ``24GiB`` (2^30), ``80 GB``, ``1.5TB``, ``500MiB`` -> bytes; a bare number means GB.

    Raises :class:`~tryouts.errors.UsageError` for anything else.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise UsageError(f"Cannot read the memory size {text!r}; write it like 24GB, 24GiB or '80 GB' "
                         "(GB = 10^9 bytes, GiB = 2^30 bytes).")
    value = float(m.group(1)) * _UNITS[unit]
    if value <= 0:
        raise UsageError(f"The memory size {text!r} must be more than zero, e.g. 24GB.")
    return int(value)


def find_gpu(name: str) -> GPU:
    """The :data:`GPUS` entry for ``name`` (case, spaces and dashes ignored; ``H100`` finds ``H100-80GB``, ``L4``
    finds ``L4-24GB`` rather than ``L40S-48GB``).

    Raises :class:`~tryouts.errors.UsageError` listing the known names when none or several match.
    """
    key = _key(name)
    exact = [g for g in GPUS.values() if _key(g.name) == key]
    model = [g for g in GPUS.values() if _key(g.name.rsplit("-", 1)[0]) == key]
    if exact or len(model) == 1:
        return (exact or model)[0]
    partial = [g for g in GPUS.values() if _key(g.name).startswith(key)] if key else []
    if len(partial) == 1:
        return partial[0]
    hint = f" It matches several: {', '.join(g.name for g in partial)}." if partial else ""
    raise UsageError(f"Unknown GPU {name!r}.{hint} Known GPUs: {', '.join(GPUS)}; or give the memory with "
                     "--gpu-memory, e.g. --gpu-memory 24GB.")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())
