"""The provider registry.

Providers are registered by name with the module that implements them and the optional packages
they need. Nothing is imported until a model of that provider is used, so ``tryouts --help`` and the
core import no SDK and no torch. A missing optional package gives an install hint for its extra.

Third-party packages add providers through the ``tryouts.providers`` entry-point group, whose value
is a :class:`ProviderInfo` (or a callable returning one): the same path the built-ins take.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import MissingExtraError, UnknownProviderError
from ..types import ModelSpec
from . import options as opt
from .base import Provider
from .options import Options
from .presets import PRESETS


@dataclass(frozen=True)
class ProviderInfo:
    """What the registry knows about a provider before importing it."""

    name: str
    module: str
    cls: str
    description: str
    #: import names that must be present, with the extra that installs them
    requires: tuple[str, ...] = ()
    extra: str | None = None
    #: environment variables it reads (shown by ``tryouts providers``)
    env: tuple[str, ...] = ()
    example: str = ""
    local: bool = False
    kwargs: dict = field(default_factory=dict)
    #: an API key is required (else it is optional or not used)
    needs_key: bool = True
    #: a server on this machine: its default URL and the variable that moves it (probed by `providers`)
    server: str | None = None
    server_env: str | None = None
    #: modules to import before any request of a run is timed (an in-process runtime: torch, llama_cpp...).
    #: Imported while other models' requests are timed instead, their shared libraries would pause the event
    #: loop and land inside those requests' TTFT; a module that is not installed ends the list quietly
    warm_imports: tuple[str, ...] = ()
    #: options that change how a request is sent or measured, never the answer (timeouts, headers, the key's
    #: variable): left out of the response cache key and the fingerprint a resumed run is checked against.
    #: The engine's own options (``price``, ``warmup``) always are.
    neutral_options: tuple[str, ...] = ()
    #: the provider's options as a typed model (providers/options.py): the names it accepts, their types,
    #: bounds and meaning; None: the class's own ``options`` names, unchecked (older third-party providers)
    options: type[Options] | None = None
    #: the provider id prices are looked up under (genai-prices); None: priced only by an override
    price_id: str | None = None
    #: requests in flight at once on one of its servers unless the suite says otherwise (None: the engine's
    #: default, 4 for a remote API and 1 for a server on this machine)
    concurrency: int | None = None


#: what every HTTP provider's transport options are: how a request is sent, not what it asks
HTTP_NEUTRAL = ("api_key_env", "connect_timeout", "headers", "timeout")


_BUILTIN: tuple[ProviderInfo, ...] = (
    *(
        ProviderInfo(
            p.name,
            "tryouts.providers.openai_compat",
            "OpenAICompatProvider",
            p.label + (" (OpenAI-compatible)" if p.name not in ("openai", "openai-compat") else ""),
            env=tuple(v for v in (p.key_env, p.base_url_env) if v),
            example=p.example,
            kwargs={"preset": p.name},
            needs_key=p.key_required,
            server=p.base_url if p.free else None,
            server_env=p.base_url_env if p.free else None,
            neutral_options=(*HTTP_NEUTRAL, "one_token_per_chunk", "tokenizer", "prefix_cache"),  # not the answer
            options=opt.OpenAIOptions,
            price_id=p.price_provider,
            concurrency=p.concurrency,
        )
        for p in PRESETS.values()
    ),
    ProviderInfo(
        "anthropic",
        "tryouts.providers.anthropic",
        "AnthropicProvider",
        "Anthropic Messages API (native SSE)",
        neutral_options=HTTP_NEUTRAL,
        env=("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
        example="anthropic:claude-haiku-5-5",
        options=opt.AnthropicOptions,
        price_id="anthropic",
    ),
    ProviderInfo(
        "gemini",
        "tryouts.providers.gemini",
        "GeminiProvider",
        "Google Gemini API (native streamGenerateContent)",
        neutral_options=HTTP_NEUTRAL,
        env=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"),
        example="gemini:gemini-3.8-flash",
        options=opt.GeminiOptions,
        price_id="google",
    ),
    ProviderInfo(
        "ollama",
        "tryouts.providers.ollama",
        "OllamaProvider",
        "Ollama's native /api/chat (NDJSON), with its server timings",
        neutral_options=HTTP_NEUTRAL,
        env=("OLLAMA_HOST",),
        example="ollama:llama3.1",
        needs_key=False,
        server="http://127.0.0.1:11434",
        server_env="OLLAMA_HOST",
        options=opt.OllamaOptions,
    ),
    ProviderInfo(
        "cohere",
        "tryouts.providers.cohere",
        "CohereProvider",
        "Cohere v2 chat (native SSE)",
        neutral_options=HTTP_NEUTRAL,
        env=("COHERE_API_KEY", "CO_API_KEY", "COHERE_BASE_URL"),
        example="cohere:command-r-plus-08-2024",
        options=opt.CohereOptions,
        price_id="cohere",
    ),
    ProviderInfo(
        "replicate",
        "tryouts.providers.replicate",
        "ReplicateProvider",
        "Replicate predictions, streamed from their stream URL",
        neutral_options=HTTP_NEUTRAL,
        env=("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL"),
        example="replicate:meta/meta-llama-3-8b-instruct",
        options=opt.ReplicateOptions,
    ),
    ProviderInfo(
        "bedrock",
        "tryouts.providers.bedrock",
        "BedrockProvider",
        "AWS Bedrock ConverseStream (boto3)",
        neutral_options=HTTP_NEUTRAL,
        requires=("boto3",),
        extra="bedrock",
        env=("AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BEDROCK_ENDPOINT_URL"),
        needs_key=False,
        example="bedrock:anthropic.claude-haiku-4-5-20251001-v1:0",
        options=opt.BedrockOptions,
        price_id="aws",
    ),
    ProviderInfo(
        "vllm",
        "tryouts.providers.vllm",
        "VLLMProvider",
        "vLLM in process (needs vLLM and a GPU; vllm-server: for a running server)",
        requires=("vllm",),
        extra="vllm",
        needs_key=False,
        example="vllm:Qwen/Qwen2.5-0.5B-Instruct",
        local=True,
        warm_imports=("torch", "vllm"),
        options=opt.VLLMOptions,
    ),
    ProviderInfo(
        "hf",
        "tryouts.providers.hf",
        "HFProvider",
        "Hugging Face transformers causal LM, in process",
        requires=("torch", "transformers"),
        extra="local",
        needs_key=False,
        env=("HF_HOME", "HF_HUB_OFFLINE"),
        example="hf:Qwen/Qwen2.5-0.5B-Instruct or hf:./path/to/folder",
        local=True,
        warm_imports=("torch", "transformers", "transformers.models.auto.modeling_auto",
                      "transformers.models.auto.tokenization_auto"),
        options=opt.HFOptions,
    ),
    ProviderInfo(
        "llamacpp",
        "tryouts.providers.llamacpp",
        "LlamaCppProvider",
        "llama.cpp in process (llama-cpp-python), from a GGUF file",
        requires=("llama_cpp",),
        extra="llamacpp",
        needs_key=False,
        example="llamacpp:./model.gguf",
        local=True,
        warm_imports=("llama_cpp", "llama_cpp.llama_chat_format"),
        neutral_options=("prefix_cache",),  # reusing a cached prefix changes the timing, not the answer
        options=opt.LlamaCppOptions,
    ),
)

_REGISTRY: dict[str, ProviderInfo] = {p.name: p for p in _BUILTIN}
_entry_points_loaded = False


def register(info: ProviderInfo) -> None:
    """Register (or replace) a provider."""
    _REGISTRY[info.name] = info


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="tryouts.providers"):
        obj = ep.load()
        register(obj() if callable(obj) else obj)


def all_providers() -> list[ProviderInfo]:
    """Every registered provider, built-ins first."""
    _load_entry_points()
    return list(_REGISTRY.values())


def registered(name: str) -> ProviderInfo | None:
    """The registry entry for ``name``, or None when it is not registered (a class made directly)."""
    try:
        return get_info(name)
    except UnknownProviderError:
        return None


def get_info(name: str) -> ProviderInfo:
    """The registry entry for ``name``; :class:`UnknownProviderError` lists the known ones."""
    if name not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownProviderError(
            f"Unknown provider {name!r}. Known providers: {known}. "
            "Write models as PROVIDER:MODEL (see 'tryouts providers')."
        ) from None


def warm_local_stack(provider_names: Iterable[str]) -> None:
    """Import what the named providers declare in ``warm_imports`` (in-process runtimes), before any request
    is timed: imported in a loading thread instead, their shared libraries load while holding the interpreter
    lock and pause the event loop that times concurrent API requests (up to ~0.4 s at a time, measured on 2
    cores). A module that is not installed is skipped (its model then fails with its own clear error)."""
    for name in sorted(set(provider_names)):
        try:
            modules = get_info(name).warm_imports
        except UnknownProviderError:
            continue
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError:
                break


def neutral_options(provider: str) -> frozenset[str]:
    """The options of ``provider`` that never change an answer (its registry entry's, and the engine's)."""
    from .base import ENGINE_OPTIONS

    try:
        return ENGINE_OPTIONS | frozenset(get_info(provider).neutral_options)
    except UnknownProviderError:
        return ENGINE_OPTIONS


def missing_requirements(info: ProviderInfo) -> list[str]:
    """Import names ``info`` needs that are not installed."""
    return [mod for mod in info.requires if importlib.util.find_spec(mod) is None]


def create_provider(spec: ModelSpec) -> Provider:
    """Import the provider's module (only now) and build a provider for ``spec``."""
    info = get_info(spec.provider)
    missing = missing_requirements(info)
    if missing:
        raise MissingExtraError(f"The {info.name!r} provider", info.extra or "all", ", ".join(missing))
    module = importlib.import_module(info.module)
    cls = getattr(module, info.cls)
    return cls(spec, **info.kwargs)


__all__ = [
    "Provider",
    "ProviderInfo",
    "all_providers",
    "create_provider",
    "get_info",
    "missing_requirements",
    "neutral_options",
    "register",
    "warm_local_stack",
]
