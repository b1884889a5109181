"""Each statistic exists once: a report's pairs, the readers' agreement and the agreement of two
label vectors read the same kappa, confusion and McNemar test, with one set of edge rules.

Until release 0.2 the summary computed kappa and McNemar's test itself, with other edge rules than
`stats.agreement` and `stats.paired`; the cases where the two copies disagreed are tested here
against independent computations (fractions, binomial sums written in the test, statsmodels).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

from evalrun.stats.agreement import agreement
from evalrun.stats.inference import ordinal
from evalrun.stats.summary import summarize

Vector = list[str | None]


def _frame(a: Vector, b: Vector, gold: Vector | None = None) -> pl.DataFrame:
    """One model, variants a and b, one sample per item, aligned by item."""
    rows = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for variant, label in (("a", x), ("b", y)):
            rows.append({"model": "m", "variant": variant, "item_id": f"i{i:03d}", "sample": 0, "label": label,
                         "gold": None if gold is None else gold[i], "error_class": None})
    schema = {"model": pl.String, "variant": pl.String, "item_id": pl.String, "sample": pl.Int64,
              "label": pl.String, "gold": pl.String, "error_class": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _pair(a: Vector, b: Vector, labels: list[str], gold: Vector | None = None) -> dict:
    stats = summarize(_frame(a, b, gold), labels, [("a", "b")], ["a", "b"], has_gold=gold is not None)
    return stats["pairs"][0]  # type: ignore[index,no-any-return]


def _vectors(table: list[list[int]], labels: list[str]) -> tuple[Vector, Vector]:
    """Label vectors whose confusion table (rows a, columns b) is `table`."""
    a: Vector = []
    b: Vector = []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [labels[i]] * count
            b += [labels[j]] * count
    return a, b


def _exact_kappa(table: list[list[int]]) -> Fraction:
    n = sum(map(sum, table))
    po = Fraction(sum(table[i][i] for i in range(len(table))), n)
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    pe = Fraction(sum(r * c for r, c in zip(rows, cols, strict=True)), n * n)
    return (po - pe) / (1 - pe)


# ---- Cohen's kappa: one rule for the summary and for agreement() ------------------------------------


@pytest.mark.parametrize("table", [[[0, 1], [1, 1]], [[0, 1], [1, 3]], [[0, 1], [2, 0]], [[20, 5], [10, 15]],
                                   [[3, 5, 5], [6, 7, 8], [4, 7, 3]]])  # the last: the legacy fixture's pair
def test_a_pairs_kappa_is_the_correctly_rounded_ratio(table: list[list[int]]) -> None:
    # the summary used statsmodels' floating-point kappa, which can be off in the last digit
    # (-0.5000000000000001 for the first table); kappa is a ratio of integers, rounded once
    labels = ["x", "y", "z"][: len(table)]
    pair = _pair(*_vectors(table, labels), labels)
    assert pair["cohen_kappa"]["kappa"] == float(_exact_kappa(table))
    assert pair["bootstrap"]["cohen_kappa"]["estimate"] == pair["cohen_kappa"]["kappa"]  # the bootstrap's own kappa


@pytest.mark.parametrize("table", [[[3, 2], [0, 0]], [[0, 2], [0, 3]], [[3, 0], [2, 0]], [[0, 0], [2, 3]]])
def test_one_variant_with_one_label_has_kappa_zero_and_no_interval(table: list[list[int]]) -> None:
    # the summary's copy gave these tables (variance 0, left as 7e-17 by floating point) an
    # interval of width 3e-8 around 0, which reads as certainty; now: no interval, no se
    kappa = _pair(*_vectors(table, ["x", "y"]), ["x", "y"])["cohen_kappa"]
    assert kappa["kappa"] == 0.0
    assert kappa["degenerate"] is True
    assert (kappa["se"], kappa["ci_low"], kappa["ci_high"]) == (None, None, None)


@pytest.mark.parametrize("table", [[[2, 0], [0, 2]], [[0, 2], [2, 0]], [[3, 0], [0, 1]]])
def test_perfect_agreement_or_disagreement_has_no_standard_error(table: list[list[int]]) -> None:
    # the summary reported se = 0.0 here beside no interval; a standard error of 0 claims what the
    # missing interval denies, so se is None as in agreement()
    labels = ["x", "y"]
    kappa = _pair(*_vectors(table, labels), labels)["cohen_kappa"]
    assert kappa["degenerate"] is True and kappa["se"] is None


@pytest.mark.parametrize(("a", "b"), [
    (["x", "x", "y", None, "y", "x"], ["x", "y", "y", "y", None, "x"]),
    (["x"] * 5 + ["y"] * 3, ["x"] * 8),
    (["x", "y", "x", "y"], ["y", "x", "y", "x"]),
    (["x"] * 4, ["x"] * 4),
    ([None, None], ["x", None]),
])
def test_the_summary_reports_the_kappa_alpha_and_confusion_of_agreement(a: Vector, b: Vector) -> None:
    pair, found = _pair(a, b, ["x", "y"]), agreement(a, b, ["x", "y"])
    assert pair["cohen_kappa"] == found["kappa"]
    assert pair["krippendorff_alpha"] == found["alpha"]
    assert pair["agreement"] == found["percent"]
    assert pair["confusion"]["counts"] == found["confusion"]["counts"]
    assert pair["confusion"]["categories"] == ["x", "y", "unparsed"]  # the summary names the None category


def test_kappa_and_its_interval_match_statsmodels() -> None:
    rng = np.random.default_rng(7)
    for _ in range(25):
        table = rng.integers(1, 30, size=(3, 3))
        a, b = _vectors(table.tolist(), ["x", "y", "z"])
        kappa = agreement(a, b, ["x", "y", "z"])["kappa"]
        expected = sm_cohens_kappa(table, return_results=True)
        assert kappa["kappa"] == pytest.approx(expected.kappa, rel=1e-12)
        assert kappa["se"] == pytest.approx(expected.std_kappa, rel=1e-12)
        assert kappa["ci_low"] == pytest.approx(max(-1.0, expected.kappa_low), rel=1e-12)
        assert kappa["ci_high"] == pytest.approx(min(1.0, expected.kappa_upp), rel=1e-12)


# ---- McNemar's exact test: one test for correctness, labels and conditions -------------------------


def _two_sided_binomial(b: int, c: int) -> float:
    """McNemar's exact p: twice the binomial tail of min(b, c) in b + c trials at 1/2, at most 1."""
    n = b + c
    tail = sum(Fraction(math.comb(n, k), 2**n) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), 2 * tail))


def _correctness(both: int, a_only: int, b_only: int, neither: int) -> dict:
    a = ["x"] * both + ["x"] * a_only + ["y"] * b_only + ["y"] * neither
    b = ["x"] * both + ["y"] * a_only + ["x"] * b_only + ["y"] * neither
    return _pair(a, b, ["x", "y"], gold=["x"] * len(a))["mcnemar"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("a_only", "b_only"), [(17, 18), (18, 17), (34, 35), (3, 4), (0, 1)])
def test_mcnemar_is_exactly_one_when_the_discordant_counts_differ_by_one(a_only: int, b_only: int) -> None:
    # statsmodels' 2 * cdf gave 0.9999999999999998 for 17 vs 18; the tails then cover every outcome
    assert _correctness(6, a_only, b_only, 2)["pvalue"] == 1.0


@pytest.mark.parametrize(("a_only", "b_only"), [(150, 86), (5, 1), (0, 9), (12, 3)])
def test_mcnemar_matches_the_binomial_sum(a_only: int, b_only: int) -> None:
    # (150, 86) are the discordant cells of Agresti's presidential approval table (794, 150, 86, 570)
    test = _correctness(20, a_only, b_only, 4)
    assert test["table"] == [[20, a_only], [b_only, 4]]
    assert test["statistic"] == min(a_only, b_only)
    assert test["pvalue"] == pytest.approx(_two_sided_binomial(a_only, b_only), rel=1e-12)


def test_mcnemar_edge_rules() -> None:
    none_discordant = _correctness(4, 0, 0, 3)
    assert (none_discordant["statistic"], none_discordant["pvalue"]) == (None, 1.0)
    no_gold = _pair(["x", "y"], ["y", "x"], ["x", "y"], gold=[None, None])["mcnemar"]
    assert (no_gold["statistic"], no_gold["pvalue"], no_gold["table"]) == (None, None, [[0, 0], [0, 0]])


def test_the_label_test_and_the_correctness_test_are_one_test() -> None:
    # with gold "x" everywhere, "a correct" is "a says x": both tests read the same discordant pairs
    a = ["x"] * 6 + ["x"] * 9 + ["y"] * 2 + ["y"] * 3
    b = ["x"] * 6 + ["y"] * 9 + ["x"] * 2 + ["y"] * 3
    pair = _pair(a, b, ["x", "y"], gold=["x"] * len(a))
    assert pair["mcnemar"]["pvalue"] == pair["label_rates_differ"]["pvalue"] == _two_sided_binomial(9, 2)


# ---- ordinal statistics ------------------------------------------------------------------------------


def test_ordinal_statistics_match_statsmodels_and_scipy() -> None:
    labels = ["low", "mid", "high"]
    a: Vector = ["low", "mid", "high", "mid", None, "high", "low", "mid", "high", "low"]
    b: Vector = ["low", "high", "high", "low", "mid", "mid", "mid", "mid", None, "low"]
    found = ordinal(a, b, labels)
    both = [(labels.index(x), labels.index(y)) for x, y in zip(a, b, strict=True) if x and y]
    table = np.zeros((3, 3), dtype=int)
    for i, j in both:
        table[i, j] += 1
    assert found["weighted_kappa"]["kappa"] == pytest.approx(sm_cohens_kappa(table, wt="quadratic").kappa, rel=1e-12)
    rho = spearmanr([i for i, _ in both], [j for _, j in both])
    assert found["spearman"]["rho"] == pytest.approx(rho.statistic, rel=1e-12)
