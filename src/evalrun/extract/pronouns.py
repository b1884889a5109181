"""The `pronouns` extractor: counts each label's words in a story; a clear lead wins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .base import Extraction, Reading, word_pattern

# Gendered pronouns and person nouns in English, for stories; a spec can replace them.
DEFAULT_GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "female": ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "lady", "ladies",
               "mother", "mom", "mum", "daughter", "sister", "wife", "aunt", "niece", "grandmother",
               "grandma", "queen", "princess", "mrs", "ms", "miss", "madam", "heroine", "actress"),
    "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "gentleman", "gentlemen",
             "father", "dad", "son", "brother", "husband", "uncle", "nephew", "grandfather",
             "grandpa", "king", "prince", "mr", "sir", "hero", "actor"),
}


class PronounExtractor:
    """Counts each label's words in a text; the top label wins if it leads by `margin` or more."""

    def __init__(self, words: Mapping[str, Sequence[str]], margin: int) -> None:
        self.patterns = {label: word_pattern(ws) for label, ws in words.items()}
        self.margin = margin

    def extract(self, reading: Reading) -> Extraction:
        counts = {label: len(p.findall(reading.text)) for label, p in self.patterns.items()}
        ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        (top, top_n), (_, second_n) = ranked[0], ranked[1]
        tally = ", ".join(f"{label} {n}" for label, n in ranked)
        if top_n - second_n >= self.margin:
            return Extraction(top, tally)
        return Extraction(None, f"no clear majority ({tally}; margin {self.margin})")

    def can_produce(self) -> set[str]:
        return set(self.patterns)
