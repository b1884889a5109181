"""A mean over samples with a standard error clustered by item (or by any other cluster).

Several samples of one item are not independent draws: treating them as such makes the standard
error too small. Miller (2024), "Adding Error Bars to Evals: A Statistical Approach to Language
Model Evaluations", arXiv:2411.00640, section 2 and appendix A, gives the clustered standard
error of a mean s_bar of n scores s_{i,c} (sample i of cluster c):

    SE^2 = (1 / n^2) * sum_c ( sum_{i in c} (s_{i,c} - s_bar) )^2

the cluster-robust (sandwich) variance of the intercept of a regression of the scores on a
constant, without a small-sample correction. It is a dozen lines of numpy, written here so the
formula is the paper's and visible; statsmodels' OLS with cov_type="cluster" computes the same
number when its correction is switched off, which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm


def clustered_mean(values: ArrayLike, clusters: Sequence[Hashable], level: float = 0.95) -> dict[str, Any]:
    """Mean of `values` with the clustered standard error of Miller (2024) and a normal interval.

    Returns mean, se, ci_low, ci_high, level, n (values) and clusters (distinct clusters). The mean
    is None without values; se and the interval are None with fewer than two clusters, where the
    formula gives 0 whatever the data (the one cluster's deviations sum to 0) and says nothing.
    """
    s = np.asarray(values, dtype=float)
    if s.ndim != 1 or len(s) != len(clusters):
        raise ValueError("values and clusters must be aligned 1-D sequences")
    index: dict[Hashable, int] = {}
    cluster_of = np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    n, n_clusters = len(s), len(index)
    out: dict[str, Any] = {"mean": None, "se": None, "ci_low": None, "ci_high": None, "level": level,
                           "n": n, "clusters": n_clusters}
    if n == 0:
        return out
    mean = float(s.mean())
    out["mean"] = mean
    if n_clusters < 2:
        return out
    deviation_sums = np.bincount(cluster_of, weights=s - mean)
    se = math.sqrt(float((deviation_sums**2).sum())) / n
    z = float(norm.ppf((1 + level) / 2))
    out.update(se=se, ci_low=mean - z * se, ci_high=mean + z * se)
    return out
