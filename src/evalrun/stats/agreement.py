"""Agreement between two aligned label vectors (variants, conditions, paraphrases, models, readers, runs).

A label vector holds one entry per item, None where no label could be read (unparsed). Percent
agreement and kappa use the items both vectors labelled; Krippendorff's alpha uses every item,
with None as missing data; the confusion matrix counts unparsed as a category of its own. Each
statistic lives in its own module with its edge rules (`kappa`, `alpha`, `confusion`,
`proportion`); this one joins them into the one dict every comparison reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .alpha import label_alpha
from .confusion import confusion, labelled
from .kappa import cohen_kappa, weighted_kappa
from .numbers import finite
from .proportion import wilson

Label = str | None


def agreeing(a: Sequence[Label], b: Sequence[Label]) -> tuple[np.ndarray, np.ndarray]:
    """Per item, as 0/1 floats: both labels equal, and both labelled (percent agreement's numerator
    and denominator, so that a bootstrap can resample them). Two unparsed items do not agree."""
    both = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)], dtype=float)
    same = np.array([x is not None and x == y for x, y in zip(a, b, strict=True)], dtype=float)
    return same, both


def percent_agreement(a: Sequence[Label], b: Sequence[Label]) -> dict[str, Any]:
    """Share of the items both vectors labelled on which the labels are equal, with its Wilson
    interval (estimate None when no item was labelled by both)."""
    same, both = agreeing(a, b)
    return wilson(int(same.sum()), int(both.sum()))


def ranks(a: Sequence[Label], labels: Sequence[str]) -> list[float | None]:
    """Ordered labels (listed lowest first) as their ranks 0, 1, ...; None stays None."""
    rank = {label: float(i) for i, label in enumerate(labels)}
    return [None if x is None else rank[x] for x in a]


def spearman(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, Any]:
    """Spearman's rho (and scipy's two-sided p-value) over the pairs where both values are present;
    rho and p are None with fewer than three pairs or when either side is constant."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True)
             if x is not None and y is not None and not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({y for _, y in pairs}) < 2:
        return {"rho": None, "pvalue": None, "n": len(pairs)}
    result = spearmanr([x for x, _ in pairs], [y for _, y in pairs])
    return {"rho": finite(result.statistic), "pvalue": finite(result.pvalue), "n": len(pairs)}


def agreement(a: Sequence[Label], b: Sequence[Label], labels: Sequence[str], ordinal: bool = False) -> dict[str, Any]:
    """Everything about how two aligned label vectors agree.

    Keys: n (items), n_both (items both labelled), percent (Wilson), kappa (`cohen_kappa` over
    the items both labelled), alpha (Krippendorff's, every item, None as missing; ordinal when
    `ordinal`), alpha_level, and confusion ({"categories": [*labels, None], "counts": rows a x
    columns b}). With `ordinal` (labels listed from lowest to highest) also weighted_kappa
    (quadratic) and spearman (on the labels' ranks).
    """
    table = confusion(a, b, labels)
    level = "ordinal" if ordinal else "nominal"
    result: dict[str, Any] = {
        "n": len(a),
        "n_both": int(labelled(table).sum()),
        "percent": percent_agreement(a, b),
        "kappa": cohen_kappa(labelled(table)),
        "alpha": label_alpha([a, b], labels, level),
        "alpha_level": level,
        "confusion": {"categories": [*labels, None], "counts": table.tolist()},
    }
    if ordinal:
        result["weighted_kappa"] = weighted_kappa(labelled(table), "quadratic")
        result["spearman"] = spearman(ranks(a, labels), ranks(b, labels))
    return result
