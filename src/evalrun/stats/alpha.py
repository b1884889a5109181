"""Krippendorff's alpha for reliability data with missing values, at four levels of measurement.

Written here rather than taken from the `krippendorff` package, which is GPL-3.0-or-later
(evalrun is MIT). It follows the coincidence-matrix route of Krippendorff (2011), "Computing
Krippendorff's Alpha-Reliability", University of Pennsylvania, ScholarlyCommons asc_papers/43:

* a unit (item) with m_u >= 2 values is pairable; every ordered pair of values (c, k) that two
  different coders gave the unit adds 1 / (m_u - 1) to the coincidence o_ck;
* n_c = sum_k o_ck, and n = sum_c n_c is the number of pairable values;
* alpha = 1 - D_o / D_e = 1 - (n - 1) sum_ck o_ck delta2_ck / sum_ck n_c n_k delta2_ck,
  where delta2 is the squared difference of the level of measurement.

Edge rules: alpha is undefined (None here) when no unit is pairable (empty input, or no unit
that two coders both labelled), or when every pairable value is the same (one label used by
everyone: D_e = 0 and alpha is 0 / 0). A missing value (None, unparsed) is left out of its unit;
a unit left with one value is not pairable and adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def reliability_data(columns: Sequence[Sequence[str | None]], labels: Sequence[str]) -> np.ndarray:
    """Label vectors (one per coder, aligned by unit; None = missing) as a coders x units array of
    each label's position in `labels`, NaN where missing: the input `krippendorff_alpha` takes."""
    position = {label: float(i) for i, label in enumerate(labels)}
    return np.array([[np.nan if v is None else position[v] for v in column] for column in columns], dtype=float)


def coincidences(data: ArrayLike, value_domain: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The values and the values x values coincidence matrix o of reliability data.

    `data` has one row per coder and one column per unit, NaN where a coder gave no value. Without
    `value_domain` the values are the distinct values present, ascending; with it, they are the
    domain in the order given (the order the ordinal metric ranks them in), and a value outside
    the domain is an error.
    """
    table = np.asarray(data, dtype=float)
    if table.ndim != 2:
        raise ValueError("reliability data must be a 2-D array, coders x units")
    cells = table.T  # units x coders, so that reading the present cells goes unit by unit
    present = ~np.isnan(cells)
    observed = cells[present]
    values = np.unique(observed) if value_domain is None else np.asarray(value_domain, dtype=float)
    if len(np.unique(values)) != len(values):
        raise ValueError("the value domain repeats a value")
    order = np.argsort(values, kind="stable")
    found = np.minimum(np.searchsorted(values[order], observed), max(len(values) - 1, 0))
    if observed.size and (len(values) == 0 or not np.array_equal(values[order][found], observed)):
        raise ValueError("the reliability data hold a value outside the value domain")
    code = order[found]
    units = np.nonzero(present)[0]
    n_values = len(values)
    # counts[u, c]: how many coders gave unit u the value c
    counts = np.bincount(units * n_values + code, minlength=cells.shape[0] * n_values).reshape(cells.shape[0], n_values)
    m = counts.sum(axis=1)
    counts = counts[m >= 2].astype(float)
    weighted = counts / (m[m >= 2] - 1)[:, None]
    # per unit, n_uc n_uk ordered pairs of values, less the n_uc pairs of a value with itself
    o = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    return values, o


def _delta2(values: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """Squared differences delta2_ck of Krippendorff (2011) between every two values."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "ordinal":
        # (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 is the squared distance between the values'
        # mid-ranks in the pooled pairable values, which is how it is computed here
        mid = np.cumsum(n_c) - n_c / 2
        return (mid[:, None] - mid[None, :]) ** 2
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ratio":
        if (values < 0).any():
            raise ValueError("the ratio metric needs non-negative values")
        total = values[:, None] + values[None, :]
        with np.errstate(invalid="ignore"):
            # two zeros do not differ: 0 / 0 counts as no difference
            return np.where(total == 0, 0.0, ((values[:, None] - values[None, :]) / total) ** 2)
    raise ValueError(f"unknown level of measurement: {level!r}")


def krippendorff_alpha(data: ArrayLike, level: Level = "nominal",
                       value_domain: Sequence[float] | None = None) -> float | None:
    """Krippendorff's alpha of reliability data (coders x units, NaN = missing), or None where undefined.

    `level` picks the squared difference: nominal (values differ or not), ordinal (by ranks in
    the order of `value_domain`, or ascending values), interval (numeric), ratio (non-negative).
    """
    values, o = coincidences(data, value_domain)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n == 0:
        return None  # no unit has two values
    delta2 = _delta2(values, n_c, level)
    expected = n_c @ delta2 @ n_c
    if expected == 0:
        return None  # one value only: no disagreement is possible, alpha is 0 / 0
    return float(1 - (n - 1) * (o * delta2).sum() / expected)


def label_alpha(columns: Sequence[Sequence[str | None]], labels: Sequence[str], level: Level = "nominal"
                ) -> float | None:
    """Krippendorff's alpha of label vectors (one per coder, aligned by unit; None = missing), the
    labels' order in `labels` being the ranks the ordinal level uses."""
    return krippendorff_alpha(reliability_data(columns, labels), level, value_domain=range(len(labels)))
