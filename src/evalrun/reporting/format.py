"""How a number reads in report.md, compare.md and the figures: one place for the digits, the sign
and the word an undefined figure reads as, so that the same figure reads the same everywhere."""

from __future__ import annotations


def counted(n: int, word: str) -> str:
    """"1 item", "3 items": a count with its noun."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage, `12.5%`; None (no observations) reads `n/a`."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def share(count: int, of: int) -> str:
    """`count` of `of` items as a share, `66.7%` (pct's digits); none to share among reads `n/a`. The one
    way report.md and compare.md print "items labelled X", whose `of` in both is the items with a label
    read (an unparsed item is no item labelled anything), as both reports say in words."""
    return pct(count / of) if of else "n/a"


def pp(x: float | None) -> str:
    """A difference of two shares in percentage points, signed: `+12.5` (`points` names the unit in
    prose); None reads `n/a`."""
    return "n/a" if x is None else f"{100 * x:+.1f}"


def num(x: float | None, digits: int = 2, signed: bool = False, missing: str = "n/a") -> str:
    """A statistic (kappa, alpha, a p-value) to `digits` decimals, with its sign when `signed`
    (a difference); None reads `missing`."""
    if x is None:
        return missing
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def points(x: float | None) -> str:
    """A difference of two shares as it reads in prose, `+27.0 points`: a difference of two
    percentages is not itself a percentage of anything."""
    return "n/a" if x is None else f"{pp(x)} points"


def p_value(x: float | None, name: str = "p", equals: str = " = ") -> str:
    """A p-value to three decimals, `p = 0.523`; below 0.001 `p < 0.001`, since three decimals would
    print `0.000`, which reads as impossible rather than small. None reads `n/a`."""
    if x is None:
        return f"{name}{equals}n/a"
    if x < 0.001:
        return f"{name} < 0.001"
    return f"{name}{equals}{x:.3f}"
