"""Provider batch APIs (`evalrun run --batch`): a stage's requests as JSONL files the provider answers within
a day, at half price, instead of one HTTP request each.

For each model whose provider litellm can batch (OpenAI: litellm 1.106.2 uploads files and creates batches
for `openai` only among the providers evalrun serves; it retrieves Anthropic batches but cannot create them),
the stage's pending jobs (those without a stored answer) are written as JSONL, uploaded and submitted, split
so that no batch exceeds the provider's limits. Each input file is recorded in the store (migration 004) once
uploaded, with the request keys it covers, and its batch id the moment the batch exists, so a run killed
while waiting polls those batches again rather than paying twice. A batch's output and error files are
stored line by line as soon as the batch ends, as the same `StoredResponse` rows the one-request path
writes, so extraction, the report and resume cannot tell the two apart. Other models run the usual way in
the same stage.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

from .errors import ConfigError
from .jobs import Job
from .providers import CallError, classify, litellm_module, prepare, redact
from .runner import Outcome, Shared, _failure, _unsent
from .spec import ModelConfig
from .store import StoredBatch, StoredResponse, request_json

POLL_ENV = "EVALRUN_BATCH_POLL_SECONDS"  # tests poll every few hundredths of a second
DEFAULT_POLL_SECONDS = 30.0  # OpenAI's batches take minutes to hours; polling faster only spends requests
MAX_REQUESTS_ENV = "EVALRUN_BATCH_MAX_REQUESTS"  # smaller batches end (and are stored) sooner
# OpenAI's limits per batch: 50,000 requests and a 200 MB input file (some margin kept for the multipart form)
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_BYTES = 190 * 1024 * 1024
BATCH_DISCOUNT = 0.5  # OpenAI's and Anthropic's batch price, as a share of the usual one
# A batch that cannot be read this many polls in a row (5 minutes at the default interval) is left for a
# later run; polling is cheap and idempotent, so a blip in a day-long wait is not worth failing jobs over.
POLL_FAILURES = 10
FILE_TIMEOUT = 600.0  # uploading or downloading a file of up to 200 MB
T = TypeVar("T", int, float)
ENDED = {"completed", "expired", "failed", "cancelled"}
# what the one-request path calls an HTTP error of each status (litellm's exception names), for error rows
_ERROR_CLASSES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                  404: "NotFoundError", 408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError",
                  503: "ServiceUnavailableError"}


@runtime_checkable
class BatchObserver(Protocol):
    """What the progress display adds for batches: each model's batch status, and one-off notes."""

    def batch_status(self, model: str, status: str) -> None: ...

    def note(self, message: str) -> None: ...


def poll_seconds() -> float:
    return _setting(POLL_ENV, float, DEFAULT_POLL_SECONDS, "a number of seconds more than 0")


def max_requests() -> int:
    return min(_setting(MAX_REQUESTS_ENV, int, OPENAI_MAX_REQUESTS, "a whole number more than 0"),
               OPENAI_MAX_REQUESTS)


def _setting(name: str, kind: Callable[[str], T], default: T, what: str) -> T:
    """A number from the environment, or one line saying what it should be."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        found = kind(value)
    except ValueError:
        found = None
    if found is None or not 0 < found < math.inf:  # NaN and infinity too
        raise ConfigError(f"{name} must be {what}, not {value!r}")
    return found


def unbatchable(model: ModelConfig) -> str | None:
    """None if the model's requests can go through a batch API, else why they cannot."""
    if model.embedded:
        return "it runs here (embedded), with no batch API"
    provider = _provider(model)
    if provider == "openai":
        return None
    if provider == "anthropic":
        return "litellm 1.106.2 can read Anthropic batches but not create them"
    return f"evalrun sends batches to OpenAI only, and this model's provider is {provider or 'unknown'}"


def batch_priced(models: list[ModelConfig]) -> set[str]:
    """The models whose requests `--batch` sends through a batch API, so whose answers cost batch prices
    (summary.json marks them): a batchable provider, and its key set (a model without one is not asked).
    Called before a run starts, it checks the batch settings too, so a bad one stops the run at once."""
    poll_seconds(), max_requests()
    return {m.name for m in models
            if unbatchable(m) is None and not (m.api_key_env and not os.environ.get(m.api_key_env))}


def _provider(model: ModelConfig) -> str | None:
    try:
        return str(litellm_module().get_llm_provider(model=model.model, api_base=model.api_base)[1])
    except Exception:  # litellm raises a bare BadRequestError-like Exception for a model it cannot place
        return None


def batch_prices(model: ModelConfig) -> tuple[float, float] | None:
    """Batch prices per input and output token: litellm's batch prices where its price list has them, else
    the usual price (the spec's `price` first) at the provider's batch discount; None if no price is known."""
    if model.price is not None:
        return model.price[0] / 1e6 * BATCH_DISCOUNT, model.price[1] / 1e6 * BATCH_DISCOUNT
    try:
        info = litellm_module().get_model_info(model.model)
    except Exception:  # litellm raises a bare Exception for a model it has not mapped
        return None

    def price(kind: str) -> float | None:
        batch, usual = info.get(f"{kind}_cost_per_token_batches"), info.get(f"{kind}_cost_per_token")
        return batch if batch is not None else None if usual is None else usual * BATCH_DISCOUNT

    found = price("input"), price("output")
    if found == (None, None):
        return None
    return found[0] or 0.0, found[1] or 0.0


def price_basis(model: ModelConfig) -> str:
    """Where `batch_prices` found the model's batch prices, in words."""
    if batch_prices(model) is None:
        return "an unknown price (litellm has none for this model; a `price` in the spec gives one)"
    if model.price is not None:
        return f"{BATCH_DISCOUNT:.0%} of the spec's price"
    if litellm_module().get_model_info(model.model).get("input_cost_per_token_batches") is not None:
        return "litellm's batch prices"
    return f"{BATCH_DISCOUNT:.0%} of litellm's usual price"


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
                run.observer.finished(Outcome(job, stored, cached=True))
                continue
            if job.key in covering:
                covering[job.key].waiting.setdefault(job.key, []).append(job)
                continue
            if job.key in chunk:  # the same request twice: asked once, both answered by it
                chunk[job.key].append(job)
                continue
            cost = self._estimate(job)
            if run.budget.limit is not None and run.budget.spent + estimate + cost > run.budget.limit:
                run.observer.finished(_unsent(job, "BudgetExceeded",
                                              f"not asked: --max-cost {run.budget.limit} reached (batch estimate)"))
                continue
            line = self._line(job)
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

    def _line(self, job: Job) -> bytes:
        body = {"model": self.provider_model, "messages": job.messages, **job.params}
        line = {"custom_id": job.key, "method": "POST", "url": "/v1/chat/completions", "body": body}
        return (json.dumps(line, default=str) + "\n").encode()

    def _estimate(self, job: Job) -> float:
        """The most a job can cost (its prompt, and max_tokens of answer), for --max-cost; 0 without a budget
        or a price. Without max_tokens only the prompt is counted: the estimate is then a floor."""
        if self.run.budget.limit is None or self.prices is None:
            return 0.0
        prompt = int(litellm_module().token_counter(model="", messages=job.messages))
        answer = int(job.params.get("max_tokens") or 0)  # type: ignore[call-overload]
        return prompt * self.prices[0] + answer * self.prices[1]

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
                    self.run.observer.finished(_unsent(job, error.error_class, f"batch not created: {error.message}"))
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
                        self.run.observer.finished(_unsent(job, error.error_class,
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
            self._fail(tracked, "BatchFailed", f"batch {tracked.record.id} failed: {reason}")
        elif status == "completed":  # a line the provider left out, or one it garbled
            self._fail(tracked, "BatchIncomplete", f"not answered: batch {tracked.record.id} completed without a "
                                                   "readable answer to this request")
        else:
            self._fail(tracked, f"Batch{status.capitalize()}",
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
        response = self._response(jobs[0], line)
        self.run.budget.spent += response.cost or 0.0
        self.run.store.put(response)  # stored before anyone hears of it, as on the one-request path
        for n, job in enumerate(jobs):
            self.run.observer.finished(Outcome(job, response, cached=n > 0))

    def _response(self, job: Job, line: dict[str, Any]) -> StoredResponse:
        """A batch output or error line as the row the one-request path would have stored."""
        answer = line.get("response") or {}
        body = answer.get("body") or {}
        status_code = answer.get("status_code")
        choices = body.get("choices") if isinstance(body, dict) else None
        if status_code == 200 and choices:
            choice = choices[0]
            usage = body.get("usage") or {}
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            cost = None
            if self.prices is not None:
                cost = (prompt or 0) * self.prices[0] + (completion or 0) * self.prices[1]
            logprobs = (choice.get("logprobs") or {}).get("content")
            return StoredResponse(
                key=job.key, model=job.model.model, api_base=job.model.api_base,
                request=request_json(job.messages, job.params), status="ok",
                text=(choice.get("message") or {}).get("content") or "", finish_reason=choice.get("finish_reason"),
                prompt_tokens=prompt, completion_tokens=completion, cost=cost, latency=None, attempts=1,
                error_class=None, error_message=None, created_at=time.time(),
                logprobs=json.dumps(logprobs) if logprobs else None)
        error = line.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        error_class = _ERROR_CLASSES.get(status_code or 0, "InternalServerError" if (status_code or 0) >= 500
                                         else "BatchError")
        text = f"{status_code or 'no status'}: {message or 'no message'}"
        return _failure(job, error_class, redact(text, self.run.secrets)[:500], 1, None)

    def _fail(self, tracked: Tracked, error_class: str, message: str) -> None:
        """Every job of the batch still waiting ends as a failure (stored, as the one-request path stores
        its final errors; a failure is asked again on the next run)."""
        for jobs in tracked.waiting.values():
            response = _failure(jobs[0], error_class, redact(message, self.run.secrets)[:500], 1, None)
            self.run.store.put(response)
            for job in jobs:
                self.run.observer.finished(Outcome(job, response, cached=False))
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

