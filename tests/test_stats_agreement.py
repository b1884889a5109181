"""Agreement statistics (evalrun.stats.agreement) against published outputs of other programs,
published worked examples, and formulas written independently in this file.

Sources:
* SAS PROC FREQ output (simple kappa with ASE and 95% limits; weighted kappa with Cicchetti-Allison
  weights) for the table [[0, 4, 1], [0, 8, 0], [0, 1, 5]], as recorded in statsmodels' test suite
  (statsmodels/stats/tests/test_inter_rater.py): an independent implementation.
* R package irr, `kappa2`, on raters 2 and 3 of its `anxiety` data set (unweighted -0.006289308,
  "equal" weights 0.1459075, "squared" weights 0.2520325), as recorded in the same statsmodels tests.
* Wikipedia, "Cohen's kappa", worked example (50 proposals): kappa = 0.4.
* Wikipedia, "Fleiss' kappa", worked example (10 subjects, 14 raters, 5 categories): kappa = 0.210.
* Fleiss, Cohen & Everitt (1969), "Large sample standard errors of kappa and weighted kappa",
  Psychological Bulletin 72(5): the variance of kappa, written out below.
* Wilson (1927): the score interval, written out below.
* Landis & Koch (1977), "The measurement of observer agreement for categorical data", Biometrics
  33(1), p. 165: < 0.00 poor, 0.00-0.20 slight, 0.21-0.40 fair, 0.41-0.60 moderate, 0.61-0.80
  substantial, 0.81-1.00 almost perfect; read with issue 10's corrections (below 0 is less
  agreement than chance, exactly 0 none beyond chance, exactly 1 perfect), for evalrun.stats.words.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalrun.stats.agreement import agreement, percent_agreement, spearman
from evalrun.stats.confusion import confusion
from evalrun.stats.kappa import Z95, cohen_kappa, fleiss_kappa, kappa_estimate, label_counts, weighted_kappa
from evalrun.stats.words import kappa_words

# ---- Cohen's kappa -------------------------------------------------------------------------------

SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]


def test_kappa_matches_sas_proc_freq() -> None:
    # SAS: Kappa 0.4842, ASE 0.1380, 95% limits 0.2137 and 0.7547
    result = cohen_kappa(SAS_TABLE)
    assert result["kappa"] == pytest.approx(0.4842, abs=5e-5)
    assert result["se"] == pytest.approx(0.1380, abs=5e-5)
    assert result["ci_low"] == pytest.approx(0.2137, abs=5e-5)
    assert result["ci_high"] == pytest.approx(0.7547, abs=5e-5)
    assert result["n"] == 19 and not result["degenerate"] and not result["clipped"]


def test_kappa_wikipedia_example() -> None:
    # 50 proposals: both yes 20, A yes B no 5, A no B yes 10, both no 15; po = 0.7, pe = 0.5, kappa = 0.4
    assert cohen_kappa([[20, 5], [10, 15]])["kappa"] == pytest.approx(0.4, abs=1e-12)


def _fce(table: np.ndarray) -> tuple[float, float]:
    """Kappa and its large-sample variance, Fleiss, Cohen & Everitt (1969):
    var = [sum_i p_ii (1 - (p_i. + p_.i)(1 - k))^2 + (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
           - (k - pe (1 - k))^2] / (n (1 - pe)^2)."""
    n = table.sum()
    p = table / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    po, pe = np.trace(p), row @ col
    k = (po - pe) / (1 - pe)
    size = len(table)
    a = sum(p[i, i] * (1 - (row[i] + col[i]) * (1 - k)) ** 2 for i in range(size))
    b = (1 - k) ** 2 * sum(p[i, j] * (col[i] + row[j]) ** 2 for i in range(size) for j in range(size) if i != j)
    return k, (a + b - (k - pe * (1 - k)) ** 2) / (n * (1 - pe) ** 2)


@pytest.mark.parametrize("table", [[[20, 5], [10, 15]], [[10, 2, 3], [4, 12, 1], [1, 2, 15]],
                                   [[40, 3, 1], [9, 2, 6], [0, 4, 25]]])
def test_kappa_interval_is_fleiss_cohen_everitt(table: list[list[int]]) -> None:
    k, var = _fce(np.array(table, dtype=float))
    result = cohen_kappa(table)
    assert result["kappa"] == pytest.approx(k, abs=1e-12)
    assert result["se"] == pytest.approx(math.sqrt(var), rel=1e-9)
    assert result["ci_low"] == pytest.approx(k - 1.959963984540054 * math.sqrt(var), rel=1e-9)
    assert result["ci_high"] == pytest.approx(k + 1.959963984540054 * math.sqrt(var), rel=1e-9)


def test_kappa_interval_is_clipped_to_minus_one_one() -> None:
    # [[4, 1], [0, 4]]: kappa = 32/41 = 0.78 with a wide interval whose upper end passes 1
    table = [[4, 1], [0, 4]]
    k, var = _fce(np.array(table, dtype=float))
    result = cohen_kappa(table)
    assert k + Z95 * math.sqrt(var) > 1
    assert result["ci_high"] == 1.0 and result["clipped"]
    assert result["ci_low"] == pytest.approx(k - Z95 * math.sqrt(var), rel=1e-9)
    low = cohen_kappa([[0, 3], [2, 0]])  # kappa -12/13 with a lower end past -1
    assert low["ci_low"] == -1.0 and low["clipped"]


@pytest.mark.parametrize(("table", "kappa"), [
    ([[11, 12], [0, 0]], 0.0),  # issue 10: one variant gave one label; the report printed [n/a, n/a]
    ([[7, 9], [0, 0]], 0.0),    # issue 10: the same case printed [0.00, 0.00]
    ([[3, 0], [0, 2]], 1.0),    # perfect agreement on 5 items printed [1.00, 1.00]
    ([[0, 3], [3, 0]], -1.0),   # perfect disagreement, symmetric margins
])
def test_zero_variance_gives_kappa_but_no_interval(table: list[list[int]], kappa: float) -> None:
    # the FCE variance is 0 in exact arithmetic for these tables: no asymptotic interval exists
    assert _fce(np.array(table, dtype=float))[1] == pytest.approx(0, abs=1e-12)
    result = cohen_kappa(table)
    assert result["kappa"] == kappa  # exactly, not 1e-17 (which a verbal band would read as "slight")
    assert result["degenerate"]
    assert result["se"] is None and result["ci_low"] is None and result["ci_high"] is None


def test_kappa_undefined() -> None:
    assert cohen_kappa([[7, 0], [0, 0]])["kappa"] is None  # both raters use one label: 0 / 0
    empty = cohen_kappa([[0, 0], [0, 0]])
    assert empty["kappa"] is None and empty["n"] == 0 and empty["ci_low"] is None


tables = st.integers(min_value=2, max_value=4).flatmap(
    lambda k: st.lists(st.lists(st.integers(0, 30), min_size=k, max_size=k), min_size=k, max_size=k))


@settings(max_examples=200, deadline=None)
@given(tables)
def test_kappa_estimate_is_po_minus_pe_over_one_minus_pe(table: list[list[int]]) -> None:
    t = np.array(table, dtype=float)
    n = t.sum()
    result = kappa_estimate(table)
    if n == 0 or (t.sum(axis=1) @ t.sum(axis=0)) == n * n:
        assert result is None
    else:
        po, pe = np.trace(t) / n, (t.sum(axis=1) @ t.sum(axis=0)) / n**2
        assert result == pytest.approx((po - pe) / (1 - pe), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3), st.lists(st.integers(0, 20), min_size=4, max_size=4))
def test_one_rater_with_one_label_gives_kappa_exactly_zero(row: int, counts: list[int]) -> None:
    table = np.zeros((4, 4), dtype=int)
    table[row] = counts
    if sum(c > 0 for c in counts) >= 2:  # the other rater uses two labels or more, so pe < 1
        assert cohen_kappa(table)["kappa"] == 0.0
        assert cohen_kappa(table.T)["kappa"] == 0.0


# ---- weighted kappa --------------------------------------------------------------------------------


def test_linear_weighted_kappa_matches_sas() -> None:
    # SAS, Cicchetti-Allison weights: Weighted Kappa 0.4701, ASE 0.1457, 95% limits 0.1845 and 0.7558
    result = weighted_kappa(SAS_TABLE, "linear")
    assert result["kappa"] == pytest.approx(0.4701, abs=5e-5)
    assert result["se"] == pytest.approx(0.1457, abs=5e-5)
    assert result["ci_low"] == pytest.approx(0.1845, abs=5e-5)
    assert result["ci_high"] == pytest.approx(0.7558, abs=5e-5)


# R irr's anxiety data: 20 subjects rated 1-6 by three raters; kappa2 on raters 2 and 3
ANXIETY_2 = [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4]
ANXIETY_3 = [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]
# irr orders the levels present (1, 2, 3, 4, 6; nobody used 5) and weights by their positions
ANXIETY_LEVELS = ["1", "2", "3", "4", "6"]


def _anxiety_table() -> np.ndarray:
    return confusion([str(v) for v in ANXIETY_2], [str(v) for v in ANXIETY_3], ANXIETY_LEVELS)[:5, :5]


def test_weighted_kappa_matches_r_irr() -> None:
    table = _anxiety_table()
    assert cohen_kappa(table)["kappa"] == pytest.approx(-0.006289308, abs=1e-9)
    assert weighted_kappa(table, "linear")["kappa"] == pytest.approx(0.1459075, abs=1e-7)
    assert weighted_kappa(table, "quadratic")["kappa"] == pytest.approx(0.2520325, abs=1e-7)


@settings(max_examples=100, deadline=None)
@given(tables)
def test_weighted_kappa_is_one_minus_weighted_disagreement_ratio(table: list[list[int]]) -> None:
    # Cohen (1968): kappa_w = 1 - sum w_ij p_ij / sum w_ij p_i. p_.j, with w_ij = (i - j)^2
    t = np.array(table, dtype=float)
    i, j = np.indices(t.shape)
    w = (i - j) ** 2.0
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / max(t.sum(), 1)
    result = weighted_kappa(table)["kappa"]
    if t.sum() == 0 or (w * expected).sum() == 0:
        assert result is None
    else:
        assert result == pytest.approx(1 - (w * t).sum() / (w * expected).sum(), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=4, max_size=4))
def test_weighted_kappa_of_two_categories_is_cohens(cells: list[int]) -> None:
    table = np.array(cells).reshape(2, 2)
    assert weighted_kappa(table)["kappa"] == pytest.approx(cohen_kappa(table)["kappa"], abs=1e-12)


def test_weighted_kappa_exact_zero_and_undefined() -> None:
    assert weighted_kappa([[3, 4, 5], [0, 0, 0], [0, 0, 0]])["kappa"] == 0.0
    assert weighted_kappa([[0, 0], [0, 6]])["kappa"] is None
    assert weighted_kappa(np.zeros((3, 3), dtype=int))["kappa"] is None
    perfect = weighted_kappa([[2, 0, 0], [0, 3, 0], [0, 0, 1]])
    assert perfect["kappa"] == 1.0 and perfect["degenerate"] and perfect["ci_low"] is None


# ---- Fleiss' kappa ------------------------------------------------------------------------------

WIKIPEDIA_FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_kappa_wikipedia_example() -> None:
    # P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210
    result = fleiss_kappa(WIKIPEDIA_FLEISS)
    assert result is not None and round(result, 3) == 0.210


def test_fleiss_kappa_by_formula() -> None:
    # Fleiss (1971): P_i = (sum_j n_ij^2 - m) / (m (m - 1)), P-bar their mean, P_e = sum_j p_j^2
    t = np.array(WIKIPEDIA_FLEISS, dtype=float)
    m = t.sum(axis=1)[0]
    p_bar = ((t**2).sum(axis=1) - m).mean() / (m * (m - 1))
    p_e = ((t.sum(axis=0) / t.sum()) ** 2).sum()
    assert fleiss_kappa(t) == pytest.approx((p_bar - p_e) / (1 - p_e), abs=1e-12)


def test_fleiss_kappa_edge_cases() -> None:
    assert fleiss_kappa(np.zeros((0, 3))) is None
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # every rating the same category
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 0], [0, 1]])  # one rating per subject: no pairs of ratings


def test_label_counts() -> None:
    counts = label_counts([["a", "a", "b"], ["c", "b", "b"]], ["a", "b", "c"])
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 2, 1]])


# ---- percent agreement, confusion, Spearman -----------------------------------------------------


def _wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    z, p = 1.959963984540054, x / n
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (p + z * z / (2 * n) - half) / (1 + z * z / n), (p + z * z / (2 * n) + half) / (1 + z * z / n)


def test_percent_agreement_over_items_both_labelled() -> None:
    a = ["x", "y", None, "x", "y", "x"]
    b = ["x", "x", "x", None, "y", "x"]
    result = percent_agreement(a, b)
    assert (result["count"], result["n"]) == (3, 4)  # items 1, 2, 5, 6 labelled by both; 1, 5, 6 agree
    low, high = _wilson(3, 4)
    assert result["ci_low"] == pytest.approx(low, abs=1e-12) and result["ci_high"] == pytest.approx(high, abs=1e-12)
    assert percent_agreement([None], ["x"])["estimate"] is None


def test_confusion_counts_unparsed_as_the_last_category() -> None:
    table = confusion(["x", "y", None, "x", None], ["y", "y", "x", None, None], ["x", "y"])
    np.testing.assert_array_equal(table, [[0, 1, 1],
                                          [0, 1, 0],
                                          [1, 0, 1]])
    with pytest.raises(ValueError, match="'z' is not one of"):
        confusion(["z"], ["x"], ["x", "y"])
    with pytest.raises(ValueError, match="different lengths"):
        confusion(["x"], [], ["x"])


def test_spearman_without_ties_is_one_minus_six_sum_d2() -> None:
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)) for untied ranks (Spearman 1904)
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None]
    y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 1.0]
    result = spearman(x, y)
    assert result["n"] == 6
    assert result["rho"] == pytest.approx(1 - 6 * 6 / (6 * 35), abs=1e-12)


def test_spearman_undefined() -> None:
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["rho"] is None  # constant side
    assert spearman([1.0, 2.0], [2.0, 1.0])["rho"] is None  # fewer than three pairs
    assert spearman([1.0, float("nan"), 3.0, 4.0], [1.0, 2.0, 2.0, 5.0])["n"] == 3


# ---- the entry point ----------------------------------------------------------------------------


def test_agreement_small_example_by_hand() -> None:
    a = ["x", "y", None, "y", "x"]
    b = ["y", "x", "x", "y", "y"]
    result = agreement(a, b, ["x", "y"])
    assert (result["n"], result["n_both"]) == (5, 4)
    assert (result["percent"]["count"], result["percent"]["n"]) == (1, 4)
    # labelled table [[0, 2], [1, 1]]: po = 1/4, pe = (2*1 + 2*3) / 16 = 1/2, kappa = -1/2
    assert result["kappa"]["kappa"] == pytest.approx(-0.5, abs=1e-12)
    # alpha: item 3 has one value; 8 pairable values, n_x = 3, n_y = 5, 3 disagreeing items:
    # alpha = 1 - (8 - 1) * 3 / (3 * 5) = -0.4
    assert result["alpha"] == pytest.approx(-0.4, abs=1e-12) and result["alpha_level"] == "nominal"
    assert result["confusion"] == {"categories": ["x", "y", None], "counts": [[0, 2, 0], [1, 1, 0], [1, 0, 0]]}
    assert "weighted_kappa" not in result


def test_agreement_ordinal_adds_scale_statistics() -> None:
    a = [str(v) for v in ANXIETY_2]
    b = [str(v) for v in ANXIETY_3]
    result = agreement(a, b, ANXIETY_LEVELS, ordinal=True)
    assert result["alpha_level"] == "ordinal"
    assert result["weighted_kappa"]["kappa"] == pytest.approx(0.2520325, abs=1e-7)  # R irr, as above
    ranks = {label: i for i, label in enumerate(ANXIETY_LEVELS)}
    assert result["spearman"]["rho"] == pytest.approx(
        spearman([ranks[x] for x in a], [ranks[y] for y in b])["rho"], abs=1e-12)


def _close(x: dict[str, object], y: dict[str, object]) -> bool:
    """Same keys, equal values, floats equal up to rounding (the order of summation may differ)."""
    return x.keys() == y.keys() and all(
        x[k] == pytest.approx(y[k], abs=1e-12) if isinstance(x[k], float) else x[k] == y[k] for k in x)


labels_strategy = st.lists(st.sampled_from(["p", "q", "r", None]), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(labels_strategy)
def test_a_variant_agrees_with_itself_perfectly(a: list[str | None]) -> None:
    result = agreement(a, a, ["p", "q", "r"])
    labelled = [x for x in a if x is not None]
    if labelled:
        assert result["percent"]["estimate"] == 1.0
    if len(set(labelled)) >= 2:
        assert result["kappa"]["kappa"] == 1.0
        assert result["alpha"] == pytest.approx(1.0)
    else:
        assert result["kappa"]["kappa"] is None and result["alpha"] is None  # one label: undefined


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_swapping_the_two_vectors_changes_nothing_but_the_confusion_orientation(data: st.DataObject) -> None:
    a = data.draw(labels_strategy)
    b = data.draw(st.lists(st.sampled_from(["p", "q", "r", None]), min_size=len(a), max_size=len(a)))
    ab, ba = agreement(a, b, ["p", "q", "r"]), agreement(b, a, ["p", "q", "r"])
    assert ab["kappa"]["kappa"] == ba["kappa"]["kappa"]  # exactly: kappa is computed in integers
    assert _close(ab["kappa"], ba["kappa"])
    assert ab["percent"] == ba["percent"]
    assert _close({"alpha": ab["alpha"]}, {"alpha": ba["alpha"]})
    np.testing.assert_array_equal(np.array(ab["confusion"]["counts"]).T, ba["confusion"]["counts"])


@settings(max_examples=150, deadline=None)
@given(st.data(), st.permutations(["p", "q", "r"]))
def test_renaming_the_labels_changes_no_nominal_statistic(data: st.DataObject, renamed: list[str]) -> None:
    a = data.draw(labels_strategy)
    b = data.draw(st.lists(st.sampled_from(["p", "q", "r", None]), min_size=len(a), max_size=len(a)))
    rename = dict(zip(["p", "q", "r"], renamed, strict=True))
    before = agreement(a, b, ["p", "q", "r"])
    after = agreement([None if x is None else rename[x] for x in a], [None if y is None else rename[y] for y in b],
                      ["p", "q", "r"])
    assert after["percent"] == before["percent"]
    assert _close(after["kappa"], before["kappa"])
    assert _close({"alpha": after["alpha"]}, {"alpha": before["alpha"]})


# ---- the words for a kappa (evalrun.stats.words) ------------------------------------------------


@pytest.mark.parametrize(("kappa", "words"), [
    (-1.0, "less agreement than chance"),
    (-0.5, "less agreement than chance"),
    (-1e-12, "less agreement than chance"),
    (0.0, "no agreement beyond chance"),
    (1e-12, "slight agreement beyond chance"),
    (0.1, "slight agreement beyond chance"),
    (0.2, "slight agreement beyond chance"),
    (0.2000001, "fair agreement beyond chance"),
    (0.4, "fair agreement beyond chance"),
    (0.41, "moderate agreement beyond chance"),
    (0.6, "moderate agreement beyond chance"),
    (0.61, "substantial agreement beyond chance"),
    (0.8, "substantial agreement beyond chance"),
    (0.81, "almost perfect agreement beyond chance"),
    (0.999, "almost perfect agreement beyond chance"),
    (1.0, "perfect agreement"),
])
def test_every_kappa_band(kappa: float, words: str) -> None:
    assert kappa_words(kappa) == words


def test_undefined_kappa_is_named_undefined() -> None:
    assert kappa_words(None).startswith("undefined")


def test_issue_10_tables_read_right() -> None:
    # one variant gave one label: kappa is exactly 0, "no agreement beyond chance", never "slight"
    assert kappa_words(cohen_kappa([[11, 12], [0, 0]])["kappa"]) == "no agreement beyond chance"
    assert kappa_words(cohen_kappa([[7, 9], [0, 0]])["kappa"]) == "no agreement beyond chance"
    # labelled table [[0, 2], [1, 1]]: kappa -1/2, less than chance (Landis & Koch's "poor" hid that)
    assert kappa_words(cohen_kappa([[0, 2], [1, 1]])["kappa"]) == "less agreement than chance"
