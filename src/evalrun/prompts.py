"""Prompt templates: checked statically before any request, then rendered.

The checks: syntax, unknown filters and tests, `{% include %}`-like tags (there is no
template loader), and the variables each template reads (see `spec.check_columns`), with
the line each first appears on for error messages. Templates compile and render in the
bounded Jinja2 sandbox of sandbox.py; a rendered prompt is counted as it is produced and
every failure while rendering is a jinja2 TemplateError with a plain message.
"""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes

from .sandbox import ENV, MAX_PROMPT_CHARS, PromptTooLarge, work_counted


class TemplateProblem(ValueError):
    """A template that cannot be compiled; `lineno` is the line inside the template."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


@lru_cache(maxsize=256)
def _parse(source: str) -> nodes.Template:
    try:
        ast = ENV.parse(source)
        ENV.compile(ast)  # unknown filters and tests are found here, not by the parser
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
        for lineno, kind, value in ENV.lex(source):
            if kind == "name" and value in wanted:
                out.setdefault(value, lineno)
    except TemplateError:
        pass
    return out


@lru_cache(maxsize=256)
def _compiled(source: str):
    return ENV.from_string(source)


def render(source: str, context: dict[str, object]) -> str:
    """Render a template. Every failure is a jinja2 TemplateError (UndefinedError, SecurityError, PromptTooLarge,
    or one wrapping what the template's own code raised), with a message fit for one line."""
    parts: list[str] = []
    size = 0
    with work_counted():
        try:
            for part in _compiled(source).generate(context):  # counted as produced, so never held whole if too big
                size += len(part)
                if size > MAX_PROMPT_CHARS:
                    raise PromptTooLarge(f"the rendered prompt would be more than {MAX_PROMPT_CHARS:,} characters, "
                                         "the most a prompt may hold")
                parts.append(part)
        except TemplateError:
            raise
        except RecursionError:
            raise TemplateError("the template calls itself too deeply (a macro that never stops calling itself?)") \
                from None
        except MemoryError:
            raise TemplateError("the template needs more memory than there is") from None
        except Exception as exc:  # the template's own arithmetic and calls: 1/0, '{:d}'.format('x'), 10.0 ** 1000
            raise TemplateError(f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    return "".join(parts).strip()
