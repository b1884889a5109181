"""The `choice` extractor: which label's keywords the answer uses, or, with `mode: logprobs`, how
probable each label was as the answer's first token."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import short
from .base import Extraction, Reading, word_pattern
from .templated import PerItem, RenderFailed

NO_LOGPROBS = "the model returned no log-probabilities"
UNUSABLE = "unusable log-probabilities"
# how far above 0 a log-probability (or above 1 a sum of probabilities) may be and still be a rounding error
LOGPROB_SLACK = 1e-6
SHOWN_WORDS = 4  # keywords per label quoted in "no keyword of any label (looked for ...)"


class _Keywords:
    """One set of rendered keywords per label, compiled."""

    def __init__(self, words: Mapping[str, tuple[str, ...]]) -> None:
        self.words = words
        self.patterns = {label: word_pattern(ws) for label, ws in words.items()}
        self.lowered = {label: tuple(w.lower() for w in ws) for label, ws in words.items()}

    def read(self, text: str) -> Extraction:
        found: dict[str, str] = {}
        for label, pattern in self.patterns.items():
            match = pattern.search(text)
            if match:
                # name the keyword as the spec wrote it, not as the answer capitalised it
                said = match.group(0).lower()
                found[label] = next((w for w in self.words[label] if w.lower() == said), match.group(0))
        named = [f"keyword '{short(word)}' of '{label}'" for label, word in found.items()]
        if len(found) == 1:
            return Extraction(next(iter(found)), named[0])
        if not found:
            return Extraction(None, f"no keyword of any label (looked for {self._looked_for()})")
        return Extraction(None, "ambiguous: " + ", ".join(named))

    def _looked_for(self) -> str:
        parts = []
        for label, words in self.words.items():
            own = [w for w in words[1:] if w.lower() != label.lower()]  # the label's name counts, and is shown
            shown = ", ".join(short(w, 30) for w in [label, *own][:SHOWN_WORDS])
            more = len(own) + 1 - SHOWN_WORDS
            parts.append(f"{label}: {shown}" + (f", +{more} more" if more > 0 else ""))
        return "; ".join(parts)

    def probabilities(self, logprobs: list[dict] | None) -> Extraction:
        """Each label's probability as the first token: a candidate token counts for a label when, lowercased
        and without its leading space, it begins exactly one label's name or keywords (so " female", "female"
        and "Female" add up, and "m", the start of both "male" and "man", counts for male alone)."""
        if not logprobs:
            return Extraction(None, NO_LOGPROBS)
        if not isinstance(logprobs, list):  # what a provider sent is stored as it came
            return Extraction(None, f"{UNUSABLE}: not a list of tokens but {type(logprobs).__name__}")
        first = logprobs[0]
        candidates = (first.get("top_logprobs") or [first]) if isinstance(first, Mapping) else [first]
        if not isinstance(candidates, list):
            return Extraction(None, f"{UNUSABLE}: the first token's alternatives are not a list")
        mass = dict.fromkeys(self.words, 0.0)
        for candidate in candidates:
            if not isinstance(candidate, Mapping):
                return Extraction(None, f"{UNUSABLE}: a candidate token is {type(candidate).__name__}, not a mapping")
            token = str(candidate.get("token", "")).lstrip().lower()
            if not token:
                continue
            probability = _probability(candidate.get("logprob"))
            if isinstance(probability, str):
                return Extraction(None, f"{UNUSABLE}: token '{short(token)}' has {probability}")
            owners = [label for label, words in self.lowered.items() if any(w.startswith(token) for w in words)]
            if len(owners) == 1:
                mass[owners[0]] += probability
        captured = sum(mass.values())
        if captured > 1 + LOGPROB_SLACK:  # a token listed twice, or probabilities that never summed to 1
            return Extraction(None, f"{UNUSABLE}: the labels' tokens add up to a probability of {captured:.3g}, "
                              "more than 1")
        captured = min(captured, 1.0)
        if captured == 0:
            return Extraction(None, "no label among the first token's likeliest tokens", None, 0.0)
        probabilities = {label: m / captured for label, m in mass.items()}
        tally = ", ".join(f"{label} {p:.2f}" for label, p in probabilities.items()) + f" (captured {captured:.2f})"
        top = max(probabilities.values())
        # renormalising leaves rounding error: equal masses must still tie
        winners = [label for label, p in probabilities.items() if math.isclose(p, top, rel_tol=1e-9)]
        if len(winners) > 1:
            return Extraction(None, f"tie: {tally}", probabilities, captured)
        return Extraction(winners[0], tally, probabilities, captured)


def _probability(logprob: object) -> float | str:
    """A token's probability from its log-probability, or what is wrong with it: a provider's bug (NaN, a
    positive log, a string) must make one answer unparsed, not crash every rerun that reads it."""
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
        return f"a log-probability that is not a number ({short(logprob)})"
    if math.isnan(logprob):
        return "a log-probability that is not a number (NaN)"
    if logprob > LOGPROB_SLACK:
        return f"a positive log-probability ({logprob:g}), a probability above 1"
    return math.exp(min(logprob, 0.0))  # -inf is a probability of 0; a rounding error above 0 is 1


class ChoiceExtractor:
    """The answer's label is the one label whose keywords occur in it (whole words, any case).

    A label's own name always counts, so `female: []` still matches "Female.". Keywords may be templates
    over the item's columns (`kept: ["{{ correct }}"]`); a keyword that renders empty is dropped, since
    it would match anywhere.
    """

    def __init__(self, choices: Mapping[str, Sequence[str]], mode: str = "keywords") -> None:
        self.labels = list(choices)
        self.wants_logprobs = mode == "logprobs"
        self._sizes = [len(words) for words in choices.values()]
        self._keywords = PerItem([w for words in choices.values() for w in words], self._compile)

    def _compile(self, rendered: tuple[str, ...]) -> _Keywords:
        words: dict[str, tuple[str, ...]] = {}
        start = 0
        for label, size in zip(self.labels, self._sizes, strict=True):
            given = [w.strip() for w in rendered[start:start + size]]
            words[label] = (label, *dict.fromkeys(w for w in given if w))
            start += size
        return _Keywords(words)

    def extract(self, reading: Reading) -> Extraction:
        try:
            keywords = self._keywords.get(reading.item)
        except RenderFailed as exc:
            return Extraction(None, str(exc))
        if self.wants_logprobs:
            if reading.logprobs:
                return keywords.probabilities(reading.logprobs)
            # a provider without log-probabilities (Anthropic, reasoning models) still gets its sampled
            # answer read: the label from the text, and no probabilities
            found = keywords.read(reading.text)
            return Extraction(found.label, f"{NO_LOGPROBS}; read from the text: {found.reason}")
        return keywords.read(reading.text)

    def rendered(self, item: Mapping[str, object]) -> str | None:
        """The keywords this reader looks for in `item`'s answers, for `evalrun render`; None when none is a
        template."""
        if not self._keywords.templated:
            return None
        try:
            words = self._keywords.get(item).words
        except RenderFailed as exc:
            return str(exc)
        return "keywords " + "; ".join(f"{label}: " + ", ".join(f"'{w}'" for w in ws) for label, ws in words.items())

    def can_produce(self) -> set[str]:
        return set(self.labels)
