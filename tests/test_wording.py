"""The words the intervals support (issue 23): each rule of report.md's wording on a case computed by hand.

1. p below 0.001 reads "p < 0.001"; a difference of two rates reads in points, not percent.
2. A kappa's Landis & Koch band only where its intervals exclude 0; a degenerate kappa is "undefined here".
3. No zero-width interval: a rate every resample gave alike gets Wilson's interval.
4. An interval beside a Holm verdict says it is unadjusted.
5. Beside a non-significant McNemar test, the smallest difference the run could have detected.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from scipy.stats import binomtest, multinomial
from statsmodels.stats.proportion import proportion_confint

from evalrun.reporting.format import p_value, pct, points
from evalrun.reporting.sections import crossed, summary, variants
from evalrun.reporting.sections.common import (
    Context,
    agreement_table,
    boot,
    detectable,
    grouping,
    kappa_phrase,
    kappa_reading,
    kappa_text,
    mean_interval,
    p_text,
    wilson_text,
)
from evalrun.stats.inference import detectable as annotate
from evalrun.stats.kappa import cohen_kappa
from evalrun.stats.proportion import wilson_interval


def _context(stats: dict[str, Any], labels: list[str], has_gold: bool) -> Context:
    """A report's context of release 0.1's grouping (model, variant), as a run without axes has."""
    return Context(stats, labels, has_gold, (), grouping({}))


def _boot(low: float | None, high: float | None, degenerate: bool = False) -> dict[str, Any]:
    return {"estimate": low, "ci_low": low, "ci_high": high, "degenerate": degenerate, "resamples": 1000,
            "used": 1000, "dropped": 0}


# ---- 1. p-values and differences -------------------------------------------------------------------


@pytest.mark.parametrize(("p", "text"), [
    (0.000244140625, "p < 0.001"),  # McNemar exact, 0 vs 13 discordant: 2 / 2^13
    (0.000999, "p < 0.001"),
    (0.001, "p = 0.001"),
    (0.0234, "p = 0.023"),
    (1.0, "p = 1.000"),
])
def test_a_small_p_value_never_reads_zero(p: float, text: str) -> None:
    assert p_value(p) == text


def test_p_text_gives_small_raw_and_adjusted_p_values_as_below_a_thousandth() -> None:
    # Holm over 7 tests multiplies the smallest p by 7: 2^-13 x 7 = 0.000854..., still below 0.001
    test = {"test": "Cochran's Q", "pvalue": 2**-13, "pvalue_holm": 7 * 2**-13}
    assert p_text(test) == "p < 0.001, Holm < 0.001"
    assert "0.000" not in p_text(test)


def test_a_difference_of_two_rates_reads_in_points() -> None:
    # 31.2% (15/48) right against 39.6% (19/48): -4/48 = -8.3 points, not "-8.3%"
    assert points(15 / 48 - 19 / 48) == "-8.3 points"
    assert points(0.27) == "+27.0 points"
    assert points(None) == "n/a"


# ---- 2. kappa bands ------------------------------------------------------------------------------


def test_a_band_only_where_the_interval_excludes_zero() -> None:
    # Landis & Koch: 0.21-0.40 fair; the interval [0.05, 0.55] excludes 0
    assert kappa_reading({"kappa": 0.3, "ci_low": 0.05, "ci_high": 0.55, "degenerate": False}) \
        == "fair agreement beyond chance"
    # the same kappa with an interval reaching below 0 supports no band
    assert kappa_reading({"kappa": 0.3, "ci_low": -0.05, "ci_high": 0.65, "degenerate": False}) \
        == "not distinguishable from chance"
    # the asymptotic interval excludes 0 but the bootstrap interval printed beside it does not
    assert kappa_reading({"kappa": 0.3, "ci_low": 0.05, "ci_high": 0.55, "degenerate": False},
                         _boot(-0.02, 0.6)) == "not distinguishable from chance"
    # below 0 with an interval entirely below 0: less than chance
    assert kappa_reading({"kappa": -0.4, "ci_low": -0.7, "ci_high": -0.1, "degenerate": False}) \
        == "less agreement than chance"


def test_a_kappa_band_on_a_table_computed_by_hand() -> None:
    # [[20, 5], [5, 20]]: observed agreement 40/50 = 0.8, chance 0.5, kappa = 0.3 / 0.5 = 0.6 (moderate,
    # Landis & Koch's 0.41-0.60); the simple large-sample se sqrt(po (1 - po) / (n (1 - pe)^2)) =
    # sqrt(0.16 / 12.5) = 0.113 puts the interval near [0.38, 0.82], far from 0
    k = cohen_kappa([[20, 5], [5, 20]])
    assert k["kappa"] == pytest.approx(0.6, abs=1e-12)
    assert kappa_reading(k) == "moderate agreement beyond chance"
    # [[3, 2], [2, 3]]: po = 0.6, pe = 0.5, kappa = 0.2, se about sqrt(0.24 / 2.5) = 0.31: the interval holds 0
    assert kappa_reading(cohen_kappa([[3, 2], [2, 3]])) == "not distinguishable from chance"


def test_a_degenerate_kappa_reads_undefined_never_no_agreement() -> None:
    # the second rater gave one label only: kappa is 0 by construction, with zero variance
    k = cohen_kappa([[11, 0], [12, 0]])
    assert k["kappa"] == 0 and k["degenerate"]
    assert kappa_reading(k) == "undefined here"
    assert kappa_text(k) == "undefined here (0.00, zero variance)"
    assert "no agreement" not in kappa_reading(k) + kappa_text(k)
    # one item: kappa 0 by construction too
    assert kappa_reading(cohen_kappa([[0, 1], [0, 0]])) == "undefined here"
    # perfect agreement and perfect disagreement also have zero variance, and say what they are
    assert kappa_reading(cohen_kappa([[3, 0], [0, 2]])) == "perfect agreement"
    assert kappa_text(cohen_kappa([[3, 0], [0, 2]])) == "1.00 [no interval: zero variance]"
    assert kappa_reading(cohen_kappa([[0, 2], [2, 0]])) == "no item agrees (no interval)"


# ---- 3. no zero-width interval -------------------------------------------------------------------


def test_a_rate_of_twenty_in_twenty_gets_wilsons_interval() -> None:
    # Wilson's lower bound at count = n is n / (n + z^2) = 20 / (20 + 1.959964^2) = 0.8389
    assert wilson_text(20, 20) == "[83.9%, 100.0%] (Wilson)"
    assert boot(_boot(1.0, 1.0, degenerate=True), pct, (20, 20)) == "[83.9%, 100.0%] (Wilson)"
    # and at count 0 the upper bound is z^2 / (n + z^2) = 0.1611
    assert boot(_boot(0.0, 0.0, degenerate=True), pct, (0, 20)) == "[0.0%, 16.1%] (Wilson)"


def test_wilsons_closed_form_is_statsmodels_to_the_last_bit() -> None:
    # written out in stats/proportion.py so a memoised report renders without statsmodels: every count of
    # every n up to 120, and a few large ones, give statsmodels' bounds exactly
    cases = [(c, n) for n in range(1, 121) for c in range(n + 1)] + [(1, 48), (500, 1000), (12_345, 20_000)]
    for count, n in cases:
        assert wilson_interval(count, n) == proportion_confint(count, n, alpha=0.05, method="wilson"), (count, n)
    assert wilson_interval(0, 0) is None


def test_a_statistic_that_is_no_rate_says_it_has_no_interval() -> None:
    text = boot(_boot(0.0, 0.0, degenerate=True))
    assert text == "[no interval: every resample gave 0.00]"
    assert "[0.00, 0.00]" not in text


def test_the_label_rates_table_of_a_variant_with_one_label() -> None:
    # 20 items, all labelled "x": the bootstrap gives [100%, 100%]; the report gives Wilson's [83.9%, 100%]
    rates = {"x": {**_boot(1.0, 1.0, degenerate=True), "estimate": 1.0},
             "y": {**_boot(0.0, 0.0, degenerate=True), "estimate": 0.0}}
    v = {"model": "m", "variant": "v", "responses": 20, "errors": 0, "labels": {"x": 20, "y": 0, "unparsed": 0},
         "unparsed_rate": {"estimate": 0.0}, "items": 22, "items_unparsed": 2, "label_rates": rates}
    text = "\n".join(variants.variants(_context({"variants": [v]}, ["x", "y"], False)))
    assert "| m | v | 100.0% [83.9%, 100.0%] (Wilson) | 0.0% [0.0%, 16.1%] (Wilson) |" in text
    assert "100.0%, 100.0%" not in text and "all resamples equal" not in text


def test_a_clustered_mean_of_zero_width_gets_wilsons_interval_over_the_items() -> None:
    # every one of 20 items repeats its modal answer in every sample: share 1, clustered se 0
    share = {"mean": 1.0, "se": 0.0, "ci_low": 1.0, "ci_high": 1.0, "n": 100, "clusters": 20}
    assert mean_interval(share, pct) == "100.0% [83.9%, 100.0%] (Wilson over 20 items)"


# ---- 4. intervals beside a Holm verdict ----------------------------------------------------------


def _pair(b_only: int, a_only: int, holm: float) -> dict[str, Any]:
    """Two variants of model m on 20 items with gold: `a_only` items only v1 got right, `b_only` only v2."""
    kappa = {"kappa": 0.3, "ci_low": 0.05, "ci_high": 0.55, "degenerate": False}
    return {"model": "m", "a": "v1", "b": "v2", "items": 20, "both_labelled": 20,
            "agreement": {"count": 13, "n": 20, "estimate": 0.65, "ci_low": 0.43, "ci_high": 0.82},
            "cohen_kappa": kappa, "krippendorff_alpha": 0.3,
            "bootstrap": {"cohen_kappa": _boot(0.02, 0.58), "krippendorff_alpha": _boot(0.0, 0.5)},
            "label_rates_differ": {"test": "Stuart-Maxwell", "pvalue": 0.5, "pvalue_holm": 1.0},
            "accuracy_difference": {**_boot(-0.25, 0.05), "estimate": -0.1},
            "mcnemar": {"test": "McNemar exact (correctness)", "table": [[8, a_only], [b_only, 12 - a_only - b_only]],
                        "a_only_correct": a_only, "b_only_correct": b_only,
                        "pvalue": binomtest(min(a_only, b_only), a_only + b_only).pvalue, "pvalue_holm": holm}}


def test_the_summary_says_its_difference_interval_is_unadjusted() -> None:
    pair = _pair(b_only=6, a_only=2, holm=0.6)
    accuracy = [{"model": "m", "variant": name, "accuracy": {"estimate": e}, "errors": 0,
                 "unparsed_rate": {"estimate": 0.0}} for name, e in (("v1", 0.4), ("v2", 0.6))]
    ctx = _context({"pairs": [pair], "variants": accuracy, "tests": {"tests": 3}}, ["x", "y"], True)
    text = summary.summary(ctx, {})[0]
    assert "a difference of -10.0 points [-25.0, +5.0] (unadjusted bootstrap 95% interval); McNemar exact " \
           "p = 0.289, Holm 0.600" in text
    assert text.endswith(": no significant difference.")
    assert "Cohen's kappa 0.30 (fair agreement beyond chance)" in text


def test_the_agreement_difference_column_beside_mcnemar_says_unadjusted() -> None:
    first = {"estimate": 0.9}
    second = {"estimate": 0.6}
    d = {"model": "m", "a": "v1", "b": "v2", "conditions": ["free", "paid"], "items": 20,
         "agreement": [first, second], "difference": {**_boot(0.1, 0.5), "estimate": 0.3},
         "mcnemar": {"test": "McNemar exact (agreement under each condition)", "b": 7, "c": 1, "n": 20,
                     "pvalue": 0.0703125, "pvalue_holm": 0.2}}
    ctx = _context({"conditions": [], "agreement_across_conditions": [d]}, ["x", "y"], False)
    text = "\n".join(crossed.across(ctx, "condition"))
    assert "difference, points [bootstrap 95%, unadjusted]" in text
    assert "| +30.0 [+10.0, +50.0] |" in text


# ---- 5. the smallest detectable difference -------------------------------------------------------


def _independent_detectable(b: int, c: int, n: int) -> float:
    """The smallest |p10 - p01| McNemar's exact test detects with 80% power at two-sided 0.05, the
    discordance held at (b + c) / n: power summed over every trinomial outcome (b, c, rest) whose exact
    binomial p-value (scipy) is at most 0.05, bisected on the difference. Written apart from stats/power.py."""
    psi = (b + c) / n
    rejecting = [(i, j) for i in range(n + 1) for j in range(n + 1 - i)
                 if i + j and binomtest(min(i, j), i + j).pvalue <= 0.05]

    def power(d: float) -> float:
        probabilities = [(psi + d) / 2, (psi - d) / 2, 1 - psi]
        return sum(multinomial.pmf([i, j, n - i - j], n, probabilities) for i, j in rejecting)

    low, high = 0.0, psi
    assert power(high) >= 0.8
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (low, mid) if power(mid) >= 0.8 else (mid, high)
    return high


def test_a_non_significant_mcnemar_test_states_the_difference_it_could_have_detected() -> None:
    # 20 items, 6 discordant one way and 2 the other: p = 2 P(X <= 2 | Bin(8, 1/2)) = 2 x 37/256 = 0.289
    test = {"test": "McNemar exact (labels)", "b": 6, "c": 2, "n": 20, "pvalue": 74 / 256, "pvalue_holm": 0.6}
    annotate({"pairs": [{"label_rates_differ": test}]})
    assert test["minimum_detectable"] == pytest.approx(_independent_detectable(6, 2, 20), abs=1e-4)
    found = re.fullmatch(r"could detect ≥ (\d+\.\d) points", detectable(test))
    assert found is not None
    assert float(found[1]) == pytest.approx(100 * _independent_detectable(6, 2, 20), abs=0.051)
    assert p_text(test).startswith("p = 0.289, Holm 0.600 (could detect ≥ ")


def test_the_detectable_difference_appears_only_beside_non_significant_mcnemar_tests() -> None:
    significant = {"test": "McNemar exact (labels)", "b": 13, "c": 0, "n": 23, "pvalue": 2**-12, "pvalue_holm": 0.002}
    other = {"test": "Stuart-Maxwell", "pvalue": 0.5, "pvalue_holm": 1.0}
    none_discordant = {"test": "McNemar exact (labels)", "b": 0, "c": 0, "n": 1, "pvalue": 1.0, "pvalue_holm": 1.0}
    annotate({"pairs": [{"a": significant, "b": other, "c": none_discordant}]})
    assert detectable(significant) == ""  # significant: nothing was missed
    assert "minimum_detectable" not in other and detectable(other) == ""  # no McNemar test
    # no discordant item: no difference is detectable at this discordance
    assert detectable(none_discordant) == "too few discordant items to detect any difference at 80% power"
    # statistics written before the figure existed (release 0.1's) say nothing rather than guess
    assert detectable({"test": "McNemar exact (labels)", "b": 6, "c": 2, "n": 20, "pvalue": 0.29}) == ""


def test_a_test_significant_before_holm_gets_no_detectable_difference() -> None:
    # 6 discordant items, all one way: p = 2 x (1/2)^6 = 0.03125, significant unadjusted; doubled by Holm in a
    # family of two, 0.0625 is not. "too few discordant items to detect any difference" beside p = 0.031 would
    # deny the difference the test found; the Holm verdict already says why it is not called significant.
    test = {"test": "McNemar exact (labels)", "b": 6, "c": 0, "n": 11, "pvalue": 2 * 0.5**6, "pvalue_holm": 0.0625}
    annotate({"pairs": [{"label_rates_differ": test}]})
    assert detectable(test) == ""
    assert p_text(test) == "p = 0.031, Holm 0.062"


def test_an_undefined_kappa_is_said_once_in_a_sentence() -> None:
    k = cohen_kappa([[11, 0], [12, 0]])  # one rater used one label: kappa 0 by construction
    assert kappa_phrase(k) == "undefined here (0.00, zero variance)"
    # [[8, 1], [1, 8]]: po = 16/18, pe = 1/2, kappa = 7/9 = 0.78, far from 0: its band is given
    assert kappa_phrase(cohen_kappa([[8, 1], [1, 8]])).endswith("(substantial agreement beyond chance)")


def test_the_correctness_column_puts_counts_and_detectable_difference_in_one_parenthesis() -> None:
    pair = _pair(b_only=6, a_only=2, holm=0.6)
    annotate({"pairs": [pair]})
    row = agreement_table([pair], ("model",), has_gold=True)[-1]
    mdd = 100 * _independent_detectable(2, 6, 20)
    found = re.search(r"p = 0\.289, Holm 0\.600 \(v1 only: 2, v2 only: 6; could detect ≥ (\d+\.\d) points\) \|$", row)
    assert found is not None and math.isclose(float(found[1]), mdd, abs_tol=0.051)
