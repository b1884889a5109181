"""Paired tests on the same items (variants of one model, models on one variant, conditions, runs),
and Holm's correction across a report's tests.

Conventions: where no test is possible at all (no pairs) the result is None, never p = 1; where
there are pairs but none that differ (no discordant pair, no non-zero difference), the data hold
no evidence of a difference and p = 1 with no statistic, as the exact tests give by definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest, chi2, wilcoxon
from statsmodels.stats.contingency_tables import cochrans_q as _sm_cochrans_q
from statsmodels.stats.multitest import multipletests


def mcnemar_exact(b: int, c: int, n: int) -> dict[str, Any] | None:
    """McNemar's exact test of b (first right, second wrong) against c (first wrong, second right)
    among n pairs: the two-sided binomial test of min(b, c) in b + c trials at 1/2.

    None when n == 0 (no pair: no test possible); p = 1 with no statistic when b + c == 0 (no
    discordant pair). scipy's binomial test rather than statsmodels' `mcnemar(exact=True)`, whose
    2 * cdf leaves 0.9999999999999998 where b and c differ by one and p is exactly 1.
    """
    if not 0 <= b + c <= n or min(b, c) < 0:
        raise ValueError(f"need 0 <= b, c and b + c <= n; got b={b}, c={c}, n={n}")
    if n == 0:
        return None
    if b + c == 0:
        return {"statistic": None, "pvalue": 1.0, "n": n, "discordant": 0, "b": b, "c": c}
    return {"statistic": min(b, c), "pvalue": float(binomtest(min(b, c), b + c, 0.5).pvalue), "n": n,
            "discordant": b + c, "b": b, "c": c}


def stuart_maxwell(table: ArrayLike) -> dict[str, Any] | None:
    """Stuart-Maxwell test of marginal homogeneity for a square table of paired labels
    (rows: first of the pair, columns: second). None for an empty table.

    Written here, not taken from statsmodels' SquareTable.homogeneity, because that solves with
    the covariance of the marginal differences and fails when it is singular, which happens as soon
    as one label is never involved in a disagreement (it only ever pairs with itself). With the
    generalized inverse the statistic is the same where statsmodels has one, and is defined for
    those tables too, on rank(V) degrees of freedom (Stuart 1955; Maxwell 1970).
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError("the table must be square")
    n = int(t.sum())
    if n == 0:
        return None
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    d = rows - cols
    off = t - np.diag(np.diag(t))
    # covariance (times n) of the row-minus-column margins: V_ii = r_i + c_i - 2 t_ii, V_ij = -(t_ij + t_ji)
    v = np.diag(off.sum(axis=1) + off.sum(axis=0)) - (off + off.T)
    df = int(np.linalg.matrix_rank(v))
    if df == 0:
        return {"statistic": None, "pvalue": 1.0, "df": 0, "n": n}  # no pair disagrees
    statistic = float(d @ np.linalg.pinv(v) @ d)
    return {"statistic": statistic, "pvalue": float(chi2.sf(statistic, df)), "df": df, "n": n}


def cochran_q(matrix: ArrayLike) -> dict[str, Any] | None:
    """Cochran's Q test that k paired binary outcomes (columns, e.g. correct under each condition)
    have the same success rate over the items (rows). None without items or with fewer than two
    columns; p = 1 when every item has the same outcome in every column."""
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2:
        raise ValueError("Cochran's Q takes an items x conditions matrix")
    if not np.isin(x, (0, 1)).all():
        raise ValueError("Cochran's Q takes binary (0/1) outcomes")
    n, k = x.shape
    if n == 0 or k < 2:
        return None
    df = k - 1
    per_item = x.sum(axis=1)
    if ((per_item == 0) | (per_item == k)).all():
        return {"statistic": None, "pvalue": 1.0, "df": df, "n": n}  # no item differs between columns: 0 / 0
    result = _sm_cochrans_q(x)
    return {"statistic": float(result.statistic), "pvalue": float(result.pvalue), "df": df, "n": n}


def wilcoxon_paired(x: Sequence[float | None], y: Sequence[float | None]) -> dict[str, Any] | None:
    """Wilcoxon's signed-rank test on the paired differences x - y (scipy; exact for small samples
    without ties, normal approximation otherwise), over the pairs where both values are present.
    Zero differences are dropped (Wilcoxon's own rule). None without pairs; p = 1 when every
    difference is 0."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True)
             if a is not None and b is not None and not (math.isnan(a) or math.isnan(b))]
    if not pairs:
        return None
    nonzero = sum(a != b for a, b in pairs)
    if nonzero == 0:
        return {"statistic": None, "pvalue": 1.0, "n": len(pairs), "n_nonzero": 0}
    result = wilcoxon([a for a, _ in pairs], [b for _, b in pairs], zero_method="wilcox")
    return {"statistic": float(result.statistic), "pvalue": float(result.pvalue), "n": len(pairs),
            "n_nonzero": nonzero}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (statsmodels), in the order given. None entries (no test
    possible) stay None and are not counted among the tests being corrected for."""
    tested = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    if tested:
        values = multipletests([p for _, p in tested], method="holm")[1]
        for (i, _), q in zip(tested, values, strict=True):
            adjusted[i] = float(q)
    return adjusted
