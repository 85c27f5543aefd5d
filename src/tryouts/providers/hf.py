"""Hugging Face transformers causal LMs, in process (chat generation; the ``task`` option's pipelines are
providers/hf_pipelines.py).

``hf:./path/to/folder`` loads a local folder; ``hf:ORG/NAME`` a Hub id through the Hub cache
(``HF_HOME``; ``HF_HUB_OFFLINE=1`` is respected, so an uncached model fails with advice instead of a
download). The model is loaded once per run; the load and a one-token warm-up are timed apart from
TTFT. Generation runs in a thread; each new token is stamped in that thread as soon as ``generate``
hands it over, and text is detokenized incrementally so multi-byte characters are never split.

Options: ``dtype`` (auto | float32 | bfloat16 | float16), ``device`` (auto | cpu | cuda | cuda:N | mps),
``quantization`` (int8 | int4 | nf4: bitsandbytes, CUDA only; a clear error elsewhere), ``device_map``
(e.g. auto, to spread a large model over GPUs and CPU), ``task`` (a transformers pipeline task such as
text-classification, token-classification, translation, summarization, feature-extraction: the model
runs as that pipeline on the last user message, and its result arrives as one JSON chunk; translation,
summarization and text2text-generation, which transformers 5 no longer ships as pipelines, run a
seq2seq model's ``generate`` and answer in those pipelines' format), ``pipeline_kwargs`` (a mapping passed
on each pipeline call, e.g. ``{"aggregation_strategy": "simple"}`` for token-classification; for the seq2seq
tasks ``prefix``, ``src_lang``, ``tgt_lang`` and generate() arguments),
``revision``, ``trust_remote_code`` (default false), ``warmup`` (default true), ``batch_size`` (default 1:
in suite runs, generate that many cases together; each sequence's tokens are still stamped as they are
produced, so TTFT and TPOT stay per request, measured from the batch's start), ``gguf_file`` (a GGUF file's
name in the folder or Hub repository given as the model), ``cache`` / ``compile`` / ``max_cache_len`` (static KV
cache and torch.compile, compiled during load: providers/hf_fast.py, docs/gpu.md).

GGUF: ``hf:./path/model.gguf`` (or a folder or Hub id with ``gguf_file``; a folder without config.json that
holds a single GGUF uses it) loads tokenizer and model with ``from_pretrained(folder, gguf_file=name)``:
transformers dequantizes the weights (to ``dtype``) and rebuilds the tokenizer, chat template included, from
the file's metadata. Architectures transformers does not convert fail with advice to use ``llamacpp:``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Sent, Usage, UsageReport
from . import hf_fast
from .base import Provider, stream_from_thread
from .hf_pipelines import PipelineTask

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_QUANT = ("int8", "int4", "nf4")


def looks_like_path(model: str) -> bool:
    """True when ``model`` is meant as a filesystem path rather than a Hub id."""
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists()


class IncrementalDetokenizer:
    """Turns a growing list of token ids into text deltas in O(1) decode work per token.

    Decodes a short window (ids since the last emitted boundary) twice: the text already emitted
    and the text with the new ids; the difference is the delta. A window ending in an incomplete
    UTF-8 sequence (decoded as U+FFFD) is held back until it completes.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.ids: list[int] = []
        self.prefix = 0
        self.read = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def add(self, new_ids: list[int]) -> str:
        self.ids.extend(new_ids)
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""


def _as_path(path: Path) -> str:
    """``path`` as written after ``hf:`` so it reads as a path, not a Hub id (``./models/x``)."""
    text = str(path)
    return text if path.is_absolute() or text.startswith(("./", "../", "~")) else f"./{text}"


def _local_gguf(ref: str, folder: Path, name: Any) -> str | None:
    """The GGUF file to load from ``folder``: ``name`` (checked), else the folder's only GGUF when it has no
    config.json, else None (a transformers folder)."""
    from ..gguf_meta import find_gguf_files, is_gguf

    if not name:
        if (folder / "config.json").is_file():
            return None
        found = find_gguf_files(folder)
        if len(found) > 1:
            raise errors.UsageError(f"{ref}: the folder holds several GGUF files ({', '.join(p.name for p in found)}) "
                                    "and no config.json; pick one with -o gguf_file=NAME or hf:FOLDER/NAME.")
        if found:
            return found[0].name
        if not (folder / "adapter_config.json").is_file():
            ggufs = [p for p in sorted(folder.iterdir()) if p.is_file() and is_gguf(p)][:3]
            if ggufs:
                raise errors.UsageError(
                    f"{ref}: the folder has no config.json; it holds the GGUF file {ggufs[0].name!r}: give the file, "
                    f"hf:{_as_path(folder / ggufs[0].name)}, or -o gguf_file={ggufs[0].name} (GGUF files usually end "
                    "in .gguf).")
            raise errors.ModelNotFoundError(
                f"{ref}: the folder {str(folder)!r} has no config.json and no .gguf file: give a folder saved by "
                "save_pretrained (config.json and weights), a GGUF file as hf:./folder/file.gguf, or the folder "
                "with -o gguf_file=NAME.")
        return None
    path = folder / str(name)
    if not path.is_file():
        others = ", ".join(p.name for p in find_gguf_files(folder)) or "none"
        raise errors.ModelNotFoundError(f"{ref}: no file {str(name)!r} in {str(folder)!r} (GGUF files there: {others}).")
    if not is_gguf(path):
        raise errors.ModelNotFoundError(
            f"{ref}: {str(path)!r} is not a GGUF file (it does not start with the bytes 'GGUF'). Give a .gguf "
            "model file, or a folder with config.json and weights."
        )
    return path.name


def _quiet_gguf_progress() -> Any:
    """transformers draws its own tqdm bar while it dequantizes a GGUF; hide it for the load (our view shows
    progress), restoring the module's tqdm afterwards."""
    import contextlib
    import functools

    @contextlib.contextmanager
    def quiet() -> Any:
        try:
            import transformers.modeling_gguf_pytorch_utils as gguf_utils
        except ImportError:
            yield
            return
        original = getattr(gguf_utils, "tqdm", None)
        if original is None:
            yield
            return
        gguf_utils.tqdm = functools.partial(original, disable=True)
        try:
            yield
        finally:
            gguf_utils.tqdm = original

    return quiet()


class HFProvider(Provider):
    """A transformers ``AutoModelForCausalLM`` with its tokenizer's chat template."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        dtype = str(spec.options.get("dtype", "auto"))
        if dtype not in _DTYPES:
            raise errors.UsageError(f"{spec.ref}: dtype {dtype!r} is not one of {', '.join(_DTYPES)}.")
        quant = spec.options.get("quantization")
        if quant is not None and quant not in _QUANT:
            raise errors.UsageError(f"{spec.ref}: quantization {quant!r} is not one of {', '.join(_QUANT)}.")
        self.source = spec.model
        self.gguf_file: str | None = None
        gguf_opt = spec.options.get("gguf_file")
        if gguf_opt is not None and (not isinstance(gguf_opt, str) or not gguf_opt.strip()):
            raise errors.UsageError(f"{spec.ref}: gguf_file must be a file name, e.g. -o gguf_file=model-Q4_K_M.gguf.")
        if looks_like_path(spec.model):
            path = Path(spec.model).expanduser()
            if path.is_file():
                if gguf_opt:
                    raise errors.UsageError(f"{spec.ref}: the model is already a file; drop gguf_file, or give "
                                            "the folder as the model.")
                path, gguf_opt = path.parent, path.name
            elif not path.is_dir():
                raise errors.ModelNotFoundError(
                    f"No model folder or GGUF file at {spec.model!r}. Give a folder with config.json and weights "
                    "(as saved by save_pretrained), a .gguf file, or a Hub id such as hf:Qwen/Qwen2.5-0.5B-Instruct."
                )
            self.source = str(path)
            self.gguf_file = _local_gguf(spec.ref, path, gguf_opt)
        elif gguf_opt:
            self.gguf_file = str(gguf_opt)  # a file of that Hub repository
        if self.gguf_file and quant is not None:
            raise errors.UsageError(f"{spec.ref}: quantization={quant} does not apply to a GGUF file, which transformers "
                                    "dequantizes; run the file as it is quantized with llamacpp:, or drop quantization.")
        task = spec.options.get("task")
        if self.gguf_file and task and task != "text-generation":
            raise errors.UsageError(f"{spec.ref}: task={task} runs a transformers pipeline, which does not load GGUF "
                                    "files; use the model's safetensors folder or Hub id.")
        self.model: Any = None
        self.tokenizer: Any = None
        self.pipe: PipelineTask | None = None  # the task pipeline, when the task option asks for one
        self.device: str = "cpu"
        hf_fast.check_options(spec.ref, spec.options)
        self.plan = hf_fast.FastPlan()  # static cache / compile (providers/hf_fast.py), set in load()

    async def load(self) -> float:
        import asyncio

        t = perf_counter_ns()
        await asyncio.to_thread(self._load)
        return (perf_counter_ns() - t) / 1e6

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own view shows progress; keep the terminal clean
        opts = self.spec.options
        device = str(opts.get("device", "auto"))
        if device == "auto":
            if torch.cuda.is_available():
                device = "cuda"
            elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"
        dtype_name = str(opts.get("dtype", "auto"))
        if dtype_name == "auto":
            dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        else:
            dtype = getattr(torch, dtype_name)
        kw: dict[str, Any] = {"revision": opts.get("revision"),
                              "trust_remote_code": bool(opts.get("trust_remote_code", False))}
        if opts.get("task") and opts["task"] != "text-generation":
            self.pipe = PipelineTask(self.spec, str(opts["task"]), self.source, device, dtype, kw)
            self.model, self.tokenizer, self.device = self.pipe.model, self.pipe.tokenizer, device
            if opts.get("warmup", True):
                self.pipe.warm_up()
            return
        if self.gguf_file:
            self._load_gguf(kw, device, dtype)
            return
        load_kw: dict[str, Any] = {}
        if opts.get("quantization"):
            load_kw = self._quantized(opts["quantization"], device, dtype)
        if opts.get("device_map"):
            load_kw["device_map"] = opts["device_map"]
        try:
            self._check_generator(kw)
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, **kw)
            model = AutoModelForCausalLM.from_pretrained(self.source, dtype=dtype, **kw, **load_kw)
        except OSError as exc:
            raise errors.ModelNotFoundError(
                f"Could not load hf model {self.source!r}: {exc}. If it is a Hub id, it must be in the "
                "Hugging Face cache when offline (download it once with network: "
                f"'hf download {self.source}'), or pass a local folder: hf:./path."
            ) from exc
        self.model = (model if "device_map" in load_kw else model.to(device)).eval()
        self.device = str(self.model.device)
        self.plan = hf_fast.plan_for(self.spec.ref, opts, self.device, self.model)
        if opts.get("warmup", True) or self.plan.compile:  # compiling happens here, never inside a TTFT
            hf_fast.warm_up(self, self.max_batch)

    def _load_gguf(self, kw: dict[str, Any], device: str, dtype: Any) -> None:
        """Tokenizer and model from a GGUF file, dequantized by transformers (module doc)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = {**kw, "gguf_file": self.gguf_file}
        load_kw: dict[str, Any] = {"device_map": self.spec.options["device_map"]} if self.spec.options.get(
            "device_map") else {}
        where = f"{self.source}/{self.gguf_file}" if looks_like_path(self.spec.model) else self.gguf_file
        try:
            with _quiet_gguf_progress():
                self.tokenizer = AutoTokenizer.from_pretrained(self.source, **kw)
                model = AutoModelForCausalLM.from_pretrained(self.source, dtype=dtype, **kw, **load_kw)
        except (OSError, ValueError, KeyError, NotImplementedError) as exc:
            raise errors.ModelNotFoundError(
                f"transformers could not load the GGUF file {where!r} ({type(exc).__name__}: {exc}). It converts "
                "the GGUF architectures it supports (llama, mistral, qwen2, qwen3, gemma, phi3 ...); any GGUF runs "
                f"with llamacpp:{where}."
            ) from exc
        self.model = (model if load_kw else model.to(device)).eval()
        self.device = str(self.model.device)
        if self.spec.options.get("warmup", True):
            self._generate_ids(self._encode([{"role": "user", "content": "Hi"}]), {"max_new_tokens": 1})

    def _check_generator(self, kw: dict[str, Any]) -> None:
        """Refuse, with what to do instead, a model that is not a text generator (a classifier, a NER tagger,
        an encoder, a seq2seq translator): chat prompts need a causal language model."""
        from transformers import AutoConfig

        archs = [str(a) for a in (getattr(AutoConfig.from_pretrained(self.source, **kw), "architectures", None) or [])]
        if not archs or any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            return
        if any(a.endswith("ForConditionalGeneration") for a in archs):
            what, instead = "a sequence-to-sequence model", "tryouts eval-task translation|summarization"
        else:
            what, instead = "not a text generator", "tryouts eval-task classification|ner|embeddings"
        raise errors.UsageError(
            f"{self.spec.ref}: {archs[0]} is {what}, so it cannot answer a chat prompt. Compare it on labeled "
            f"data with {instead} --data FILE -m {self.spec.ref} (docs/tasks.md)."
        )

    def _quantized(self, quant: str, device: str, dtype: Any) -> dict[str, Any]:
        """bitsandbytes 8-bit or 4-bit loading: CUDA only; embeddings and the LM head stay 16-bit."""
        import importlib.util

        if not device.startswith("cuda"):
            raise errors.UsageError(
                f"{self.spec.ref}: quantization={quant} loads through bitsandbytes, whose 8-bit and 4-bit kernels "
                "need a CUDA GPU, and none is available here. On CPU, use dtype=bfloat16 or float32, or a "
                "quantized GGUF with llamacpp:./model-Q4_K_M.gguf."
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise errors.MissingExtraError(f"quantization={quant}", "local", "bitsandbytes")
        import torch
        from transformers import BitsAndBytesConfig

        if quant == "int8":
            config = BitsAndBytesConfig(load_in_8bit=True)
        else:
            compute = dtype if dtype != torch.float32 else torch.bfloat16
            config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4" if quant == "nf4" else "fp4",
                                        bnb_4bit_compute_dtype=compute)
        return {"quantization_config": config, "device_map": "auto"}

    def _encode(self, messages: list[dict[str, str]]) -> Any:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            ids = enc["input_ids"]
        else:  # a base model without a chat template: plain text of the conversation
            text = "\n".join(m["content"] for m in messages)
            ids = tok(text, return_tensors="pt")["input_ids"]
        return ids.to(self.model.device)

    def _generate_ids(self, ids: Any, kwargs: dict[str, Any], streamer: Any = None, stop: Any = None) -> Any:
        import torch

        gen: dict[str, Any] = {"max_new_tokens": 256, "do_sample": False, **kwargs, **self.plan.generate_kwargs()}
        gen["max_new_tokens"] = hf_fast.fit_max_new_tokens(self.plan, int(ids.shape[1]), gen["max_new_tokens"],
                                                           self.spec.ref)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with torch.inference_mode():
            return self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                pad_token_id=pad,
                streamer=streamer,
                stopping_criteria=stop,
                **gen,
            )

    def count_tokens(self, text: str) -> int | None:
        if self.tokenizer is None:
            return None
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sampling(self, request: Request) -> dict[str, Any]:
        """What ``generate`` samples with: the request's values, else the model's own generation config."""
        p, cfg = request.params, getattr(getattr(self, "model", None), "generation_config", None)
        own = {k: getattr(cfg, k, None) for k in ("temperature", "top_p", "top_k")}
        out: dict[str, Any] = {"seed": p.seed, "max_tokens": p.max_tokens}
        if p.temperature is not None or not getattr(cfg, "do_sample", False):  # greedy unless told to sample
            out.update(temperature=p.temperature or 0.0, top_p=p.top_p, top_k=own["top_k"] if p.temperature else None)
            out["defaults"] = [] if p.temperature is not None else ["temperature"]
            return out
        out.update(own)  # the model's generation_config.json samples (do_sample: true)
        out["defaults"] = ["temperature", "top_p", "top_k"]
        return out

    def _gen_kwargs(self, p: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if p.max_tokens is not None:
            kwargs["max_new_tokens"] = p.max_tokens
        if p.temperature:
            kwargs.update(do_sample=True, temperature=p.temperature)
            if p.top_p is not None:
                kwargs["top_p"] = p.top_p
        elif p.temperature == 0:  # greedy, even when the model's generation_config.json samples
            kwargs["do_sample"] = False
        if p.stop:
            kwargs["stop_strings"] = p.stop
            kwargs["tokenizer"] = self.tokenizer
        return kwargs

    @property
    def max_batch(self) -> int:
        return 1 if self.spec.options.get("task") else max(1, int(self.spec.options.get("batch_size", 1)))

    async def run_batch(self, requests: list[Request]) -> list[list[Event]]:
        import asyncio

        if self.model is None:
            raise errors.ProviderError(f"{self.spec.ref} is not loaded; call load() first.")
        return await asyncio.to_thread(self._batch, requests)

    def _batch(self, requests: list[Request]) -> list[list[Event]]:
        """Generate ``requests`` together (left-padded); stamp each sequence's tokens as they come."""
        import torch
        from transformers.generation.streamers import BaseStreamer

        tok = self.tokenizer
        p = requests[0].params
        kwargs = self._gen_kwargs(p)
        prompts = [self._encode([m.model_dump() for m in r.messages])[0].tolist() for r in requests]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(x) for x in prompts)
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompts], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], device=self.model.device)
        ends = set(tok.all_special_ids)
        n = len(requests)
        deltas: list[list[Event]] = [[] for _ in range(n)]
        detoks = [IncrementalDetokenizer(tok) for _ in range(n)]
        done, counts = [False] * n, [0] * n

        class Stamp(BaseStreamer):
            first = True

            def put(self, value: Any) -> None:
                t = perf_counter_ns()
                if self.first:  # the prompts
                    self.first = False
                    return
                for i, token in enumerate(int(v) for v in value.reshape(-1).tolist()):
                    if done[i]:
                        continue
                    if token in ends:  # end of turn (later positions are padding)
                        done[i] = True
                        continue
                    counts[i] += 1
                    text = detoks[i].add([token])
                    if text:
                        deltas[i].append(Delta(t, text))

            def end(self) -> None:
                return None

        if p.seed is not None:
            torch.manual_seed(p.seed)
        gen: dict[str, Any] = {"max_new_tokens": 256, "do_sample": False, **kwargs, **self.plan.generate_kwargs()}
        gen["max_new_tokens"] = hf_fast.fit_max_new_tokens(self.plan, width, gen["max_new_tokens"], self.spec.ref)
        t0 = perf_counter_ns()
        with torch.inference_mode():
            self.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad, streamer=Stamp(), **gen)
        t_end = perf_counter_ns()
        limit = gen["max_new_tokens"]
        return [
            [Sent(t0), *deltas[i],
             UsageReport(Usage(input_tokens=len(prompts[i]), output_tokens=counts[i], method="exact")),
             Finish(t_end, "length" if counts[i] >= limit else "stop")]
            for i in range(n)
        ]

    def stream(self, request: Request) -> AsyncIterator[Event]:
        if self.model is None:
            raise errors.ProviderError(f"{self.spec.ref} is not loaded; call load() first.")
        if self.pipe is not None:
            pipe = self.pipe
            return stream_from_thread(lambda emit, stop: [emit(ev) for ev in pipe.events(request)], owner=self)
        messages = [m.model_dump() for m in request.messages]
        p = request.params
        kwargs = self._gen_kwargs(p)

        def work(emit: Callable[[Event], None], stop_flag: threading.Event) -> None:
            import torch
            from transformers import StoppingCriteria, StoppingCriteriaList
            from transformers.generation.streamers import BaseStreamer

            ids = self._encode(messages)
            n_in = int(ids.shape[1])
            detok = IncrementalDetokenizer(self.tokenizer)
            special = set(self.tokenizer.all_special_ids)

            class Stamp(BaseStreamer):
                first = True

                def put(self, value: Any) -> None:
                    t = perf_counter_ns()
                    if self.first:  # generate() hands over the prompt first
                        self.first = False
                        return
                    text = detok.add([int(v) for v in value.reshape(-1).tolist()])
                    if text:
                        emit(Delta(t, text))

                def end(self) -> None:
                    return None

            class Stop(StoppingCriteria):
                def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                    return torch.full((input_ids.shape[0],), stop_flag.is_set(), dtype=torch.bool)

            if p.seed is not None:
                torch.manual_seed(p.seed)
            t0 = perf_counter_ns()
            emit(Sent(t0))
            out = self._generate_ids(ids, kwargs, Stamp(), StoppingCriteriaList([Stop()]))
            t_end = perf_counter_ns()
            generated = [int(x) for x in out[0, n_in:].tolist()]
            while generated and generated[-1] in special:
                generated.pop()  # a trailing end-of-turn token is not output
            n_out = len(generated)
            emit(UsageReport(Usage(input_tokens=n_in, output_tokens=n_out, method="exact")))
            limit = hf_fast.fit_max_new_tokens(self.plan, n_in, kwargs.get("max_new_tokens", 256), self.spec.ref)
            emit(Finish(t_end, "length" if len(out[0]) - n_in >= limit else "stop"))

        return stream_from_thread(work, owner=self)

    async def aclose(self) -> None:
        self.stop_generation()  # generation threads end before the model goes
        self.model = None
        self.tokenizer = None
        self.pipe = None
