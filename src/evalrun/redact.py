"""Credentials kept out of everything evalrun stores or prints: parameters, error text and addresses.

Its own module, below everything else, because the spec's validation (refusing credentials in params),
the store (rows), the providers (error messages) and the report (summary.json) all need it, and none of
them should import another only to keep a key out of a file.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|api|xai|gsk|hf)[-_][A-Za-z0-9_\-]{8,}\b|\bBearer\s+[A-Za-z0-9._\-]{8,}",
                      re.IGNORECASE)


_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)

# Words that make a parameter or header name a credential's: `api_key`, `x-api-key`, `Authorization`,
# `aws_session_token`, `vertex_credentials`. Whole words, so `max_tokens` is not one.
_CREDENTIAL_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "authorization", "auth",
                               "credential", "credentials", "cookie"})
# Parameters named like credentials that are not: OpenAI's prompt_cache_key only routes requests to a cache.
_NOT_CREDENTIALS = frozenset({"prompt_cache_key"})
_NAME_WORDS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# `name: value`, `name=value`, `"name": "value"`, as in headers, query strings, JSON and YAML, on one line;
# the value may be quoted (then it may hold spaces) or bare, with an auth scheme (`Basic xyz`) kept with it.
# A name starts only where a word does, so a long run of letters is tried once, not from every position.
_ASSIGNMENT = re.compile(r"""(?<![A-Za-z0-9_-])(?P<name>[A-Za-z0-9_-]+)(?P<sep>["']?[ \t]*[:=][ \t]*)"""
                         r"""(?:(?P<q>["']).*?(?P=q)|(?:(?:Bearer|Basic|Token)[ \t]+)?[^\s"',;&}\]]+)""",
                         re.IGNORECASE)
REDACTED = "[REDACTED]"


def _is_credential_name(name: str) -> bool:
    """Whether a parameter or header of this name holds a credential."""
    if name.lower() in _NOT_CREDENTIALS:
        return False
    return any(word.lower() in _CREDENTIAL_WORDS for word in _NAME_WORDS.split(name))


def credential_params(params: dict[str, Any]) -> list[str]:
    """Dotted paths of the parameters that hold credentials (`api_key`, `extra_headers.Authorization`, ...),
    at any depth, in the order written. A spec should name an environment variable in `api_key_env` instead:
    parameters are stored with every answer and printed in reports."""
    found: list[str] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _is_credential_name(str(key)):
                    found.append(where)
                else:
                    walk(inner, where)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(inner, f"{path}.{i}")

    walk(params, "")
    return found


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of parameters fit to store or print: credential-named values, and strings shaped like keys,
    replaced by [REDACTED]. The request itself is sent with the original."""

    def clean(value: Any, name: str = "") -> Any:
        if name and _is_credential_name(name):
            return REDACTED
        if isinstance(value, dict):
            return {key: clean(inner, str(key)) for key, inner in value.items()}
        if isinstance(value, list):
            return [clean(inner) for inner in value]
        if isinstance(value, str):
            return redact(value, [])
        return value

    return clean(params)


def environment_secrets() -> list[str]:
    """Values of environment variables named like credentials (OPENAI_API_KEY, HF_TOKEN, ...).

    litellm reads provider keys from such variables on its own, so a key can reach an error
    message even when no spec names it in `api_key_env`.
    """
    return [value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= 8]


def redact(text: str, secrets: list[str]) -> str:
    """Remove API keys from text we store or print: the ones we know, anything shaped like one, and the
    value given to any credential-named field (`Authorization: Basic ...`, `"api_key": "..."`)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _ASSIGNMENT.sub(_redact_assignment, text)
    return _KEYLIKE.sub(REDACTED, text)


def _redact_assignment(match: re.Match[str]) -> str:
    if not _is_credential_name(match["name"]):
        return match[0]
    quote = match["q"] or ""
    return f"{match['name']}{match['sep']}{quote}{REDACTED}{quote}"


def url_without_credentials(url: str) -> str:
    """A URL fit to print: no `user:password@`, no query string (some providers take `?key=`)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def redact_url(url: str | None) -> str | None:
    """An address fit to store: no `user:password@`, and credential-named query values (`?api-key=`)
    replaced by [REDACTED]; the rest of the query (`api-version=`) is kept, since it says where requests went."""
    if not url:
        return url
    parts = urlsplit(url)
    query = urlencode([(name, REDACTED if _is_credential_name(name) else value)
                       for name, value in parse_qsl(parts.query, keep_blank_values=True)], safe="[]")
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, query, parts.fragment))
