"""The runner: fan jobs out to their models under per-model limits, retry what can be retried,
store every answer as it arrives, and keep failures as rows instead of crashing.

Each model gets `concurrency` workers pulling from its own lazy job stream, so a
slow or rate-limited model never starves the others, memory stays flat in the
number of jobs, and requests wait in line rather than being rejected.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from aiolimiter import AsyncLimiter

from .errors import ConfigError
from .jobs import Job
from .providers import Answer, CallError, api_key, ask, classify, environment_secrets, estimate_tokens
from .spec import ModelConfig
from .store import Store, StoredResponse, request_json

DEFAULT_RETRIES = 5
DEFAULT_RETRY_DELAY = 1.0


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
class RunOptions:
    fresh: bool = False
    max_cost: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _failure(job: Job, error_class: str, message: str, attempts: int, latency: float | None) -> StoredResponse:
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
                          attempts=attempts, error_class=None, error_message=None, created_at=time.time())


async def _attempt(job: Job, key: str | None, secrets: list[str], policy: RetryPolicy, pace: Pace, tokens: int,
                   observer: Observer) -> StoredResponse:
    attempt = 0
    while True:
        attempt += 1
        # every attempt counts against rpm and tpm (providers count refused requests too); over the
        # rate it waits, never drops
        await pace.request(tokens)
        start = time.perf_counter()  # latency is the last attempt's, not the queueing and backoff before it
        try:
            # litellm enforces the timeout on HTTP; this guard also covers a provider that ignores it
            answer = await asyncio.wait_for(ask(job, key), job.model.timeout + 5)
            return _success(job, answer, attempt, time.perf_counter() - start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every provider failure becomes data; nothing escapes a job
            error = classify(exc, secrets)
            if not error.retryable or attempt == policy.attempts:
                return _failure(job, error.error_class, error.message, attempt, time.perf_counter() - start)
            observer.retrying(job.model.name, error)
            await asyncio.sleep(policy.delay(attempt, error.retry_after))


async def _model_worker(jobs: Iterator[Job], model: ModelConfig, store: Store, options: RunOptions,
                        budget: Budget, pace: Pace, observer: Observer,
                        key: str | None, key_error: str | None, secrets: list[str]) -> None:
    for job in jobs:
        if not options.fresh:
            stored = store.get(job.key)
            if stored is not None:
                observer.finished(Outcome(job, stored, cached=True))
                continue
        if key_error is not None:
            observer.finished(Outcome(job, _failure(job, "ConfigError", key_error, 0, None), cached=False))
        elif budget.exhausted:
            observer.finished(Outcome(job, _failure(job, "BudgetExceeded", f"not asked: --max-cost {budget.limit} "
                                                    "reached", 0, None), cached=False))
        else:
            estimate = estimate_tokens(job) if pace.tokens else 0
            response = await _attempt(job, key, secrets, options.retry, pace, estimate, observer)
            budget.spent += response.cost or 0.0
            # Stored before anyone hears of it, so a crash after this line cannot lose the answer.
            # Jobs never sent (no key, budget spent) are not stored: there is no response to keep.
            store.put(response)
            observer.finished(Outcome(job, response, cached=False))
            # tokens the estimate missed (a longer answer than max_tokens allowed for, or no max_tokens)
            # are paid once the answer is safe, by this worker waiting before its next request
            await pace.spend((response.prompt_tokens or 0) + (response.completion_tokens or 0) - estimate)


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


async def run_jobs(streams: dict[str, Iterator[Job]], models: list[ModelConfig], store: Store,
                   options: RunOptions, observer: Observer) -> None:
    """Run every job of every model's stream; outcomes reach `observer` and the store."""
    budget = Budget(options.max_cost)
    keys: dict[str, str | None] = {}
    key_errors: dict[str, str | None] = {}
    for model in models:
        try:
            keys[model.name], key_errors[model.name] = api_key(model), None
        except ConfigError as exc:
            keys[model.name], key_errors[model.name] = None, str(exc)
    secrets = [k for k in keys.values() if k] + environment_secrets()
    workers = []
    for model in models:
        pace = Pace(model.rpm, model.tpm)
        for _ in range(model.concurrency):
            workers.append(asyncio.create_task(_model_worker(
                streams[model.name], model, store, options, budget, pace, observer,
                keys[model.name], key_errors[model.name], secrets)))
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
