"""The real model through each local route: Tryouts' TTFT, E2E and token counts against a bare client.

    .venv/bin/python benchmarks/real_model.py [--prompts 20] [--max-tokens 32] [--routes llamacpp,server,hf]
                                              [--repeats 5] [--hf-prompts 10] [--json FILE]

SmolLM2-135M-Instruct (Q4_1 GGUF, ``tryouts.demo.real.ensure_smollm2``), greedy (temperature 0), up to
``--max-tokens`` tokens, on up to 20 prompts (short and long, with and without a system message, one to three
turns). Each prompt goes once through Tryouts (``create_provider`` + ``engine.execute.execute``), once
through a minimal bare client on the same backend, and once more through the bare client (the *control*);
the order of the three rotates through all six permutations from prompt to prompt. Differences are paired
per prompt (Tryouts minus bare) and reported as median and max (the difference of largest magnitude, with its
sign). Control minus bare is the same paired difference between two identical clients: the noise floor of
this machine, against which Tryouts minus bare has to be read (on a shared 2-core machine it is tens of ms
for TTFT, far above a 1 ms target; the llama.cpp counters below get under it in process).

* ``llamacpp`` (in process): the bare client drives the **same** ``llama_cpp.Llama`` object as Tryouts'
  provider (``provider.llm``, so both use one model instance, one context and the same threads): it formats
  the conversation with the GGUF's chat template through its own ``Jinja2ChatFormatter``, calls
  ``llm.reset()`` (Tryouts' provider starts every request from an empty KV cache) and iterates
  ``llm.generate(tokens, temp=0)``, stamping ``perf_counter_ns`` before ``generate`` (t0), at the first
  non-end token and at the last. llama.cpp's own counters (``llama_perf_context``, reset before every
  request) are the third reference: ``n_p_eval`` is the prompt tokens evaluated in batches of more than one
  token (the whole prompt while it fits one batch, 512 tokens), ``n_eval`` the tokens evaluated one at a
  time, i.e. the sampled tokens fed back. Every output token but the last is fed back, and a final end-of-turn
  token is sampled but not output, so N_out = ``n_eval`` when the answer ended and ``n_eval + 1`` when it was
  cut at ``max_tokens``. ``t_p_eval_ms`` (the prompt's evaluation) lies inside TTFT, so
  TTFT - ``t_p_eval_ms`` measured within one request is the client's and the sampler's share of TTFT,
  free of the run-to-run noise of the evaluation itself: compared between Tryouts and the bare client it
  resolves fractions of a millisecond on a noisy machine. Likewise E2E - (``t_p_eval_ms`` + ``t_eval_ms``).
* ``server``: llama-cpp-python's OpenAI-compatible server (``tryouts.demo.server.llamacpp_server``, a
  subprocess on 127.0.0.1). Tryouts: ``openai-compat:URL#smollm2`` with ``tokenizer=<the GGUF>`` (the server
  sends no usage when streaming, so Tryouts counts with the GGUF's tokenizer and chat template). Bare:
  ``http.client`` on one keep-alive connection, t0 just before the request is written, TTFT at the first SSE
  data line whose delta carries non-empty content, E2E at the last such line. Ground truth for the counts:
  the server's own ``usage`` for the same request sent with ``"stream": false``. The server runs one request
  at a time (and aborts a running one when another arrives), so everything is sent strictly one after the
  other; and it reuses the previous request's prompt prefix from its KV cache, so a short cache-breaker
  request (system "Warm-up.", max_tokens 1) goes before every timed request, through the same client and
  connection as the timed request (this also keeps each client's keep-alive connection fresh: uvicorn closes
  idle ones after 5 s).
* ``hf``: transformers loading the same GGUF (``hf:<the GGUF>``, dequantized to float32). The bare loop reuses
  the provider's loaded model (``provider.model``; a second 30-60 s load is not worth it on 2 cores) with a
  tokenizer it loads itself (``AutoTokenizer.from_pretrained(folder, gguf_file=name)``), formats with
  ``apply_chat_template(..., add_generation_prompt=True)`` and calls ``model.generate`` (greedy) with a
  streamer that stamps the first and last non-special token. Ground truth for the counts: that tokenizer's
  templated prompt and the generated ids (a trailing end-of-turn token excluded). ``--hf-prompts`` (default 10)
  bounds this slower route.

Repeat spread: one long prompt (~500 tokens) ``--repeats`` times through Tryouts on each route, reported as
(max - min) / median of TTFT. On the server route twice: back to back (the server reuses the whole prompt
from its cache after the first, which is its behaviour, not a measurement error) and with a cache-breaker
before each repeat.

Prints a Markdown table per route for benchmarks/RESULTS.md and a JSON line with the summary; ``--json FILE``
writes the summary and every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from urllib.parse import urlsplit

from tryouts.engine.execute import execute
from tryouts.errors import TryoutsError
from tryouts.providers import create_provider
from tryouts.types import GenParams, Message, ModelSpec, Request

N_CTX = 2048
TIMEOUT_S = 300.0  # one request, any route: far above the slowest (a 500-token prompt on a busy 2-core machine)

RIVER = (
    "The river runs past the old mill, under the stone bridge and out into the marshes, where herons wait "
    "in the reeds and the tide comes in twice a day. In winter the water rises over the towpath; in summer "
    "children swim off the jetty and the ferry carries bicycles across for a coin. "
)
REPORT = (
    "Quarterly report. Sales in the northern region rose by twelve percent, driven by the new bakery line, "
    "while the southern region stayed flat after the warehouse fire in March. Staff turnover fell to eight "
    "percent. The board approved two new delivery vans and a pilot of Saturday opening in three shops. "
    "Customer complaints were mostly about late deliveries on Mondays, which the logistics team traces to "
    "the weekend backlog; a second early shift starts next month. "
)
RULES = (
    "You are the help desk assistant of a small public library. Be polite and brief. Opening hours are 9 to 18 "
    "on weekdays and 10 to 14 on Saturdays; the library is closed on Sundays. Members may borrow up to eight "
    "books for three weeks and renew them twice online. Late returns cost twenty cents a day per book. Lost "
    "cards are replaced at the front desk for two euros. Never give legal or medical advice; point people to "
    "the reference desk instead. "
)
#: the repeat-spread prompt: about 500 tokens with the template
LONG_PROMPT: list[tuple[str, str]] = [
    ("system", "You summarise documents faithfully."),
    ("user", "Summarise the following notes in two sentences, then say which of them matters most to a new member "
             "of staff.\n\n" + RIVER + REPORT * 3 + RULES + "In winter the water rises over the towpath."),
]

#: 20 conversations: short and long, with and without a system message, one to three turns
PROMPTS: list[list[tuple[str, str]]] = [
    [("user", "What is the capital of France? Answer in one sentence.")],
    [("user", "Hi")],
    [("user", "Name three primary colours.")],
    [("system", "You are a terse assistant. Answer in one sentence."), ("user", "Why is the sky blue?")],
    [("system", "You are a helpful assistant."), ("user", "Write a haiku about autumn.")],
    [("user", "Summarise this text in one sentence:\n\n" + RIVER)],
    [("system", "Answer with a list."), ("user", "Summarise: " + RIVER * 3)],
    [("user", "What is 2 + 2?"), ("assistant", "2 + 2 = 4."), ("user", "And times three?")],
    [("user", "Translate to French: good morning, how are you?")],
    [("user", "Explain recursion to a child.")],
    [("system", RULES), ("user", "Can I borrow ten books at once?")],
    [("user", "def add(a, b):\n    return a + b\n\nWhat does this Python function do?")],
    [("user", '{"name": "Ada", "born": 1815}\nWho is this JSON about?')],
    [("system", "You are a travel guide."), ("user", "I am in Lyon for a day. What should I eat?")],
    [("user", "Count from one to ten in words.")],
    [("user", "Read this report and list the two biggest problems.\n\n" + REPORT * 2)],
    [("user", "Give me a long story about a dragon who learns to bake bread, with dialogue.")],
    [("system", "You summarise documents faithfully."), ("user", "Summarise:\n\n" + REPORT + RIVER * 2 + RULES)],
    [("user", "List the planets of the solar system."), ("assistant", "Mercury, Venus, Earth, Mars."),
     ("user", "Go on.")],
    [("user", "Write a Python function that reverses a string.")],
]

BREAKER = [{"role": "system", "content": "Warm-up."}, {"role": "user", "content": "Warm-up request"}]


# ---- helpers ------------------------------------------------------------------------------------


def as_dicts(conv: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in conv]


def as_request(messages: list[dict[str, str]], max_tokens: int) -> Request:
    return Request(messages=[Message(**m) for m in messages], params=GenParams(max_tokens=max_tokens, temperature=0))


def ms(a_ns: int, b_ns: int) -> float:
    return (b_ns - a_ns) / 1e6


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def extreme(values: list[float]) -> float | None:
    """The value of largest magnitude, with its sign."""
    return max(values, key=abs) if values else None


def spread(values: list[float]) -> float | None:
    """(max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else None


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if digits else f"{value:+.0f}"


def check(result: Any, what: str) -> Any:
    """A Tryouts result, or a clear stop when it failed."""
    if not result.ok:
        raise SystemExit(f"{what}: Tryouts' request failed ({result.error_kind}): {result.error}")
    if result.timing.ttft_ms is None:
        raise SystemExit(f"{what}: Tryouts' request produced no content, so it has no TTFT.")
    return result


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


#: who goes first: the three clients in every order, cycled from prompt to prompt
ORDERS = list(itertools.permutations(("tryouts", "bare", "control")))

Client = Callable[[list[dict[str, str]], str], Awaitable[dict[str, Any]]]


async def interleaved(route: str, prompts: list, clients: dict[str, Client],
                      after: Callable[[list[dict[str, str]], dict[str, Any]], Awaitable[None]] | None = None,
                      ) -> list[dict[str, Any]]:
    """Each prompt through Tryouts, the bare client and the bare client again (the control), in a rotating order.

    The control is a second, independent run of the bare client: control − bare is the noise floor of a paired
    difference on this machine, against which Tryouts − bare is read.
    """
    samples = []
    for i, conv in enumerate(prompts):
        messages = as_dicts(conv)
        s: dict[str, Any] = {"prompt": i}
        for who in ORDERS[i % len(ORDERS)]:
            s.update({f"{who}_{k}": v for k, v in (await clients[who](messages, f"{route} prompt {i}")).items()})
        if after is not None:
            await after(messages, s)
        samples.append(s)
        say(f"  {route} {i + 1}/{len(prompts)}: in {s['tryouts_in']}/{s.get('truth_in')} out {s['tryouts_out']}/"
            f"{s.get('truth_out')}, TTFT Tryouts {s['tryouts_ttft_ms']:.1f}, bare {s['bare_ttft_ms']:.1f}, "
            f"control {s['control_ttft_ms']:.1f} ms")
    return samples


def summarise(samples: list[dict[str, Any]], extra: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Paired differences over ``samples`` (each holds the tryouts_* / bare_* / control_* / truth_* fields)."""
    def diffs(a: str, b: str) -> list[float]:
        return [s[a] - s[b] for s in samples if s.get(a) is not None and s.get(b) is not None]

    out: dict[str, Any] = {"n": len(samples)}
    pairs = {
        "ttft_diff_ms": ("tryouts_ttft_ms", "bare_ttft_ms"),
        "control_ttft_diff_ms": ("control_ttft_ms", "bare_ttft_ms"),
        "e2e_diff_ms": ("tryouts_e2e_ms", "bare_e2e_ms"),
        "control_e2e_diff_ms": ("control_e2e_ms", "bare_e2e_ms"),
        "input_diff": ("tryouts_in", "truth_in"),
        "output_diff": ("tryouts_out", "truth_out"),
        **(extra or {}),
    }
    for key, (a, b) in pairs.items():
        d = diffs(a, b)
        out[key] = {"median": med(d), "max": extreme(d), "n": len(d)}
    for who in ("tryouts", "bare", "control"):
        out[f"{who}_ttft_ms_median"] = med([s[f"{who}_ttft_ms"] for s in samples])
    out["same_text"] = sum(1 for s in samples if s.get("tryouts_text") == s.get("bare_text"))
    out["methods"] = sorted({str(s.get("tryouts_method")) for s in samples})
    return out


def repeat_stats(reps: list[dict[str, Any]]) -> dict[str, Any]:
    ttfts = [r["ttft_ms"] for r in reps]
    out = {"n": len(ttfts), "input_tokens": reps[0]["in"], "ttft_ms": ttfts, "spread": spread(ttfts)}
    if "t_p_eval_ms" in reps[0]:
        evals = [r["t_p_eval_ms"] for r in reps]
        out.update(t_p_eval_ms=evals, t_p_eval_spread=spread(evals))
    return out


# ---- route 1: llama.cpp in process ---------------------------------------------------------------


async def route_llamacpp(path: Path, prompts: list, max_tokens: int, repeats: int) -> dict[str, Any]:
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    provider = create_provider(ModelSpec.parse(f"llamacpp:{path}", {"n_ctx": N_CTX}))
    load_ms = await provider.load()
    llm = provider.llm
    ctx, n_batch = llm._ctx.ctx, llm.n_batch
    eos, bos = llm.token_eos(), llm.token_bos()
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
    )

    def perf(n_in: int, cut: bool) -> dict[str, float]:
        """llama.cpp's counters since the last reset, and the counts they imply (module docstring)."""
        p = llama_cpp.llama_perf_context(ctx)
        tail = 1 if n_in > n_batch and n_in % n_batch == 1 else 0  # a one-token last batch counts as n_eval
        return {"n_p_eval": p.n_p_eval, "n_eval": p.n_eval, "t_p_eval_ms": p.t_p_eval_ms, "t_eval_ms": p.t_eval_ms,
                "llama_in": p.n_p_eval + tail, "llama_out": p.n_eval - tail + (1 if cut else 0)}

    async def bare(messages: list[dict[str, str]], what: str) -> dict[str, Any]:
        tokens = llm.tokenize(formatter(messages=messages).prompt.encode("utf-8"), add_bos=False, special=True)
        llm.reset()  # as Tryouts' provider does: nothing reused from the previous request
        llama_cpp.llama_perf_context_reset(ctx)
        out: list[int] = []
        first = last = 0
        ended = False
        t0 = perf_counter_ns()
        for token in llm.generate(tokens, temp=0.0, reset=True):
            now = perf_counter_ns()
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                ended = True
                break
            first = first or now
            last = now
            out.append(token)
            if len(out) >= max_tokens:
                break
        if not out:
            raise SystemExit(f"{what}: the bare client generated no token")
        return {"ttft_ms": ms(t0, first), "e2e_ms": ms(t0, last), "in": len(tokens), "out": len(out),
                "text": llm.detokenize(out).decode("utf-8", errors="replace"), **perf(len(tokens), not ended)}

    async def tryouts(messages: list[dict[str, str]], what: str) -> dict[str, Any]:
        llama_cpp.llama_perf_context_reset(ctx)
        r = check(await execute(provider, as_request(messages, max_tokens), total_timeout=TIMEOUT_S), what)
        return {"ttft_ms": r.timing.ttft_ms, "e2e_ms": r.timing.e2e_ms, "in": r.usage.input_tokens,
                "out": r.usage.output_tokens, "method": r.usage.method, "finish": r.finish_reason,
                "text": r.text, **perf(r.usage.input_tokens or 0, r.finish_reason != "stop")}

    async def truth(messages: list[dict[str, str]], s: dict[str, Any]) -> None:
        s["truth_in"], s["truth_out"] = s["bare_in"], s["bare_out"]
        for who in ("tryouts", "bare", "control"):  # the client's share of TTFT and E2E (module docstring)
            s[f"{who}_over_ttft_ms"] = s[f"{who}_ttft_ms"] - s[f"{who}_t_p_eval_ms"]
            s[f"{who}_over_e2e_ms"] = s[f"{who}_e2e_ms"] - s[f"{who}_t_p_eval_ms"] - s[f"{who}_t_eval_ms"]

    first = as_dicts(prompts[0])
    await bare(first, "warm-up")  # untimed: both paths once
    await tryouts(first, "warm-up")
    samples = await interleaved("llamacpp", prompts, {"tryouts": tryouts, "bare": bare, "control": bare}, truth)
    summary = summarise(samples, {
        "over_ttft_diff_ms": ("tryouts_over_ttft_ms", "bare_over_ttft_ms"),
        "control_over_ttft_diff_ms": ("control_over_ttft_ms", "bare_over_ttft_ms"),
        "over_e2e_diff_ms": ("tryouts_over_e2e_ms", "bare_over_e2e_ms"),
        "control_over_e2e_diff_ms": ("control_over_e2e_ms", "bare_over_e2e_ms"),
        "input_diff_llama": ("tryouts_in", "tryouts_llama_in"),
        "output_diff_llama": ("tryouts_out", "tryouts_llama_out"),
        "bare_output_diff_llama": ("bare_out", "bare_llama_out"),
    })
    for who in ("tryouts", "bare"):
        summary[f"{who}_over_ttft_ms_median"] = med([s[f"{who}_over_ttft_ms"] for s in samples])
    summary["over_e2e_diff_per_token_ms"] = med([(s["tryouts_over_e2e_ms"] - s["bare_over_e2e_ms"])
                                                 / max(1, s["tryouts_out"] - 1) for s in samples])
    long_messages = as_dicts(LONG_PROMPT)
    reps = [await tryouts(long_messages, f"llamacpp repeat {k}") for k in range(repeats)]
    summary["repeat"] = {"fresh (the provider resets the KV cache)": repeat_stats(reps)}
    summary["load_ms"] = load_ms
    await provider.aclose()
    return {"summary": summary, "samples": samples, "repeats": reps}


# ---- route 2: llama.cpp's server over HTTP -------------------------------------------------------


class BareHTTP:
    """A minimal client: one keep-alive ``http.client`` connection; stamps SSE data lines as they arrive."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port, self.prefix = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)

    def _send(self, body: dict[str, Any]) -> tuple[int, http.client.HTTPResponse]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        t0 = perf_counter_ns()
        try:
            self.conn.request("POST", f"{self.prefix}/chat/completions", body=data, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, ConnectionError):  # the server closed an idle connection: once more
            self.conn.close()
            t0 = perf_counter_ns()
            self.conn.request("POST", f"{self.prefix}/chat/completions", body=data, headers=headers)
            resp = self.conn.getresponse()
        if resp.status != 200:
            raise SystemExit(f"server: HTTP {resp.status}: {resp.read()[:400]!r}")
        return t0, resp

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        _, resp = self._send({**body, "stream": False})
        return json.loads(resp.read())

    def stream(self, body: dict[str, Any]) -> dict[str, Any]:
        t0, resp = self._send({**body, "stream": True})
        first = last = 0
        text, chunks = [], 0
        for _ in range(100_000):  # bounded: far more lines than any answer here has
            line = resp.readline()
            now = perf_counter_ns()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            choice = (json.loads(payload).get("choices") or [{}])[0]
            content = (choice.get("delta") or {}).get("content")
            if content:
                first = first or now
                last = now
                chunks += 1
                text.append(content)
        else:
            raise SystemExit("server: the stream did not end")
        if not first:
            raise SystemExit("server: the bare client got no content (was the request aborted?)")
        return {"ttft_ms": ms(t0, first), "e2e_ms": ms(t0, last), "chunks": chunks, "text": "".join(text)}

    def close(self) -> None:
        self.conn.close()


async def route_server(path: Path, prompts: list, max_tokens: int, repeats: int) -> dict[str, Any]:
    from tryouts.demo.server import llamacpp_server

    def body(messages: list[dict[str, str]], n: int = max_tokens) -> dict[str, Any]:
        return {"model": "smollm2", "messages": messages, "temperature": 0, "max_tokens": n}

    with llamacpp_server(path, alias="smollm2", n_ctx=N_CTX, timeout=120) as base_url:
        provider = create_provider(ModelSpec.parse(f"openai-compat:{base_url}#smollm2", {"tokenizer": str(path)}))
        await provider.load()
        bares = {"bare": BareHTTP(base_url), "control": BareHTTP(base_url)}  # one connection each

        async def tryouts(messages: list[dict[str, str]], what: str, n: int = max_tokens,
                          breaker: bool = True) -> dict[str, Any]:
            if breaker:  # through Tryouts too: the same connection as the timed request
                check(await execute(provider, as_request(BREAKER, 1), total_timeout=TIMEOUT_S), "cache-breaker")
            r = check(await execute(provider, as_request(messages, n), tokenizer_ref=str(path),
                                    total_timeout=TIMEOUT_S), what)
            return {"ttft_ms": r.timing.ttft_ms, "e2e_ms": r.timing.e2e_ms, "in": r.usage.input_tokens,
                    "out": r.usage.output_tokens, "method": r.usage.method, "text": r.text,
                    "chunks": r.timing.n_chunks}

        def bare_client(who: str) -> Client:
            async def run(messages: list[dict[str, str]], what: str) -> dict[str, Any]:
                bares[who].complete(body(BREAKER, 1))
                return bares[who].stream(body(messages))
            return run

        async def truth(messages: list[dict[str, str]], s: dict[str, Any]) -> None:
            bares["bare"].complete(body(BREAKER, 1))
            got = bares["bare"].complete(body(messages))
            usage = got.get("usage") or {}
            s["truth_in"], s["truth_out"] = usage.get("prompt_tokens"), usage.get("completion_tokens")
            s["truth_text"] = got["choices"][0]["message"].get("content") or ""

        try:
            clients = {"tryouts": tryouts, "bare": bare_client("bare"), "control": bare_client("control")}
            for _ in range(2):  # untimed: the server's first requests, every client's connection
                for run in clients.values():
                    await run(as_dicts(prompts[0]), "warm-up")
            samples = await interleaved("server", prompts, clients, truth)
            summary = summarise(samples, {"bare_chunks_vs_truth_out": ("bare_chunks", "truth_out")})
            summary["same_text_as_nonstreamed"] = sum(1 for s in samples if s["tryouts_text"] == s["truth_text"])

            long_messages = as_dicts(LONG_PROMPT)
            back = [await tryouts(long_messages, f"server repeat {k}", breaker=k == 0) for k in range(repeats)]
            broken = [await tryouts(long_messages, f"server repeat {k} after a breaker") for k in range(repeats)]
            summary["repeat"] = {"back to back (the server reuses the cached prompt)": repeat_stats(back),
                                 "cache-breaker before each": repeat_stats(broken)}
        finally:
            for b in bares.values():
                b.close()
            await provider.aclose()
    return {"summary": summary, "samples": samples, "repeats": back + broken}


# ---- route 3: transformers -----------------------------------------------------------------------


async def route_hf(path: Path, prompts: list, max_tokens: int, repeats: int) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    provider = create_provider(ModelSpec.parse(f"hf:{path}"))
    load_ms = await provider.load()
    model = provider.model  # reused (module docstring)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    special = set(tok.all_special_ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    async def bare(messages: list[dict[str, str]], what: str) -> dict[str, Any]:
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = enc["input_ids"].to(model.device)
        stamps: list[int] = []

        class Stamp(BaseStreamer):
            prompt_seen = False

            def put(self, value: Any) -> None:
                now = perf_counter_ns()
                if not self.prompt_seen:  # generate() hands over the prompt first
                    self.prompt_seen = True
                    return
                if int(value.reshape(-1)[0]) not in special:
                    stamps.append(now)

            def end(self) -> None:
                return None

        t0 = perf_counter_ns()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=pad, streamer=Stamp())
        generated = [int(x) for x in out[0, ids.shape[1]:].tolist()]
        while generated and generated[-1] in special:
            generated.pop()
        if not stamps:
            raise SystemExit(f"{what}: the bare client generated no token")
        return {"ttft_ms": ms(t0, stamps[0]), "e2e_ms": ms(t0, stamps[-1]), "in": int(ids.shape[1]),
                "out": len(generated), "text": tok.decode(generated, skip_special_tokens=True)}

    async def tryouts(messages: list[dict[str, str]], what: str) -> dict[str, Any]:
        r = check(await execute(provider, as_request(messages, max_tokens), total_timeout=TIMEOUT_S), what)
        return {"ttft_ms": r.timing.ttft_ms, "e2e_ms": r.timing.e2e_ms, "in": r.usage.input_tokens,
                "out": r.usage.output_tokens, "method": r.usage.method, "text": r.text}

    async def truth(messages: list[dict[str, str]], s: dict[str, Any]) -> None:
        s["truth_in"], s["truth_out"] = s["bare_in"], s["bare_out"]

    first = as_dicts(prompts[0])
    await bare(first, "warm-up")  # untimed: both paths once
    await tryouts(first, "warm-up")
    samples = await interleaved("hf", prompts, {"tryouts": tryouts, "bare": bare, "control": bare}, truth)
    summary = summarise(samples)
    reps = [await tryouts(as_dicts(LONG_PROMPT), f"hf repeat {k}") for k in range(repeats)]
    summary["repeat"] = {"fresh (no cache between requests)": repeat_stats(reps)}
    summary["load_ms"] = load_ms
    await provider.aclose()
    return {"summary": summary, "samples": samples, "repeats": reps}


# ---- report -------------------------------------------------------------------------------------


def table(route: str, s: dict[str, Any]) -> str:
    def row(label: str, key: str, digits: int = 2) -> str:
        d = s.get(key) or {}
        return f"| {label} | {fmt(d.get('median'), digits)} | {fmt(d.get('max'), digits)} |"

    truth = {"llamacpp": "bare client's tokens", "server": "server's non-streamed usage",
             "hf": "tokenizer (templated prompt) / generated ids"}[route]
    lines = [
        f"**{NAMES[route]}**: n = {s['n']}; median TTFT Tryouts {s['tryouts_ttft_ms_median']:.1f} ms, bare "
        f"{s['bare_ttft_ms_median']:.1f} ms; same text as the bare client {s['same_text']}/{s['n']}; Tryouts' "
        f"token method {', '.join(s['methods'])}",
        "",
        "| measure | median | max |",
        "|---|---:|---:|",
        row("TTFT Tryouts − bare (ms)", "ttft_diff_ms"),
        row("TTFT control − bare (ms): noise floor", "control_ttft_diff_ms"),
        row("E2E Tryouts − bare (ms)", "e2e_diff_ms"),
        row("E2E control − bare (ms): noise floor", "control_e2e_diff_ms"),
    ]
    if "over_ttft_diff_ms" in s:
        lines += [
            row("(TTFT − llama.cpp t_p_eval): Tryouts − bare (ms)", "over_ttft_diff_ms", 3),
            row("(TTFT − llama.cpp t_p_eval): control − bare (ms)", "control_over_ttft_diff_ms", 3),
            row("(E2E − t_p_eval − t_eval): Tryouts − bare (ms)", "over_e2e_diff_ms", 3),
            row("(E2E − t_p_eval − t_eval): control − bare (ms)", "control_over_e2e_diff_ms", 3),
        ]
    lines += [
        row(f"input tokens: Tryouts − {truth}", "input_diff", 0),
        row(f"output tokens: Tryouts − {truth}", "output_diff", 0),
    ]
    if "input_diff_llama" in s:
        lines += [
            row("input tokens: Tryouts − llama.cpp n_p_eval", "input_diff_llama", 0),
            row("output tokens: Tryouts − llama.cpp (n_eval, +1 when cut)", "output_diff_llama", 0),
            row("output tokens: bare − llama.cpp (n_eval, +1 when cut)", "bare_output_diff_llama", 0),
        ]
    if "bare_chunks_vs_truth_out" in s:
        lines.append(row("SSE content chunks (bare client) − server's output tokens", "bare_chunks_vs_truth_out", 0))
    lines += ["", "| repeats of the long prompt through Tryouts | n | input tokens | TTFT min–max (ms) "
              "| spread (max − min) / median |", "|---|---:|---:|---:|---:|"]
    for label, r in s.get("repeat", {}).items():
        t = r["ttft_ms"]
        extra = f" (llama.cpp t_p_eval spread {100 * r['t_p_eval_spread']:.1f} %)" if "t_p_eval_spread" in r else ""
        lines.append(f"| {label} | {r['n']} | {r['input_tokens']} | {min(t):.1f}–{max(t):.1f} | "
                     f"{100 * r['spread']:.1f} %{extra} |")
    return "\n".join(lines)


NAMES = {"llamacpp": "llamacpp (in process)", "server": "server (llama-cpp-python over HTTP)",
         "hf": "hf (transformers, the GGUF dequantized)"}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=20, help="prompts per route (at most 20)")
    ap.add_argument("--hf-prompts", type=int, default=10, help="prompts on the hf route (at most --prompts)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--routes", default="llamacpp,server,hf")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the summary and every sample to this file")
    args = ap.parse_args()
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    known: dict[str, Callable] = {"llamacpp": route_llamacpp, "server": route_server, "hf": route_hf}
    unknown = [r for r in routes if r not in known]
    if unknown:
        ap.error(f"unknown route(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if not 1 <= args.prompts <= len(PROMPTS):
        ap.error(f"--prompts must be 1 to {len(PROMPTS)}")
    if args.max_tokens < 2 or args.repeats < 2:
        ap.error("--max-tokens and --repeats must be at least 2")

    from tryouts.demo.real import ensure_smollm2

    path = Path(ensure_smollm2(say)).resolve()
    results: dict[str, Any] = {}
    started, load_at_start = time.monotonic(), os.getloadavg()
    for route in routes:
        n = min(args.prompts, args.hf_prompts) if route == "hf" else args.prompts
        say(f"{route}: {n} prompts, max_tokens {args.max_tokens}, {args.repeats} repeats")
        t = time.monotonic()
        try:
            results[route] = await known[route](path, PROMPTS[:n], args.max_tokens, args.repeats)
        except ImportError as exc:
            raise SystemExit(f"{route}: a package is missing ({exc}); install Tryouts with the local extras.") from exc
        except TryoutsError as exc:  # a model that does not load, a server that does not start
            raise SystemExit(f"{route}: {exc}") from exc
        results[route]["summary"]["wall_s"] = round(time.monotonic() - t, 1)
        say(f"{route}: done in {time.monotonic() - t:.0f} s")

    load = os.getloadavg()
    print(f"\nSmolLM2-135M-Instruct Q4_1 ({path.name}); greedy, max_tokens {args.max_tokens}; Python "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; load average (1/5/15 min) "
          f"{load_at_start[0]:.2f} / {load_at_start[1]:.2f} / {load_at_start[2]:.2f} at the start, "
          f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end; {time.monotonic() - started:.0f} s\n")
    for route in routes:
        print(table(route, results[route]["summary"]) + "\n")
    summary = {route: results[route]["summary"] for route in routes}
    summary["meta"] = {"model": path.name, "max_tokens": args.max_tokens, "repeats": args.repeats,
                       "load_average_start": load_at_start, "load_average_end": load, "cores": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(summary, default=str))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": {r: results[r]["samples"] for r in routes},
                                         "repeats": {r: results[r]["repeats"] for r in routes}},
                                        indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
