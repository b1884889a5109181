"""Agreement between two aligned label vectors (variants, conditions, paraphrases, readers, runs).

A label vector holds one entry per item, None where no label could be read (unparsed). Percent
agreement and kappa use the items both vectors labelled; Krippendorff's alpha uses every item,
with None as missing data; the confusion matrix counts unparsed as a category of its own.

The large-sample variances of kappa and weighted kappa (Fleiss, Cohen & Everitt 1969), Fleiss'
kappa and Wilson intervals come from statsmodels, Spearman's rho from scipy. The point estimates
of kappa and weighted kappa are computed here in integers, for the reason in `kappa_estimate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm, spearmanr
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from .alpha import krippendorff_alpha, reliability_data

Z95 = float(norm.ppf(0.975))
Label = str | None


def _num(x: float | np.floating) -> float | None:
    """A JSON-safe float: NaN and infinities (undefined statistics) become None."""
    x = float(x)
    return x if math.isfinite(x) else None


def wilson(count: int, n: int) -> dict[str, Any]:
    """A proportion with its Wilson 95% interval; estimate and interval None without observations."""
    if n == 0:
        return {"count": count, "n": n, "estimate": None, "ci_low": None, "ci_high": None}
    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    return {"count": count, "n": n, "estimate": count / n, "ci_low": _num(low), "ci_high": _num(high)}


def pair_cells(a: Sequence[Label], b: Sequence[Label], categories: Sequence[str]) -> np.ndarray:
    """Per item, the cell of `confusion`'s table its pair of labels falls in (row * size + column,
    size = len(categories) + 1), so that tables of resampled items are one bincount away."""
    if len(a) != len(b):
        raise ValueError(f"label vectors of different lengths: {len(a)} and {len(b)}")
    position: dict[Label, int] = {c: i for i, c in enumerate(categories)}
    position[None] = len(categories)
    size = len(categories) + 1
    try:
        return np.array([position[x] * size + position[y] for x, y in zip(a, b, strict=True)], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"label {e.args[0]!r} is not one of {list(categories)}") from None


def confusion(a: Sequence[Label], b: Sequence[Label], categories: Sequence[str]) -> np.ndarray:
    """Counts of (a, b) label pairs: rows follow `a`, columns `b`, in the order of `categories`,
    with one more row and column (the last) for None (unparsed). A label outside `categories`
    is an error, not a silent drop."""
    size = len(categories) + 1
    return np.bincount(pair_cells(a, b, categories), minlength=size * size).reshape(size, size)


def percent_agreement(a: Sequence[Label], b: Sequence[Label]) -> dict[str, Any]:
    """Share of the items both vectors labelled on which the labels are equal, with its Wilson interval."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    return wilson(sum(x == y for x, y in both), len(both))


def _interval(kappa: float, variance: float, n: int) -> dict[str, Any]:
    """The asymptotic 95% interval kappa +- z se, clipped to [-1, 1]; none where the variance is 0.

    The large-sample variance is exactly 0 for some tables (one rater uses one label, perfect
    agreement, perfect disagreement), where floating point leaves 0, a tiny positive number or a
    tiny negative one. n * variance is of order one for any table that has a variance, so below
    1e-9 it is taken as 0: an interval of zero width would claim a certainty the data lack.
    """
    if not math.isfinite(variance) or variance * n < 1e-9:
        return {"se": None, "ci_low": None, "ci_high": None, "degenerate": True, "clipped": False}
    se = math.sqrt(variance)
    low, high = kappa - Z95 * se, kappa + Z95 * se
    return {"se": se, "ci_low": max(low, -1.0), "ci_high": min(high, 1.0), "degenerate": False,
            "clipped": low < -1.0 or high > 1.0}


_UNDEFINED = {"kappa": None, "se": None, "ci_low": None, "ci_high": None, "degenerate": False, "clipped": False}


def kappa_estimate(table: ArrayLike) -> float | None:
    """Cohen's kappa of a square table of counts alone (no variance): None without items or when
    both raters use one and the same label (chance agreement 1, kappa 0 / 0)."""
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

    Returns kappa, n, se, ci_low, ci_high (asymptotic 95%, clipped to [-1, 1]; `clipped` says
    so), and `degenerate` when kappa is defined but its asymptotic variance is 0, so that no
    interval is given. kappa is None where undefined (see `kappa_estimate`).
    """
    t = np.asarray(table, dtype=np.int64)
    n = int(t.sum())
    kappa = kappa_estimate(t)
    if kappa is None:
        return {**_UNDEFINED, "n": n}
    with np.errstate(invalid="ignore"):  # statsmodels takes the root of a variance that rounds below 0
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
    # in integers, for an exact 0 where observed and chance disagreement are equal (see cohen_kappa)
    kappa = (chance - observed) / chance
    with np.errstate(invalid="ignore"):
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


def spearman(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, Any]:
    """Spearman's rho (and scipy's two-sided p-value) over the pairs where both values are present;
    rho and p are None with fewer than three pairs or when either side is constant."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True)
             if x is not None and y is not None and not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({y for _, y in pairs}) < 2:
        return {"rho": None, "pvalue": None, "n": len(pairs)}
    result = spearmanr([x for x, _ in pairs], [y for _, y in pairs])
    return {"rho": _num(result.statistic), "pvalue": _num(result.pvalue), "n": len(pairs)}


def agreement(a: Sequence[Label], b: Sequence[Label], labels: Sequence[str], ordinal: bool = False) -> dict[str, Any]:
    """Everything about how two aligned label vectors agree.

    Keys: n (items), n_both (items both labelled), percent (Wilson), kappa (`cohen_kappa` over
    the items both labelled), alpha (Krippendorff's, every item, None as missing; ordinal when
    `ordinal`), alpha_level, and confusion ({"categories": [*labels, None], "counts": rows a x
    columns b}). With `ordinal` (labels listed from lowest to highest) also weighted_kappa
    (quadratic) and spearman (on the labels' ranks).
    """
    table = confusion(a, b, labels)
    k = len(labels)
    level = "ordinal" if ordinal else "nominal"
    result: dict[str, Any] = {
        "n": len(a),
        "n_both": int(table[:k, :k].sum()),
        "percent": wilson(int(np.trace(table[:k, :k])), int(table[:k, :k].sum())),
        "kappa": cohen_kappa(table[:k, :k]),
        "alpha": krippendorff_alpha(reliability_data([a, b], labels), level, value_domain=range(k)),
        "alpha_level": level,
        "confusion": {"categories": [*labels, None], "counts": table.tolist()},
    }
    if ordinal:
        rank = {label: float(i) for i, label in enumerate(labels)}
        result["weighted_kappa"] = weighted_kappa(table[:k, :k], "quadratic")
        result["spearman"] = spearman([None if x is None else rank[x] for x in a],
                                      [None if y is None else rank[y] for y in b])
    return result
