"""What every extractor shares: what it reads (Reading), what it returns (Extraction), what it is
(Extractor), and how an extractor type declares itself to the registry (ExtractorType).

An extractor may also read an answer by asking models about it (an AskingExtractor, as Inspect AI's
model-graded scorers call a model): it says whom it asks and what (`Request`), reads each reply, and
settles the replies into one label. A run sends those requests in a second stage, through the same
runner, store, budget and progress as the first answers (see evalrun.stages); the extractor sends nothing.

`unparsed` is an outcome, not a missing value: an answer that names no label, or names several, is
counted and reported as unparsed, never guessed. Each extraction keeps its reason so a reader can
audit why an answer got its label.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

UNPARSED = "unparsed"

Path = tuple[str | int, ...]  # a place inside an `extract:` mapping


@dataclass(frozen=True)
class Reading:
    """What an extractor reads: the answer's text, the dataset row it answers, and its token log-probabilities
    (OpenAI's shape: one entry per generated token, each {"token", "logprob", "top_logprobs": [{"token",
    "logprob"}]}; None when the provider returned none)."""

    text: str
    item: Mapping[str, object] = field(default_factory=dict)
    logprobs: list[dict] | None = None


@dataclass(frozen=True)
class Extraction:
    """The label read from one answer (None when unparsed) and why; extractors that read a distribution
    over the labels also give it (`probabilities`, summing to 1 over the labels) and the share of the
    probability mass the labels held before renormalising (`captured`)."""

    label: str | None
    reason: str
    probabilities: dict[str, float] | None = None
    captured: float | None = None


class Extractor(Protocol):
    def extract(self, reading: Reading) -> Extraction: ...

    def can_produce(self) -> set[str]:
        """Labels this extractor is able to output (for the never-produced warning)."""
        ...


@dataclass(frozen=True)
class Request:
    """What an asking extractor sends one model about one answer: chat messages and parameters (over the
    run's defaults for that model)."""

    messages: list[dict[str, str]]
    params: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class AskingExtractor(Extractor, Protocol):
    """An extractor that reads an answer by asking models about it.

    `models` are whom it asks, one request each per answer: litellm model strings (MODEL[@ADDRESS]) or
    the names of the spec's models; none means the run's judge (the spec's `judge:`, or --judge).
    `request(reading, index)` is what to ask `models[index]` about the answer in `reading`; `extract`
    reads one reply (its `reading.text` is the reply, its `item` the answer's item); `settle` makes the
    replies' readings, one per model in order, one label (an unanswered request is read as unparsed).
    """

    models: Sequence[str]

    def request(self, reading: Reading, index: int) -> Request: ...

    def settle(self, readings: Sequence[Extraction]) -> Extraction: ...


def wants_logprobs(extractor: Extractor) -> bool:
    """Whether the requests an extractor reads must ask for token log-probabilities (an extractor says so
    with a true `wants_logprobs` attribute; most read only text and do not)."""
    return bool(getattr(extractor, "wants_logprobs", False))


@dataclass(frozen=True)
class ConfigProblem:
    """Something wrong with one `extract:` mapping that its schema cannot see.

    `path` is where it stands inside the mapping; `key` says the path ends at a mapping key (the key
    itself is wrong); `field` is the path the message names, when that is the table holding the bad
    entry rather than the entry; `label` is a name that should have been a label (for a "did you mean"
    hint); `line` is the line inside a multi-line template.
    """

    message: str
    path: Path = ()
    key: bool = False
    field: Path | None = None
    label: str | None = None
    line: int | None = None


class ExtractorConfigError(ValueError):
    """A bad extractor configuration; `path` locates it inside the `extract:` mapping, `problem` says it all."""

    def __init__(self, message: str, path: Path = (), *, key: bool = False, field: Path | None = None,
                 label: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.problem = ConfigProblem(message, path, key, field, label, line)


@dataclass(frozen=True)
class TemplateSpot:
    """A string of an `extract:` mapping that is a template over the item's columns (see `templated`);
    `key` when it is a mapping key, `extra` the variables it may read besides the item's columns."""

    path: Path
    source: str
    key: bool = False
    extra: frozenset[str] = frozenset()


Config = Mapping[str, object]


@dataclass(frozen=True)
class ExtractorType:
    """One kind of extractor, as the `evalrun.extractors` entry-point group publishes it.

    `schema` is the JSON Schema of the `extract:` mapping's own keys, as {"properties": {...},
    "required": [...]}; the registry adds `type` and refuses any other key. `build(config, labels)`
    gets a schema-valid mapping and returns the extractor, raising ExtractorConfigError for what it
    cannot accept. `problems(config, labels)` lists everything wrong at once for validation (labels
    outside the set, ...), before `build` is tried; `templates(config)` lists the strings that are
    templates over the item's columns, so validation can check their syntax and variables.
    """

    name: str
    schema: Mapping[str, object]
    build: Callable[[Config, Sequence[str]], Extractor]
    problems: Callable[[Config, Sequence[str]], list[ConfigProblem]] | None = None
    templates: Callable[[Config], list[TemplateSpot]] | None = None


def word_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """Any of `words` as a whole word, any case."""
    # Lookarounds instead of \b so keywords that start or end with punctuation still match whole.
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def outside(table: Mapping[str, object], labels: Sequence[str], name: str) -> list[ConfigProblem]:
    """A problem for each key of `table` (the mapping at `name`) that is not a label."""
    return [ConfigProblem(f"'{label}' is not one of the labels", (name, label), key=True, field=(name,), label=label)
            for label in table if label not in labels]
