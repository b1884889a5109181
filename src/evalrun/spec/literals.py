"""Template text where no template is rendered: `options: {x: "{{ x }}"}` or a condition's value holding
`{{ name }}` is sent to the model exactly as written, braces and all, and nothing else would say so.

Only the prompts (`prompt`, `prompts`, `system`, `messages` contents, a follow-up's `prompt`) and the strings
an extractor type declares as templates (see `extract.template_spots`) are rendered. Any other string of the
spec, or mapping key, that holds `{{` or `{%` is an error located at it. Two places are left alone because
they are never sent as a field: `description` (prose for the report, which may well quote a template) and
the inline dataset's rows (data, which may be about templates).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Problem
from ..errors import short as _short
from ..extract import template_spots
from ..extract.templated import is_template
from .model import Spec, Where
from .wording import dotted

NOT_SENT = (("description",), ("dataset", "items"))
HINT = "only prompts and readers' keywords, patterns, map keys and judge prompts are rendered"


def _strings(node: object, path: Where) -> Iterator[tuple[Where, str, bool]]:
    """Every string under `node`, as (path, text, is_a_key), outside the places that are never sent."""
    if path in NOT_SENT:
        return
    if isinstance(node, str):
        yield path, node, False
    elif isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), key, True
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))


def _rendered(spec: Spec) -> tuple[set[Where], set[Where]]:
    """The paths of the spec's strings that are rendered as templates: values, and mapping keys."""
    values: set[Where] = set()
    keys: set[Where] = set()
    for variant in spec.variants.values():
        values.update(turn.at for turn in variant.templates())
        for at, config in variant.readings():
            for spot in template_spots(config):
                (keys if spot.key else values).add((*at, *spot.path))
    return values, keys


def literal_template_problems(spec: Spec) -> list[Problem]:
    values, keys = _rendered(spec)
    problems = []
    for path, text, is_key in _strings(spec.located.data, ()):
        if not is_template(text) or path in (keys if is_key else values):
            continue
        what = f"{dotted(path[:-1])}: the key '{_short(text)}'" if is_key else f"{dotted(path)}: '{_short(text)}'"
        problems.append(spec.located.problem(path, f"{what} looks like a template, but this field is not one: it "
                                             "would be used as written, braces and all", key=is_key, hint=HINT))
    return problems
