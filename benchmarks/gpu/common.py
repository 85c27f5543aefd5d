"""Shared pieces of the GPU benchmarks (benchmarks/gpu/README.md): real architectures' config numbers, random-
weight models built from them (no hub access), the device's copy bandwidth, and timed greedy decoding."""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import Any

# Config numbers of the real models (their config.json), so random-weight models have the real shapes.
ARCHS: dict[str, dict[str, Any]] = {
    "llama3.1-8b": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu",
        "bos_token_id": 128000, "eos_token_id": 128001,
    },
    "qwen2.5-7b": {
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "vocab_size": 152064, "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu",
        "bos_token_id": 151643, "eos_token_id": 151645,
    },
}
# --tiny: the same architectures shrunk so a CPU runs them in seconds (tests)
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 2048,
        "bos_token_id": 1, "eos_token_id": 2}


def config_dict(arch: str, tiny: bool) -> dict[str, Any]:
    if arch not in ARCHS:
        raise SystemExit(f"unknown architecture {arch!r}: one of {', '.join(ARCHS)}")
    return {**ARCHS[arch], **(TINY if tiny else {})}


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def need_cuda(script: str) -> None:
    """Exit with a clear message (status 2, no traceback) when there is no CUDA GPU."""
    try:
        import torch
        ok = torch.cuda.is_available()
    except ImportError:
        ok = False
    if not ok:
        print(f"{script}: needs a CUDA GPU, and none is available here (torch.cuda.is_available() is false). "
              "Run it on a GPU machine: benchmarks/gpu/run_all.sh OUT_DIR (benchmarks/gpu/README.md).",
              file=sys.stderr)
        raise SystemExit(2)


def build_model(arch: str, tiny: bool, device: str, dtype: Any, **load_kw: Any) -> Any:
    """A random-weight model of ``arch`` on ``device`` (built there directly: no hub, no disk)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(config_dict(arch, tiny))
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device: str, mib: int, repeats: int = 10) -> float:
    """The device's copy bandwidth: bytes copied per second, issue 19's definition of the roofline's bandwidth (its
    anchor, 86 tok/s = 92 % for Llama-3.1-8B on an H100, implies about 1.5 TB/s, i.e. bytes copied, not the read +
    write traffic, which is twice this)."""
    import torch

    n = mib * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - t)
    del src, dst
    return n * 4 / best


def weight_bytes_per_token(model: Any) -> int:
    """Bytes of weights read to decode one token: every parameter, except the input embedding table, of which
    one row is read (when the LM head shares it, the head reads it whole and it counts once)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    if head is None or head.weight.data_ptr() != emb.data_ptr():
        total -= emb.numel() * emb.element_size() - emb.shape[1] * emb.element_size()
    return int(total)


def timed_generate(model: Any, batch: int, prompt_tokens: int, new_tokens: int, gen_kw: dict[str, Any],
                   device: str, vocab: int) -> dict[str, float]:
    """One greedy generate of exactly ``new_tokens`` tokens per sequence, each step stamped as generate hands
    it over (after a device sync): the prefill (to the first token) and the decode steps (first to last token)."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    stamps: list[float] = []

    class Stamp(BaseStreamer):
        def put(self, value: Any) -> None:
            sync(device)
            stamps.append(time.perf_counter())

        def end(self) -> None:
            return None

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (batch, prompt_tokens), generator=g).to(device)
    sync(device)
    t = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, streamer=Stamp(), **gen_kw)
    sync(device)
    end = time.perf_counter()
    tokens = stamps[1:]  # the first put is the prompt
    first = tokens[0] if tokens else end
    return {"prefill_s": first - t, "decode_s": (tokens[-1] - first) if len(tokens) > 1 else 0.0,
            "generate_s": end - t, "steps": len(tokens)}


def decode_rate(model: Any, batch: int, prompt_tokens: int, new_tokens: int, gen_kw: dict[str, Any],
                device: str, vocab: int, repeats: int = 2) -> dict[str, float]:
    """Per-sequence decode tokens/s: decode steps after the first token over their time, best of ``repeats``
    runs (prefill and first-call costs stay out)."""
    best = min((timed_generate(model, batch, prompt_tokens, new_tokens, gen_kw, device, vocab)
                for _ in range(repeats)), key=lambda r: r["decode_s"] / max(r["steps"] - 1, 1))
    steps = max(int(best["steps"]) - 1, 1)
    return {**best, "tokens_per_s": steps / max(best["decode_s"], 1e-9)}


def environment(device: str) -> dict[str, Any]:
    import torch
    import transformers

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "transformers": transformers.__version__, "device": device}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def emit(result: dict[str, Any], as_json: bool, out: str | None, lines: list[str]) -> None:
    text = json.dumps(result, indent=2)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text if as_json else "\n".join(lines))


def memory_estimate(arch: str, tiny: bool, dtype: str, context: int, batch: int) -> dict[str, Any]:
    """Tryouts' memory estimate (tryouts.memory) for the same architecture, context and batch."""
    from tryouts.memory import Arch, estimate

    cfg = config_dict(arch, tiny)
    e = estimate(Arch.from_config(cfg, name=arch), dtype=dtype, context=context, batch=batch)
    return {"weights_bytes": e.weights_bytes, "kv_bytes": e.kv_bytes, "overhead_bytes": e.overhead_bytes,
            "total_bytes": e.total_bytes}


def word_tokenizer(vocab: int) -> Any:
    """A tokenizer whose every id decodes to a word (``t0`` ... ``tN``) and with a chat template: random-weight
    models emit any id of the model's vocabulary, and vLLM/transformers must detokenize them all."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"t{i}": i for i in range(3, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = ("{% for m in messages %}{{ m['content'] }} {% endfor %}"
                          "{% if add_generation_prompt %}t3 {% endif %}")
    return fast


def save_folder(arch: str, tiny: bool, folder: str, dtype: Any) -> str:
    """Save a random-weight model of ``arch`` with a word tokenizer to ``folder`` (for loaders that need files:
    bitsandbytes quantization, vLLM, Tryouts' routes). The model is built on the GPU when there is one."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(arch, tiny, device, dtype)
    cfg = config_dict(arch, tiny)
    model.config.eos_token_id = 2
    model.config.bos_token_id = 1
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    model.save_pretrained(folder)
    word_tokenizer(cfg["vocab_size"]).save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folder


def prompt_of(words: int) -> str:
    """A prompt of about ``words`` tokens for the word tokenizer."""
    return " ".join(f"t{5 + i % 200}" for i in range(words))
