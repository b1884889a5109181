"""The `choice` extractor: which label's keywords the answer uses, or, with `mode: logprobs`, how
probable each label was as the answer's first token, or, with `mode: likelihood` (embedded models),
how probable each label's whole text was as the answer's start."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..embedded import CONTINUATIONS
from ..errors import short
from .base import Extraction, Reading, word_pattern
from .templated import PerItem, RenderFailed

NO_LOGPROBS = "the model returned no log-probabilities"
NO_LIKELIHOODS = "the model returned no likelihoods of the labels"
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
        # every text `mode: likelihood` scores, with the labels it stands for (two when labels share a keyword)
        self.forms: dict[str, list[str]] = {}
        for label, ws in words.items():
            for form in dict.fromkeys(f for w in ws for f in _surface_forms(w)):
                self.forms.setdefault(form, []).append(label)

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
        return _settle(mass, "tokens", "no label among the first token's likeliest tokens")

    def likelihoods(self, scores: object) -> Extraction:
        """Each label's probability as the answer's start, from the log-probability of each surface form's
        whole token sequence after the prompt (`scores`: text -> {"logprob", "tokens"}, as the embedded
        model returns them).

        A label's forms add up (a log-sum-exp, not a max): "Female", "female" and " female" are different
        ways of starting the same answer, disjoint events whose union is the label, as `mode: logprobs`
        adds up their first tokens; a max would understate a label the model spreads over casings. But
        "the answer starts with these tokens" nests: when one form's tokens begin with another's
        ("Man" and "Manager", or "fem" and "female"), the shorter one's probability already holds the
        longer one's, so each form counts only what its extensions among the forms leave it, and the
        longer form counts for its own label. The forms' events are then disjoint, and the captured mass
        (the labels' sum before renormalising) is a probability."""
        if not isinstance(scores, Mapping):
            return Extraction(None, f"{UNUSABLE}: the likelihoods are {type(scores).__name__}, not a mapping")
        forms: list[tuple[tuple[int, ...], float, str | None]] = []
        for form, owners in self.forms.items():
            score = scores.get(form)
            tokens = score.get("tokens") if isinstance(score, Mapping) else None
            if not isinstance(tokens, list) or not tokens:
                return Extraction(None, f"{UNUSABLE}: no likelihood of '{short(form)}'")
            probability = _probability(score.get("logprob"))  # type: ignore[union-attr]
            if isinstance(probability, str):
                return Extraction(None, f"{UNUSABLE}: '{short(form)}' has {probability}")
            # a form two labels share counts for neither, as a keyword two labels share reads as ambiguous
            forms.append((tuple(tokens), probability, owners[0] if len(owners) == 1 else None))
        mass = dict.fromkeys(self.words, 0.0)
        for tokens, probability, owner in forms:
            longer = [f for f in forms if len(f[0]) > len(tokens) and f[0][:len(tokens)] == tokens]
            # only the nearest extensions: a farther one is inside a nearer one's probability
            nearest = [f for f in longer if not any(len(g[0]) < len(f[0]) and f[0][:len(g[0])] == g[0]
                                                    for g in longer)]
            if owner is not None:
                mass[owner] += max(probability - sum(f[1] for f in nearest), 0.0)
        return _settle(mass, "texts", "no label has any probability")


def _surface_forms(word: str) -> list[str]:
    """The texts that start an answer saying `word`: as written, lowercased and capitalised, each alone and
    after a space (a chat template's assistant turn ends in a newline, but a prompt may end anywhere)."""
    cased = dict.fromkeys([word, word.lower(), word[:1].upper() + word[1:]])
    return [prefix + w for prefix in ("", " ") for w in cased]


def _settle(mass: dict[str, float], what: str, nothing: str) -> Extraction:
    """The labels' probabilities renormalised over the labels, the captured mass, and the likeliest label."""
    captured = sum(mass.values())
    if captured > 1 + LOGPROB_SLACK:  # a token listed twice, or probabilities that never summed to 1
        return Extraction(None, f"{UNUSABLE}: the labels' {what} add up to a probability of {captured:.3g}, "
                          "more than 1")
    captured = min(captured, 1.0)
    if captured == 0:
        return Extraction(None, nothing, None, 0.0)
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
        # likelihoods come back with the log-probabilities (see evalrun.embedded.batcher)
        self.wants_logprobs = mode in ("logprobs", "likelihood")
        self.scores_continuations = mode == "likelihood"
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
        if self.scores_continuations:
            first = reading.logprobs[0] if reading.logprobs else None
            if isinstance(first, Mapping) and CONTINUATIONS in first:
                return keywords.likelihoods(first[CONTINUATIONS])
            found = keywords.read(reading.text)
            return Extraction(found.label, f"{NO_LIKELIHOODS}; read from the text: {found.reason}")
        if self.wants_logprobs:
            if reading.logprobs:
                return keywords.probabilities(reading.logprobs)
            # a provider without log-probabilities (Anthropic, reasoning models) still gets its sampled
            # answer read: the label from the text, and no probabilities
            found = keywords.read(reading.text)
            return Extraction(found.label, f"{NO_LOGPROBS}; read from the text: {found.reason}")
        return keywords.read(reading.text)

    def continuations(self, item: Mapping[str, object]) -> list[str]:
        """The texts `mode: likelihood` asks the model to score after the prompt of `item`'s requests: each
        label's name and keywords in their surface forms (none when a keyword cannot render: the answer is
        then unparsed with the rendering error)."""
        try:
            return list(self._keywords.get(item).forms)
        except RenderFailed:
            return []

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
