"""Each provider's options as a typed model: names, types, bounds, defaults and what they do.

A registry entry (providers/__init__.py) names its provider's model; the provider refuses an option the
model does not have (listing those it has) and a value of the wrong type or out of bounds, before anything
is loaded or sent. docs/providers.md and README's options table are generated from these models
(docs/gen_options.py). The engine's own options (:class:`EngineOptions`: ``price``, ``warmup``) are
accepted by every provider and kept apart: they change how Tryouts measures and prices, not the request.

Defaults shown are the provider's; an option left out is not sent.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _scalar_text(value: Any) -> Any:
    """YAML and ``-o KEY=VALUE`` turn ``2024-10-21`` into a date and ``7`` into an int: a text option takes them."""
    if isinstance(value, bool):
        return value  # refused below: true is not a name
    if isinstance(value, int | float | datetime.date):
        return str(value)
    return value


#: a text option (numbers and dates as written)
Text = Annotated[str, BeforeValidator(_scalar_text)]


class Options(BaseModel):
    """Base of every options model: unknown names are refused, values are checked, not converted."""

    model_config = ConfigDict(extra="forbid")


class EngineOptions(Options):
    """Options every provider accepts; the engine acts on them."""

    price: Text | None = Field(None, description="Price override `IN,OUT` in USD per million tokens, e.g. `0.15,0.60` "
                               "(else genai-prices; unknown stays unknown)")
    warmup: bool | None = Field(None, description="An untimed warm-up request before any timed one (its time is "
                                "`load_ms`); default on for servers on this machine and in-process models, off for "
                                "remote APIs")


class HTTPOptions(Options):
    """Transport options every HTTP provider shares (they never change an answer)."""

    base_url: Text | None = Field(None, description="The server's base URL (else the provider's variable, else its "
                                  "default)")
    api_key_env: Text | None = Field(None, description="The environment variable that holds the key (default: the "
                                     "provider's)")
    timeout: float | None = Field(None, gt=0, description="Seconds the whole request may take (default 600)")
    connect_timeout: float | None = Field(None, gt=0, description="Seconds to connect (default 10)")
    headers: dict[str, Text] | None = Field(None, description="Extra HTTP headers (redacted wherever stored)")
    extra_body: dict[str, Any] | None = Field(None, description="Fields merged into the request body")


class OpenAIOptions(HTTPOptions):
    """openai, openai-compat and the OpenAI-compatible presets (azure, groq, mistral, llamacpp-server...)."""

    tokenizer: Text | None = Field(None, description="A GGUF file, tokenizer folder, `tokenizer.json` or cached Hub "
                                   "id: counts tokens (with its chat template) when the server sends no usage; "
                                   "checked at load")
    one_token_per_chunk: bool | None = Field(None, description="The server sends one token per content chunk: count "
                                             "chunks when it sends no usage (default: per preset)")
    include_usage: bool | None = Field(None, description="Ask for `stream_options.include_usage` (default true)")
    api_version: Text | None = Field(None, description="Azure's api-version (default 2024-10-21)")
    prefix_cache: bool | None = Field(None, description="Let a local server reuse the previous prompt's cached "
                                      "prefix (default false where the server can be told: llama.cpp's "
                                      "`cache_prompt`; repeats are then fresh samples)")
    service_tier: Text | None = Field(None, description="The service tier asked for: OpenAI's `auto`, `default`, "
                                      "`flex`, `priority` (Groq's `on_demand`, `flex`...); the tier the response "
                                      "reports is priced with genai-prices' price for it, else the cost is unknown")


class AnthropicOptions(HTTPOptions):
    max_tokens_default: int | None = Field(None, ge=1, description="max_tokens when the run sets none (Anthropic "
                                           "requires one; default 4096)")
    thinking_budget: int | None = Field(None, ge=0, description="Extended thinking with this token budget (at "
                                        "least 1024, below --max-tokens; 0 is off)")
    anthropic_version: Text | None = Field(None, description="The anthropic-version header (default 2023-06-01)")


class GeminiOptions(HTTPOptions):
    thinking_budget: int | None = Field(None, ge=-1, description="Thinking tokens; streams thought summaries as "
                                        "reasoning (0 off where the model allows it, -1 dynamic)")


class CohereOptions(HTTPOptions):
    thinking_budget: int | None = Field(None, ge=0, description="Reasoning models: thinking with this token "
                                        "budget (0 turns it off)")


class OllamaOptions(Options):
    base_url: Text | None = Field(None, description="The server (else OLLAMA_HOST, else http://127.0.0.1:11434; "
                                  "`host:port` accepted)")
    timeout: float | None = Field(None, gt=0, description="Seconds the whole request may take (default 600)")
    connect_timeout: float | None = Field(None, gt=0, description="Seconds to connect (default 10)")
    headers: dict[str, Text] | None = Field(None, description="Extra HTTP headers, e.g. for a proxy's key")
    extra_body: dict[str, Any] | None = Field(None, description="Fields merged into the request body (`options` "
                                              "merge with Tryouts' own)")
    num_ctx: int | None = Field(None, ge=1, description="Context window in tokens")
    keep_alive: Text | None = Field(None, description="How long the server keeps the model loaded, e.g. `5m`, `0`")
    think: bool | Literal["low", "medium", "high"] | None = Field(None, description="Thinking: true, false or a "
                                                                  "level")


class ReplicateOptions(HTTPOptions):
    extra_input: dict[str, Any] | None = Field(None, description="Inputs added to the prediction (see the model's "
                                               "API page)")
    max_tokens_field: Text | None = Field(None, description="The model's name for the max tokens input (default "
                                          "`max_tokens`)")


class BedrockOptions(Options):
    region: Text | None = Field(None, description="AWS region (else AWS_REGION / the profile's)")
    endpoint_url: Text | None = Field(None, description="Another endpoint (else BEDROCK_ENDPOINT_URL)")
    profile: Text | None = Field(None, description="An AWS profile of the credentials chain")
    timeout: float | None = Field(None, gt=0, description="Seconds the whole request may take (default 600)")
    connect_timeout: float | None = Field(None, gt=0, description="Seconds to connect (default 10)")
    additional_fields: dict[str, Any] | None = Field(None, description="additionalModelRequestFields sent as given")


class HFOptions(Options):
    dtype: Text | None = Field(None, description="auto, float32, bfloat16 or float16 (default auto: float32 on CPU)")
    device: Text | None = Field(None, description="auto, cpu, cuda, cuda:N or mps (default auto)")
    device_map: Text | dict[str, Any] | None = Field(None, description="accelerate's device_map, e.g. `auto`")
    quantization: Literal["int8", "int4", "nf4"] | None = Field(None, description="bitsandbytes on CUDA (a clear error "
                                                                "elsewhere)")
    revision: Text | None = Field(None, description="A branch, tag or commit of a Hub model")
    trust_remote_code: bool | None = Field(None, description="Run the repository's own model code (default false)")
    batch_size: int | None = Field(None, ge=1, description="Suite runs: generate this many cases together (each "
                                   "sequence's tokens still stamped: TTFT/TPOT stay per request)")
    task: Text | None = Field(None, description="Run the model as a transformers pipeline (text-classification, "
                              "translation, ...) on the last user message; the result is one JSON chunk")
    pipeline_kwargs: dict[str, Any] | None = Field(None, description="Passed on each pipeline call, e.g. "
                                                   "`{aggregation_strategy: simple}`")
    gguf_file: Text | None = Field(None, description="A GGUF file in the folder or Hub repository given as the "
                                   "model, loaded dequantized with its own chat template")
    cache: Literal["static", "dynamic"] | None = Field(None, description="KV cache: static (fixed size, compilable; "
                                                       "default on CUDA) or dynamic (default elsewhere)")
    compile: bool | None = Field(None, description="torch.compile the decoding forward, warmed up in load() (default "
                                 "true on CUDA with the static cache)")
    max_cache_len: int | None = Field(None, ge=1, description="Static cache length in tokens, prompt plus output "
                                      "(default 4096, capped by the model's context)")


class LlamaCppOptions(Options):
    n_ctx: int | None = Field(None, ge=1, description="Context window in tokens (default 4096)")
    n_gpu_layers: int | None = Field(None, ge=-1, description="Layers on the GPU when llama.cpp has one (-1 all)")
    n_threads: int | None = Field(None, ge=0, description="CPU threads (0: llama.cpp's choice)")
    kv_type: Literal["f16", "f32"] | None = Field(None, description="KV cache type (f32 for exact parity with an fp32 "
                                                  "transformers model; default f16)")
    prefix_cache: bool | None = Field(None, description="Reuse the previous prompt's prefix (default false: every "
                                      "request starts from an empty KV cache, so repeats are fresh samples)")


class VLLMOptions(Options):
    dtype: Text | None = Field(None, description="auto, bfloat16, float16 (default auto)")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="Share of GPU memory vLLM may take "
                                                 "(default 0.9)")
    max_model_len: int | None = Field(None, ge=1, description="Context length")
    tensor_parallel_size: int | None = Field(None, ge=1, description="GPUs to shard over")
    quantization: Text | None = Field(None, description="vLLM's quantization method, e.g. awq, fp8")


def describe_expectation(field: Any) -> str:
    """What a field wants, in words, for an error message (``an integer >= 1024``, ``true or false``)."""
    from pydantic.fields import FieldInfo

    assert isinstance(field, FieldInfo)
    schema = _schema_of(field)
    return _expect(schema)


def _schema_of(field: Any) -> dict[str, Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(Annotated[field.annotation, field]).json_schema()


def _expect(schema: dict[str, Any]) -> str:
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    words = []
    for s in options:
        t = s.get("type")
        if "enum" in s or "const" in s:
            words.append("one of " + ", ".join(str(v) for v in s.get("enum", [s.get("const")])))
        elif t == "boolean":
            words.append("true or false")
        elif t in ("integer", "number"):
            kind = "a whole number" if t == "integer" else "a number"
            bounds = [f">= {s['minimum']}" if "minimum" in s else "", f"> {s['exclusiveMinimum']}" if
                      "exclusiveMinimum" in s else "", f"<= {s['maximum']}" if "maximum" in s else ""]
            words.append(" ".join([kind, *[b for b in bounds if b]]))
        elif t == "object":
            words.append("a mapping")
        elif t == "string":
            words.append("a text")
        else:
            words.append(str(t))
    return " or ".join(words) or "a valid value"
