"""`tryouts card`: catalog entry + model card + config.json, from a local folder, the HF cache or (faked) Hub."""

import json

import pytest

from tryouts.catalog.card import build_card, config_facts, extract_sections
from tryouts.errors import NotInCatalogError

CARD = """\
---
license: apache-2.0
language: [en, fr]
datasets: [wikitext, c4]
tags: [text-generation, tiny]
pipeline_tag: text-generation
model-index:
- name: tiny-chat
  results:
  - task: {type: text-generation, name: Text Generation}
    dataset: {type: hellaswag, name: HellaSwag, split: validation}
    metrics:
    - {type: acc_norm, name: normalized accuracy, value: 41.5}
  - task: {type: text-generation}
    dataset: {type: mmlu, name: MMLU}
    metrics:
    - {type: acc, value: 27.25}
---

# Tiny chat

A tiny model for tests.

## Intended uses & limitations

Answering short questions in **English** and French.

### Out-of-scope

Medical advice.

```python
# Training data
print("this is code, not a heading")
```

## Training Data

Trained on WikiText and a slice of C4.

## Bias, Risks, and Limitations

It repeats itself and makes things up.

## Evaluation

See the metrics.
"""

CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16", "intermediate_size": 14336,
}


def make_folder(path, card=CARD, config=CONFIG):
    path.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (path / "README.md").write_text(card)
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    return path


def make_cache(tmp_path, monkeypatch, repo, card=CARD, config=CONFIG):
    """The Hub cache layout: models--ORG--NAME/snapshots/<sha>/ and refs/main holding <sha>."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hub"
    base = cache / ("models--" + repo.replace("/", "--"))
    make_folder(base / "snapshots" / sha, card, config)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def cli(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["card", *args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_local_folder_card_sections_metrics_and_config(tmp_path):
    folder = make_folder(tmp_path / "tiny-chat")
    info = build_card(str(folder))
    assert info.entry is None and info.card_from == "local folder" and info.config_from == "local folder"
    assert info.metadata["license"] == "apache-2.0"
    assert info.metadata["datasets"] == ["wikitext", "c4"] and info.metadata["language"] == ["en", "fr"]
    assert info.sections["intended_use"]["heading"] == "Intended uses & limitations"
    assert "short questions in **English**" in info.sections["intended_use"]["text"]
    assert "Medical advice." in info.sections["intended_use"]["text"]  # its sub-section comes along
    assert info.sections["training_data"] == {"heading": "Training Data", "text": "Trained on WikiText and a slice of C4."}
    assert info.sections["limitations"]["text"] == "It repeats itself and makes things up."
    assert [(m["task"], m["dataset"], m["split"], m["metric"], m["value"]) for m in info.metrics] == [
        ("Text Generation", "HellaSwag", "validation", "normalized accuracy", 41.5),
        ("text-generation", "MMLU", None, "acc", 27.25),
    ]
    c = info.config
    assert (c["model_type"], c["layers"], c["hidden_size"], c["attention_heads"], c["kv_heads"], c["vocab_size"],
            c["context"], c["dtype"], c["head_dim"]) == ("llama", 32, 4096, 32, 8, 128256, 131072, "bfloat16", 128)
    assert info.notes == []


def test_headings_are_matched_fuzzily_and_empty_sections_are_flagged(tmp_path):
    text = "# M\n\n### 2. Intented Use\nChat.\n\n## Limitation\nShort context.\n\n## Training data\n[More Information Needed]\n"
    sections = extract_sections(text)
    assert sections["intended_use"] == {"heading": "2. Intented Use", "text": "Chat."}
    assert sections["limitations"]["text"] == "Short context."
    assert sections["training_data"]["text"] == ""
    assert extract_sections("# M\n\n## How it works\nstuff\n") == {}
    info = build_card(str(make_folder(tmp_path / "m", card=text, config=None)))
    assert "The card's 'Training data' section is empty." in info.notes
    assert any("No config.json" in n for n in info.notes)


def test_config_facts_for_multimodal_and_multi_query_configs():
    gemma3 = {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "num_hidden_layers": 34,
              "hidden_size": 2560, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
              "vocab_size": 262208, "sliding_window": 1024}, "torch_dtype": "bfloat16"}
    f = config_facts(gemma3)
    assert (f["model_type"], f["text_model_type"], f["layers"], f["kv_heads"], f["head_dim"], f["sliding_window"],
            f["dtype"]) == ("gemma3", "gemma3_text", 34, 4, 256, 1024, "bfloat16")
    falcon = {"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71, "num_kv_heads": 71,
              "multi_query": True, "num_hidden_layers": 32, "vocab_size": 65024}
    assert config_facts(falcon)["kv_heads"] == 1
    gpt2 = {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}
    f = config_facts(gpt2)
    assert (f["layers"], f["hidden_size"], f["attention_heads"], f["kv_heads"], f["context"], f["head_dim"]) == (
        12, 768, 12, 12, 1024, 64)


def test_catalog_model_from_the_hf_cache(tmp_path, monkeypatch, capsys):
    make_cache(tmp_path, monkeypatch, "meta-llama/Llama-3.1-8B-Instruct")
    info = build_card("llama-3.1-8b-instruct")
    assert info.entry.id == "llama-3.1-8b-instruct" and info.hub_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert info.card_from == "HF cache" and info.card_path.startswith(str(tmp_path / "hub"))
    assert info.config["layers"] == 32 and info.mismatches == [] and info.notes == []
    assert info.price is not None and info.price.source == "genai-prices"
    code, out, _ = cli(capsys, "Llama-3.1-8B-Instruct")
    assert code == 0
    for text in ("Llama 3.1 8B Instruct (llama-3.1-8b-instruct)", "Catalog", "config.json", "HF cache",
                 "Intended use", "Trained on WikiText", "It repeats itself", "HellaSwag", "41.5"):
        assert text in out, text


def test_config_that_disagrees_with_the_catalog_is_reported(tmp_path, monkeypatch):
    make_cache(tmp_path, monkeypatch, "meta-llama/Llama-3.1-8B-Instruct", config={**CONFIG, "num_hidden_layers": 30})
    info = build_card("hf:meta-llama/Llama-3.1-8B-Instruct")
    assert info.mismatches == ["layers: catalog 32, config.json 30"]


def test_a_hub_id_outside_the_catalog_from_the_cache(tmp_path, monkeypatch, capsys):
    make_cache(tmp_path, monkeypatch, "some-org/tiny-chat")
    code, out, err = cli(capsys, "some-org/tiny-chat", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["entry"] is None and data["hub_id"] == "some-org/tiny-chat" and data["card_from"] == "HF cache"
    assert data["sections"]["training_data"]["text"] == "Trained on WikiText and a slice of C4."
    assert data["config"]["kv_heads"] == 8 and data["metrics"][1]["value"] == 27.25


def test_offline_with_nothing_cached_shows_the_entry_and_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    code, out, _ = cli(capsys, "llama-3.1-70b-instruct")
    assert code == 0
    assert "Llama 3.1 70B Instruct" in out and "70.6" in out and "80 layers" in out
    flat = " ".join(out.split())
    assert "No model card or config.json for meta-llama/Llama-3.1-70B-Instruct on this machine" in flat
    assert "--online" in flat and "hf download meta-llama/Llama-3.1-70B-Instruct README.md config.json" in flat
    assert "local folder" in flat
    code, out, _ = cli(capsys, "gpt-4o", "--format", "json")
    data = json.loads(out)
    assert data["entry"]["id"] == "gpt-4o" and data["card_path"] is None
    assert "API model without a Hugging Face model card" in data["notes"][0]


def test_online_fetches_what_the_cache_lacks(tmp_path, monkeypatch):
    """--online asks the Hub (a stand-in that serves files from a folder: tests never use the network)."""
    from tryouts.catalog import card as card_mod

    served = make_folder(tmp_path / "served")
    asked = []

    def fake_download(hub_id, filename):
        asked.append((hub_id, filename))
        if filename == "config.json":
            raise OSError("404 Not Found")
        return str(served / filename)

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(card_mod, "_download", fake_download)
    assert build_card("Qwen/Qwen2.5-7B-Instruct").card_path is None and asked == []  # offline by default
    info = build_card("Qwen/Qwen2.5-7B-Instruct", online=True)
    assert asked == [("Qwen/Qwen2.5-7B-Instruct", "README.md"), ("Qwen/Qwen2.5-7B-Instruct", "config.json")]
    assert info.card_from == "Hub" and info.metadata["license"] == "apache-2.0" and info.config is None
    assert any("Could not fetch config.json" in n and "404" in n for n in info.notes)


def test_unknown_model_error_suggests_names(capsys):
    with pytest.raises(NotInCatalogError, match="Did you mean: mixtral-8x7b-instruct"):
        build_card("mixtral-8x7b-instuct")
    code, _, err = cli(capsys, "lama-3.1-8b-instruct")
    assert code == 1 and "Did you mean: llama-3.1-8b-instruct" in " ".join(err.split())
    code, _, err = cli(capsys, "./no/such/folder")
    assert code == 1 and "No folder" in err
