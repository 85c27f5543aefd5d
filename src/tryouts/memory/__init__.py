"""The memory estimator: how much GPU memory a model needs at a precision, context and batch size.

::

    from tryouts.memory import Arch, estimate, estimate_entry, resolve, GPUS, fits, parse_size

    arch = Arch.from_config(json.load(open("config.json")))   # or Arch.from_catalog(entry), resolve("name",
                                                              # catalog=tryouts.catalog.lookup),
                                                              # resolve("model.gguf") (the file's own tensors)
    e = estimate(arch, dtype="Q4_K_M", context=8192, batch=1)  # -> Estimate; dtype="native": as the checkpoint ships
    e.weight_bytes_by_class, e.weights_bytes, e.kv_bytes, e.overhead_bytes, e.total_bytes, e.assumptions
    fits(e.total_bytes, GPUS["H100-80GB"].memory_bytes)

Weights are counted tensor by tensor from the architecture (:mod:`.params`), each tensor stored as the
chosen format stores it (:mod:`.dtypes`; low-bit checkpoints such as gpt-oss's MXFP4 and DeepSeek-V3's block FP8
in :mod:`.native`); KV cache and overhead rules are in :mod:`.estimate`. The
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
    LLAMA_CPP_SWA_TYPES,
    OVERHEAD_FIXED_BYTES,
    OVERHEAD_FRACTION,
    Estimate,
    estimate,
    estimate_entry,
    fits,
    kv_cache_bytes,
    llama_cpp_attention,
    overhead_bytes,
)
from .gpus import GPU, GPUS, find_gpu, parse_size
from .native import fp8_block_bytes, mxfp4_bytes, native_dtype_name
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
    "LLAMA_CPP_SWA_TYPES",
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
    "fp8_block_bytes",
    "ggml_bytes",
    "gguf_types",
    "inventory",
    "kv_cache_bytes",
    "llama_cpp_attention",
    "load_config_path",
    "load_gguf_path",
    "mxfp4_bytes",
    "native_dtype_name",
    "overhead_bytes",
    "parse_dtype",
    "parse_kv_dtype",
    "parse_size",
    "resolve",
]
