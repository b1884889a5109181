"""Kappa: Cohen's (with its asymptotic interval), weighted (for ordered labels) and Fleiss'.

The large-sample variances (Fleiss, Cohen & Everitt 1969) come from statsmodels' `cohens_kappa`,
Fleiss' kappa from its `fleiss_kappa`. The point estimates of Cohen's and weighted kappa are
computed here in integers, for the reason in `kappa_estimate`.

Edge rules, for every kappa here:

* undefined (kappa None, no interval): no items, or chance agreement 1 (both raters used one and
  the same label; for weighted kappa: no disagreement possible by chance), where kappa is 0 / 0;
* one rater used a single label (and the other more than one): kappa is exactly 0 (chance level)
  and its asymptotic variance is 0, so `degenerate` and no interval;
* perfect agreement or perfect disagreement: the variance is 0 too, so `degenerate` and no
  interval: an interval of zero width would claim a certainty the data lack;
* the interval kappa +- z se is clipped to [-1, 1] (`clipped` says when it was).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

Z95 = float(norm.ppf(0.975))

_UNDEFINED = {"kappa": None, "se": None, "ci_low": None, "ci_high": None, "degenerate": False, "clipped": False}


def _interval(kappa: float, variance: float, n: int) -> dict[str, Any]:
    """The asymptotic 95% interval kappa +- z se, clipped to [-1, 1]; none where the variance is 0.

    The large-sample variance is exactly 0 for some tables (one rater uses one label, perfect
    agreement, perfect disagreement), where floating point leaves 0, a tiny positive number or a
    tiny negative one. n * variance is of order one for any table that has a variance, so below
    1e-9 it is taken as 0.
    """
    if not math.isfinite(variance) or variance * n < 1e-9:
        return {"se": None, "ci_low": None, "ci_high": None, "degenerate": True, "clipped": False}
    se = math.sqrt(variance)
    low, high = kappa - Z95 * se, kappa + Z95 * se
    return {"se": se, "ci_low": max(low, -1.0), "ci_high": min(high, 1.0), "degenerate": False,
            "clipped": low < -1.0 or high > 1.0}


def kappa_estimate(table: ArrayLike) -> float | None:
    """Cohen's kappa of a square table of counts alone (no variance), None where undefined."""
    t = np.asarray(table, dtype=np.int64)
    n = int(t.sum())
    chance = int(t.sum(axis=1) @ t.sum(axis=0))  # n^2 times the chance agreement
    if n == 0 or chance == n * n:
        return None
    # in integers, so that kappa is exactly 0 when observed and chance agreement are equal (as when
    # one rater uses a single label); floating point can leave 1e-17 there, which reads "slight"
    return (n * int(np.trace(t)) - chance) / (n * n - chance)


def cohen_kappa(table: ArrayLike) -> dict[str, Any]:
    """Cohen's kappa of a square table of counts (rows one rater, columns the other).

    Returns kappa, n, se, ci_low, ci_high (asymptotic 95%), degenerate and clipped, by the
    module's edge rules.
    """
    t = np.asarray(table, dtype=np.int64)
    n = int(t.sum())
    kappa = kappa_estimate(t)
    if kappa is None:
        return {**_UNDEFINED, "n": n}
    with np.errstate(invalid="ignore", divide="ignore"):  # statsmodels takes the root of a variance near 0
        variance = float(_sm_cohens_kappa(t, return_results=True).var_kappa)
    return {"kappa": kappa, "n": n, **_interval(kappa, variance, n)}


def weighted_kappa(table: ArrayLike, weights: Literal["linear", "quadratic"] = "quadratic") -> dict[str, Any]:
    """Weighted kappa of a square table whose categories are ordered (first row/column lowest),
    with statsmodels' large-sample variance; the same keys and rules as `cohen_kappa`. Linear
    weights are Cicchetti-Allison's, quadratic Fleiss-Cohen's."""
    t = np.asarray(table, dtype=np.int64)
    n = int(t.sum())
    step = np.abs(np.arange(len(t))[:, None] - np.arange(len(t))[None, :])
    # disagreement weights |i - j| or (i - j)^2; kappa does not change when they are scaled
    w = step if weights == "linear" else step**2
    observed = n * int((t * w).sum())
    chance = int((np.outer(t.sum(axis=1), t.sum(axis=0)) * w).sum())
    if n == 0 or chance == 0:
        return {**_UNDEFINED, "n": n}  # no items, or no disagreement possible by chance: 0 / 0
    # in integers, for an exact 0 where observed and chance disagreement are equal (see kappa_estimate)
    kappa = (chance - observed) / chance
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = float(_sm_cohens_kappa(t, wt=weights, return_results=True).var_kappa)
    return {"kappa": kappa, "n": n, **_interval(kappa, variance, n)}


def fleiss_kappa(counts: ArrayLike) -> float | None:
    """Fleiss' kappa of a subjects x categories table of counts, every subject rated the same
    number of times (at least twice); None without subjects or when every rating is one category."""
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2:
        raise ValueError("counts must be a 2-D table, subjects x categories")
    if table.shape[0] == 0:
        return None
    raters = table.sum(axis=1)
    if raters.min() != raters.max() or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number of ratings (two or more) for every subject")
    shares = table.sum(axis=0) / table.sum()
    if (shares**2).sum() == 1:
        return None  # chance agreement 1: kappa is 0 / 0
    return float(_sm_fleiss_kappa(table, method="fleiss"))


def label_counts(rows: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """The subjects x labels counts Fleiss' kappa takes, from each subject's list of labels."""
    position = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(rows), len(labels)), dtype=np.int64)
    for i, row in enumerate(rows):
        for label in row:
            table[i, position[label]] += 1
    return table
