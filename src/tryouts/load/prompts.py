"""Synthetic load-test prompts of a given token-length distribution, counted with the model's real tokenizer.

A length is ``MEAN``, ``MEAN:STDEV`` or ``MEAN:STDEV:MIN:MAX`` tokens: each request's length is drawn from a
normal distribution (seeded), rounded and clipped to ``MIN..MAX`` (1 and unbounded by default). A prompt
of ``n`` tokens is built from a fixed English word list, shuffled by the seed, and cut so that the
tokenizer counts exactly ``n`` tokens in its text (:class:`~tryouts.tokens.TokenCounter` ``count``: the
message content, no chat template; the server's ``prompt_tokens`` adds the template's own tokens, which
``count_prompt`` gives). Each prompt starts with its request number, so no two share a prefix and a
server's prompt cache cannot serve one from another (docs/metrics.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

#: the words synthetic prompts are made of (common, plain, tokenized alike by most vocabularies)
WORDS = (
    "the of and to in is was that for on with as by at from this be are or an it not which have but one all "
    "were when we there can been has more if will its no would about into than time only new some could them "
    "these two may first then do any like my now over such our man me even most made after also did many off "
    "before must well back through years much where your way down should because long each just those people "
    "how too little state good very make world still own see men work year here between both under never "
    "city river light water house music story garden morning window table letter mountain summer winter "
    "market teacher village doctor engine bridge forest island library number question answer reason"
).split()


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution: normal with ``mean`` and ``stdev``, clipped to ``low..high``."""

    mean: int
    stdev: float = 0.0
    low: int = 1
    high: int | None = None

    @classmethod
    def parse(cls, text: str, what: str) -> Lengths:
        parts = text.split(":")
        try:
            if not 1 <= len(parts) <= 4:
                raise ValueError
            mean = int(parts[0])
            stdev = float(parts[1]) if len(parts) > 1 else 0.0
            low = int(parts[2]) if len(parts) > 2 else 1
            high = int(parts[3]) if len(parts) > 3 else None
        except ValueError:
            raise UsageError(f"{what} {text!r} is not MEAN, MEAN:STDEV or MEAN:STDEV:MIN:MAX tokens, e.g. "
                             f"{what} 256:64 or {what} 256:64:32:1024.") from None
        if mean < 1 or stdev < 0 or low < 1 or (high is not None and high < max(low, 1)) or mean > 1_000_000:
            raise UsageError(f"{what} {text!r}: the mean and the minimum must be at least 1 (at most 1,000,000), "
                             "the standard deviation 0 or more, and the maximum at least the minimum.")
        return cls(mean, stdev, low, high)

    def draw(self, rng: random.Random) -> int:
        n = round(rng.gauss(self.mean, self.stdev)) if self.stdev else self.mean
        n = max(self.low, n)
        return min(self.high, n) if self.high is not None else n


def prompt_of(count: Any, n_tokens: int, index: int, rng: random.Random) -> str:
    """A text of exactly ``n_tokens`` tokens by ``count`` (or the nearest below, when no cut gives exactly
    that many), starting with ``index``."""
    head = f"{index}:"
    words = [rng.choice(WORDS) for _ in range(n_tokens + 8)]
    while count(head + " " + " ".join(words)) < n_tokens:  # a vocabulary that merges words: add more
        words += [rng.choice(WORDS) for _ in range(n_tokens)]
    lo, hi = 0, len(words)  # the most words whose text has at most n_tokens tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(head + " " + " ".join(words[:mid])) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return (head + " " + " ".join(words[:lo])).rstrip()


def synthetic_prompts(n: int, lengths: Lengths, counter: Any, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` prompts, each with its token count (content tokens by ``counter.count``)."""
    sizes, words = random.Random(seed), random.Random(seed + 1)  # the lengths drawn do not depend on the words
    out = []
    for i in range(n):
        text = prompt_of(counter.count, lengths.draw(sizes), i, words)
        out.append((text, counter.count(text)))
    return out


def output_lengths(n: int, lengths: Lengths, seed: int = 0) -> list[int]:
    """Each request's ``max_tokens``, drawn from ``lengths`` (its own seeded stream, apart from the prompts')."""
    rng = random.Random(seed + 7919)
    return [lengths.draw(rng) for _ in range(n)]
