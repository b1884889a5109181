"""The words a report uses for a kappa and for a test's verdict, so that a phrase appears only where
the figure is defined and supports it.

Kappa bands follow Landis & Koch (1977), "The measurement of observer agreement for categorical
data", Biometrics 33(1), 159-174, table on p. 165 (< 0 poor, 0.00-0.20 slight, 0.21-0.40 fair,
0.41-0.60 moderate, 0.61-0.80 substantial, 0.81-1.00 almost perfect), with three readings made
exact: below 0 the raters agree less than chance would make them (their "poor" hides that);
exactly 0 is agreement at the level of chance, none beyond it (their table puts 0 in "slight");
exactly 1 is perfect agreement. Band edges belong to the lower band, as in 0.00-0.20.
"""

from __future__ import annotations

SIGNIFICANCE = 0.05  # a Holm-adjusted p-value below this reads "unlikely to be chance"

_BANDS = ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


def kappa_words(kappa: float | None) -> str:
    """How a kappa reads: "<band> agreement beyond chance", or what an edge case means."""
    if kappa is None:
        return "undefined: one label only, or no items"
    if kappa < 0:
        return "less agreement than chance"
    if kappa == 0:
        return "no agreement beyond chance"
    if kappa == 1:
        return "perfect agreement"
    for bound, word in _BANDS:
        if kappa <= bound:
            return f"{word} agreement beyond chance"
    return "almost perfect agreement beyond chance"


def verdict(adjusted_p: float | None) -> str:
    """How a test reads, from its Holm-adjusted p-value (None: no test was possible)."""
    if adjusted_p is None:
        return "no test possible"
    if adjusted_p < SIGNIFICANCE:
        return "a difference unlikely to be chance"
    return "no significant difference"
