"""Prompt templates: Jinja2 in its sandbox, with undefined variables as errors.

A spec is data someone may have downloaded, so templates render in Jinja2's
SandboxedEnvironment (no attribute access to Python internals) and with
StrictUndefined, so a misspelt column fails loudly instead of rendering "".
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


class TemplateProblem(ValueError):
    """A template that cannot be compiled; `lineno` is the line inside the template."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


def variables(source: str) -> set[str]:
    """Names a template reads from its context (static analysis, before any rendering)."""
    try:
        return set(meta.find_undeclared_variables(_ENV.parse(source)))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message}", exc.lineno) from None


@lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENV.from_string(source)


def render(source: str, context: dict[str, object]) -> str:
    """Render a template; raises jinja2 errors (UndefinedError, SecurityError) on bad data."""
    return _compiled(source).render(context).strip()
