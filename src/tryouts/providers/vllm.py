"""vLLM in process (``vllm:ORG/NAME`` or ``vllm:./folder``), where vLLM and a GPU are present.

vLLM has no CPU wheel, so this module is imported only when a ``vllm:`` model is used; without vLLM the
registry answers with the install hint (``pip install 'tryouts[vllm]'``). For vLLM running as a server,
use the ``vllm-server:`` preset instead.

The engine (``AsyncLLMEngine``) is created once per run (timed as load, with a one-token warm-up); each
request streams ``RequestOutput`` s whose text and token ids are cumulative: the new text is the
difference, stamped when it arrives, and the output token count is exact (``len(token_ids)``).

Options: ``dtype`` (auto, bfloat16, float16), ``gpu_memory_utilization`` (default 0.9), ``max_model_len``,
``tensor_parallel_size``, ``quantization`` (as vLLM names it: awq, gptq, fp8...), ``warmup``, ``price``.
Not exercised by Tryouts' CI (no GPU there); see benchmarks/RESULTS.md for what was checked on a GPU.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from time import perf_counter_ns
from typing import Any

from .. import errors
from ..types import Delta, Event, Finish, GenParams, Message, ModelSpec, Request, Sent, Usage, UsageReport
from .base import Provider


class VLLMProvider(Provider):
    """A model served by vLLM's engine inside this process."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.engine: Any = None
        self.tokenizer: Any = None

    async def load(self) -> float:
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        t = perf_counter_ns()
        opts = self.spec.options
        kw: dict[str, Any] = {"model": self.spec.model, "dtype": opts.get("dtype", "auto"),
                              "gpu_memory_utilization": float(opts.get("gpu_memory_utilization", 0.9))}
        for name in ("max_model_len", "tensor_parallel_size", "quantization"):
            if name in opts:
                kw[name] = opts[name]
        try:
            self.engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**kw))
        except (OSError, ValueError, RuntimeError) as exc:
            raise errors.ModelNotFoundError(
                f"vLLM could not load {self.spec.model!r} ({exc}). Check the model id or folder, and that a "
                "GPU with enough memory is free (see 'tryouts memory' later, or lower gpu_memory_utilization)."
            ) from exc
        tok = self.engine.get_tokenizer()
        self.tokenizer = await tok if inspect.isawaitable(tok) else tok
        if opts.get("warmup", True):
            warm = Request(messages=[Message(role="user", content="Hi")], params=GenParams(max_tokens=1))
            async for _ in self.stream(warm):
                pass
        return (perf_counter_ns() - t) / 1e6

    def _prompt(self, request: Request) -> str:
        messages = [m.model_dump() for m in request.messages]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n".join(m["content"] for m in messages)

    def count_tokens(self, text: str) -> int | None:
        if self.tokenizer is None:
            return None
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        from vllm import SamplingParams

        if self.engine is None:
            raise errors.ProviderError(f"{self.spec.ref} is not loaded; call load() first.")
        p = request.params
        sampling = SamplingParams(
            max_tokens=p.max_tokens or 256,
            temperature=0.0 if p.temperature is None else p.temperature,
            top_p=1.0 if p.top_p is None else p.top_p,
            seed=p.seed,
            stop=p.stop,
        )
        text, n_prompt, n_out, reason = "", None, 0, None
        yield Sent(perf_counter_ns())
        async for out in self.engine.generate(self._prompt(request), sampling, uuid.uuid4().hex):
            t = perf_counter_ns()
            completion = out.outputs[0]
            if len(completion.text) > len(text):
                yield Delta(t, completion.text[len(text):])
                text = completion.text
            n_prompt = len(out.prompt_token_ids or [])
            n_out = len(completion.token_ids)
            reason = completion.finish_reason
        yield UsageReport(Usage(input_tokens=n_prompt, output_tokens=n_out, method="exact"))
        yield Finish(perf_counter_ns(), reason)

    async def aclose(self) -> None:
        engine, self.engine = self.engine, None
        shutdown = getattr(engine, "shutdown", None)
        if shutdown is not None:
            result = shutdown()
            if inspect.isawaitable(result):
                await result
