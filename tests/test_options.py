"""The registry entry is the one home of a provider's facts: its typed options model (names, types, bounds,
meaning), in process or not, price id. Options are refused before anything loads; the docs are generated."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tryouts import errors
from tryouts.providers import _BUILTIN, create_provider, get_info
from tryouts.providers.options import EngineOptions, Options
from tryouts.types import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ROOT / "src" / "tryouts" / "providers"


def test_every_builtin_entry_has_a_typed_options_model_with_every_field_described():
    for info in _BUILTIN:
        assert info.options is not None and issubclass(info.options, Options), info.name
        for name, field in info.options.model_fields.items():
            assert field.description, f"{info.name}: option {name} has no description"
    assert set(EngineOptions.model_fields) == {"price", "warmup"}  # the engine's, apart from the providers'


def test_provider_classes_do_not_repeat_what_the_entry_says():
    """name, local, options and price ids are declared once, on the entry (not also on the class)."""
    for info in _BUILTIN:
        tree = ast.parse((PROVIDERS / f"{info.module.rsplit('.', 1)[1]}.py").read_text())
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == info.cls)
        declared = {t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        assert not declared & {"name", "local", "options", "price_provider"}, (info.cls, declared)


def test_a_provider_takes_its_facts_from_its_entry():
    groq = create_provider(ModelSpec.parse("groq:llama-3.1-8b-instant"))
    assert (groq.name, groq.local, groq.price_provider) == ("groq", False, "groq")
    assert groq.options == frozenset(get_info("groq").options.model_fields)


@pytest.mark.parametrize(("ref", "options", "words"), [
    ("anthropic:claude-3-5-haiku-latest", {"max_tokens_default": 0}, "max_tokens_default must be a whole number >= 1"),
    ("openai:gpt-4o-mini", {"timeout": -5}, "timeout must be a number > 0, not -5"),
    ("openai:gpt-4o-mini", {"headers": ["x"]}, "headers must be a mapping."),
    ("gemini:gemini-2.5-flash", {"thinking_budget": -7}, "thinking_budget must be a whole number >= -1"),
    ("ollama:llama3.1", {"think": "maybe"}, "think must be true or false or one of low, medium, high"),
    ("openai:gpt-4o-mini", {"warmup": "sometimes"}, "warmup must be true or false"),
    ("openai:gpt-4o-mini", {"include_usage": {"a": 1}}, "include_usage must be true or false."),
])
def test_a_bad_value_is_refused_saying_what_is_wanted(ref, options, words):
    with pytest.raises(errors.UsageError) as info:
        create_provider(ModelSpec.parse(ref, options))
    assert words in str(info.value)


def test_values_as_yaml_and_the_cli_write_them_are_accepted():
    # -o api_version=2024-10-21 parses as a date, a text option takes it; numbers as text are numbers
    create_provider(ModelSpec.parse("azure:gpt-4o", {"api_version": __import__("datetime").date(2024, 10, 21),
                                                      "base_url": "https://example.invalid/openai",
                                                      "timeout": "30", "price": "0.15,0.60", "warmup": False}))


def test_a_secret_in_a_refused_value_is_never_echoed():
    with pytest.raises(errors.UsageError) as info:
        create_provider(ModelSpec.parse("openai:gpt-4o-mini", {"headers": {"Authorization": ["sk-abcdef0123456789"]}}))
    assert "sk-abcdef" not in str(info.value) and "headers must be a mapping" in str(info.value)


def test_the_options_tables_are_generated_from_the_models():
    p = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_options.py"), "--check"], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    text = (ROOT / "docs" / "providers.md").read_text()
    for info in _BUILTIN:
        for name in info.options.model_fields:
            assert f"| `{name}` |" in text


def test_catalog_prices_read_the_price_id_from_the_entry_without_making_a_provider(monkeypatch):
    from tryouts import providers
    from tryouts.catalog import entry_price, find_model

    def refuse(spec):
        raise AssertionError("a provider was made to read a price id")

    monkeypatch.setattr(providers, "create_provider", refuse)
    price = entry_price(find_model("gpt-4o-mini"))
    assert price is not None and price.source == "genai-prices"
