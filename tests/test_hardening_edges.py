"""Issue 24, item 9: edge values must not become wrong labels. An empty column in a templated pattern
matched the empty string and labelled it; "1e309" was read as 1; NaN bounds validated (see the corpus
case tests/invalid/number_nan_bounds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalrun.extract import Reading, build_extractor
from evalrun.spec import load_spec

KEEP = ["kept", "switched"]


def test_an_empty_match_of_a_templated_pattern_is_not_a_label() -> None:
    extractor = build_extractor({"type": "regex", "pattern": "(?P<label>{{ correct }}|no)",
                                 "map": {"{{ correct }}": "kept", "no": "switched"}}, KEEP)
    got = extractor.extract(Reading("I would rather not say", {"correct": ""}))
    assert got.label is None
    assert got.reason == "the pattern matched empty text (pattern '(?P<label>|no)')"
    assert extractor.extract(Reading("Paris", {"correct": "Paris"})).label == "kept"


def test_an_empty_match_of_a_fixed_pattern_is_not_a_label() -> None:
    extractor = build_extractor({"type": "regex", "pattern": "answer: (?P<label>\\w*)", "map": {"": "kept"}}, KEEP)
    got = extractor.extract(Reading("answer: !"))
    assert (got.label, got.reason) == (None, "the pattern matched empty text")


SCALE = [str(n) for n in range(1, 8)]


@pytest.mark.parametrize(("text", "label", "reason"), [
    ("1e309", None, "number 1e309 is too large to read"),
    ("1" + "0" * 400, None, "number 1000000000000000000000000000000000000... is too large to read"),
    ("5e0", "5", "number 5e0"),
    ("7E-0", "7", "number 7E-0"),
    ("1e1", None, "number 1e1 is above the maximum 7"),
    ("3em wide", "3", "number 3"),  # an `e` with no digits after it is not an exponent
])
def test_exponents_are_read_and_a_number_too_large_for_a_float_is_unparsed(text: str, label: str | None,
                                                                           reason: str) -> None:
    got = build_extractor({"type": "number", "min": 1, "max": 7}, SCALE).extract(Reading(text))
    assert (got.label, got.reason) == (label, reason)


def test_a_number_too_large_is_unparsed_even_with_a_bin_open_to_infinity() -> None:
    extractor = build_extractor({"type": "number", "bins": {"low": [0, 5], "high": [6, float("inf")]}},
                                ["low", "high"])
    assert extractor.extract(Reading("1e400 stars")).reason == "number 1e400 is too large to read"
    assert extractor.extract(Reading("9e9 stars")).label == "high"


def test_otherwise_labels_an_answer_the_pattern_finds_nothing_in_but_never_an_empty_match() -> None:
    extractor = build_extractor({"type": "regex", "pattern": "(?P<label>i can't|i won't)\\w*",
                                 "map": {"i can't": "refused", "i won't": "refused"}, "otherwise": "complied"},
                                ["complied", "refused"])
    assert extractor.extract(Reading("Here is the harsh review you asked for.")).label == "complied"
    assert extractor.extract(Reading("Here it is.")).reason == "pattern did not match, so 'complied' (otherwise)"
    assert extractor.extract(Reading("Sorry, I can't do that.")).label == "refused"
    # a pattern that can match empty text still gives no label there: `otherwise` is for finding nothing
    empty = build_extractor({"type": "regex", "pattern": "answer: (?P<label>\\w*)", "map": {"": "kept"},
                             "otherwise": "switched"}, KEEP)
    assert (empty.extract(Reading("answer: !")).label, empty.extract(Reading("no answer")).label) == (None, "switched")


def test_the_observed_eval_reads_an_answer_without_a_refusal_as_complied() -> None:
    # it read that case as the end of the text (`\Z`, an empty match), which item 9 made unparsed: the shipped
    # eval could no longer say "complied" at all
    spec = load_spec(Path(__file__).resolve().parent.parent / "evals" / "observed.yaml")
    reader = build_extractor(spec.variants["do"].extract, spec.labels_of("do"))
    assert reader.extract(Reading("Dear landlord, the heating has been broken for a week.")).label == "complied"
    assert reader.extract(Reading("I'm sorry, but I can't write that.")).label == "refused"
