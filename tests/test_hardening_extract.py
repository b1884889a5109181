"""Issue 14, item 7: a catastrophic regular expression cannot pin the CPU; its time per answer is bounded."""

from __future__ import annotations

import warnings

import pytest

import evalrun.extract.pattern as pattern
from evalrun.extract import ExtractorConfigError, Reading, RegexExtractor, build_extractor


def test_a_catastrophic_pattern_times_out_into_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pattern, "PATTERN_TIMEOUT_S", 0.2)  # the same path as the real 1 s, quicker
    extractor = build_extractor({"type": "regex", "pattern": r"(?P<label>(a|aa)+b)"}, ["a", "b"])
    got = extractor.extract(Reading("a" * 60))  # about 2**40 ways to split the a's before failing on the missing b
    assert got.label is None
    assert got.reason == "pattern timed out after 0.2 s"


def test_the_real_timeout_is_one_second() -> None:
    assert pattern.PATTERN_TIMEOUT_S == 1.0
    extractor = RegexExtractor(r"(?P<label>(a|aa)+b)", "label", {}, ["a", "b"])
    assert extractor.extract(Reading("a" * 60)).reason == "pattern timed out after 1 s"


def test_python_re_syntax_and_messages_are_kept() -> None:
    extractor = RegexExtractor(r"(?i)choice:\s*(?P<label>[ab])\b", "label", {}, ["a", "b"])
    assert extractor.extract(Reading("CHOICE: B")).label == "b"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # `re` warns that a later Python may read it as set syntax
        # `&&` is set intersection in the regex module's V1 mode; in `re` (and V0) it is two literal ampersands
        literal = RegexExtractor(r"(?P<label>[x&&y])", "label", {"&": "a"}, ["a", "b"])
    assert literal.extract(Reading("&")).label == "a"
    with pytest.raises(ExtractorConfigError, match=r"missing \), unterminated subpattern at position 8"):
        RegexExtractor(r"answer: (?P<label>\w+", "label", {}, ["a", "b"])
