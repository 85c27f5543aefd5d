"""The selection advisor: constraints in, a ranked short list with reasons out. Deterministic and explainable.

It follows the model-selection framework of the study notes, step by step, over the catalog:

1. **Budget and privacy.** ``privacy=high`` keeps only open-weight models run locally (the data never leaves
   the machine). Otherwise a low budget favours cheap APIs (no hardware to buy); open models count as APIs
   too where a provider serves them (Groq, Mistral, DeepSeek...).
2. **Performance.** ``quality=best`` ranks on capability; ``quality=good`` counts capability up to a
   45 B-class model and favours the Mistral / Llama class (7–72 B open models), so cost and fit decide.
3. **Latency.** A TTFT you measured decides; else, on hardware with a known memory bandwidth, the estimate
   from bandwidth (:mod:`tryouts.memory.hardware`); else under 100 ms only small models (≤ 4 B active
   parameters) run locally, or an API's fast tier.
4. **Fine-tuning.** For a specialised task (classification, NER) with labelled data (``fine_tune=True``): a
   small encoder to fine-tune comes first; without, a larger model is prompted.
5. **Offline.** Only local models.

Hardware (:class:`~tryouts.memory.hardware.Hardware`: a GPU, a CPU with RAM, or unified memory): each open
model in the widest format that fits, from the checkpoint's own (16-bit, or gpt-oss's MXFP4) down to GGUF
Q3_K_M; on a CPU or unified memory GGUF only. The format is named in the pick. Licences: ``commercial=True``
drops models whose licence forbids commercial use; every pick says its licence. Points are in
:mod:`tryouts.advisor_rank`; ties are broken by id, so the same input always gives the same list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .advisor_rank import (
    formats_for,
    local_size_points,
    price_points,
    quality_points,
    recency,
)

TASKS = ("chat", "classification", "ner", "translation", "summarization", "embeddings", "code")
BUDGETS = ("low", "medium", "high")
QUALITIES = ("best", "good")
#: a small model, for the seeds' "< 100 ms: use a small model or a commercial API"
SMALL_ACTIVE_PARAMS = 4e9
#: tasks a chat model can do by prompting (with a lower weight than a model made for the task)
PROMPTABLE = ("classification", "ner", "translation", "summarization")
__all__ = ["Constraints", "Pick", "recency", "recommend", "tier"]


@dataclass(frozen=True)
class Constraints:
    """What the user needs. ``hardware`` where local models must run (None: not given; ``gpu_memory`` in bytes
    is the short form of a GPU of that size); ``latency_ms`` the largest acceptable time to first token."""

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
    hardware: Any = None
    commercial: bool = False
    open_weights: bool = False

    def check(self) -> None:
        from .errors import UsageError

        for name, value, allowed in (("task", self.task, TASKS), ("budget", self.budget, BUDGETS),
                                     ("quality", self.quality, QUALITIES), ("privacy", self.privacy, ("high", "normal"))):
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}.")
        if self.latency_ms is not None and self.latency_ms <= 0:
            raise UsageError("--latency-ms must be a positive number of milliseconds.")

    def device(self) -> Any:
        """The hardware, with ``gpu_memory`` read as a GPU of that size."""
        if self.hardware is not None or self.gpu_memory is None:
            return self.hardware
        from .memory.hardware import gpu

        return gpu(memory=int(self.gpu_memory))

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        hw = self.device()
        d["hardware"] = hw.to_dict() if hw is not None else None
        return d


@dataclass
class Pick:
    """One recommended model: its score, the reasons, how it runs, memory, speed estimate, price and licence."""

    id: str
    name: str
    access: str
    score: float
    reasons: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    memory: dict[str, Any] | None = None
    price: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None
    license: str | None = None
    runs: str = "api"
    speed: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "access": self.access, "score": self.score,
                "reasons": self.reasons, "routes": self.routes, "runs": self.runs, "memory": self.memory,
                "speed": self.speed, "price": self.price, "license": self.license, "measured": self.measured}


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
    the total parameters for open ones (≥ 30 B / < 7 B)."""
    if _get(entry, "access") == "commercial":
        blended = _blended_price(price)
        if blended is None:
            return "mid"
        return "flagship" if blended >= 3.0 else ("small" if blended <= 1.0 else "mid")
    params = _get(entry, "params")
    total = _get(params, "total") if params else None
    if total is None:
        return "mid"
    return "flagship" if total >= 30e9 else ("small" if total < 7e9 else "mid")


def _licence_text(license_id: str | None) -> tuple[str, bool | None]:
    from .catalog.licenses import licence

    lic = licence(license_id or "")
    if lic is None:
        return f"licence: {license_id or 'unknown'} (check it)", None
    return "licence: " + lic.name + (f" ({lic.condition})" if lic.condition else ""), lic.commercial


def _steps(c: Constraints, hw: Any, local_only: bool) -> list[str]:
    steps = []
    if c.privacy == "high":
        steps.append("Privacy high: open-weight models run locally only (no data sent to a provider).")
    if c.offline:
        steps.append("Offline: only models that run on this machine.")
    if not local_only:
        steps.append({"low": "Low budget: cheap APIs first (no hardware to buy, pay per token), open models through "
                             "a provider's API included.",
                      "medium": "Medium budget: mid-priced APIs and open models that fit.",
                      "high": "High budget: flagships allowed."}[c.budget])
    steps.append("Quality best: ranked on capability (size, generation, format)." if c.quality == "best" else
                 "Quality good: capability up to a 45 B-class model counts, and the Mistral / Llama class (7–72 B "
                 "open models) is favoured; then cost and fit decide.")
    if c.latency_ms is not None:
        steps.append(f"Latency ≤ {c.latency_ms:g} ms to the first token: measured TTFT from your runs wins; else the "
                     "estimate from memory bandwidth on your hardware" + (
                         "; else a small model (≤ 4 B active parameters) locally or an API's fast tier."
                         if c.latency_ms < 100 else "."))
    if c.commercial:
        steps.append("Commercial use: models whose licence forbids it are excluded.")
    if c.open_weights:
        steps.append("Open weights only: API-only models are excluded.")
    if hw is not None:
        steps.append(f"Hardware: {hw.describe()}; each open model in the widest format that fits with a "
                     f"{c.context:,}-token context ({', '.join(formats_for(hw.kind))}). Speeds are estimates: bytes "
                     "read per token / memory bandwidth" + ("." if hw.flops else "; prompt processing is not counted "
                                                            "(no FLOP/s figure for this device)."))
    else:
        steps.append("No hardware given: open models' memory is shown but not checked (give --gpu, --gpu-memory, "
                     "--ram or --unified-memory).")
    return steps


def recommend(c: Constraints, entries: list[Any], *, price_of=None, estimate_of=None, memory_of=None,
              measured_of=None, today: str | None = None) -> dict[str, Any]:
    """Rank catalog ``entries`` for constraints ``c``.

    ``price_of(entry)`` → ``{"input_per_mtok", "output_per_mtok", "source", "route"}`` or None (an open model's
    price is its provider route's); ``estimate_of(entry, fmt, context)`` → a memory
    :class:`~tryouts.memory.Estimate` or None (``memory_of(entry, fmt, context)`` → bytes, the older form);
    ``measured_of(entry)`` → ``{"ttft_p50_ms", "quality", "n"}`` or None (from the store). Returns
    ``{"constraints", "steps", "picks": [Pick.as_dict()], "excluded": [{"id", "reason"}], "advice": [str]}``. A
    model whose provider has shut it down by ``today`` (ISO date; default: today) is excluded; one with an
    announced shutdown is kept with a caution and a lower score.
    """
    c.check()
    import datetime

    today = today or datetime.date.today().isoformat()
    price_of = price_of or (lambda e: None)
    measured_of = measured_of or (lambda e: None)
    if estimate_of is None:
        def estimate_of(e, fmt, ctx):
            need = memory_of(e, fmt, ctx) if memory_of else None
            return None if need is None else _Bytes(need)
    hw = c.device()
    local_only = c.privacy == "high" or c.offline
    steps = _steps(c, hw, local_only)
    picks: list[Pick] = []
    excluded: list[dict[str, str]] = []

    def drop(eid: str, reason: str) -> None:
        excluded.append({"id": eid, "reason": reason})

    for e in entries:
        eid, tasks, access = _get(e, "id"), list(_get(e, "tasks") or []), _get(e, "access")
        prompted = c.task not in tasks and c.task in PROMPTABLE and "chat" in tasks
        if c.task not in tasks and not prompted:
            continue
        shutdown = _get(e, "shutdown")
        if shutdown and shutdown <= today[: len(shutdown)]:
            drop(eid, f"retired: its provider shut it down on {shutdown}")
            continue
        window = _get(e, "max_input") or _get(e, "context_window")
        generative = "chat" in tasks or "code" in tasks  # an encoder's 512-token window is its input size
        if window and generative and window < c.context:
            drop(eid, f"holds {window:,} tokens of input, fewer than --context {c.context:,}")
            continue
        open_model = access == "open"
        if local_only and not open_model:
            drop(eid, "commercial API: " + ("offline" if c.offline else "privacy high"))
            continue
        if c.open_weights and not open_model:
            drop(eid, "API only: open weights required")
            continue
        lic_reason, commercial_ok = _licence_text(_get(e, "license"))
        if c.commercial and not commercial_ok:
            drop(eid, lic_reason + ": commercial use not allowed" if commercial_ok is False
                 else lic_reason + ": commercial use not confirmed")
            continue
        price = price_of(e)
        api_tier = tier(e, price) if not open_model else None
        pick = Pick(id=eid, name=_get(e, "name") or eid, access=access, score=0.0,
                    routes=list(_get(e, "routes") or []), price=price, measured=measured_of(e),
                    license=_get(e, "license"))
        # where it runs: locally in the widest format that fits, else through a provider's API
        fmt = None
        if open_model:
            fmt, why = _place(c, hw, e, estimate_of, local_only, price, pick)
            if why:
                drop(eid, why)
                continue
        points, reasons = quality_points(e, api_tier, fmt, c.quality)
        pick.score += points
        pick.reasons.extend(reasons)
        # latency (an open model served by a provider counts as an API, in its price's tier)
        verdict = _latency(c, e, pick, api_tier or tier({"access": "commercial"}, price))
        if verdict:
            drop(eid, verdict)
            continue
        # cost
        if pick.runs == "api":
            pts, why = price_points(_blended_price(price), c.budget)
            pick.score += pts
            pick.reasons.append(why + (f" through {price['route'].partition(':')[0]}" if open_model and price
                                       and price.get("route") else ""))
            if c.budget == "low":
                pick.score += 1.0  # the seeds: low cost and no privacy concern → use an API
                pick.reasons.append("low budget, privacy normal: an API avoids buying hardware")
        else:
            pick.score += {"low": 1.0, "medium": 2.0, "high": 1.0}[c.budget] + (3.0 if local_only else 0.0)
            pick.reasons.append("open weights: runs locally, data stays here" if local_only
                                else "open weights: runs locally, no API bill")
        # the task
        if prompted:
            pick.reasons.append(f"a chat model prompted for {c.task}")
        elif tasks and tasks[0] == c.task:
            pick.score += 1.0  # made for this task first (a code model for code)
        if c.task in ("classification", "ner"):
            _fine_tune(c, e, pick, prompted, tasks, open_model)
        if shutdown:
            pick.reasons.append(f"deprecated: its provider shuts it down on {shutdown} (plan a successor)")
            pick.score -= 2.0
        measured = pick.measured
        if measured and measured.get("quality") is not None:
            pick.reasons.append(f"your runs: quality {measured['quality']:.2f} over {measured.get('n_scored', 0)} "
                                "scored answers")
            pick.score += 2.0 * float(measured["quality"])
        pick.reasons.append(lic_reason)
        pick.score = round(pick.score, 3)
        picks.append(pick)

    picks.sort(key=lambda p: (-p.score, p.id))
    return {"constraints": c.as_dict(), "steps": steps, "picks": [p.as_dict() for p in picks[: c.top]],
            "excluded": sorted(excluded, key=lambda x: x["id"]), "advice": _advice(c, picks)}


class _Bytes:
    """A bare byte count standing in for an estimate (the ``memory_of`` form)."""

    def __init__(self, total: float) -> None:
        self.total_bytes = total


def _place(c: Constraints, hw: Any, e: Any, estimate_of, local_only: bool, price: Any, pick: Pick) -> tuple[str | None, str | None]:
    """Where an open model runs: sets ``pick.runs``/``memory``/``speed``; returns (the format, why it is dropped)."""
    formats = formats_for(hw.kind if hw is not None else None)
    estimates = [(fmt, estimate_of(e, fmt, c.context)) for fmt in formats]
    estimates = [(fmt, est) for fmt, est in estimates if est is not None]
    api = not local_only and price is not None
    if not estimates:
        if hw is not None and not api:
            return None, "memory unknown (no architecture in the catalog): cannot check that it fits"
        pick.runs = "api" if api else "local"
        return None, None
    label = {"native": _native_label(e)}
    if hw is None:
        smallest = estimates[-1]
        if api:
            pick.runs = "api"
            pick.memory = {"dtype": smallest[0], "bytes": smallest[1].total_bytes, "context": c.context,
                           "checked": False}
            return None, None
        # the widest format that one 80 GB GPU holds (else the smallest), priced by the machine it asks for
        shown_fmt, est = next(((f, x) for f, x in estimates if x.total_bytes <= 80e9), smallest)
        pts, why = local_size_points(est.total_bytes)
        pick.runs, pick.score = "local", pick.score + pts
        shown = label.get(shown_fmt, shown_fmt)
        pick.memory = {"dtype": shown, "format": shown_fmt, "bytes": est.total_bytes, "context": c.context,
                       "checked": False}
        pick.reasons.append(f"needs {est.total_bytes / 1e9:.1f} GB at {shown} ({why}; not checked: no hardware given)")
        return shown_fmt, None
    fit = next(((fmt, est) for fmt, est in estimates if est.total_bytes <= hw.usable_bytes), None)
    if fit is None:
        need = estimates[-1][1].total_bytes
        if api:
            pick.runs = "api"
            pick.reasons.append(f"too big for {hw.name} ({need / 1e9:.1f} GB even at {estimates[-1][0]}): through "
                                "its provider's API instead")
            return None, None
        return None, (f"needs {need / 1e9:.1f} GB even at {estimates[-1][0]}; {hw.usable_bytes / 1e9:.1f} GB "
                      f"usable on {hw.name}")
    fmt, est = fit
    pick.runs = "local"
    shown = label.get(fmt, fmt)
    pick.memory = {"dtype": shown, "format": fmt, "bytes": est.total_bytes, "context": c.context, "checked": True}
    pick.reasons.append(f"fits {hw.name} at {shown} ({est.total_bytes / 1e9:.1f} GB of {hw.usable_bytes / 1e9:.1f})")
    if hasattr(est, "weight_bytes_by_class"):
        from .memory.hardware import speed

        pick.speed = speed(est, hw)
        if pick.speed:
            s = pick.speed
            pick.reasons.append(f"≈ {s['tokens_per_s']:,.0f} tokens/s ({s['ms_per_token']:,.1f} ms per token) at "
                                f"{hw.bandwidth / 1e9:,.0f} GB/s: an estimate at peak bandwidth")
    return fmt, None


def _native_label(e: Any) -> str:
    arch = _get(e, "arch")
    native = _get(arch, "native_format") if arch is not None else None
    return {"mxfp4": "MXFP4 (as published)", "fp8": "FP8 (as published)"}.get(native or "", "bf16")


def _latency(c: Constraints, e: Any, pick: Pick, api_tier: str | None) -> str | None:
    """Apply the latency bound: returns why the model is excluded, or None (points and reasons added)."""
    if c.latency_ms is None:
        return None
    ttft = (pick.measured or {}).get("ttft_p50_ms")
    if ttft is not None:
        if ttft > c.latency_ms:
            return f"measured TTFT p50 {ttft:.0f} ms > {c.latency_ms:g} ms"
        pick.reasons.append(f"measured TTFT p50 {ttft:.0f} ms ≤ {c.latency_ms:g} ms (your runs)")
        pick.score += 3.0
        return None
    if pick.runs == "local" and pick.speed is not None:
        est = pick.speed["ttft_ms"]
        if est > c.latency_ms:
            return f"estimated TTFT {est:,.0f} ms > {c.latency_ms:g} ms on this hardware (from memory bandwidth)"
        pick.reasons.append(f"estimated TTFT {est:,.1f} ms ≤ {c.latency_ms:g} ms for a {pick.speed['prompt_tokens']}-"
                            "token prompt (an estimate: check with tryouts compare)")
        pick.score += 1.0
        return None
    if c.latency_ms >= 100:
        return None
    active = _active_params(e)
    if pick.runs == "local":
        if active is None or active > SMALL_ACTIVE_PARAMS:
            size = f"{active / 1e9:.0f} B" if active else "unknown size"
            return f"local {size} model: too slow for < 100 ms (small models only)"
        pick.reasons.append("small model: suits < 100 ms")
    else:
        if api_tier != "small":
            return f"{api_tier}-tier API: fast tiers only for < 100 ms"
        pick.reasons.append("fast API tier: suits < 100 ms (check with tryouts compare: network time counts)")
    pick.score += 1.0
    return None


def _fine_tune(c: Constraints, e: Any, pick: Pick, prompted: bool, tasks: list[str], open_model: bool) -> None:
    active = _active_params(e)
    small_encoder = open_model and not prompted and "chat" not in tasks and active is not None and active < 1e9
    if c.fine_tune and small_encoder:
        pick.score += 20.0  # the decision tree's branch decides the kind of model; capability ranks within it
        pick.reasons.append("specialised task with labelled data: fine-tune this small encoder")
    elif not c.fine_tune and prompted:
        pick.score += 1.0
        pick.reasons.append("no fine-tuning: a larger pre-trained model prompted with the labels")


def _advice(c: Constraints, picks: list[Pick]) -> list[str]:
    advice = []
    if c.task in ("classification", "ner"):
        advice.append("Fine-tune vs prompt: with a few hundred labelled examples, a fine-tuned small encoder (BERT, "
                      "RoBERTa, DistilBERT) is usually faster, cheaper and as accurate as prompting an LLM; measure "
                      "both with: tryouts eval-task " + c.task + " --data labeled.csv -m MODEL_A -m MODEL_B")
    elif c.fine_tune:
        advice.append("Fine-tuning a small model pays off for a narrow, specialised task; for general chat, prompt "
                      "a larger pre-trained model instead.")
    routes = [p.routes[0] for p in picks[: min(3, len(picks))] if p.routes]
    if not picks:
        advice.append("Nothing meets every constraint: relax one (more memory, a higher latency bound, or allow "
                      "an API) — the excluded list says what stopped each model.")
    elif c.task in ("chat", "code"):
        advice.append("Check the short list on your own prompts: tryouts compare \"...\" -m " + " -m ".join(routes))
    else:  # task models (classifiers, taggers, encoders, translators) answer no chat prompt: labeled data
        advice.append(f"Check the short list on your own labeled data: tryouts eval-task {c.task} --data FILE -m "
                      + " -m ".join(routes))
    if any(p.speed for p in picks[: c.top]):
        advice.append("Speeds are estimates from memory bandwidth at the vendor's peak (real engines reach about "
                      "50–85 % of it): measure with tryouts compare or tryouts load.")
    return advice
