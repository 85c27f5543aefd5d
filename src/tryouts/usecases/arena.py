"""Arena pairs and rankings of a stored run: human votes and judges' votes ranked apart (Bradley-Terry)."""

from __future__ import annotations

from ..scoring.arena_stats import same_answer

__all__ = ["arena_pairs", "identical_pairs", "ranking", "rankings", "same_answer"]


def _cells(results: list[dict]) -> list[list[dict]]:
    """Successful, non-empty answers grouped by cell (case, repeat)."""
    cells: dict[tuple[int, int], list[dict]] = {}
    for r in results:
        if r["ok"] and r["text"].strip():
            cells.setdefault((r["case_index"], r["repeat_index"]), []).append(r)
    return list(cells.values())


def arena_pairs(results: list[dict], voted: set[tuple[int, int]], seed: int | None = None) -> list[tuple[dict, dict]]:
    """Pairs of successful answers to the same cell by two different models, not yet voted on, shuffled.

    Each pair comes in a random order (which answer is shown as A), so position tells nothing about the model.
    Two answers that are the same text (:func:`same_answer`: equal once whitespace at both ends is trimmed) are
    never a pair: there is nothing to choose between them.
    """
    import itertools
    import random

    rng = random.Random(seed)
    pairs = []
    for group in _cells(results):
        for x, y in itertools.combinations(group, 2):
            if x["model_index"] == y["model_index"] or (x["id"], y["id"]) in voted or (y["id"], x["id"]) in voted:
                continue
            if same_answer(x["text"], y["text"]):
                continue
            pairs.append((x, y) if rng.random() < 0.5 else (y, x))
    rng.shuffle(pairs)
    return pairs


def identical_pairs(results: list[dict]) -> int:
    """How many pairs of two models' answers to the same cell are the same text (never offered for a vote)."""
    import itertools

    return sum(x["model_index"] != y["model_index"] and same_answer(x["text"], y["text"])
               for group in _cells(results) for x, y in itertools.combinations(group, 2))


def ranking(votes: list[dict], *, resamples: int = 1000, seed: int = 0, texts: dict[int, str] | None = None,
            style_control: bool = False) -> dict:
    """Bradley–Terry ratings (with bootstrap intervals and ranks that show ties) from stored votes; "both bad"
    votes are counted apart.

    ``texts`` maps result ids to answers: with it, a vote on two answers that are the same text
    (:func:`same_answer`) counts as a tie whatever its verdict (``identical`` counts such votes), and
    ``style_control`` adds ``style_control``: the ratings refitted with the answers' style as covariates
    (:func:`tryouts.scoring.arena_stats.style_controlled_bt`), ranked the same way.
    """
    from ..scoring.arena_stats import ci_ranks, style_controlled_bt
    from ..scoring.statistics import bradley_terry

    texts = texts or {}

    def same(v: dict) -> bool:
        return same_answer(texts.get(v["result_a"]), texts.get(v["result_b"]))

    rated = [v for v in votes if v["verdict"] in ("a", "b", "tie")]
    verdicts = ["tie" if same(v) else v["verdict"] for v in rated]
    decisive = [(v["model_a"], v["model_b"], verdict) for v, verdict in zip(rated, verdicts, strict=True)]
    both_bad: dict[str, int] = {}
    for v in votes:
        if v["verdict"] == "both_bad":
            for m in (v["model_a"], v["model_b"]):
                both_bad[m] = both_bad.get(m, 0) + 1
    rows = bradley_terry(decisive, n_resamples=resamples, seed=seed)
    for row in rows:
        row["both_bad"] = both_bad.pop(row["model"], 0)
    rows += [{"model": m, "rating": None, "low": None, "high": None, "wins": 0, "losses": 0, "ties": 0, "both_bad": n}
             for m, n in sorted(both_bad.items())]
    out = {"votes": len(votes), "decisive": len(decisive), "identical": sum(map(same, rated)),
           "ratings": ci_ranks(rows)}
    if style_control:
        styled = [(v["model_a"], v["model_b"], verdict, texts[v["result_a"]], texts[v["result_b"]])
                  for v, verdict in zip(rated, verdicts, strict=True)
                  if v["result_a"] in texts and v["result_b"] in texts]
        fit = style_controlled_bt(styled, n_resamples=resamples, seed=seed)
        ci_ranks(fit["ratings"])
        out["style_control"] = fit
    return out


def _texts(store, run_id: str, votes: list[dict]) -> dict[int, str]:
    """The answers the votes are about, by result id (read in chunks: a database bounds a query's parameters)."""
    ids = sorted({v[k] for v in votes for k in ("result_a", "result_b")})
    texts: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        rows, _ = store.results(run_id, columns=["text"], ids=ids[i:i + 500])
        texts.update((r["id"], r["text"]) for r in rows)
    return texts


def rankings(store, run_id: str, source: str = "all", *, resamples: int = 1000, seed: int = 0,
             style_control: bool = False) -> dict[str, dict]:
    """Ratings per vote source — ``human``, and each judge (``judge:REF``) — never mixed; ``source`` is human,
    judge or all. Sources without votes are left out. Votes on identical answers count as ties; with
    ``style_control``, each ranking also holds its style-controlled ratings (see :func:`ranking`)."""
    groups: dict[str, list[dict]] = {}
    if source in ("human", "all"):
        groups["human"] = store.votes(run_id, "human")
    if source in ("judge", "all"):
        for v in store.votes(run_id, "judge"):
            groups.setdefault(v["source"], []).append(v)
    groups = {name: vs for name, vs in groups.items() if vs}
    texts = _texts(store, run_id, [v for vs in groups.values() for v in vs])
    return {name: ranking(vs, resamples=resamples, seed=seed, texts=texts, style_control=style_control)
            for name, vs in groups.items()}
