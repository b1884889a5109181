"""The runner: fan jobs out to their models under per-model limits, retry what can be retried,
store every answer as it arrives, and keep failures as rows instead of crashing.

Each model gets `concurrency` workers pulling from its own lazy job stream, paced by the
model's rate limits (pacing.py), so a slow or rate-limited model never starves the others,
memory stays flat in the number of jobs, and requests wait in line rather than being rejected.
"""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ConfigError, FailureKind
from .jobs import Job
from .pacing import Pace
from .providers import Answer, CallError, api_key, classify, token_estimate
from .redact import environment_secrets, url_without_credentials
from .sendpath import BatchPath, Budget, Observer, Outcome, RunOptions, Sender, Shared, failed_response, unsent
from .spec import ModelConfig
from .store import Store, StoredResponse, request_json
from .workers import STAGE_COLLECTION, Senders, auto_count

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
# A run told to stop (SIGTERM, Ctrl-C) sends nothing new, but its requests in flight are paid for already:
# they get this long to land and be stored, so a rerun need not pay for them again. Long enough for a typical
# answer to arrive, short enough that a container stop (Docker waits 10 s before SIGKILL) or an impatient
# user is not kept waiting on a request that hangs; a second signal stops at once.
STOP_GRACE_SECONDS = 10.0


class Stopped(Exception):
    """The run was told to stop (Runner.stop) and did: what landed is stored, the rest was not sent."""


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


def _success(job: Job, answer: Answer, attempts: int, latency: float) -> StoredResponse:
    return StoredResponse(key=job.key, model=job.model.model, api_base=job.model.api_base,
                          request=request_json(job.messages, job.params), status="ok", text=answer.text,
                          finish_reason=answer.finish_reason, prompt_tokens=answer.prompt_tokens,
                          completion_tokens=answer.completion_tokens, cost=answer.cost, latency=latency,
                          attempts=attempts, error_class=None, error_message=None, created_at=time.time(),
                          logprobs=answer.logprobs)


async def _attempt(job: Job, key: str | None, run: Shared, pace: Pace, tokens: int,
                   reach: Reachability, models: list[ModelConfig]) -> StoredResponse:
    policy, observer = run.options.retry, run.observer
    attempt = 0
    while True:
        if reach.given_up is not None:  # given up while this job waited for its turn or its backoff
            return failed_response(job, FailureKind.UNREACHABLE, reach.given_up, attempt, None)
        attempt += 1
        # readied (litellm imported, seconds of blocked loop) before pacing, so the tokens taken below are
        # spent at once: taken before a block, they would reach the provider with the next second's at once
        await run.sender.ready(models)
        # every attempt counts against rpm and tpm (providers count refused requests too); over the
        # rate it waits, never drops
        await pace.request(tokens)
        start = time.perf_counter()  # latency is the last attempt's, not the queueing and backoff before it
        try:
            # litellm enforces the timeout on HTTP; this guard also covers a provider that ignores it
            answer = await _in_flight(run, asyncio.wait_for(run.sender.ask(job, key), job.model.timeout + 5))
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
                                 f"({error.message}); its remaining jobs are recorded as failed "
                                 f"({FailureKind.UNREACHABLE}), not sent")
            if not error.retryable or attempt == policy.attempts:
                return failed_response(job, error.error_class, error.message, attempt, time.perf_counter() - start)
            if run.stopping:  # no retry is sent: the job is left to the rerun, as the jobs not sent are
                raise Stopped from None
            observer.retrying(job.model.name, error)
            await asyncio.sleep(policy.delay(attempt, error.retry_after))


async def _in_flight(run: Shared, request: Awaitable[Answer]) -> Answer:
    """Await a request that is being sent, marked as in flight so that stopping the run lets it land."""
    task = asyncio.current_task()
    assert task is not None  # awaited from a worker task
    run.sending.add(task)
    try:
        return await request
    finally:
        run.sending.discard(task)


async def _claim(job: Job, run: Shared) -> StoredResponse | None:
    """Hold the lease on the job's key, or else the answer another run stored while this one waited.

    Returns None once the lease is held (this run asks); a stored answer to reuse otherwise. With
    --fresh an answer stored before this run counts for nothing, one stored since it started does.
    """
    store = run.store
    while True:
        if (stored := _stored(job, run)) is not None:
            return stored
        if store.lease(job.key, run.owner, LEASE_SECONDS):
            # the other run may have stored its answer and let go between our look and our lease
            stored = _stored(job, run)
            if stored is not None:
                store.release(job.key, run.owner)
            return stored
        await asyncio.sleep(POLL_SECONDS)


def _stored(job: Job, run: Shared) -> StoredResponse | None:
    """The job's stored answer, if it counts: with --fresh, only one stored since this run started."""
    stored = run.store.get(job.key)
    if stored is None or (run.options.fresh and stored.created_at < run.started):
        return None
    return stored


async def _model_worker(jobs: Iterator[Job], model: ModelConfig, run: Shared, pace: Pace, reach: Reachability,
                        key: str | None, key_error: str | None, models: list[ModelConfig]) -> None:
    for job in jobs:
        if run.stopping:  # its request in flight landed and is stored; it sends no other
            return
        if key_error is not None:
            stored = _stored(job, run)
            run.finish(Outcome(job, stored, cached=True) if stored else unsent(job, FailureKind.CONFIG, key_error))
            continue
        if reach.given_up is not None:
            stored = _stored(job, run)
            run.finish(Outcome(job, stored, cached=True) if stored else
                       unsent(job, FailureKind.UNREACHABLE, reach.given_up))
            continue
        shared = await _asked(job, run)
        if shared is not None:
            run.finish(shared)
            continue
        answer: asyncio.Future[StoredResponse | None] = asyncio.get_running_loop().create_future()
        run.inflight[job.key] = answer
        asked = None
        try:
            asked = await _ask(job, model, run, pace, reach, key, models)
        except Stopped:
            return
        finally:
            del run.inflight[job.key]
            answer.set_result(asked[0].response if asked is not None else None)
        if asked is None:
            continue
        outcome, estimate = asked
        run.finish(outcome)
        if not outcome.cached and not run.stopping:
            # tokens the estimate missed (a longer answer than max_tokens allowed for, or no max_tokens)
            # are paid once the answer is safe, by this worker waiting before its next request
            r = outcome.response
            await pace.spend((r.prompt_tokens or 0) + (r.completion_tokens or 0) - estimate)


async def _asked(job: Job, run: Shared) -> Outcome | None:
    """If another job of this run is asking the same request (one request per key per store, always), its
    answer or final failure, as this job's; None once no job of this run is asking it."""
    while (asking := run.inflight.get(job.key)) is not None:
        response = await asyncio.shield(asking)  # this job's cancellation must not cancel the other's answer
        if response is not None:
            return Outcome(job, response, cached=True)
        # that job ended unsent (budget, size) or was stopped: this one decides for itself
    return None


async def _ask(job: Job, model: ModelConfig, run: Shared, pace: Pace, reach: Reachability, key: str | None,
               models: list[ModelConfig]) -> tuple[Outcome, int] | None:
    """The job's outcome (with the tokens paced for it): stored already, or asked under the lease on its key;
    None if it was finished unsent."""
    stored = await _claim(job, run)
    if stored is not None:
        return Outcome(job, stored, cached=True), 0
    try:
        estimate = sum(token_estimate(job)) if pace.tokens else 0  # prompt + max_tokens, against the tpm
        if model.tpm and estimate > model.tpm:
            # paced, it would wait estimate/tpm minutes for this one request: say so instead of hanging
            run.finish(unsent(job, FailureKind.TOO_LARGE, f"not sent: an estimated {estimate:,} tokens "
                              f"(prompt + max_tokens) is more than the tpm of model '{model.name}' "
                              f"({model.tpm:g}), a whole minute's budget"))
            return None
        if run.budget.exhausted:
            run.finish(unsent(job, FailureKind.BUDGET, f"not asked: --max-cost {run.budget.limit} reached"))
            return None
        response = await _attempt(job, key, run, pace, estimate, reach, models)
        run.budget.spent += response.cost or 0.0
        # Stored before anyone hears of it, so a crash after this line cannot lose the answer.
        run.store.put(response)
    finally:
        run.store.release(job.key, run.owner)
    return Outcome(job, response, cached=False), estimate


async def _renew(run: Shared) -> None:
    """Keep this run's leases alive while it runs (a request may wait on pacing and backoff for minutes)."""
    while True:
        await asyncio.sleep(RENEW_SECONDS)
        run.store.renew(run.owner, LEASE_SECONDS)


class Runner:
    """One run's requests, in as many stages as it needs (first answers, then judges and follow-ups),
    sharing one store, one budget, one lease owner and each model's rate limits and reachability,
    so a second stage neither starts a fresh budget nor bursts past limits the first one paced.

    `read` is the reader step (the results, which label each outcome); `batches`, when given, takes the
    models it can batch off each stage; `sender` sends the rest one request at a time (default: this
    process, or sender processes as `options.workers` and the stage's concurrency ask).
    """

    def __init__(self, store: Store, options: RunOptions, observer: Observer,
                 read: Callable[[Outcome], None] | None = None, batches: BatchPath | None = None,
                 sender: Sender | None = None, pace: Callable[[ModelConfig], Pace] | None = None) -> None:
        prepared: set[str] = set()
        self.run = Shared(store, options, observer, Budget(options.max_cost), environment_secrets(),
                          sender or Senders(options.workers or 0, prepared), read, prepared=prepared)
        self.batches = batches
        self.pace = pace or (lambda model: Pace(model.rpm, model.tpm))
        self._models: dict[str, tuple[ModelConfig, Pace, Reachability, str | None, str | None]] = {}
        self._workers: list[asyncio.Future[object]] = []  # the running stage's

    def _model(self, model: ModelConfig) -> tuple[ModelConfig, Pace, Reachability, str | None, str | None]:
        if model.name not in self._models:
            try:
                key, key_error = api_key(model), None
            except ConfigError as exc:
                key, key_error = None, str(exc)
            if key:
                self.run.secrets.append(key)
            self._models[model.name] = (model, self.pace(model),
                                        Reachability(model.name, url_without_credentials(model.api_base)
                                                     if model.api_base else None,
                                                     self.run.options.retry.attempts > 1),
                                        key, key_error)
        return self._models[model.name]

    async def stage(self, streams: dict[str, Iterator[Job]], models: list[ModelConfig]) -> None:
        """Run every job of every model's stream; outcomes reach the readers, the observer and the store.
        Raises Stopped if the run was stopped (`stop`) before or during the stage."""
        if self.run.stopping:
            raise Stopped
        workers: list[asyncio.Future[object]] = []
        if self.batches is not None:  # models with a batch API take their streams there; the rest stay here
            models, batched = self.batches(streams, [(m, *self._model(m)[3:]) for m in models], self.run)
            if batched is not None:
                workers.append(asyncio.ensure_future(batched))
        if self.run.options.workers is None:
            self.run.sender.want(auto_count(sum(m.concurrency for m in models if not m.embedded)))
        for model in models:
            config, pace, reach, key, key_error = self._model(model)
            for _ in range(config.concurrency):
                workers.append(asyncio.ensure_future(_model_worker(
                    streams[model.name], config, self.run, pace, reach, key, key_error, models)))
        self._workers = workers
        renewer = asyncio.create_task(_renew(self.run))
        collection = gc.get_threshold()
        gc.set_threshold(*STAGE_COLLECTION)
        try:
            # every worker to its end, cancelled ones too (`stop` cancels those not sending, and the rest must
            # still land), unless one fails: that is a bug, raised at once. A cancelled gather (the batches')
            # ends with CancelledError as its exception rather than as cancelled
            pending: set[asyncio.Future[object]] = set(workers)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = None if task.cancelled() else task.exception()
                    if error is not None and not isinstance(error, asyncio.CancelledError):
                        raise error
        finally:
            for task in [*workers, renewer]:
                task.cancel()
            await asyncio.gather(*workers, renewer, return_exceptions=True)
            self._workers = []
            gc.set_threshold(*collection)  # what follows (results, statistics, report) collects as before
        if self.run.stopping:
            raise Stopped

    def stop(self) -> None:
        """Stop the run. The first call sends no new request (jobs waiting for their turn, pacing or a backoff
        are dropped, unsent) and gives the requests in flight STOP_GRACE_SECONDS to land and be stored; a second
        call, or the grace running out, stops them too. `stage` then raises Stopped."""
        if self.run.stopping:
            self._halt()
            return
        self.run.stopping = True
        asyncio.get_running_loop().call_later(STOP_GRACE_SECONDS, self._halt)
        for task in self._workers:
            if task not in self.run.sending:
                task.cancel()

    def _halt(self) -> None:
        for task in self._workers:
            task.cancel()

    async def close(self) -> None:
        await self.run.sender.close()
        # an interrupted run's leases would otherwise hold others back until they lapse
        self.run.store.release_all(self.run.owner)

    @contextmanager
    def stopped_by_signals(self) -> Iterator[None]:
        """Within it, SIGINT and SIGTERM stop the run (`stop`) rather than raise KeyboardInterrupt in whatever
        task runs then, which lost the answers in flight and left tasks whose exceptions nobody retrieved.
        Only a signal the process already turns into an interruption (SIGINT by Python's default, SIGTERM when
        the CLI asks for it; a plain SIGTERM still ends the process), and only in the main thread, where
        signals arrive. Enter it on the running loop."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {sig: handler for sig in (signal.SIGINT, signal.SIGTERM)
                    if (handler := signal.getsignal(sig)) not in (signal.SIG_DFL, signal.SIG_IGN, None)}
        for sig in previous:
            loop.add_signal_handler(sig, self.stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)  # which leaves the default handler, not the one before
                signal.signal(sig, handler)

    @property
    def unreachable(self) -> dict[str, str]:
        """The models given up as unreachable, each with the address that did not answer."""
        return {name: m[2].address or "" for name, m in self._models.items() if m[2].given_up is not None}
