"""Parameter counts computed analytically from an :class:`~tryouts.memory.arch.Arch`: a tensor inventory.

:func:`inventory` lists every weight tensor a model has, with its shape, its layer and its class, named the
way llama.cpp names GGUF tensors (``token_embd.weight``, ``blk.N.attn_v.weight``, ``blk.N.ffn_down_exps.weight``
...) because GGUF's quantization mixes pick a type by name. Shapes are PyTorch's (``out, in``; experts
``n_experts, out, in``), so the last number is a row's length, which is what block quantizers care about.

Classes (:data:`CLASSES`): ``embeddings`` (token, position and token-type tables), ``attention`` (projections
and their biases, cross-attention included), ``mlp`` (dense feed-forward), ``experts`` (routed experts),
``shared_experts``, ``router``, ``norms``, ``pooler``, ``lm_head`` (absent when tied to the embeddings), and
``other`` (only for tensors read from a GGUF file that fit none of these, e.g. ``rope_freqs``).
:func:`tensor_class` gives a GGUF tensor name its class, so a GGUF file's own tensor table
(:meth:`~tryouts.memory.arch.Arch.from_gguf`) is counted like an inventory.

The inventory follows what transformers instantiates (checked on the meta device in tests/test_memory.py):
tied matrices once, DeepSeek-V3 without its multi-token-prediction layer, Marian's frozen sinusoidal tables
included (they are parameters in memory, though not in the checkpoint), buffers (rotary tables, DeepSeek's
``e_score_correction_bias``) left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .arch import Arch

CLASSES = ("embeddings", "attention", "mlp", "experts", "shared_experts", "router", "norms", "pooler", "lm_head",
           "other")


@dataclass(frozen=True)
class Tensor:
    """One weight tensor: GGUF-style ``name``, class ``cls``, PyTorch ``shape``, decoder ``layer`` (or None)."""

    name: str
    cls: str
    shape: tuple[int, ...]
    layer: int | None = None
    scale: float = 1.0  # < or > 1 only when scaled to a catalog's parameter count (:func:`scale_to`)
    #: a tensor read from a GGUF file's tensor table: its ggml type and its bytes there
    ggml_type: str | None = None
    nbytes: int | None = None

    @property
    def numel(self) -> int:
        n = math.prod(self.shape)
        return n if self.scale == 1.0 else round(n * self.scale)

    @property
    def row(self) -> int:
        """Elements per row (``ne[0]`` in ggml): what block quantizers divide into blocks."""
        return self.shape[-1]

    @property
    def is_matrix(self) -> bool:
        """A 2D/3D weight (GGUF quantizes only these; a ``(1, n)`` gate counts as a vector)."""
        return len([d for d in self.shape if d > 1]) >= 2


def _linear(out: list[Tensor], name: str, cls: str, n_out: int, n_in: int, bias: bool, layer: int | None) -> None:
    out.append(Tensor(f"{name}.weight", cls, (n_out, n_in), layer))
    if bias:
        out.append(Tensor(f"{name}.bias", cls, (n_out,), layer))


def _norm(out: list[Tensor], name: str, a: Arch, dim: int, layer: int | None) -> None:
    out.append(Tensor(f"{name}.weight", "norms", (dim,), layer))
    if a.norm_kind == "layer":
        out.append(Tensor(f"{name}.bias", "norms", (dim,), layer))


def _attention(out: list[Tensor], a: Arch, p: str, layer: int | None, prefix: str = "attn") -> None:
    h, hd = a.hidden_size, a.head_dim
    if a.is_mla and prefix == "attn":
        nope, rope = a.qk_nope_head_dim or hd - (a.qk_rope_head_dim or 0), a.qk_rope_head_dim or 0
        v_dim = a.v_head_dim or hd
        q_dim = a.attention_heads * (nope + rope)
        if a.q_lora_rank:
            _linear(out, f"{p}attn_q_a", "attention", a.q_lora_rank, h, a.qkv_bias, layer)
            _norm_rms(out, f"{p}attn_q_a_norm", a.q_lora_rank, layer)
            _linear(out, f"{p}attn_q_b", "attention", q_dim, a.q_lora_rank, False, layer)
        else:
            _linear(out, f"{p}attn_q", "attention", q_dim, h, False, layer)
        _linear(out, f"{p}attn_kv_a_mqa", "attention", a.kv_lora_rank + rope, h, a.qkv_bias, layer)
        _norm_rms(out, f"{p}attn_kv_a_norm", a.kv_lora_rank, layer)
        _linear(out, f"{p}attn_kv_b", "attention", a.attention_heads * (nope + v_dim), a.kv_lora_rank, False, layer)
        _linear(out, f"{p}attn_output", "attention", h, a.attention_heads * v_dim, a.o_bias, layer)
        return
    q, kv = a.attention_heads * hd, a.kv_heads * hd
    if a.fused_qkv:
        _linear(out, f"{p}{prefix}_qkv", "attention", q + 2 * kv, h, a.qkv_bias, layer)
    else:
        _linear(out, f"{p}{prefix}_q", "attention", q, h, a.qkv_bias, layer)
        _linear(out, f"{p}{prefix}_k", "attention", kv, h, a.qkv_bias, layer)
        _linear(out, f"{p}{prefix}_v", "attention", kv, h, a.qkv_bias, layer)
    _linear(out, f"{p}{prefix}_output", "attention", h, q, a.o_bias, layer)
    if a.attn_sinks and prefix == "attn":
        out.append(Tensor(f"{p}attn_sinks.weight", "attention", (a.attention_heads,), layer))
    if a.qk_norm and prefix == "attn":
        _norm_rms(out, f"{p}attn_q_norm", hd, layer)
        _norm_rms(out, f"{p}attn_k_norm", hd, layer)


def _norm_rms(out: list[Tensor], name: str, dim: int, layer: int | None) -> None:
    out.append(Tensor(f"{name}.weight", "norms", (dim,), layer))


def _mlp(out: list[Tensor], a: Arch, p: str, width: int, layer: int | None, cls: str = "mlp", suffix: str = "") -> None:
    h, bias = a.hidden_size, a.mlp_bias and cls == "mlp"
    if a.mlp_kind == "plain":
        _linear(out, f"{p}ffn_up{suffix}", cls, width, h, bias, layer)
    elif a.fused_gate_up and cls == "mlp":
        _linear(out, f"{p}ffn_up{suffix}", cls, 2 * width, h, bias, layer)
    else:
        _linear(out, f"{p}ffn_gate{suffix}", cls, width, h, bias, layer)
        _linear(out, f"{p}ffn_up{suffix}", cls, width, h, bias, layer)
    _linear(out, f"{p}ffn_down{suffix}", cls, h, width, bias, layer)


def _moe(out: list[Tensor], a: Arch, p: str, layer: int) -> None:
    h, e, w = a.hidden_size, int(a.experts or 0), int(a.moe_intermediate_size or a.intermediate_size)
    out.append(Tensor(f"{p}ffn_gate_inp.weight", "router", (e, h), layer))
    if a.router_bias:
        out.append(Tensor(f"{p}ffn_gate_inp.bias", "router", (e,), layer))
    for name, shape in (("gate", (e, w, h)), ("up", (e, w, h)), ("down", (e, h, w))):
        out.append(Tensor(f"{p}ffn_{name}_exps.weight", "experts", shape, layer))
        if a.expert_bias:  # gpt-oss (GGUF stores them as 2-D tensors, F32)
            out.append(Tensor(f"{p}ffn_{name}_exps.bias", "experts", shape[:2], layer))
    if a.shared_expert_size:
        _mlp(out, a, p, a.shared_expert_size, layer, cls="shared_experts", suffix="_shexp")
    if a.shared_expert_gate:
        out.append(Tensor(f"{p}ffn_gate_inp_shexp.weight", "shared_experts", (1, h), layer))


def _decoder_layer(out: list[Tensor], a: Arch, i: int) -> None:
    p = f"blk.{i}."
    _norm(out, f"{p}attn_norm", a, a.hidden_size, i)
    _attention(out, a, p, i)
    if a.is_encoder_decoder:
        _norm(out, f"{p}cross_attn_norm", a, a.hidden_size, i)
        _attention(out, a, p, i, prefix="cross_attn")
    _norm(out, f"{p}ffn_norm", a, a.hidden_size, i)
    for k in range(max(0, a.norms_per_layer - (3 if a.is_encoder_decoder else 2))):  # Gemma's extra norms
        _norm(out, f"{p}post_norm_{k}", a, a.hidden_size, i)
    if a.is_moe and i not in a.dense_layers:
        _moe(out, a, p, i)
    else:
        _mlp(out, a, p, a.intermediate_size, i)


def _encoder_layer(out: list[Tensor], a: Arch, i: int) -> None:
    p = f"enc.blk.{i}."
    _norm(out, f"{p}attn_norm", a, a.hidden_size, None)
    enc = a.with_(qk_norm=False, fused_qkv=False)
    _attention(out, enc, p, None)
    _norm(out, f"{p}ffn_norm", a, a.hidden_size, None)
    _mlp(out, a, p, a.encoder_intermediate_size or a.intermediate_size, None)


def inventory(a: Arch) -> list[Tensor]:
    """Every weight tensor of the model described by ``a``, in GGUF order (embeddings, layers, output)."""
    out: list[Tensor] = []
    h = a.hidden_size
    for t in range(a.embedding_tables):
        out.append(Tensor("token_embd.weight" if t == 0 else f"token_embd_{t}.weight", "embeddings", (a.vocab_size, h)))
    for t in range(a.position_tables):
        out.append(Tensor("position_embd.weight" if t == 0 else f"position_embd_{t}.weight", "embeddings",
                          (a.position_embeddings, h)))
    if a.token_types:
        out.append(Tensor("token_types.weight", "embeddings", (a.token_types, h)))
    if a.embedding_norm:
        _norm(out, "token_embd_norm", a, h, None)
    for i in range(a.encoder_layers):
        _encoder_layer(out, a, i)
    for i in range(a.layers):
        _decoder_layer(out, a, i)
    for k in range(a.final_norms):
        _norm(out, "output_norm" if k == 0 else f"output_norm_{k}", a, h, None)
    if a.pooler:
        _linear(out, "pooler", "pooler", h, h, True, None)
    if not a.tied_embeddings and not a.encoder_only:
        out.append(Tensor("output.weight", "lm_head", (a.vocab_size, h)))
    return out


def tensor_class(name: str) -> str:
    """The class (:data:`CLASSES`) of a tensor named as llama.cpp names GGUF tensors."""
    if "norm" in name:
        return "norms"
    if name.startswith(("token_embd", "position_embd", "token_types")):
        return "embeddings"
    if name.startswith("output."):
        return "lm_head"
    if "shexp" in name:
        return "shared_experts"
    if "ffn_gate_inp" in name or "exp_probs" in name:
        return "router"
    if "_exps" in name:
        return "experts"
    if "ffn_" in name:
        return "mlp"
    if "attn" in name:
        return "attention"
    return "pooler" if name.startswith("cls") else "other"


def tensor_layer(name: str) -> int | None:
    """The decoder layer of a GGUF tensor (``blk.N.``), else None."""
    parts = name.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "blk" and parts[1].isdigit() else None


def class_counts(tensors: list[Tensor]) -> dict[str, int]:
    """Parameters per class, in :data:`CLASSES` order, zero classes left out."""
    counts = dict.fromkeys(CLASSES, 0)
    for t in tensors:
        counts[t.cls] += t.numel
    return {k: v for k, v in counts.items() if v}


def scale_to(tensors: list[Tensor], a: Arch) -> tuple[list[Tensor], float]:
    """Scale the inventory so its total equals ``a.declared_params`` (catalog entries); returns (tensors, factor).

    An MoE model's routed experts absorb the difference (the catalog's per-expert width is the least certain
    number); a dense model's linear layers (attention, MLP) are scaled together. Norms, embeddings and the
    LM head are exact from the catalog's numbers and are left alone. Factor 1.0 = nothing changed.
    """
    target = a.declared_params
    total = sum(t.numel for t in tensors)
    if not target or target == total:
        return tensors, 1.0
    for scaled in (("experts",), ("attention", "mlp", "experts", "shared_experts")):
        part = sum(t.numel for t in tensors if t.cls in scaled)
        rest = total - part
        if part and target > rest:
            factor = (target - rest) / part
            break
    else:
        return tensors, 1.0
    out = [Tensor(t.name, t.cls, t.shape, t.layer, factor) if t.cls in scaled else t for t in tensors]
    return out, factor


def active_params(a: Arch, tensors: list[Tensor]) -> int | None:
    """Parameters used per token for an MoE model (routed experts counted at ``experts_per_token / experts``)."""
    if not a.is_moe:
        return None
    if a.declared_active:
        return a.declared_active
    total = sum(t.numel for t in tensors)
    routed = sum(t.numel for t in tensors if t.cls == "experts")
    k, e = int(a.experts_per_token or 1), int(a.experts or 1)
    return total - routed + routed * k // e
