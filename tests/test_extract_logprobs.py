"""Issue 9, item 4: label probabilities from the first token's top log-probabilities (`mode: logprobs`)."""

from __future__ import annotations

import math

import pytest

from evalrun.extract import NO_LOGPROBS, Reading, build_extractor, wants_logprobs

GENDER = ["female", "male"]


def _logprobs(*candidates: tuple[str, float]) -> list[dict]:
    """OpenAI's shape: the first generated token with its top alternatives (probabilities, as log)."""
    top = [{"token": t, "logprob": math.log(p)} for t, p in candidates]
    return [{"token": candidates[0][0], "logprob": top[0]["logprob"], "top_logprobs": top},
            {"token": ".", "logprob": -0.1, "top_logprobs": []}]


def _extractor(choices: dict[str, list[str]] | None = None):  # type: ignore[no-untyped-def]
    return build_extractor({"type": "choice", "mode": "logprobs",
                            "choices": choices or {"female": ["woman"], "male": ["man"]}}, GENDER)


def test_case_and_leading_space_variants_of_a_label_merge() -> None:
    got = _extractor().extract(Reading("Female", logprobs=_logprobs(
        (" female", 0.4), ("Female", 0.2), ("female", 0.1), (" Male", 0.2), ("The", 0.05), ("\n", 0.05))))
    assert got.label == "female"
    assert got.probabilities == pytest.approx({"female": 0.7 / 0.9, "male": 0.2 / 0.9})
    assert sum(got.probabilities.values()) == pytest.approx(1.0)  # type: ignore[union-attr]
    assert got.captured == pytest.approx(0.9)
    assert got.reason == "female 0.78, male 0.22 (captured 0.90)"


def test_a_token_counts_only_when_it_begins_one_label_alone() -> None:
    # "m" begins "male" and "man" (both male): it counts; "wo" begins "woman" and "Fe" "female" (female).
    # A token that begins two labels' words (" sure": "sure" and "surely not") counts for neither.
    got = _extractor().extract(Reading("", logprobs=_logprobs(("m", 0.3), ("wo", 0.2), ("Fe", 0.1))))
    assert got.probabilities == pytest.approx({"female": 0.5, "male": 0.5})
    assert got.label is None and got.reason.startswith("tie: ")
    shared = build_extractor({"type": "choice", "mode": "logprobs", "choices": {"yes": ["sure"], "no": ["surely not"]}},
                             ["yes", "no"])
    got = shared.extract(Reading("", logprobs=_logprobs((" sure", 0.6), ("yes", 0.3))))
    assert got.probabilities == {"yes": 1.0, "no": 0.0}
    assert got.captured == pytest.approx(0.3)


def test_keywords_may_depend_on_the_item() -> None:
    extractor = build_extractor({"type": "choice", "mode": "logprobs",
                                 "choices": {"kept": ["{{ correct }}"], "switched": ["{{ wrong }}"]}},
                                ["kept", "switched"])
    got = extractor.extract(Reading("", {"correct": "Paris", "wrong": "Lyon"},
                                    _logprobs((" Paris", 0.5), ("Ly", 0.25), ("I", 0.25))))
    assert got.label == "kept"
    assert got.probabilities == pytest.approx({"kept": 2 / 3, "switched": 1 / 3})


def test_without_logprobs_the_text_is_read_and_the_reason_says_so() -> None:
    # a provider that gives no log-probabilities keeps its sampled label; only the probabilities are missing
    extractor = _extractor()
    for logprobs in (None, []):
        got = extractor.extract(Reading("female", logprobs=logprobs))
        assert (got.label, got.probabilities, got.captured) == ("female", None, None)
        assert got.reason.startswith(NO_LOGPROBS + "; read from the text: ")
        unreadable = extractor.extract(Reading("no idea", logprobs=logprobs))
        assert unreadable.label is None and unreadable.reason.startswith(NO_LOGPROBS)


def test_no_label_among_the_candidates() -> None:
    got = _extractor().extract(Reading("", logprobs=_logprobs(("The", 0.9), ("I", 0.1))))
    assert (got.label, got.probabilities, got.captured) == (None, None, 0.0)


def test_without_top_logprobs_the_token_itself_counts() -> None:
    got = _extractor().extract(Reading("", logprobs=[{"token": " male", "logprob": math.log(0.9)}]))
    assert got.label == "male"
    assert got.captured == pytest.approx(0.9)


def test_only_logprobs_mode_asks_for_logprobs() -> None:
    assert wants_logprobs(_extractor())
    assert not wants_logprobs(build_extractor({"type": "choice", "choices": {"female": []}}, GENDER))
    assert not wants_logprobs(build_extractor({"type": "pronouns"}, GENDER))


@pytest.mark.parametrize(("logprob", "says"), [
    (float("nan"), "token 'female' has a log-probability that is not a number (NaN)"),
    (1e308, "token 'female' has a positive log-probability (1e+308), a probability above 1"),
    (5.0, "token 'female' has a positive log-probability (5), a probability above 1"),
    ("-0.1", "token 'female' has a log-probability that is not a number (-0.1)"),
    (None, "token 'female' has a log-probability that is not a number (None)"),
])
def test_a_bad_log_probability_makes_the_answer_unparsed_with_a_reason(logprob: object, says: str) -> None:
    # issue 24, item 3: NaN raised IndexError, 1e308 OverflowError, and a positive one gave a mass of 16849.9%
    bad = [{"token": "female", "logprob": logprob, "top_logprobs": [
        {"token": "female", "logprob": logprob}, {"token": " male", "logprob": math.log(0.2)}]}]
    got = _extractor().extract(Reading("female", logprobs=bad))
    assert (got.label, got.probabilities, got.captured) == (None, None, None)
    assert got.reason == f"unusable log-probabilities: {says}"


def test_log_probabilities_that_sum_past_one_are_unusable_and_minus_infinity_is_zero() -> None:
    twice = _logprobs((" male", 0.7), ("male", 0.7))  # each valid, together a probability of 1.4
    got = _extractor().extract(Reading("", logprobs=twice))
    assert got.label is None and got.captured is None
    assert got.reason == "unusable log-probabilities: the labels' tokens add up to a probability of 1.4, more than 1"
    certain = [{"token": "male", "logprob": 1e-9, "top_logprobs": [  # a rounding error above 0 is a probability of 1
        {"token": "male", "logprob": 1e-9}, {"token": "female", "logprob": -math.inf}]}]
    got = _extractor().extract(Reading("", logprobs=certain))
    assert (got.label, got.probabilities, got.captured) == ("male", {"female": 0.0, "male": 1.0}, 1.0)


@pytest.mark.parametrize("shape", [{"token": "male"}, [5], [{"token": "male", "logprob": -0.1, "top_logprobs": 3}],
                                   [{"token": "male", "logprob": -0.1, "top_logprobs": ["male"]}]])
def test_log_probabilities_of_the_wrong_shape_are_unusable(shape: list) -> None:
    got = _extractor().extract(Reading("male", logprobs=shape))
    assert got.label is None and got.reason.startswith("unusable log-probabilities: ")
