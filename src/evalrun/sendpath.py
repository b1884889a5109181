"""The send path: what a stage's requests go through, and what every way of sending shares.

A runner fans a stage's jobs out to its models (see `runner`); how one request is sent is a `Sender`
(in this process, or through sender processes: `workers.Senders`), and a `BatchPath` may take whole
models' streams off the runner (provider batch APIs: `batches`). Both see a run only through `Shared`:
the store and its lease owner, the budget, the options, and `finish`, which hands each job's outcome
to the readers (the results, which label it) and then to the observer (the progress display). So a
new way of sending plugs in here without importing the runner, and the display only displays.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .errors import FailureKind
from .jobs import Job
from .providers import Answer, CallError
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


@dataclass
class RunOptions:
    fresh: bool = False
    max_cost: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    workers: int | None = None  # sender processes (see workers); None: as many as the stage's concurrency needs


@dataclass(frozen=True)
class Outcome:
    """What became of one job: an answer (text) or a final error, with its costs."""

    job: Job
    response: StoredResponse
    cached: bool  # answered from the store (or by another job of this run asking the same), not asked again


class Observer(Protocol):
    """Receives progress events (the CLI shows them; tests may count them)."""

    def finished(self, outcome: Outcome) -> None: ...

    def retrying(self, model: str, error: CallError) -> None: ...

    def gave_up(self, model: str, message: str) -> None: ...


class Sender(Protocol):
    """Sends one attempt at one request (`workers.Senders`: in this process or through sender processes)."""

    def want(self, count: int) -> None:
        """Room for `count` sender processes, if the sender has not started any yet."""

    async def ready(self, models: list[ModelConfig]) -> None:
        """Make these models sendable (litellm imported and readied, wherever requests go from) before any of
        their requests is paced: readying blocks for seconds, and pacing must count from the moment of sending."""

    async def ask(self, job: Job, key: str | None) -> Answer:
        """One attempt; raises what a failed call raises (the runner classifies and retries)."""

    async def close(self) -> None: ...


class BatchPath(Protocol):
    """Takes the models of a stage it can send as provider batches, and runs their streams itself
    (`batches.batch_stage`)."""

    def __call__(self, streams: dict[str, Iterator[Job]],
                 models: list[tuple[ModelConfig, str | None, str | None]],
                 run: Shared) -> tuple[list[ModelConfig], Awaitable[object] | None]:
        """Of `models` (each with its API key, or why it has none), the ones left to the runner, and the
        awaitable running the rest (None if it took none)."""


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
class Shared:
    """What every way of sending shares in a run: the store, its lease owner id, the budget, the options,
    the sender, and where outcomes go (`read`, then the observer)."""

    store: Store
    options: RunOptions
    observer: Observer
    budget: Budget
    secrets: list[str]
    sender: Sender
    read: Callable[[Outcome], None] | None = None  # the reader step: labels each outcome (Results.add)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    prepared: set[str] = field(default_factory=set)  # models litellm has been readied for in this process
    started: float = field(default_factory=time.time)  # answers stored since count for --fresh
    # requests of this run in flight, by key: a job whose key is already being asked waits for that answer
    inflight: dict[str, asyncio.Future[StoredResponse]] = field(default_factory=dict)
    # set once the run is told to stop (SIGTERM, Ctrl-C): no new request is sent, the ones in flight may land
    stopping: bool = False
    sending: set[asyncio.Task[object]] = field(default_factory=set)  # the tasks whose request is in flight now

    def finish(self, outcome: Outcome) -> None:
        """A job is done: read (labelled) first, so the display never counts a job the results lack."""
        if self.read is not None:
            self.read(outcome)
        self.observer.finished(outcome)


def failed_response(job: Job, error_class: FailureKind | str, message: str, attempts: int,
                    latency: float | None) -> StoredResponse:
    """A final failure as the row stored for it; `error_class` is a FailureKind or a provider's exception name."""
    return StoredResponse(key=job.key, model=job.model.model, api_base=job.model.api_base,
                          request=request_json(job.messages, job.params), status="error", text=None,
                          finish_reason=None, prompt_tokens=None, completion_tokens=None, cost=None,
                          latency=latency, attempts=attempts, error_class=str(error_class), error_message=message,
                          created_at=time.time())


def unsent(job: Job, kind: FailureKind | str, message: str) -> Outcome:
    """A job recorded as failed without a request (not stored: there is no response to keep)."""
    return Outcome(job, failed_response(job, kind, message, 0, None), cached=False)
