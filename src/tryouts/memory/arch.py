"""What the memory estimator knows about a model: :class:`Arch`, built from a ``config.json`` or a catalog entry.

``Arch.from_config`` reads a Hugging Face ``config.json`` dict and replicates the defaults of the matching
transformers configuration class, so the parameter inventory (:mod:`tryouts.memory.params`) is exact for
the supported ``model_type`` values (:data:`EXACT_TYPES`); other decoder types are read as Llama-like.
``Arch.from_catalog`` reads the catalog's ``arch`` + ``params`` (docs/catalog.md), which carry fewer
numbers: the inventory is then scaled so that its total equals the catalog's parameter count.
``Arch.from_gguf`` reads a GGUF file's header (:mod:`tryouts.gguf_meta`) and keeps the file's own tensor
table, so the weights are counted as stored rather than computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import TryoutsError, UsageError

#: model_type values whose parameter inventory is exact (checked against transformers in tests/test_memory.py)
EXACT_TYPES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3", "gemma2", "gemma3_text",
    "starcoder2", "deepseek_v3", "gpt_oss", "bert", "roberta", "xlm-roberta", "distilbert", "marian", "m2m_100",
)
ENCODER_ONLY_TYPES = ("bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "camembert", "electra", "deberta",
                      "deberta-v2")
ENCODER_DECODER_TYPES = ("marian", "m2m_100", "nllb-moe", "bart", "mbart", "pegasus", "t5", "mt5", "umt5")
_SLIDING = ("sliding_attention", "chunked_attention")



class EstimateError(TryoutsError):
    """Raised when a model's numbers are not enough for an estimate (e.g. an API-only catalog entry)."""

    kind = "estimate"


# DeepSeek-V3/R1 numbers the catalog format does not carry (from their config.json)
_DEEPSEEK_V3 = {"q_lora_rank": 1536, "qk_nope_head_dim": 128, "v_head_dim": 128, "moe_intermediate_size": 2048,
                "n_shared_experts": 1, "first_k_dense_replace": 3}


@dataclass(frozen=True)
class Arch:
    """The numbers that decide a model's weights and KV cache.

    Sizes follow the Hugging Face config names. ``layers`` counts decoder layers (all layers of an
    encoder-only model; ``encoder_layers`` adds the encoder of an encoder-decoder model).
    ``declared_params`` is a parameter count given from outside (the catalog); when set, the inventory is
    scaled to it. ``notes`` are assumptions made while reading the source, shown with every estimate.
    """

    model_type: str
    layers: int
    hidden_size: int
    intermediate_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool = False
    # block layout
    mlp_kind: str = "gated"  # gated: gate, up, down | plain: up, down
    fused_qkv: bool = False  # phi3: one qkv_proj (llama.cpp: attn_qkv)
    fused_gate_up: bool = False  # phi3: one gate_up_proj
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norm_kind: str = "rms"  # rms: weight | layer: weight + bias
    norms_per_layer: int = 2
    qk_norm: bool = False
    attn_sinks: bool = False  # gpt-oss: one learned sink logit per head and layer
    final_norms: int = 1
    # sliding-window attention
    sliding_window: int | None = None
    sliding_window_layers: int | None = None  # None with a window = every layer
    # mixture of experts
    experts: int | None = None
    experts_per_token: int | None = None
    moe_intermediate_size: int | None = None
    dense_layers: tuple[int, ...] = ()  # layer indices with a dense MLP in an MoE model
    shared_expert_size: int = 0  # total intermediate width of the shared expert(s)
    shared_expert_gate: bool = False
    router_fp32: bool = False  # transformers keeps the router in float32 (DeepSeek-V3)
    router_bias: bool = False  # gpt-oss
    expert_bias: bool = False  # gpt-oss: biases on the experts' gate/up and down projections
    # multi-head latent attention (DeepSeek-V3)
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    q_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    # encoders
    encoder_only: bool = False
    encoder_layers: int = 0
    encoder_intermediate_size: int | None = None
    position_embeddings: int = 0  # rows of each learned position table
    position_tables: int = 0
    token_types: int = 0
    embedding_norm: bool = False
    pooler: bool = False
    embedding_tables: int = 1  # Marian without shared embeddings: 2
    #: the longest context the model supports (catalog context window, or config max_position_embeddings)
    max_context: int | None = None
    # provenance
    declared_params: int | None = None
    declared_active: int | None = None
    #: the dtype the published checkpoint ships its weights in ("mxfp4", "fp8-block", "fp8"; None = 16-bit): what
    #: ``dtype="native"`` counts (:mod:`tryouts.memory.native`)
    native_format: str | None = None
    name: str = ""
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    #: a GGUF file's own tensor table (:class:`~tryouts.memory.params.Tensor` with ``ggml_type`` and ``nbytes``),
    #: counted instead of the computed inventory; ``stored_format`` names it, e.g. "GGUF Q4_K_M"
    stored: tuple[Any, ...] = field(default=(), repr=False)
    stored_format: str | None = None

    @property
    def is_moe(self) -> bool:
        """Whether tokens are routed to a subset of experts."""
        return bool(self.experts)

    @property
    def is_mla(self) -> bool:
        """Whether attention caches a compressed latent (multi-head latent attention)."""
        return bool(self.kv_lora_rank)

    @property
    def is_encoder_decoder(self) -> bool:
        return self.encoder_layers > 0

    @property
    def sliding_layers(self) -> int:
        """How many layers attend within ``sliding_window`` tokens."""
        if not self.sliding_window:
            return 0
        return self.layers if self.sliding_window_layers is None else self.sliding_window_layers

    def with_(self, **changes: Any) -> Arch:
        """A copy with some fields changed."""
        return replace(self, **changes)

    # ---------------------------------------------------------------- builders

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, name: str = "", source: str = "config.json") -> Arch:
        """Read a Hugging Face ``config.json`` dict (a multimodal config's ``text_config`` is used when present).

        Raises :class:`~tryouts.errors.UsageError` when the dict lacks the sizes needed.
        """
        return _from_config(dict(config), name=name, source=source)

    @classmethod
    def from_catalog(cls, entry: Any) -> Arch:
        """Read a catalog entry (an :class:`tryouts.catalog.Entry`, or a dict with ``arch`` and ``params``).

        A bare ``arch`` dict is accepted too. The catalog gives fewer numbers than a config.json, so the
        inventory is scaled to ``params.total`` when the entry has it (see :mod:`tryouts.memory.params`).
        """
        return _from_catalog(entry)

    @classmethod
    def from_gguf(cls, info: Any, *, name: str = "") -> Arch:
        """Read a GGUF file's header (a :class:`tryouts.gguf_meta.GGUFInfo`): the numbers from its metadata,
        the block layout and the weights (shapes, ggml types, bytes) from its tensor table."""
        return _from_gguf(info, name=name)


# ---------------------------------------------------------------------- config.json


def _need(cfg: Mapping[str, Any], *keys: str, what: str = "") -> int:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return int(value)
    model_type = cfg.get("model_type", "?")
    raise UsageError(f"The config.json (model_type {model_type!r}) has no {what or ' / '.join(keys)}; "
                     "pass the model's own config.json (it lists the architecture numbers).")


def _sliding_from_layer_types(cfg: Mapping[str, Any], layers: int) -> tuple[int | None, int | None]:
    layer_types = cfg.get("layer_types")
    if not layer_types:
        return None, None
    n = sum(1 for t in layer_types[:layers] if t in _SLIDING)
    if not n:
        return None, None
    window = cfg.get("sliding_window") or cfg.get("attention_chunk_size")
    return (int(window), n) if window else (None, None)


# transformers' Gemma3TextConfig defaults: Gemma 3's multimodal config.json files leave some of them out
_GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
                         "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256}


def _text_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    text = cfg.get("text_config")
    if isinstance(text, Mapping) and ("hidden_size" not in cfg or "num_hidden_layers" not in cfg):
        merged = dict(text)
        outer = cfg.get("model_type", "")
        if not merged.get("model_type"):
            merged["model_type"] = f"{outer}_text" if outer in ("gemma3",) else outer
        if merged["model_type"] == "gemma3_text":
            merged = {**_GEMMA3_TEXT_DEFAULTS, **merged}
        if "tie_word_embeddings" not in merged and "tie_word_embeddings" in cfg:
            merged["tie_word_embeddings"] = cfg["tie_word_embeddings"]
        notes.append(f"multimodal config ({outer}): the language model only; the vision/audio encoder is not counted")
        return merged, notes
    return cfg, notes


def _from_config(cfg: dict[str, Any], *, name: str, source: str) -> Arch:
    if not isinstance(cfg, Mapping):
        raise UsageError("The config.json does not hold a JSON object; pass a Hugging Face model config.json.")
    cfg, notes = _text_config(cfg)
    mt = str(cfg.get("model_type") or "").lower()
    if not mt:
        raise UsageError("The config.json has no model_type; pass a Hugging Face model config.json.")
    if mt in ("distilbert",):
        return _distilbert(cfg, name, source, notes)
    if mt in ENCODER_DECODER_TYPES:
        return _encoder_decoder(cfg, mt, name, source, notes)
    if mt in ENCODER_ONLY_TYPES:
        return _bert(cfg, mt, name, source, notes)

    layers = _need(cfg, "num_hidden_layers", "n_layer", "num_layers", what="num_hidden_layers")
    hidden = _need(cfg, "hidden_size", "n_embd", "d_model", what="hidden_size")
    heads = _need(cfg, "num_attention_heads", "n_head", what="num_attention_heads")
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    inter = int(cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * hidden)
    vocab = _need(cfg, "vocab_size", what="vocab_size")
    tied_default = mt in ("gemma", "gemma2", "gemma3_text", "starcoder2")
    tied = bool(cfg.get("tie_word_embeddings", tied_default))
    kw: dict[str, Any] = dict(
        model_type=mt, layers=layers, hidden_size=hidden, intermediate_size=inter, attention_heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, vocab_size=vocab, tied_embeddings=tied, name=name, source=source,
    )

    window, n_sliding = _sliding_from_layer_types(cfg, layers)
    if mt in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        if window is None and cfg.get("use_sliding_window") and cfg.get("sliding_window"):
            mwl = int(cfg.get("max_window_layers", 28))
            if mt == "qwen2_moe":
                n_sliding = sum(1 for i in range(layers) if (i + 1) % 2 and i < mwl)
            else:
                n_sliding = sum(1 for i in range(layers) if i >= mwl)
            window = int(cfg["sliding_window"]) if n_sliding else None
    elif mt == "gemma2" and window is None and cfg.get("sliding_window", 4096):
        window, n_sliding = int(cfg.get("sliding_window", 4096)), sum(1 for i in range(layers) if (i + 1) % 2)
    elif mt == "gemma3_text" and window is None and cfg.get("sliding_window", 4096):
        pattern = int(cfg.get("sliding_window_pattern", 6))
        window, n_sliding = int(cfg.get("sliding_window", 4096)), sum(1 for i in range(layers) if (i + 1) % pattern)
    elif window is None and cfg.get("sliding_window") and mt not in ("qwen2", "qwen3"):
        window, n_sliding = int(cfg["sliding_window"]), layers
    kw.update(sliding_window=window, sliding_window_layers=n_sliding if window else None)
    if mt == "gemma3_text" and cfg.get("use_bidirectional_attention") and window:
        kw["sliding_window"] = window // 2 + 1

    if mt in ("llama", "granite", "olmo2", "cohere"):
        kw.update(qkv_bias=bool(cfg.get("attention_bias")), o_bias=bool(cfg.get("attention_bias")),
                  mlp_bias=bool(cfg.get("mlp_bias")))
    elif mt in ("qwen2",):
        kw.update(qkv_bias=True)
    elif mt == "qwen2_moe":
        kw.update(qkv_bias=bool(cfg.get("qkv_bias", True)))
    elif mt in ("qwen3", "qwen3_moe"):
        kw.update(qkv_bias=bool(cfg.get("attention_bias")), o_bias=bool(cfg.get("attention_bias")), qk_norm=True)
    elif mt == "phi3":
        kw.update(fused_qkv=True, fused_gate_up=True)
    elif mt in ("gemma2", "gemma3_text"):
        kw.update(qkv_bias=bool(cfg.get("attention_bias")), o_bias=bool(cfg.get("attention_bias")),
                  norms_per_layer=4, qk_norm=mt == "gemma3_text", head_dim=int(cfg.get("head_dim") or 256))
    elif mt == "gpt_oss":
        bias = bool(cfg.get("attention_bias", True))
        kw.update(qkv_bias=bias, o_bias=bias, attn_sinks=True, router_bias=True, expert_bias=True)
    elif mt == "starcoder2":
        bias = bool(cfg.get("use_bias", True))
        kw.update(mlp_kind="plain", qkv_bias=bias, o_bias=bias, mlp_bias=bias, norm_kind="layer")
    elif mt not in EXACT_TYPES:
        notes.append(f"model_type {mt!r} is read as a Llama-like decoder (gated MLP, RMSNorm, no biases); "
                     "the parameter count may be off by a few percent")

    if mt in ("mixtral", "gpt_oss"):
        kw.update(experts=_need(cfg, "num_local_experts"), experts_per_token=int(cfg.get("num_experts_per_tok", 2)),
                  moe_intermediate_size=inter)
    elif mt in ("qwen2_moe", "qwen3_moe"):
        n_exp = int(cfg.get("num_experts") or cfg.get("num_local_experts") or 0)
        step = int(cfg.get("decoder_sparse_step", 1) or 1)
        mlp_only = set(cfg.get("mlp_only_layers") or [])
        dense = tuple(i for i in range(layers) if i in mlp_only or not (n_exp > 0 and (i + 1) % step == 0))
        kw.update(experts=n_exp or None, experts_per_token=int(cfg.get("num_experts_per_tok", 4)),
                  moe_intermediate_size=_need(cfg, "moe_intermediate_size"), dense_layers=dense)
        if mt == "qwen2_moe":
            kw.update(shared_expert_size=int(cfg.get("shared_expert_intermediate_size") or 0), shared_expert_gate=True)
    elif mt == "deepseek_v3":
        k_dense = int(cfg.get("first_k_dense_replace", 0))
        n_routed = int(cfg.get("n_routed_experts") or cfg.get("num_local_experts") or 0)
        kw.update(
            experts=n_routed or None, experts_per_token=int(cfg.get("num_experts_per_tok", 8)),
            moe_intermediate_size=_need(cfg, "moe_intermediate_size"), dense_layers=tuple(range(min(k_dense, layers))),
            shared_expert_size=int(cfg.get("moe_intermediate_size")) * int(cfg.get("n_shared_experts") or 0),
            router_fp32=True, kv_lora_rank=_need(cfg, "kv_lora_rank"), qk_rope_head_dim=_need(cfg, "qk_rope_head_dim"),
            q_lora_rank=int(cfg["q_lora_rank"]) if cfg.get("q_lora_rank") else None,
            qk_nope_head_dim=_need(cfg, "qk_nope_head_dim"), v_head_dim=_need(cfg, "v_head_dim"),
            qkv_bias=bool(cfg.get("attention_bias")), o_bias=bool(cfg.get("attention_bias")),
        )
        if cfg.get("num_nextn_predict_layers"):
            notes.append("DeepSeek-V3's multi-token-prediction layer in the Hub checkpoint is not counted "
                         "(transformers and most servers do not load it)")
    elif cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts"):
        n_exp = int(cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts"))
        kw.update(experts=n_exp, experts_per_token=int(cfg.get("num_experts_per_tok") or 2),
                  moe_intermediate_size=int(cfg.get("moe_intermediate_size") or inter))
        notes.append(f"model_type {mt!r}: every layer read as a mixture of {n_exp} experts without shared experts")
    from .native import format_of_config

    native, native_notes = format_of_config(cfg)
    mpe = cfg.get("max_position_embeddings")
    return Arch(**kw, max_context=int(mpe) if isinstance(mpe, int) and mpe > 0 else None, native_format=native,
                notes=tuple(notes + native_notes))


def _bert(cfg: Mapping[str, Any], mt: str, name: str, source: str, notes: list[str]) -> Arch:
    hidden = _need(cfg, "hidden_size")
    heads = _need(cfg, "num_attention_heads")
    notes.append("encoder-only: counted as the bare encoder (AutoModel) with its pooler; task heads add a little")
    return Arch(
        model_type=mt, layers=_need(cfg, "num_hidden_layers"), hidden_size=hidden,
        intermediate_size=_need(cfg, "intermediate_size"), attention_heads=heads, kv_heads=heads,
        head_dim=hidden // heads, vocab_size=_need(cfg, "vocab_size"), tied_embeddings=True, mlp_kind="plain",
        qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer", final_norms=0, encoder_only=True,
        position_embeddings=int(cfg.get("max_position_embeddings", 512)), position_tables=1,
        token_types=int(cfg.get("type_vocab_size", 2)), embedding_norm=True, pooler=True,
        name=name, source=source, notes=tuple(notes),
    )


def _distilbert(cfg: Mapping[str, Any], name: str, source: str, notes: list[str]) -> Arch:
    dim = _need(cfg, "dim", "hidden_size")
    heads = _need(cfg, "n_heads", "num_attention_heads")
    notes.append("encoder-only: counted as the bare encoder (AutoModel); task heads add a little")
    return Arch(
        model_type="distilbert", layers=_need(cfg, "n_layers", "num_hidden_layers"), hidden_size=dim,
        intermediate_size=_need(cfg, "hidden_dim", "intermediate_size"), attention_heads=heads, kv_heads=heads,
        head_dim=dim // heads, vocab_size=_need(cfg, "vocab_size"), tied_embeddings=True, mlp_kind="plain",
        qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer", final_norms=0, encoder_only=True,
        position_embeddings=int(cfg.get("max_position_embeddings", 512)), position_tables=1, embedding_norm=True,
        name=name, source=source, notes=tuple(notes),
    )


def _encoder_decoder(cfg: Mapping[str, Any], mt: str, name: str, source: str, notes: list[str]) -> Arch:
    d_model = _need(cfg, "d_model", "hidden_size")
    heads = _need(cfg, "decoder_attention_heads", "num_heads", "num_attention_heads")
    vocab = _need(cfg, "vocab_size")
    shared = bool(cfg.get("share_encoder_decoder_embeddings", True))
    dec_vocab = int(cfg.get("decoder_vocab_size") or vocab)
    if mt == "marian" and (not shared or dec_vocab != vocab):
        raise UsageError("Marian models with separate encoder and decoder vocabularies are not supported by the "
                         "memory estimator yet.")
    if mt not in ("marian", "m2m_100"):
        notes.append(f"model_type {mt!r} is read like M2M-100 (pre-norm encoder-decoder); the count is approximate")
    marian = mt == "marian"
    return Arch(
        model_type=mt, layers=_need(cfg, "decoder_layers", "num_decoder_layers", "num_layers"), hidden_size=d_model,
        intermediate_size=_need(cfg, "decoder_ffn_dim", "d_ff"), attention_heads=heads, kv_heads=heads,
        head_dim=d_model // heads, vocab_size=vocab, tied_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        mlp_kind="plain", qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer", norms_per_layer=3,
        final_norms=0 if marian else 2, encoder_layers=_need(cfg, "encoder_layers", "num_layers"),
        encoder_intermediate_size=int(cfg.get("encoder_ffn_dim") or cfg.get("d_ff") or 0) or None,
        # Marian's sinusoidal tables are frozen nn.Embedding parameters (in memory, not in the checkpoint)
        position_embeddings=int(cfg.get("max_position_embeddings", 512)) if marian else 0,
        position_tables=2 if marian else 0, name=name, source=source, notes=tuple(notes),
    )


# ---------------------------------------------------------------------- catalog


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _from_catalog(entry: Any) -> Arch:
    arch = _get(entry, "arch")
    params = _get(entry, "params")
    if arch is None and _get(entry, "layers") is not None:  # a bare arch mapping
        arch, params = entry, None
    label = _get(entry, "name") or _get(entry, "id") or ""
    if arch is None:
        raise EstimateError(f"{label or 'This model'} has no architecture numbers in the catalog (an API-only model "
                            "whose size is not disclosed), so its memory cannot be estimated.")
    a = {f: _get(arch, f) for f in ("type", "layers", "hidden_size", "intermediate_size", "attention_heads",
                                    "kv_heads", "head_dim", "vocab_size", "tied_embeddings", "sliding_window",
                                    "sliding_window_layers", "experts", "experts_per_token", "kv_lora_rank",
                                    "qk_rope_head_dim", "encoder_only", "encoder_layers", "native_format")}
    missing = [k for k in ("layers", "hidden_size", "attention_heads", "vocab_size") if a[k] is None]
    if missing:
        raise EstimateError(f"The catalog entry {label!r} lacks {', '.join(missing)} in its arch.")
    mt = str(a["type"] or "llama")
    heads = int(a["attention_heads"])
    hidden = int(a["hidden_size"])
    kw: dict[str, Any] = dict(
        model_type=mt, layers=int(a["layers"]), hidden_size=hidden,
        intermediate_size=int(a["intermediate_size"] or 4 * hidden), attention_heads=heads,
        kv_heads=int(a["kv_heads"] or heads), head_dim=int(a["head_dim"] or hidden // heads),
        vocab_size=int(a["vocab_size"]), tied_embeddings=bool(a["tied_embeddings"]),
        sliding_window=a["sliding_window"], sliding_window_layers=a["sliding_window_layers"],
        name=str(label), source="catalog", native_format=_catalog_format(a["native_format"]),
    )
    template = _template(mt, bool(a["encoder_only"]), int(a["encoder_layers"] or 0))
    kw.update(template)
    if a["experts"]:
        kw.update(experts=int(a["experts"]), experts_per_token=int(a["experts_per_token"] or 2),
                  moe_intermediate_size=kw["intermediate_size"])
    if a["kv_lora_rank"]:
        kw.update(kv_lora_rank=int(a["kv_lora_rank"]), qk_rope_head_dim=int(a["qk_rope_head_dim"] or 64))
    if mt == "deepseek_v3":
        d = _DEEPSEEK_V3
        kw.update(q_lora_rank=d["q_lora_rank"], qk_nope_head_dim=d["qk_nope_head_dim"], v_head_dim=d["v_head_dim"],
                  moe_intermediate_size=d["moe_intermediate_size"], dense_layers=tuple(range(d["first_k_dense_replace"])),
                  shared_expert_size=d["moe_intermediate_size"] * d["n_shared_experts"], router_fp32=True)
    total, active = _get(params, "total"), _get(params, "active")
    window = _get(entry, "context_window") if params is not None else None
    return Arch(**kw, declared_params=int(total) if total else None, declared_active=int(active) if active else None,
                max_context=int(window) if window else None,
                notes=("from the catalog: the per-class split is computed from its architecture numbers and scaled "
                       "to its parameter count",))


def _template(mt: str, encoder_only: bool, encoder_layers: int) -> dict[str, Any]:
    """Block layout for a catalog model_type (the catalog does not carry biases, norms or MLP kind)."""
    if encoder_only or mt in ENCODER_ONLY_TYPES:
        return dict(mlp_kind="plain", qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer", final_norms=0,
                    encoder_only=True, position_embeddings=512, position_tables=1, token_types=2,
                    embedding_norm=True, pooler=mt != "distilbert", tied_embeddings=True)
    if encoder_layers or mt in ENCODER_DECODER_TYPES:
        return dict(mlp_kind="plain", qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer",
                    norms_per_layer=3, final_norms=2, encoder_layers=encoder_layers)
    if mt in ("starcoder2", "gpt2", "gpt_bigcode", "codegen", "falcon", "phi"):
        return dict(mlp_kind="plain", qkv_bias=True, o_bias=True, mlp_bias=True, norm_kind="layer")
    if mt in ("qwen2", "qwen2_moe"):
        return dict(qkv_bias=True)
    if mt in ("qwen3", "qwen3_moe"):
        return dict(qk_norm=True)
    if mt in ("gemma2", "gemma3", "gemma3_text"):
        return dict(norms_per_layer=4, qk_norm=mt != "gemma2")
    if mt == "phi3":
        return dict(fused_qkv=True, fused_gate_up=True)
    if mt == "gpt_oss":
        return dict(qkv_bias=True, o_bias=True, attn_sinks=True, router_bias=True, expert_bias=True)
    return {}


def _catalog_format(value: Any) -> str | None:
    from .native import CATALOG_FORMATS

    return CATALOG_FORMATS.get(str(value)) if value else None




# ---------------------------------------------------------------------- GGUF


# GGUF architecture names that differ from the transformers model_type the estimator knows
_GGUF_TYPES = {"gemma3": "gemma3_text", "qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss"}
_GGUF_ENCODERS = ("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "modern-bert", "neo-bert")


def _from_gguf(info: Any, *, name: str) -> Arch:
    from .params import Tensor, tensor_class, tensor_layer

    arch = info.architecture or "?"
    source = info.path
    nums = {"block_count": info.block_count, "embedding_length": info.embedding_length,
            "attention.head_count": info.head_count, "vocab_size": info.vocab_size}
    missing = [k for k, v in nums.items() if not v]
    if missing:
        raise UsageError(f"The GGUF file {source!r} (architecture {arch!r}) has no {', '.join(missing)} in its "
                         "metadata, which the memory estimate needs.")
    layers, hidden, heads = int(info.block_count), int(info.embedding_length), int(info.head_count)
    names = {t.name for t in info.tensors}

    def has(suffix: str) -> bool:
        return any(n.startswith("blk.") and n.endswith(suffix) for n in names)

    def rows(tensor: str) -> int | None:  # the PyTorch first dimension (ggml's last)
        t = info.tensor(tensor)
        return int(t.shape[-1]) if t is not None and len(t.shape) > 1 else None

    ff = info.feed_forward_length or 4 * hidden
    gated = has(".ffn_gate.weight") or has(".ffn_gate_exps.weight")
    up = next((rows(f"blk.{i}.ffn_up.weight") for i in range(layers) if f"blk.{i}.ffn_up.weight" in names), None)
    fused_gate_up = not gated and up == 2 * ff
    per_layer_norms = {n.split(".", 2)[2] for n in names if n.startswith("blk.0.") and n.endswith("norm.weight")
                       and ".attn_q" not in n and ".attn_k" not in n}
    kw: dict[str, Any] = dict(
        model_type=_GGUF_TYPES.get(arch, arch), layers=layers, hidden_size=hidden, intermediate_size=int(ff),
        attention_heads=heads, kv_heads=int(info.head_count_kv or heads), head_dim=int(info.head_dim or hidden // heads),
        vocab_size=int(info.vocab_size), tied_embeddings=info.tied_embeddings,
        mlp_kind="gated" if gated or fused_gate_up else "plain", fused_qkv=has(".attn_qkv.weight"),
        fused_gate_up=fused_gate_up, qkv_bias=has(".attn_q.bias") or has(".attn_qkv.bias"),
        o_bias=has(".attn_output.bias"), mlp_bias=has(".ffn_down.bias"), attn_sinks=has(".attn_sinks.weight"),
        router_bias=has(".ffn_gate_inp.bias"), expert_bias=has(".ffn_down_exps.bias"),
        norm_kind="layer" if has(".attn_norm.bias") else "rms", norms_per_layer=max(1, len(per_layer_norms)),
        qk_norm=has(".attn_q_norm.weight"), final_norms=1 if "output_norm.weight" in names else 0,
        encoder_only=arch in _GGUF_ENCODERS, max_context=info.context_length, name=name or _gguf_label(info),
        source=source, stored_format=f"GGUF {info.file_type}",
    )
    window = info.arch_int("attention.sliding_window")
    if window:
        pattern = info.arch_get("attention.sliding_window_pattern")
        if isinstance(pattern, list):
            n_sliding = sum(1 for p in pattern[:layers] if p)
        else:
            every = int(pattern) if isinstance(pattern, int) and pattern > 1 else {"gemma2": 2, "gemma3": 6}.get(arch)
            n_sliding = sum(1 for i in range(layers) if (i + 1) % every) if every else layers
        kw.update(sliding_window=window, sliding_window_layers=n_sliding)
    experts = info.arch_int("expert_count")
    if experts:
        moe_layers = [i for i in range(layers) if f"blk.{i}.ffn_gate_exps.weight" in names
                      or f"blk.{i}.ffn_up_exps.weight" in names]
        first = moe_layers[0] if moe_layers else 0
        exp_rows = info.tensor(f"blk.{first}.ffn_up_exps.weight")
        kw.update(experts=experts, experts_per_token=info.arch_int("expert_used_count") or 2,
                  moe_intermediate_size=info.arch_int("expert_feed_forward_length")
                  or (int(exp_rows.shape[1]) if exp_rows is not None else int(ff)),
                  dense_layers=tuple(i for i in range(layers) if i not in moe_layers),
                  shared_expert_size=rows(f"blk.{first}.ffn_up_shexp.weight") or 0,
                  shared_expert_gate=has(".ffn_gate_inp_shexp.weight"))
    kv_lora = info.arch_int("attention.kv_lora_rank")
    if kv_lora:
        rope = info.arch_int("rope.dimension_count") or 64
        key = info.arch_int("attention.key_length_mla") or info.arch_int("attention.key_length") or rope
        kw.update(kv_lora_rank=kv_lora, qk_rope_head_dim=rope, q_lora_rank=info.arch_int("attention.q_lora_rank"),
                  qk_nope_head_dim=key - rope,
                  v_head_dim=info.arch_int("attention.value_length_mla") or info.arch_int("attention.value_length"))
    stored = tuple(Tensor(t.name, tensor_class(t.name), tuple(reversed(t.shape)) or (1,), tensor_layer(t.name),
                          ggml_type=t.ggml_type, nbytes=t.n_bytes) for t in info.tensors)
    if any(t.ggml_type == "MXFP4" and t.cls == "experts" for t in stored):
        kw["native_format"] = "mxfp4"  # re-stored as another GGUF type, the experts stay MXFP4 (dtypes.py)
    notes = [f"from the GGUF file's header: the parameters are its own {len(stored)} tensors, which the file "
             f"stores in {info.tensor_bytes:,} bytes ({info.file_type})", *info.notes]
    return Arch(**kw, stored=stored, notes=tuple(notes))


def _gguf_label(info: Any) -> str:
    from pathlib import Path

    return Path(info.path).stem
