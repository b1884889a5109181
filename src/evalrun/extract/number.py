"""The `number` extractor: the first number in the answer (a rating, a quantity), within bounds, as a label.

A label is either the number's own value (labels "1".."7" for a 1-7 scale; "7.0" reads as "7") or the
bin that holds it (`bins: {low: [1, 3], high: [4, 7]}`, ranges inclusive).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from ..errors import short
from .base import Extraction, Reading

# An optional sign, digits (with optional thousands commas, "1,200") and an optional decimal part, or a
# bare decimal (".5"), then an optional exponent ("1e3" is 1000, not 1). Not inside a word or a version
# string: "A1", "v2" and the "2" of "1.2.3" are not read.
NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
                    r"(?:[eE][-+\u2212]?\d+)?(?!\d)")


def as_number(text: str) -> float | None:
    """The finite number `text` spells, else None: "inf" and "nan" are words to a reader, and a number too
    large for a float ("1e309", 400 digits) has no value to compare with a bound or a bin."""
    try:
        value = float(text.replace(",", "").replace("\u2212", "-"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class NumberExtractor:
    """Reads the first number; out of bounds, or matching no label or bin, is unparsed with the reason."""

    def __init__(self, labels: Sequence[str], minimum: float | None = None, maximum: float | None = None,
                 bins: Mapping[str, Sequence[float]] | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.bins = {label: (float(lo), float(hi)) for label, (lo, hi) in (bins or {}).items()}
        # labels that are numbers, by value; used only without bins
        self.values = {} if bins else {v: label for label in labels if (v := as_number(label)) is not None}

    def extract(self, reading: Reading) -> Extraction:
        match = NUMBER.search(reading.text)
        if match is None:
            return Extraction(None, "no number in the answer")
        text = match.group(0)
        value = as_number(text)
        if value is None:  # NUMBER only matches what float() reads, once its commas are gone: too large
            return Extraction(None, f"number {short(text)} is too large to read")
        if self.minimum is not None and value < self.minimum:
            return Extraction(None, f"number {short(text)} is below the minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            return Extraction(None, f"number {short(text)} is above the maximum {self.maximum:g}")
        if self.bins:
            label = next((label for label, (lo, hi) in self.bins.items() if lo <= value <= hi), None)
            if label is None:
                return Extraction(None, f"number {short(text)} is in no bin")
            lo, hi = self.bins[label]
            return Extraction(label, f"number {short(text)}, in bin '{label}' ({lo:g} to {hi:g})")
        label = self.values.get(value)
        if label is None:
            return Extraction(None, f"number {short(text)} is not one of the labels")
        return Extraction(label, f"number {short(text)}")

    def can_produce(self) -> set[str]:
        if self.bins:
            return set(self.bins)
        low = -float("inf") if self.minimum is None else self.minimum
        high = float("inf") if self.maximum is None else self.maximum
        return {label for value, label in self.values.items() if low <= value <= high}
