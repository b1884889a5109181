"""JSON-safe numbers: the one rule by which an undefined statistic (NaN, an infinity) becomes None.

summary.json is strict JSON, which has no NaN; every statistic that can come out undefined from
numpy, scipy or statsmodels passes through `finite` before it is written.
"""

from __future__ import annotations

import math

import numpy as np


def finite(x: float | np.floating | None) -> float | None:
    """`x` as a float, or None where it is None, NaN or infinite (an undefined statistic)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
