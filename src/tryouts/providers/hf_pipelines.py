"""The ``hf`` provider's second capability: a model run as a transformers task pipeline (``-o task=...``).

Chat generation (providers/hf.py) streams a causal LM's tokens; a task pipeline (text-classification,
token-classification, feature-extraction, translation, summarization...) runs once on the last user message
and answers with one JSON chunk, which ``tryouts eval-task`` parses. Translation, summarization and
text2text-generation, which transformers 5 no longer ships as pipelines, run a seq2seq model's ``generate``
and answer in those pipelines' format.
"""

from __future__ import annotations

import json
from time import perf_counter_ns
from typing import Any

from .. import errors
from ..types import Delta, Event, Finish, ModelSpec, Request, Sent, Usage, UsageReport

_SEQ2SEQ_TASKS = ("translation", "summarization", "text2text-generation")


class _Seq2SeqPipeline:
    """A seq2seq model (T5, BART, Marian ...) answering like transformers 4's translation pipelines."""

    def __init__(self, task: str, source: str, device: str, dtype: Any, kw: dict[str, Any]) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(source, **kw)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(source, dtype=dtype, **kw).to(device).eval()
        self.key = {"translation": "translation_text", "summarization": "summary_text"}.get(
            task.split("_", 1)[0], "generated_text")
        self.output_tokens = 0  # of the last call, counted exactly (decoding and re-encoding can differ)

    def __call__(self, text: str, prefix: str = "", src_lang: str | None = None, tgt_lang: str | None = None,
                 **generate_kw: Any) -> list[dict[str, str]]:
        import torch

        tok = self.tokenizer
        if src_lang and hasattr(tok, "src_lang"):
            tok.src_lang = src_lang
        if tgt_lang:  # multilingual models (mBART, NLLB) start the output with the target language's token
            if hasattr(tok, "tgt_lang"):
                tok.tgt_lang = tgt_lang
            tid = tok.convert_tokens_to_ids(tgt_lang)
            if isinstance(tid, int) and tid != tok.unk_token_id:
                generate_kw.setdefault("forced_bos_token_id", tid)
        enc = tok(prefix + text, return_tensors="pt", truncation=True).to(self.model.device)
        with torch.inference_mode():
            out = self.model.generate(**enc, **{"do_sample": False, **generate_kw})
        special = set(tok.all_special_ids)
        self.output_tokens = sum(1 for t in out[0, 1:].tolist() if t not in special)  # [0]: decoder start
        return [{self.key: tok.decode(out[0], skip_special_tokens=True, clean_up_tokenization_spaces=False)}]


class PipelineTask:
    """A loaded task pipeline for one ``hf`` model: :meth:`events` answers a request with one JSON chunk."""

    def __init__(self, spec: ModelSpec, task: str, source: str, device: str, dtype: Any, kw: dict[str, Any]) -> None:
        from transformers import pipeline
        from transformers.pipelines import SUPPORTED_TASKS

        self.spec = spec
        self.call_kw = pipeline_kwargs(spec)
        try:
            if task.startswith(_SEQ2SEQ_TASKS) and task not in SUPPORTED_TASKS:
                self.pipe: Any = _Seq2SeqPipeline(task, source, device, dtype, kw)
            else:
                self.pipe = pipeline(task, model=source, device=device, dtype=dtype, **kw)
        except (OSError, KeyError, ValueError) as exc:
            raise errors.ModelNotFoundError(
                f"Could not load {source!r} as a {task!r} pipeline ({exc}). Check the task name and that "
                "the folder or Hub id holds a model for that task."
            ) from exc
        self.model, self.tokenizer = self.pipe.model, self.pipe.tokenizer

    @property
    def seq2seq(self) -> bool:
        return isinstance(self.pipe, _Seq2SeqPipeline)

    def warm_up(self) -> None:
        """One untimed call (a seq2seq model writes one token)."""
        self.pipe("Hi", **{**self.call_kw, **({"max_new_tokens": 1} if self.seq2seq else {})})

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def events(self, request: Request) -> list[Event]:
        """Run the pipeline on the last user message; its result is one JSON text chunk."""
        text = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        call_kw = dict(self.call_kw)
        if self.seq2seq and request.params.max_tokens:
            call_kw.setdefault("max_new_tokens", request.params.max_tokens)
        t0 = perf_counter_ns()
        output = self.pipe(text, **call_kw)
        t = perf_counter_ns()
        rendered = json.dumps(output, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        generated = "".join(
            str(item.get(k, "")) for item in (output if isinstance(output, list) else [output]) if isinstance(item, dict)
            for k in ("translation_text", "summary_text", "generated_text")
        )
        n_out = self.pipe.output_tokens if self.seq2seq else (self.count_tokens(generated) if generated else 0)
        return [Sent(t0), Delta(t, rendered),
                UsageReport(Usage(input_tokens=self.count_tokens(text), output_tokens=n_out, method="exact")),
                Finish(t, "stop")]


def pipeline_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """The ``pipeline_kwargs`` option: a mapping passed on each pipeline call."""
    value = spec.options.get("pipeline_kwargs") or {}
    if not isinstance(value, dict):
        raise errors.UsageError(
            f"{spec.ref}: pipeline_kwargs must be a mapping, "
            f"e.g. -o 'pipeline_kwargs={{aggregation_strategy: simple}}', not {value!r}."
        )
    return dict(value)
