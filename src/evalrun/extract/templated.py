"""Readers that depend on the item: keywords, patterns and map keys written as templates over the
dataset's columns (`kept: ["{{ correct }}"]`), rendered per answer in the prompts' sandbox.

A string is a template only if it holds `{{` or `{%`: a regular expression such as `\\d{2}` or `[{#]`
stays literal text, as it always was. Rendering is cheap next to building what the rendered strings
make (compiled patterns), so the built reader is cached by the rendered values: the items that share
them (every sample of an item; items with the same correct answer) share one reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Generic, TypeVar

from jinja2 import TemplateError

from ..errors import short
from ..prompts import render

READERS_CACHED = 1024  # distinct rendered readers kept per extractor; a dataset rarely has more distinct answers

R = TypeVar("R")


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


class RenderFailed(Exception):
    """A template that could not be rendered for this item; the message is the extraction's reason."""


class PerItem(Generic[R]):
    """Renders `sources` for an item and returns what `make` builds from the rendered strings, cached.

    Strings that are not templates pass through as they are, so an extractor with none renders
    nothing. `escapes`, aligned with `sources`, may give a function applied to the item's text values
    before that source renders (a regular expression matches a column's text literally, whatever
    characters it holds, while a map key compared as plain text must not be escaped).
    """

    def __init__(self, sources: Sequence[str], make: Callable[[tuple[str, ...]], R],
                 escapes: Sequence[Callable[[str], str] | None] = ()) -> None:
        self.sources = tuple(sources)
        self.escapes = tuple(escapes) + (None,) * (len(self.sources) - len(escapes))
        self.templated = any(is_template(s) for s in self.sources)
        self._make = lru_cache(maxsize=READERS_CACHED)(make)

    def get(self, item: Mapping[str, object]) -> R:
        return self._make(self.rendered(item))

    def rendered(self, item: Mapping[str, object]) -> tuple[str, ...]:
        """The sources as rendered for `item` (what `make` is given); raises RenderFailed."""
        if not self.templated:
            return self.sources
        rendered = []
        for source, escape in zip(self.sources, self.escapes, strict=True):
            if not is_template(source):
                rendered.append(source)
                continue
            context = {k: escape(v) if escape and isinstance(v, str) else v for k, v in item.items()}
            try:
                rendered.append(render(source, context))
            except TemplateError as exc:
                raise RenderFailed(f"cannot render '{short(source)}' for this item: {short(exc, 120)}") from None
        return tuple(rendered)
