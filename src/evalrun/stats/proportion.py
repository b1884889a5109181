"""A proportion with its Wilson score interval: accuracy, agreement, unparsed and first-position rates.

Wilson's interval (Wilson 1927), as statsmodels' `proportion_confint(method="wilson")` computes it,
because it stays inside [0, 1] and keeps its coverage near 0 and 1, where the rates of a model's
answers often lie.
"""

from __future__ import annotations

from typing import Any

from statsmodels.stats.proportion import proportion_confint

from .numbers import finite


def wilson(count: int, n: int) -> dict[str, Any]:
    """`count` of `n` with its Wilson 95% interval: count, n, estimate, ci_low, ci_high.

    Edge rule: without observations (n == 0) estimate and interval are None, never 0 or NaN.
    """
    if n == 0:
        return {"count": count, "n": n, "estimate": None, "ci_low": None, "ci_high": None}
    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    return {"count": count, "n": n, "estimate": count / n, "ci_low": finite(low), "ci_high": finite(high)}
