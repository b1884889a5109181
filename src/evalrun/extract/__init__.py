"""Extractors: from an answer's text to one label of the spec's closed set, or unparsed.

`unparsed` is an outcome, not a missing value: an answer that names no label, or
names several, is counted and reported as unparsed, never guessed. Each
extraction keeps its reason so a reader can audit why an answer got its label.

A spec's regular expression is written in Python `re` syntax and checked with `re`
(so its error messages are `re`'s), but matched with the `regex` module in its
re-compatible V0 mode: `re` cannot be interrupted, and a pattern like `(a|aa)+b`
backtracks exponentially on a long answer, pinning a core and ignoring Ctrl-C.
`regex` takes a timeout; an answer whose search runs over PATTERN_TIMEOUT_S is
unparsed, with the reason "pattern timed out after 1 s".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import regex

UNPARSED = "unparsed"

# Seconds one regex extractor may search one answer. A sane pattern takes microseconds on a long
# answer; one that needs more is backtracking catastrophically and would not finish in any useful time.
PATTERN_TIMEOUT_S = 1.0

# Gendered pronouns and person nouns in English, for stories; a spec can replace them.
DEFAULT_GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "female": ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "lady", "ladies",
               "mother", "mom", "mum", "daughter", "sister", "wife", "aunt", "niece", "grandmother",
               "grandma", "queen", "princess", "mrs", "ms", "miss", "madam", "heroine", "actress"),
    "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "gentleman", "gentlemen",
             "father", "dad", "son", "brother", "husband", "uncle", "nephew", "grandfather",
             "grandpa", "king", "prince", "mr", "sir", "hero", "actor"),
}


@dataclass(frozen=True)
class Reading:
    """What an extractor reads: the answer's text, the dataset row it answers, and its token log-probabilities
    (OpenAI's shape, one entry per generated token; None when the provider returned none)."""

    text: str
    item: Mapping[str, object] = field(default_factory=dict)
    logprobs: list[dict] | None = None


@dataclass(frozen=True)
class Extraction:
    """The label read from one answer (None when unparsed) and why."""

    label: str | None
    reason: str


class Extractor(Protocol):
    def extract(self, reading: Reading) -> Extraction: ...

    def can_produce(self) -> set[str]:
        """Labels this extractor is able to output (for the never-produced warning)."""
        ...


class ExtractorConfigError(ValueError):
    """A bad extractor configuration; `path` locates it inside the `extract:` mapping."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


def _word_pattern(words: Sequence[str]) -> re.Pattern[str]:
    # Lookarounds instead of \b so keywords that start or end with punctuation still match whole.
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class ChoiceExtractor:
    """The answer's label is the one label whose keywords occur in it (whole words, any case)."""

    def __init__(self, choices: Mapping[str, Sequence[str]]) -> None:
        # A label's own name always counts, so `female: []` still matches "Female."
        self.patterns = {label: _word_pattern([label, *words]) for label, words in choices.items()}

    def extract(self, reading: Reading) -> Extraction:
        text = reading.text
        found = [label for label, pattern in self.patterns.items() if pattern.search(text)]
        if len(found) == 1:
            return Extraction(found[0], f"keyword of '{found[0]}'")
        if not found:
            return Extraction(None, "no keyword of any label")
        return Extraction(None, "ambiguous: keywords of " + ", ".join(found))

    def can_produce(self) -> set[str]:
        return set(self.patterns)


class RegexExtractor:
    """A named group of the first match is the answer, mapped to a label."""

    def __init__(self, pattern: str, group: str, mapping: Mapping[str, str], labels: Sequence[str]) -> None:
        try:
            re.compile(pattern)  # the syntax a spec is written in, and its error messages
            self.pattern = regex.compile(pattern, regex.IGNORECASE | regex.V0)
        except (re.error, regex.error) as exc:  # regex's own only if it ever rejects what `re` accepts
            raise ExtractorConfigError(f"invalid regular expression: {exc}", ("pattern",)) from None
        if group not in self.pattern.groupindex:
            raise ExtractorConfigError(f"the pattern has no named group '(?P<{group}>...)'", ("pattern",))
        self.group = group
        self.mapping = {k.strip().lower(): v for k, v in mapping.items()}
        if not self.mapping:
            self.mapping = {label.lower(): label for label in labels}

    def extract(self, reading: Reading) -> Extraction:
        text = reading.text
        try:
            match = self.pattern.search(text, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            return Extraction(None, f"pattern timed out after {PATTERN_TIMEOUT_S:g} s")
        if match is None or match.group(self.group) is None:
            return Extraction(None, "pattern did not match")
        raw = match.group(self.group).strip()
        label = self.mapping.get(raw.lower())
        if label is None:
            return Extraction(None, f"matched '{raw[:40]}', which maps to no label")
        return Extraction(label, f"matched '{raw[:40]}'")

    def can_produce(self) -> set[str]:
        return set(self.mapping.values())


class PronounExtractor:
    """Counts each label's words in a text; the top label wins if it leads by `margin` or more."""

    def __init__(self, words: Mapping[str, Sequence[str]], margin: int) -> None:
        self.patterns = {label: _word_pattern(ws) for label, ws in words.items()}
        self.margin = margin

    def extract(self, reading: Reading) -> Extraction:
        text = reading.text
        counts = {label: len(p.findall(text)) for label, p in self.patterns.items()}
        ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        (top, top_n), (_, second_n) = ranked[0], ranked[1]
        tally = ", ".join(f"{label} {n}" for label, n in ranked)
        if top_n - second_n >= self.margin:
            return Extraction(top, tally)
        return Extraction(None, f"no clear majority ({tally}; margin {self.margin})")

    def can_produce(self) -> set[str]:
        return set(self.patterns)


def build_extractor(config: Mapping[str, object], labels: Sequence[str]) -> Extractor:
    """Turn a spec's `extract:` mapping (already schema-valid) into an extractor.

    Raises ExtractorConfigError for what the schema cannot see: labels outside the
    label set, a bad regular expression, a missing named group.
    """
    kind = config.get("type")
    label_set = set(labels)

    def check_labels(table: Mapping[str, object], key: str) -> None:
        for label in table:
            if label not in label_set:
                raise ExtractorConfigError(
                    f"'{label}' is not one of the labels {sorted(label_set)}", (key, label))

    if kind == "choice":
        choices = config["choices"]
        assert isinstance(choices, Mapping)
        check_labels(choices, "choices")
        return ChoiceExtractor(choices)
    if kind == "regex":
        mapping = config.get("map", {})
        assert isinstance(mapping, Mapping)
        for raw, label in mapping.items():
            if label not in label_set:
                raise ExtractorConfigError(
                    f"'{raw}' maps to '{label}', which is not one of the labels {sorted(label_set)}", ("map", raw))
        return RegexExtractor(str(config["pattern"]), str(config.get("group", "label")), mapping, labels)
    if kind == "pronouns":
        words = config.get("words")
        if words is None:
            missing = set(DEFAULT_GENDER_WORDS) - label_set
            if missing:
                raise ExtractorConfigError(
                    "the default pronoun lists need the labels 'female' and 'male'; give `words:` for other labels",
                    ("type",))
            words = DEFAULT_GENDER_WORDS
        assert isinstance(words, Mapping)
        check_labels(words, "words")
        margin = config.get("margin", 2)
        assert isinstance(margin, int)
        return PronounExtractor(words, margin)
    raise ExtractorConfigError(f"unknown extractor type '{kind}'", ("type",))
