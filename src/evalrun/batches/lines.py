"""A batch's JSONL lines: a job as the line of an input file, and an output or error file's line as the row
the one-request path would have stored for that job."""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import FailureKind
from ..jobs import Job
from ..providers import token_cost
from ..redact import redact
from ..sendpath import failed_response
from ..store import StoredResponse, request_json

# what the one-request path calls an HTTP error of each status (litellm's exception names), for error rows
_ERROR_CLASSES = {400: FailureKind.BAD_REQUEST, 401: FailureKind.AUTHENTICATION, 403: FailureKind.PERMISSION_DENIED,
                  404: FailureKind.NOT_FOUND, 408: FailureKind.TIMEOUT, 422: FailureKind.UNPROCESSABLE,
                  429: FailureKind.RATE_LIMIT, 503: FailureKind.UNAVAILABLE}


def request_line(job: Job, provider_model: str) -> bytes:
    """The job's line of an input file: a chat completion asked of the provider's name for the model."""
    body = {"model": provider_model, "messages": job.messages, **job.params}
    line = {"custom_id": job.key, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return (json.dumps(line, default=str) + "\n").encode()


def stored_response(job: Job, line: dict[str, Any], prices: tuple[float, float] | None,
                    secrets: list[str]) -> StoredResponse:
    """A batch output or error line as the row the one-request path would have stored (priced at `prices`,
    per prompt and per completion token, if known; `secrets` redacted from an error's message)."""
    answer = line.get("response") or {}
    body = answer.get("body") or {}
    status_code = answer.get("status_code")
    choices = body.get("choices") if isinstance(body, dict) else None
    if status_code == 200 and choices:
        choice = choices[0]
        usage = body.get("usage") or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cost = None if prices is None else token_cost(prompt, completion, prices)
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
    error_class = _ERROR_CLASSES.get(status_code or 0, FailureKind.INTERNAL if (status_code or 0) >= 500
                                     else FailureKind.BATCH_ERROR)
    text = f"{status_code or 'no status'}: {message or 'no message'}"
    return failed_response(job, error_class, redact(text, secrets)[:500], 1, None)
