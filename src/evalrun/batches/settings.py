"""The batch settings a user can change, from the environment: how often to poll, how large a batch."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

from ..errors import ConfigError

POLL_ENV = "EVALRUN_BATCH_POLL_SECONDS"  # tests poll every few hundredths of a second
DEFAULT_POLL_SECONDS = 30.0  # OpenAI's batches take minutes to hours; polling faster only spends requests
MAX_REQUESTS_ENV = "EVALRUN_BATCH_MAX_REQUESTS"  # smaller batches end (and are stored) sooner
# OpenAI's limits per batch: 50,000 requests and a 200 MB input file (some margin kept for the multipart form)
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_BYTES = 190 * 1024 * 1024
T = TypeVar("T", int, float)


def poll_seconds() -> float:
    return _setting(POLL_ENV, float, DEFAULT_POLL_SECONDS, "a number of seconds more than 0")


def max_requests() -> int:
    return min(_setting(MAX_REQUESTS_ENV, int, OPENAI_MAX_REQUESTS, "a whole number more than 0"),
               OPENAI_MAX_REQUESTS)


def _setting(name: str, kind: Callable[[str], T], default: T, what: str) -> T:
    """A number from the environment, or one line saying what it should be."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        found = kind(value)
    except ValueError:
        found = None
    if found is None or not 0 < found < math.inf:  # NaN and infinity too
        raise ConfigError(f"{name} must be {what}, not {value!r}")
    return found

