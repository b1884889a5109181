"""Sender processes: litellm's per-request CPU spread over several processes.

litellm spends about 5 ms of CPU on every call (the OpenAI SDK building the request and parsing the
answer, litellm pricing it and building a logging payload), so one process tops out at about 200
requests a second however high the concurrency (bench/throughput.py). A stage whose remote models
may have enough requests in flight to hit that ceiling starts sender processes; each takes requests
and gives back plain data, an Answer or a classified CallError. The run's process keeps everything
else: the store and its leases, pacing, the cost budget, retries, reachability, labelling, progress.
So rate limits and the budget stay the run's own instead of being split between processes, and one
process writes the store. Embedded models are always asked in the run's process (their weights are
loaded there once).

Protocol, over a socketpair (not stdout: litellm and custom providers may print), each frame a
4-byte big-endian length and a pickle:

    run -> sender   ("model", id, ModelConfig)    before a model's first request: ready it (import litellm)
                    ("send", id, model name, messages, params, key)
                    ("cancel", id)                the run stopped waiting (timeout, interrupt)
    sender -> run   ("ok", id, Answer)  or  ("error", id, the fields of a CallError)
                    ("ok", id, None)              the model is ready: its requests are sent as they come

A CallError is sent as its fields because an exception pickles as its args, which a frozen
dataclass's are not. A sender exits when its connection closes, so a killed run leaves none behind.
A sender that dies fails its requests in flight as WorkerDied, which the runner retries like any
dropped connection, and is not used again; with none left, requests are sent in the run's process.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import pickle
import signal
import socket
import struct
import sys
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

from .errors import FailureKind
from .jobs import Job
from .providers import Answer, CallError, classify, prepare, send
from .redact import environment_secrets
from .spec import ModelConfig

_LENGTH = struct.Struct(">I")
# Requests in flight that make a sender worth its cost (~3 s of CPU to import litellm, ~150 MB of memory):
# 50 in flight at a fast provider's quarter-second latency are 200 requests a second, one process's ceiling.
PER_SENDER = 50
STDERR_TAIL = 2000  # bytes of a sender's stderr kept to explain its death
CLOSE_SECONDS = 5.0  # a sender told to stop that has not exited by then is killed
# The collector's thresholds while requests are sent, in a sender process and in the run's own while a stage
# runs (Python's default: 700, 10, 10). Each request leaves thousands of short-lived objects (litellm's
# response, pricing and logging objects where it is sent; the outcome, the stored row and the labels in the
# run's process), and collecting the young generation every 700 allocations spends the CPU finding almost
# nothing: 10-16% of the run phase with --workers 0 at 5,000 requests (bench/README.md), a tenth of a
# sender's CPU. Every 50,000 it finds the same, a few MB later.
STAGE_COLLECTION = (50_000, 50, 100)


def senders_for(cores: int, pending: int) -> int:
    """Sender processes for a stage that may have `pending` requests to remote models in flight at once, on a
    machine of `cores` usable CPUs.

    The rule: one per PER_SENDER requests in flight, at most one per CPU, and none at all below two (one CPU,
    or fewer than 2 x PER_SENDER in flight: a small stage, which one process sends as fast).

    Why: litellm's ~5 ms of CPU per call caps one process at about 200 requests a second; senders spread it
    over the CPUs. One sender only moves that ceiling to another process, and each costs a litellm import
    (~3 s of CPU) and a pickle of every request and answer, which a small stage does not earn back.

    Why not fewer on a busy machine (the load average): measured on 2 CPUs with other work running (load
    average 3.3-4.1, bench/load.py), two senders beat none in each of three alternating rounds, 22.9 / 25.3 /
    23.1 s against 28.0 / 34.9 / 28.6 s for 4,992 requests. The scheduler shares busy CPUs between runnable
    processes, so three runnable processes get more of them than one; the senders' own costs (an import, the
    pickling) are smaller than the share they add.
    """
    count = min(cores, pending // PER_SENDER)
    return count if count >= 2 else 0


def auto_count(concurrency: int) -> int:
    """`senders_for` this machine: its usable CPUs (the process's affinity, not every CPU it has)."""
    return senders_for(len(os.sched_getaffinity(0)), concurrency)


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


async def _read(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    message: tuple[Any, ...] = pickle.loads(await reader.readexactly(length))
    return message


@dataclass
class _Sender:
    """One sender process, as the run's process sees it."""

    process: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[tuple[Any, ...]]] = field(default_factory=dict)
    stderr: bytearray = field(default_factory=bytearray)
    alive: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # its reader and its stderr drain


class Senders:
    """Where a run's requests are sent from: its own process, or a pool of sender processes.

    `count` senders (0: none, every request is sent in this process) are started when a stage first
    readies its models for sending (`ready`), not before: a rerun whose answers are all stored starts none.
    """

    def __init__(self, count: int, prepared: set[str]) -> None:
        self.count = count
        self.prepared = prepared  # models litellm has been readied for in this process
        self._ready: set[str] = set()  # models ready to send, wherever their requests go from
        self._senders: list[_Sender] = []
        self._started = False
        self._lock = asyncio.Lock()
        self._ids = itertools.count()

    def want(self, count: int) -> None:
        """At least `count` senders, if none has started yet (a later stage cannot grow a running pool)."""
        if not self._started:
            self.count = max(self.count, count)

    async def ready(self, models: list[ModelConfig]) -> None:
        """Ready a stage's models wherever their requests go from, all at once: litellm is imported only
        once something must be asked, and no later readying then blocks the loop while another model's
        paced requests wait to go. Sender processes are told each model and answer once it is ready."""
        if all(m.name in self._ready for m in models):
            return
        async with self._lock:
            models = [m for m in models if m.name not in self._ready]
            if not self._started and self.count and any(not m.embedded for m in models):
                self._senders = [s for s in [await self._start() for _ in range(self.count)] if s is not None]
                self._started = True
            alive = [s for s in self._senders if s.alive]
            remote = [m for m in models if alive and not m.embedded]
            self._here([m for m in models if m not in remote])
            await asyncio.gather(*(self._request(sender, ("model", m)) for sender in alive for m in remote))
            self._ready.update(m.name for m in models)

    def _here(self, models: list[ModelConfig]) -> None:
        """Ready models for sending from this process."""
        fresh = [m for m in models if m.name not in self.prepared]
        if fresh:
            prepare(fresh)
            self.prepared.update(m.name for m in fresh)

    async def ask(self, job: Job, key: str | None) -> Answer:
        """One attempt at the job's request (its model readied by `ready`). Raises what a failed call raises
        (a CallError when a sender classified it); the runner classifies and retries."""
        model = job.model
        alive = [] if model.embedded else [s for s in self._senders if s.alive]
        if not alive:  # asked here: embedded, no senders, or every sender has died
            self._here([model])
            return await send(model, job.messages, job.params, key)
        sender = min(alive, key=lambda s: len(s.pending))
        kind, payload = await self._request(sender, ("send", model.name, job.messages, job.params, key))
        if kind == "ok":
            answer: Answer = payload
            return answer
        raise CallError(*payload)

    async def _request(self, sender: _Sender, message: tuple[Any, ...]) -> tuple[Any, ...]:
        """Send a message to a sender under a new id and wait for its reply, (kind, payload)."""
        request = next(self._ids)
        reply: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        sender.pending[request] = reply
        sender.writer.write(_frame((message[0], request, *message[1:])))
        try:
            return await reply
        except asyncio.CancelledError:
            if sender.pending.pop(request, None) is not None and sender.alive:
                sender.writer.write(_frame(("cancel", request)))
            raise

    async def _start(self) -> _Sender | None:
        ours, theirs = socket.socketpair()
        # the package's own folder first on the path, so the sender runs this evalrun even when it was
        # imported from a checkout rather than installed
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "evalrun.workers", str(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=env)
        except OSError:  # no process to be had (a limit on processes): this one sends its requests itself
            ours.close()
            return None
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        sender = _Sender(process, writer)
        sender.tasks = [asyncio.create_task(self._replies(sender, reader)),
                        asyncio.create_task(_drain(process, sender.stderr))]
        return sender

    async def _replies(self, sender: _Sender, reader: asyncio.StreamReader) -> None:
        """Hand each reply to the request waiting on it; when the sender's connection ends, fail the rest."""
        try:
            while True:
                kind, request, payload = await _read(reader)
                reply = sender.pending.pop(request, None)
                if reply is not None and not reply.done():  # else the run stopped waiting for it
                    reply.set_result((kind, payload))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            pass
        sender.alive = False
        code = await sender.process.wait()
        why = sender.stderr.decode(errors="replace").strip().splitlines()
        message = (f"evalrun's sender process {sender.process.pid} exited with code {code} while the request "
                   f"was in flight" + (f": {why[-1][:300]}" if why else ""))
        for reply in sender.pending.values():
            if not reply.done():
                reply.set_result(("error", astuple(CallError(FailureKind.WORKER_DIED, message, True, None))))
        sender.pending.clear()

    async def close(self) -> None:
        """Stop the senders: each exits once its connection closes, or is killed after CLOSE_SECONDS."""
        for sender in self._senders:
            sender.writer.close()
        for sender in self._senders:
            try:
                await asyncio.wait_for(sender.process.wait(), CLOSE_SECONDS)
            except TimeoutError:
                sender.process.kill()
                await sender.process.wait()
            for task in sender.tasks:
                task.cancel()
            await asyncio.gather(*sender.tasks, return_exceptions=True)
        self._senders = []


async def _drain(process: asyncio.subprocess.Process, tail: bytearray) -> None:
    """Read a sender's stderr as it comes (a full pipe would stall it), keeping the last STDERR_TAIL bytes."""
    assert process.stderr is not None
    while chunk := await process.stderr.read(4096):
        tail.extend(chunk)
        del tail[:-STDERR_TAIL]


async def _serve(sock: socket.socket) -> None:
    """A sender's loop: one task per request, a reply as each ends, until the run closes the connection."""
    reader, writer = await asyncio.open_connection(sock=sock)
    models: dict[str, ModelConfig] = {}
    tasks: dict[int, asyncio.Task[None]] = {}
    secrets = environment_secrets()

    async def one(request: int, model: ModelConfig, messages: list[dict[str, str]], params: dict[str, object],
                  key: str | None) -> None:
        try:
            reply: tuple[Any, ...] = ("ok", request, await send(model, messages, params, key))
        except Exception as exc:  # as in the runner: every failure becomes data, classified here
            error = classify(exc, [*secrets, key] if key else secrets, address=model.api_base)
            reply = ("error", request, astuple(error))
        finally:
            tasks.pop(request, None)
        writer.write(_frame(reply))

    while True:
        try:
            message = await _read(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            break
        if message[0] == "model":
            _, request, model = message
            prepare([model])
            models[model.name] = model
            # litellm's import leaves some 300,000 objects that live as long as the process; frozen,
            # the collector stops walking them on every full collection
            gc.freeze()
            writer.write(_frame(("ok", request, None)))
        elif message[0] == "send":
            _, request, name, messages, params, key = message
            tasks[request] = asyncio.create_task(one(request, models[name], messages, params, key))
        elif (task := tasks.pop(message[1], None)) is not None:  # "cancel"
            task.cancel()
    left = list(tasks.values())
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the run's process decides what stops, and closes the
    # connection, which ends this loop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*STAGE_COLLECTION)
    asyncio.run(_serve(socket.socket(fileno=int(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
