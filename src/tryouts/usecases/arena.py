"""Arena pairs and rankings of a stored run: human votes and judges' votes ranked apart (Bradley-Terry)."""

from __future__ import annotations


def arena_pairs(results: list[dict], voted: set[tuple[int, int]], seed: int | None = None) -> list[tuple[dict, dict]]:
    """Pairs of successful answers to the same cell by two different models, not yet voted on, shuffled.

    Each pair comes in a random order (which answer is shown as A), so position tells nothing about the model.
    """
    import itertools
    import random

    rng = random.Random(seed)
    cells: dict[tuple[int, int], list[dict]] = {}
    for r in results:
        if r["ok"] and r["text"].strip():
            cells.setdefault((r["case_index"], r["repeat_index"]), []).append(r)
    pairs = []
    for group in cells.values():
        for x, y in itertools.combinations(group, 2):
            if x["model_index"] == y["model_index"] or (x["id"], y["id"]) in voted or (y["id"], x["id"]) in voted:
                continue
            pairs.append((x, y) if rng.random() < 0.5 else (y, x))
    rng.shuffle(pairs)
    return pairs


def ranking(votes: list[dict], *, resamples: int = 1000, seed: int = 0) -> dict:
    """Bradley–Terry ratings (with bootstrap intervals) from stored votes; "both bad" votes are counted apart."""
    from ..scoring.statistics import bradley_terry

    decisive = [(v["model_a"], v["model_b"], v["verdict"]) for v in votes if v["verdict"] in ("a", "b", "tie")]
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
    return {"votes": len(votes), "decisive": len(decisive), "ratings": rows}


def rankings(store, run_id: str, source: str = "all", *, resamples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """Ratings per vote source — ``human``, and each judge (``judge:REF``) — never mixed; ``source`` is human,
    judge or all. Sources without votes are left out."""
    groups: dict[str, list[dict]] = {}
    if source in ("human", "all"):
        groups["human"] = store.votes(run_id, "human")
    if source in ("judge", "all"):
        for v in store.votes(run_id, "judge"):
            groups.setdefault(v["source"], []).append(v)
    return {name: ranking(vs, resamples=resamples, seed=seed) for name, vs in groups.items() if vs}
