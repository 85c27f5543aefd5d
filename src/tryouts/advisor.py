"""The selection advisor: constraints in, a ranked short list with reasons out. Deterministic and explainable.

It follows the model-selection framework of the study notes, step by step, over the catalog:

1. **Budget and privacy.** ``privacy=high`` keeps only open-weight models run locally (the data never leaves
   the machine). Otherwise a low budget favours cheap API tiers (no hardware to buy), a high one allows the
   flagships.
2. **Performance.** ``quality=best`` favours the flagship tier (commercial flagships, or the largest open
   models that fit); ``quality=good`` favours the mid tier on a budget (Mistral / Llama-class open models,
   or the small fast API tiers).
3. **Latency.** Under 100 ms: only small models (≤ 4 B active parameters) run locally, or a commercial API's
   fast tier; larger local models are excluded. Measured TTFT from this user's own runs overrides the rule
   when there is one.
4. **Fine-tuning.** For a specialised task (classification, NER) with labelled data (``fine_tune=True``): a
   small fine-tuned encoder is recommended first; without, a larger model is prompted.
5. **Offline.** Only local models.

Hardware: with ``gpu_memory`` the memory estimator decides, per open model, the widest precision that fits
(bf16, then int8, then int4); a model that fits at no precision is excluded. Every candidate gets a score from
fixed points per criterion, and its reasons; ties are broken by name, so the same input always gives the same
list. Excluded models are listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASKS = ("chat", "classification", "ner", "translation", "summarization", "embeddings", "code")
BUDGETS = ("low", "medium", "high")
QUALITIES = ("best", "good")
#: precisions tried, widest first, when a GPU's memory is given
PRECISIONS = ("bf16", "int8", "int4")
#: a small model, for the seeds' "< 100 ms: use a small model or a commercial API"
SMALL_ACTIVE_PARAMS = 4e9


@dataclass(frozen=True)
class Constraints:
    """What the user needs. ``gpu_memory`` in bytes; ``latency_ms`` the largest acceptable time to first token."""

    task: str = "chat"
    budget: str = "medium"
    privacy: str = "normal"
    offline: bool = False
    latency_ms: float | None = None
    gpu_memory: float | None = None
    quality: str = "good"
    fine_tune: bool = False
    context: int = 4096
    top: int = 5

    def check(self) -> None:
        from .errors import UsageError

        for name, value, allowed in (("task", self.task, TASKS), ("budget", self.budget, BUDGETS),
                                     ("quality", self.quality, QUALITIES), ("privacy", self.privacy, ("high", "normal"))):
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}.")
        if self.latency_ms is not None and self.latency_ms <= 0:
            raise UsageError("--latency-ms must be a positive number of milliseconds.")


@dataclass
class Pick:
    """One recommended model: its score, the reasons, and its estimated memory, price and measured figures."""

    id: str
    name: str
    access: str
    score: float
    reasons: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    memory: dict[str, Any] | None = None
    price: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "access": self.access, "score": self.score,
                "reasons": self.reasons, "routes": self.routes, "memory": self.memory, "price": self.price,
                "measured": self.measured}


def _get(entry: Any, name: str, default: Any = None) -> Any:
    if isinstance(entry, dict):
        return entry.get(name, default)
    return getattr(entry, name, default)


def _active_params(entry: Any) -> float | None:
    params = _get(entry, "params")
    if not params:
        return None
    active, total = _get(params, "active"), _get(params, "total")
    return float(active or total) if (active or total) else None


def _blended_price(price: dict[str, Any] | None) -> float | None:
    """USD per million tokens, 3 input : 1 output (a chat-like mix)."""
    if not price or price.get("input_per_mtok") is None or price.get("output_per_mtok") is None:
        return None
    return (3 * float(price["input_per_mtok"]) + float(price["output_per_mtok"])) / 4


def tier(entry: Any, price: dict[str, Any] | None) -> str:
    """flagship, mid or small: from the price for commercial models (blended ≥ $3 / ≤ $1 per million tokens), from
    the total parameters for open ones (≥ 30 B / < 7 B; an MoE's quality follows its total size)."""
    if _get(entry, "access") == "commercial":
        blended = _blended_price(price)
        if blended is None:
            return "mid"
        return "flagship" if blended >= 3.0 else ("small" if blended <= 1.0 else "mid")
    params = _get(entry, "params")
    total = _get(params, "total") if params else None  # quality follows total size (MoE included)
    if total is None:
        return "mid"
    return "flagship" if total >= 30e9 else ("small" if total < 7e9 else "mid")


def recency(entry: Any) -> float:
    """0–1 from the knowledge cutoff (2021 → 0, 2026 → 1): newer models of a tier first."""
    cutoff = str(_get(entry, "knowledge_cutoff") or "")
    try:
        year = int(cutoff[:4]) + (int(cutoff[5:7]) - 1) / 12 if len(cutoff) >= 7 else int(cutoff[:4])
    except ValueError:
        return 0.0
    return min(1.0, max(0.0, (year - 2021) / 5))


#: tasks a chat model can do by prompting (with a lower weight than a model made for the task)
PROMPTABLE = ("classification", "ner", "translation", "summarization")


def recommend(c: Constraints, entries: list[Any], *, price_of=None, memory_of=None,
              measured_of=None, today: str | None = None) -> dict[str, Any]:
    """Rank catalog ``entries`` for constraints ``c``.

    ``price_of(entry)`` → ``{"input_per_mtok", "output_per_mtok", "source"}`` or None; ``memory_of(entry,
    dtype, context)`` → bytes needed or None; ``measured_of(entry)`` → ``{"ttft_p50_ms", "quality", "n"}`` or
    None (from the store). Returns ``{"constraints", "steps", "picks": [Pick.as_dict()], "excluded":
    [{"id", "reason"}], "advice": [str]}``. A model whose provider has shut it down by ``today`` (ISO date;
    default: today) is excluded; one with an announced shutdown is kept with a caution and a lower score.
    """
    c.check()
    import datetime

    today = today or datetime.date.today().isoformat()
    price_of = price_of or (lambda e: None)
    memory_of = memory_of or (lambda e, dtype, context: None)
    measured_of = measured_of or (lambda e: None)
    local_only = c.privacy == "high" or c.offline
    steps = []
    if c.privacy == "high":
        steps.append("Privacy high: open-weight models run locally only (no data sent to a provider).")
    if c.offline:
        steps.append("Offline: only models that run on this machine.")
    if not local_only:
        steps.append({"low": "Low budget: cheap API tiers first (no hardware to buy, pay per token).",
                      "medium": "Medium budget: mid-tier APIs and open models that fit.",
                      "high": "High budget: flagships allowed."}[c.budget])
    steps.append("Quality best: the flagship tier first." if c.quality == "best"
                 else "Quality good: the mid tier on a budget (e.g. Mistral / Llama-class open models, small API tiers).")
    if c.latency_ms is not None and c.latency_ms < 100:
        steps.append(f"Latency under {c.latency_ms:g} ms: a small model (≤ 4 B active parameters) locally, or a "
                     "commercial API's fast tier; measured TTFT from your runs wins when there is one.")
    if c.gpu_memory is not None:
        steps.append(f"Hardware: {c.gpu_memory / 1e9:.0f} GB of GPU memory; each open model at the widest precision "
                     f"that fits ({', '.join(PRECISIONS)}) with a {c.context:,}-token context.")

    picks: list[Pick] = []
    excluded: list[dict[str, str]] = []
    for e in entries:
        eid, tasks, access = _get(e, "id"), list(_get(e, "tasks") or []), _get(e, "access")
        prompted = c.task not in tasks and c.task in PROMPTABLE and "chat" in tasks
        if c.task not in tasks and not prompted:
            continue
        shutdown = _get(e, "shutdown")
        if shutdown and shutdown <= today[: len(shutdown)]:
            excluded.append({"id": eid, "reason": f"retired: its provider shut it down on {shutdown}"})
            continue
        open_model = access == "open"
        if local_only and not open_model:
            excluded.append({"id": eid, "reason": "commercial API: " + ("offline" if c.offline else "privacy high")})
            continue
        price = price_of(e)
        t = tier(e, price)
        active = _active_params(e)
        measured = measured_of(e)
        pick = Pick(id=eid, name=_get(e, "name") or eid, access=access, score=0.0, routes=list(_get(e, "routes") or []),
                    price=price, measured=measured)
        if shutdown:
            pick.reasons.append(f"deprecated: its provider shuts it down on {shutdown} (plan a successor)")
            pick.score -= 2.0
        # hardware: the widest precision that fits
        if open_model:
            fit = None
            for dtype in PRECISIONS:
                need = memory_of(e, dtype, c.context)
                if need is None:
                    break
                if c.gpu_memory is None or need <= c.gpu_memory:
                    fit = (dtype, need)
                    break
            if c.gpu_memory is not None and memory_of(e, PRECISIONS[0], c.context) is None:
                excluded.append({"id": eid, "reason": "memory unknown (no architecture in the catalog): cannot "
                                 "check that it fits"})
                continue
            if c.gpu_memory is not None and fit is None:
                need = memory_of(e, PRECISIONS[-1], c.context)
                excluded.append({"id": eid, "reason": f"needs {need / 1e9:.1f} GB even at int4; "
                                 f"{c.gpu_memory / 1e9:.0f} GB available"})
                continue
            if fit is not None:
                pick.memory = {"dtype": fit[0], "bytes": fit[1], "context": c.context}
                if c.gpu_memory is not None:
                    pick.reasons.append(f"fits in {c.gpu_memory / 1e9:.0f} GB at {fit[0]} ({fit[1] / 1e9:.1f} GB)")
                    pick.score += {"bf16": 2.0, "int8": 1.0, "int4": 0.5}[fit[0]]
        # latency
        if c.latency_ms is not None:
            ttft = (measured or {}).get("ttft_p50_ms")
            if ttft is not None:
                if ttft > c.latency_ms:
                    excluded.append({"id": eid, "reason": f"measured TTFT p50 {ttft:.0f} ms > {c.latency_ms:g} ms"})
                    continue
                pick.reasons.append(f"measured TTFT p50 {ttft:.0f} ms ≤ {c.latency_ms:g} ms (your runs)")
                pick.score += 3.0
            elif c.latency_ms < 100:
                if open_model and (active is None or active > SMALL_ACTIVE_PARAMS):
                    size = f"{active / 1e9:.0f} B" if active else "unknown size"
                    excluded.append({"id": eid, "reason": f"local {size} model: too slow for < 100 ms (small models only)"})
                    continue
                if not open_model and t != "small":
                    excluded.append({"id": eid, "reason": f"{t}-tier API: fast tiers only for < 100 ms"})
                    continue
                pick.reasons.append("small model: suits < 100 ms" if open_model else "fast API tier: suits < 100 ms "
                                    "(check with tryouts compare: network time counts)")
                pick.score += 1.0
        # quality and budget
        if prompted:
            pick.reasons.append(f"a chat model prompted for {c.task}")
        elif tasks and tasks[0] == c.task:
            pick.score += 0.5  # made for this task first (a code model is not the best chat model)
        if c.quality == "best":
            pick.score += {"flagship": 4.0, "mid": 2.0, "small": 0.5}[t] + recency(e)
            if t == "flagship":
                pick.reasons.append("flagship tier: the best quality")
        else:
            pick.score += {"flagship": 1.0, "mid": 3.0, "small": 2.5}[t] + 0.5 * recency(e)
            if t == "mid":
                pick.reasons.append("mid tier: good quality on a budget")
        if open_model:
            pick.reasons.append("open weights: runs locally, data stays here" if local_only else "open weights: no API bill")
            pick.score += {"low": 1.5, "medium": 1.0, "high": 0.0}[c.budget] + (3.0 if local_only else 0.0)
        else:
            blended = _blended_price(price)
            if blended is not None:
                per = f"${blended:.2f} per million tokens (3:1 input:output)"
                if c.budget == "low":
                    pick.score += 3.0 if blended <= 1.0 else (1.0 if blended <= 4.0 else -2.0)
                    pick.reasons.append(("cheap API: " if blended <= 1.0 else "API: ") + per)
                elif c.budget == "medium":
                    pick.score += 1.5 if blended <= 4.0 else 0.0
                    pick.reasons.append("API: " + per)
                else:
                    pick.score += 1.0
                    pick.reasons.append("API: " + per)
            else:
                pick.reasons.append("API: price unknown to Tryouts")
            if c.budget == "low" and not local_only:
                pick.score += 1.0  # the seeds: low cost and no privacy concern → use an API
                pick.reasons.append("low budget, privacy normal: an API avoids buying hardware")
        # fine-tuning
        if c.task in ("classification", "ner"):
            small_encoder = open_model and not prompted and "chat" not in tasks and active is not None and active < 1e9
            if c.fine_tune and small_encoder:
                pick.score += 4.0
                pick.reasons.append("specialised task with labelled data: fine-tune this small encoder")
            elif not c.fine_tune and prompted:
                pick.score += 1.0
                pick.reasons.append("no fine-tuning: a larger pre-trained model prompted with the labels")
        if measured and measured.get("quality") is not None:
            pick.reasons.append(f"your runs: quality {measured['quality']:.2f} over {measured.get('n_scored', 0)} scored answers")
            pick.score += 2.0 * float(measured["quality"])
        pick.score = round(pick.score, 3)
        picks.append(pick)

    picks.sort(key=lambda p: (-p.score, p.id))
    advice = []
    if c.task in ("classification", "ner"):
        advice.append("Fine-tune vs prompt: with a few hundred labelled examples, a fine-tuned small encoder (BERT, "
                      "RoBERTa, DistilBERT) is usually faster, cheaper and as accurate as prompting an LLM; measure "
                      "both with: tryouts eval-task " + c.task + " --data labeled.csv -m MODEL_A -m MODEL_B")
    elif c.fine_tune:
        advice.append("Fine-tuning a small model pays off for a narrow, specialised task; for general chat, prompt "
                      "a larger pre-trained model instead.")
    if not picks:
        advice.append("Nothing meets every constraint: relax one (more GPU memory, a higher latency bound, or allow "
                      "an API) — the excluded list says what stopped each model.")
    elif c.task in ("chat", "code"):
        advice.append("Check the short list on your own prompts: tryouts compare \"...\" -m " + " -m ".join(
            p.routes[0] for p in picks[: min(3, len(picks))] if p.routes))
    else:  # task models (classifiers, taggers, encoders, translators) answer no chat prompt: labeled data
        advice.append(f"Check the short list on your own labeled data: tryouts eval-task {c.task} --data FILE -m "
                      + " -m ".join(p.routes[0] for p in picks[: min(3, len(picks))] if p.routes))
    return {"constraints": c.__dict__, "steps": steps, "picks": [p.as_dict() for p in picks[: c.top]],
            "excluded": sorted(excluded, key=lambda x: x["id"]), "advice": advice}
