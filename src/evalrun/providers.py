"""litellm, behind one function: ask a model one job, get back plain data or a classified error.

litellm is imported lazily (it takes seconds) and with its local price list, so
`evalrun --help` and `evalrun validate` stay fast and nothing touches the network.
litellm's own retries and cache are off: the runner retries, and the store caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from .embedded import COMPLETION, MODE
from .errors import ConfigError
from .jobs import Job
from .redact import redact, url_without_credentials
from .spec import ModelConfig


@lru_cache(maxsize=1)
def litellm_module() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.drop_params = True  # a provider that lacks `seed` should not fail the whole run
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def check_models(models: list[ModelConfig]) -> None:
    """Raise ConfigError if an embedded model's file cannot be found (without importing litellm)."""
    from .embedded import gguf_path

    for model in models:
        if model.embedded:
            gguf_path(model.model.split("/", 1)[1])


def prepare(models: list[ModelConfig]) -> None:
    """Import litellm, and register the embedded provider (its models at a price of zero) if any model needs it.

    Called by the runner before a model's first request, not before the run: a rerun whose every
    answer is in the store never imports litellm (seconds saved on every iteration of a spec).
    """
    check_models(models)
    litellm = litellm_module()
    if embedded := {m.model for m in models if m.embedded}:
        from .embedded import register

        register(litellm)
        # priced at zero for litellm's own accounting too, which otherwise looks for a price it cannot have
        # (register_model warns that cache-token prices default to 0: true, and not the user's concern)
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        litellm.register_model({model: {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "mode": "chat",
                                        "litellm_provider": model.split("/", 1)[0]} for model in embedded})


def own_price(model: ModelConfig) -> tuple[float, float] | None:
    """The model's price in USD per million input and output tokens when evalrun has one: the spec's, or zero
    for an embedded model (it runs here); None leaves the price to litellm's list.

    Kept with the model rather than registered with litellm, whose list holds one price per model string:
    registered, a spec's price would also price every other model of that string in the process, such as a
    judge of the same name at another address."""
    if model.price is not None:
        return model.price
    return (0.0, 0.0) if model.embedded else None


def token_cost(prompt_tokens: int | None, completion_tokens: int | None, per_token: tuple[float, float]) -> float:
    """A request's cost at these prices in USD per input and per output token (a count not reported is none)."""
    return (prompt_tokens or 0) * per_token[0] + (completion_tokens or 0) * per_token[1]


def priced(model: ModelConfig) -> bool:
    """Whether the model's answers can be priced: a price of its own (zero, as for embedded models, counts),
    or one in litellm's price list."""
    if own_price(model) is not None:
        return True
    litellm = litellm_module()
    try:
        info = litellm.get_model_info(model.model)
    except Exception:  # litellm raises a bare Exception for a model it has not mapped
        return False
    return info.get("input_cost_per_token") is not None or info.get("output_cost_per_token") is not None


def api_key(model: ModelConfig) -> str | None:
    """The model's key from the environment; a named but unset variable is the user's to fix."""
    if model.api_key_env is None:
        return None
    value = os.environ.get(model.api_key_env)
    if not value:
        raise ConfigError(f"model '{model.name}': environment variable {model.api_key_env} is not set")
    return value


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None  # None: litellm knows no price for this model
    logprobs: str | None = None  # JSON of the tokens' log-probabilities, when asked for and given


@dataclass(frozen=True)
class CallError(Exception):
    """A failed call, classified for the retry policy."""

    error_class: str
    message: str
    retryable: bool
    retry_after: float | None
    unreachable: bool = False  # no connection was made (refused, unknown host, connect timeout): nothing was sent


_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}


def classify(exc: BaseException, secrets: list[str], address: str | None = None) -> CallError:
    """Decide whether a failed call is worth another attempt.

    A failure to connect, which litellm reports only as "Connection error.", becomes
    "Connection error (ADDRESS): REASON", e.g. "Connection error (http://127.0.0.1:9/v1): Connection refused":
    ADDRESS is `address` (the model's api_base) or else the URL of the request that failed, either without
    user info or query string, which may hold credentials.

    What litellm 1.106.2 raises against an OpenAI-compatible server (see tests/test_faults.py):
    429 -> RateLimitError (Retry-After in `exc.litellm_response_headers`; `exc.response` is a
    stand-in with no headers), 5xx -> InternalServerError, a dropped connection and a malformed
    JSON body -> InternalServerError too (status 500), a timeout -> Timeout (status 408, not a
    subclass of litellm.APIConnectionError). Request errors (400, 401, 403, 404, 422, context
    window, content policy) would fail the same way again, so they are final.

    A CallError is already classified (a sender process classified it there) and comes back unchanged,
    so the run's process need not import litellm to read it.
    """
    if isinstance(exc, CallError):
        return exc
    litellm = litellm_module()
    never = (litellm.BadRequestError, litellm.AuthenticationError, litellm.NotFoundError,
             litellm.PermissionDeniedError, litellm.UnprocessableEntityError, litellm.ContextWindowExceededError,
             litellm.ContentPolicyViolationError)
    again = (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError, litellm.InternalServerError,
             litellm.ServiceUnavailableError, TimeoutError, asyncio.TimeoutError, ConnectionError)
    if isinstance(exc, never):
        retryable = False
    elif isinstance(exc, again):
        retryable = True
    else:
        retryable = getattr(exc, "status_code", None) in _RETRY_STATUS
    message = " ".join(str(exc).split())
    unreachable = False
    if (failed := _connection_failure(exc)) is not None:
        import httpx  # litellm's (and the OpenAI SDK's) transport, already imported with litellm

        where = address
        if where is None:
            with contextlib.suppress(RuntimeError):  # httpx raises it when the error carries no request
                where = str(failed.request.url)
        message = f"Connection error ({url_without_credentials(where)})" if where else "Connection error"
        message += f": {_reason(exc)}"
        unreachable = isinstance(failed, (httpx.ConnectError, httpx.ConnectTimeout))
    message = redact(message, secrets)[:500] or type(exc).__name__
    return CallError(type(exc).__name__, message, retryable, retry_after(exc), unreachable)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was raised from, outermost first."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in out):
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _connection_failure(exc: BaseException) -> Any:
    """The httpx error beneath a failed call if the connection failed or broke (a read timeout is a
    timeout, reported as such), else None."""
    import httpx

    for inner in _chain(exc):
        if isinstance(inner, httpx.TransportError):
            timed_out = isinstance(inner, httpx.TimeoutException) and not isinstance(inner, httpx.ConnectTimeout)
            return None if timed_out else inner
    return None


def _reason(exc: BaseException) -> str:
    """The innermost cause in words: "Connection refused", "Name or service not known", "Server disconnected"."""
    root = _chain(exc)[-1]
    if isinstance(root, OSError) and root.errno is not None and root.errno > 0:
        return os.strerror(root.errno)  # asyncio's own text for a refusal is "Connect call failed (...)"
    if isinstance(root, OSError) and root.strerror:  # socket.gaierror: negative errno, its own text
        return root.strerror
    return " ".join(str(root).split()) or type(root).__name__


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait, from whichever headers litellm kept, if any."""
    for found in (getattr(exc, "litellm_response_headers", None),
                  getattr(getattr(exc, "response", None), "headers", None)):
        if not found:
            continue
        headers = {str(k).lower(): v for k, v in found.items()}  # a plain dict is case-sensitive
        if (ms := headers.get("retry-after-ms")) is not None:  # OpenAI's finer-grained variant
            with contextlib.suppress(ValueError):
                return max(0.0, float(ms) / 1000)
        if (value := headers.get("retry-after")) is not None:
            with contextlib.suppress(ValueError):
                return max(0.0, float(value))
            with contextlib.suppress(TypeError, ValueError):  # the HTTP-date form
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


async def send(model: ModelConfig, messages: list[dict[str, str]], params: dict[str, object],
               key: str | None) -> Answer:
    """Send one request. Raises whatever litellm raises; the runner classifies it.

    Takes plain fields, not a Job, so a sender process (see workers) can be handed a request without the
    design cell and dataset row a Job carries.

    A request whose params hold `evalrun_mode: completion` (a variant or model in `mode: completion`) is a
    raw text completion of its one message's text, sent with litellm's `atext_completion`: an OpenAI-compatible
    server (`openai/NAME` other than OpenAI's own chat models, `text-completion-openai/NAME`) gets it on its
    /completions endpoint as `prompt`, the embedded provider keeps the mode and decodes without the chat template
    (see embedded). For a provider with no completions endpoint litellm sends the text as a user message."""
    litellm = litellm_module()
    completion = params.get(MODE) == COMPLETION
    if completion and not model.embedded:  # evalrun's own marker: a server would be sent it as a parameter
        params = {k: v for k, v in params.items() if k != MODE}
    request: dict[str, Any] = {"prompt": messages[0]["content"]} if completion else {"messages": messages}
    kwargs: dict[str, Any] = {"model": model.model, **request, "timeout": model.timeout, "num_retries": 0, **params}
    if model.api_base:
        kwargs["api_base"] = model.api_base
    if key:
        kwargs["api_key"] = key
    response = await (litellm.atext_completion(**kwargs) if completion else litellm.acompletion(**kwargs))
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    tokens_in, tokens_out = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    price = own_price(model)
    return Answer(
        text=(choice.text if completion else choice.message.content) or "",
        finish_reason=choice.finish_reason,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
        # per token as litellm prices a registered model, so a spec's price gives the same cost it gave there
        cost=_cost(litellm, response) if price is None else
        token_cost(tokens_in, tokens_out, (price[0] / 1e6, price[1] / 1e6)),
        logprobs=_logprobs(choice),
    )


def _logprobs(choice: Any) -> str | None:
    """The choice's token log-probabilities as JSON in OpenAI's shape, or None where the provider gave none
    (Anthropic and reasoning models do not; OpenAI, Gemini 2 and llama.cpp do)."""
    found = getattr(choice, "logprobs", None)
    if found is None:
        return None
    if hasattr(found, "model_dump"):
        found = found.model_dump()
    content = found.get("content") if isinstance(found, dict) else None
    return json.dumps(content) if content else None


def token_estimate(job: Job) -> tuple[int, int]:
    """A request's tokens before its answer is known: its prompt, and the completion it may use (max_tokens;
    0 when unset, and the answer's tokens are paid afterwards). The prompt is counted with litellm's default
    (OpenAI) tokenizer whatever the model: it is bundled, where the tokenizers litellm picks for some models
    (Llama, Cohere) are downloaded. Close enough to pace requests and to hold a batch's cost against a budget,
    which is all the count is for."""
    litellm = litellm_module()
    return int(litellm.token_counter(model="", messages=job.messages)), int(job.params.get("max_tokens") or 0)


def _cost(litellm: Any, response: Any) -> float | None:
    # litellm already priced the response while logging it; pricing it again costs ~0.5 ms of CPU
    # per call, which is a tenth of the per-request budget at a few hundred requests a second.
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:
        cost = hidden["response_cost"]
        return None if cost is None else float(cost)  # None: no price known for this model
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # litellm raises assorted types for "no price known"; unknown is the honest answer
        return None
