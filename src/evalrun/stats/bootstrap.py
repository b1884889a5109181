"""Item-clustered bootstrap: percentile intervals for any statistic over items, and for the paired
difference of two statistics over the same items.

Items are what a report generalises over, so items are resampled with replacement, each carrying
all it holds (every variant's label, every sample, the gold label): samples of one item stay
together, and two statistics compared on the same resampled items give a paired difference.

Reproducible: the resampled items depend only on (number of items, resamples, seed), so every
function here given the same three draws the same resamples, and a report's figures over the same
items share them. A resample where the statistic is undefined (None or NaN: kappa with one label,
a ratio with nothing to divide by) is dropped; the result says how many were used and how many
dropped, and gives no interval when none was usable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .alpha import Level, krippendorff_alpha, reliability_data
from .confusion import labelled, pair_cells, table_of
from .kappa import kappa_estimate

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# item indices drawn per block of resamples: bounds memory (32 MB of int64) for large item counts
_BLOCK_CELLS = 1 << 22

Statistic = Callable[[np.ndarray], float | None]


def resampled_items(n_items: int, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """Blocks of resamples, one row of `n_items` item indices (drawn with replacement) per resample."""
    rng = np.random.default_rng(seed)
    per_block = max(1, _BLOCK_CELLS // max(n_items, 1))
    for start in range(0, resamples, per_block):
        yield rng.integers(0, n_items, size=(min(per_block, resamples - start), n_items))


def _value(x: float | None) -> float:
    return math.nan if x is None else float(x)


def percentile_result(estimate: float | None, draws: np.ndarray, resamples: int, seed: int,
                      level: float) -> dict[str, Any]:
    """A bootstrap's dict: the estimate, the percentile interval of the finite draws (none without any), the
    resamples used and dropped, and whether every usable draw was alike: the one shape every bootstrap of the
    report gives, whatever it resampled."""
    usable = draws[np.isfinite(draws)]
    out: dict[str, Any] = {
        "estimate": None if estimate is None or not math.isfinite(estimate) else float(estimate),
        "ci_low": None, "ci_high": None, "level": level, "method": "percentile",
        "resamples": resamples, "used": int(usable.size), "dropped": int(resamples - usable.size), "seed": seed,
        # every usable resample gave the same value: the bootstrap cannot show any uncertainty here
        # (e.g. perfect agreement), and a zero-width interval must not be read as certainty
        "degenerate": False,
    }
    if usable.size:
        low, high = np.quantile(usable, [(1 - level) / 2, (1 + level) / 2])
        out.update(ci_low=float(low), ci_high=float(high), degenerate=bool(usable.min() == usable.max()))
    return out


def _blocks(n_items: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    # without items there is nothing to resample: every resample is empty (and the statistic undefined)
    if n_items == 0:
        yield np.zeros((resamples, 0), dtype=np.int64)
        return
    yield from resampled_items(n_items, resamples, seed)


def bootstrap(statistic: Statistic, n_items: int, resamples: int = RESAMPLES, seed: int = SEED,
              level: float = LEVEL) -> dict[str, Any]:
    """Percentile interval of `statistic`, which takes an array of item indices (the items of one
    resample, repeats included) and returns a number or None where undefined.

    Returns estimate (on all items), ci_low, ci_high, level, method, resamples, used, dropped,
    seed, degenerate.
    """
    estimate = statistic(np.arange(n_items))
    draws = np.array([_value(statistic(row)) for block in _blocks(n_items, resamples, seed) for row in block])
    return percentile_result(estimate, draws.reshape(resamples), resamples, seed, level)


def bootstrap_difference(statistic_a: Statistic, statistic_b: Statistic, n_items: int, resamples: int = RESAMPLES,
                         seed: int = SEED, level: float = LEVEL) -> dict[str, Any]:
    """Percentile interval of statistic_a - statistic_b, both computed on the same resampled items
    (paired by item); a resample is dropped when either is undefined. Same keys as `bootstrap`."""
    def difference(items: np.ndarray) -> float | None:
        a, b = statistic_a(items), statistic_b(items)
        return None if a is None or b is None else a - b

    return bootstrap(difference, n_items, resamples, seed, level)


def _ratio_draws(numerator: np.ndarray, denominator: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    parts = []
    for block in _blocks(len(numerator), resamples, seed):
        num, den = numerator[block].sum(axis=1), denominator[block].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            parts.append(np.where(den > 0, num / den, math.nan))
    return np.concatenate(parts)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> float | None:
    return float(numerator.sum() / denominator.sum()) if denominator.sum() > 0 else None


def bootstrap_ratio(numerator: ArrayLike, denominator: ArrayLike, resamples: int = RESAMPLES, seed: int = SEED,
                    level: float = LEVEL) -> dict[str, Any]:
    """Percentile interval of sum(numerator) / sum(denominator) over resampled items, vectorised.

    One entry per item: accuracy is (correct, has gold); agreement is (labels equal, both labelled);
    a mean over samples is (sum over the item's samples, number of samples). Same keys as `bootstrap`.
    """
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    draws = _ratio_draws(num, den, resamples, seed)
    return percentile_result(_ratio(num, den), draws, resamples, seed, level)


def bootstrap_ratio_difference(numerator_a: ArrayLike, denominator_a: ArrayLike, numerator_b: ArrayLike,
                               denominator_b: ArrayLike, resamples: int = RESAMPLES, seed: int = SEED,
                               level: float = LEVEL) -> dict[str, Any]:
    """Percentile interval of ratio a - ratio b (as in `bootstrap_ratio`), paired by item: both
    ratios come from the same resampled items, so the arrays must be aligned by item."""
    num_a, den_a = np.asarray(numerator_a, dtype=float), np.asarray(denominator_a, dtype=float)
    num_b, den_b = np.asarray(numerator_b, dtype=float), np.asarray(denominator_b, dtype=float)
    if not len(num_a) == len(den_a) == len(num_b) == len(den_b):
        raise ValueError("the four arrays must have one entry per item, aligned")
    draws = _ratio_draws(num_a, den_a, resamples, seed) - _ratio_draws(num_b, den_b, resamples, seed)
    a, b = _ratio(num_a, den_a), _ratio(num_b, den_b)
    return percentile_result(None if a is None or b is None else a - b, draws, resamples, seed, level)


def kappa_statistic(a: Sequence[str | None], b: Sequence[str | None], labels: Sequence[str]) -> Statistic:
    """Cohen's kappa (over the items both labelled) of the resampled items, for `bootstrap`."""
    cells = pair_cells(a, b, labels)

    def statistic(items: np.ndarray) -> float | None:
        return kappa_estimate(labelled(table_of(cells[items], len(labels))))

    return statistic


def alpha_statistic(columns: Sequence[Sequence[str | None]], labels: Sequence[str],
                    level: Level = "nominal") -> Statistic:
    """Krippendorff's alpha (one column per coder, None = missing) of the resampled items, for `bootstrap`."""
    data = reliability_data(columns, labels)
    domain = range(len(labels))

    def statistic(items: np.ndarray) -> float | None:
        return krippendorff_alpha(data[:, items], level, value_domain=domain)

    return statistic
