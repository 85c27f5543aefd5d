"""The catalog's types: one :class:`Entry` per model, as written in ``catalog/data/<family>.yaml``.

The YAML format is a contract shared with the memory estimator (which reads ``params`` and ``arch``);
``schema.json`` next to this module is its JSON Schema and docs/catalog.md describes it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: the tasks an entry may list (``tryouts models --task``)
TASKS = ("chat", "code", "classification", "ner", "translation", "summarization", "embeddings")
#: figure groups that need a source URL when the entry gives them
SOURCED = ("params", "arch", "context_window", "max_output", "knowledge_cutoff", "license", "price", "shutdown",
           "max_input", "lifecycle", "native_format")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Params(_Frozen):
    """Parameter counts. ``None`` = undisclosed (commercial models)."""

    total: int | None = Field(description="All parameters, as a checkpoint stores them (tied matrices once).")
    active: int | None = Field(None, description="Parameters used per token (MoE models); None for dense models.")


class Arch(_Frozen):
    """The architecture numbers memory needs, straight from the model's ``config.json``."""

    type: str = Field(description="config.json model_type (the language model's, for multimodal models).")
    layers: int = Field(description="Decoder layers (all layers for encoder-only models).")
    hidden_size: int
    intermediate_size: int | None = Field(
        description="The MLP width; for MoE models the routed experts' (Qwen3-MoE: moe_intermediate_size). "
        "DeepSeek-V3/R1 keep config.json's dense-layer value."
    )
    attention_heads: int
    kv_heads: int = Field(description="Key/value heads (GQA/MQA); equal to attention_heads for plain MHA.")
    head_dim: int
    vocab_size: int
    tied_embeddings: bool = False
    sliding_window: int | None = Field(None, description="Tokens, when some or all layers attend within a window.")
    sliding_window_layers: int | None = Field(
        None, description="How many of `layers` use the window; None = all of them when sliding_window is set."
    )
    experts: int | None = Field(None, description="MoE: routed experts per layer.")
    experts_per_token: int | None = None
    kv_lora_rank: int | None = Field(None, description="MLA (DeepSeek-V3/R1): the compressed KV dimension.")
    qk_rope_head_dim: int | None = Field(None, description="MLA: the decoupled RoPE key dimension.")
    encoder_only: bool = Field(False, description="BERT-style: no KV cache at inference.")
    encoder_layers: int | None = Field(
        None, description="Encoder-decoder models: the encoder's layers (`layers` counts the decoder's)."
    )
    native_format: Literal["mxfp4", "fp8"] | None = Field(
        None, description="The low-bit format the published checkpoint ships its weights in (gpt-oss: MXFP4 "
        "experts; DeepSeek-V3: FP8 linear weights); None = 16-bit."
    )

    @property
    def is_moe(self) -> bool:
        """Whether tokens are routed to a subset of experts."""
        return bool(self.experts)


class Modalities(_Frozen):
    input: tuple[str, ...]
    output: tuple[str, ...]


class CatalogPrice(_Frozen):
    """The catalog's own price, USD per million tokens: for models genai-prices does not know, or where its price is
    older than this one (``as_of``; docs/metrics.md, cost)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = Field(None, description="Input read from the provider's cache (a cache "
                                                  "hit); None: not published.")
    currency: Literal["USD"] = "USD"
    as_of: str = Field(description="The date (YYYY-MM-DD) the price was published or checked.")


class Entry(_Frozen):
    """One model of the catalog."""

    id: str = Field(description="Unique catalog name: lowercase letters, digits, '.', '-'.")
    name: str
    aliases: tuple[str, ...] = ()
    maker: str
    access: Literal["open", "commercial"] = Field(
        description="open = the weights can be downloaded (whatever their licence); commercial = API only."
    )
    routes: tuple[str, ...] = Field((), description="Tryouts model references that run it (provider:model).")
    params: Params
    arch: Arch | None
    context_window: int | None
    max_output: int | None
    max_input: int | None = Field(None, description="The most input tokens, where the context window counts input "
                                  "plus output (GPT-5: a 400k window, 272k of input).")
    knowledge_cutoff: str | None
    license: str
    modalities: Modalities
    tasks: tuple[str, ...]
    price: CatalogPrice | None = None
    shutdown: str | None = Field(None, description="When the provider turns it off (YYYY, YYYY-MM or YYYY-MM-DD): "
                                 "past = retired, future = deprecated with a shutdown date.")
    lifecycle_checked: str | None = Field(None, description="When the lifecycle (active, deprecated, retired) was last "
                                          "checked against the provider's deprecation page (sources.lifecycle).")
    notes: str | None = None
    sources: dict[str, str]
    #: the family (file) it was read from; set by the loader, not written in the YAML
    family: str = ""
    file: str = ""

    @property
    def is_open(self) -> bool:
        return self.access == "open"

    def retired(self, today: str | None = None) -> bool:
        """Whether the provider has turned it off by ``today`` (ISO date; default: today)."""
        if not self.shutdown:
            return False
        import datetime as _dt

        return self.shutdown <= (today or _dt.date.today().isoformat())[: len(self.shutdown)]

    @property
    def is_moe(self) -> bool:
        return self.arch is not None and self.arch.is_moe

    @property
    def hub_id(self) -> str | None:
        """The Hugging Face repository of the weights: the first ``hf:`` route, else the first alias ``org/name``."""
        for route in self.routes:
            provider, _, model = route.partition(":")
            if provider == "hf" and "/" in model and not model.startswith((".", "/", "~")):
                return model
        for alias in self.aliases:
            if alias.count("/") == 1 and ":" not in alias:
                return alias
        return None

    def to_dict(self) -> dict:
        """A JSON-ready dict (prices as strings keep their exact decimals)."""
        return self.model_dump(mode="json")
