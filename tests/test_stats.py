"""Statistics against published worked examples, hand-computed tables and independent formulas.

No expected value here comes from running evalrun itself: each is a published figure, an
exact fraction worked out in the test, or a formula implemented independently below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from scipy.stats import binomtest

from evalrun.stats.alpha import label_alpha
from evalrun.stats.kappa import cohen_kappa
from evalrun.stats.proportion import wilson
from evalrun.stats.summary import item_labels, summarize

Z975 = 1.959963984540054  # the standard normal 97.5% quantile

# ---- Cohen's kappa --------------------------------------------------------------------------------


def test_kappa_published_2x2_example() -> None:
    # The textbook example (e.g. Wikipedia, "Cohen's kappa"): 50 proposals read by A (rows) and B
    # (columns): both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    # po = 35/50 = 0.7; A says yes 25/50, B says yes 30/50; pe = 0.5*0.6 + 0.5*0.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    table = np.array([[20, 5], [10, 15]])
    result = cohen_kappa(table)
    assert result["kappa"] == pytest.approx(0.4, abs=1e-12)
    assert result["ci_low"] is not None and result["ci_high"] is not None
    assert result["ci_low"] < 0.4 < result["ci_high"]


def test_kappa_3x3_by_hand() -> None:
    table = [[10, 2, 3],
             [4, 12, 1],
             [1, 2, 15]]
    n = 50
    # observed agreement: the diagonal
    po = Fraction(10 + 12 + 15, n)  # 37/50
    # row sums 15, 17, 18; column sums 15, 16, 19
    pe = Fraction(15 * 15 + 17 * 16 + 18 * 19, n * n)  # (225 + 272 + 342) / 2500 = 839/2500
    expected = (po - pe) / (1 - pe)
    assert expected == Fraction(1011, 1661)
    assert cohen_kappa(np.array(table))["kappa"] == pytest.approx(float(expected), abs=1e-12)


def test_kappa_undefined_for_one_category_and_empty_table() -> None:
    assert cohen_kappa(np.array([[7, 0], [0, 0]]))["kappa"] is None  # pe = 1: kappa is 0/0
    empty = cohen_kappa(np.zeros((2, 2), dtype=int))
    assert (empty["kappa"], empty["se"], empty["ci_low"], empty["ci_high"], empty["n"]) == (None, None, None, None, 0)


def test_kappa_disjoint_raters_is_zero_not_undefined() -> None:
    # A always says yes, B always no: po = 0 and pe = 25*0 + 0*25 = 0, so kappa = 0 exactly.
    assert cohen_kappa(np.array([[0, 25], [0, 0]]))["kappa"] == pytest.approx(0.0, abs=1e-12)


def _fce_variance(table: Sequence[Sequence[int]]) -> tuple[float, float]:
    """Cohen's kappa and its large-sample variance by Fleiss, Cohen & Everitt (1969), eq. (13):

    var = [ sum_i p_ii (1 - (p_i. + p_.i)(1 - k))^2
            + (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
            - (k - pe (1 - k))^2 ] / (n (1 - pe)^2)

    with p_i. row and p_.j column proportions. Written from the paper, with plain loops.
    """
    k = len(table)
    n = sum(sum(row) for row in table)
    p = [[table[i][j] / n for j in range(k)] for i in range(k)]
    row = [sum(p[i][j] for j in range(k)) for i in range(k)]
    col = [sum(p[i][j] for i in range(k)) for j in range(k)]
    po = sum(p[i][i] for i in range(k))
    pe = sum(row[i] * col[i] for i in range(k))
    kap = (po - pe) / (1 - pe)
    a = sum(p[i][i] * (1 - (row[i] + col[i]) * (1 - kap)) ** 2 for i in range(k))
    b = (1 - kap) ** 2 * sum(p[i][j] * (col[i] + row[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    c = (kap - pe * (1 - kap)) ** 2
    return kap, (a + b - c) / (n * (1 - pe) ** 2)


@pytest.mark.parametrize(
    "table",
    [
        [[20, 5], [10, 15]],
        [[10, 2, 3], [4, 12, 1], [1, 2, 15]],
        [[40, 3, 1], [9, 2, 6], [0, 4, 25]],  # asymmetric marginals, so a transposed formula would differ
    ],
)
def test_kappa_standard_error_is_fleiss_cohen_everitt(table: list[list[int]]) -> None:
    # statsmodels' cohens_kappa (which evalrun uses) reports the "ASE" of SAS PROC FREQ, whose
    # documented variance of simple kappa is that of Fleiss, Cohen & Everitt (1969).
    kap, var = _fce_variance(table)
    result = cohen_kappa(np.array(table))
    se = math.sqrt(var)
    assert result["kappa"] == pytest.approx(kap, abs=1e-12)
    assert result["se"] == pytest.approx(se, rel=1e-9)
    assert result["ci_low"] == pytest.approx(kap - Z975 * se, rel=1e-9)
    assert result["ci_high"] == pytest.approx(kap + Z975 * se, rel=1e-9)


# ---- Krippendorff's alpha -------------------------------------------------------------------------


def _alpha_by_coincidences(coders: Sequence[Sequence[str | None]]) -> float:
    """Nominal alpha from the coincidence matrix (Krippendorff 2011, section C), written independently."""
    units = list(zip(*coders, strict=True))
    values = sorted({v for unit in units for v in unit if v is not None})
    o = {(c, k): 0.0 for c in values for k in values}
    for unit in units:
        present = [v for v in unit if v is not None]
        m = len(present)
        if m < 2:
            continue  # a unit with one value is not pairable
        for i, c in enumerate(present):
            for j, k in enumerate(present):
                if i != j:
                    o[c, k] += 1 / (m - 1)
    n_c = {c: sum(o[c, k] for k in values) for c in values}
    n = sum(n_c.values())
    observed = sum(o[c, k] for c in values for k in values if c != k)
    expected = sum(n_c[c] * n_c[k] for c in values for k in values if c != k) / (n - 1)
    return 1 - observed / expected


def _coder(digits: str) -> list[str | None]:
    return [None if d == "." else d for d in digits]


def test_alpha_published_two_coder_binary_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section A: alpha = 0.095.
    # By hand: 20 values, n_0 = 14, n_1 = 6, four disagreeing units -> o_01 = 4;
    # alpha = 1 - (n - 1) o_01 / (n_0 n_1) = 1 - 19 * 4 / 84 = 8/84.
    a = _coder("0100000010")
    b = _coder("1110010000")
    result = label_alpha([a, b], ["0", "1"])
    assert result is not None
    assert round(result, 3) == 0.095
    assert result == pytest.approx(8 / 84, abs=1e-12)
    assert _alpha_by_coincidences([a, b]) == pytest.approx(8 / 84, abs=1e-12)


def test_alpha_published_four_coder_nominal_example_with_missing_data() -> None:
    # Krippendorff (2011), section C: 4 observers, 12 units, missing values; nominal alpha = 0.743.
    #   unit  1 2 3 4 5 6 7 8 9 10 11 12
    #   A     1 2 3 3 2 1 4 1 2 .  .  .
    #   B     1 2 3 3 2 2 4 1 2 5  .  3
    #   C     . 3 3 3 2 3 4 2 2 5  1  .
    #   D     1 2 3 3 2 4 4 1 2 5  1  .
    coders = [
        [*_coder("123321412"), None, None, None],
        [*_coder("123322412"), "5", None, "3"],
        [None, *_coder("33323422"), "5", "1", None],
        [*_coder("123324412"), "5", "1", None],
    ]
    labels = ["1", "2", "3", "4", "5"]
    result = label_alpha(coders, labels)
    assert result is not None
    assert round(result, 3) == 0.743
    assert result == pytest.approx(_alpha_by_coincidences(coders), abs=1e-12)


def test_alpha_undefined_without_variation_or_pairs() -> None:
    assert label_alpha([["a", "a", "a"], ["a", "a", "a"]], ["a", "b"]) is None  # one value only
    assert label_alpha([["a", None, "b"], [None, "b", None]], ["a", "b"]) is None  # no pairable unit


def test_alpha_perfect_agreement_is_one() -> None:
    assert label_alpha([["a", "b", "a", None], ["a", "b", "a", "b"]], ["a", "b"]) == pytest.approx(1.0)


# ---- Wilson intervals -----------------------------------------------------------------------------


def _wilson_closed_form(x: int, n: int, z: float = Z975) -> tuple[float, float]:
    """Wilson (1927) score interval: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = x / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
    ],
)
def test_wilson_matches_newcombe_table(x: int, n: int, low: float, high: float) -> None:
    result = wilson(x, n)
    assert result["count"] == x and result["n"] == n
    assert result["estimate"] == pytest.approx(x / n)
    assert round(float(result["ci_low"]), 4) == pytest.approx(low, abs=1e-9)  # type: ignore[arg-type]
    assert round(float(result["ci_high"]), 4) == pytest.approx(high, abs=1e-9)  # type: ignore[arg-type]


@pytest.mark.parametrize(("x", "n"), [(0, 1), (1, 1), (3, 7), (50, 100), (99, 100), (1, 1000), (7, 9)])
def test_wilson_matches_closed_form(x: int, n: int) -> None:
    low, high = _wilson_closed_form(x, n)
    result = wilson(x, n)
    assert result["ci_low"] == pytest.approx(low, abs=1e-12)
    assert result["ci_high"] == pytest.approx(high, abs=1e-12)


def test_wilson_without_observations_is_undefined() -> None:
    assert wilson(0, 0) == {"count": 0, "n": 0, "estimate": None, "ci_low": None, "ci_high": None}


# ---- item labels ----------------------------------------------------------------------------------


MODAL_CASES: list[tuple[list[str | None], str | None]] = [
    (["a"], "a"),
    (["a", "a", "b"], "a"),
    (["b", "a", "b"], "b"),
    (["a", "b"], None),  # a tie for the mode
    (["a", "a", "b", "b", "c"], None),  # a tie between the top two, a third label below
    (["a", "b", "c", "c"], "c"),
    (["a", None, None], "a"),  # unlabelled samples do not vote
    (["a", "b", None, None, None], None),
    ([None, None], None),
]


def test_item_label_is_the_untied_mode_of_labelled_samples() -> None:
    # every case is one item of one frame, on two models, so the grouping is tested along with the rule
    rows = [(model, "v", f"i{k}", s, label, None, None)
            for model in ("m1", "m2") for k, (labels, _) in enumerate(MODAL_CASES) for s, label in enumerate(labels)]
    items = item_labels(_frame(rows))
    expected = [(model, f"i{k}", label) for model in ("m1", "m2") for k, (_, label) in enumerate(MODAL_CASES)]
    assert items.select("model", "item_id", "label").rows() == expected


# ---- summarize ------------------------------------------------------------------------------------

RESPONSE_SCHEMA = {"model": pl.String, "variant": pl.String, "item_id": pl.String, "sample": pl.Int64,
                   "label": pl.String, "gold": pl.String, "error_class": pl.String}


def _frame(rows: list[tuple[str, str, str, int, str | None, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RESPONSE_SCHEMA, orient="row")


def _small_frame() -> pl.DataFrame:
    gold = {"i1": "x", "i2": "y", "i3": "x", "i4": "y", "i5": None}
    # (item, variant) -> the two samples' labels; "ERR" is a failed job (no answer at all)
    samples = {
        ("i1", "v1"): ["x", "x"], ("i2", "v1"): ["y", None], ("i3", "v1"): ["x", "y"],
        ("i4", "v1"): ["y", "ERR"], ("i5", "v1"): ["x", "x"],
        ("i1", "v2"): ["y", "y"], ("i2", "v2"): ["x", "x"], ("i3", "v2"): ["x", "x"],
        ("i4", "v2"): ["y", "y"], ("i5", "v2"): ["y", "y"],
    }
    rows = []
    for (item, variant), labels in samples.items():
        for s, label in enumerate(labels):
            if label == "ERR":
                rows.append(("m", variant, item, s, None, gold[item], "Timeout"))
            else:
                rows.append(("m", variant, item, s, label, gold[item], None))
    return _frame(rows)


def test_summarize_small_frame_by_hand() -> None:
    stats = summarize(_small_frame(), ["x", "y"], [("v1", "v2")], ["v1", "v2"], has_gold=True)
    variants = {v["variant"]: v for v in stats["variants"]}  # type: ignore[union-attr]
    v1, v2 = variants["v1"], variants["v2"]

    # v1 answered 9 of 10 (one error); labels x: i1 x2, i3, i5 x2 = 5; y: i2, i3, i4 = 3; unparsed: i2 = 1.
    # The error is not an unparsed answer: it is left out of the distribution.
    assert v1["responses"] == 10 and v1["errors"] == 1
    assert v1["labels"] == {"x": 5, "y": 3, "unparsed": 1}
    assert v1["unparsed_rate"]["count"] == 1 and v1["unparsed_rate"]["n"] == 9
    assert v2["labels"] == {"x": 4, "y": 6, "unparsed": 0}
    assert v2["errors"] == 0

    # item labels: v1 = x, y, (tie x/y -> unparsed), y, x; v2 = y, x, x, y, y
    assert v1["items"] == 5 and v1["items_unparsed"] == 1
    assert v2["items_unparsed"] == 0
    # accuracy over the 4 gold items, unparsed counted wrong: v1 right on i1, i2, i4 (i3 unparsed) -> 3/4;
    # v2 right on i3, i4 -> 2/4
    assert (v1["accuracy"]["count"], v1["accuracy"]["n"]) == (3, 4)
    assert (v2["accuracy"]["count"], v2["accuracy"]["n"]) == (2, 4)
    low, high = _wilson_closed_form(3, 4)
    assert v1["accuracy"]["ci_low"] == pytest.approx(low) and v1["accuracy"]["ci_high"] == pytest.approx(high)

    (pair,) = stats["pairs"]  # type: ignore[misc]
    assert (pair["a"], pair["b"], pair["items"], pair["both_labelled"]) == ("v1", "v2", 5, 4)
    # pairs (v1, v2): i1 (x, y), i2 (y, x), i3 (unparsed, x), i4 (y, y), i5 (x, y)
    assert pair["confusion"] == {
        "rows": "v1", "cols": "v2", "categories": ["x", "y", "unparsed"],
        "counts": [[0, 2, 0],
                   [1, 1, 0],
                   [1, 0, 0]],
    }
    # agreement over the 4 items both labelled: only i4
    assert (pair["agreement"]["count"], pair["agreement"]["n"]) == (1, 4)
    # labelled table [[0, 2], [1, 1]]: po = 1/4, rows 2, 2, columns 1, 3, pe = (2*1 + 2*3)/16 = 1/2,
    # kappa = (1/4 - 1/2) / (1 - 1/2) = -1/2
    assert pair["cohen_kappa"]["kappa"] == pytest.approx(-0.5, abs=1e-12)
    # alpha: i3 has one value only; 8 pairable values, n_x = 3, n_y = 5, three disagreeing units:
    # alpha = 1 - (8 - 1) * 3 / (3 * 5) = -0.4
    assert pair["krippendorff_alpha"] == pytest.approx(-0.4, abs=1e-12)
    (model,) = stats["models"]  # type: ignore[misc]
    assert model["krippendorff_alpha_all_variants"] == pytest.approx(-0.4, abs=1e-12)

    # McNemar on the gold items: i1 (v1 right, v2 wrong), i2 (right, wrong), i3 (wrong, right), i4 (right, right)
    mc = pair["mcnemar"]
    assert mc["table"] == [[1, 2], [1, 0]]  # rows: v1 right / wrong; columns: v2 right / wrong
    assert mc["a_only_correct"] == 2 and mc["b_only_correct"] == 1
    assert mc["pvalue"] == pytest.approx(binomtest(1, 3, 0.5).pvalue)


def _mcnemar_frame(both: int, a_only: int, b_only: int, neither: int) -> pl.DataFrame:
    rows = []
    kinds = [(True, True)] * both + [(True, False)] * a_only + [(False, True)] * b_only + [(False, False)] * neither
    for i, (a_right, b_right) in enumerate(kinds):
        rows.append(("m", "a", f"i{i}", 0, "x" if a_right else "y", "x", None))
        rows.append(("m", "b", f"i{i}", 0, "x" if b_right else "y", "x", None))
    return _frame(rows)


@pytest.mark.parametrize(("a_only", "b_only"), [(5, 1), (0, 3), (7, 7), (10, 2), (1, 12), (0, 1)])
def test_mcnemar_exact_matches_binomial_test(a_only: int, b_only: int) -> None:
    stats = summarize(_mcnemar_frame(6, a_only, b_only, 2), ["x", "y"], [("a", "b")], ["a", "b"], has_gold=True)
    mc = stats["pairs"][0]["mcnemar"]  # type: ignore[index]
    assert mc["table"] == [[6, a_only], [b_only, 2]]
    assert (mc["a_only_correct"], mc["b_only_correct"]) == (a_only, b_only)
    expected = binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue
    assert mc["pvalue"] == pytest.approx(expected, rel=1e-12)


def test_mcnemar_without_discordant_pairs_is_p_one() -> None:
    stats = summarize(_mcnemar_frame(4, 0, 0, 3), ["x", "y"], [("a", "b")], ["a", "b"], has_gold=True)
    mc = stats["pairs"][0]["mcnemar"]  # type: ignore[index]
    assert mc["pvalue"] == 1.0 and mc["statistic"] is None


def test_summarize_without_gold_has_no_accuracy_or_mcnemar() -> None:
    frame = _mcnemar_frame(3, 1, 1, 0).with_columns(pl.lit(None, dtype=pl.String).alias("gold"))
    stats = summarize(frame, ["x", "y"], [("a", "b")], ["a", "b"], has_gold=False)
    assert all("accuracy" not in v for v in stats["variants"])  # type: ignore[union-attr]
    assert "mcnemar" not in stats["pairs"][0]  # type: ignore[index]
