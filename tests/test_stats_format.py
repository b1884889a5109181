"""The one way a number reads in report.md, compare.md and the figures (reporting/format.py)."""

from __future__ import annotations

from evalrun.reporting.format import num, pct, pp


def test_a_share_reads_as_a_percentage() -> None:
    assert pct(0.125) == "12.5%"
    assert pct(1 / 3) == "33.3%"
    assert pct(0.876, 0) == "88%"  # the figures' labels are whole percentages
    assert pct(None) == "n/a"


def test_a_difference_of_shares_reads_in_signed_points() -> None:
    assert pp(0.125) == "+12.5"
    assert pp(-0.05) == "-5.0"
    assert pp(0.0) == "+0.0"
    assert pp(None) == "n/a"


def test_a_statistic_reads_to_two_decimals_unless_told() -> None:
    assert num(0.4) == "0.40"
    assert num(0.04123, 3) == "0.041"
    assert num(-0.083, signed=True) == "-0.08"
    assert num(0.5, signed=True) == "+0.50"
    assert num(None) == "n/a"
    assert num(None, missing="undefined") == "undefined"  # compare.md's word for a kappa without one
