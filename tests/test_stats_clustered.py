"""The clustered standard error of a mean (evalrun.stats.clustered) against statsmodels' cluster-robust
regression, an independent implementation, and small cases worked by hand.

Source: Miller (2024), "Adding Error Bars to Evals", arXiv:2411.00640, appendix A:
SE^2 = (1/n^2) sum_c (sum_{i in c} (s_ic - s_bar))^2, the sandwich variance of the intercept of a
regression of the scores on a constant, with no small-sample correction. The appendix gives the
formula, not a numeric example, so the check is statsmodels' OLS(scores, constant) with
cov_type="cluster" and its corrections switched off (use_correction=False, df_correction=False).
statsmodels' default applies G/(G-1) (N-1)/(N-K) to the variance, which for a constant alone
(K = 1) is G/(G-1); Inspect's clustered stderr applies the same factor. That is checked too, so
the relation between the three is on record.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from evalrun.stats.clustered import clustered_mean

scored_clusters = st.lists(st.tuples(st.floats(-5, 5, allow_nan=False), st.integers(0, 6)), min_size=2, max_size=40)


def _statsmodels_se(values: np.ndarray, groups: np.ndarray, corrected: bool) -> float:
    fit = sm.OLS(values, np.ones(len(values))).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": corrected, "df_correction": corrected})
    return float(fit.bse[0])


@settings(max_examples=100, deadline=None)
@given(scored_clusters)
def test_matches_statsmodels_cluster_robust_intercept(rows: list[tuple[float, int]]) -> None:
    values = np.array([v for v, _ in rows])
    groups = np.array([g for _, g in rows])
    result = clustered_mean(values, groups.tolist())
    assert result["mean"] == pytest.approx(values.mean(), abs=1e-12)
    n_groups = len(set(groups.tolist()))
    assert result["clusters"] == n_groups and result["n"] == len(rows)
    if n_groups < 2:
        assert result["se"] is None and result["ci_low"] is None
        return
    assert result["se"] == pytest.approx(_statsmodels_se(values, groups, corrected=False), rel=1e-9, abs=1e-12)
    assert result["se"] * math.sqrt(n_groups / (n_groups - 1)) == pytest.approx(
        _statsmodels_se(values, groups, corrected=True), rel=1e-9, abs=1e-12)


def test_small_case_by_hand() -> None:
    # scores 1, 0 | 1, 1; mean 3/4; deviations 1/4, -3/4 | 1/4, 1/4; cluster sums -1/2 and 1/2;
    # SE^2 = (1/4 + 1/4) / 16 = 1/32
    result = clustered_mean([1, 0, 1, 1], ["a", "a", "b", "b"])
    assert result["mean"] == 0.75
    assert result["se"] == pytest.approx(math.sqrt(1 / 32), abs=1e-15)
    z = 1.959963984540054
    assert result["ci_low"] == pytest.approx(0.75 - z * math.sqrt(1 / 32), abs=1e-12)
    assert result["ci_high"] == pytest.approx(0.75 + z * math.sqrt(1 / 32), abs=1e-12)


def test_one_sample_per_cluster_is_the_plain_standard_error() -> None:
    # every cluster a single score: SE^2 = sum (s_i - s_bar)^2 / n^2, the population variance over n
    values = np.array([0.2, 0.9, 0.4, 0.4, 1.0, 0.0])
    result = clustered_mean(values, list(range(6)))
    assert result["se"] == pytest.approx(values.std(ddof=0) / math.sqrt(6), abs=1e-15)


def test_correlated_samples_widen_the_error() -> None:
    # three items, four samples each, samples of an item identical: the 12 scores carry the
    # information of 3, and the clustered error is twice the naive one (sqrt(12 / 3))
    values = np.repeat([1.0, 0.0, 1.0], 4)
    clustered = clustered_mean(values, np.repeat([0, 1, 2], 4).tolist())
    naive = clustered_mean(values, list(range(12)))
    assert clustered["se"] == pytest.approx(2 * naive["se"], rel=1e-12)


def test_edge_cases() -> None:
    assert clustered_mean([], []) == {"mean": None, "se": None, "ci_low": None, "ci_high": None, "level": 0.95,
                                      "n": 0, "clusters": 0}
    one = clustered_mean([1.0, 0.0, 1.0], ["i", "i", "i"])
    assert one["mean"] == pytest.approx(2 / 3) and one["se"] is None  # one cluster: no error can be given
    assert clustered_mean([1.0, 0.0], [1, "1"])["clusters"] == 2  # clusters are compared as given
    with pytest.raises(ValueError, match="aligned"):
        clustered_mean([1.0, 2.0], ["a"])
