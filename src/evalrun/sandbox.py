"""The Jinja2 environment prompt templates compile and render in: a sandbox, with resource bounds.

A spec is data someone may have downloaded, so templates render in Jinja2's
SandboxedEnvironment (no attribute access to Python internals) and with
StrictUndefined, so a misspelt column fails loudly instead of rendering "".

Jinja's sandbox guards attributes, not resources: `{{ 'x' * 10**8 }}` would render
(and send, and store) a 100 MB prompt. Here a rendered prompt holds at most
MAX_PROMPT_CHARS characters, counted while it is produced (prompts.render), and no
value a template builds on the way may be larger as text. Operations that can build a
big value from small ones in one step (repetition, powers, padding and format widths,
`replace`, `join`, `wordwrap`, `batch`, `slice`, `lipsum`) are measured before they
run; every other result is measured after, and all the text one render builds is
counted against MAX_WORK_CHARS (within `work_counted`), so a loop cannot build a
million big values either. `urlize` (HTML, and able to multiply its arguments) is not
available. Every failure while rendering, these limits included, is a jinja2
TemplateError with a plain message. What is not bounded is time spent looping without
building anything: that is plain Python, and Ctrl-C stops it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

MAX_PROMPT_CHARS = 1_000_000  # characters in one rendered prompt (system or user message), and in any value on the way
MAX_WORK_CHARS = 50 * MAX_PROMPT_CHARS  # characters of all the values one render builds
MAX_INT_DIGITS = 4_300  # Python's own limit for turning an int into text (sys.get_int_max_str_digits)
_MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))


class PromptTooLarge(SecurityError):
    """A template that would build more than a prompt may hold."""


def _too_big(what: str) -> PromptTooLarge:
    return PromptTooLarge(f"{what} would build more than {MAX_PROMPT_CHARS:,} characters, the most a prompt may hold")


def _text_size(value: object, limit: int = MAX_PROMPT_CHARS) -> int:
    """About len(str(value)) without building the text: exact for text, a lower bound for containers (their
    brackets, separators and elements), counted only until it passes `limit`."""
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            size += len(item)
        elif isinstance(item, Namespace):  # its text is the text of the dict it holds
            stack.append(item._Namespace__attrs)  # type: ignore[attr-defined]
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            size += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, int):
            size += item.bit_length() // 4  # fewer than its decimal digits
        else:
            size += 1
    return size


class _Budget:
    """Characters one render has built so far, against MAX_WORK_CHARS."""

    def __init__(self) -> None:
        self.spent = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("evalrun_template_budget", default=None)


@contextmanager
def work_counted() -> Iterator[None]:
    """Within it, the values built are one render's, counted together against MAX_WORK_CHARS."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _measured(value: Any, what: str) -> Any:
    """`value`, once it is known to fit a prompt as text; counted against the render's budget."""
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise PromptTooLarge(f"{what} would make a number of more than {MAX_INT_DIGITS:,} digits")
    size = _text_size(value)
    if size > MAX_PROMPT_CHARS:
        raise _too_big(what)
    budget = _BUDGET.get()
    if budget is not None:
        budget.spent += size
        if budget.spent > MAX_WORK_CHARS:
            raise PromptTooLarge(f"the template builds more than {MAX_WORK_CHARS:,} characters of intermediate "
                                 "text for one prompt")
    return value


def _fits(size: int, what: str) -> None:
    if size > MAX_PROMPT_CHARS:
        raise _too_big(what)


def _fits_text(values: Iterable[object], what: str) -> None:
    """The values, turned into text together, fit a prompt."""
    total = 0
    for value in values:
        total += _text_size(value)
        _fits(total, what)


def _int_args(args: Iterable[object]) -> Iterator[int]:
    return (a for a in args if isinstance(a, int) and not isinstance(a, bool))


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(template: str, values: object, what: str) -> None:
    """`template % values`: widths and precisions (written, or taken from the values by `*`) and the values."""
    if isinstance(values, dict):
        args = list(values.values())
    else:
        args = list(values) if isinstance(values, tuple) else [values]
    for spec in _PERCENT_SPEC.finditer(template):
        for number in spec.groups():
            if number == "*":
                _fits(max(_int_args(args), default=0), what)
            elif number:
                _fits(int(number), what)
    _fits_text([template, *args], what)


def _check_format(template: str, args: tuple[object, ...], kwargs: dict[str, object], what: str) -> None:
    """`template.format(...)`: widths and precisions (written, or nested `{}` taken from the arguments), values."""
    values = [*args, *kwargs.values()]
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # malformed: format() itself raises, and render() reports that
    for _, _, spec, _ in fields:
        if not spec:
            continue
        for number in re.findall(r"\d+", spec):
            _fits(int(number), what)
        if "{" in spec:
            _fits(max(_int_args(values), default=0), what)
    _fits_text([template, *values], what)


def _replaced_size(text: str, old: str, new: str, count: int | None) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _check_str_method(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Measure the result of a text method that can grow its text, before it runs."""
    text = method.__self__  # type: ignore[attr-defined]
    name = method.__name__
    what = f"`{name}()`"
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        _fits(width if isinstance(width, int) else 0, what)
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        _fits(len(text) + text.count("\t") * (tabsize if isinstance(tabsize, int) else 0), what)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        _fits(_replaced_size(text, args[0], args[1], count if isinstance(count, int) else None), what)
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        _fits(len(text) * longest, what)


def _check_join(separator: str, items: list[object], what: str) -> None:
    _fits(len(separator) * max(len(items) - 1, 0), what)
    _fits_text(items, what)


# Filters that can build a big value from small arguments in one step, and how to measure them first. Each
# gets the filter's arguments, by Jinja's names, after the context or environment Jinja passes some filters.
def _check_center(value: object, width: int = 80) -> None:
    _fits(width if isinstance(width, int) else 0, "`center`")


def _check_indent(s: object, width: int | str = 4, **_: object) -> None:
    per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = s if isinstance(s, str) else ""
    _fits(_text_size(s) + (text.count("\n") + 1) * per_line, "`indent`")


def _check_replace(s: object, old: object, new: object, count: int | None = None) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        _fits(_replaced_size(s, old, new, count), "`replace`")


def _check_wordwrap(s: object, width: int = 79, break_long_words: bool = True, wrapstring: str | None = None,
                    **_: object) -> None:
    size = _text_size(s)
    breaks = size // max(width, 1) + 1 if isinstance(width, int) else 1
    _fits(size + breaks * len(wrapstring or "\n"), "`wordwrap`")


def _check_format_filter(value: object, *args: object, **kwargs: object) -> None:
    if isinstance(value, str):
        _check_percent(value, kwargs or tuple(args), "`format`")


def _check_batch(value: object, linecount: int, fill_with: object = None) -> None:
    _fits(linecount if isinstance(linecount, int) else 0, "`batch`")


def _check_slice(value: object, slices: int, fill_with: object = None) -> None:
    _fits(slices if isinstance(slices, int) else 0, "`slice`")


def _check_stringified(value: object, *_: object, **__: object) -> None:  # filters that begin with str(value)
    if not isinstance(value, str):
        _fits_text([value], "turning a value into text")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center, "indent": _check_indent, "replace": _check_replace, "wordwrap": _check_wordwrap,
    "format": _check_format_filter, "batch": _check_batch, "slice": _check_slice,
    **{name: _check_stringified for name in ("string", "tojson", "pprint", "e", "escape", "forceescape", "safe",
                                             "urlencode", "xmlattr", "title", "capitalize", "upper", "lower", "trim",
                                             "striptags", "wordcount", "truncate")},
}


def _guarded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    check = _FILTER_CHECKS.get(name)
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0  # the context or environment Jinja passes first

    @functools.wraps(original)  # keeps `jinja_pass_arg`, so Jinja still passes it
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if check is not None:
            check(*args[skip:], **kwargs)
        return _measured(original(*args, **kwargs), f"`{name}`")

    return guarded


def _join_filter(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def join(eval_ctx: Any, value: Iterable[object], d: str = "", attribute: str | int | None = None) -> str:
        items = list(value)  # a generator could be read only once: measure the list and join that
        if attribute is None:
            _check_join(d, items, "`join`")
        else:  # the attribute's text is what gets joined; only the separators are known here
            _fits(len(d) * max(len(items) - 1, 0), "`join`")
        return _measured(original(eval_ctx, items, d, attribute), "`join`")

    return join


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:  # Jinja's own check raises a bare OverflowError
        raise SecurityError(f"range() of {len(numbers):,} numbers: a template may loop over at most {MAX_RANGE:,}")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # Jinja's parameter names
    _fits(n * max * 12, "`lipsum`")  # at most `max` words of at most 12 characters each, per paragraph
    return str(generate_lorem_ipsum(n, html, min, max))


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Jinja 3.1's, with the operands measured first: `a ~ b` calls str() on each, and for a list of
        # references to one big string that builds all of it.
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.measured_operands((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


def _printable(value: Any) -> Any:
    """Jinja's `finalize`: every `{{ value }}`, before str() turns it into text."""
    _fits_text([value], "printing a value")
    return value


def _joined(parts: Iterable[str]) -> str:
    """Jinja's `concat`, which joins what a block, macro or `{% set %}...{% endset %}` renders: a loop in one
    can gather many references to one big string, and never pass through render()'s count."""
    pieces = list(parts)
    _fits(sum(map(len, pieces)), "a block's output")
    return _measured("".join(pieces), "a block's output")


class _Sandbox(SandboxedEnvironment):
    """SandboxedEnvironment with the resource bounds described in the module docstring."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    concat = staticmethod(_joined)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False,
                         finalize=_printable)
        self.filters = {name: _join_filter(f) if name == "join" else _guarded_filter(name, f)
                        for name, f in self.filters.items() if name != "urlize"}
        self.globals.update(range=_range, lipsum=_lipsum)

    def measured_operands(self, operands: tuple[object, ...]) -> tuple[object, ...]:
        _fits_text(operands, "`~`")
        return operands

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        what = f"`{operator}`"
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(times, int) and isinstance(sequence, (str, bytes, list, tuple)):
                    _fits(_text_size(sequence) * times, what)
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if abs(left) > 1 and right * math.log10(abs(left)) > MAX_INT_DIGITS:
                raise PromptTooLarge(f"{what} would make a number of more than {MAX_INT_DIGITS:,} digits")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right, what)
        elif operator == "+" and not isinstance(left, (int, float)):
            _fits_text([left, right], what)
        return _measured(super().call_binop(context, operator, left, right), what)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(getattr(obj, "__self__", None), str):
            if obj.__name__ == "join" and args:
                items = list(args[0])
                _check_join(obj.__self__, items, "`join()`")
                args = (items, *args[1:])
            else:
                _check_str_method(obj, args, kwargs)
        name = getattr(obj, "__name__", "a function")
        return _measured(super().call(context, obj, *args, **kwargs), f"`{name}()`")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if value.__name__ == "format_map" and args and isinstance(args[0], dict) else {}
            _check_format(template, args if not mapping else (), {**kwargs, **mapping}, "`format()`")
            return formatter(*args, **kwargs)

        checked.__name__ = value.__name__
        return checked


ENV = _Sandbox()  # the one environment every template compiles and renders in
