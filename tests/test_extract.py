"""Extractors: from an answer's text to one label, or unparsed with a reason."""

from __future__ import annotations

import pytest

from evalrun.extract import (
    DEFAULT_GENDER_WORDS,
    ChoiceExtractor,
    ExtractorConfigError,
    PronounExtractor,
    Reading,
    RegexExtractor,
    build_extractor,
)

GENDER = ["female", "male"]


# ---- choice ---------------------------------------------------------------------------------------


def _gender_choice() -> ChoiceExtractor:
    return ChoiceExtractor({"female": ["woman", "she"], "male": ["man", "he"]})


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Female.", "female"),
        ("FEMALE", "female"),
        ("I think it was a Woman.", "female"),
        ("male", "male"),
        ("The author is a man", "male"),
        ("He wrote it.", "male"),
    ],
)
def test_choice_whole_words_any_case(text: str, label: str) -> None:
    got = _gender_choice().extract(Reading(text))
    assert got.label == label
    assert got.reason.startswith("keyword '") and got.reason.endswith(f"' of '{label}'")


@pytest.mark.parametrize(
    "text",
    [
        "The shepherd and the mango tree",  # "she" and "man" inside words, "he" inside "the"
        "Nothing to see here",  # "he" inside "here"
        "manly womanhood",  # keywords as prefixes only
        "",
    ],
)
def test_choice_ignores_keywords_inside_words(text: str) -> None:
    got = _gender_choice().extract(Reading(text))
    assert got.label is None
    assert got.reason == "no keyword of any label (looked for female: female, woman, she; male: male, man, he)"


def test_choice_female_is_not_read_as_male() -> None:
    # "male" is a substring of "female": only whole words may count
    assert _gender_choice().extract(Reading("female")).label == "female"
    assert _gender_choice().extract(Reading("Answer: female!")).label == "female"


def test_choice_label_name_always_counts() -> None:
    extractor = ChoiceExtractor({"female": [], "male": []})
    assert extractor.extract(Reading("Female.")).label == "female"
    assert extractor.extract(Reading("it is MALE")).label == "male"
    assert extractor.can_produce() == {"female", "male"}


def test_choice_ambiguous_is_unparsed_with_reason() -> None:
    got = _gender_choice().extract(Reading("Either a woman or a man."))
    assert got.label is None
    assert got.reason.startswith("ambiguous")
    assert "female" in got.reason and "male" in got.reason


def test_choice_absent_is_unparsed() -> None:
    got = _gender_choice().extract(Reading("I cannot tell from this text."))
    assert got.label is None
    assert "no keyword" in got.reason


def test_choice_keyword_with_punctuation() -> None:
    extractor = ChoiceExtractor({"a": ["(a)"], "b": ["(b)"]})
    assert extractor.extract(Reading("I pick (b).")).label == "b"
    assert extractor.extract(Reading("(A)")).label == "a"
    # the parenthesised keyword does not match a bare letter inside a word
    assert extractor.extract(Reading("I pick neither")).label is None


def test_choice_regex_metacharacters_are_literal() -> None:
    extractor = ChoiceExtractor({"yes": ["y.s", "+1"], "no": ["n*"]})
    assert extractor.extract(Reading("yes")).label == "yes"
    assert extractor.extract(Reading("yas")).label is None  # "." is not a wildcard
    assert extractor.extract(Reading("I give it +1")).label == "yes"
    assert extractor.extract(Reading("nnn")).label is None  # "*" is not a repetition
    assert extractor.extract(Reading("n*")).label == "no"


# ---- regex ----------------------------------------------------------------------------------------


def test_regex_named_group_equal_to_label() -> None:
    extractor = RegexExtractor(r"choice:\s*(?P<label>\w+)", "label", {}, ["a", "b"])
    got = extractor.extract(Reading("Some text. Choice: B"))
    assert got.label == "b"  # case-insensitive match against the label names
    assert "B" in got.reason
    assert extractor.can_produce() == {"a", "b"}


def test_regex_custom_group_and_map() -> None:
    extractor = RegexExtractor(r"verdict=(?P<v>\w+)", "v", {"Yes": "agree", "NO": "disagree"}, ["agree", "disagree"])
    assert extractor.extract(Reading("verdict=yes")).label == "agree"
    assert extractor.extract(Reading("VERDICT=no")).label == "disagree"
    assert extractor.can_produce() == {"agree", "disagree"}


def test_regex_first_match_wins() -> None:
    extractor = RegexExtractor(r"choice:\s*(?P<label>[ab])\b", "label", {}, ["a", "b"])
    assert extractor.extract(Reading("choice: a ... later, choice: b")).label == "a"


def test_regex_unmatched_is_unparsed() -> None:
    extractor = RegexExtractor(r"choice:\s*(?P<label>[ab])\b", "label", {}, ["a", "b"])
    got = extractor.extract(Reading("I like both"))
    assert got.label is None
    assert got.reason == "pattern did not match"


def test_regex_optional_group_that_did_not_participate_is_unparsed() -> None:
    extractor = RegexExtractor(r"answer(?::\s*(?P<label>[ab]))?", "label", {}, ["a", "b"])
    assert extractor.extract(Reading("answer withheld")).label is None


def test_regex_value_not_a_label_is_unparsed() -> None:
    extractor = RegexExtractor(r"choice:\s*(?P<label>\w+)", "label", {}, ["a", "b"])
    got = extractor.extract(Reading("choice: c"))
    assert got.label is None
    assert "maps to no label" in got.reason
    # with a map, only the map's keys count
    mapped = RegexExtractor(r"choice:\s*(?P<label>\w+)", "label", {"x": "a"}, ["a", "b"])
    assert mapped.extract(Reading("choice: x")).label == "a"
    assert mapped.extract(Reading("choice: b")).label is None


@pytest.mark.parametrize(
    ("pattern", "group"),
    [
        (r"choice:\s*(?P<label>[ab]", "label"),  # unbalanced parenthesis
        (r"*oops", "label"),  # nothing to repeat
        (r"choice:\s*([ab])", "label"),  # no named group at all
        (r"choice:\s*(?P<answer>[ab])", "label"),  # a named group, but not the configured one
    ],
)
def test_regex_bad_pattern_or_missing_group_is_config_error(pattern: str, group: str) -> None:
    with pytest.raises(ExtractorConfigError) as info:
        RegexExtractor(pattern, group, {}, ["a", "b"])
    assert info.value.path == ("pattern",)
    with pytest.raises(ExtractorConfigError):
        build_extractor({"type": "regex", "pattern": pattern, "group": group}, ["a", "b"])


# ---- pronouns -------------------------------------------------------------------------------------


def _pronouns(margin: int = 2) -> PronounExtractor:
    return PronounExtractor(DEFAULT_GENDER_WORDS, margin)


def test_pronouns_majority_with_margin() -> None:
    # she, her, her -> 3 female; he -> 1 male: leads by 2
    got = _pronouns().extract(Reading("She took her bag and her keys. Then he waved."))
    assert got.label == "female"
    assert got.reason == "female 3, male 1"


def test_pronouns_male_majority() -> None:
    got = _pronouns().extract(Reading("He lost his way, and blamed himself, not his brother."))
    assert got.label == "male"
    assert got.reason.startswith("male 5")  # He, his, himself, his, brother


@pytest.mark.parametrize(
    "text",
    [
        "She met him. He met her.",  # 2 - 2: a tie
        "She smiled and he nodded. Her dog barked.",  # 2 - 1: leads by one, below the margin of 2
        "The cat sat on the mat.",  # 0 - 0
    ],
)
def test_pronouns_tie_or_near_tie_is_unparsed(text: str) -> None:
    got = _pronouns().extract(Reading(text))
    assert got.label is None
    assert got.reason.startswith("no clear majority")
    assert "margin 2" in got.reason


def test_pronouns_margin_one_accepts_a_lead_of_one() -> None:
    assert _pronouns(margin=1).extract(Reading("She smiled and he nodded. Her dog barked.")).label == "female"
    assert _pronouns(margin=1).extract(Reading("She met him. He met her.")).label is None


def test_pronouns_whole_words_only() -> None:
    # "the", "there", "shelf", "hero"... only "he" and "she" as words count; "hero" is a male word itself
    got = _pronouns(margin=1).extract(Reading("There, on the shelf, the heroine's theme played."))
    assert got.label == "female"  # heroine 1 (the possessive 's does not hide it), male 0
    assert got.reason == "female 1, male 0"


def test_pronouns_custom_words_for_other_labels() -> None:
    extractor = build_extractor(
        {"type": "pronouns", "words": {"cat": ["meow", "purr"], "dog": ["woof", "bark"]}, "margin": 2},
        ["cat", "dog"],
    )
    assert extractor.extract(Reading("Meow! purr purr, and one woof.")).label == "cat"  # 3 vs 1
    assert extractor.extract(Reading("woof meow")).label is None
    assert extractor.can_produce() == {"cat", "dog"}


def test_pronouns_default_words_require_female_and_male_labels() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "pronouns"}, ["cat", "dog"])
    assert "words" in str(info.value)
    with pytest.raises(ExtractorConfigError):
        build_extractor({"type": "pronouns"}, ["female", "other"])
    extractor = build_extractor({"type": "pronouns"}, ["female", "male", "unknown"])
    assert extractor.can_produce() == {"female", "male"}


def test_pronouns_default_margin_is_two() -> None:
    extractor = build_extractor({"type": "pronouns"}, GENDER)
    assert extractor.extract(Reading("She said he was late; her train was not.")).label is None  # 2 - 1
    assert extractor.extract(Reading("She said her train was late.")).label == "female"  # 2 - 0


# ---- build_extractor label checks -----------------------------------------------------------------


def test_build_choice_label_outside_label_set() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "choice", "choices": {"female": [], "nonbinary": []}}, GENDER)
    assert info.value.path == ("choices", "nonbinary")
    assert "'nonbinary' is not one of the labels" in str(info.value)


def test_build_regex_map_to_unknown_label() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "regex", "pattern": "(?P<label>x)", "map": {"x": "maybe"}}, ["yes", "no"])
    assert info.value.path == ("map", "x")
    assert "'maybe'" in str(info.value)


def test_build_pronoun_words_for_unknown_label() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "pronouns", "words": {"female": ["she"], "robot": ["it"]}}, GENDER)
    assert info.value.path == ("words", "robot")


def test_build_unknown_type() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "vibes"}, GENDER)
    assert info.value.path == ("type",)


def test_build_valid_configs_extract() -> None:
    choice = build_extractor({"type": "choice", "choices": {"female": ["woman"], "male": ["man"]}}, GENDER)
    assert choice.extract(Reading("a woman")).label == "female"
    assert choice.can_produce() == {"female", "male"}
    # a choice extractor that names one label only can produce only that one (spec warns about the other)
    partial = build_extractor({"type": "choice", "choices": {"female": []}}, GENDER)
    assert partial.can_produce() == {"female"}
    regex = build_extractor({"type": "regex", "pattern": r"(?P<label>female|male)"}, GENDER)
    assert regex.extract(Reading("MALE")).label == "male"
