"""A proportion with its Wilson score interval: accuracy, agreement, unparsed and first-position rates.

Wilson's interval (Wilson 1927), because it stays inside [0, 1] and keeps its coverage near 0 and 1,
where the rates of a model's answers often lie. Its closed form is written here, in the operations and
order of statsmodels' `proportion_confint(method="wilson")` (tests hold the two equal to the last bit),
so that report.md, rendered from memoised statistics, can put it on a count without importing
statsmodels (reporting/memo.py).
"""

from __future__ import annotations

import math
from typing import Any

from .numbers import finite

# the normal quantile of a two-sided 95% interval: scipy.stats.norm.isf(0.025), to the last bit
Z95 = 1.9599639845400545


def wilson_interval(count: int, n: int) -> tuple[float, float] | None:
    """Wilson's 95% score interval of count / n, clipped to [0, 1]; None without observations:
    (q + z^2/2n -+ z sqrt(q(1-q)/n + z^2/4n^2)) / (1 + z^2/n)."""
    if n <= 0:
        return None
    q, z2 = count / n, Z95**2
    denominator = 1 + z2 / n
    centre = (q + z2 / (2 * n)) / denominator
    spread = Z95 * math.sqrt(q * (1.0 - q) / n + z2 / (4.0 * n**2)) / denominator
    return min(max(centre - spread, 0.0), 1.0), min(max(centre + spread, 0.0), 1.0)


def wilson(count: int, n: int) -> dict[str, Any]:
    """`count` of `n` with its Wilson 95% interval: count, n, estimate, ci_low, ci_high.

    Edge rule: without observations (n == 0) estimate and interval are None, never 0 or NaN.
    """
    bounds = wilson_interval(count, n)
    if bounds is None:
        return {"count": count, "n": n, "estimate": None, "ci_low": None, "ci_high": None}
    low, high = bounds
    return {"count": count, "n": n, "estimate": count / n, "ci_low": finite(low), "ci_high": finite(high)}
