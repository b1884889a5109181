"""The paired test of a difference in agreement between two conditions, on a table worked out by hand."""

from __future__ import annotations

import polars as pl
import pytest
from scipy.stats import binomtest

from evalrun.stats.levels import agreement_difference


def test_agreement_difference_between_conditions() -> None:
    # item -> (a under c1, b under c1, a under c2, b under c2)
    labels = {
        "i1": "ffff", "i2": "ffmm", "i3": "mmfm", "i4": "mmmf", "i5": "fffm", "i6": "ffmf",  # agree under c1
        "i7": "fmff", "i8": "mfmm",  # agree under c2 only
        "i9": "f?ff",  # b unread under c1: not counted
    }
    rows = [{"model": "m", "condition": c, "variant": v, "item_id": i, "label": None if x == "?" else x}
            for i, xs in labels.items() for (c, v), x in zip(
                [("c1", "a"), ("c1", "b"), ("c2", "a"), ("c2", "b")], xs, strict=True)]
    got = agreement_difference(pl.DataFrame(rows), {"model": "m"}, "condition", "a", "b", "c1", "c2")
    # 8 items; c1 agrees on i1-i6 (6/8), c2 on i1, i2, i7, i8 (4/8); difference 2/8
    assert got["items"] == 8
    assert (got["agreement"][0]["count"], got["agreement"][1]["count"]) == (6, 4)
    assert got["difference"]["estimate"] == pytest.approx(0.25, abs=1e-12)
    # agree under c1 only: i3, i4, i5, i6 (4); under c2 only: i7, i8 (2); exact two-sided binomial of 2 in 6
    assert (got["mcnemar"]["b"], got["mcnemar"]["c"]) == (4, 2)
    assert got["mcnemar"]["pvalue"] == pytest.approx(binomtest(2, 6, 0.5).pvalue, abs=1e-12)
