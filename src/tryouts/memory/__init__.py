"""The memory estimator: how much GPU memory a model needs at a precision, context and batch size.

::

    from tryouts.memory import Arch, estimate, estimate_entry, resolve, GPUS, fits, parse_size

    arch = Arch.from_config(json.load(open("config.json")))   # or Arch.from_catalog(entry), resolve("name",
                                                              # catalog=tryouts.catalog.lookup),
                                                              # resolve("model.gguf") (the file's own tensors)
    e = estimate(arch, dtype="Q4_K_M", context=8192, batch=1)  # -> Estimate
    e.weight_bytes_by_class, e.weights_bytes, e.kv_bytes, e.overhead_bytes, e.total_bytes, e.assumptions
    fits(e.total_bytes, GPUS["H100-80GB"].memory_bytes)

Weights are counted tensor by tensor from the architecture (:mod:`.params`), each tensor stored as the
chosen format stores it (:mod:`.dtypes`); KV cache and overhead rules are in :mod:`.estimate`. The
formulas and assumptions are published in docs/memory.md. Pure Python: nothing heavy is imported.
"""

from __future__ import annotations

from .arch import EXACT_TYPES, Arch, EstimateError
from .dtypes import (
    COMMON_DTYPES,
    GGML_BLOCKS,
    GGUF_FTYPES,
    KV_BITS,
    DType,
    ggml_bytes,
    gguf_types,
    parse_dtype,
    parse_kv_dtype,
)
from .estimate import (
    OVERHEAD_FIXED_BYTES,
    OVERHEAD_FRACTION,
    Estimate,
    estimate,
    estimate_entry,
    fits,
    kv_cache_bytes,
    overhead_bytes,
)
from .gpus import GPU, GPUS, find_gpu, parse_size
from .params import CLASSES, Tensor, active_params, class_counts, inventory
from .resolve import cached_config, load_config_path, load_gguf_path, resolve

__all__ = [
    "CLASSES",
    "COMMON_DTYPES",
    "EXACT_TYPES",
    "GGML_BLOCKS",
    "GGUF_FTYPES",
    "GPU",
    "GPUS",
    "KV_BITS",
    "OVERHEAD_FIXED_BYTES",
    "OVERHEAD_FRACTION",
    "Arch",
    "DType",
    "Estimate",
    "EstimateError",
    "Tensor",
    "active_params",
    "cached_config",
    "class_counts",
    "estimate",
    "estimate_entry",
    "find_gpu",
    "fits",
    "ggml_bytes",
    "gguf_types",
    "inventory",
    "kv_cache_bytes",
    "load_config_path",
    "load_gguf_path",
    "overhead_bytes",
    "parse_dtype",
    "parse_kv_dtype",
    "parse_size",
    "resolve",
]
