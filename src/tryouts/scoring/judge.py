"""LLM-as-judge: any model Tryouts can run grades answers on a rubric, or compares two answers.

Rubric: the judge sees the request, the expected answer when the case has one, the answer and the rubric,
and replies with JSON ``{"score": n, "rationale": "..."}`` on the suite's scale (default 1–5).

Pairwise: the judge sees the request and two answers, A and B, and replies ``{"winner": "A"|"B"|"tie",
"rationale": "..."}``. Every pair is asked twice, in both orders; a verdict counts only when both orders
agree (judges prefer a position; an inconsistent pair is recorded but is no vote). Consistent verdicts are
stored as votes whose source is ``judge:<model>``, kept apart from human arena votes.

The judge's calls are made through the run engine (same retries, timeouts, concurrency, any provider, a
local model included) but are not results of the run: each is stored in the ``judgments`` table with its
own latency, tokens and cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..types import Cell, GenParams, Message

SYSTEM = "You are an impartial, careful judge of AI assistants' answers. Reply with JSON only."

#: what the judge's reply is parsed for, by kind
RUBRIC_FORMAT = 'Reply with JSON only: {{"score": <a number from {lo} to {hi}>, "rationale": "<one or two sentences>"}}'
PAIRWISE_FORMAT = 'Reply with JSON only: {"winner": "A" or "B" or "tie", "rationale": "<one or two sentences>"}'


def _conversation(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def rubric_prompt(messages: list[dict[str, Any]], answer: str, rubric: str, scale: tuple[int, int],
                  expected: str | None = None) -> list[Message]:
    """The chat sent to a rubric judge for one answer."""
    parts = [
        f"Grade the answer below on this rubric, from {scale[0]} (worst) to {scale[1]} (best).",
        f"<rubric>\n{rubric.strip()}\n</rubric>",
        f"<request>\n{_conversation(messages)}\n</request>",
    ]
    if expected is not None:
        parts.append(f"<reference_answer>\n{expected}\n</reference_answer>")
    parts += [f"<answer>\n{answer}\n</answer>", RUBRIC_FORMAT.format(lo=scale[0], hi=scale[1])]
    return [Message(role="system", content=SYSTEM), Message(role="user", content="\n\n".join(parts))]


def pairwise_prompt(messages: list[dict[str, Any]], answer_a: str, answer_b: str, criteria: str) -> list[Message]:
    """The chat sent to a pairwise judge: the request and answers A and B."""
    parts = [
        criteria.strip(),
        f"<request>\n{_conversation(messages)}\n</request>",
        f"<answer_A>\n{answer_a}\n</answer_A>",
        f"<answer_B>\n{answer_b}\n</answer_B>",
        "Judge the content, not the position or the length. " + PAIRWISE_FORMAT,
    ]
    return [Message(role="system", content=SYSTEM), Message(role="user", content="\n\n".join(parts))]


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text`` (a fenced block, or inline), in order."""
    decoder = json.JSONDecoder()
    found, i = [], text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def parse_rubric(text: str, scale: tuple[int, int]) -> tuple[float, str | None]:
    """The score and rationale in a rubric judge's reply; ValueError when there is none in the scale."""
    score: Any = None
    rationale = None
    for obj in _json_objects(text):
        if "score" in obj:
            score, rationale = obj["score"], obj.get("rationale")
            break
    if score is None:
        m = re.search(r"score\W{0,5}(-?\d+(?:\.\d+)?)", text, re.IGNORECASE)
        if m:
            score = m.group(1)
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ValueError(f"no score in the judge's reply: {text[:200]!r}") from None
    if not scale[0] <= value <= scale[1]:
        raise ValueError(f"the judge's score {value:g} is outside the scale {scale[0]}–{scale[1]}")
    return value, (str(rationale) if rationale is not None else None)


def parse_pairwise(text: str) -> tuple[str, str | None]:
    """``"A"``, ``"B"`` or ``"tie"`` and the rationale in a pairwise judge's reply; ValueError when unclear."""
    for obj in _json_objects(text):
        if "winner" in obj:
            winner = str(obj["winner"]).strip().strip("[]\"'").lower()
            rationale = obj.get("rationale")
            if winner in ("a", "answer a", "answer_a"):
                return "A", rationale
            if winner in ("b", "answer b", "answer_b"):
                return "B", rationale
            if winner in ("tie", "draw", "equal", "both"):
                return "tie", rationale
            raise ValueError(f"the judge's winner {obj['winner']!r} is not A, B or tie")
    m = re.search(r"\[\[(A|B|tie)\]\]", text, re.IGNORECASE)
    if m:
        return ("tie" if m.group(1).lower() == "tie" else m.group(1).upper()), None
    raise ValueError(f"no verdict in the judge's reply: {text[:200]!r}")


@dataclass(frozen=True)
class JudgeJob(Cell):
    """One judge call, run by the engine as a cell (``case_index`` is the job's number)."""

    kind: str = "rubric"  # rubric | pairwise
    result_id: int = 0
    other_result_id: int | None = None
    order: str | None = None  # pairwise: ab | ba
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        """The call's stable name (its batch ``custom_id``, engine/batch.py): the same judgment asked again, in a
        resumed judge pass, has the same key."""
        return f"{self.kind[:1]}-{self.result_id}-{self.other_result_id or 0}-{self.order or 'x'}"


def judge_params(params: GenParams) -> GenParams:
    """The judge's generation parameters: deterministic and short unless the suite says otherwise."""
    given = params.model_dump(exclude_unset=True)
    return GenParams.model_validate({"temperature": 0.0, "max_tokens": 400, **given})


def judgment_row(job: JudgeJob, result: Any, scale: tuple[int, int] | None) -> dict[str, Any]:
    """A ``judgments`` row from a judge call's Result (parsing its reply)."""
    row: dict[str, Any] = {
        "kind": job.kind, "judge": job.spec.ref, "result_id": job.result_id, "other_result_id": job.other_result_id,
        "order": job.order, "ok": bool(result.ok), "error": result.error, "score": None, "verdict": None,
        "rationale": None, "text": result.text or "", "ttft_ms": result.timing.ttft_ms, "e2e_ms": result.timing.e2e_ms,
        "input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
        "cost_total": result.cost.total, "cost_source": result.cost.source,
    }
    if not result.ok:
        return row
    try:
        if job.kind == "rubric":
            assert scale is not None
            row["score"], row["rationale"] = parse_rubric(result.text, scale)
        else:
            winner, row["rationale"] = parse_pairwise(result.text)
            # map the shown position back to the pair (result_id, other_result_id)
            if winner == "tie":
                row["verdict"] = "tie"
            else:
                first_shown = winner == "A"
                row["verdict"] = "a" if first_shown == (job.order == "ab") else "b"
        if row["rationale"] is not None:
            row["rationale"] = str(row["rationale"])
    except ValueError as exc:
        row["ok"], row["error"] = False, f"unparseable judge reply: {exc}"
    return row


def consistent_verdict(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """The verdict of a pair judged in both orders when both agree, else None."""
    if first.get("ok") and second.get("ok") and first.get("verdict") and first["verdict"] == second.get("verdict"):
        return str(first["verdict"])
    return None
