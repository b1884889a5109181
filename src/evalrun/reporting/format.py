"""How a number reads in report.md, compare.md and the figures: one place for the digits, the sign
and the word an undefined figure reads as, so that the same figure reads the same everywhere."""

from __future__ import annotations


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage, `12.5%`; None (no observations) reads `n/a`."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def pp(x: float | None) -> str:
    """A difference of two shares in percentage points, signed: `+12.5`; None reads `n/a`."""
    return "n/a" if x is None else f"{100 * x:+.1f}"


def num(x: float | None, digits: int = 2, signed: bool = False, missing: str = "n/a") -> str:
    """A statistic (kappa, alpha, a p-value) to `digits` decimals, with its sign when `signed`
    (a difference); None reads `missing`."""
    if x is None:
        return missing
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
