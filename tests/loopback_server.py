"""OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

In tests it runs on its own event loop in a daemon thread (``with LoopbackServer(...) as s``);
for benchmarks it runs in the foreground as a subprocess::

    python tests/loopback_server.py --latency 0.05 --port 0 --reply ok   # prints "PORT <n>"

Rules script replies and faults (429, 500, hang, drop, malformed) by substring of the request's
message contents, so client retry/timeout handling can be tested over real HTTP; `on_request`
runs on each chat request as it arrives, for behaviour rules cannot script. The server records
each request (`requests`), its arrival time (`arrived`) and the most requests it held at once per
model (`peak_in_flight`). In tests, start it with conftest's `loopback` fixture.

Text completions (`POST /v1/completions`, a base model's endpoint) are answered like chat requests, the
rules matching the prompt, with the reply as the choice's `text`.

It also serves OpenAI's files and batches endpoints (`POST /v1/files`, `POST /v1/batches`,
`GET /v1/batches/{id}`, `GET /v1/files/{id}/content`). A batch stays `in_progress` for
`batch_polls` retrievals (an int, or one per batch in creation order), then answers every input
line as the chat endpoint would, by the same rules: a line whose rule faults with "hang" is left
undone and the batch ends `expired` (OpenAI's end for a batch past its window, with what it
finished); "malformed" writes a truncated line to the output file; any other fault puts the line in
the error file with its HTTP status. `GET /v1/batches` lists batches newest first. `batch_create_faults`
scripts the next batch creations, one entry each: "lost" creates the batch and then drops the
connection (the client never hears its id), "500" answers 500 without creating it;
`batch_retrieve_faults` makes that many of the next batch retrievals answer 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

Fault = Literal["429", "500", "hang", "drop", "malformed"]

HANG_SECONDS = 3600.0
# Bounds stop(): after hangs are cancelled only short latency sleeps can still be in flight.
SHUTDOWN_TIMEOUT = 5.0
# Truncated JSON: parsers fail on it, yet status and content-type look like a success.
MALFORMED_BODY = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{'


@dataclass
class Rule:
    """Scripted behaviour for requests whose message contents contain ``contains``."""

    contains: str
    reply: str | None = None
    fault: Fault | None = None
    times: int | None = None
    retry_after: float | None = None


def message_text(body: dict[str, Any]) -> str:
    """All message contents of a request, one message per line (a text completion's: its prompt).

    Joined with newlines (not "") so a rule cannot match across a message boundary by accident.
    Content-part lists (``[{"type": "text", "text": ...}]``) contribute their text parts.
    """
    if isinstance(body.get("prompt"), str):  # POST /v1/completions
        return str(body["prompt"])
    parts: list[str] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "\n".join(parts)


def _error_body(message: str, err_type: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


class LoopbackServer:
    """aiohttp chat-completions server; see the module docstring."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        default_reply: str | Callable[[dict], str] = "ok",
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_polls: int | Sequence[int] = 1,
        batch_create_faults: Sequence[Literal["lost", "500"]] = (),
        batch_retrieve_faults: int = 0,
        on_request: Callable[[dict], None] | None = None,
    ) -> None:
        self.rules: list[Rule] = list(rules)
        self.default_reply = default_reply
        self.latency = latency
        self.host = host
        self.port = port
        self.requests: list[dict] = []
        # Benchmarks switch this off so a long run does not accumulate every body.
        self.record_requests = True
        self._requests_lock = threading.Lock()
        # The hook for behaviour rules cannot script (killing a process, say): called with each chat
        # request's body as it arrives, on the server's loop, before any rule applies.
        self.on_request = on_request
        # (time.monotonic(), message text) of each recorded request, in arrival order: Retry-After
        # and pacing are checked against these.
        self.arrived: list[tuple[float, str]] = []
        # The most chat requests held at once, per request `model` field; a concurrency limit shows here.
        self.peak_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        # Hanging requests stop() cancelled: it cancels them rather than waiting for them.
        self.hangs_cancelled = 0
        # Matches per rule index, to apply `times`; only touched on the server loop.
        self._matches: dict[int, int] = {}
        self._hangs: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.batch_polls = batch_polls
        self.batch_create_faults = list(batch_create_faults)
        self.batch_retrieve_faults = batch_retrieve_faults
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # id -> the batch object as last served
        self.batch_lines: list[dict] = []  # every request body answered through a batch, in order
        self.downloads: list[str] = []  # the id of every file whose content was asked for, in order
        self._polls: dict[str, int] = {}

    # ---- public API -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LoopbackServer:
        """Serve in a daemon thread; returns once the socket is listening (``.port`` is set)."""
        if self._thread is not None:
            raise RuntimeError("LoopbackServer already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._thread_main, name="loopback-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("LoopbackServer failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Cancel hanging requests, close the listener and connections, join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already finished on its own
                loop.call_soon_threadsafe(stop_event.set)
        thread.join()
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def count(self, substring: str) -> int:
        """Number of received requests whose message contents contain ``substring``."""
        with self._requests_lock:
            snapshot = list(self.requests)
        return sum(1 for body in snapshot if substring in message_text(body))

    # ---- serving ----------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.serve(on_ready=self._ready.set))
        except BaseException as exc:  # must reach start() instead of dying silently in the thread
            self._startup_error = exc
        finally:
            # Unblocks start() even when startup failed before on_ready ran.
            self._ready.set()

    async def serve(
        self,
        on_ready: Callable[[], None] | None = None,
        stop_signals: Sequence[signal.Signals] = (),
    ) -> None:
        """Listen until stop() (or one of ``stop_signals``), then shut down cleanly."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            await self._open()
            for sig in stop_signals:
                self._loop.add_signal_handler(sig, self._stop_event.set)
            if on_ready is not None:
                on_ready()
            await self._stop_event.wait()
        finally:
            await self._close()

    def _build_app(self) -> web.Application:
        # a batch input file may be up to 200 MB (aiohttp's default would refuse a body over 1 MB)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        # text completions (a base model's): answered by the same rules, matched against the prompt
        app.router.add_post("/v1/completions", self._handle_chat)
        app.router.add_post("/chat/completions", self._handle_chat)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/models", self._handle_models)
        app.router.add_post("/v1/files", self._handle_file_upload)
        app.router.add_get("/v1/files/{file_id}/content", self._handle_file_content)
        app.router.add_post("/v1/batches", self._handle_batch_create)
        app.router.add_get("/v1/batches", self._handle_batch_list)
        app.router.add_get("/v1/batches/{batch_id}", self._handle_batch_retrieve)
        return app

    async def _open(self) -> None:
        # access_log=None: per-request logging would cap benchmark throughput.
        # handle_signals=False: signals belong to the host process (pytest, or our CLI handlers).
        runner = web.AppRunner(
            self._build_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        # port=0 lets the OS choose; report the real port.
        self.port = runner.addresses[0][1]

    async def _close(self) -> None:
        # Hangs would otherwise hold graceful shutdown for SHUTDOWN_TIMEOUT.
        for task in list(self._hangs):
            task.cancel()
            self.hangs_cancelled += 1
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- handlers ---------------------------------------------------------------------------

    async def _handle_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "test", "object": "model", "created": 0, "owned_by": "loopback"}]}
        )

    def _select(self, text: str) -> tuple[Rule | None, bool]:
        """First matching rule, and whether its fault applies to this request."""
        for i, rule in enumerate(self.rules):
            if rule.contains in text:
                seen = self._matches[i] = self._matches.get(i, 0) + 1
                faulty = rule.fault is not None and (rule.times is None or seen <= rule.times)
                return rule, faulty
        return None, False

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                _error_body("request body is not valid JSON", "invalid_request_error", None), status=400
            )
        if not isinstance(body, dict):
            return web.json_response(
                _error_body("request body must be a JSON object", "invalid_request_error", None), status=400
            )
        text = message_text(body)
        if self.record_requests:
            with self._requests_lock:
                self.requests.append(body)
                self.arrived.append((time.monotonic(), text))
        if self.on_request is not None:
            self.on_request(body)
        # every handler runs on the server's one event loop: no lock needed around the counts
        model = str(body.get("model"))
        self._in_flight[model] = self._in_flight.get(model, 0) + 1
        self.peak_in_flight[model] = max(self.peak_in_flight.get(model, 0), self._in_flight[model])
        try:
            return await self._answer(request, body, text)
        finally:
            self._in_flight[model] -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any], text: str) -> web.StreamResponse:
        if body.get("stream"):
            return web.json_response(
                _error_body("streaming is not supported by the loopback server", "invalid_request_error", None),
                status=400,
            )

        # Select before any await so `times` follows arrival order under concurrency.
        rule, faulty = self._select(text)
        fault = rule.fault if rule is not None and faulty else None

        if fault == "hang":
            await self._hang()
        if self.latency > 0:
            await asyncio.sleep(self.latency)

        if fault == "429":
            headers = {}
            if rule is not None and rule.retry_after is not None:
                headers["Retry-After"] = f"{rule.retry_after:g}"
            return web.json_response(
                _error_body("Rate limit reached (loopback fault)", "rate_limit_error", "rate_limit_exceeded"),
                status=429,
                headers=headers,
            )
        if fault == "500":
            return web.json_response(
                _error_body("Internal server error (loopback fault)", "server_error", None), status=500
            )
        if fault == "drop":
            return self._drop(request)
        if fault == "malformed":
            return web.Response(status=200, body=MALFORMED_BODY, content_type="application/json")

        if rule is not None and rule.reply is not None:
            reply = rule.reply
        elif callable(self.default_reply):
            reply = self.default_reply(body)
        else:
            reply = self.default_reply
        return web.json_response(self._completion(body, text, reply))

    # ---- files and batches ----------------------------------------------------------------------

    def _new_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex}"
        self.files[file_id] = content
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    async def _handle_file_upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return web.json_response(_error_body("no file in the upload", "invalid_request_error", None), status=400)
        return web.json_response(self._new_file(upload.file.read(), upload.filename, str(form.get("purpose", ""))))

    async def _handle_file_content(self, request: web.Request) -> web.Response:
        self.downloads.append(request.match_info["file_id"])
        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return web.json_response(_error_body("no such file", "invalid_request_error", None), status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    async def _handle_batch_create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("input_file_id") not in self.files:
            return web.json_response(_error_body("no such input file", "invalid_request_error", None), status=400)
        fault = self.batch_create_faults.pop(0) if self.batch_create_faults else None
        if fault == "500":
            return web.json_response(_error_body("Internal server error (loopback fault)", "server_error", None),
                                     status=500)
        batch_id = f"batch_{uuid.uuid4().hex}"
        total = len(self.files[body["input_file_id"]].splitlines())
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
            "in_progress_at": None, "expires_at": None, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": total, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }
        self._polls[batch_id] = 0
        if fault == "lost":
            return self._drop(request)
        return web.json_response(self.batches[batch_id])

    async def _handle_batch_list(self, request: web.Request) -> web.Response:
        newest_first = list(reversed(self.batches.values()))
        after = request.query.get("after")
        if after is not None:
            newest_first = newest_first[[b["id"] for b in newest_first].index(after) + 1:]
        limit = int(request.query.get("limit", "20"))
        page = newest_first[:limit]
        return web.json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None, "has_more": len(newest_first) > limit})

    def _polls_needed(self, batch_id: str) -> int:
        if isinstance(self.batch_polls, int):
            return self.batch_polls
        n = list(self.batches).index(batch_id)
        return self.batch_polls[min(n, len(self.batch_polls) - 1)]

    async def _handle_batch_retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return web.json_response(_error_body("no such batch", "invalid_request_error", None), status=404)
        if self.batch_retrieve_faults > 0:
            self.batch_retrieve_faults -= 1
            return web.json_response(_error_body("Internal server error (loopback fault)", "server_error", None),
                                     status=500)
        if batch["status"] in ("validating", "in_progress"):
            self._polls[batch["id"]] += 1
            if self._polls[batch["id"]] >= self._polls_needed(batch["id"]):
                self._finish_batch(batch)
            else:
                batch["status"] = "in_progress"
        return web.json_response(batch)

    def _finish_batch(self, batch: dict[str, Any]) -> None:
        """Answer every line of the batch's input file, writing its output and error files."""
        done: list[str] = []
        failed: list[str] = []
        undone = 0
        for raw in self.files[batch["input_file_id"]].splitlines():
            line = json.loads(raw)
            body = line["body"]
            self.batch_lines.append(body)
            text = message_text(body)
            rule, faulty = self._select(text)
            fault = rule.fault if rule is not None and faulty else None
            if fault == "hang":
                undone += 1
                continue
            if fault == "malformed":
                done.append(MALFORMED_BODY.decode())
                continue
            if fault is not None:
                status = 429 if fault == "429" else 500
                error = _error_body(f"loopback fault {fault}", "server_error", None)
                failed.append(json.dumps({"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line["custom_id"],
                                          "response": {"status_code": status, "body": error}, "error": None}))
                continue
            reply = (rule.reply if rule is not None and rule.reply is not None
                     else self.default_reply(body) if callable(self.default_reply) else self.default_reply)
            done.append(json.dumps({"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line["custom_id"],
                                    "response": {"status_code": 200, "request_id": uuid.uuid4().hex,
                                                 "body": self._completion(body, text, reply)}, "error": None}))
        now = int(time.time())
        if done:
            batch["output_file_id"] = self._new_file("".join(d + "\n" for d in done).encode(), "output.jsonl",
                                                     "batch_output")["id"]
        if failed:
            batch["error_file_id"] = self._new_file("".join(f + "\n" for f in failed).encode(), "errors.jsonl",
                                                    "batch_output")["id"]
        batch["request_counts"] = {"total": len(done) + len(failed) + undone, "completed": len(done),
                                   "failed": len(failed)}
        batch["status"] = "expired" if undone else "completed"
        batch["expired_at" if undone else "completed_at"] = now

    async def _hang(self) -> None:
        # Tracked so stop() can cancel it: the client gives up long before the sleep ends.
        task = asyncio.current_task()
        if task is not None:
            self._hangs.add(task)
        try:
            await asyncio.sleep(HANG_SECONDS)
        finally:
            if task is not None:
                self._hangs.discard(task)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        # Close the socket without writing a status line: the client sees "server disconnected".
        # force_close() stops aiohttp from keeping the connection alive for another request.
        request.protocol.force_close()
        if request.transport is not None:
            request.transport.close()
        # Nothing can be written any more; returning a response lets aiohttp finish the request.
        return web.Response(status=200)

    @staticmethod
    def _completion(body: dict[str, Any], text: str, reply: str) -> dict[str, Any]:
        prompt_tokens = len(text.split())
        completion_tokens = len(reply.split())
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if "prompt" in body:  # a text completion: OpenAI's legacy shape, the reply as the choice's `text`
            return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                    "model": body.get("model", "loopback"),
                    "choices": [{"index": 0, "text": reply, "logprobs": None, "finish_reason": "stop"}],
                    "usage": usage}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "loopback"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }


# ---- CLI ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve OpenAI-compatible chat completions on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = let the OS choose (printed as 'PORT <n>')")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument("--reply", default="ok", help="reply text for every request")
    args = parser.parse_args(argv)

    server = LoopbackServer(default_reply=args.reply, latency=args.latency, host=args.host, port=args.port)
    server.record_requests = False

    def announce() -> None:
        # The parent process reads this line to learn the port; flush because stdout is a pipe.
        print(f"PORT {server.port}", flush=True)

    asyncio.run(server.serve(on_ready=announce, stop_signals=(signal.SIGTERM, signal.SIGINT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
