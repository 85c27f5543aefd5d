"""llama.cpp in process (llama-cpp-python), from a GGUF file.

``llamacpp:./model.gguf``. The model is loaded once per run (load and a one-token warm-up timed
apart from TTFT). Tryouts formats the conversation with the chat template stored in the GGUF and
drives llama.cpp token by token, so every token is stamped as it is sampled and the output token
count is exact (not estimated from chunks or re-tokenized text).

Options: ``n_ctx`` (default 4096, capped at the model's), ``n_gpu_layers`` (default -1: all layers on
the GPU when llama.cpp was built with one, else ignored), ``n_threads``, ``kv_type`` (f16 | f32: the KV
cache's precision; f32 matches an fp32 transformers model exactly), ``warmup`` (default true),
``prefix_cache`` (default false: every request starts from an empty KV cache, so repeats are fresh samples;
true reuses the prefix shared with the previous prompt, and the reused tokens are recorded as cached input).

The warm-up uses its own system message, so it shares no prefix with real prompts either way.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any, ClassVar

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Sent, Usage, UsageReport
from .base import WARMUP_PROMPT, Provider, stream_from_thread


def _quiet():
    """Silence llama.cpp's C-level logging for a block (its own helper when available)."""
    import contextlib

    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:
        return contextlib.nullcontext()


class LlamaCppProvider(Provider):
    """A GGUF model run by llama.cpp inside this process."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        path = Path(spec.model).expanduser()
        if not path.is_file():
            raise errors.ModelNotFoundError(
                f"No GGUF file at {spec.model!r}. Give the path of a .gguf model file, "
                "e.g. llamacpp:./models/qwen2.5-0.5b-instruct-q4_k_m.gguf."
            )
        self.path = path
        self.llm: Any = None
        self._formatter: Any = None
        self._lock = threading.Lock()

    async def load(self) -> float:
        import asyncio

        t = perf_counter_ns()
        await asyncio.to_thread(self._load)
        return (perf_counter_ns() - t) / 1e6

    def _int_option(self, name: str, default: int) -> int:
        """The whole-number option ``name`` (``-o n_ctx=4096``); a UsageError naming it otherwise."""
        value = self.spec.options.get(name, default)
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        except (TypeError, ValueError, OverflowError):
            raise errors.UsageError(f"{self.spec.ref}: the option {name} must be a whole number, e.g. "
                                    f"-o {name}={default if default > 0 else 4}, not {str(value)[:40]!r}.") from None

    def _load(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        opts = self.spec.options
        n_ctx = self._int_option("n_ctx", 4096)
        try:  # cap at the context the model was trained with (reading the vocabulary only is quick)
            with _quiet():
                meta = Llama(model_path=str(self.path), vocab_only=True, verbose=False).metadata
            trained = int(meta.get(f"{meta.get('general.architecture', 'llama')}.context_length", 0))
            n_ctx = min(n_ctx, trained) if trained > 0 else n_ctx
        except (ValueError, RuntimeError):
            pass  # the full load below reports the problem
        kw: dict[str, Any] = {
            "model_path": str(self.path),
            "n_ctx": n_ctx,
            "n_gpu_layers": self._int_option("n_gpu_layers", -1),
            "verbose": False,
        }
        if "n_threads" in opts:
            kw["n_threads"] = self._int_option("n_threads", 0)
        kv_type = str(opts.get("kv_type", "f16"))
        if kv_type not in ("f16", "f32"):
            raise errors.UsageError(f"{self.spec.ref}: kv_type must be f16 or f32, not {kv_type!r}.")
        if kv_type == "f32":  # exact parity with an fp32 transformers model, at twice the cache memory
            import llama_cpp

            kw["type_k"] = kw["type_v"] = llama_cpp.GGML_TYPE_F32
        try:
            llm = Llama(**kw)
        except (ValueError, RuntimeError) as exc:
            raise errors.ModelNotFoundError(
                f"llama.cpp could not load {str(self.path)!r} ({exc}). Is it a GGUF model file "
                "of an architecture this llama-cpp-python version supports?"
            ) from exc
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )
        self.llm = llm
        if opts.get("warmup", True):
            warm = [{"role": "system", "content": "Warm-up."}, {"role": "user", "content": WARMUP_PROMPT}]
            for _ in self._tokens(self._prompt(warm), 0.0, None, 1, None):
                pass

    def _prompt(self, messages: list[dict[str, str]]) -> list[int]:
        llm = self.llm
        if self._formatter is not None:
            text = self._formatter(messages=messages).prompt
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        text = "\n".join(m["content"] for m in messages)  # no template in the GGUF: plain text
        return llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def _is_end(self, token: int) -> bool:
        try:
            import llama_cpp

            return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))
        except (AttributeError, TypeError):
            return token == self.llm.token_eos()

    def reusable_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of ``prompt`` are already in the KV cache from the previous request."""
        llm, n = self.llm, 0
        cached = list(llm._input_ids[: llm.n_tokens])
        for a, b in zip(cached, prompt[:-1], strict=False):  # the last token is always evaluated again
            if a != b:
                break
            n += 1
        return n

    def _tokens(self, prompt: list[int], temp: float, top_p: float | None, limit: int, stop: Any):
        """Yield sampled token ids (end-of-generation tokens excluded), at most ``limit``.

        Every request starts from an empty KV cache unless the ``prefix_cache`` option asks for reuse:
        llama-cpp-python's ``generate(reset=True)`` keeps the longest prefix shared with the previous prompt,
        so a repeat of a 749-token prompt took 14.6 ms to its first token instead of 2,921 ms.
        """
        if not self.spec.options.get("prefix_cache", False):
            self.llm.reset()  # n_tokens = 0: nothing is reused, the whole prompt is evaluated
        kw: dict[str, Any] = {"temp": temp, "reset": True}
        if top_p is not None:
            kw["top_p"] = top_p
        n = 0
        for token in self.llm.generate(prompt, **kw):
            if self._is_end(token) or (stop is not None and stop.is_set()):
                return
            yield token
            n += 1
            if n >= limit:
                return

    #: llama-cpp-python's own sampling defaults (``Llama.generate``), used unless the request sets them
    DEFAULTS: ClassVar[dict[str, float | int]] = {"temperature": 0.8, "top_p": 0.95, "top_k": 40, "min_p": 0.05,
                                                  "repeat_penalty": 1.0}

    def sampling(self, request: Request) -> dict[str, Any]:
        p = request.params
        out: dict[str, Any] = dict(self.DEFAULTS)
        given = {"temperature": p.temperature, "top_p": p.top_p}
        out.update({k: v for k, v in given.items() if v is not None})
        out.update(seed=p.seed, max_tokens=p.max_tokens)
        out["defaults"] = [k for k in self.DEFAULTS if given.get(k) is None]
        if out["temperature"] == 0:  # greedy: the other knobs do not matter
            out["defaults"] = []
        return out

    def count_tokens(self, text: str) -> int | None:
        if self.llm is None:
            return None
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, request: Request) -> AsyncIterator[Event]:
        if self.llm is None:
            raise errors.ProviderError(f"{self.spec.ref} is not loaded; call load() first.")
        messages = [m.model_dump() for m in request.messages]
        p = request.params

        def work(emit: Callable[[Event], None], stop_flag: threading.Event) -> None:
            with self._lock:  # one generation at a time per loaded model
                llm = self.llm
                prompt = self._prompt(messages)
                room = llm.n_ctx() - len(prompt)
                if room <= 0:
                    raise errors.BadRequestError(
                        f"The prompt has {len(prompt)} tokens, more than the context of {llm.n_ctx()}; "
                        "raise the n_ctx option or shorten the prompt."
                    )
                limit = min(p.max_tokens or room, room)
                if p.seed is not None:
                    llm.set_seed(p.seed)
                temp = self.DEFAULTS["temperature"] if p.temperature is None else float(p.temperature)
                decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
                text, n_out, reason = "", 0, "stop"
                reused = self.reusable_prefix(prompt) if self.spec.options.get("prefix_cache", False) else 0
                emit(Sent(perf_counter_ns()))
                for token in self._tokens(prompt, temp, p.top_p, limit, stop_flag):
                    t = perf_counter_ns()
                    n_out += 1
                    piece = decoder.decode(llm.detokenize([token], special=False))
                    if piece:
                        text += piece
                        emit(Delta(t, piece))
                    if p.stop and any(s in text for s in p.stop):
                        break
                else:
                    if n_out >= limit:
                        reason = "length"
                emit(UsageReport(Usage(input_tokens=len(prompt), output_tokens=n_out, method="exact",
                                       cached_input_tokens=reused or None)))
                emit(Finish(perf_counter_ns(), reason))

        return stream_from_thread(work, owner=self)

    async def aclose(self) -> None:
        # never free the model under a running generation thread (a stopped run would segfault): stop and
        # join them first; one that does not end in time keeps the model (leaked, not freed under it)
        if self.llm is not None and self.stop_generation():
            self.llm.close()
        self.llm = None
