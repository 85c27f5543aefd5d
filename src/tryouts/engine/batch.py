"""Cells sent through a provider's batch API (docs/batch.md): half the price, answers within a day, no timings.

For one model of an API lane whose policy asks for batches (``--batch``, or ``batch: true`` in the suite or on
the model) and whose provider has a batch API (providers/batch.py):

1. cells the response cache can answer are answered from it, as for streamed cells;
2. jobs the run recorded earlier and has not collected (a stopped run, resumed) are polled, not sent again;
3. the other cells, within the cost budget, are sent as new jobs of at most the API's requests and bytes,
   each recorded (``RunContext.jobs``) as soon as the provider accepts it;
4. every ``batch_poll_s`` each open job is polled; an ended job's results are recorded, cell by cell, priced at
   the batch rate and with no timings (``Result.batch``); items that expired, were cancelled, failed with a
   retryable error or came back missing are sent again in a new job, up to ``max_retries`` times.

Stopping the run (Ctrl-C, ``--budget``, a stopped model) stops the polling and leaves the jobs running at the
provider: ``tryouts run --resume`` collects them. A job the provider refused as a whole fails its cells with the
reason.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .. import errors
from ..pricing import PriceOverride
from ..providers.batch import BatchAPI, BatchItem, BatchJob, batch_api
from .cache import cache_entry
from .events import BatchUpdate, CellLike
from .execute import attempt, cell_failed
from .scores import scores_off_loop

if TYPE_CHECKING:
    from .local import _Execution


def custom_id(cell: CellLike) -> str:
    """The id a cell's request carries in a job: a judge call's ``batch_id``, a suite cell's key (64 hex digits
    fit both APIs), else its indices."""
    key = getattr(cell, "batch_id", None) or getattr(cell, "key", None)
    return key if isinstance(key, str) and key else f"m{cell.model_index}-c{cell.case_index}-r{cell.repeat_index}"


async def _aiter(items: list) -> Any:
    for item in items:
        yield item


class BatchModel:
    """One model's cells through its provider's batch API, within one execution (engine/local.py)."""

    def __init__(self, exe: _Execution, provider: Any, model_index: int, cells: list[CellLike]) -> None:
        self.exe, self.provider, self.m = exe, provider, model_index
        self.ctx, self.policy = exe.ctx, exe.policy
        self.cells = {custom_id(c): c for c in cells}
        self.rounds: dict[str, int] = {}  # custom id -> sends so far
        self.open: dict[str, tuple[BatchJob, list[str], int]] = {}  # job id -> (job, its ids still wanted, round)
        self.api: BatchAPI | None = None
        self.recorded: set[str] = set()

    def unrecorded(self) -> list[CellLike]:
        """The cells that have no result yet."""
        return [c for cid, c in self.cells.items() if cid not in self.recorded]

    def emit(self, job: BatchJob, message: str) -> None:
        self.exe.emit(BatchUpdate(self.m, job.id, job.status, dict(job.counts), message))

    def say(self, job: BatchJob, what: str) -> None:
        n = len(self.open.get(job.id, (None, []))[1])
        self.emit(job, f"batch job {job.id} ({n} requests): {what}")

    async def run(self) -> None:
        api = self.api = batch_api(self.provider)
        if api is None:  # asked for, but this provider has none: the caller streams these cells
            raise RuntimeError("no batch API")
        try:
            await self._run(api)
        finally:
            await api.aclose()

    async def _run(self, api: BatchAPI) -> None:
        todo = []
        for cid, cell in self.cells.items():
            if await self.exe.served_from_cache(cell):
                self.recorded.add(cid)
            else:
                todo.append(cid)
        self.resume(set(todo))
        covered = {cid for _, ids, _ in self.open.values() for cid in ids}
        fresh = []
        for cid in todo:
            if cid in covered:
                continue
            spend = self.ctx.budget
            if spend is not None and not spend.try_start(self.cells[cid]):
                self.exe.progress.cancelled += 1  # no row: a resume runs it, with more budget
                continue
            fresh.append(cid)
        await self.send(fresh, 1)
        while self.open:
            if self.ctx.cancel.stopped(self.m):  # the jobs keep running at the provider: a resume collects them
                self.exe.progress.cancelled += sum(len(ids) for _, ids, _ in self.open.values())
                return
            await self.poll_all()
            if self.open:
                await self.pause()

    async def pause(self) -> None:
        """Wait ``batch_poll_s``, or less when the model is stopped meanwhile."""
        step = min(self.policy.batch_poll_s, 0.5)
        waited = 0.0
        while waited < self.policy.batch_poll_s and not self.ctx.cancel.stopped(self.m):
            await asyncio.sleep(step)
            waited += step

    def resume(self, wanted: set[str]) -> None:
        """Take up the jobs this run recorded for this model and has not collected."""
        jobs = self.ctx.jobs
        if jobs is None or not self.ctx.run_id:
            return
        for row in jobs.batch_jobs(self.ctx.run_id, self.ctx.batch_purpose, open_only=True):
            if row["model_index"] != self.m:
                continue
            ids = [cid for cid in row["custom_ids"] if cid in wanted]
            if not ids:
                jobs.update_batch_job(self.ctx.run_id, row["job_id"], status=row["status"], collected=True)
                continue
            for cid in ids:
                self.rounds[cid] = row["round"]
            job = BatchJob(id=row["job_id"], status=row["status"], info=row["info"] or {})
            self.open[job.id] = (job, ids, row["round"])
            self.say(job, f"sent by an earlier attempt of this run ({row['status']}): collecting it")

    async def send(self, ids: list[str], round_no: int) -> None:
        """Send ``ids`` as new jobs (split at the API's request and byte limits); a job refused at once fails its
        cells with the reason."""
        api = self.api
        assert api is not None
        chunk: list[str] = []
        lines: list[bytes] = []
        size = 0
        for cid in ids:
            try:
                line = api.line(cid, self.cells[cid].request)
            except errors.TryoutsError as exc:  # this request cannot be sent (a bad parameter): it fails alone
                self.fail(cid, exc)
                continue
            if chunk and (len(chunk) >= api.max_requests or size + len(line) > api.max_bytes * 0.95):
                await self.submit(chunk, lines, round_no)
                chunk, lines, size = [], [], 0
            chunk.append(cid)
            lines.append(line)
            size += len(line)
        if chunk:
            await self.submit(chunk, lines, round_no)

    async def submit(self, ids: list[str], lines: list[bytes], round_no: int) -> None:
        api = self.api
        assert api is not None
        try:
            job = await api.submit(lines, self.ctx.run_id or "tryouts")
        except Exception as exc:  # nothing was accepted: the cells fail with the provider's reason
            for cid in ids:
                self.fail(cid, exc)
            return
        for cid in ids:
            self.rounds[cid] = round_no
        self.open[job.id] = (job, ids, round_no)
        if self.ctx.jobs is not None and self.ctx.run_id:
            spec = self.cells[ids[0]].spec
            self.ctx.jobs.add_batch_job(
                self.ctx.run_id, job.id, purpose=self.ctx.batch_purpose, model=spec.ref, model_index=self.m,
                provider=spec.provider, server=api.base_url, custom_ids=ids, round_no=round_no, status=job.status,
                info=job.info)
        self.say(job, f"sent to the {api.name}" + (f" (again, try {round_no})" if round_no > 1 else ""))

    async def poll_all(self) -> None:
        api = self.api
        assert api is not None
        for job_id in list(self.open):
            job, ids, round_no = self.open[job_id]
            try:
                now = await api.poll(job_id)
            except errors.ProviderError as exc:
                if exc.retryable:  # a blip while polling: the job is still there; poll again next time
                    self.say(job, f"polling failed ({exc.message}); polling again")
                    continue
                self.close(job, ids, exc)
                continue
            if now.status != job.status:
                self.open[job_id] = (now, ids, round_no)
                self.say(now, now.status + _counts(now))
                if self.ctx.jobs is not None and self.ctx.run_id:
                    self.ctx.jobs.update_batch_job(self.ctx.run_id, job_id, status=now.status, info=now.info)
            if now.ended:
                await self.collect(now, ids, round_no)

    def close(self, job: BatchJob, ids: list[str], exc: BaseException) -> None:
        """A job that cannot be polled or collected: its cells fail with the reason; it is marked collected."""
        for cid in ids:
            self.fail(cid, exc)
        self.open.pop(job.id, None)
        if self.ctx.jobs is not None and self.ctx.run_id:
            self.ctx.jobs.update_batch_job(self.ctx.run_id, job.id, status=job.status, collected=True)

    async def collect(self, job: BatchJob, ids: list[str], round_no: int) -> None:
        api = self.api
        assert api is not None
        if job.failed:
            self.close(job, ids, errors.BadRequestError(job.failed[:1000]))
            return
        try:
            got = await api.results(job, set(ids))
        except errors.ProviderError as exc:
            if exc.retryable:
                self.say(job, f"reading its results failed ({exc.message}); trying again")
                return
            self.close(job, ids, exc)
            return
        again: list[str] = []
        for cid in ids:
            item = got.items.get(cid) or BatchItem(cid, error=errors.ServerError(
                f"The {api.name} returned no result for this request (job {job.id})."), resend=True)
            sent = self.rounds.get(cid, round_no)
            if item.events is not None:
                await self.record(cid, item)
            elif item.resend and sent <= self.policy.max_retries:
                again.append(cid)
            else:
                exc = item.error or errors.ServerError("no answer")
                if item.resend:  # it could have gone again: say why it did not
                    exc = errors.ServerError(f"{getattr(exc, 'message', exc)} Not sent again: it was sent {sent} "
                                             f"time(s), and retries.max is {self.policy.max_retries}.")
                self.fail(cid, exc)
        self.open.pop(job.id, None)
        if self.ctx.jobs is not None and self.ctx.run_id:
            self.ctx.jobs.update_batch_job(self.ctx.run_id, job.id, status=job.status, collected=True)
        skipped = f"; {got.skipped} result lines skipped (not JSON, unknown or repeated ids)" if got.skipped else ""
        self.emit(job, f"batch job {job.id}: collected {len(ids) - len(again)} results" + skipped +
                  (f"; {len(again)} sent again" if again else ""))
        if again:
            self.exe.progress.retries += len(again)
            await self.send(again, round_no + 1)

    async def record(self, cid: str, item: BatchItem) -> None:
        cell = self.cells[cid]
        ctx = self.ctx
        case = ctx.cases.get(cell.case_index)
        override = ctx.prices.get(cell.spec.ref)
        if override is None and "price" in cell.spec.options:
            override = PriceOverride.parse(cell.spec.options["price"], cell.spec.ref)
        result, _ = await attempt(
            self.provider, cell.request, events=_aiter(item.events or []), price_override=override,
            tokenizer_ref=cell.spec.options.get("tokenizer"), batch=True, model_index=cell.model_index,
            case_index=cell.case_index, repeat_index=cell.repeat_index)
        self.finish(cell, result)
        self.recorded.add(cid)
        result.case = case
        result.scores = await scores_off_loop(case, result)
        key = self.exe.key_for(cell)
        self.exe.record(cell, result, cache_entry(key, cell, result) if result.ok and key is not None else None)

    def fail(self, cid: str, exc: BaseException) -> None:
        cell = self.cells[cid]
        result = cell_failed(cell, exc, self.ctx.cases)
        result.batch = True
        self.finish(cell, result)
        self.recorded.add(cid)
        self.exe.record(cell, result)

    def finish(self, cell: CellLike, result: Any) -> None:
        result.attempts = max(1, self.rounds.get(custom_id(cell), 1))
        spend = self.ctx.budget
        if spend is not None:
            spend.finish(cell, result.cost.total if result.cost else None)


def _counts(job: BatchJob) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in job.counts.items() if v)
    return f" ({shown})" if shown else ""
