"""Checkpoints published in a low-bit format, and the ``native`` dtype (docs/memory.md, "Native low-bit formats").

``mxfp4`` (gpt-oss): the routed experts' weight matrices in OCP MXFP4, blocks of 32 weights along a row, each
block 32 FP4 (E2M1) values in 16 bytes + one E8M0 (8-bit power-of-two) scale = 17 bytes = 4.25 bits per weight;
the checkpoint stores them as ``*_blocks`` (uint8, 16 per block) and ``*_scales`` (uint8, 1 per block). Everything
else stays bf16: attention, embeddings, router, LM head, norms, and the experts' biases and attention sinks
(config.json ``quantization_config.modules_to_not_convert``). The ggml type MXFP4 is the same block (32 weights in
17 bytes), so a GGUF keeps those bytes.

``fp8-block`` (DeepSeek-V3/R1, ``quant_method: fp8`` with ``weight_block_size: [128, 128]``): every linear weight
matrix of attention, dense MLP, shared and routed experts in FP8 E4M3 (1 byte) + one float32 ``weight_scale_inv``
per 128 x 128 block (``ceil(out/128) x ceil(in/128)`` per matrix, per expert); embeddings, LM head, norms and the
router stay bf16 as the checkpoint stores them. (The ``fp8`` dtype is the other FP8: a per-tensor scale, as vLLM's
``--quantization fp8`` makes from 16-bit weights.)

``native``: the weights as the published checkpoint ships them, :attr:`Arch.native_format
<tryouts.memory.arch.Arch.native_format>` when it is set (from the catalog's ``arch.native_format`` or a
config.json's ``quantization_config``), else bf16; for a GGUF file, the file's own weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .params import Tensor

MXFP4_BLOCK = 32  #: weights per MXFP4 block
MXFP4_BLOCK_BYTES = 17  #: 16 bytes of E2M1 values + one E8M0 scale
FP8_BLOCK = 128  #: DeepSeek-V3's weight_block_size (128 x 128)

#: the catalog's ``arch.native_format`` -> the dtype that stores it (DeepSeek's "fp8" checkpoints are block-scaled)
CATALOG_FORMATS = {"mxfp4": "mxfp4", "fp8": "fp8-block"}
#: the dtypes a checkpoint can ship in, with their one-line description
NATIVE_LABELS = {
    "mxfp4": "MXFP4 routed experts (4.25 bits: 32 E2M1 values + an E8M0 scale per 17 bytes), the rest bf16",
    "fp8-block": "FP8 E4M3 linear weights + a float32 scale per 128x128 block, embeddings/LM head/norms/router bf16",
}
_LINEAR = ("attention", "mlp", "shared_experts", "experts")


def is_mxfp4_weight(t: Tensor) -> bool:
    """A routed experts' weight matrix (``n_experts, out, in``): what gpt-oss ships in MXFP4."""
    return t.cls == "experts" and t.name.endswith(".weight") and len(t.shape) == 3


def is_fp8_block_weight(t: Tensor) -> bool:
    """A linear weight matrix of attention, MLP or experts: what DeepSeek-V3 ships in block-scaled FP8."""
    return t.cls in _LINEAR and t.name.endswith(".weight") and len(t.shape) >= 2 and t.is_matrix


def _scaled(n: int, t: Tensor) -> int:
    return n if t.scale == 1.0 else round(n * t.scale)


def mxfp4_bytes(t: Tensor) -> int:
    """17 bytes per block of 32 weights along each row (a partial block is padded)."""
    rows = math.prod(t.shape[:-1])
    return MXFP4_BLOCK_BYTES * _scaled(rows * -(-t.row // MXFP4_BLOCK), t)


def fp8_block_bytes(t: Tensor) -> int:
    """1 byte per weight + a float32 per 128 x 128 block of each matrix (each expert's on its own)."""
    *lead, n_out, n_in = t.shape
    scales = math.prod(lead) * -(-n_out // FP8_BLOCK) * -(-n_in // FP8_BLOCK)
    return t.numel + 4 * _scaled(scales, t)


def native_tensor_bytes(t: Tensor, fmt: str) -> int:
    """Bytes of ``t`` in checkpoint format ``fmt`` (``mxfp4`` or ``fp8-block``): its low-bit form, else bf16."""
    if fmt == "mxfp4" and is_mxfp4_weight(t):
        return mxfp4_bytes(t)
    if fmt == "fp8-block" and is_fp8_block_weight(t):
        return fp8_block_bytes(t)
    return 2 * t.numel


def native_dtype_name(arch: Any) -> str:
    """The dtype ``native`` stands for: the checkpoint's low-bit format, ``file`` for a GGUF file, else bf16."""
    if getattr(arch, "stored", None):
        return "file"
    return arch.native_format or "bf16"


def format_of_config(cfg: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(dtype, notes) for a config.json's ``quantization_config``: mxfp4, fp8-block, fp8 (per-tensor) or None."""
    q = cfg.get("quantization_config")
    if not isinstance(q, Mapping) or not q.get("quant_method"):
        return None, []
    method = str(q["quant_method"]).lower()
    if method == "mxfp4":
        return "mxfp4", ["the checkpoint ships its routed experts in MXFP4 (quantization_config); 'native' counts "
                         "them at 4.25 bits and the rest at bf16"]
    if method == "fp8":
        block = q.get("weight_block_size")
        if not block:
            return "fp8", ["the checkpoint ships FP8 weights with a per-tensor scale (quantization_config)"]
        notes = ["the checkpoint ships FP8 weights with block scales (quantization_config weight_block_size "
                 f"{list(block)}); 'native' counts them as fp8-block"]
        if list(block) != [FP8_BLOCK, FP8_BLOCK]:
            notes.append(f"fp8-block counts one scale per {FP8_BLOCK}x{FP8_BLOCK} block, not {list(block)}")
        return "fp8-block", notes
    return None, [f"the checkpoint is quantized with {method!r} (quantization_config), which the estimator does "
                  "not model: 'native' counts it as bf16"]
