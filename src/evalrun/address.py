"""Model addresses: where the `@` of a model string begins a server's base URL, and what makes a URL one.

Its own module, below spec and extract, because both read model strings (a spec's models, a judge's).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import short

# What may follow an `@` inside litellm's own model names: a version (vertex_ai/claude-3-5-sonnet@20240620,
# text-bison@001, gemini-pro@latest, mistral-large@2411-001) or, after a `/`, cloudflare's `@cf/...` paths.
_VERSION = re.compile(r"\d+(?:-\d+)*|latest|default")
ADDRESS_HINT = "a self-hosted model is named NAME@http://HOST:PORT/PATH"


def split_address(model: str) -> tuple[str, str | None]:
    """A model string's litellm name and the address after its `@`, if it has one.

    An `@` that does not begin a version or a cloudflare path begins an address, and that address must be an
    http(s) URL with a host: anything else (`@ftp://...`, `@http://`, `@localhost:8080`, a typo) would leave a
    model name with no address, and its requests, with the user's key, would go to the provider's own host.
    Raises ValueError saying what is wrong."""
    parts = model.split("@")
    for i in range(1, len(parts)):
        if "://" not in parts[i] and (parts[i - 1].endswith("/") or _VERSION.fullmatch(parts[i])):
            continue
        name, address = "@".join(parts[:i]), "@".join(parts[i:])  # a URL may hold an `@` of its own
        if problem := address_problem(address):
            raise ValueError(f"'{short(address)}' after '@' {problem} ({ADDRESS_HINT})")
        if not name:
            raise ValueError(f"no model name before '@' ({ADDRESS_HINT})")
        return name, address
    return model, None


def address_problem(address: str) -> str | None:
    """What keeps `address` from being a server's base URL (http or https, with a host), or None."""
    if any(c.isspace() or not c.isprintable() for c in address):
        return "holds a space or a control character, which no address does"
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 -- reading it checks the port
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// address"
    if not parts.hostname:
        return "has no host"
    return None
