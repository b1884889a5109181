"""The runner: fan jobs out to their models under per-model limits, retry what can be retried,
store every answer as it arrives, and keep failures as rows instead of crashing.

Each model gets `concurrency` workers pulling from its own lazy job stream, so a
slow or rate-limited model never starves the others, memory stays flat in the
number of jobs, and requests wait in line rather than being rejected.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from aiolimiter import AsyncLimiter

from .errors import ConfigError
from .jobs import Job
from .providers import Answer, CallError, api_key, classify, environment_secrets, estimate_tokens
from .spec import ModelConfig
from .store import Store, StoredResponse, request_json
from .workers import Senders, auto_count

DEFAULT_RETRIES = 5
DEFAULT_RETRY_DELAY = 1.0
# Leases on request keys keep two runs sharing a store from paying twice for one request. A run renews
# its leases every RENEW_SECONDS while it lives, so a lease outlasts any request however long it waits;
# a killed run's leases lapse LEASE_SECONDS after its last renewal, and a waiting run then asks itself.
LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0
POLL_SECONDS = 0.5  # how often a run waiting on another's lease looks for the answer in the store
# A model is given up after this many attempts in a row failed to connect, one of them a retry (so a
# blip shorter than one backoff does not end a model): nothing listens there, and waiting out every
# job's backoff would take minutes while sending nothing.
UNREACHABLE_AFTER = 5


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a server's Retry-After wins when longer.

    `attempts` counts the first try; `evalrun run --retries N --retry-delay S` sets
    attempts = N + 1 and base = S (tests use tiny delays).
    """

    attempts: int = DEFAULT_RETRIES + 1
    base: float = DEFAULT_RETRY_DELAY
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        # A server that says "wait N seconds" means it; waiting less only earns another 429. The
        # cap guards against a nonsensical header stalling the run for hours.
        return max(backoff, min(retry_after, self.cap * 2)) if retry_after is not None else backoff


@dataclass(frozen=True)
class Outcome:
    """What became of one job: an answer (text) or a final error, with its costs."""

    job: Job
    response: StoredResponse
    cached: bool  # answered from the store, not asked again


class Observer(Protocol):
    """Receives progress events (the CLI shows them; tests may count them)."""

    def finished(self, outcome: Outcome) -> None: ...

    def retrying(self, model: str, error: CallError) -> None: ...

    def gave_up(self, model: str, message: str) -> None: ...


@dataclass
class Budget:
    """Stops new requests once spent cost reaches the limit (requests in flight still complete).

    Answers of unknown price count as zero: a budget cannot stop what it cannot price.
    """

    limit: float | None
    spent: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit


@dataclass
class Reachability:
    """A model's connection failures in a row; past UNREACHABLE_AFTER the model is given up."""

    name: str
    address: str | None  # the model's api_base; else learned from the first connection failure
    retries: bool  # whether requests are retried at all (with --retries 0 no retry can be waited for)
    streak: int = 0
    retried: bool = False  # a retry within the streak failed to connect too
    given_up: str | None = None  # why, once given up: the message every remaining job carries

    def answered(self) -> None:
        """Something answered (an answer or an HTTP error): the model is there."""
        self.streak, self.retried = 0, False

    def refused(self, error: CallError, attempt: int) -> bool:
        """Count a connection failure; True if this one gives the model up."""
        self.streak += 1
        self.retried = self.retried or attempt > 1
        if self.address is None and (found := _ADDRESS.match(error.message)):
            self.address = found[1]
        if self.given_up is None and self.streak >= UNREACHABLE_AFTER and (self.retried or not self.retries):
            self.given_up = (f"not sent: model '{self.name}' is unreachable at {self.address or 'its address'} "
                             f"({self.streak} connection failures in a row; last: {error.message})")
            return True
        return False


# classify()'s wording of a connection failure: "Connection error (ADDRESS): REASON"
_ADDRESS = re.compile(r"Connection error \((.+?)\):")


@dataclass
class RunOptions:
    fresh: bool = False
    max_cost: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: bool = False  # send what a provider can batch through its batch API (see the batches package)
    workers: int | None = None  # sender processes (see workers); None: as many as the stage's concurrency needs


def failed_response(job: Job, error_class: str, message: str, attempts: int, latency: float | None) -> StoredResponse:
    return StoredResponse(key=job.key, model=job.model.model, api_base=job.model.api_base,
                          request=request_json(job.messages, job.params), status="error", text=None,
                          finish_reason=None, prompt_tokens=None, completion_tokens=None, cost=None,
                          latency=latency, attempts=attempts, error_class=error_class, error_message=message,
                          created_at=time.time())


def _success(job: Job, answer: Answer, attempts: int, latency: float) -> StoredResponse:
    return StoredResponse(key=job.key, model=job.model.model, api_base=job.model.api_base,
                          request=request_json(job.messages, job.params), status="ok", text=answer.text,
                          finish_reason=answer.finish_reason, prompt_tokens=answer.prompt_tokens,
                          completion_tokens=answer.completion_tokens, cost=answer.cost, latency=latency,
                          attempts=attempts, error_class=None, error_message=None, created_at=time.time(),
                          logprobs=answer.logprobs)


async def _attempt(job: Job, key: str | None, run: Shared, pace: Pace, tokens: int,
                   reach: Reachability) -> StoredResponse:
    policy, observer = run.options.retry, run.observer
    attempt = 0
    while True:
        if reach.given_up is not None:  # given up while this job waited for its turn or its backoff
            return failed_response(job, "Unreachable", reach.given_up, attempt, None)
        attempt += 1
        # every attempt counts against rpm and tpm (providers count refused requests too); over the
        # rate it waits, never drops
        await pace.request(tokens)
        start = time.perf_counter()  # latency is the last attempt's, not the queueing and backoff before it
        try:
            # litellm enforces the timeout on HTTP; this guard also covers a provider that ignores it
            answer = await asyncio.wait_for(run.senders.ask(job, key), job.model.timeout + 5)
            reach.answered()
            return _success(job, answer, attempt, time.perf_counter() - start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every provider failure becomes data; nothing escapes a job
            error = classify(exc, run.secrets, address=job.model.api_base)
            if not error.unreachable:
                reach.answered()
            elif reach.refused(error, attempt):
                observer.gave_up(job.model.name, f"evalrun: model '{job.model.name}' is unreachable at "
                                 f"{reach.address or 'its address'}: {reach.streak} connection failures in a row "
                                 f"({error.message}); its remaining jobs are recorded as failed (Unreachable), "
                                 "not sent")
            if not error.retryable or attempt == policy.attempts:
                return failed_response(job, error.error_class, error.message, attempt, time.perf_counter() - start)
            observer.retrying(job.model.name, error)
            await asyncio.sleep(policy.delay(attempt, error.retry_after))


@dataclass
class Shared:
    """What every worker of a run shares: the store, its lease owner id, the budget, the options."""

    store: Store
    options: RunOptions
    observer: Observer
    budget: Budget
    secrets: list[str]
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    prepared: set[str] = field(default_factory=set)  # models litellm has been readied for in this process
    senders: Senders = field(init=False)

    def __post_init__(self) -> None:
        self.senders = Senders(self.options.workers or 0, self.prepared)


async def _claim(job: Job, run: Shared) -> StoredResponse | None:
    """Hold the lease on the job's key, or else the answer another run stored while this one waited.

    Returns None once the lease is held (this run asks); a stored answer to reuse otherwise. With
    --fresh an answer stored before this run counts for nothing, one stored while it waited does.
    """
    store = run.store
    waited = False
    while True:
        if not run.options.fresh or waited:
            stored = store.get(job.key)
            if stored is not None:
                return stored
        if store.lease(job.key, run.owner, LEASE_SECONDS):
            # the other run may have stored its answer and let go between our look and our lease
            stored = None if run.options.fresh and not waited else store.get(job.key)
            if stored is not None:
                store.release(job.key, run.owner)
            return stored
        waited = True
        await asyncio.sleep(POLL_SECONDS)


def unsent(job: Job, error_class: str, message: str) -> Outcome:
    """A job recorded as failed without a request (not stored: there is no response to keep)."""
    return Outcome(job, failed_response(job, error_class, message, 0, None), cached=False)


async def _model_worker(jobs: Iterator[Job], model: ModelConfig, run: Shared, pace: Pace, reach: Reachability,
                        key: str | None, key_error: str | None) -> None:
    observer, budget = run.observer, run.budget
    for job in jobs:
        if key_error is not None:
            stored = None if run.options.fresh else run.store.get(job.key)
            observer.finished(Outcome(job, stored, cached=True) if stored else unsent(job, "ConfigError", key_error))
            continue
        if reach.given_up is not None:
            stored = None if run.options.fresh else run.store.get(job.key)
            observer.finished(Outcome(job, stored, cached=True) if stored else
                              unsent(job, "Unreachable", reach.given_up))
            continue
        stored = await _claim(job, run)
        if stored is not None:
            observer.finished(Outcome(job, stored, cached=True))
            continue
        try:
            estimate = estimate_tokens(job) if pace.tokens else 0
            if model.tpm and estimate > model.tpm:
                # paced, it would wait estimate/tpm minutes for this one request: say so instead of hanging
                observer.finished(unsent(job, "RequestTooLarge", f"not sent: an estimated {estimate:,} tokens "
                                          f"(prompt + max_tokens) is more than the tpm of model '{model.name}' "
                                          f"({model.tpm:g}), a whole minute's budget"))
                continue
            if budget.exhausted:
                observer.finished(unsent(job, "BudgetExceeded", f"not asked: --max-cost {budget.limit} reached"))
                continue
            response = await _attempt(job, key, run, pace, estimate, reach)
            budget.spent += response.cost or 0.0
            # Stored before anyone hears of it, so a crash after this line cannot lose the answer.
            run.store.put(response)
        finally:
            run.store.release(job.key, run.owner)
        observer.finished(Outcome(job, response, cached=False))
        # tokens the estimate missed (a longer answer than max_tokens allowed for, or no max_tokens)
        # are paid once the answer is safe, by this worker waiting before its next request
        await pace.spend((response.prompt_tokens or 0) + (response.completion_tokens or 0) - estimate)


async def _renew(run: Shared) -> None:
    """Keep this run's leases alive while it runs (a request may wait on pacing and backoff for minutes)."""
    while True:
        await asyncio.sleep(RENEW_SECONDS)
        run.store.renew(run.owner, LEASE_SECONDS)


class Pace:
    """A model's rate limits: requests per minute and tokens per minute, each a leaky bucket.

    Each bucket holds one second's worth (at least one request or token): providers often enforce
    a per-minute limit over short windows (60,000 rpm as 1,000 per second), so a bucket the size of a
    whole minute would burst into 429s at the start. A request with more tokens than one second's
    worth takes the bucket as many times as it needs, so the average rate still holds.
    """

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.requests = _bucket(rpm)
        self.tokens = _bucket(tpm)

    async def request(self, tokens: int) -> None:
        if self.requests is not None:
            await self.requests.acquire()
        await self.spend(tokens)

    async def spend(self, tokens: float) -> None:
        if self.tokens is None:
            return
        while tokens > 0:
            take = min(tokens, self.tokens.max_rate)
            await self.tokens.acquire(take)
            tokens -= take


def _bucket(per_minute: float | None) -> AsyncLimiter | None:
    if not per_minute:
        return None
    capacity = max(1.0, per_minute / 60)
    return AsyncLimiter(capacity, capacity * 60 / per_minute)


class Runner:
    """One run's requests, in as many stages as it needs (first answers, then judges and follow-ups),
    sharing one store, one budget, one lease owner and each model's rate limits and reachability,
    so a second stage neither starts a fresh budget nor bursts past limits the first one paced."""

    def __init__(self, store: Store, options: RunOptions, observer: Observer) -> None:
        self.run = Shared(store, options, observer, Budget(options.max_cost), environment_secrets())
        self._models: dict[str, tuple[ModelConfig, Pace, Reachability, str | None, str | None]] = {}

    def _model(self, model: ModelConfig) -> tuple[ModelConfig, Pace, Reachability, str | None, str | None]:
        if model.name not in self._models:
            try:
                key, key_error = api_key(model), None
            except ConfigError as exc:
                key, key_error = None, str(exc)
            if key:
                self.run.secrets.append(key)
            self._models[model.name] = (model, Pace(model.rpm, model.tpm),
                                        Reachability(model.name, model.api_base, self.run.options.retry.attempts > 1),
                                        key, key_error)
        return self._models[model.name]

    async def stage(self, streams: dict[str, Iterator[Job]], models: list[ModelConfig]) -> None:
        """Run every job of every model's stream; outcomes reach the observer and the store."""
        workers = []
        if self.run.options.batch:  # models with a batch API take their streams there; the rest stay here
            from .batches import batch_stage

            models, batched = batch_stage(streams, [(m, *self._model(m)[3:]) for m in models], self.run)
            if batched is not None:
                workers.append(asyncio.ensure_future(batched))
        if self.run.options.workers is None:
            self.run.senders.want(auto_count(sum(m.concurrency for m in models if not m.embedded)))
        for model in models:
            config, pace, reach, key, key_error = self._model(model)
            for _ in range(config.concurrency):
                workers.append(asyncio.create_task(_model_worker(
                    streams[model.name], config, self.run, pace, reach, key, key_error)))
        renewer = asyncio.create_task(_renew(self.run))
        try:
            await asyncio.gather(*workers)
        finally:
            for task in [*workers, renewer]:
                task.cancel()
            await asyncio.gather(*workers, renewer, return_exceptions=True)

    async def close(self) -> None:
        await self.run.senders.close()
        # an interrupted run's leases would otherwise hold others back until they lapse
        self.run.store.release_all(self.run.owner)

    @property
    def unreachable(self) -> dict[str, str]:
        """The models given up as unreachable, each with the address that did not answer."""
        return {name: m[2].address or "" for name, m in self._models.items() if m[2].given_up is not None}


async def run_jobs(streams: dict[str, Iterator[Job]], models: list[ModelConfig], store: Store,
                   options: RunOptions, observer: Observer) -> dict[str, str]:
    """One stage on a runner of its own; returns the models given up as unreachable (see Runner)."""
    runner = Runner(store, options, observer)
    try:
        await runner.stage(streams, models)
    finally:
        await runner.close()
    return runner.unreachable
