"""What the honest statistics cost: bootstrap intervals at the sizes a run or a labeled data set reaches.

    .venv/bin/python benchmarks/quality_stats.py [--reps 5]

Times (2,000 resamples each, the defaults): `bootstrap_mean` and `paired_bootstrap` over N per-case scores;
`bootstrap_statistic` for the corpus metrics of `tryouts eval-task` — macro-F1 from confusion-matrix cells
(20 labels), entity micro F1 from (tp, fp, fn), corpus BLEU from sacrebleu's sentence statistics — over N
cases; and Bradley–Terry with 1,000 refits on V votes among 6 models. Prints a Markdown table (median of
REPS runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from tryouts.scoring.statistics import bootstrap_mean, bootstrap_statistic, bradley_terry, paired_bootstrap
from tryouts.tasks.metrics import macro_f1, prf


def timed(fn, reps: int) -> float:
    fn()  # warm-up (imports, caches)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in (100, 1_000, 10_000):
        a, b = rng.random(n), rng.random(n)
        rows.append((f"bootstrap_mean, {n:,} cases", timed(lambda a=a: bootstrap_mean(a), args.reps)))
        rows.append((f"paired_bootstrap, {n:,} cases", timed(lambda a=a, b=b: paired_bootstrap(a, b), args.reps)))
    labels = 20
    for n in (200, 2_000):
        cells = np.zeros((n, labels * (labels + 1)))
        gold = rng.integers(0, labels, n)
        pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, labels + 1, n))
        cells[np.arange(n), gold * (labels + 1) + pred] = 1
        rows.append((f"bootstrap_statistic macro-F1 ({labels} labels), {n:,} cases", timed(
            lambda c=cells: bootstrap_statistic(c, lambda t: macro_f1(t.reshape(labels, labels + 1).tolist())),
            args.reps)))
        counts = rng.integers(0, 4, (n, 3))
        rows.append((f"bootstrap_statistic entity F1, {n:,} sentences", timed(
            lambda c=counts: bootstrap_statistic(c, lambda t: prf(*t)["f1"]), args.reps)))
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    for n in (200, 2_000):
        hyps = [" ".join(rng.choice(words, 12)) for _ in range(n)]
        refs = [" ".join(rng.choice(words, 12)) for _ in range(n)]
        stats = np.asarray(bleu._extract_corpus_statistics(hyps, [refs]), dtype=float)
        rows.append((f"bootstrap_statistic corpus BLEU, {n:,} sentences", timed(
            lambda s=stats: bootstrap_statistic(s, lambda t: bleu._compute_score_from_stats(list(t)).score),
            args.reps)))
    models = [f"m{i}" for i in range(6)]
    for votes in (200, 2_000):
        pairs = [tuple(rng.choice(6, 2, replace=False)) for _ in range(votes)]
        data = [(models[i], models[j], "a" if rng.random() < (i + 1) / (i + j + 2) else "b") for i, j in pairs]
        rows.append((f"bradley_terry, {votes:,} votes, 1,000 refits", timed(
            lambda d=data: bradley_terry(d, n_resamples=1000), args.reps)))
    print(f"\n### Statistics ({platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"median of {args.reps} runs)\n")
    print("| What | ms |\n|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:,.1f} |")


if __name__ == "__main__":
    main()
