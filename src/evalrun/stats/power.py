"""Planning a run: how many items a target interval width or a test's power needs, and the smallest
paired difference a run of a given size could have detected.

Every function is a closed form (or a one-dimensional search over one) with its published source.
The quantities are those the report states: percent agreement (Wilson interval, as `proportion`),
Cohen's kappa (asymptotic interval, as `kappa`) and a paired rate difference tested with McNemar's
exact test (as `paired.mcnemar_exact`). "Width" is always the full width of the 95% (1 - alpha)
interval, high minus low.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom, norm


def z_two_sided(alpha: float) -> float:
    """The standard normal quantile z_{1 - alpha / 2}."""
    return float(norm.ppf(1 - alpha / 2))


def wilson_items(p: float, width: float, alpha: float = 0.05) -> int:
    """Items whose Wilson interval around an observed share `p` is at most `width` wide.

    The Wilson (1927) interval at n items has width W = 2z sqrt(p q n + z^2/4) / (n + z^2), q = 1 - p
    (Newcombe 1998, "Two-sided confidence intervals for the single proportion", method 3). Squaring
    gives a quadratic in n, W^2 n^2 + (2 W^2 z^2 - 4 z^2 p q) n + z^4 (W^2 - 1) = 0, whose larger
    root is taken and rounded up. It plans the width of the interval the report gives; the Wald form
    z^2 p q / (W/2)^2 would ask for no items at all at p = 0 or 1, where rates often lie.
    """
    _check_width(width, 1.0)
    z = z_two_sided(alpha)
    a = width**2
    b = 2 * width**2 * z**2 - 4 * z**2 * p * (1 - p)
    c = z**4 * (width**2 - 1)
    return max(1, math.ceil((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) - 1e-9))


def kappa_unit_variance(kappa: float, prevalence: float) -> float:
    """n times the large-sample variance of Cohen's kappa for two raters of a binary label who give
    it at the same rate `prevalence` (Bloch & Kraemer 1989, eq. for the kappa of two raters with
    common margins):  (1 - k) [ (1 - k)(1 - 2k) + k (2 - k) / (2 p (1 - p)) ].

    It equals the variance of Fleiss, Cohen & Everitt (1969), which the report's kappa interval
    uses, at the table those assumptions imply; it is how a plan is made before any run.
    """
    if not 0 < prevalence < 1:
        raise ValueError("the prevalence must be strictly between 0 and 1")
    q = prevalence * (1 - prevalence)
    return (1 - kappa) * ((1 - kappa) * (1 - 2 * kappa) + kappa * (2 - kappa) / (2 * q))


def kappa_items(unit_variance: float, width: float, alpha: float = 0.05) -> int:
    """Items whose asymptotic kappa interval kappa +- z se is at most `width` wide, where
    se = sqrt(unit_variance / n): the large-sample variance of kappa falls as 1/n with the table's
    proportions held (Fleiss, Cohen & Everitt 1969), so n = unit_variance (2z / W)^2.

    From a run, unit_variance is n_run * se_run^2, the run's own estimate: the plan assumes the next
    run's table has the same proportions. Clipping to [-1, 1] is ignored (it only narrows).
    """
    _check_width(width, 2.0)
    z = z_two_sided(alpha)
    return max(1, math.ceil(unit_variance * (2 * z / width) ** 2 - 1e-9))


def paired_difference_items(discordance: float, difference: float, width: float, alpha: float = 0.05) -> int:
    """Items whose interval on a paired rate difference d = p10 - p01 is at most `width` wide, with
    discordance psi = p10 + p01 (the share of items on which the two sides differ).

    The difference of two paired proportions has variance (psi - d^2) / n (Agresti 2002, Categorical
    Data Analysis, sec. 10.1; the Wald interval, method 1 of Newcombe 1998, "Improved confidence
    intervals for the difference between binomial proportions based on paired data"), so
    n = z^2 (psi - d^2) / (W / 2)^2.
    """
    _check_width(width, 2.0)
    _check_paired(discordance, difference)
    z = z_two_sided(alpha)
    return max(1, math.ceil(z * z * (discordance - difference**2) / (width / 2) ** 2 - 1e-9))


def connor_items(discordance: float, difference: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Connor's (1987) sample size for McNemar's test of paired proportions, normal approximation:
    n = [z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - d^2)]^2 / d^2 (as Miettinen 1968 to first
    order). `mcnemar_items` starts its exact search here."""
    _check_paired(discordance, difference)
    if difference == 0:
        raise ValueError("a difference of 0 cannot be detected")
    za, zb = z_two_sided(alpha), float(norm.ppf(power))
    return math.ceil((za * math.sqrt(discordance) + zb * math.sqrt(discordance - difference**2)) ** 2
                     / difference**2)


def _rejecting(alpha: float, m: np.ndarray) -> np.ndarray:
    """For each number m of discordant pairs, how many counts k = 0, 1, ... have the two-sided exact
    binomial p-value 2 P(X <= k) <= alpha (X ~ Bin(m, 1/2)): the test rejects when min(b, c) is
    below that number.

    For p = 1/2 the two-sided binomial p-value (scipy's, as `mcnemar_exact` takes it) is exactly
    min(1, 2 P(X <= min(b, c))), since the distribution is symmetric.
    """
    # start from the normal approximation (m - z sqrt(m)) / 2 and step to the exact count: scipy's
    # binom.ppf would give it directly, but is a hundred times slower over the m of a large plan
    count = np.maximum(0, np.floor((m - z_two_sided(alpha) * np.sqrt(m)) / 2)).astype(np.int64)
    while True:
        over = (count > 0) & (2 * binom.cdf(count - 1, m, 0.5) > alpha)  # the last counted k does not reject
        under = ~over & (2 * binom.cdf(count, m, 0.5) <= alpha)  # the next k rejects too
        if not (over.any() or under.any()):
            return count
        count = count - over + under


def mcnemar_power(n: int, discordance: float, difference: float, alpha: float = 0.05) -> float:
    """Power of McNemar's exact (conditional binomial) test on n items with discordance psi and
    difference d: the sum over the number m of discordant items (Bin(n, psi)) of the binomial test's
    power given m, at p = (psi + d) / 2psi (Lachin 1992, "Power and sample size evaluation for the
    McNemar test", exact unconditional power of the conditional test). It is the power of the test
    the report runs, which the normal formulas overstate a little: the exact test is conservative.

    The sum runs over m within 12 standard deviations of n psi, where all but ~1e-30 of Bin(n, psi)
    lies, so that planning for a tiny difference (millions of items) stays quick.
    """
    _check_paired(discordance, difference)
    if n <= 0 or discordance == 0:
        return 0.0
    spread = 12 * math.sqrt(n * discordance * (1 - discordance)) + 1
    m = np.arange(max(0, math.floor(n * discordance - spread)), min(n, math.ceil(n * discordance + spread)) + 1)
    p = (discordance + abs(difference)) / (2 * discordance)
    k = _rejecting(alpha, m)  # reject when min(b, c) < k
    # P(min(b, c) < k) with b ~ Bin(m, p): P(b <= k - 1) + P(b >= m - k + 1), the two tails disjoint
    # because k - 1 < m / 2 wherever k > 0
    tails = np.where(k > 0, binom.cdf(k - 1, m, p) + binom.sf(m - k, m, p), 0.0)
    return float(np.sum(binom.pmf(m, n, discordance) * tails))


def mcnemar_items(discordance: float, difference: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """The smallest number of items at which McNemar's exact test reaches `power` (`mcnemar_power`),
    found by bisection around Connor's (1987) approximation.

    Bisection takes the power as non-decreasing in n. The conditional test's power given m discordant
    items is a sawtooth in m, but averaged over m ~ Bin(n, psi) it rises smoothly with n (no decrease
    for n up to 400 at psi, d = 0.3, 0.1; 0.1, 0.05; 0.5, 0.3; 0.05, 0.04 when this was written).
    """
    high = max(1, connor_items(discordance, difference, power, alpha))
    while mcnemar_power(high, discordance, difference, alpha) < power:
        high *= 2  # the exact test is conservative, so Connor's n is often a little short
    low = 0  # power 0 without items
    while high - low > 1:
        mid = (low + high) // 2
        if mcnemar_power(mid, discordance, difference, alpha) >= power:
            high = mid
        else:
            low = mid
    return high


def minimum_detectable_difference(discordant_b: int, discordant_c: int, n: int, power: float = 0.8,
                                  alpha: float = 0.05) -> float | None:
    """The smallest paired difference |p10 - p01| that McNemar's exact test on `n` items would detect
    with `power` (two-sided `alpha`), the discordance psi held at the run's (b + c) / n.

    None when there is no such difference: no item or no discordant pair, or even a difference of
    psi (every discordant item one way) leaves the power below `power`. Power rises with |d| for a
    fixed psi (the rejection region is fixed and symmetric), so bisection finds it. The report can
    state this beside a non-significant McNemar test, from the test's own b, c and n.
    """
    if n <= 0 or discordant_b + discordant_c == 0:
        return None
    return detectable_difference((discordant_b + discordant_c) / n, n, power, alpha)


def detectable_difference(discordance: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float | None:
    """`minimum_detectable_difference` for an assumed discordance psi rather than a run's counts."""
    if n <= 0 or discordance <= 0 or mcnemar_power(n, discordance, discordance, alpha) < power:
        return None
    low, high = 0.0, discordance
    while high - low > 1e-6:
        mid = (low + high) / 2
        if mcnemar_power(n, discordance, mid, alpha) >= power:
            high = mid
        else:
            low = mid
    return high


def _check_width(width: float, most: float) -> None:
    if not 0 < width < most:
        raise ValueError(f"the target width must be between 0 and {most:g}, not {width:g}")


def _check_paired(discordance: float, difference: float) -> None:
    if not 0 <= abs(difference) <= discordance <= 1:
        raise ValueError(f"need 0 <= |difference| <= discordance <= 1; got {difference:g} and {discordance:g}")
