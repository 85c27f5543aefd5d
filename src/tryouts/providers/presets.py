"""OpenAI-compatible services as data: a few facts tell one from another.

Every preset is served by :class:`tryouts.providers.openai_compat.OpenAICompatProvider` and registered as
a provider of its own name (``groq:llama-3.1-8b-instant``). Adding a service is adding an entry here.
This module imports nothing heavy: the registry reads it to list providers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """The facts that tell one OpenAI-compatible service from another."""

    name: str
    label: str
    base_url: str | None
    key_env: str | None
    key_required: bool
    base_url_env: str | None = None
    #: OpenAI's own API wants max_completion_tokens (reasoning models refuse max_tokens)
    max_tokens_field: str = "max_tokens"
    #: genai-prices provider id, when the service has a public price list
    price_provider: str | None = None
    #: a server on your own machine: requests cost nothing (cost 0, source "local")
    free: bool = False
    #: "bearer" (Authorization: Bearer KEY) or "api-key" (Azure's api-key header)
    auth: str = "bearer"
    #: where chat completions live, from {base} and {model}; Azure puts the deployment in the path
    chat_path: str = "/chat/completions"
    #: the server streams exactly one token per content chunk and sends no usage while streaming
    #: (llama.cpp's): without a tokenizer, Tryouts counts output tokens as content chunks
    one_token_per_chunk: bool = False
    #: requests in flight at once on one server unless the suite says otherwise (None: the engine's default)
    concurrency: int | None = None
    #: body fields that make the server evaluate the whole prompt instead of reusing the previous request's
    #: cached prefix (repeats are independent samples, docs/metrics.md); left out with ``prefix_cache=true``
    fresh_prompt: tuple[tuple[str, object], ...] = ()
    example: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "OpenAI", "https://api.openai.com/v1", "OPENAI_API_KEY", True,
               base_url_env="OPENAI_BASE_URL", max_tokens_field="max_completion_tokens", price_provider="openai",
               example="openai:gpt-6-luna"),
        Preset("openai-compat", "OpenAI-compatible server", None, "OPENAI_COMPAT_API_KEY", False,
               example="openai-compat:http://127.0.0.1:8080/v1#model-name"),
        Preset("azure", "Azure OpenAI", None, "AZURE_OPENAI_API_KEY", True, base_url_env="AZURE_OPENAI_ENDPOINT",
               max_tokens_field="max_completion_tokens", price_provider="azure", auth="api-key",
               chat_path="/openai/deployments/{model}/chat/completions?api-version={api_version}",
               example="azure:my-gpt-6-luna-deployment"),
        Preset("mistral", "Mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", True,
               base_url_env="MISTRAL_BASE_URL", price_provider="mistral", example="mistral:mistral-small-latest"),
        Preset("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", True,
               base_url_env="OPENROUTER_BASE_URL", price_provider="openrouter",
               example="openrouter:anthropic/claude-3.5-haiku"),
        Preset("groq", "Groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", True,
               base_url_env="GROQ_BASE_URL", price_provider="groq", example="groq:llama-3.1-8b-instant"),
        Preset("together", "Together AI", "https://api.together.xyz/v1", "TOGETHER_API_KEY", True,
               base_url_env="TOGETHER_BASE_URL", price_provider="together",
               example="together:meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        Preset("deepseek", "DeepSeek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", True,
               base_url_env="DEEPSEEK_BASE_URL", price_provider="deepseek", example="deepseek:deepseek-chat"),
        Preset("fireworks", "Fireworks AI", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", True,
               base_url_env="FIREWORKS_BASE_URL", price_provider="fireworks",
               example="fireworks:accounts/fireworks/models/llama-v3p1-8b-instruct"),
        Preset("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", "LMSTUDIO_API_KEY", False,
               base_url_env="LMSTUDIO_BASE_URL", free=True, example="lmstudio:qwen2.5-7b-instruct"),
        Preset("vllm-server", "vLLM's OpenAI-compatible server", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", False,
               base_url_env="VLLM_BASE_URL", free=True, example="vllm-server:Qwen/Qwen2.5-0.5B-Instruct"),
        Preset("llamacpp-server", "llama.cpp's server", "http://127.0.0.1:8080/v1", "LLAMACPP_API_KEY", False,
               base_url_env="LLAMACPP_BASE_URL", free=True, one_token_per_chunk=True,
               concurrency=1,  # llama-cpp-python's server aborts a running request when another arrives
               fresh_prompt=(("cache_prompt", False),),  # llama.cpp's server; llama-cpp-python's ignores it
               example="llamacpp-server:default"),
    )
}
