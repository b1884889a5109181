"""LoopbackServer driven through real HTTP with litellm (offline: 127.0.0.1 only).

The exception classes asserted here are what litellm 1.106.2 raises for each fault, so the
caller's retry classification can rely on them:

- 429       -> litellm.RateLimitError      (openai.RateLimitError, status_code 429)
- 500       -> litellm.InternalServerError (openai.InternalServerError, status_code 500)
- hang      -> litellm.Timeout             (openai.APITimeoutError -> openai.APIConnectionError;
                                            NOT a subclass of litellm.APIConnectionError)
- drop      -> litellm.InternalServerError ("Connection error.", status_code 500): litellm maps
               the SDK's connection error to InternalServerError, not APIConnectionError
- malformed -> litellm.InternalServerError (JSON decode message, status_code 500)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the cost map over the network

import litellm  # must follow the environment setting above

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

litellm.suppress_debug_info = True  # keeps the "Give Feedback" banner out of test output


async def _complete(server: LoopbackServer, content: str, timeout: float = 2.0, **kwargs: Any) -> Any:
    return await litellm.acompletion(
        model="openai/test",
        api_base=server.base_url,
        api_key="sk-test",
        messages=[{"role": "user", "content": content}],
        num_retries=0,
        timeout=timeout,
        **kwargs,
    )


async def _error_of(server: LoopbackServer, content: str, timeout: float = 2.0) -> Exception:
    try:
        await _complete(server, content, timeout=timeout)
    except Exception as exc:  # the test inspects whatever litellm raised
        return exc
    raise AssertionError(f"request {content!r} unexpectedly succeeded")


def _http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_scripted_reply_default_reply_and_usage() -> None:
    rules = [Rule(contains="capital of France", reply="Paris is the capital")]
    with LoopbackServer(rules, default_reply=lambda body: f"echo {body['model']}") as server:

        async def run() -> tuple[Any, Any]:
            scripted = await litellm.acompletion(
                model="openai/test",
                api_base=server.base_url,
                api_key="sk-test",
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
                num_retries=0,
                timeout=2,
            )
            default = await _complete(server, "something else")
            return scripted, default

        scripted, default = asyncio.run(run())

    assert scripted.choices[0].message.content == "Paris is the capital"
    assert scripted.choices[0].finish_reason == "stop"
    # "Be brief." (2 words) + "What is the capital of France?" (6 words)
    assert scripted.usage.prompt_tokens == 8
    assert scripted.usage.completion_tokens == 4
    assert scripted.usage.total_tokens == 12
    # The callable default reply gets the request body; the model name is echoed unprefixed.
    assert default.choices[0].message.content == "echo test"
    assert server.requests[0]["model"] == "test"


def test_429_is_rate_limit_error_with_retry_after() -> None:
    with LoopbackServer([Rule(contains="limited", fault="429", retry_after=1.5)]) as server:
        exc = asyncio.run(_error_of(server, "limited"))
    assert type(exc) is litellm.RateLimitError
    assert exc.status_code == 429
    assert exc.litellm_response_headers["retry-after"] == "1.5"
    assert len(server.requests) == 1  # num_retries=0: litellm and the SDK did not retry


def test_500_is_internal_server_error() -> None:
    with LoopbackServer([Rule(contains="boom", fault="500")]) as server:
        exc = asyncio.run(_error_of(server, "boom"))
    assert type(exc) is litellm.InternalServerError
    assert exc.status_code == 500


def test_hang_is_timeout_and_stop_cancels_it() -> None:
    server = LoopbackServer([Rule(contains="stuck", fault="hang")]).start()
    try:
        exc = asyncio.run(_error_of(server, "stuck", timeout=0.5))
    finally:
        server.stop()
    # The handler still sleeps after the client gave up; stop() must cancel it rather than wait for it.
    assert server.hangs_cancelled == 1
    assert type(exc) is litellm.Timeout
    # Timeout derives from openai.APIConnectionError but not from litellm.APIConnectionError.
    assert not isinstance(exc, litellm.APIConnectionError)


def test_drop_is_internal_server_error() -> None:
    with LoopbackServer([Rule(contains="vanish", fault="drop")]) as server:
        exc = asyncio.run(_error_of(server, "vanish"))
    # litellm 1.106.2 reports a connection closed without a response as InternalServerError
    # ("Connection error.", status_code 500), not as litellm.APIConnectionError.
    assert type(exc) is litellm.InternalServerError
    assert "Connection error" in str(exc)
    assert len(server.requests) == 1


def test_malformed_is_internal_server_error() -> None:
    with LoopbackServer([Rule(contains="garbled", fault="malformed")]) as server:
        exc = asyncio.run(_error_of(server, "garbled"))
    # The 200 body fails to parse; litellm wraps the JSON error as InternalServerError.
    assert type(exc) is litellm.InternalServerError


def test_times_limits_fault_then_rule_replies() -> None:
    rules = [Rule(contains="flaky", reply="recovered", fault="500", times=1)]
    with LoopbackServer(rules) as server:

        async def run() -> tuple[Exception, Any]:
            first = await _error_of(server, "flaky")
            second = await _complete(server, "flaky")
            return first, second

        first, second = asyncio.run(run())
    assert type(first) is litellm.InternalServerError
    assert second.choices[0].message.content == "recovered"
    assert server.count("flaky") == 2


def test_first_matching_rule_wins_and_latency() -> None:
    rules = [Rule(contains="alpha", reply="first"), Rule(contains="alpha beta", reply="second")]
    with LoopbackServer(rules, latency=0.2) as server:
        started = time.monotonic()
        reply = asyncio.run(_complete(server, "alpha beta"))
        elapsed = time.monotonic() - started
    assert reply.choices[0].message.content == "first"
    assert elapsed >= 0.2


def test_requests_and_count_include_faulted_requests() -> None:
    rules = [Rule(contains="bad", fault="429"), Rule(contains="worse", fault="malformed")]
    with LoopbackServer(rules) as server:

        async def run() -> None:
            await _complete(server, "good one")
            await _error_of(server, "bad one")
            await _error_of(server, "worse one")
            await _complete(server, "good two")

        asyncio.run(run())
    contents = [body["messages"][0]["content"] for body in server.requests]
    assert contents == ["good one", "bad one", "worse one", "good two"]
    assert server.count("good") == 2
    assert server.count("one") == 3
    assert server.count("bad") == 1
    assert server.count("missing") == 0


def test_routes_models_and_stream_rejected() -> None:
    with LoopbackServer(default_reply="plain") as server:
        root = server.base_url.removesuffix("/v1")
        status, models = _http(f"{server.base_url}/models")
        assert status == 200 and models["object"] == "list"
        # The route without /v1 answers too (some clients strip it).
        status, body = _http(
            f"{root}/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "a b"}]}
        )
        assert status == 200
        assert body["object"] == "chat.completion" and body["model"] == "m"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "plain"}
        assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
        status, body = _http(f"{server.base_url}/chat/completions", {"model": "m", "messages": [], "stream": True})
        assert status == 400 and "error" in body


def test_cli_prints_port_serves_and_stops_on_sigterm() -> None:
    script = Path(__file__).with_name("loopback_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--latency", "0.01", "--port", "0", "--reply", "cli ok"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT ")
        port = int(line.split()[1])
        status, body = _http(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert status == 200 and body["choices"][0]["message"]["content"] == "cli ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_failure_raises() -> None:
    with LoopbackServer() as server, pytest.raises(RuntimeError):
        LoopbackServer(port=server.port).start()
