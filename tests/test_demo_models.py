"""The tiny demo models: the HF folder, the GGUF conversion and the build cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tryouts.demo import models as demo
from tryouts.demo.models import CHAT_TEMPLATE, DEMO_VERSION, DemoModels, ensure_demo_models

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Which pre-trained model should I pick, and how much does quantization cost?",
    },
]
SAMPLE = (
    "Quantization makes local models 4x smaller; it's naïve to skip   the tests!\n\n"
    "  Ünïcödé, 漢字 and emoji 🙂 too:\t3.14 % of 1000 tokens."
)
SPECIAL_IDS = {0, 1, 2}  # <|endoftext|>, <|im_start|>, <|im_end|>


@pytest.fixture(scope="module")
def built(request) -> DemoModels:
    """The session's demo models (the `local` extra must be installed: `make test` installs it)."""
    return request.getfixturevalue("demo_models")


# --- the HF folder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf(built):
    import transformers
    tok = transformers.AutoTokenizer.from_pretrained(built.hf_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(built.hf_dir)
    model.eval()
    return tok, model


def test_hf_folder_has_the_expected_files(built):
    d = built.hf_dir
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ):
        assert (d / name).is_file(), name
    tok_cfg = json.loads((d / "tokenizer_config.json").read_text())
    assert tok_cfg["chat_template"] == CHAT_TEMPLATE
    assert tok_cfg["eos_token"] == "<|im_end|>" and tok_cfg["pad_token"] == "<|endoftext|>"
    gen_cfg = json.loads((d / "generation_config.json").read_text())
    assert gen_cfg["eos_token_id"] == 2
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["tie_word_embeddings"] is False
    assert 900 <= cfg["vocab_size"] <= 1000


@pytest.mark.slow
def test_hf_loads_offline_and_applies_the_chat_template(hf):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    tok, _ = hf
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{MESSAGES[1]['content']}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=False)
    assert not no_prompt.endswith("<|im_start|>assistant\n")
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # no BOS added
    assert tok.eos_token_id == 2 and tok.pad_token_id == 0
    assert tok.decode(tok(SAMPLE)["input_ids"]) == SAMPLE  # byte-level: lossless round trip


@pytest.mark.slow
@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sampled"])
def test_hf_generation_always_runs_to_max_tokens_without_special_tokens(hf, do_sample):
    import torch

    tok, model = hf
    enc = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    n_prompt = enc["input_ids"].shape[1]
    torch.manual_seed(0)
    kwargs = {"do_sample": True, "temperature": 1.5} if do_sample else {"do_sample": False}
    out = model.generate(**enc, max_new_tokens=20, **kwargs)
    new = out[0, n_prompt:].tolist()
    assert len(new) == 20
    assert not SPECIAL_IDS & set(new)
    assert tok.decode(new).strip()


# --- the GGUF ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm(built):
    import llama_cpp
    # F32 KV cache: llama.cpp's default F16 cache alone moves the logits by about 1e-2.
    return llama_cpp.Llama(
        str(built.gguf_path),
        verbose=False,
        logits_all=True,
        n_ctx=256,
        type_k=llama_cpp.GGML_TYPE_F32,
        type_v=llama_cpp.GGML_TYPE_F32,
    )


def test_gguf_metadata(built):
    import gguf
    reader = gguf.GGUFReader(built.gguf_path)

    def value(key):
        return reader.get_field(key).contents()

    assert value("general.architecture") == "llama"
    assert value("tokenizer.ggml.model") == "gpt2"
    assert value("tokenizer.ggml.pre") == "gpt-2"
    assert value("tokenizer.chat_template") == CHAT_TEMPLATE
    assert value("tokenizer.ggml.add_bos_token") is False
    assert value("tokenizer.ggml.eos_token_id") == 2
    assert value("tokenizer.ggml.padding_token_id") == 0
    assert value("llama.block_count") == 2 and value("llama.attention.head_count_kv") == 2
    types = value("tokenizer.ggml.token_type")
    assert types[:3] == [3, 3, 3] and set(types[3:]) == {1}
    names = {t.name for t in reader.tensors}
    assert {
        "token_embd.weight",
        "output.weight",
        "output_norm.weight",
        "blk.1.attn_q.weight",
        "blk.1.ffn_down.weight",
    } <= names
    assert len(names) == 3 + 2 * 9


@pytest.mark.slow
def test_gguf_logits_match_hf(hf, llm):
    import numpy as np
    import torch

    tok, model = hf
    ids = tok(tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True))["input_ids"]
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    llm.reset()
    llm.eval(ids)
    got = np.asarray(llm.scores[: len(ids)])
    # A wrong q/k permutation (or none) gives differences of the order of 10.
    assert np.abs(got - expected).max() < 1e-3


@pytest.mark.slow
def test_llama_cpp_tokenizer_matches_hf(hf, llm):
    tok, _ = hf
    assert llm.tokenize(SAMPLE.encode(), add_bos=False, special=False) == tok(SAMPLE)["input_ids"]
    chat = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert llm.tokenize(chat.encode(), add_bos=False, special=True) == tok(chat)["input_ids"]
    # add_bos=True still adds nothing: the GGUF says add_bos_token = false.
    assert llm.tokenize(b"Hello world", add_bos=True) == tok("Hello world")["input_ids"]
    assert llm.detokenize(tok(SAMPLE)["input_ids"]).decode() == SAMPLE


@pytest.mark.slow
def test_llama_cpp_chat_completion_uses_the_gguf_template(llm):
    assert llm.chat_format == "chat_template.default"
    out = llm.create_chat_completion(MESSAGES, max_tokens=16, temperature=0.8, seed=1)
    assert out["choices"][0]["message"]["content"].strip()
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 16

    chunks = list(llm.create_chat_completion(MESSAGES, max_tokens=16, stream=True, seed=1))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


# --- the cache -----------------------------------------------------------------------------------


def test_module_imports_without_heavy_dependencies():
    code = "import sys, tryouts.demo.models; sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'gguf')))"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(demo.__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_ensure_demo_models_reuses_the_cache(built):
    cache = built.hf_dir.parent.parent
    assert built.hf_dir.parent.name == f"v{DEMO_VERSION}"
    before = {p: p.stat().st_mtime_ns for p in (built.gguf_path, built.hf_dir / "model.safetensors")}
    messages: list[str] = []
    again = ensure_demo_models(cache, progress=messages.append)
    assert again == built
    assert messages == []
    assert {p: p.stat().st_mtime_ns for p in before} == before


def _fake_builders(monkeypatch, calls: list[str], fail_gguf: bool = False):
    def fake_hf(out_dir, *, seed=0):
        calls.append("hf")
        out_dir.mkdir(parents=True)
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            (out_dir / name).write_text("{}")
        return out_dir

    def fake_gguf(hf_dir, out_path):
        calls.append("gguf")
        if fail_gguf:
            raise KeyboardInterrupt  # an interrupted build
        out_path.write_bytes(b"GGUF")
        return out_path

    monkeypatch.setattr(demo, "build_hf_model", fake_hf)
    monkeypatch.setattr(demo, "write_gguf", fake_gguf)


def test_ensure_demo_models_default_location_and_progress(monkeypatch, isolated_user_dirs):
    calls: list[str] = []
    _fake_builders(monkeypatch, calls)
    messages: list[str] = []
    models = ensure_demo_models(progress=messages.append)
    root = isolated_user_dirs / "user-cache" / "demo" / f"v{DEMO_VERSION}"
    assert models == DemoModels(hf_dir=models.hf_dir, gguf_path=models.gguf_path)
    assert models.hf_dir.parent == root and models.gguf_path.parent == root
    assert calls == ["hf", "gguf"] and len(messages) >= 2
    assert ensure_demo_models() == models
    assert calls == ["hf", "gguf"]  # built once


def test_interrupted_build_leaves_no_half_model_and_leftovers_do_not_matter(monkeypatch, tmp_path):
    tmp_path = tmp_path / "cache"
    calls: list[str] = []
    _fake_builders(monkeypatch, calls, fail_gguf=True)
    with pytest.raises(KeyboardInterrupt):
        ensure_demo_models(tmp_path)
    assert not (tmp_path / f"v{DEMO_VERSION}").exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder was cleaned up

    # A partial folder left by a killed process (no cleanup at all) does not get in the way.
    leftover = tmp_path / f".partial-v{DEMO_VERSION}-killed"
    (leftover / "tiny-chat").mkdir(parents=True)
    (leftover / "tiny-chat" / "config.json").write_text("{")
    stale = tmp_path / f".partial-v{DEMO_VERSION}-long-ago"
    stale.mkdir()
    os.utime(stale, (0, 0))
    _fake_builders(monkeypatch, calls)
    models = ensure_demo_models(tmp_path)
    assert models.gguf_path.read_bytes() == b"GGUF"
    assert models.hf_dir.parent == tmp_path / f"v{DEMO_VERSION}"
    assert leftover.exists() and not stale.exists()  # only old leftovers are cleaned up

    # An incomplete cache folder (a file deleted by hand) is rebuilt.
    models.gguf_path.unlink()
    calls.clear()
    assert ensure_demo_models(tmp_path) == models
    assert calls == ["hf", "gguf"] and models.gguf_path.is_file()
