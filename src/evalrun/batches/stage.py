"""One stage's batches: submit what the store lacks, record every batch, poll, and store the answers
(each line of a batch's files is written and read in lines.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..embedded import COMPLETION, MODE
from ..errors import FailureKind
from ..jobs import Job
from ..providers import CallError, classify, litellm_module, prepare, token_cost, token_estimate
from ..redact import redact
from ..sendpath import Outcome, Shared, failed_response, unsent
from ..spec import ModelConfig
from ..store import StoredBatch
from .lines import request_line, stored_response
from .pricing import batch_prices, price_basis, unbatchable
from .settings import OPENAI_MAX_BYTES, max_requests, poll_seconds

# A batch that cannot be read this many polls in a row (5 minutes at the default interval) is left for a
# later run; polling is cheap and idempotent, so a blip in a day-long wait is not worth failing jobs over.
POLL_FAILURES = 10
FILE_TIMEOUT = 600.0  # uploading or downloading a file of up to 200 MB
ENDED = {"completed", "expired", "failed", "cancelled"}


@runtime_checkable
class BatchObserver(Protocol):
    """What the progress display adds for batches: each model's batch status, and one-off notes."""

    def batch_status(self, model: str, status: str) -> None: ...

    def note(self, message: str) -> None: ...


def batch_stage(streams: dict[str, Iterator[Job]], models: list[tuple[ModelConfig, str | None, str | None]],
                run: Shared) -> tuple[list[ModelConfig], asyncio.Future[Any] | None]:
    """Split a stage's models (each with its API key, or why it has none): those left to the one-request
    path, and the task running the rest through batches (None if there are none)."""
    batched: list[tuple[ModelConfig, str | None]] = []
    usual: list[ModelConfig] = []
    for model, key, key_error in models:
        if key_error is not None:  # the one-request path records every job as failed, saying why
            usual.append(model)
            continue
        prepare([model])
        run.prepared.add(model.name)
        why = unbatchable(model)
        if why is None:
            batched.append((model, key))
            _note(run, f"evalrun: model '{model.name}' is batched: its requests go through the provider's batch "
                       f"API, and its answers are priced at {price_basis(model)}")
            continue
        usual.append(model)
        _note(run, f"evalrun: model '{model.name}' is not batched: {why}; its requests are sent one by one, "
                   "at the usual price")
    if not batched:
        return usual, None
    return usual, asyncio.gather(*(ModelBatches(model, key, run).finish(streams[model.name])
                                   for model, key in batched))


def _note(run: Shared, message: str) -> None:
    if isinstance(run.observer, BatchObserver):
        run.observer.note(message)


@dataclass
class Tracked:
    """A batch this run waits on: its record, and the jobs (by request key) it answers for this run."""

    record: StoredBatch
    waiting: dict[str, list[Job]]
    reserved: float = 0.0  # its estimated cost, counted against --max-cost until its answers arrive
    counts: tuple[int, int] | None = None  # the provider's progress: requests done (or failed), of how many
    over: bool = False  # nothing more to do for it in this run (ended and collected, or unreadable)
    failed_looks: int = 0  # polls in a row that could not read it


@dataclass
class ModelBatches:
    """One model's batches in one stage: resume the recorded ones, submit the rest, poll until all end."""

    model: ModelConfig
    key: str | None
    run: Shared
    prices: tuple[float, float] | None = None
    tracked: list[Tracked] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prices = batch_prices(self.model)
        self.interval, self.limit = poll_seconds(), max_requests()  # a bad setting stops the run before it pays
        self.provider_model = str(litellm_module().get_llm_provider(model=self.model.model,
                                                                    api_base=self.model.api_base)[0])

    def _credentials(self) -> dict[str, Any]:
        # max_retries=0: the OpenAI SDK would otherwise retry a create whose answer was lost, and create the
        # batch twice; evalrun retries itself, looking for the batch first (see _start)
        found: dict[str, Any] = {"custom_llm_provider": "openai", "max_retries": 0}
        if self.model.api_base:
            found["api_base"] = self.model.api_base
        if self.key:
            found["api_key"] = self.key
        return found

    async def finish(self, jobs: Iterator[Job]) -> None:
        try:
            await self._submit(jobs)
            await self._poll()
        except asyncio.CancelledError:
            left = [t.record.id or t.record.input_file_id for t in self.tracked if not t.over]
            if left:
                _note(self.run, f"evalrun: model '{self.model.name}': {len(left)} batch(es) left running at the "
                                f"provider ({', '.join(left)}); run the same command again with --batch to "
                                "collect their answers (nothing is submitted twice)")
            raise

    # ---- submitting -----------------------------------------------------------------------------

    async def _submit(self, jobs: Iterator[Job]) -> None:
        """Attach each pending job to a recorded batch that covers it, or put it in a new one."""
        run, store = self.run, self.run.store
        covering: dict[str, Tracked] = {}
        for record, keys in store.open_batches(self.model.model, self.model.api_base):
            tracked = Tracked(record, {})
            self.tracked.append(tracked)
            covering.update((key, tracked) for key in keys if key not in covering)
        chunk: dict[str, list[Job]] = {}
        lines: list[bytes] = []
        size = 0
        estimate = 0.0
        for job in jobs:
            stored = None if run.options.fresh else store.get(job.key)
            if stored is not None:
                run.finish(Outcome(job, stored, cached=True))
                continue
            if job.key in covering:
                covering[job.key].waiting.setdefault(job.key, []).append(job)
                continue
            if job.params.get(MODE) == COMPLETION:  # a variant's `mode: completion` on a batched model
                run.finish(unsent(job, FailureKind.BAD_REQUEST, "not asked: a text completion (`mode: "
                                  "completion`) cannot go in a batch, which evalrun sends to the chat endpoint; run "
                                  "without --batch"))
                continue
            if job.key in chunk:  # the same request twice: asked once, both answered by it
                chunk[job.key].append(job)
                continue
            cost = self._estimate(job)
            if run.budget.limit is not None and run.budget.spent + estimate + cost > run.budget.limit:
                run.finish(unsent(job, FailureKind.BUDGET,
                                             f"not asked: --max-cost {run.budget.limit} reached (batch estimate)"))
                continue
            line = request_line(job, self.provider_model)
            if chunk and (len(chunk) >= self.limit or size + len(line) > OPENAI_MAX_BYTES):
                await self._create(chunk, lines, estimate)
                chunk, lines, size, estimate = {}, [], 0, 0.0
            chunk[job.key] = [job]
            lines.append(line)
            size += len(line)
            estimate += cost
        if chunk:
            await self._create(chunk, lines, estimate)
        self.tracked = [t for t in self.tracked if t.waiting]  # recorded batches this run has no use for
        for tracked in self.tracked:
            if tracked.record.id is None:  # uploaded by a run that stopped before it heard the batch's id
                await self._start(tracked, look_first=True)
        self._show()

    def _estimate(self, job: Job) -> float:
        """The most a job can cost (its prompt, and max_tokens of answer), for --max-cost; 0 without a budget
        or a price. Without max_tokens only the prompt is counted: the estimate is then a floor."""
        if self.run.budget.limit is None or self.prices is None:
            return 0.0
        return token_cost(*token_estimate(job), self.prices)

    async def _create(self, chunk: dict[str, list[Job]], lines: list[bytes], estimate: float) -> None:
        """Upload one input file, record it with the keys it covers, then create its batch."""
        try:
            uploaded = await self._call(lambda: litellm_module().acreate_file(
                file=("evalrun-batch.jsonl", b"".join(lines)), purpose="batch", timeout=FILE_TIMEOUT,
                **self._credentials()))
        except CallError as error:
            # nothing was asked: each job fails, unstored, and the next run asks again
            for jobs in chunk.values():
                for job in jobs:
                    self.run.finish(unsent(job, error.error_class, f"batch not created: {error.message}"))
            return
        record = StoredBatch(uploaded.id, None, self.model.model, self.model.api_base, "uploaded", time.time())
        self.run.store.add_batch(record, list(chunk))
        self.run.budget.spent += estimate
        tracked = Tracked(record, chunk, reserved=estimate)
        self.tracked.append(tracked)
        await self._start(tracked, look_first=False)

    async def _start(self, tracked: Tracked, look_first: bool) -> None:
        """Create the batch of a recorded input file and record its id. A create whose answer was lost (a
        dropped connection, a killed run) may have created the batch all the same, so before creating again
        evalrun looks for a batch of that input file among the provider's."""
        litellm = litellm_module()
        policy = self.run.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                batch = await self._find(tracked.record) if look_first else None
                if batch is None:
                    batch = await litellm.acreate_batch(
                        completion_window="24h", endpoint="/v1/chat/completions",
                        input_file_id=tracked.record.input_file_id, metadata={"created_by": "evalrun"},
                        timeout=self.model.timeout, **self._credentials())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every provider failure is classified; retried, or the jobs fail below
                error = self._classify(exc)
                if error.retryable and attempt < policy.attempts:
                    self.run.observer.retrying(self.model.name, error)
                    await asyncio.sleep(policy.delay(attempt, error.retry_after))
                    look_first = True
                    continue
                # the input file stays recorded: the next run looks for its batch again, or creates it
                for jobs in tracked.waiting.values():
                    for job in jobs:
                        self.run.finish(unsent(job, error.error_class,
                                                          f"batch not created: {error.message}"))
                tracked.waiting.clear()
                tracked.over = True
                self.run.budget.spent -= tracked.reserved
                tracked.reserved = 0.0
                return
            tracked.record = replace(tracked.record, id=str(batch.id), status=str(batch.status))
            self.run.store.batch_created(tracked.record.input_file_id, tracked.record.id, tracked.record.status)
            return

    def _classify(self, exc: Exception) -> CallError:
        error = classify(exc, self.run.secrets, address=self.model.api_base)
        import openai  # litellm's dependency, imported with it

        # litellm's files and batches calls raise the OpenAI SDK's own errors, unmapped: a connection error
        # has no status for classify() to go by, yet it is as worth retrying as on the one-request path
        if not error.retryable and isinstance(exc, openai.APIConnectionError):
            return replace(error, retryable=True)
        return error

    async def _find(self, record: StoredBatch) -> Any:
        """The provider's batch of this input file, or None. Batches are listed newest first, so the look
        stops at those created well before the file was uploaded (an hour's allowance for clock skew)."""
        after = None
        while True:
            page = await litellm_module().alist_batches(after=after, limit=100, timeout=self.model.timeout,
                                                        **self._credentials())
            for batch in page.data:
                if batch.input_file_id == record.input_file_id:
                    return batch
            if not page.data or not page.has_more or page.data[-1].created_at < record.created_at - 3600:
                return None
            after = page.data[-1].id

    async def _call(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """One call to the files or batches API, retried as the one-request path retries; raises the final
        CallError."""
        policy = self.run.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                return await make()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every provider failure is classified; the caller decides what it costs
                error = self._classify(exc)
                if not error.retryable or attempt >= policy.attempts:
                    raise error from None
                self.run.observer.retrying(self.model.name, error)
                await asyncio.sleep(policy.delay(attempt, error.retry_after))

    # ---- polling and collecting ------------------------------------------------------------------

    async def _poll(self) -> None:
        litellm = litellm_module()
        while True:
            for tracked in self.tracked:
                if tracked.over:
                    continue
                assert tracked.record.id is not None  # a batch not created is over (see _start)
                try:
                    # without the flag, litellm's logging downloads a finished batch's output file once more
                    # to price it (and leaves a coroutine unawaited): evalrun prices each line itself
                    batch = await litellm.aretrieve_batch(
                        batch_id=tracked.record.id, timeout=self.model.timeout, **self._credentials(),
                        litellm_metadata={"batch_ignore_default_logging": True})
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # classified: a look that failed is tried again at the next poll
                    error = self._classify(exc)
                    tracked.failed_looks += 1
                    if error.retryable and tracked.failed_looks < POLL_FAILURES:
                        self.run.observer.retrying(self.model.name, error)
                        continue
                    # the batch runs on at the provider and stays recorded: a later run polls it again
                    self._fail(tracked, error.error_class, f"batch {tracked.record.id} could not be read: "
                                                           f"{error.message}; run again to collect it")
                    tracked.over = True
                    continue
                tracked.failed_looks = 0
                status = str(batch.status)
                counts = batch.request_counts
                if counts is not None:
                    tracked.counts = counts.completed + counts.failed, counts.total
                if status in ENDED:
                    await self._collect(tracked, batch)
                else:
                    self.run.store.batch_status(tracked.record.input_file_id, status)
                tracked.record = replace(tracked.record, status=status)
            self._show()
            if all(t.over for t in self.tracked):
                return
            await asyncio.sleep(self.interval)

    async def _collect(self, tracked: Tracked, batch: Any) -> None:
        """Store every line of an ended batch's output and error files, then fail what neither answered."""
        status = str(batch.status)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            try:
                content = await self._call(lambda f=file_id: litellm_module().afile_content(
                    file_id=f, timeout=FILE_TIMEOUT, **self._credentials()))
            except CallError as error:
                self._fail(tracked, error.error_class, f"the results of batch {tracked.record.id} could not be "
                                                       f"read: {error.message}; run again to collect them")
                tracked.over = True
                return
            for raw in content.content.splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:  # a garbled line: its request ends below as not answered, asked again next run
                    continue
                if isinstance(line, dict):
                    self._store_line(tracked, line)
        if status == "failed":
            errors = getattr(batch, "errors", None)
            found = [getattr(e, "message", None) for e in (getattr(errors, "data", None) or [])]
            reason = "; ".join(m for m in found if m) or "no reason given"
            self._fail(tracked, FailureKind.BATCH_FAILED, f"batch {tracked.record.id} failed: {reason}")
        elif status == "completed":  # a line the provider left out, or one it garbled
            self._fail(tracked, FailureKind.BATCH_INCOMPLETE, f"not answered: batch {tracked.record.id} completed "
                                                              "without a readable answer to this request")
        else:
            kind = FailureKind.BATCH_CANCELLED if status == "cancelled" else FailureKind.BATCH_EXPIRED
            self._fail(tracked, kind,
                       f"not answered: batch {tracked.record.id} ended {status} before this request was done")
        self.run.store.batch_status(tracked.record.input_file_id, status, collected=True)
        tracked.over = True
        # the estimate held against --max-cost gives way to what the answers cost
        self.run.budget.spent -= tracked.reserved
        tracked.reserved = 0.0

    def _store_line(self, tracked: Tracked, line: dict[str, Any]) -> None:
        jobs = tracked.waiting.pop(str(line.get("custom_id")), None)
        if not jobs:  # a request another run of this batch wanted, or one already answered
            return
        response = stored_response(jobs[0], line, self.prices, self.run.secrets)
        self.run.budget.spent += response.cost or 0.0
        self.run.store.put(response)  # stored before anyone hears of it, as on the one-request path
        for n, job in enumerate(jobs):
            self.run.finish(Outcome(job, response, cached=n > 0))

    def _fail(self, tracked: Tracked, error_class: FailureKind | str, message: str) -> None:
        """Every job of the batch still waiting ends as a failure (stored, as the one-request path stores
        its final errors; a failure is asked again on the next run)."""
        for jobs in tracked.waiting.values():
            response = failed_response(jobs[0], error_class, redact(message, self.run.secrets)[:500], 1, None)
            self.run.store.put(response)
            for job in jobs:
                self.run.finish(Outcome(job, response, cached=False))
        tracked.waiting.clear()

    def _show(self) -> None:
        if not self.tracked or not isinstance(self.run.observer, BatchObserver):  # nothing to batch, or no one to tell
            return
        statuses = Counter(t.record.status for t in self.tracked)
        known = [t.counts for t in self.tracked if t.counts is not None]
        text = "batches: " + ", ".join(f"{n} {status}" for status, n in statuses.items()) if statuses else ""
        if known:
            text += f" ({sum(done for done, _ in known):,}/{sum(total for _, total in known):,} requests done)"
        self.run.observer.batch_status(self.model.name, text)

