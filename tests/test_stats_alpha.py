"""Krippendorff's alpha (evalrun.stats.alpha) against published worked examples, exact fractions
worked out by hand in the comments, and a pair-by-pair implementation written independently below.

Sources:
* Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability". University of
  Pennsylvania, ScholarlyCommons, asc_papers/43. Section A (binary, two observers): alpha = 0.095;
  section C (4 observers, 12 units, missing values): nominal 0.743, and the same data under the
  ordinal, interval and ratio metrics: 0.815, 0.849, 0.797.
* R package irr (Gamer, Lemon, Fellows & Singh), `kripp.alpha`, whose documented example runs these
  same "C" data and prints 0.743, 0.815, 0.849, 0.797: an independent implementation.
* Wikipedia, "Krippendorff's alpha", section "A computational example" (3 coders, 15 units):
  nominal 0.691, interval 0.811.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalrun.stats.alpha import coincidences, krippendorff_alpha, reliability_data

NA = np.nan


def _rows(*coders: str) -> list[list[float]]:
    """Coders written as strings of digits, "." for a missing value."""
    return [[NA if c == "." else float(c) for c in coder] for coder in coders]


# Krippendorff (2011), section C:
#   unit         1  2  3  4  5  6  7  8  9  10 11 12
#   observer A   1  2  3  3  2  1  4  1  2  .  .  .
#   observer B   1  2  3  3  2  2  4  1  2  5  .  3
#   observer C   .  3  3  3  2  3  4  2  2  5  1  .
#   observer D   1  2  3  3  2  4  4  1  2  5  1  .
SECTION_C = _rows("123321412...", "1233224125.3", ".3332342251.", "12332441251.")


def test_binary_two_observer_example() -> None:
    # Section A: 10 units, no missing data. n = 20 values, n_0 = 14, n_1 = 6; four units disagree,
    # so o_01 = o_10 = 4; alpha = 1 - (n - 1) o_01 / (n_0 n_1) = 1 - 19 * 4 / 84 = 8 / 84 = 0.095.
    data = _rows("0100000010", "1110010000")
    result = krippendorff_alpha(data)
    assert result is not None
    assert round(result, 3) == 0.095
    assert result == pytest.approx(8 / 84, abs=1e-12)


def test_section_c_coincidence_matrix_by_hand() -> None:
    # Pairable units 1-11. Units where all values agree add m_u (m_u - 1) / (m_u - 1) = m_u to o_cc.
    # Unit 2 (2, 2, 3, 2): o_22 += 3*2/3 = 2, o_23 = o_32 += 3/3 = 1.
    # Unit 6 (1, 2, 3, 4): every off-diagonal ordered pair += 1/3.
    # Unit 8 (1, 1, 2, 1): o_11 += 2, o_12 = o_21 += 1.
    third = 1 / 3
    expected = np.array([
        [3 + 2 + 2, 1 + third, third, third, 0],   # unit 1 (three 1s), unit 11 (two 1s), unit 8
        [1 + third, 2 + 4 + 4, 1 + third, third, 0],  # units 2, 5, 9
        [third, 1 + third, 4 + 4, third, 0],        # units 3, 4
        [third, third, third, 4, 0],                # unit 7
        [0, 0, 0, 0, 3],                            # unit 10
    ])
    values, o = coincidences(SECTION_C)
    np.testing.assert_array_equal(values, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(o, expected, atol=1e-12)
    np.testing.assert_allclose(o.sum(axis=1), [9, 13, 10, 5, 3])  # n_c, as published; n = 40


def test_section_c_nominal() -> None:
    # sum_{c != k} n_c n_k = 40^2 - (9^2 + 13^2 + 10^2 + 5^2 + 3^2) = 1600 - 384 = 1216;
    # disagreeing coincidences: units 2, 6, 8 give 2 + 4 + 2 = 8; alpha = 1 - 39 * 8 / 1216.
    result = krippendorff_alpha(SECTION_C, "nominal")
    assert result is not None
    assert round(result, 3) == 0.743
    assert result == pytest.approx(1 - 312 / 1216, abs=1e-12)


def test_section_c_interval() -> None:
    # Observed: unit 2 gives 2 * 1 * (3-2)^2 ... = 2; unit 6 gives (2/3) * (1+4+9+1+4+1) = 40/3;
    # unit 8 gives 2. Sum 52/3.
    # Expected: sum_ck n_c n_k (c - k)^2 = 2 (n sum n_c c^2 - (sum n_c c)^2) = 2 (40 * 306 - 100^2) = 4480.
    # alpha = 1 - 39 * (52/3) / 4480 = 1 - 676 / 4480.
    result = krippendorff_alpha(SECTION_C, "interval")
    assert result is not None
    assert round(result, 3) == 0.849
    assert result == pytest.approx(1 - 676 / 4480, abs=1e-12)


def test_section_c_ordinal() -> None:
    # delta_ck = sum_{g=c..k} n_g - (n_c + n_k) / 2 with n = (9, 13, 10, 5, 3):
    #   d12 = 11, d13 = 22.5, d14 = 30, d15 = 34, d23 = 11.5, d24 = 19, d25 = 23, d34 = 7.5, d35 = 11.5, d45 = 4.
    # Observed sum o_ck d_ck^2: unit 2: 2 * 11.5^2 = 264.5; unit 6: (2/3)(11^2 + 22.5^2 + 30^2 + 11.5^2
    #   + 19^2 + 7.5^2) = (2/3) 2076.75 = 1384.5; unit 8: 2 * 11^2 = 242. Sum 1891.
    # Expected sum n_c n_k d_ck^2 over c != k = 2 * 199740 = 399480. alpha = 1 - 39 * 1891 / 399480.
    d = {(1, 2): 11, (1, 3): 22.5, (1, 4): 30, (1, 5): 34, (2, 3): 11.5, (2, 4): 19, (2, 5): 23,
         (3, 4): 7.5, (3, 5): 11.5, (4, 5): 4}
    n = {1: 9, 2: 13, 3: 10, 4: 5, 5: 3}
    assert 2 * sum(n[c] * n[k] * dk**2 for (c, k), dk in d.items()) == 399480
    result = krippendorff_alpha(SECTION_C, "ordinal")
    assert result is not None
    assert round(result, 3) == 0.815
    assert result == pytest.approx(1 - 39 * 1891 / 399480, abs=1e-12)


def test_section_c_ratio() -> None:
    result = krippendorff_alpha(SECTION_C, "ratio")
    assert result is not None
    assert round(result, 3) == 0.797
    assert result == pytest.approx(_alpha_by_pairs(SECTION_C, "ratio"), abs=1e-12)


WIKIPEDIA = [
    [NA, NA, NA, NA, NA, 3, 4, 1, 2, 1, 1, 3, 3, NA, 3],
    [1, NA, 2, 1, 3, 3, 4, 3, NA, NA, NA, NA, NA, NA, NA],
    [NA, NA, 2, 1, 3, 4, 4, NA, 2, 1, 1, 3, 3, NA, 4],
]


def test_wikipedia_computational_example() -> None:
    nominal = krippendorff_alpha(WIKIPEDIA, "nominal")
    interval = krippendorff_alpha(WIKIPEDIA, "interval")
    assert nominal is not None and interval is not None
    assert round(nominal, 3) == 0.691
    assert round(interval, 3) == 0.811


# ---- an independent implementation: every pair of values, straight from the definitions -------


def _delta2(c: float, k: float, level: str, n_of: Counter[float]) -> Fraction:
    """Krippendorff's squared differences, in exact fractions."""
    if level == "nominal":
        return Fraction(int(c != k))
    if level == "interval":
        return Fraction(c - k) ** 2
    if level == "ratio":
        return Fraction(0) if c + k == 0 else (Fraction(c - k) / Fraction(c + k)) ** 2
    lo, hi = min(c, k), max(c, k)
    between = sum(count for value, count in n_of.items() if lo <= value <= hi)
    return (Fraction(between) - Fraction(n_of[c] + n_of[k], 2)) ** 2


def _alpha_by_pairs(data: Sequence[Sequence[float]], level: str) -> float:
    """D_o: mean squared difference over pairs of values within a unit, each unit's pairs weighted
    1/(m_u - 1); D_e: mean over all pairs of pairable values. alpha = 1 - D_o / D_e."""
    units = [[v for v in unit if not np.isnan(v)] for unit in zip(*data, strict=True)]
    units = [unit for unit in units if len(unit) >= 2]
    pooled = [v for unit in units for v in unit]
    n_of = Counter(pooled)
    n = len(pooled)
    observed = sum(
        (_delta2(unit[i], unit[j], level, n_of) / (len(unit) - 1)
         for unit in units for i in range(len(unit)) for j in range(len(unit)) if i != j),
        Fraction(0),
    ) / n
    expected = sum(
        (_delta2(pooled[i], pooled[j], level, n_of) for i in range(n) for j in range(n) if i != j),
        Fraction(0),
    ) / (n * (n - 1))
    return float(1 - observed / expected)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_section_c_matches_pairwise_definition(level: str) -> None:
    result = krippendorff_alpha(SECTION_C, level)  # type: ignore[arg-type]
    assert result == pytest.approx(_alpha_by_pairs(SECTION_C, level), abs=1e-12)


reliability = st.integers(min_value=2, max_value=4).flatmap(
    lambda coders: st.lists(
        st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=4)), min_size=coders, max_size=coders),
        min_size=1, max_size=12,
    )
)


def _as_data(units: list[list[int | None]]) -> np.ndarray:
    return np.array([[NA if v is None else float(v) for v in unit] for unit in units]).T


@settings(max_examples=150, deadline=None)
@given(reliability, st.sampled_from(["nominal", "ordinal", "interval", "ratio"]))
def test_matches_pairwise_definition_on_random_data(units: list[list[int | None]], level: str) -> None:
    data = _as_data(units)
    result = krippendorff_alpha(data, level)  # type: ignore[arg-type]
    pairable = [[v for v in unit if v is not None] for unit in units]
    pooled = {v for unit in pairable if len(unit) >= 2 for v in unit}
    if len(pooled) < 2:
        assert result is None  # no pairable unit, or one value only
    else:
        assert result == pytest.approx(_alpha_by_pairs(data, level), abs=1e-9)


# ---- properties -------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(reliability, st.permutations(range(5)))
def test_nominal_alpha_ignores_the_names_of_values(units: list[list[int | None]], relabel: list[int]) -> None:
    data = _as_data(units)
    renamed = np.where(np.isnan(data), NA, np.take(relabel, np.nan_to_num(data).astype(int)))
    assert krippendorff_alpha(renamed) == pytest.approx(krippendorff_alpha(data), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(reliability)
def test_interval_alpha_ignores_a_change_of_unit_and_origin(units: list[list[int | None]]) -> None:
    data = _as_data(units)
    assert krippendorff_alpha(data * -2.5 + 7, "interval") == pytest.approx(
        krippendorff_alpha(data, "interval"), abs=1e-9)


def test_value_domain_sets_the_ordinal_order() -> None:
    # The domain 3 < 1 < 2 (in that order) must rank like the values 0 < 1 < 2 after renaming 3 -> 0.
    data = np.array([[3, 1, 2, 2, 3, NA], [3, 2, 2, 1, 1, 3]], dtype=float)
    renamed = np.where(data == 3, 0, data)
    by_domain = krippendorff_alpha(data, "ordinal", value_domain=[3, 1, 2])
    assert by_domain == pytest.approx(krippendorff_alpha(renamed, "ordinal"), abs=1e-12)
    assert by_domain != pytest.approx(krippendorff_alpha(data, "ordinal"), abs=1e-6)


def test_perfect_agreement_with_missing_values_is_one() -> None:
    assert krippendorff_alpha([[0, 1, 0, NA], [0, 1, 0, 1]]) == pytest.approx(1.0)


def test_undefined_cases_are_none() -> None:
    assert krippendorff_alpha([[0, 0, 0], [0, 0, 0]]) is None  # one value only
    assert krippendorff_alpha([[0, NA, 1], [NA, 1, NA]]) is None  # no unit with two values
    assert krippendorff_alpha(np.zeros((2, 0))) is None  # no units
    assert krippendorff_alpha([[NA, NA]], "interval") is None


def test_invalid_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside the value domain"):
        krippendorff_alpha([[0, 1], [1, 5]], value_domain=[0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        krippendorff_alpha([[-1, 1], [1, 1]], "ratio")
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha([0, 1, 1])


def test_reliability_data_codes_labels_by_position() -> None:
    data = reliability_data([["b", None, "a"], ["a", "c", None]], ["a", "b", "c"])
    np.testing.assert_array_equal(data, [[1, NA, 0], [0, 2, NA]])
