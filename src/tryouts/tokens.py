"""Counting tokens when a provider reports no usage (docs/metrics.md, "Counting tokens").

Order of preference:

1. the provider's own usage (``provider``, not estimated);
2. the model's own tokenizer, when Tryouts has it: an in-process backend's (``tokenizer:model``), or
   the ``tokenizer`` option of an OpenAI-compatible model, loaded by :func:`load_counter`: a GGUF
   model file (its tokenizer and chat template, through llama-cpp-python), a Hugging Face tokenizer
   folder, a ``tokenizer.json`` file or a Hub id already in the cache. With a chat template the input
   is the templated prompt, counted as the server counts it (``tokenizer+template:REF``); without
   one, the messages' text only (``tokenizer:REF``). The output is the generated text's tokens;
3. content chunks, one token each, for a server known to send one token per chunk (llama.cpp's);
   the input then falls back to (4) (``chunks+chars/4``);
4. the fallback ``ceil(characters / 4)`` (``fallback:chars/4``), the common rule of thumb for
   English text with GPT-style vocabularies.

Anything but (1) is marked ``estimated``, and ``Usage.method`` says which way was used.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import errors
from .types import Message, Usage

Counter = Callable[[str], int]
PromptCounter = Callable[[list[dict[str, Any]]], int]

FALLBACK = "fallback:chars/4"
CHUNKS = "chunks"
_GIVE = (
    "Give a .gguf model file (its tokenizer and chat template are used), a folder with tokenizer.json "
    "(and tokenizer_config.json for the chat template), a tokenizer.json file or a Hugging Face Hub id "
    "already in the local cache; or leave the option out and Tryouts estimates (docs/metrics.md)."
)

#: no model writes or reads more tokens than this in one request (the longest context windows are 10M)
MAX_TOKENS = 10_000_000


def fallback_count(text: str) -> int:
    """``ceil(len(text) / 4)``: the documented last resort."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True, eq=False)
class TokenCounter:
    """A model's own tokenizer, with its chat template when it has one.

    ``count`` counts a text's tokens (no special tokens added): the output. ``count_prompt`` counts the
    templated prompt of a conversation the way the server builds it (template, generation prompt, BOS).
    """

    ref: str
    count: Counter
    count_prompt: PromptCounter | None = None

    @property
    def method(self) -> str:
        return f"{'tokenizer+template' if self.count_prompt else 'tokenizer'}:{self.ref}"

    def prompt_tokens(self, messages: list[Message]) -> int:
        """Input tokens of ``messages``: the templated prompt, else the sum over the messages' text."""
        if self.count_prompt is not None:
            return self.count_prompt([m.model_dump() for m in messages])
        return sum(self.count(m.content) for m in messages)


def _bad(ref: str, why: str) -> errors.UsageError:
    return errors.UsageError(f"The tokenizer option {ref!r} cannot be used: {why}. {_GIVE}")


@lru_cache(maxsize=16)
def load_counter(ref: str) -> TokenCounter:
    """The counter for a ``tokenizer`` option value, loaded once per process.

    Raises :class:`~tryouts.errors.UsageError` naming the option and the path when it cannot be loaded.
    """
    ref = str(ref)
    if not ref.strip():
        raise _bad(ref, "it is empty")
    path = Path(ref).expanduser()
    if path.is_file() and (path.suffix.lower() == ".gguf" or _is_gguf(path)):
        return _gguf_counter(ref, path)
    if path.is_dir():
        if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
            raise _bad(ref, f"the folder {str(path)!r} has no tokenizer.json or tokenizer_config.json")
        return _hf_counter(ref, str(path), path / "tokenizer.json")
    if path.is_file():
        return _tokenizer_json_counter(ref, path)
    if path.suffix.lower() in (".gguf", ".json") or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise _bad(ref, f"there is no file or folder at {str(path)!r}")
    cached = _hub_cached_tokenizer_json(ref)
    try:
        return _hf_counter(ref, ref, cached)
    except errors.UsageError:
        raise
    except Exception as exc:  # not a path and not a cached Hub id
        raise _bad(ref, f"there is no file or folder at {str(path)!r}, and no Hub id of that name in the local cache") from exc


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def _quiet():
    """Silence llama.cpp's C-level logging while it reads a file."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:
        return contextlib.nullcontext()


class _Captured(Exception):
    def __init__(self, prompt: Any) -> None:
        super().__init__("prompt captured")
        self.prompt = prompt


class _PromptCatcher:
    """Stands in for the ``Llama`` a chat handler drives: tokenizes with the real one, then stops at
    ``create_completion`` with the prompt tokens the server would generate from."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, prompt: Any = None, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(prompt)


def _gguf_counter(ref: str, path: Path) -> TokenCounter:
    """llama-cpp-python's vocabulary-only load of ``path``: the server's tokenizer and chat handler.

    ``Llama`` picks the chat handler exactly as llama-cpp-python's server does (a built-in format the
    GGUF's template matches, else the template itself through Jinja2, else ``llama-2``); the handler is
    run against a stand-in that captures the prompt tokens it hands to generation, so the count is the
    server's ``prompt_tokens`` (template, generation prompt and BOS included).
    """
    try:
        from llama_cpp import Llama, llama_chat_format
    except ImportError as exc:
        raise _bad(
            ref, "reading a GGUF file needs llama-cpp-python: pip install 'tryouts[llamacpp]'"
        ) from exc
    try:
        with _quiet():
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise _bad(ref, f"llama.cpp could not read a tokenizer from {str(path)!r} ({exc})") from exc
    lock = threading.Lock()  # one llama.cpp call at a time on the shared vocabulary

    def count(text: str) -> int:
        with lock:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    handler = llm.chat_handler or llm._chat_handlers.get(llm.chat_format)
    if handler is None and llm.chat_format:
        with contextlib.suppress(ValueError, KeyError):
            handler = llama_chat_format.get_chat_completion_handler(llm.chat_format)

    def count_prompt(messages: list[dict[str, Any]]) -> int:
        with lock:
            try:
                out = handler(llama=_PromptCatcher(llm), messages=messages)
                if hasattr(out, "__next__"):  # a handler written as a generator runs on the first next()
                    next(out)
            except _Captured as got:
                prompt = got.prompt
            else:
                raise RuntimeError(f"the chat handler of {ref!r} did not reach generation")
            if isinstance(prompt, str | bytes):  # a text prompt: tokenized as Llama.create_completion does
                text = prompt.encode("utf-8") if isinstance(prompt, str) else prompt
                return len(llm.tokenize(text, add_bos=True, special=True))
            return len(prompt)

    if handler is not None:
        try:  # a template this jinja2 cannot run shows at load, not on the first answer
            count_prompt([{"role": "user", "content": "Hi"}])
        except Exception as exc:
            raise _bad(ref, f"its chat template ({llm.chat_format}) cannot be applied ({exc})") from exc
    return TokenCounter(ref, count, count_prompt if handler is not None else None)


def _hf_counter(ref: str, source: str, tokenizer_json: Path | None) -> TokenCounter:
    """transformers' tokenizer and chat template; without transformers, tokenizer.json alone."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        if tokenizer_json is not None and tokenizer_json.is_file():
            return _tokenizer_json_counter(ref, tokenizer_json)
        raise _bad(ref, "loading it needs transformers (pip install 'tryouts[local]') or a tokenizer.json") from None
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except Exception as exc:
        if Path(source).is_dir():
            raise _bad(ref, f"transformers could not load a tokenizer from {source!r} ({exc})") from exc
        raise
    lock = threading.Lock()

    def count(text: str) -> int:
        with lock:
            return len(tok.encode(text, add_special_tokens=False))

    def count_prompt(messages: list[dict[str, Any]]) -> int:
        with lock:
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, Mapping) or hasattr(ids, "keys"):  # newer transformers return a BatchEncoding
            ids = ids["input_ids"]
        if ids and isinstance(ids[0], list):
            ids = ids[0]
        return len(ids)

    has_template = bool(getattr(tok, "chat_template", None))
    if has_template:
        try:
            count_prompt([{"role": "user", "content": "Hi"}])
        except Exception as exc:
            raise _bad(ref, f"its chat template cannot be applied ({exc})") from exc
    return TokenCounter(ref, count, count_prompt if has_template else None)


def _tokenizer_json_counter(ref: str, file: Path) -> TokenCounter:
    """A bare ``tokenizer.json``: text counts only (it carries no chat template)."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:
        raise _bad(ref, f"{str(file)!r} is not a tokenizer.json the tokenizers library can read ({exc})") from exc
    return TokenCounter(ref, lambda text: len(tok.encode(text, add_special_tokens=False).ids))


def _hub_cached_tokenizer_json(ref: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref, "tokenizer.json")
    except Exception:  # not a valid repo id, or huggingface_hub missing
        return None
    return Path(found) if isinstance(found, str) else None


def complete_usage(
    usage: Usage | None,
    messages: list[Message],
    output_text: str,
    *,
    model_counter: Counter | None = None,
    counter: TokenCounter | None = None,
    tokenizer_ref: str | None = None,
    n_chunks: int | None = None,
) -> Usage:
    """Fill what the provider did not report, and say how it was counted.

    ``model_counter``: an in-process backend's tokenizer. ``counter``: the ``tokenizer`` option, loaded
    (else ``tokenizer_ref`` is loaded here; one that cannot be loaded is skipped). ``n_chunks``: the
    content chunks, given only when the server is known to send one token per chunk.
    """
    usage = usage.model_copy() if usage else Usage()
    if usage.input_tokens is not None and usage.output_tokens is not None:
        return usage
    if counter is None and model_counter is None and tokenizer_ref:
        with contextlib.suppress(errors.UsageError):
            counter = load_counter(str(tokenizer_ref))
    if model_counter is not None:
        count_out: Counter = model_counter
        count_in: Callable[[list[Message]], int] = lambda ms: sum(model_counter(m.content) for m in ms)  # noqa: E731
        method = "tokenizer:model"
    elif counter is not None:
        count_out, count_in, method = counter.count, counter.prompt_tokens, counter.method
    else:
        count_out = fallback_count
        count_in = lambda ms: sum(fallback_count(m.content) for m in ms)  # noqa: E731
        method = FALLBACK
    if usage.output_tokens is None:
        if method == FALLBACK and n_chunks is not None:
            usage.output_tokens = n_chunks
            method = CHUNKS if usage.input_tokens is not None else f"{CHUNKS}+chars/4"
        else:
            usage.output_tokens = count_out(output_text) if output_text else 0
    if usage.input_tokens is None:
        usage.input_tokens = count_in(messages)
    usage.estimated = True
    usage.method = method
    return usage
