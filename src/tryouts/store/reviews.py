"""Human review of stored runs (m011), mixed into :class:`tryouts.store.Store`: a rating and a comment per
result, tags per run, deleting a run with everything that hangs off it, and text search over outputs.

* **Ratings.** ``good`` or ``bad`` (the dashboard's ✓ Good / ✗ Bad), or none; a comment of at most
  :data:`MAX_COMMENT` characters. One review per result, with its first and last change times.
* **Tags.** Short words (:data:`TAG_PATTERN`, lower-cased, at most :data:`MAX_TAGS` a run) to find runs by.
* **Deleting a run** removes its results, scores, judgments, votes, batch jobs, drivers, load points and
  requests, reviews and tags in one transaction; a run still running (and not stale) is refused. Its
  baseline (kept in its own ``meta.baseline``) goes with it. The response cache, keyed by request, stays.
* **Search** is a bounded ``LIKE`` (case-insensitive, the text taken literally: ``%``, ``_`` and quotes are
  characters, never SQL), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select

from ..errors import StoreError, UsageError
from . import schema

#: the ratings a review may carry (None: a comment alone)
RATINGS = ("good", "bad")
#: the longest comment, in characters
MAX_COMMENT = 4000
#: a tag: a letter or digit, then letters, digits and ``. _ : + -``; 1 to 32 characters once lower-cased
TAG_PATTERN = r"[a-z0-9][a-z0-9._:+-]{0,31}"
#: the most tags a run may carry
MAX_TAGS = 20
#: the longest search text, in characters
MAX_QUERY = 200


class UnknownResult(StoreError):
    """A result id that is not a result of that run."""


class RunBusy(StoreError):
    """A run that is being run (its process is alive): it cannot be deleted."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def check_review(rating: str | None, comment: str | None) -> tuple[str | None, str]:
    """A valid (rating, comment), or UsageError saying what is wrong (NUL characters become U+FFFD)."""
    if rating is not None and rating not in RATINGS:
        raise UsageError(f"A rating is {' or '.join(RATINGS)} (or none), not {str(rating)[:20]!r}.")
    text = (comment or "").replace("\x00", "\ufffd")
    if len(text) > MAX_COMMENT:
        raise UsageError(f"A comment is at most {MAX_COMMENT:,} characters ({len(text):,} given): shorten it.")
    return rating, text


def check_tag(tag: str) -> str:
    """A tag lower-cased, or UsageError saying what a tag may be."""
    text = str(tag).strip().lower()
    if not re.fullmatch(TAG_PATTERN, text):
        shown = str(tag)[:40]
        raise UsageError(f"{shown!r} is not a tag: a tag is 1 to 32 letters, digits and . _ : + - (starting with a "
                         "letter or digit), e.g. baseline, prod-candidate, v1.2.")
    return text


def like_text(q: str) -> str:
    """Search text as the store matches it: trimmed, at most :data:`MAX_QUERY` characters, lower-cased."""
    return q.strip()[:MAX_QUERY].lower()


class ReviewStore:
    """Reviews, tags, deleting runs and searching outputs (see the module docstring)."""

    engine: Any
    get_run_row: Any  # Store's

    # ---- reviews ------------------------------------------------------------------------------------------

    def _check_result(self, conn: Any, run_id: str, result_id: int) -> None:
        res = schema.results
        found = conn.execute(select(res.c.id).where(res.c.run_id == run_id, res.c.id == result_id)).first()
        if found is None:
            raise UnknownResult(f"Run {run_id} has no result {result_id}: open the run's page for its results.")

    def reviews(self, run_id: str) -> dict[int, dict[str, Any]]:
        """A run's reviews by result id: ``{result_id, rating, comment, created_at, updated_at}`` each."""
        rv = schema.reviews
        with self.engine.connect() as conn:
            rows = conn.execute(select(rv).where(rv.c.run_id == run_id).order_by(rv.c.result_id)).mappings().all()
        return {int(r["result_id"]): _review(r) for r in rows}

    def review(self, run_id: str, result_id: int) -> dict[str, Any] | None:
        """One result's review, or None; :class:`UnknownResult` when the result is not the run's."""
        rv = schema.reviews
        with self.engine.connect() as conn:
            self._check_result(conn, run_id, result_id)
            row = conn.execute(select(rv).where(rv.c.run_id == run_id, rv.c.result_id == result_id)).mappings().first()
        return _review(row) if row is not None else None

    def set_review(self, run_id: str, result_id: int, rating: str | None, comment: str | None) -> dict[str, Any] | None:
        """Rate and comment one result of run ``run_id`` (replacing its review); neither a rating nor a comment
        removes the review (returns None). UsageError for a bad value, :class:`UnknownResult` for a result
        that is not the run's."""
        rating, text = check_review(rating, comment)
        if rating is None and not text.strip():
            self.delete_review(run_id, result_id)
            return None
        rv = schema.reviews
        now = _now()
        with self.engine.begin() as conn:
            self._check_result(conn, run_id, result_id)
            from . import _dialect_insert

            values = {"run_id": run_id, "result_id": result_id, "rating": rating, "comment": text,
                      "created_at": now, "updated_at": now}
            upsert = _dialect_insert(conn)(rv).values(**values)
            conn.execute(upsert.on_conflict_do_update(
                index_elements=[rv.c.run_id, rv.c.result_id],
                set_={"rating": rating, "comment": text, "updated_at": now}))
            row = conn.execute(select(rv).where(rv.c.run_id == run_id, rv.c.result_id == result_id)).mappings().one()
        return _review(row)

    def delete_review(self, run_id: str, result_id: int) -> bool:
        """Remove one result's review; whether there was one. :class:`UnknownResult` as :meth:`set_review`."""
        rv = schema.reviews
        with self.engine.begin() as conn:
            self._check_result(conn, run_id, result_id)
            gone = conn.execute(delete(rv).where(rv.c.run_id == run_id, rv.c.result_id == result_id)).rowcount
        return bool(gone)

    # ---- tags ---------------------------------------------------------------------------------------------

    def run_tags(self, run_id: str) -> list[str]:
        """A run's tags, sorted."""
        return self.tags_by_run([run_id]).get(run_id, [])

    def tags_by_run(self, run_ids: list[str] | None = None) -> dict[str, list[str]]:
        """The tags of these runs (None: of every run), sorted, by run id; runs without tags are left out."""
        t = schema.run_tags
        q = select(t.c.run_id, t.c.tag).order_by(t.c.run_id, t.c.tag)
        if run_ids is not None:
            if not run_ids:
                return {}
            q = q.where(t.c.run_id.in_(run_ids))
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for run_id, tag in conn.execute(q):
                out.setdefault(run_id, []).append(tag)
        return out

    def runs_with_tag(self, tag: str) -> set[str]:
        """The ids of the runs tagged ``tag`` (compared lower-cased)."""
        t = schema.run_tags
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.c.run_id).where(t.c.tag == str(tag).strip().lower())).scalars())

    def add_run_tags(self, run_id: str, tags: list[str]) -> list[str]:
        """Add tags to a run (those it has stay); its tags after. UsageError for a bad tag or too many."""
        clean = list(dict.fromkeys(check_tag(x) for x in tags))
        t = schema.run_tags
        with self.engine.begin() as conn:
            have = set(conn.execute(select(t.c.tag).where(t.c.run_id == run_id)).scalars())
            new = [x for x in clean if x not in have]
            if len(have) + len(new) > MAX_TAGS:
                raise UsageError(f"A run carries at most {MAX_TAGS} tags ({len(have)} now): remove some first.")
            if new:
                from . import _dialect_insert

                conn.execute(_dialect_insert(conn)(t).on_conflict_do_nothing(),
                             [{"run_id": run_id, "tag": x, "created_at": _now()} for x in new])
        return self.run_tags(run_id)

    def set_run_tags(self, run_id: str, tags: list[str]) -> list[str]:
        """Replace a run's tags; its tags after (UsageError as :meth:`add_run_tags`)."""
        clean = list(dict.fromkeys(check_tag(x) for x in tags))
        if len(clean) > MAX_TAGS:
            raise UsageError(f"A run carries at most {MAX_TAGS} tags ({len(clean)} given).")
        t = schema.run_tags
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.run_id == run_id))
            if clean:
                conn.execute(insert(t), [{"run_id": run_id, "tag": x, "created_at": _now()} for x in clean])
        return clean

    def remove_run_tag(self, run_id: str, tag: str) -> bool:
        """Remove one tag from a run; whether it had it."""
        t = schema.run_tags
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t).where(t.c.run_id == run_id,
                                                     t.c.tag == str(tag).strip().lower())).rowcount)

    # ---- deleting a run -----------------------------------------------------------------------------------

    def delete_run(self, ref: str) -> dict[str, Any]:
        """Delete a run and every row of it (see the module docstring); what was deleted, by table.

        StoreError for an unknown run; :class:`RunBusy` for a run that is running (and not stale): stop it
        first, or wait for it to end.
        """
        from .rows import run_dict

        r = schema.runs
        run_id = self.get_run_row(ref)["id"]
        counts: dict[str, int] = {}
        with self.engine.begin() as conn:
            row = conn.execute(select(r).where(r.c.id == run_id)).mappings().one()
            if run_dict(row)["status"] == "running":
                raise RunBusy(f"Run {run_id} is running: stop it (or wait for it to end) before deleting it. A "
                              "run whose process is gone shows as stale and can be deleted.")
            for table in (schema.reviews, schema.run_tags, schema.votes, schema.judgments, schema.batch_jobs,
                          schema.run_drivers, schema.load_requests, schema.load_points, schema.results):
                counts[table.name] = conn.execute(delete(table).where(table.c.run_id == run_id)).rowcount
            # the status read above still holds: a run claimed meanwhile (a resume) is not deleted under it
            same = [r.c.id == run_id, r.c.status == row["status"],
                    r.c.owner.is_(None) if row["owner"] is None else r.c.owner == row["owner"]]
            if conn.execute(delete(r).where(*same)).rowcount != 1:
                raise RunBusy(f"Run {run_id} was just resumed by another process: it is not deleted.")
        counts["runs"] = 1
        return {"run_id": run_id, "deleted": counts}

    def model_results(self, run_id: str, model_index: int) -> list[dict[str, Any]]:
        """Every result of one model of a run (the store's flat objects), in case and repeat order."""
        from .rows import flat_result

        res = schema.results
        q = (select(res).where(res.c.run_id == run_id, res.c.model_index == model_index)
             .order_by(res.c.case_index, res.c.repeat_index, res.c.id))
        with self.engine.connect() as conn:
            return [flat_result(r) for r in conn.execute(q).mappings()]

    # ---- search -------------------------------------------------------------------------------------------

    def runs_matching_text(self, q: str, limit: int = 1000) -> set[str]:
        """Ids of runs (at most ``limit``) with a result whose output contains ``q`` (case-insensitive, taken
        literally); a bounded scan of the results' text."""
        needle = like_text(q)
        if not needle:
            return set()
        res = schema.results
        query = (select(res.c.run_id).where(func.lower(res.c.text).contains(needle, autoescape=True))
                 .distinct().limit(limit))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def result_ids_matching(self, run_id: str, q: str) -> set[int]:
        """Ids of a run's results whose output or reasoning contains ``q`` (case-insensitive, literally)."""
        needle = like_text(q)
        res = schema.results
        if not needle:
            return set()
        match = or_(func.lower(res.c.text).contains(needle, autoescape=True),
                    func.lower(res.c.reasoning_text).contains(needle, autoescape=True))
        with self.engine.connect() as conn:
            return {int(x) for x in conn.execute(select(res.c.id).where(res.c.run_id == run_id, match)).scalars()}


def _review(row: Any) -> dict[str, Any]:
    return {"result_id": int(row["result_id"]), "rating": row["rating"], "comment": row["comment"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


__all__ = ["MAX_COMMENT", "MAX_QUERY", "MAX_TAGS", "RATINGS", "TAG_PATTERN", "ReviewStore", "RunBusy", "UnknownResult",
           "check_review", "check_tag", "like_text"]
