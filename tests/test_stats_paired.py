"""Paired tests and Holm's correction (evalrun.stats.paired) against published examples, formulas
written out here, and statsmodels where it is an independent implementation of the same test.

Sources:
* McNemar (1947); the exact test is the binomial test of b against b + c at 1/2, summed here by hand.
* Stuart (1955), "A test for homogeneity of the marginal distributions in a two-way
  classification", Biometrika 42: unaided distance vision of 7477 women, right eye (rows) by left
  eye (columns); the Stuart-Maxwell statistic is 11.96 on 3 degrees of freedom (as also given by
  Agresti, "Categorical Data Analysis", on marginal homogeneity).
* Cochran (1950), "The comparison of percentages in matched samples", Biometrika 37: Q written out.
* Fisher (1935), "The Design of Experiments": Darwin's 15 paired Zea mays height differences
  (eighths of an inch), the example of scipy.stats.wilcoxon's documentation; the exact signed-rank
  p-value is counted here over all 2^15 sign patterns.
* Holm (1979), "A simple sequentially rejective multiple test procedure", written out below.
* Verdict wording (evalrun.stats.words), as issue 10 defines it: "unlikely to be chance" only for a
  Holm-adjusted p below 0.05, "no test possible" where there was no test.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import SquareTable, mcnemar

from evalrun.stats.paired import cochran_q, holm, mcnemar_exact, stuart_maxwell, wilcoxon_paired
from evalrun.stats.words import SIGNIFICANCE, verdict

# ---- McNemar --------------------------------------------------------------------------------------


def _exact_binomial_two_sided(b: int, c: int) -> float:
    """2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1."""
    m = b + c
    return min(1.0, 2 * sum(comb(m, i) for i in range(min(b, c) + 1)) / 2**m)


@pytest.mark.parametrize(("b", "c"), [(5, 1), (0, 3), (7, 7), (10, 2), (1, 12), (0, 1), (30, 18)])
def test_mcnemar_exact_is_the_binomial_sum(b: int, c: int) -> None:
    result = mcnemar_exact(b, c, n=b + c + 9)
    assert result is not None
    assert result["pvalue"] == pytest.approx(_exact_binomial_two_sided(b, c), rel=1e-12)
    assert result["statistic"] == min(b, c)
    assert (result["n"], result["discordant"]) == (b + c + 9, b + c)
    # and statsmodels' exact McNemar on the full 2x2 table, an implementation of its own
    assert result["pvalue"] == pytest.approx(mcnemar([[4, b], [c, 5]], exact=True).pvalue, rel=1e-12)


def test_mcnemar_five_against_one_by_hand() -> None:
    # 2 * (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    assert mcnemar_exact(5, 1, 10)["pvalue"] == pytest.approx(14 / 64, abs=1e-15)  # type: ignore[index]


def test_mcnemar_without_discordant_pairs_is_p_one_without_pairs_no_test() -> None:
    assert mcnemar_exact(0, 0, 12) == {"statistic": None, "pvalue": 1.0, "n": 12, "discordant": 0, "b": 0, "c": 0}
    assert mcnemar_exact(0, 0, 0) is None  # e.g. no item has a gold label: no test is possible


def test_mcnemar_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(3, 2, 4)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2, 4)


# ---- Stuart-Maxwell -------------------------------------------------------------------------------

STUART_1955 = [[1520, 266, 124, 66],
               [234, 1512, 432, 78],
               [117, 362, 1772, 205],
               [36, 82, 179, 492]]


def test_stuart_maxwell_published_vision_example() -> None:
    result = stuart_maxwell(STUART_1955)
    assert result is not None
    assert round(result["statistic"], 2) == 11.96
    assert result["df"] == 3 and result["n"] == 7477
    assert result["pvalue"] == pytest.approx(0.0075, abs=5e-5)


@settings(max_examples=100, deadline=None)
@given(st.integers(3, 5).flatmap(lambda k: st.lists(st.integers(1, 40), min_size=k * k, max_size=k * k)))
def test_stuart_maxwell_matches_statsmodels_where_it_is_defined(cells: list[int]) -> None:
    # every cell positive: the covariance of the margins is invertible and statsmodels answers
    k = round(len(cells) ** 0.5)
    table = np.array(cells).reshape(k, k)
    expected = SquareTable(table, shift_zeros=False).homogeneity(method="stuart_maxwell")
    result = stuart_maxwell(table)
    assert result is not None
    assert result["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert result["pvalue"] == pytest.approx(expected.pvalue, rel=1e-7, abs=1e-12)
    assert result["df"] == expected.df


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_stuart_maxwell_of_two_labels_is_mcnemars_chi_square(a: int, b: int, c: int, d: int) -> None:
    result = stuart_maxwell([[a, b], [c, d]])
    if a + b + c + d == 0:
        assert result is None
    elif b + c == 0:
        assert result == {"statistic": None, "pvalue": 1.0, "df": 0, "n": a + d}
    else:
        assert result is not None
        assert result["statistic"] == pytest.approx((b - c) ** 2 / (b + c), rel=1e-9)


def test_stuart_maxwell_with_a_label_that_never_disagrees() -> None:
    # label 1 only ever pairs with itself; the rest is McNemar on labels 2 and 3: (2 - 4)^2 / 6
    result = stuart_maxwell([[5, 0, 0], [0, 3, 2], [0, 4, 6]])
    assert result is not None
    assert result["statistic"] == pytest.approx(4 / 6, rel=1e-9) and result["df"] == 1
    # two groups of labels that never disagree across: McNemar's chi-squares add, df 2
    split = stuart_maxwell([[0, 3, 0, 0], [1, 0, 0, 0], [0, 0, 0, 2], [0, 0, 2, 0]])
    assert split is not None
    assert split["statistic"] == pytest.approx((3 - 1) ** 2 / 4 + 0, rel=1e-9) and split["df"] == 2


def test_stuart_maxwell_edge_cases() -> None:
    assert stuart_maxwell(np.zeros((3, 3))) is None
    assert stuart_maxwell(np.diag([4, 5, 6])) == {"statistic": None, "pvalue": 1.0, "df": 0, "n": 15}
    with pytest.raises(ValueError, match="square"):
        stuart_maxwell([[1, 2, 3]])


# ---- Cochran's Q ----------------------------------------------------------------------------------


def _cochran_q_formula(x: np.ndarray) -> float:
    """Q = (k - 1) (k sum_j C_j^2 - N^2) / (k N - sum_i R_i^2), C column and R row totals, N the total."""
    k = x.shape[1]
    columns, rows, total = x.sum(axis=0), x.sum(axis=1), x.sum()
    return (k - 1) * (k * (columns**2).sum() - total**2) / (k * total - (rows**2).sum())


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.lists(st.lists(st.integers(0, 1), min_size=k, max_size=k),
                                                    min_size=1, max_size=25)))
def test_cochran_q_is_cochrans_formula(rows: list[list[int]]) -> None:
    x = np.array(rows, dtype=float)
    result = cochran_q(x)
    assert result is not None
    if all(sum(r) in (0, len(r)) for r in rows):
        assert result["statistic"] is None and result["pvalue"] == 1.0
    else:
        assert result["statistic"] == pytest.approx(_cochran_q_formula(x), rel=1e-9)
        assert result["df"] == x.shape[1] - 1


def test_cochran_q_of_two_conditions_is_mcnemars_chi_square() -> None:
    # 6 items right in both, 5 right only in the first, 1 only in the second, 2 in neither
    x = np.array([[1, 1]] * 6 + [[1, 0]] * 5 + [[0, 1]] * 1 + [[0, 0]] * 2)
    assert cochran_q(x)["statistic"] == pytest.approx((5 - 1) ** 2 / (5 + 1), rel=1e-12)  # type: ignore[index]


def test_cochran_q_edge_cases() -> None:
    assert cochran_q(np.zeros((0, 3))) is None
    assert cochran_q(np.ones((4, 1))) is None
    with pytest.raises(ValueError, match="binary"):
        cochran_q([[0, 2]])


# ---- Wilcoxon --------------------------------------------------------------------------------------

DARWIN = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def test_wilcoxon_exact_on_darwins_data() -> None:
    # no ties, no zeros: ranks 1..15 by |d|; the negative differences -48 and -67 have ranks 10 and 14,
    # so T- = 24. Exact two-sided p = 2 P(T <= 24) over the 2^15 equally likely sign patterns.
    ranks = np.arange(1, 16)
    sums = np.array(list(itertools.product([0, 1], repeat=15))) @ ranks  # rank sum of the negative ones
    p_exact = 2 * (sums <= 24).mean()
    result = wilcoxon_paired(DARWIN, [0] * 15)
    assert result is not None
    assert result["statistic"] == 24
    assert result["pvalue"] == pytest.approx(p_exact, rel=1e-12)
    assert round(result["pvalue"], 4) == 0.0413


def test_wilcoxon_pairs_and_edge_cases() -> None:
    result = wilcoxon_paired([1.0, 2.0, None, 4.0, float("nan")], [1.0, 0.0, 3.0, 1.0, 2.0])
    assert result is not None and (result["n"], result["n_nonzero"]) == (3, 2)
    assert wilcoxon_paired([1.0, 2.0], [1.0, 2.0]) == {"statistic": None, "pvalue": 1.0, "n": 2, "n_nonzero": 0}
    assert wilcoxon_paired([None], [1.0]) is None


# ---- Holm ------------------------------------------------------------------------------------------


def _holm(p: list[float]) -> list[float]:
    """Holm (1979): sort ascending; the i-th smallest (from 0) gets max over j <= i of (m - j) p_(j), capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted = [0.0] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def test_holm_small_example_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 * 0.005 = 0.02, 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.04, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)


# statsmodels' Holm branch runs gc.collect() on every call (about 30 ms here): few examples suffice
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=12))
def test_holm_matches_step_down_formula_and_skips_untested(pvalues: list[float | None]) -> None:
    result = holm(pvalues)
    tested = [p for p in pvalues if p is not None]
    expected = iter(_holm(tested))
    assert len(result) == len(pvalues)
    for p, q in zip(pvalues, result, strict=True):
        if p is None:
            assert q is None  # "no test possible" is not a test, and does not count towards m
        else:
            assert q == pytest.approx(next(expected), abs=1e-12)
            assert q >= p


# ---- the verdict's words (evalrun.stats.words) --------------------------------------------------


@pytest.mark.parametrize(("p", "words"), [
    (None, "no test possible"),
    (0.0, "a difference unlikely to be chance"),
    (0.049999, "a difference unlikely to be chance"),
    (SIGNIFICANCE, "no significant difference"),  # "below 0.05": 0.05 itself is not
    (0.2, "no significant difference"),
    (1.0, "no significant difference"),
])
def test_every_verdict(p: float | None, words: str) -> None:
    assert verdict(p) == words


def test_verdicts_follow_the_adjusted_p_values() -> None:
    # raw 0.02 is below 0.05, but among three tests Holm makes it 0.06: no significant difference
    raw = [0.02, 0.03, None, 0.04]
    adjusted = holm(raw)
    assert [verdict(p) for p in adjusted] == ["no significant difference"] * 2 + ["no test possible"] + [
        "no significant difference"]
    # with no gold labels McNemar has no pairs: "no test possible", not "p = 1, no significant difference"
    test = mcnemar_exact(0, 0, 0)
    assert test is None
    assert verdict(holm([None if test is None else test["pvalue"]])[0]) == "no test possible"
