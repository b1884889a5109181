"""The item-clustered bootstrap (evalrun.stats.bootstrap): reproducibility, agreement with the
large-sample theory it approximates, and with Miller (2024)'s clustered standard error.

Sources:
* Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13: the percentile interval;
  for a proportion p of n independent items it approaches p -+ 1.96 sqrt(p (1 - p) / n).
* Miller (2024), "Adding Error Bars to Evals", arXiv:2411.00640, appendix A: the clustered standard
  error of a mean over samples grouped by item, which resampling whole items estimates as well.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalrun.stats import bootstrap as bs
from evalrun.stats.alpha import krippendorff_alpha, reliability_data
from evalrun.stats.bootstrap import (
    alpha_statistic,
    bootstrap,
    bootstrap_difference,
    bootstrap_ratio,
    bootstrap_ratio_difference,
    kappa_statistic,
    resampled_items,
)
from evalrun.stats.clustered import clustered_mean
from evalrun.stats.confusion import confusion
from evalrun.stats.kappa import cohen_kappa

LABELS = ["x", "y", "z"]


def _labels(n: int, seed: int, unparsed: float = 0.05, agree: float = 0.7) -> tuple[list[str | None], ...]:
    rng = np.random.default_rng(seed)
    a = [None if rng.random() < unparsed else LABELS[i] for i in rng.integers(0, 3, n)]
    b = [x if x is not None and rng.random() < agree else LABELS[rng.integers(0, 3)] for x in a]
    return a, b


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_a_fixed_seed_gives_the_same_interval_twice(n: int, seed: int) -> None:
    a, b = _labels(n, seed % 1000)
    first = bootstrap(kappa_statistic(a, b, LABELS), n, resamples=200, seed=seed)
    second = bootstrap(kappa_statistic(a, b, LABELS), n, resamples=200, seed=seed)
    assert first == second
    values = np.array([x == y for x, y in zip(a, b, strict=True)], dtype=float)
    assert bootstrap_ratio(values, np.ones(n), 200, seed) == bootstrap_ratio(values, np.ones(n), 200, seed)


def test_the_result_states_how_it_was_made() -> None:
    result = bootstrap_ratio([1, 0, 1, 1], [1, 1, 1, 1], resamples=500, seed=7, level=0.9)
    assert {k: result[k] for k in ("level", "method", "resamples", "seed")} == {
        "level": 0.9, "method": "percentile", "resamples": 500, "seed": 7}
    assert result["used"] + result["dropped"] == 500
    assert result["estimate"] == 0.75


def test_percentile_interval_of_a_proportion_approaches_the_normal_one() -> None:
    # 1000 independent items, 300 correct: the bootstrap distribution of the mean is close to
    # normal with sd sqrt(0.3 * 0.7 / 1000) = 0.0145; with 4000 resamples the percentile limits sit
    # within about 0.003 of 0.3 -+ 1.96 * 0.0145.
    values = np.array([1] * 300 + [0] * 700)
    result = bootstrap_ratio(values, np.ones(1000), resamples=4000, seed=1)
    half = 1.959963984540054 * math.sqrt(0.3 * 0.7 / 1000)
    assert result["ci_low"] == pytest.approx(0.3 - half, abs=0.003)
    assert result["ci_high"] == pytest.approx(0.3 + half, abs=0.003)


def test_resampling_items_matches_the_clustered_standard_error() -> None:
    # 300 items x 5 samples, samples of an item strongly alike. Resampling items must reproduce
    # Miller's clustered standard error (appendix A), not the far smaller one that treats the
    # 1500 samples as independent.
    rng = np.random.default_rng(3)
    item_rate = rng.beta(0.5, 0.5, 300)
    samples = (rng.random((300, 5)) < item_rate[:, None]).astype(float)
    clustered = clustered_mean(samples.ravel(), np.repeat(np.arange(300), 5).tolist())
    result = bootstrap_ratio(samples.sum(axis=1), np.full(300, 5.0), resamples=4000, seed=2)
    bootstrap_se = (result["ci_high"] - result["ci_low"]) / (2 * 1.959963984540054)
    naive_se = samples.std() / math.sqrt(samples.size)
    assert bootstrap_se == pytest.approx(clustered["se"], rel=0.08)
    assert bootstrap_se > 1.5 * naive_se


def test_generic_and_vectorised_paths_draw_the_same_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    # small blocks, so that several blocks are drawn: the stream of resamples must not depend on it
    monkeypatch.setattr(bs, "_BLOCK_CELLS", 64)
    rng = np.random.default_rng(5)
    num, den = rng.integers(0, 4, 30).astype(float), rng.integers(1, 5, 30).astype(float)
    vectorised = bootstrap_ratio(num, den, resamples=300, seed=11)
    generic = bootstrap(lambda items: float(num[items].sum() / den[items].sum()), 30, resamples=300, seed=11)
    assert vectorised == pytest.approx(generic)
    blocks = list(resampled_items(30, 300, 11))
    assert len(blocks) > 1 and sum(len(block) for block in blocks) == 300
    assert all(block.shape[1] == 30 and block.min() >= 0 and block.max() < 30 for block in blocks)


def test_paired_difference_uses_the_same_items_for_both() -> None:
    a, b = _labels(80, 4)
    kappa = kappa_statistic(a, b, LABELS)
    same = bootstrap_difference(kappa, kappa, 80, resamples=300, seed=9)
    assert same["estimate"] == 0 and (same["ci_low"], same["ci_high"]) == (0, 0) and same["degenerate"]
    # ratio form: two variants' accuracies on the same items; equals the generic route over closures
    right_a = np.array([x == "x" for x in a], dtype=float)
    right_b = np.array([y == "x" for y in b], dtype=float)
    ones = np.ones(80)
    vectorised = bootstrap_ratio_difference(right_a, ones, right_b, ones, resamples=300, seed=9)
    generic = bootstrap_difference(lambda i: float(right_a[i].mean()), lambda i: float(right_b[i].mean()), 80,
                                   resamples=300, seed=9)
    assert vectorised == pytest.approx(generic)
    assert vectorised["estimate"] == pytest.approx(right_a.mean() - right_b.mean())


def test_undefined_resamples_are_dropped_and_counted() -> None:
    # 5 items agreeing perfectly, one of them on label y: a resample without that item has one
    # label only and no kappa. P(item missing from a resample) = (4/5)^5 = 0.328, so about 328 of
    # 1000 resamples are dropped (binomial sd 15); the rest all give kappa 1.
    result = bootstrap(kappa_statistic(["x"] * 4 + ["y"], ["x"] * 4 + ["y"], LABELS), 5, resamples=1000, seed=0)
    assert result["used"] + result["dropped"] == 1000
    assert abs(result["dropped"] - 1000 * 0.8**5) < 4 * math.sqrt(1000 * 0.328 * 0.672)
    # every usable resample says 1: the interval [1, 1] is flagged, as it shows no uncertainty at all
    assert (result["ci_low"], result["ci_high"], result["degenerate"]) == (1.0, 1.0, True)


def test_no_items_or_nothing_defined_gives_no_interval() -> None:
    empty = bootstrap_ratio([], [], resamples=100, seed=0)
    assert (empty["estimate"], empty["ci_low"], empty["used"], empty["dropped"]) == (None, None, 0, 100)
    one_label = bootstrap(kappa_statistic(["x"] * 6, ["x"] * 6, LABELS), 6, resamples=100)
    assert one_label["estimate"] is None and one_label["ci_low"] is None and one_label["used"] == 0
    with pytest.raises(ValueError, match="aligned"):
        bootstrap_ratio_difference([1], [1], [1, 2], [1, 2])


def test_statistics_are_the_plain_functions_on_the_resampled_items() -> None:
    a, b = _labels(40, 8)
    items = np.random.default_rng(0).integers(0, 40, 40)
    ra, rb = [a[i] for i in items], [b[i] for i in items]
    assert kappa_statistic(a, b, LABELS)(items) == pytest.approx(
        cohen_kappa(confusion(ra, rb, LABELS)[:3, :3])["kappa"], abs=1e-12)
    assert alpha_statistic([a, b], LABELS, "ordinal")(items) == pytest.approx(
        krippendorff_alpha(reliability_data([ra, rb], LABELS), "ordinal", value_domain=[0, 1, 2]), abs=1e-12)


def test_fast_enough_for_a_report() -> None:
    # targets from issue 10's brief: proportions, B = 1000 over 1000 items, well under a second;
    # kappa and alpha, B = 1000 over 500 items and 2 raters, under 2 s each (2 shared cores here)
    values = (np.random.default_rng(0).random(1000) < 0.7).astype(float)
    start = time.perf_counter()
    bootstrap_ratio(values, np.ones(1000), resamples=1000)
    assert time.perf_counter() - start < 1.0
    a, b = _labels(500, 1)
    for statistic in (kappa_statistic(a, b, LABELS), alpha_statistic([a, b], LABELS)):
        start = time.perf_counter()
        bootstrap(statistic, 500, resamples=1000)
        assert time.perf_counter() - start < 2.0
