"""The `regex` extractor: a named group of the pattern's first match, mapped to a label.

A spec's regular expression is written in Python `re` syntax and checked with `re` (so its error
messages are `re`'s), but matched with the `regex` module in its re-compatible V0 mode: `re` cannot be
interrupted, and a pattern like `(a|aa)+b` backtracks exponentially on a long answer, pinning a core
and ignoring Ctrl-C. `regex` takes a timeout; an answer whose search runs over PATTERN_TIMEOUT_S is
unparsed, with the reason "pattern timed out after 1 s".

The pattern and the map's keys may be templates over the item's columns; a column's text is inserted
literally (escaped), so `answer:\\s*(?P<label>{{ correct }})` matches the item's correct answer even
when it holds a `.` or a `(`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import regex

from ..errors import short
from .base import Extraction, ExtractorConfigError, Reading
from .templated import PerItem, RenderFailed

# Seconds one regex extractor may search one answer. A sane pattern takes microseconds on a long
# answer; one that needs more is backtracking catastrophically and would not finish in any useful time.
PATTERN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class _Compiled:
    source: str
    pattern: regex.Pattern[str]
    mapping: dict[str, tuple[str, ...]]  # matched text, stripped and lowercased -> its label(s)


class RegexExtractor:
    """A named group of the first match is the answer, mapped to a label."""

    def __init__(self, pattern: str, group: str, mapping: Mapping[str, str], labels: Sequence[str],
                 otherwise: str | None = None) -> None:
        self.group = group
        self.otherwise = otherwise  # the label of an answer the pattern finds nothing in, when the spec says one
        self.targets = list(mapping.values()) if mapping else list(labels)
        self._mapped = bool(mapping)
        self._per_item = PerItem([pattern, *mapping], self._compile, escapes=[re.escape])
        if not self._per_item.templated:
            self._per_item.get({})  # a fixed pattern is checked now, so a bad one stops validation

    def _compile(self, rendered: tuple[str, ...]) -> _Compiled:
        source, *keys = rendered
        try:
            re.compile(source)  # the syntax a spec is written in, and its error messages
            pattern = regex.compile(source, regex.IGNORECASE | regex.V0)
        except (re.error, regex.error) as exc:  # regex's own only if it ever rejects what `re` accepts
            raise ExtractorConfigError(f"invalid regular expression: {exc}", ("pattern",)) from None
        if self.group not in pattern.groupindex:
            raise ExtractorConfigError(f"the pattern has no named group '(?P<{self.group}>...)'", ("pattern",))
        mapping: dict[str, list[str]] = {}
        for raw, label in zip(keys if self._mapped else self.targets, self.targets, strict=True):
            # two keys that render alike for an item (its correct and wrong answers are equal) keep both labels
            labels = mapping.setdefault(raw.strip().lower(), [])
            if label not in labels:
                labels.append(label)
        return _Compiled(source, pattern, {k: tuple(v) for k, v in mapping.items()})

    def extract(self, reading: Reading) -> Extraction:
        try:
            compiled = self._per_item.get(reading.item)
        except RenderFailed as exc:
            return Extraction(None, str(exc))
        except ExtractorConfigError as exc:
            return Extraction(None, f"the pattern rendered for this item is unusable: {exc}")
        shown = f"pattern '{short(compiled.source)}'"
        try:
            match = compiled.pattern.search(reading.text, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            return Extraction(None, f"pattern timed out after {PATTERN_TIMEOUT_S:g} s")
        if match is None and self.otherwise is not None:
            return Extraction(self.otherwise, f"pattern did not match, so '{self.otherwise}' (otherwise)"
                              + (f" ({shown})" if self._per_item.templated else ""))
        if match is None or match.group(self.group) is None:
            return Extraction(None, f"pattern did not match ({shown})" if self._per_item.templated
                              else "pattern did not match")
        raw = match.group(self.group).strip()
        if not raw:  # `(?P<label>{{ x }}|no)` over an empty column matches anywhere: nothing was said
            return Extraction(None, f"the pattern matched empty text ({shown})" if self._per_item.templated
                              else "the pattern matched empty text")
        labels = compiled.mapping.get(raw.lower(), ())
        if not labels:
            return Extraction(None, f"matched '{short(raw)}', which maps to no label ({shown})")
        if len(labels) > 1:
            return Extraction(None, f"matched '{short(raw)}', which maps to " + " and ".join(labels) + f" ({shown})")
        return Extraction(labels[0], f"matched '{short(raw)}' ({shown})")

    def rendered(self, item: Mapping[str, object]) -> str | None:
        """The pattern and map this reader uses for `item`, for `evalrun render`; None when neither is a template."""
        if not self._per_item.templated:
            return None
        try:
            source, *keys = self._per_item.rendered(item)
        except RenderFailed as exc:
            return str(exc)
        shown = f"pattern '{source}'"
        if self._mapped:
            shown += "; map " + ", ".join(f"'{key}' -> {label}" for key, label in zip(keys, self.targets, strict=True))
        if self.otherwise is not None:
            shown += f"; otherwise {self.otherwise}"
        return shown

    def can_produce(self) -> set[str]:
        return set(self.targets) | ({self.otherwise} if self.otherwise is not None else set())
