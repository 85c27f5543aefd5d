"""Tiny random-weight demo models, built offline in a few seconds.

``tryouts demo`` and the test-suite need real local models without downloading anything, so this
module builds a small Llama-architecture chat model from scratch:

* a byte-level BPE tokenizer (about 1000 tokens) trained on the paragraphs in :data:`CORPUS`, with
  ChatML special tokens and a ChatML chat template;
* a 2-layer Llama with random weights, saved as a Hugging Face folder (``config.json``,
  ``model.safetensors``, ``tokenizer.json`` ...) loadable by ``transformers``;
* the same weights and tokenizer written as a llama.cpp GGUF (F32), loadable by
  ``llama_cpp.Llama`` and by llama.cpp's server.

The output is gibberish, but every engine runs the real loading, templating, tokenizing and
generation code. The models are cached (see :func:`ensure_demo_models`).

torch, transformers, tokenizers and gguf are imported inside the functions, so this module imports
without them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "CHAT_TEMPLATE",
    "DEMO_VERSION",
    "DemoModels",
    "build_hf_model",
    "build_tokenizer",
    "ensure_demo_models",
    "write_gguf",
]

DEMO_VERSION = "1"
"""Version of the demo build; bump it whenever the build changes (it is part of the cache path)."""

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)
"""ChatML chat template (``<|im_start|>role\\ncontent<|im_end|>\\n``), with ``add_generation_prompt``.

It is deliberately not byte-identical to llama-cpp-python's built-in ChatML template, so that
``llama_cpp.Llama`` formats chats with the template stored in the GGUF itself.
"""

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

VOCAB_SIZE = 1000
HF_DIR_NAME = "tiny-chat"
GGUF_NAME = "tiny-chat.F32.gguf"
MODEL_NAME = "tryouts-demo-tiny-chat"
_PARTIAL_PREFIX = ".partial-"
_STALE_PARTIAL_SECONDS = 3600.0

CORPUS = (
    """Pre-trained models are the starting point of most language work today. A team rarely trains a
model from scratch; it picks a pre-trained model that was trained on a large amount of text, and
then it prompts the model, fine-tunes it, or wraps it in a small program. The hard part is no longer
the training. The hard part is choosing the right model for the task, the budget and the hardware.""",
    """Model selection starts with a question that is easy to ask and hard to answer: which model is
good enough? A large model from an API may give the best answers, but every request has a price and
a latency. A small local model may be fast and cheap, but its answers can be wrong, short or
strange. The only honest way to compare them is to run the same prompts through each model and to
measure the results: the time to the first token, the tokens per second, the number of input and
output tokens, the cost of each run and the quality of each answer.""",
    """Quality is the most difficult thing to measure. Some tasks have an exact answer, and a simple
check is enough: the answer contains the right number, the output is valid JSON, the code passes
its tests. Other tasks need a judge, which may be a person or another model that reads the answer
and gives it a score. A good suite mixes both kinds of checks, keeps the prompts in version control,
and stores every result so that a new model can be compared with the old ones later.""",
    """Quantization makes local models smaller and faster. The weights of a model are usually stored
as sixteen-bit or thirty-two-bit floating point numbers. A quantized model stores them with fewer
bits, for example eight, five or four bits per weight, together with a few scale factors. A model
in the GGUF format with four-bit weights needs about a quarter of the memory of the same model in
sixteen-bit weights, and on a laptop it often runs two or three times faster. The price is a small
loss of quality, which is different for every model and every task, and which should be measured
rather than guessed.""",
    """The context window is another limit to keep in mind. A model can only read a fixed number of
tokens at once, and the prompt, the chat template and the generated answer all count. Tokenizers
differ between models, so the same text may be three hundred tokens for one model and four hundred
for another. When you compare prices, compare the price per task, not only the price per token.""",
    """Local models need some care before they run well. Check the amount of memory on the machine,
pick a quantization that fits, choose the number of threads, and decide how many layers to offload
to the graphics card. A server such as the one in llama.cpp speaks the same chat API as the big
providers, so one client can talk to a hosted model, a local server and a model loaded in process.
Streaming matters too: with streaming, the first words appear after a fraction of a second, even
when the whole answer takes a minute.""",
    """Benchmarks published by others are useful, but they rarely match your own work. Your prompts,
your documents and your users are different. Write twenty or thirty realistic examples, add the
expected facts or a scoring rule to each of them, and keep the suite small enough to run every
week. When a new model appears, run the suite again, compare accuracy, latency and price in one
table, and keep the history of every run in a database.""",
    """In the end, the best model is the one that does the job well enough, at a cost and a speed you
can accept, on the hardware you have. Try several models, run the same drills, look at the numbers
and read the answers yourself before you decide.""",
)
"""The English text the demo tokenizer is trained on."""


@dataclass(frozen=True)
class DemoModels:
    """Paths of the built demo models.

    ``hf_dir`` is a folder loadable by ``AutoModelForCausalLM.from_pretrained`` and
    ``AutoTokenizer.from_pretrained``; ``gguf_path`` is a llama-architecture GGUF file of the same
    weights and tokenizer, loadable by ``llama_cpp.Llama`` and llama.cpp's server.
    """

    hf_dir: Path
    gguf_path: Path


def build_tokenizer(out_dir: Path) -> PreTrainedTokenizerFast:
    """Train the demo byte-level BPE tokenizer, save it into ``out_dir`` and return it.

    The tokenizer is GPT-2 style (ByteLevel pre-tokenizer with the GPT-2 split regex, ByteLevel
    decoder, no prefix space, no BOS), with the special tokens ``<|endoftext|>`` (padding),
    ``<|im_start|>`` and ``<|im_end|>`` (end of sequence) and the ChatML :data:`CHAT_TEMPLATE`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        bos_token=None,
        add_bos_token=False,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    _save_tokenizer(fast, out_dir)
    return fast


def _save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """Save the tokenizer with the chat template inside ``tokenizer_config.json``."""
    try:
        tokenizer.save_pretrained(out_dir, save_jinja_files=False)
    except TypeError:  # older transformers without save_jinja_files
        tokenizer.save_pretrained(out_dir)
    # Make sure tokenizer_config.json carries the template whatever the transformers version does,
    # and name the class that every transformers version knows (5.x saves "TokenizersBackend",
    # which 4.x cannot load; 5.x still maps "PreTrainedTokenizerFast" to the same class).
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["chat_template"] = CHAT_TEMPLATE
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_hf_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Build the tiny random-weight Llama chat model as a Hugging Face folder and return its path.

    The folder holds ``config.json``, ``model.safetensors`` (float32), ``generation_config.json``
    and the tokenizer files of :func:`build_tokenizer`. Weights are random but reproducible
    (``torch.manual_seed(seed)``).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(out_dir)
    vocab = tokenizer.get_vocab()
    eos_id = vocab[IM_END]
    pad_id = vocab[ENDOFTEXT]
    special_ids = sorted(vocab[t] for t in SPECIAL_TOKENS)
    unprintable_ids = sorted(
        i for i in vocab.values() if i not in special_ids and not _printable(tokenizer, i)
    )

    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=pad_id,  # there is no BOS token and none is added; <|endoftext|> like Qwen
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.eval()
    with torch.no_grad():
        # The output head decides what gets generated. Give the normal tokens' rows a large
        # scale (logits with a standard deviation of about 4) and set the rows of the special
        # tokens (<|endoftext|>, <|im_start|>, <|im_end|>) to zero, so their logit is always 0
        # while the best normal token scores around +10. Greedy decoding therefore never picks
        # EOS, and sampling practically never does: every generation runs to exactly max_tokens
        # tokens of (gibberish) text, which keeps token counts and timings predictable.
        # The same is done for the single-byte tokens that do not decode to printable text
        # (control characters, lone UTF-8 continuation bytes), so the gibberish is plain ASCII
        # words and punctuation, and streamed text never splits a multi-byte character.
        generator = torch.Generator().manual_seed(seed + 1)
        weight = model.lm_head.weight
        weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
        weight[special_ids, :] = 0.0
        weight[unprintable_ids, :] = 0.0
        # The default initialisation (std 0.02) gives almost uniform attention, so a model whose
        # q/k rows were permuted wrongly would still produce nearly the same logits. Larger
        # projection weights make attention (and RoPE) matter, so the HF-vs-GGUF logit check in
        # the tests really proves the conversion.
        model.model.embed_tokens.weight.copy_(
            torch.randn(model.model.embed_tokens.weight.shape, generator=generator)
        )
        for layer in model.model.layers:
            for proj in (
                layer.self_attn.q_proj,
                layer.self_attn.k_proj,
                layer.self_attn.v_proj,
                layer.self_attn.o_proj,
                layer.mlp.gate_proj,
                layer.mlp.up_proj,
                layer.mlp.down_proj,
            ):
                proj.weight.copy_(torch.randn(proj.weight.shape, generator=generator) * 0.15)

    # Saved by hand rather than with model.save_pretrained(), which prints a progress bar.
    config.architectures = ["LlamaForCausalLM"]
    config.dtype = "float32"
    config.save_pretrained(out_dir)
    GenerationConfig(
        bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id, do_sample=False
    ).save_pretrained(out_dir)
    state = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    weights_path = out_dir / "model.safetensors"
    save_file(state, str(weights_path), metadata={"format": "pt"})
    weights_path.chmod(0o644)  # safetensors creates the file readable by its owner only
    return out_dir


def _printable(tokenizer: Any, token_id: int) -> bool:
    """Whether a token decodes on its own to printable text (newlines and tabs allowed)."""
    text = tokenizer.decode([token_id])
    return bool(text) and "\ufffd" not in text and all(c.isprintable() or c in "\n\t" for c in text)


def _permute_qk(weight: Any, n_head: int) -> Any:
    """Reorder q/k projection rows from HF's rotate-half RoPE layout to llama.cpp's interleaved one.

    HF Llama rotates the two halves of each head (dimensions ``i`` and ``i + d/2``); llama.cpp's
    ``LLM_ARCH_LLAMA`` rotates adjacent pairs (``2i`` and ``2i + 1``). Within each head, the rows
    are split into the two halves and interleaved.
    """
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _gguf_tensor_name(hf_name: str) -> str:
    """Map a HF Llama tensor name to the GGUF (llama.cpp) name."""
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf_name in fixed:
        return fixed[hf_name]
    parts = hf_name.split(".")
    # model.layers.{i}.<module>.<proj>.weight
    if len(parts) >= 4 and parts[0] == "model" and parts[1] == "layers":
        layer = int(parts[2])
        rest = ".".join(parts[3:])
        per_layer = {
            "input_layernorm.weight": "attn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight",
            "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight",
            "self_attn.o_proj.weight": "attn_output.weight",
            "post_attention_layernorm.weight": "ffn_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight",
            "mlp.up_proj.weight": "ffn_up.weight",
            "mlp.down_proj.weight": "ffn_down.weight",
        }
        if rest in per_layer:
            return f"blk.{layer}.{per_layer[rest]}"
    raise ValueError(f"unexpected tensor in the demo model: {hf_name}")


def write_gguf(hf_dir: Path, out_path: Path) -> Path:
    """Write the HF demo model in ``hf_dir`` as a llama-architecture F32 GGUF at ``out_path``.

    The GGUF carries the same weights (q/k rows permuted for llama.cpp's RoPE), the byte-level BPE
    vocabulary (``tokenizer.ggml.model = "gpt2"``, pre-tokenizer ``"gpt-2"``), merges, special
    token ids, ``add_bos_token = False`` and the ChatML :data:`CHAT_TEMPLATE`. Returns ``out_path``.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    hf_dir = Path(hf_dir)
    out_path = Path(out_path)
    cfg = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    tok_json = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))

    n_embd = int(cfg["hidden_size"])
    n_head = int(cfg["num_attention_heads"])
    n_head_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or n_embd // n_head)
    rope = cfg.get("rope_parameters") or {}
    rope_theta = float(cfg.get("rope_theta") or rope.get("rope_theta") or 10000.0)

    # Vocabulary in id order: the BPE model's tokens plus the added (special) tokens.
    id_to_token: dict[int, str] = {int(i): t for t, i in tok_json["model"]["vocab"].items()}
    special_ids: set[int] = set()
    for added in tok_json.get("added_tokens", []):
        id_to_token[int(added["id"])] = added["content"]
        if added.get("special"):
            special_ids.add(int(added["id"]))
    n_vocab = max(id_to_token) + 1
    if sorted(id_to_token) != list(range(n_vocab)):
        raise ValueError("the demo tokenizer's ids are not contiguous")
    tokens = [id_to_token[i] for i in range(n_vocab)]
    token_types = [
        int(gguf.TokenType.CONTROL) if i in special_ids else int(gguf.TokenType.NORMAL)
        for i in range(n_vocab)
    ]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"].get("merges", [])]
    token_id = {t: i for i, t in enumerate(tokens)}

    tensors = load_file(str(hf_dir / "model.safetensors"))
    if int(tensors["model.embed_tokens.weight"].shape[0]) != n_vocab:
        raise ValueError("the demo model's embedding size does not match its tokenizer")

    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_path), "llama")
    try:
        writer.add_name(MODEL_NAME)
        writer.add_context_length(int(cfg.get("max_position_embeddings", 1024)))
        writer.add_embedding_length(n_embd)
        writer.add_block_count(int(cfg["num_hidden_layers"]))
        writer.add_feed_forward_length(int(cfg["intermediate_size"]))
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head_kv)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(rope_theta)
        writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
        writer.add_vocab_size(n_vocab)
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))

        writer.add_tokenizer_model("gpt2")
        # llama.cpp maps "gpt-2" to its GPT-2 split regex, the one the ByteLevel pre-tokenizer uses.
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(token_types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(token_id[ENDOFTEXT])
        writer.add_eos_token_id(token_id[IM_END])
        writer.add_pad_token_id(token_id[ENDOFTEXT])
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        writer.add_chat_template(CHAT_TEMPLATE)

        for hf_name in sorted(tensors):
            data = np.ascontiguousarray(tensors[hf_name].astype(np.float32))
            if hf_name.endswith("self_attn.q_proj.weight"):
                data = _permute_qk(data, n_head)
            elif hf_name.endswith("self_attn.k_proj.weight"):
                data = _permute_qk(data, n_head_kv)
            writer.add_tensor(_gguf_tensor_name(hf_name), np.ascontiguousarray(data))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return out_path


def _default_root() -> Path:
    from tryouts import paths

    return paths.cache_dir() / "demo"


def _is_complete(root: Path) -> bool:
    hf_dir = root / HF_DIR_NAME
    return all(
        p.is_file()
        for p in (
            hf_dir / "config.json",
            hf_dir / "model.safetensors",
            hf_dir / "tokenizer.json",
            hf_dir / "tokenizer_config.json",
            root / GGUF_NAME,
        )
    )


def _remove_stale_partials(parent: Path, name: str) -> None:
    """Delete partial build folders of ``name`` left over by interrupted builds (older than an hour)."""
    now = time.time()
    for p in parent.glob(f"{_PARTIAL_PREFIX}{name}-*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > _STALE_PARTIAL_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def ensure_demo_models(
    cache_dir: Path | None = None, *, progress: Callable[[str], None] | None = None
) -> DemoModels:
    """Return the demo models, building them first if they are not in the cache yet.

    The models live in ``<cache_dir>/v<DEMO_VERSION>`` (default: ``tryouts.paths.cache_dir() /
    "demo"``). A build goes into a hidden temporary sibling folder that is renamed into place at
    the end, so an interrupted build never leaves a half-built model behind. ``progress`` (if
    given) is called with a short message for each step. Building takes a few seconds.
    """

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    parent = Path(cache_dir) if cache_dir is not None else _default_root()
    name = f"v{DEMO_VERSION}"
    root = parent / name
    result = DemoModels(hf_dir=root / HF_DIR_NAME, gguf_path=root / GGUF_NAME)
    if _is_complete(root):
        return result

    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(parent, name)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_PARTIAL_PREFIX}{name}-", dir=parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the final folder should look like any other
    try:
        say("Training the demo tokenizer and building a tiny random-weight Llama model")
        build_hf_model(tmp / HF_DIR_NAME)
        say("Writing the GGUF file for llama.cpp")
        write_gguf(tmp / HF_DIR_NAME, tmp / GGUF_NAME)
        if root.exists() and not _is_complete(root):
            # A broken folder (e.g. files deleted by hand): move it aside, then replace it.
            broken = Path(tempfile.mkdtemp(prefix=f"{_PARTIAL_PREFIX}{name}-", dir=parent))
            os.replace(root, broken / "old")
            shutil.rmtree(broken, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _is_complete(root):  # another process did not win the race: a real error
                raise
            # Another process finished the same build first; use its files.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"Demo models ready in {root}")
    return result
