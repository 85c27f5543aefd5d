"""GGUF as a first-class format: the header reader, ``tryouts card`` and ``tryouts memory`` on a GGUF file, and
``hf:./model.gguf``.

On the real SmolLM2-135M-Instruct Q4_1 GGUF (fixture ``smollm2``) and the tiny random-weight F32 GGUF with its
transformers folder (fixture ``demo_models``). The reader is checked field by field against gguf-py's own
``GGUFReader``; the memory estimate's weights against the file's tensor bytes and against files llama.cpp
quantizes; the hf route against the same weights loaded from the transformers folder, and SmolLM2 must answer.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import shutil
import time

import pytest

from tryouts import errors
from tryouts.gguf_meta import GGUFArray, NotGGUFError, read_gguf
from tryouts.memory import Arch, estimate, inventory, load_config_path, resolve

# SmolLM2-135M-Instruct.Q4_1.gguf, read from the file (gguf-py's GGUFReader agrees: see below)
SMOLLM2 = {
    "architecture": "llama", "params": 134_515_008, "context_length": 8192, "block_count": 30,
    "embedding_length": 576, "feed_forward_length": 1536, "head_count": 9, "head_count_kv": 3, "head_dim": 64,
    "vocab_size": 49152, "file_type": "Q4_1", "tensor_types": {"Q4_1": 210, "F32": 61, "Q8_0": 1},
    "tensor_bytes": 96_576_768, "file_size": 98_362_432, "tied_embeddings": True,
    "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": True,
}


def cli(capsys, *args):
    from tryouts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, " ".join(out.err.split())  # Rich wraps the error to the terminal's width


def junk_gguf(tmp_path, name="x.gguf"):
    path = tmp_path / name
    path.write_bytes(b"this is not a model at all\n" * 40)
    return path


# ---------------------------------------------------------------------- the header reader


def test_smollm2_metadata(smollm2):
    read_gguf(smollm2)  # the first read imports gguf (and NumPy)
    t = time.perf_counter()
    info = read_gguf(smollm2)
    took = time.perf_counter() - t
    facts = info.facts()
    assert {k: facts[k] for k in SMOLLM2} == SMOLLM2
    assert info.file_size - info.data_offset == info.tensor_bytes  # the tensor data fills the rest of the file
    assert info.chat_template.startswith("{% for message in messages %}") and "<|im_start|>assistant" in info.chat_template
    assert facts["general"]["license"] == "apache-2.0" and facts["general"]["size_label"] == "135M"
    assert isinstance(info.get("tokenizer.ggml.tokens"), GGUFArray) and info.get("tokenizer.ggml.tokens").length == 49152
    # header only: gguf-py's GGUFReader takes seconds here (it maps every token and merge); this stays well under
    assert took < 2.0, f"reading the header took {took:.2f} s"


@pytest.mark.parametrize("which", ["smollm2", "tiny"])
def test_reader_agrees_with_gguf_py(which, request):
    gguf = pytest.importorskip("gguf")
    path = request.getfixturevalue("smollm2") if which == "smollm2" else request.getfixturevalue("demo_models").gguf_path
    ours = read_gguf(path)
    theirs = gguf.GGUFReader(str(path))
    keys = [k for k in theirs.fields if not k.startswith("GGUF.")]
    assert keys == list(ours.metadata)
    for key in keys:
        field, value = theirs.fields[key], ours.metadata[key]
        if field.types[0] == gguf.GGUFValueType.ARRAY and len(field.data) > 64:
            assert isinstance(value, GGUFArray) and value.length == len(field.data), key
        else:
            assert value == pytest.approx(field.contents()), key
    assert ours.data_offset == theirs.data_offset
    assert [(t.name, t.ggml_type, t.shape, t.n_elements, t.n_bytes, t.offset) for t in ours.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_elements), int(t.n_bytes),
         int(t.data_offset)) for t in theirs.tensors]


def test_tiny_gguf_metadata_matches_its_transformers_config(demo_models):
    info = read_gguf(demo_models.gguf_path)
    config = json.loads((demo_models.hf_dir / "config.json").read_text())
    assert (info.block_count, info.embedding_length, info.head_count, info.head_count_kv, info.head_dim,
            info.feed_forward_length, info.vocab_size, info.context_length) == (
        config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
        config["num_key_value_heads"], config["head_dim"], config["intermediate_size"], config["vocab_size"],
        config["max_position_embeddings"])
    assert info.file_type == "F32" and info.type_counts == {"F32": len(info.tensors)}
    assert info.tensor_bytes == 4 * info.params and not info.tied_embeddings


def test_files_that_are_not_gguf_are_refused_clearly(tmp_path, demo_models):
    with pytest.raises(NotGGUFError, match=r"is not a GGUF file: it does not start with the bytes 'GGUF'"):
        read_gguf(junk_gguf(tmp_path))
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(NotGGUFError, match="is not a GGUF file"):
        read_gguf(empty)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(demo_models.gguf_path.read_bytes()[:3000])  # inside the header
    with pytest.raises(NotGGUFError, match="cut short or damaged"):
        read_gguf(cut)
    cut.write_bytes(demo_models.gguf_path.read_bytes()[:-1000])  # header whole, tensor data cut
    with pytest.raises(NotGGUFError, match="runs past the end of the file"):
        read_gguf(cut)
    with pytest.raises(NotGGUFError, match="No such file"):
        read_gguf(tmp_path / "missing.gguf")
    with pytest.raises(NotGGUFError, match="is a folder"):
        read_gguf(tmp_path)
    assert issubclass(NotGGUFError, errors.UsageError)


# ---------------------------------------------------------------------- tryouts memory


def test_arch_from_smollm2_gguf(smollm2):
    arch = resolve(str(smollm2))
    assert (arch.model_type, arch.layers, arch.hidden_size, arch.intermediate_size, arch.attention_heads,
            arch.kv_heads, arch.head_dim, arch.vocab_size, arch.max_context, arch.tied_embeddings) == (
        "llama", 30, 576, 1536, 9, 3, 64, 49152, 8192, True)
    assert arch.stored_format == "GGUF Q4_1" and len(arch.stored) == 272
    # the numbers read from the metadata rebuild exactly the file's tensor table
    assert sorted((t.name, t.shape) for t in inventory(arch)) == sorted((t.name, t.shape) for t in arch.stored)
    e = estimate(arch, "file", context=8192)
    assert e.params_total == SMOLLM2["params"] and e.weights_bytes == SMOLLM2["tensor_bytes"]
    assert e.kv_bytes == 2 * 30 * 3 * 64 * 2 * 8192  # K and V, fp16 (llama.cpp's default cache)
    assert e.storage == {"embeddings": "Q8_0", "attention": "Q4_1", "mlp": "Q4_1", "norms": "F32"}
    assert e.dtype == "file" and "Q4_1" in e.dtype_label
    assert resolve(f"hf:{smollm2}").stored and resolve(str(smollm2.parent)).stored  # a prefix; a folder of one GGUF


def test_gguf_and_transformers_folder_give_the_same_estimates(demo_models):
    from_gguf, from_config = resolve(str(demo_models.gguf_path)), load_config_path(demo_models.hf_dir)
    for dtype in ("fp32", "bf16", "int8", "nf4", "Q8_0", "Q4_K_M"):
        a, b = estimate(from_gguf, dtype), estimate(from_config, dtype)
        assert (a.params_total, a.params_by_class, a.weights_bytes, a.kv_bytes) == (
            b.params_total, b.params_by_class, b.weights_bytes, b.kv_bytes), dtype
    assert estimate(from_gguf, "file").weights_bytes == estimate(from_config, "fp32").weights_bytes  # an F32 file
    from tryouts.errors import UsageError

    with pytest.raises(UsageError, match=r"pass a \.gguf file"):
        estimate(from_config, "file")


@pytest.mark.slow
def test_file_weights_and_computed_types_equal_what_llama_cpp_writes(tmp_path, demo_models):
    llama_cpp = pytest.importorskip("llama_cpp")
    gguf = pytest.importorskip("gguf")
    f32 = resolve(str(demo_models.gguf_path))
    for ftype in ("Q8_0", "Q4_K_M", "Q2_K"):
        out = tmp_path / f"tiny-{ftype}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = int(gguf.LlamaFileType[f"MOSTLY_{ftype}"])
        params.nthread = 1
        assert llama_cpp.llama_model_quantize(str(demo_models.gguf_path).encode(), str(out).encode(),
                                              ctypes.byref(params)) == 0
        real = sum(int(t.n_bytes) for t in gguf.GGUFReader(str(out)).tensors)
        quantized = resolve(str(out))
        assert quantized.stored_format == f"GGUF {ftype}"
        assert estimate(quantized, "file").weights_bytes == real  # the file's own bytes
        assert estimate(f32, ftype).weights_bytes == real  # computed from the F32 file's tensors, as llama.cpp does


def _write_moe_gguf(path, layers=3, hidden=128, ff=96, experts=4, used=2, vocab=300):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "qwen2moe")
    for add, value in ((w.add_context_length, 512), (w.add_embedding_length, hidden), (w.add_block_count, layers),
                       (w.add_feed_forward_length, 4 * ff), (w.add_head_count, 4), (w.add_head_count_kv, 2),
                       (w.add_vocab_size, vocab), (w.add_expert_count, experts), (w.add_expert_used_count, used),
                       (w.add_expert_feed_forward_length, ff), (w.add_expert_shared_feed_forward_length, 2 * ff)):
        add(value)
    arch = Arch(model_type="qwen2_moe", layers=layers, hidden_size=hidden, intermediate_size=4 * ff, attention_heads=4,
                kv_heads=2, head_dim=hidden // 4, vocab_size=vocab, qkv_bias=True, experts=experts,
                experts_per_token=used, moe_intermediate_size=ff, shared_expert_size=2 * ff, shared_expert_gate=True)
    for t in inventory(arch):
        w.add_tensor(t.name, np.zeros(t.shape, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return arch


def test_moe_numbers_are_read_from_a_gguf(tmp_path):
    pytest.importorskip("gguf")
    written = _write_moe_gguf(tmp_path / "moe.gguf")
    arch = resolve(str(tmp_path / "moe.gguf"))
    assert (arch.experts, arch.experts_per_token, arch.moe_intermediate_size, arch.shared_expert_size,
            arch.shared_expert_gate, arch.qkv_bias) == (4, 2, 96, 192, True, True)
    assert sorted((t.name, t.shape) for t in inventory(arch)) == sorted((t.name, t.shape) for t in arch.stored)
    ours, theirs = estimate(arch, "file"), estimate(written, "fp32")
    assert (ours.params_total, ours.params_active, ours.params_by_class) == (
        theirs.params_total, theirs.params_active, theirs.params_by_class)


def test_cli_memory_of_a_gguf_file(smollm2, capsys):
    code, out, _ = cli(capsys, "memory", str(smollm2), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["model_type"], data["params_total"], data["max_context"], data["stored_format"]) == (
        "llama", 134_515_008, 8192, "GGUF Q4_1")
    (row,) = data["estimates"]
    assert row["dtype"] == "file" and row["weights_bytes"] == 96_576_768 and row["storage"]["mlp"] == "Q4_1"
    assert row["kv_bytes"] == 2 * 30 * 3 * 64 * 2 * 4096
    code, out, _ = cli(capsys, "memory", str(smollm2), "--context", "8192", "--gpu", "L4-24GB")
    assert code == 0 and "Memory at GGUF Q4_1 (the file's own weights)" in out and "Fits on L4-24GB" in out
    code, out, _ = cli(capsys, "memory", str(smollm2), "--dtype", "all", "--format", "json")
    dtypes = [e["dtype"] for e in json.loads(out)["estimates"]]
    assert dtypes[0] == "file" and "Q4_K_M" in dtypes and "bf16" in dtypes
    code, out, _ = cli(capsys, "memory", str(smollm2), "--dtype", "all")
    assert code == 0 and "file (Q4_1)" in out


def test_cli_memory_refuses_a_file_that_is_not_gguf(tmp_path, capsys):
    code, out, err = cli(capsys, "memory", str(junk_gguf(tmp_path)))
    assert code == 1 and "Error:" in err and "is not a GGUF file" in err and "Traceback" not in out + err


# ---------------------------------------------------------------------- tryouts card


def test_cli_card_of_a_gguf_file(smollm2, capsys):
    code, out, _ = cli(capsys, "card", str(smollm2), "--format", "json")
    assert code == 0
    g = json.loads(out)["gguf"]
    assert {k: g[k] for k in SMOLLM2} == SMOLLM2
    assert g["chat_template_first_line"].startswith("{% for message in messages %}")
    code, out, _ = cli(capsys, "card", str(smollm2))
    assert code == 0
    for text in ("GGUF file", "llama", "134,515,008", "Q4_1", "8,192 tokens", "30 layers", "3 KV", "vocab 49,152",
                 "Chat template", "yes; first line: {% for message in messages %}", "<|im_start|>", "apache-2.0",
                 "98.4 MB", "No README.md beside"):
        assert text in out, text


def test_card_of_a_gguf_with_a_readme_and_a_catalog_name(tmp_path, demo_models):
    from tryouts.catalog.card import build_card

    folder = tmp_path / "llama"
    folder.mkdir()
    shutil.copy(demo_models.gguf_path, folder / "Llama-3.1-8B-Instruct-Q4_K_M.gguf")
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# A\n## Training data\nWikiText.\n")
    info = build_card(str(folder / "Llama-3.1-8B-Instruct-Q4_K_M.gguf"))
    assert info.gguf["params"] == read_gguf(demo_models.gguf_path).params
    assert info.entry is not None and info.entry.id == "llama-3.1-8b-instruct"  # the name, less its quant suffix
    assert "layers: catalog 32, GGUF 2" in info.mismatches
    assert info.card_from == "local folder" and info.sections["training_data"]["text"] == "WikiText."
    info = build_card(str(folder))  # a folder holding one GGUF and no config.json
    assert info.gguf is not None and info.config is None and info.metadata["license"] == "mit"


def test_cli_card_refuses_a_file_that_is_not_gguf(tmp_path, capsys):
    code, out, err = cli(capsys, "card", str(junk_gguf(tmp_path)))
    assert code == 1 and "Error:" in err and "is not a GGUF file" in err and "Traceback" not in out + err
    code, out, err = cli(capsys, "card", str(tmp_path / "missing.gguf"))
    assert code == 1 and "No such file" in err


# ---------------------------------------------------------------------- hf:./model.gguf


def test_hf_resolves_the_gguf_file_and_folder(tmp_path, demo_models):
    from tryouts.providers import create_provider
    from tryouts.types import ModelSpec

    path = demo_models.gguf_path
    p = create_provider(ModelSpec.parse(f"hf:{path}"))
    assert (p.source, p.gguf_file) == (str(path.parent), path.name)
    folder = tmp_path / "two"
    folder.mkdir()
    shutil.copy(path, folder / "a.gguf")
    shutil.copy(path, folder / "b.gguf")
    p = create_provider(ModelSpec.parse(f"hf:{folder}", {"gguf_file": "b.gguf"}))
    assert (p.source, p.gguf_file) == (str(folder), "b.gguf")
    with pytest.raises(errors.UsageError, match=r"several GGUF files \(a.gguf, b.gguf\).*gguf_file=NAME"):
        create_provider(ModelSpec.parse(f"hf:{folder}"))
    with pytest.raises(errors.ModelNotFoundError, match=r"no file 'c.gguf'.*a.gguf, b.gguf"):
        create_provider(ModelSpec.parse(f"hf:{folder}", {"gguf_file": "c.gguf"}))
    junk_gguf(folder, "c.gguf")
    with pytest.raises(errors.ModelNotFoundError, match="is not a GGUF file"):
        create_provider(ModelSpec.parse(f"hf:{folder}", {"gguf_file": "c.gguf"}))
    with pytest.raises(errors.ModelNotFoundError, match="is not a GGUF file"):
        create_provider(ModelSpec.parse(f"hf:{folder / 'c.gguf'}"))
    with pytest.raises(errors.UsageError, match="does not apply to a GGUF"):
        create_provider(ModelSpec.parse(f"hf:{path}", {"quantization": "nf4"}))
    p = create_provider(ModelSpec.parse(f"hf:{demo_models.hf_dir}"))  # a transformers folder is unchanged
    assert p.gguf_file is None


def _answer(ref: str, question: str, max_tokens: int):
    from tryouts.engine.execute import execute
    from tryouts.providers import create_provider
    from tryouts.types import GenParams, Message, ModelSpec, Request

    async def go():
        provider = create_provider(ModelSpec.parse(ref))
        load_ms = await provider.load()
        try:
            request = Request(messages=[Message(role="user", content=question)],
                              params=GenParams(max_tokens=max_tokens, temperature=0))
            return await execute(provider, request, load_ms=load_ms), provider.tokenizer.chat_template
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.slow
def test_hf_gguf_generates_what_the_transformers_folder_generates(demo_models):
    """The tiny GGUF holds the folder's weights in F32: dequantized by transformers, greedy output is identical."""
    (gguf_result, gguf_template), (hf_result, hf_template) = (
        _answer(f"hf:{ref}", "Explain pretrained models.", 20) for ref in (demo_models.gguf_path, demo_models.hf_dir))
    assert gguf_result.error is None and gguf_result.text and gguf_result.text == hf_result.text
    assert gguf_result.usage.input_tokens == hf_result.usage.input_tokens
    assert gguf_template == hf_template == read_gguf(demo_models.gguf_path).chat_template


@pytest.mark.slow
def test_hf_gguf_smollm2_knows_the_capital_of_france(smollm2):
    result, template = _answer(f"hf:{smollm2}", "What is the capital of France?", 24)
    assert result.error is None and "Paris" in result.text
    assert template == read_gguf(smollm2).chat_template  # the GGUF's own chat template, carried over
    assert result.usage.method == "exact" and result.usage.input_tokens == 37  # the template's system prompt included
