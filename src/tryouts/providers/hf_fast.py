"""The fast decoding path of the ``hf`` route: a static KV cache and ``torch.compile`` (issue 19).

transformers' own generate does the work: ``cache_implementation="static"`` allocates a fixed-size KV cache
(sized with ``max_cache_len``, so every call of a run reuses one shape), and a ``compile_config`` makes
generate compile the model's decoding forward (``torch.compile``, mode ``reduce-overhead``: CUDA graphs on
CUDA). transformers compiles only on accelerators unless told otherwise; ``compile=true`` on CPU sets its
"compile on all devices" flag, which works but is slow to compile and rarely faster.

Options (HFOptions): ``cache`` (static | dynamic; default static on CUDA, dynamic elsewhere), ``compile``
(default true on CUDA with the static cache, false elsewhere), ``max_cache_len`` (the static cache's length
in tokens, prompt plus output; default 4096, capped by the model's ``max_position_embeddings``).

Compilation happens in ``load()``: :func:`warm_up` runs generate with a few decode steps at batch 1 and at
the run's ``batch_size``, so the prefill and decode graphs are built before anything is timed, and TTFT
never holds a compilation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .. import errors

CACHES = ("static", "dynamic")
DEFAULT_CACHE_LEN = 4096
WARMUP_DECODE_STEPS = 3  # the prefill, then decode steps: the shapes decoding uses


@dataclass(frozen=True)
class FastPlan:
    """How ``generate`` decodes for one loaded model."""

    cache: str = "dynamic"
    compile: bool = False
    max_cache_len: int | None = None

    def generate_kwargs(self) -> dict[str, Any]:
        """Extra ``generate`` arguments for this plan (none for the plain dynamic cache)."""
        if self.cache != "static":
            return {}
        kw: dict[str, Any] = {"cache_implementation": "static"}
        if self.max_cache_len:
            kw["max_cache_len"] = self.max_cache_len
        if self.compile:
            kw["compile_config"] = compile_config()
        else:
            kw["disable_compile"] = True  # transformers would otherwise compile a static cache on CUDA by itself
        return kw


@functools.cache
def compile_config() -> Any:
    """transformers' CompileConfig for decoding: inductor, reduce-overhead (CUDA graphs), on any device. One
    object for the process, so generate never sees a "new" config and recompiles."""
    from transformers import CompileConfig

    cfg = CompileConfig(fullgraph=False, mode="reduce-overhead")
    cfg._compile_all_devices = True  # honour compile=true on CPU too (tests; transformers skips CPU otherwise)
    return cfg


def _flag(value: Any, ref: str, name: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise errors.UsageError(f"{ref}: {name} must be true or false, not {value!r}.")


def check_options(ref: str, opts: dict[str, Any]) -> None:
    """Refuse bad ``cache``/``compile``/``max_cache_len`` values at construction, before any loading."""
    cache = opts.get("cache")
    if cache is not None and cache not in CACHES:
        raise errors.UsageError(f"{ref}: cache {cache!r} is not one of {', '.join(CACHES)}.")
    compiled = _flag(opts.get("compile"), ref, "compile")
    if compiled and cache == "dynamic":
        raise errors.UsageError(f"{ref}: compile=true needs cache=static (a dynamic cache changes shape at every "
                                "token, so compiled decoding would recompile); set cache=static or drop compile.")
    n = opts.get("max_cache_len")
    if n is not None and (isinstance(n, bool) or not str(n).isdigit() or int(n) < 1):
        raise errors.UsageError(f"{ref}: max_cache_len must be a whole number of tokens >= 1, not {n!r}.")


def plan_for(ref: str, opts: dict[str, Any], device: str, model: Any) -> FastPlan:
    """The plan for ``model`` on ``device``: the options, else the defaults (module doc). GGUF, task
    pipelines, quantized and device-mapped models take the options as given (transformers itself skips
    compilation where it cannot compile, e.g. CPU offload or a quantizer that does not compile)."""
    check_options(ref, opts)
    cuda = device.startswith("cuda")
    cache = opts.get("cache") or ("static" if cuda else "dynamic")
    compiled = _flag(opts.get("compile"), ref, "compile")
    if compiled is None:
        compiled = cuda and cache == "static"
    if cache != "static":
        return FastPlan()
    length = int(opts.get("max_cache_len") or DEFAULT_CACHE_LEN)
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0 and not opts.get("max_cache_len"):
        length = min(length, limit)
    return FastPlan(cache="static", compile=bool(compiled), max_cache_len=length)


def fit_max_new_tokens(plan: FastPlan, prompt_len: int, max_new_tokens: int, ref: str) -> int:
    """``max_new_tokens`` checked against the static cache: a prompt that leaves no room is refused with what
    to do; otherwise the output is capped so prompt + output fits (a longer cache would recompile)."""
    if plan.cache != "static" or not plan.max_cache_len:
        return max_new_tokens
    room = plan.max_cache_len - prompt_len
    if room < 1:
        raise errors.UsageError(f"{ref}: the prompt ({prompt_len} tokens) does not fit the static KV cache "
                                f"(max_cache_len={plan.max_cache_len}); raise -o max_cache_len or use cache=dynamic.")
    return min(max_new_tokens, room)


def warm_up(provider: Any, batch_size: int) -> None:
    """Run generate through the provider's own paths at batch 1 and at ``batch_size``, with a few decode
    steps, so compiled graphs (prefill and decode, per batch shape) are built during ``load()``."""
    ids = provider._encode([{"role": "user", "content": "Hi"}])
    steps = WARMUP_DECODE_STEPS if provider.plan.compile else 1
    # two passes when compiling: the first compiles, the second runs the CUDA-graph recording (reduce-overhead)
    for _ in range(2 if provider.plan.compile else 1):
        provider._generate_ids(ids, {"max_new_tokens": steps, "min_new_tokens": steps})
        if batch_size > 1:
            batch_ids(provider, [ids[0].tolist()] * batch_size, steps)


def batch_ids(provider: Any, prompts: list[list[int]], steps: int) -> None:
    """A left-padded batch generate of ``steps`` tokens (warm-up of the batch shapes)."""
    import torch

    tok, device = provider.tokenizer, provider.model.device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    width = max(len(x) for x in prompts)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], device=device)
    with torch.inference_mode():
        provider.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad, max_new_tokens=steps,
                                min_new_tokens=steps, do_sample=False, **provider.plan.generate_kwargs())


def is_compiled(model: Any) -> bool:
    """True once generate has compiled the model's decoding forward (transformers keeps it on the model)."""
    return getattr(model, "_compiled_call", None) is not None
