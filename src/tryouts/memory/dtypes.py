"""Bytes per tensor for each weight format: float types, bitsandbytes, FP8 and llama.cpp's GGUF types.

Float types (``fp32``, ``fp16``, ``bf16``): every tensor at 4 or 2 bytes per value. DeepSeek-V3's router
stays float32 at 16-bit, as transformers loads it (``_keep_in_fp32_modules_strict``).

bitsandbytes through transformers (``int8``, ``int4`` = ``nf4``, ``fp4``, ``nf4-dq``): transformers 5 swaps
every ``nn.Linear`` for a bitsandbytes layer, except the LM head (``get_keys_to_not_convert``). Embeddings,
norms, biases and routers are not ``nn.Linear`` and stay 16-bit; so do the routed experts of MoE models,
which transformers 5 stores as 3-D parameters rather than ``nn.Linear`` layers.

* ``int8`` (LLM.int8): 1 byte per weight + one float32 scale per output row (``SCB``).
* ``nf4``/``int4``/``fp4``: 4 bits per weight + one float32 absmax per block of 64 weights
  (``bnb_4bit_use_double_quant=False``, transformers' default) = 4.5 bits per weight.
* ``nf4-dq`` (double quantization): the absmax constants themselves 8-bit, with one float32 per 256 of them
  = 4 + 8/64 + 32/16384 ≈ 4.127 bits per weight.

``fp8`` (e.g. vLLM ``--quantization fp8``): linear and expert weights at 1 byte + one float32 scale per tensor;
embeddings and LM head 16-bit.

Checkpoints published low-bit (:mod:`.native`): ``mxfp4`` (gpt-oss: routed experts at 17 bytes per 32 weights,
the rest bf16), ``fp8-block`` (DeepSeek-V3/R1: FP8 + a float32 scale per 128 x 128 block), and ``native`` (the
format the model's checkpoint ships in: :attr:`Arch.native_format`, else bf16).

GGUF (``Q4_K_M``, ``Q8_0``, ...): each tensor at its ggml type's real size (:data:`GGML_BLOCKS`: bytes per
block of weights; Q4_K = 144 bytes / 256 weights = 4.5 bits), with the type chosen as llama.cpp's
``llama-quantize`` chooses it (``llama_tensor_get_type`` in src/llama-quant.cpp): the file type names a
default, and the mix keeps some tensors at higher types. For Q4_K_M: the output matrix (or tied token
embeddings) at Q6_K; ``attn_v`` and ``ffn_down`` at Q6_K in the first and last eighth of the layers and every
third layer between (``use_more_bits``); MoE models with 8 experts keep ``attn_v``/``attn_k`` at Q8_0; the
rest, token embeddings included, at Q4_K. A row whose length is not a multiple of the block size falls back
(Q4_K -> Q5_0, Q6_K -> Q8_0, ...). Vectors (norms, biases), routers and position tables stay F32. Rules that
depend on an importance matrix (IQ1-IQ3 types) are not modelled, so those types are not offered.
``MXFP4_MOE``: 3-D expert tensors MXFP4 (17 bytes per 32 weights), every other matrix, output included, Q8_0.
A model whose checkpoint ships MXFP4 experts (gpt-oss, ``Arch.native_format == "mxfp4"``) keeps them MXFP4 in
every file type: the converter writes them as ggml MXFP4, ``llama-quantize`` refuses to requantize a quantized
tensor ("requantizing from type mxfp4 is disabled") unless given ``--allow-requantize``, and the published
files keep them (their other tensors follow the file type).

``file``: the weights exactly as a GGUF model file stores them (its tensor table: each tensor's ggml type and
bytes), for a model read from a ``.gguf`` file (:meth:`~tryouts.memory.arch.Arch.from_gguf`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .arch import Arch
from .native import NATIVE_LABELS, is_mxfp4_weight, native_tensor_bytes
from .params import Tensor

#: ggml types: (weights per block, bytes per block); the same numbers as gguf-py's GGML_QUANT_SIZES
GGML_BLOCKS: dict[str, tuple[int, int]] = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2),
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
    "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176), "Q6_K": (256, 210),
    "IQ4_NL": (32, 18), "IQ4_XS": (256, 136), "MXFP4": (32, 17),
}

#: GGUF file types offered, with the default ggml type of each
GGUF_FTYPES: dict[str, str] = {
    "F32": "F32", "F16": "F16", "BF16": "BF16", "Q8_0": "Q8_0", "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q5_1": "Q5_1", "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K", "Q4_1": "Q4_1", "Q4_0": "Q4_0", "IQ4_XS": "IQ4_XS", "IQ4_NL": "IQ4_NL",
    "Q3_K_L": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K", "Q2_K": "Q2_K", "MXFP4_MOE": "MXFP4",
}

_FLOAT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
_BNB = ("int8", "int4", "nf4", "fp4", "nf4-dq")
_ALIASES = {"float32": "fp32", "f32": "fp32", "float16": "fp16", "half": "fp16", "f16": "fp16",
            "bfloat16": "bf16", "4bit": "nf4", "8bit": "int8", "float8": "fp8", "fp8_e4m3": "fp8",
            "fp8_block": "fp8-block", "fp8-128": "fp8-block"}

#: the rows of ``tryouts memory --dtype all``
COMMON_DTYPES = ("fp32", "bf16", "fp8", "int8", "nf4", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")

#: KV-cache value formats: bits per value (llama.cpp's q8_0/q4_0 cache blocks included)
KV_BITS = {"fp32": 32.0, "fp16": 16.0, "bf16": 16.0, "fp8": 8.0, "q8_0": 8.5, "q4_0": 4.5}


@dataclass(frozen=True)
class DType:
    """A weight format: ``name`` as typed, ``kind`` (float, bnb, fp8, gguf, file) and a one-line description."""

    name: str
    kind: str
    label: str

    @property
    def kv_default(self) -> str:
        """The KV-cache format used with these weights unless ``kv_dtype`` says otherwise."""
        if self.name == "fp32":
            return "fp32"
        return "bf16" if self.name in ("bf16", "mxfp4", "fp8-block") else "fp16"


def parse_dtype(text: str) -> DType:
    """``fp16``, ``bf16``, ``int8``, ``int4``, ``nf4``, ``fp8``, ``Q4_K_M``, ``gguf:Q4_K_M`` ... -> :class:`DType`."""
    raw = text.strip()
    low = raw.lower()
    if low.startswith("gguf:"):
        return _gguf(raw[5:], text)
    low = _ALIASES.get(low, low)
    if low in _FLOAT_BYTES:
        return DType(low, "float", f"{low} ({_FLOAT_BYTES[low]} bytes per value)")
    if low in _BNB:
        desc = {"int8": "bitsandbytes LLM.int8", "nf4-dq": "bitsandbytes NF4, double quant"}.get(low)
        return DType(low, "bnb", desc or f"bitsandbytes 4-bit ({'NF4' if low != 'fp4' else 'FP4'})")
    if low == "fp8":
        return DType("fp8", "fp8", "FP8 weights (per-tensor scale)")
    if low in NATIVE_LABELS:
        return DType(low, low, NATIVE_LABELS[low])
    if low == "native":
        return DType("native", "native", "as the published checkpoint ships its weights")
    if raw.upper() in GGUF_FTYPES:
        return _gguf(raw, text)
    if low == "file":
        return DType("file", "file", "as stored in the GGUF file")
    raise UsageError(f"Unknown dtype {text!r}. Use one of: fp32, fp16, bf16, fp8, fp8-block, mxfp4, int8, int4, nf4, "
                     f"nf4-dq, fp4, or a GGUF type such as gguf:Q4_K_M ({', '.join(GGUF_FTYPES)}); 'native' for the "
                     "format the model's checkpoint ships in; 'file' for a GGUF file's own weights; or 'all'.")


def _gguf(name: str, text: str) -> DType:
    up = name.strip().upper()
    if up not in GGUF_FTYPES:
        raise UsageError(f"Unknown GGUF type {text!r}. Supported: {', '.join(GGUF_FTYPES)}.")
    return DType(up, "gguf", f"GGUF {up}")


def parse_kv_dtype(text: str) -> str:
    """A KV-cache format name (:data:`KV_BITS`) or a :class:`UsageError`."""
    low = _ALIASES.get(text.strip().lower(), text.strip().lower())
    if low not in KV_BITS:
        raise UsageError(f"Unknown --kv-dtype {text!r}. Use one of: {', '.join(KV_BITS)}.")
    return low


# ---------------------------------------------------------------------- bytes per tensor


def ggml_bytes(ggml_type: str, numel: int) -> int:
    """Bytes of ``numel`` weights stored as ``ggml_type`` (whole blocks)."""
    per_block, size = GGML_BLOCKS[ggml_type]
    return -(-numel // per_block) * size


def _is_linear_weight(t: Tensor) -> bool:
    return t.cls in ("attention", "mlp", "shared_experts", "pooler") and t.name.endswith(".weight") \
        and len(t.shape) == 2


def tensor_bytes(t: Tensor, dtype: DType, arch: Arch, gguf_type: str | None = None) -> int:
    """Bytes of tensor ``t`` in format ``dtype`` (``gguf_type`` from :func:`gguf_types` for GGUF)."""
    n = t.numel
    if dtype.kind == "file":
        if t.nbytes is None:
            raise UsageError("--dtype file counts a GGUF file's own weights: pass a .gguf file as the model.")
        return t.nbytes
    if dtype.kind == "float":
        if arch.router_fp32 and t.cls == "router":
            return 4 * n
        return _FLOAT_BYTES[dtype.name] * n
    if dtype.kind == "gguf":
        return ggml_bytes(gguf_type or "F32", n)
    if dtype.kind in NATIVE_LABELS:
        return native_tensor_bytes(t, dtype.kind)
    if dtype.kind == "fp8":
        quantized = t.cls in ("attention", "mlp", "shared_experts", "experts") and len(t.shape) >= 2
        return n + 4 if quantized and t.name.endswith(".weight") else 2 * n
    # bitsandbytes: nn.Linear weights only
    if not _is_linear_weight(t):
        return 4 * n if arch.router_fp32 and t.cls == "router" else 2 * n
    if dtype.name == "int8":
        return n + 4 * round(t.shape[0] * t.scale)
    blocks = -(-n // 64)
    if dtype.name == "nf4-dq":
        return -(-n // 2) + blocks + 4 * -(-blocks // 256)
    return -(-n // 2) + 4 * blocks


# ---------------------------------------------------------------------- llama.cpp's type selection


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fallback(t: Tensor, ggml_type: str) -> str:
    per_block = GGML_BLOCKS[ggml_type][0]
    if t.row % per_block == 0:
        return ggml_type
    new = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "IQ4_XS": "IQ4_NL", "Q4_K": "Q5_0", "Q5_K": "Q5_1",
           "Q6_K": "Q8_0"}.get(ggml_type, "F16")  # llama.cpp has no fallback for Q8_0/MXFP4: it stops
    return new if t.row % GGML_BLOCKS[new][0] == 0 else "F16"


def _quantizable(t: Tensor) -> bool:
    name = t.name
    return (t.is_matrix and name.endswith("weight") and "_norm" not in name and "ffn_gate_inp" not in name
            and not name.startswith(("position_embd", "token_types")))


def gguf_types(tensors: list[Tensor], ftype: str, arch: Arch) -> list[str]:
    """The ggml type llama.cpp's ``llama-quantize`` gives each tensor for file type ``ftype`` (see module doc)."""
    default = GGUF_FTYPES[ftype]
    has_output = any(t.name == "output.weight" for t in tensors)
    n_gqa = arch.attention_heads // max(1, arch.kv_heads)
    n_expert = int(arch.experts or 0)
    is_70b = arch.model_type == "llama" and arch.layers == 80 and arch.kv_heads != arch.attention_heads
    n_layer = arch.layers
    n_attn_v = sum(1 for t in tensors if _is_attn_v(t.name))
    i_attn_v = 0
    i_ffn_down = 0
    src_mxfp4 = arch.native_format == "mxfp4"  # experts written as ggml MXFP4 by the converter, never requantized
    types = []
    for t in tensors:
        if not _quantizable(t):  # kept as converted: vectors, biases, routers and position tables F32, others F16
            keep_f32 = (not t.is_matrix or not t.name.endswith("weight") or "ffn_gate_inp" in t.name
                        or t.name.startswith(("position_embd", "token_types")))
            types.append("F32" if keep_f32 or default == "F32" else "F16")
            continue
        if src_mxfp4 and is_mxfp4_weight(t):
            types.append("MXFP4")
            continue
        if ftype == "MXFP4_MOE":  # experts (ne[2] > 1) MXFP4, every other matrix, output included, Q8_0
            types.append(_fallback(t, "MXFP4" if len(t.shape) == 3 and t.shape[0] > 1 else "Q8_0"))
            continue
        if default in ("F32", "F16", "BF16"):
            types.append(default)
            continue
        new = default
        name = t.name
        if name == "output.weight" or (not has_output and name == "token_embd.weight"):
            if t.row % GGML_BLOCKS[default][0] != 0:
                new = "Q8_0"
            elif default != "Q8_0":
                new = "Q6_K"
        elif name.startswith("token_embd"):
            pass
        elif _is_attn_v(name):
            if ftype == "Q2_K":
                new = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif ftype in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
                new = "Q5_K"
            elif ftype == "Q3_K_M":
                new = "Q5_K" if i_attn_v < 2 else "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_attn_v, n_attn_v):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and i_attn_v < 4:
                new = "Q5_K"
            if is_70b and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            if n_expert == 8:
                new = "Q8_0"
            i_attn_v += 1
        elif ".attn_k.weight" in name or "_attn_k.weight" in name:
            if n_expert == 8:
                new = "Q8_0"
        elif "ffn_down" in name:
            if n_expert > 1 and t.layer is not None:
                i_layer = t.layer
            else:
                i_layer = i_ffn_down
            if ftype == "Q2_K":
                new = "Q3_K"
            elif ftype == "Q3_K_M":
                new = "Q5_K" if i_layer < n_layer // 16 else "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q5_K"
            elif ftype == "Q4_K_M":
                if _use_more_bits(i_layer, n_layer):
                    new = "Q6_K"
            elif i_layer < n_layer // 8 and ftype in ("IQ4_NL", "IQ4_XS"):
                new = "Q5_K"
            elif ftype == "Q5_K_M" and _use_more_bits(i_layer, n_layer):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and i_layer < n_layer // 8:
                new = "Q5_K"
            i_ffn_down += 1
        elif "attn_output.weight" in name:
            if n_expert == 8:
                if ftype in ("Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"):
                    new = "Q5_K"
            elif ftype == "Q2_K":
                new = "Q3_K"
            elif ftype == "Q3_K_M":
                new = "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q5_K"
        types.append(_fallback(t, new))
    return types


def _is_attn_v(name: str) -> bool:
    return any(k in name for k in ("attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight"))
