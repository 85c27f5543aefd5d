import subprocess
import sys

import pytest

from tryouts.errors import MissingExtraError, UnknownProviderError, UsageError
from tryouts.providers import ProviderInfo, create_provider, register
from tryouts.types import ModelSpec


def test_model_reference_parsing():
    s = ModelSpec.parse("openai-compat:http://127.0.0.1:8080/v1#tiny")
    assert (s.provider, s.model) == ("openai-compat", "http://127.0.0.1:8080/v1#tiny")
    assert ModelSpec.parse(" HF:./x ").provider == "hf"
    with pytest.raises(UsageError, match="PROVIDER:MODEL"):
        ModelSpec.parse("gpt-4o")


def test_unknown_provider_lists_known_ones():
    with pytest.raises(UnknownProviderError, match="openai"):
        create_provider(ModelSpec.parse("nosuch:model"))


def test_missing_extra_names_the_install_command(monkeypatch):
    from tryouts import providers

    monkeypatch.setattr(providers, "_REGISTRY", dict(providers._REGISTRY))  # registration stays in this test
    register(ProviderInfo("needs-x", "tryouts.providers.hf", "HFProvider", "test", requires=("no_such_mod_xyz",), extra="local"))
    with pytest.raises(MissingExtraError, match=r"pip install 'tryouts\[local\]'"):
        create_provider(ModelSpec.parse("needs-x:m"))


def test_unknown_option_is_refused_with_the_known_ones():
    with pytest.raises(UsageError, match=r"accepts: .*base_url"):
        create_provider(ModelSpec.parse("openai:gpt-4o-mini", {"bogus": 1}))


def test_openai_compat_needs_a_model_after_hash():
    with pytest.raises(UsageError, match="BASE_URL#MODEL"):
        create_provider(ModelSpec.parse("openai-compat:http://127.0.0.1:1/v1"))


def test_help_imports_no_torch_and_no_sdk():
    code = (
        "import sys\n"
        "from tryouts.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'openai', 'anthropic', 'sqlalchemy', 'genai_prices') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "compare" in out


def test_vllm_route_without_vllm_says_how_to_install():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:  # pragma: no cover - GPU machines only
        return
    with pytest.raises(MissingExtraError, match=r"pip install 'tryouts\[vllm\]'"):
        create_provider(ModelSpec.parse("vllm:Qwen/Qwen2.5-0.5B-Instruct"))


def test_the_cache_key_leaves_out_what_the_registry_declares_neutral():
    from tryouts.engine.run import cache_key
    from tryouts.types import Message, Request

    req = Request(messages=[Message(role="user", content="hi")])

    def key(ref, **options):
        return cache_key(ModelSpec.parse(ref, options), req)

    assert key("openai:gpt-4o-mini", timeout=5, headers={"x": "1"}, price="1,2") == key("openai:gpt-4o-mini")
    assert key("openai:gpt-4o-mini", extra_body={"seed": 1}) != key("openai:gpt-4o-mini")
    assert key("llamacpp:./m.gguf", prefix_cache=True) == key("llamacpp:./m.gguf")
    assert key("llamacpp:./m.gguf", n_ctx=4096) != key("llamacpp:./m.gguf")
