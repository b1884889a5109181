"""What can go wrong, one tree: the exceptions evalrun raises, and the kinds of failure a job can end in.

    EvalrunError                 anything the user can fix; the CLI prints it as one line, exit 2
    ├── ProblemsError            one or more located Problems (file, line, column, message, hint)
    │   ├── SpecError            the spec file (YAML, schema, templates, extractors)
    │   └── DatasetError         the dataset (file, columns, ids, gold values)
    ├── ConfigError              the environment (a missing API key, an unknown model file)
    └── Interrupted              Ctrl-C or SIGTERM during a run: what arrived is in the store; rerun resumes

    a job's failure              not an exception: a row (results.parquet's `error_class`), so one refusal
    │                            never loses the rest of a run; `error_class` is one of
    ├── FailureKind              decided by evalrun (closed; the strings stored are the members' values)
    │   ├── not sent             ConfigError, Unreachable, RequestTooLarge, BudgetExceeded
    │   ├── sent, then lost      WorkerDied (retried like a dropped connection)
    │   └── batches              BatchFailed, BatchExpired, BatchCancelled, BatchIncomplete, BatchError, and a
    │                            batch line's HTTP status in the one-request path's words (RateLimitError,
    │                            InternalServerError, ...)
    └── the provider's word      the class name of the exception the provider raised (providers.classify:
                                 litellm's RateLimitError, Timeout, ...), which evalrun does not choose
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


def short(value: object, limit: int = 40) -> str:
    """A value quoted in a one-line message: whitespace folded, long text cut."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    file: str
    line: int | None
    col: int | None
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" blocks a run; "warning" is printed and the run goes on

    def render(self) -> str:
        """`file:line:col: severity: message (hint)`, always on one line."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        text = f"{where}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(text.splitlines())

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


def in_order(problems: list[Problem], first_file: str | None = None) -> list[Problem]:
    """Each problem once, in reading order: `first_file`'s (the spec's) first, then other files' by name."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file != first_file, p.file, p.line or 0, p.col or 0))


class EvalrunError(Exception):
    """Base of every error a user can cause and fix."""


class ProblemsError(EvalrunError):
    """An error made of one or more located problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class SpecError(ProblemsError):
    """The spec file is not a valid evalrun spec."""


class DatasetError(ProblemsError):
    """The dataset a spec points at is missing, unreadable or inconsistent."""


class ConfigError(EvalrunError):
    """The environment lacks something a run needs (an API key, a model file)."""


class Interrupted(EvalrunError):
    """The run was stopped (Ctrl-C, SIGTERM) before it finished; what arrived is in the store."""

    def __init__(self, done: int, total: int, store: object) -> None:
        super().__init__(f"interrupted after {done} of {total} jobs; every answer received is in {store}. "
                         "Run the same command again to resume.")
        self.done, self.total, self.store = done, total, store


class FailureKind(StrEnum):
    """The failures evalrun itself names (see the tree above); each value is what results.parquet stores."""

    CONFIG = "ConfigError"  # the model's API key is missing: nothing can be sent
    UNREACHABLE = "Unreachable"  # the model was given up after connection failures in a row
    TOO_LARGE = "RequestTooLarge"  # the request's estimated tokens exceed a whole minute of the model's tpm
    BUDGET = "BudgetExceeded"  # --max-cost was reached before the request was sent
    WORKER_DIED = "WorkerDied"  # the sender process carrying the request exited
    BATCH_FAILED = "BatchFailed"  # the provider failed the whole batch
    BATCH_EXPIRED = "BatchExpired"  # the batch's window ended before this request was done
    BATCH_CANCELLED = "BatchCancelled"  # the batch was cancelled before this request was done
    BATCH_INCOMPLETE = "BatchIncomplete"  # the batch completed without a readable answer to this request
    BATCH_ERROR = "BatchError"  # a batch line failed with no HTTP status evalrun has a name for
    # a batch line's HTTP status, named as the one-request path names the same failure (litellm's words)
    BAD_REQUEST = "BadRequestError"
    AUTHENTICATION = "AuthenticationError"
    PERMISSION_DENIED = "PermissionDeniedError"
    NOT_FOUND = "NotFoundError"
    TIMEOUT = "Timeout"
    UNPROCESSABLE = "UnprocessableEntityError"
    RATE_LIMIT = "RateLimitError"
    INTERNAL = "InternalServerError"
    UNAVAILABLE = "ServiceUnavailableError"
