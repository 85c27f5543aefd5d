"""Counting tokens when a provider reports no usage.

Order of preference (docs/metrics.md, "N_out"):

1. the provider's own usage (not estimated);
2. the model's own tokenizer, when Tryouts can load it: an in-process backend's tokenizer, or the
   ``tokenizer`` option (a folder or ``tokenizer.json`` file, or a Hub id already in the cache);
3. the fallback: ``ceil(characters / 4)``, the common rule of thumb for English text with
   GPT-style BPE vocabularies. Clearly marked ``fallback:chars/4``.

Anything but (1) is marked ``estimated``. A chunk is never counted as a token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from .types import Message, Usage

Counter = Callable[[str], int]


def fallback_count(text: str) -> int:
    """``ceil(len(text) / 4)``: the documented last resort."""
    return math.ceil(len(text) / 4)


@lru_cache(maxsize=16)
def load_tokenizer_counter(ref: str) -> Counter | None:
    """A counter from a tokenizer folder, a ``tokenizer.json`` file or a cached Hub id; None if unloadable."""
    path = Path(ref).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if file.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(file))
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(ref)
    except Exception:  # not installed, not cached, offline: fall back, and say so in the method
        return None
    return lambda text: len(hf(text, add_special_tokens=False)["input_ids"])


def complete_usage(
    usage: Usage | None,
    messages: list[Message],
    output_text: str,
    *,
    model_counter: Counter | None = None,
    tokenizer_ref: str | None = None,
) -> Usage:
    """Fill what the provider did not report, and say how it was counted."""
    usage = usage.model_copy() if usage else Usage()
    if usage.input_tokens is not None and usage.output_tokens is not None:
        return usage
    counter, method = model_counter, "tokenizer:model"
    if counter is None and tokenizer_ref:
        counter, method = load_tokenizer_counter(tokenizer_ref), f"tokenizer:{tokenizer_ref}"
    if counter is None:
        counter, method = fallback_count, "fallback:chars/4"
    if usage.output_tokens is None:
        usage.output_tokens = counter(output_text) if output_text else 0
    if usage.input_tokens is None:
        usage.input_tokens = sum(counter(m.content) for m in messages)
    usage.estimated = True
    usage.method = method
    return usage
