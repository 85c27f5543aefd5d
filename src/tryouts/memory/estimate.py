"""The estimate: weights per class + KV cache + overhead = total, and whether it fits a GPU.

Weights: the computed tensor inventory (:mod:`.params`), or a GGUF file's own tensor table when the
:class:`Arch` came from one; with ``dtype="file"`` each of those tensors counts its bytes in the file.

KV cache (what an inference engine keeps per token, for ``context`` tokens and ``batch`` sequences)::

    standard attention:  2 (K and V) x layers x kv_heads x head_dim x bytes x tokens x batch
                         sliding-window layers hold at most `sliding_window` tokens
    MLA (DeepSeek-V3):   layers x (kv_lora_rank + qk_rope_head_dim) x bytes x tokens x batch
                         (the compressed latent, as transformers 5, vLLM and SGLang cache it)
    encoder-decoder:     the decoder's self-attention cache over `context` tokens + its cross-attention
                         cache over `context` source tokens
    encoder-only:        0 (no cache at inference)

For GGUF dtypes (an estimate of a llama.cpp deployment) the window applies only to the architectures whose
llama.cpp implementation uses sliding-window attention (:data:`LLAMA_CPP_SWA_TYPES`); llama.cpp runs the others
with full attention, e.g. Mistral 7B v0.1 as a ``llama`` model, so their cache holds the whole context.

Overhead, a stated rule rather than a measurement: ``OVERHEAD_FIXED_BYTES`` (1 GiB: CUDA context, cuBLAS
workspaces, the allocator's slack) + ``OVERHEAD_FRACTION`` (5 %) of weights + KV cache for activations and
fragmentation. Long prompts prefilled in one piece (plain transformers ``generate``) need more; engines
that prefill in chunks (vLLM, llama.cpp) stay near this figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .arch import Arch
from .dtypes import KV_BITS, DType, gguf_types, parse_dtype, parse_kv_dtype, tensor_bytes
from .native import NATIVE_LABELS, native_dtype_name
from .params import CLASSES, active_params, class_counts, inventory, scale_to

GIB = 2**30
OVERHEAD_FIXED_BYTES = GIB
OVERHEAD_FRACTION = 0.05

#: model types (transformers' and GGUF's names) whose llama.cpp implementation attends within a sliding window
#: (``hparams.swa_type`` set in llama.cpp's src/llama-model.cpp): Gemma 2/3/3n, Cohere2, OLMo2/OLMo 3, EXAONE 4,
#: Llama 4 (chunked), gpt-oss, SmallThinker. Not: llama/mistral (Mistral 7B v0.1 converts as llama), phi3 (its
#: window is switched off), qwen2/qwen3, starcoder2, mixtral.
LLAMA_CPP_SWA_TYPES = frozenset((
    "gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text", "gemma-embedding", "cohere2", "olmo2", "olmo3",
    "exaone4", "llama4", "llama4_text", "gpt_oss", "gpt-oss", "smallthinker",
))


@dataclass(frozen=True)
class Estimate:
    """Memory needed to serve a model. Bytes are exact integers; ``assumptions`` say what the figures rest on."""

    model: str
    dtype: str
    dtype_label: str
    kv_dtype: str
    context: int
    batch: int
    params_total: int
    params_active: int | None
    params_by_class: dict[str, int]
    weight_bytes_by_class: dict[str, int]
    weights_bytes: int
    kv_bytes: int
    overhead_bytes: int
    total_bytes: int
    storage: dict[str, str] = field(default_factory=dict)  # how each class is stored, e.g. "Q4_K 73%, Q6_K 27%"
    assumptions: list[str] = field(default_factory=list)

    @property
    def bits_per_weight(self) -> float:
        """Average bits per parameter of the weights."""
        return 8 * self.weights_bytes / self.params_total if self.params_total else 0.0

    def fits(self, gpu_bytes: float) -> bool:
        """Whether the total fits in ``gpu_bytes`` of memory."""
        return fits(self.total_bytes, gpu_bytes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (docs/memory.md)."""
        d = asdict(self)
        d["bits_per_weight"] = round(self.bits_per_weight, 4)
        return d


def fits(total_bytes: float, gpu_bytes: float) -> bool:
    """Whether ``total_bytes`` fit in ``gpu_bytes`` (equal counts as fitting)."""
    return total_bytes <= gpu_bytes


def kv_cache_bytes(arch: Arch, context: int, batch: int = 1, kv_dtype: str = "fp16") -> int:
    """Bytes of the KV cache for ``context`` tokens and ``batch`` sequences (module doc for the formula)."""
    if arch.encoder_only or context <= 0 or batch <= 0:
        return 0
    bits = KV_BITS[parse_kv_dtype(kv_dtype)]
    if arch.is_mla:
        values = arch.layers * (int(arch.kv_lora_rank or 0) + int(arch.qk_rope_head_dim or 0)) * context
    else:
        per_token = 2 * arch.kv_heads * arch.head_dim
        sliding = arch.sliding_layers
        full = arch.layers - sliding
        window = min(context, int(arch.sliding_window or context))
        values = per_token * (full * context + sliding * window)
        if arch.is_encoder_decoder:
            values += per_token * arch.layers * context  # cross-attention over the source
    return round(values * batch * bits / 8)


def overhead_bytes(weights: int, kv: int) -> int:
    """The overhead rule: 1 GiB + 5 % of weights and KV cache."""
    return OVERHEAD_FIXED_BYTES + round(OVERHEAD_FRACTION * (weights + kv))


def estimate(arch: Arch, dtype: str | DType = "bf16", context: int = 4096, batch: int = 1,
             kv_dtype: str | None = None) -> Estimate:
    """Estimate the memory to serve ``arch`` with weights in ``dtype``, ``context`` tokens x ``batch`` sequences.

    ``kv_dtype`` defaults to the weights' 16-bit type (fp32 for fp32 weights). Raises
    :class:`~tryouts.errors.UsageError` for an unknown dtype or a negative context/batch.
    """
    from ..errors import UsageError

    asked = dtype if isinstance(dtype, DType) else parse_dtype(dtype)
    dt = parse_dtype(native_dtype_name(arch)) if asked.kind == "native" else asked
    if context < 0 or batch < 1:
        raise UsageError(f"context must be >= 0 and batch >= 1 (got context {context}, batch {batch}).")
    kv_name = parse_kv_dtype(kv_dtype) if kv_dtype else dt.kv_default
    if dt.kind == "file" and not arch.stored:
        raise UsageError("--dtype file counts a GGUF file's own weights: pass a .gguf file as the model.")
    # a GGUF file's own tensor table when there is one (exact shapes and names), else the computed inventory
    tensors, factor = (list(arch.stored), 1.0) if arch.stored else scale_to(inventory(arch), arch)
    counts = class_counts(tensors)
    total_params = sum(counts.values())
    if dt.kind == "file":
        ggml: list[str | None] = [t.ggml_type for t in tensors]
    else:
        ggml = list(gguf_types(tensors, dt.name, arch)) if dt.kind == "gguf" else [None] * len(tensors)

    by_class = dict.fromkeys(CLASSES, 0)
    mix: dict[str, dict[str, int]] = {}
    for t, g in zip(tensors, ggml, strict=True):
        b = tensor_bytes(t, dt, arch, g)
        by_class[t.cls] += b
        kind = g or _storage_kind(t, dt, arch)
        mix.setdefault(t.cls, {}).setdefault(kind, 0)
        mix[t.cls][kind] += t.numel
    by_class = {k: v for k, v in by_class.items() if k in counts}
    weights = sum(by_class.values())
    kv_arch = llama_cpp_attention(arch) if dt.kind in ("gguf", "file") else arch
    kv = kv_cache_bytes(kv_arch, context, batch, kv_name)
    over = overhead_bytes(weights, kv)

    notes = list(arch.notes)
    if abs(factor - 1.0) >= 0.0005:
        part = "routed experts" if arch.is_moe and "experts" in counts else "linear layers"
        notes.append(f"the {part} were scaled by {100 * (factor - 1):+.1f}% to match the catalog's "
                     f"{total_params / 1e9:.2f} B parameters")
    notes.extend(_dtype_notes(arch, dt))
    if asked.kind == "native":
        notes.append(f"native: the weights as the published checkpoint ships them ({dt.name})")
    if kv_arch is not arch and arch.sliding_window and context > arch.sliding_window:
        notes.append(f"llama.cpp runs {arch.model_type!r} with full attention in every layer (no sliding window): "
                     "the KV cache holds the whole context")
    notes.extend(_kv_notes(kv_arch, context, kv_name))
    notes.append(f"overhead = 1 GiB (CUDA context, workspaces) + {OVERHEAD_FRACTION:.0%} of weights and KV cache")
    label = f"{arch.stored_format} (the file's own weights)" if dt.kind == "file" else dt.label
    if asked.kind == "native":
        label = f"native = {dt.name}: {label}"
    return Estimate(
        model=arch.name or arch.model_type, dtype=asked.name, dtype_label=label, kv_dtype=kv_name, context=context,
        batch=batch, params_total=total_params, params_active=active_params(arch, tensors), params_by_class=counts,
        weight_bytes_by_class=by_class, weights_bytes=weights, kv_bytes=kv, overhead_bytes=over,
        total_bytes=weights + kv + over, storage={c: _mix_text(m) for c, m in mix.items()}, assumptions=notes,
    )


def estimate_entry(entry: Any, dtype: str = "bf16", context: int = 4096, batch: int = 1,
                   kv_dtype: str | None = None) -> Estimate:
    """:func:`estimate` for a catalog entry (its ``arch`` and ``params``); used by ``tryouts models --fits``.

    Raises :class:`~tryouts.memory.arch.EstimateError` when the entry has no architecture numbers.
    """
    return estimate(Arch.from_catalog(entry), dtype=dtype, context=context, batch=batch, kv_dtype=kv_dtype)


def llama_cpp_attention(arch: Arch) -> Arch:
    """``arch`` as llama.cpp runs it: without its sliding window unless its type is in :data:`LLAMA_CPP_SWA_TYPES`."""
    if not arch.sliding_window or arch.model_type in LLAMA_CPP_SWA_TYPES:
        return arch
    return arch.with_(sliding_window=None, sliding_window_layers=None)


def _storage_kind(t: Any, dt: DType, arch: Arch) -> str:
    b = tensor_bytes(t, dt, arch)
    per = b / t.numel
    if dt.kind == "float":
        return "fp32" if per == 4 else dt.name
    if dt.kind in NATIVE_LABELS:
        return "bf16" if per == 2 else {"mxfp4": "MXFP4", "fp8-block": "fp8"}[dt.kind]
    if per >= 2:
        return "fp32" if per >= 4 else "16-bit"
    return {"bnb": dt.name, "fp8": "fp8"}[dt.kind]


def _mix_text(m: dict[str, int]) -> str:
    total = sum(m.values())
    if len(m) == 1:
        return next(iter(m))
    parts = sorted(m.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / total:.0f}%" if 200 * v >= total else f"{k} <1%" for k, v in parts)


def _dtype_notes(arch: Arch, dt: DType) -> list[str]:
    if dt.kind == "bnb":
        notes = ["bitsandbytes via transformers: nn.Linear weights quantized; embeddings, LM head, norms and biases "
                 "stay 16-bit"]
        notes.append({"int8": "int8: 1 byte per weight + a float32 scale per output row",
                      "nf4-dq": "nf4-dq: 4 bits + 8-bit absmax per 64 weights + float32 per 256 absmax (~4.13 bits)"}
                     .get(dt.name, f"{dt.name}: 4 bits + a float32 absmax per 64-weight block = 4.5 bits per weight "
                                   "(no double quantization, transformers' default)"))
        if arch.is_moe:
            notes.append("MoE: transformers 5 stores routed experts as 3-D tensors, which bitsandbytes does not "
                         "quantize; they stay 16-bit (use GGUF or FP8 to shrink them)")
        return notes
    if dt.kind == "fp8":
        return ["fp8: linear and expert weights 1 byte + a per-tensor scale; embeddings and LM head 16-bit"]
    if dt.kind == "mxfp4":
        notes = ["mxfp4 (the gpt-oss checkpoint layout): routed-expert weight matrices at 17 bytes per 32 weights "
                 "(4.25 bits); attention, embeddings, router, LM head, norms and biases bf16"]
        if not arch.is_moe:
            notes.append("this model has no routed experts: mxfp4 stores nothing in MXFP4 here (same as bf16)")
        return notes
    if dt.kind == "fp8-block":
        return ["fp8-block (the DeepSeek-V3 checkpoint layout): linear and expert weights 1 byte + a float32 scale per "
                "128x128 block; embeddings, LM head, norms and router bf16"]
    if dt.kind == "gguf":
        return ["GGUF: each tensor at the ggml type llama.cpp's llama-quantize picks for the file type (docs/memory.md); "
                "norms, biases and routers F32"]
    if dt.kind == "file":
        return [f"weights as the file stores them: each tensor's own ggml type and bytes ({arch.stored_format})"]
    return []


def _kv_notes(arch: Arch, context: int, kv_name: str) -> list[str]:
    if arch.encoder_only:
        return ["encoder-only model: no KV cache"]
    notes = [f"KV cache values in {kv_name}"]
    if arch.is_mla:
        notes.append(f"MLA: the cache holds the compressed latent (kv_lora_rank {arch.kv_lora_rank} + rope "
                     f"{arch.qk_rope_head_dim} values per token and layer), not full per-head keys and values")
    if arch.sliding_layers and arch.sliding_window and context > arch.sliding_window:
        notes.append(f"{arch.sliding_layers} of {arch.layers} layers use a {arch.sliding_window}-token sliding window "
                     "and cache at most that many tokens")
    if arch.is_encoder_decoder:
        notes.append("encoder-decoder: self-attention cache over the output plus cross-attention cache over a "
                     "source of the same length")
    return notes
