"""Issue 14, items 3 and 6: a connection failure names the address it tried; credentials in a spec's
parameters are found (to be refused) and redacted (if they reach a row anyway).

The connection tests talk real HTTP to 127.0.0.1 only: a port nobody listens on, and the loopback server.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from evalrun.providers import classify, litellm_module

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule


def _closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago and has no listener now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _failure(api_base: str, text: str = "hello") -> BaseException:
    litellm = litellm_module()

    async def ask() -> None:
        await litellm.acompletion(model="openai/test", api_base=api_base, api_key="x", num_retries=0, timeout=5,
                                  messages=[{"role": "user", "content": text}])

    with pytest.raises(Exception) as info:
        asyncio.run(ask())
    return info.value


def test_a_refused_connection_names_the_address_it_tried() -> None:
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    exc = _failure(base)
    assert "Connection error." in str(exc)  # all that litellm says
    error = classify(exc, [], address=base)
    assert error.message == f"Connection error ({base}): Connection refused"
    assert error.retryable
    assert error.unreachable  # nothing was sent: the lead's runner may give the model up


def test_without_the_address_the_url_of_the_request_is_named() -> None:
    port = _closed_port()
    error = classify(_failure(f"http://127.0.0.1:{port}/v1"), [])  # the runner's call as it is today
    assert error.message == f"Connection error (http://127.0.0.1:{port}/v1/chat/completions): Connection refused"


def test_the_address_shown_carries_no_credentials() -> None:
    port = _closed_port()
    exc = _failure(f"http://127.0.0.1:{port}/v1")
    error = classify(exc, [], address=f"http://user:hunter2secret@127.0.0.1:{port}/v1?key=abcdef123456")
    assert error.message == f"Connection error (http://127.0.0.1:{port}/v1): Connection refused"


def test_a_dropped_connection_names_the_address_but_the_server_was_reached() -> None:
    with LoopbackServer([Rule(contains="vanish", fault="drop")]) as server:
        error = classify(_failure(server.base_url, "vanish"), [], address=server.base_url)
    assert error.message == f"Connection error ({server.base_url}): Server disconnected"
    assert error.retryable and not error.unreachable


def test_an_answered_error_keeps_its_own_message() -> None:
    with LoopbackServer([Rule(contains="boom", fault="500")]) as server:
        exc = _failure(server.base_url, "boom")
    error = classify(exc, [], address=server.base_url)
    assert "Connection error" not in error.message
    assert error.message == " ".join(str(exc).split())
    assert not error.unreachable


def test_credential_params_names_keys_that_hold_credentials() -> None:
    from evalrun.redact import credential_params

    params = {
        "temperature": 0.7, "max_tokens": 200, "max_completion_tokens": 100, "top_k": 5, "seed": 1,
        "prompt_cache_key": "run-7",  # an OpenAI routing key, not a credential
        "api_key": "sk-abc", "apiKey": "x", "aws_secret_access_key": "x", "aws_session_token": "x",
        "vertex_credentials": "{}", "password": "x",
        "extra_headers": {"Authorization": "Bearer x", "x-api-key": "x", "api-key": "x", "X-Request-Id": "7",
                          "Cookie": "session=1"},
        "extra_body": {"metadata": {"user_token": "x", "user": "me"}},
    }
    assert credential_params(params) == [
        "api_key", "apiKey", "aws_secret_access_key", "aws_session_token", "vertex_credentials", "password",
        "extra_headers.Authorization", "extra_headers.x-api-key", "extra_headers.api-key", "extra_headers.Cookie",
        "extra_body.metadata.user_token",
    ]
    assert credential_params({"temperature": 0, "max_tokens": 5, "stop": ["key:"]}) == []


def test_redact_params_hides_credential_values_and_keeps_the_rest() -> None:
    from evalrun.redact import redact_params

    params = {"temperature": 0.7, "api_key": "hunter2", "extra_headers": {"Authorization": "Basic dXNlcjpwdw==",
                                                                          "X-Trace": "on"},
              "extra_body": {"note": "sk-proj-abcdefghijkl", "list": [{"token": "t0ps3cret"}]}}
    out = redact_params(params)
    assert out == {"temperature": 0.7, "api_key": "[REDACTED]",
                   "extra_headers": {"Authorization": "[REDACTED]", "X-Trace": "on"},
                   "extra_body": {"note": "[REDACTED]", "list": [{"token": "[REDACTED]"}]}}
    assert params["api_key"] == "hunter2"  # a copy: the request itself still gets what the spec says


@pytest.mark.parametrize(("text", "expected"), [
    ('{"api_key": "hunter2 two", "max_tokens": 5}', '{"api_key": "[REDACTED]", "max_tokens": 5}'),
    ("{'api_key': 'hunter2'}", "{'api_key': '[REDACTED]'}"),
    ("Authorization: Basic dXNlcjpwdw== was refused", "Authorization: [REDACTED] was refused"),
    ("GET /v1?key=hunter2&alt=json", "GET /v1?key=[REDACTED]&alt=json"),
    ("extra_headers:\n  x-api-key: hunter2\n", "extra_headers:\n  x-api-key: [REDACTED]\n"),
    ("max_tokens: 200, prompt_cache_key: run-7", "max_tokens: 200, prompt_cache_key: run-7"),
])
def test_redact_removes_values_given_to_credential_names(text: str, expected: str) -> None:
    from evalrun.redact import redact

    assert redact(text, []) == expected
