"""Issue 9, item 5: the `number` extractor reads a rating or a quantity, within bounds, as a label."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalrun.extract import NumberExtractor, Reading, build_extractor
from evalrun.spec import parse_spec

SCALE = [str(n) for n in range(1, 8)]


@pytest.mark.parametrize(
    ("text", "label", "reason"),
    [
        ("I'd say 5.", "5", "number 5"),
        ("Rating: 7/7", "7", "number 7"),
        ("6.0 out of 7", "6", "number 6.0"),  # the value, not the spelling, finds the label
        ("+3", "3", "number +3"),
        ("Between 2 and 4, so 3", "2", "number 2"),  # the first number counts
        ("Item A1 gets a 4", "4", "number 4"),  # a digit inside a word is not a number
    ],
)
def test_labels_that_are_numbers(text: str, label: str, reason: str) -> None:
    got = build_extractor({"type": "number", "min": 1, "max": 7}, SCALE).extract(Reading(text))
    assert (got.label, got.reason) == (label, reason)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Nine", "no number in the answer"),
        ("8", "number 8 is above the maximum 7"),
        ("-2", "number -2 is below the minimum 1"),
        ("4.5", "number 4.5 is not one of the labels"),
        ("0.5", "number 0.5 is below the minimum 1"),
    ],
)
def test_unreadable_numbers_are_unparsed_with_a_reason(text: str, reason: str) -> None:
    got = build_extractor({"type": "number", "min": 1, "max": 7}, SCALE).extract(Reading(text))
    assert (got.label, got.reason) == (None, reason)


def test_bins_map_ranges_to_labels() -> None:
    extractor = build_extractor({"type": "number", "bins": {"low": [1, 3], "mid": [4, 4], "high": [5, 7]}},
                                ["low", "mid", "high"])
    assert extractor.extract(Reading("3")).label == "low"
    assert extractor.extract(Reading("4")).reason == "number 4, in bin 'mid' (4 to 4)"
    assert extractor.extract(Reading("7.0")).label == "high"
    assert extractor.extract(Reading("3.5")).reason == "number 3.5 is in no bin"
    assert extractor.can_produce() == {"low", "mid", "high"}


def test_quantities_with_signs_decimals_and_thousands() -> None:
    extractor = NumberExtractor(["few", "many"], bins={"few": [-1e9, 999], "many": [1000, 1e9]})
    assert extractor.extract(Reading("About 1,200 people")).label == "many"
    assert extractor.extract(Reading("\u22123.5 degrees")).reason == "number \u22123.5, in bin 'few' (-1e+09 to 999)"
    assert extractor.extract(Reading("1,2,3")).label == "few"  # a list, not a thousands separator
    assert extractor.extract(Reading("version 1.2.3 and .5")).reason.startswith("number 1.2,")


def test_labels_outside_the_bounds_can_never_be_produced() -> None:
    extractor = build_extractor({"type": "number", "min": 2, "max": 6}, SCALE)
    assert extractor.can_produce() == {"2", "3", "4", "5", "6"}


def test_a_spec_declares_its_labels_ordinal(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        name: ratings
        dataset: {items: [{id: a, text: hi}]}
        labels: ["1", "2", "3"]
        ORDINAL
        variants:
          one: {prompt: "{{ text }} 1-3?", extract: {type: number, min: 1, max: 3}}
          two: {prompt: "Rate {{ text }}", extract: {type: number}}
        """)
    spec, problems = parse_spec(text.replace("ORDINAL", "ordinal: true"), tmp_path / "s.yaml")
    assert problems == [] and spec is not None and spec.ordinal
    spec, _ = parse_spec(text.replace("ORDINAL", ""), tmp_path / "s.yaml")
    assert spec is not None and not spec.ordinal
    _, problems = parse_spec(text.replace("ORDINAL", "ordinal: 1"), tmp_path / "s.yaml")
    assert [p.message for p in problems] == ["ordinal: expected true or false, got the number 1"]
