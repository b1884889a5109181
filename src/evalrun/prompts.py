"""Prompt templates: Jinja2 in its sandbox, with undefined variables as errors.

A spec is data someone may have downloaded, so templates render in Jinja2's
SandboxedEnvironment (no attribute access to Python internals) and with
StrictUndefined, so a misspelt column fails loudly instead of rendering "".
Templates are checked statically before any request: syntax, unknown filters and
tests, `{% include %}`-like tags (there is no template loader), and the variables
each one reads (see `spec.check_columns`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


class TemplateProblem(ValueError):
    """A template that cannot be compiled; `lineno` is the line inside the template."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


@lru_cache(maxsize=256)
def _parse(source: str) -> nodes.Template:
    try:
        ast = _ENV.parse(source)
        _ENV.compile(ast)  # unknown filters and tests are found here, not by the parser
    except TemplateSyntaxError as exc:
        message = " ".join(str(exc.message).split()).rstrip(".")
        unclosed = re.search(r"block that needs to be closed is '(\w+)'", message)
        if unclosed:  # Jinja's three sentences, in one clause
            message = f"`{{% {unclosed[1]} %}}` is never closed (add `{{% end{unclosed[1]} %}}`)"
        raise TemplateProblem(f"template syntax: {message}", exc.lineno) from None
    except TemplateError as exc:
        raise TemplateProblem(f"template: {' '.join(str(exc).split())}", None) from None
    except RecursionError:
        raise TemplateProblem("template is nested too deeply", None) from None
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise TemplateProblem(f"template syntax: `{{% {type(node).__name__.lower()} %}}` is not available "
                              "(a prompt is one self-contained template)", node.lineno)
    return ast


def variables(source: str) -> set[str]:
    """Names a template reads from its context (static analysis, before any rendering)."""
    return set(meta.find_undeclared_variables(_parse(source)))


def variable_lines(source: str) -> dict[str, int]:
    """The first line (1-based, inside the template) where each variable the template reads appears."""
    wanted = variables(source)
    out: dict[str, int] = {}
    try:
        for lineno, kind, value in _ENV.lex(source):
            if kind == "name" and value in wanted:
                out.setdefault(value, lineno)
    except TemplateError:
        pass
    return out


@lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENV.from_string(source)


def render(source: str, context: dict[str, object]) -> str:
    """Render a template; raises jinja2 errors (UndefinedError, SecurityError) on bad data."""
    return _compiled(source).render(context).strip()
