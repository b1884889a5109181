"""What a reviewer asks of two aligned label vectors: intervals by items, paired tests, differences.

One function, `paired`, serves every comparison a report makes (two variants of a model, one
variant under two conditions, two models on one variant, two paraphrases): it takes the two
levels' item-level labels, aligned by item, and the gold labels, and returns item-clustered
bootstrap intervals (seeded, so a report is reproducible), marginal-homogeneity tests on the
labels themselves (which need no gold), and, with gold, McNemar's exact test on correctness and
the paired difference in accuracy. Holm's correction over a whole report is `adjust`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .agreement import agreeing, ranks, spearman
from .alpha import label_alpha
from .bootstrap import (
    RESAMPLES,
    SEED,
    alpha_statistic,
    bootstrap,
    bootstrap_ratio,
    bootstrap_ratio_difference,
    kappa_statistic,
)
from .confusion import confusion, labelled
from .kappa import weighted_kappa
from .numbers import finite
from .paired import holm, mcnemar_exact, stuart_maxwell, wilcoxon_paired
from .power import minimum_detectable_difference

Label = str | None


def correct(labels: Sequence[Label], gold: Sequence[Label]) -> tuple[np.ndarray, np.ndarray]:
    """Per item: right (1/0), and whether it counts (has gold); unparsed counts as wrong."""
    has = np.array([g is not None for g in gold], dtype=float)
    right = np.array([g is not None and x == g for x, g in zip(labels, gold, strict=True)], dtype=float)
    return right, has


def correctness_test(la: Sequence[Label], lb: Sequence[Label], gold: Sequence[Label]) -> dict[str, Any]:
    """McNemar's exact test of the two levels' paired correctness, over the items with gold (an
    unparsed item is wrong), with the 2 x 2 table it reads (rows: a right / a wrong; columns: b
    right / b wrong). Edge rules are `mcnemar_exact`'s: no gold item, no test (p None); no
    discordant pair, p = 1; the statistic is None whenever p is not computed."""
    right_a, has = correct(la, gold)
    right_b, _ = correct(lb, gold)
    a, b = right_a[has == 1].astype(bool), right_b[has == 1].astype(bool)
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    test = mcnemar_exact(table[0][1], table[1][0], len(a))
    return {"test": "McNemar exact (correctness)", "table": table,
            "a_only_correct": table[0][1], "b_only_correct": table[1][0],
            "statistic": None if test is None else finite(test["statistic"]),
            "pvalue": None if test is None else test["pvalue"]}


def marginal_test(la: Sequence[Label], lb: Sequence[Label], labels: Sequence[str]) -> dict[str, Any] | None:
    """Do the two levels give the labels at different rates? Over items both labelled: McNemar's
    exact test on the two off-diagonal cells for two labels, Stuart-Maxwell for more."""
    table = labelled(confusion(la, lb, labels))
    n = int(table.sum())
    if len(labels) == 2:
        result = mcnemar_exact(int(table[0, 1]), int(table[1, 0]), n)
        return None if result is None else {"test": "McNemar exact (labels)", **result}
    result = stuart_maxwell(table)
    return None if result is None else {"test": "Stuart-Maxwell", **result}


def ordinal(la: Sequence[Label], lb: Sequence[Label], labels: Sequence[str]) -> dict[str, Any]:
    """For ordered labels (listed lowest first): quadratic-weighted kappa, Spearman's correlation and
    ordinal alpha on the labels' ranks, and Wilcoxon's signed-rank test of whether one level reads higher."""
    rank_a, rank_b = ranks(la, labels), ranks(lb, labels)
    wilcoxon = wilcoxon_paired(rank_a, rank_b)
    return {"weighted_kappa": weighted_kappa(labelled(confusion(la, lb, labels)), "quadratic"),
            # a test like the others: its p joins the report's Holm family (see `adjust`)
            "spearman": {"test": "Spearman's rho (label ranks)", **spearman(rank_a, rank_b)},
            "krippendorff_alpha_ordinal": label_alpha([la, lb], labels, "ordinal"),
            "wilcoxon": None if wilcoxon is None else {"test": "Wilcoxon signed-rank (label ranks)", **wilcoxon}}


def paired(la: Sequence[Label], lb: Sequence[Label], gold: Sequence[Label] | None, labels: Sequence[str],
           resamples: int = RESAMPLES, seed: int = SEED, ordered: bool = False) -> dict[str, Any]:
    """Everything a paired comparison of two levels reports, items aligned across the vectors (with
    `ordered` labels, the scale statistics of `ordinal` too)."""
    n = len(la)
    same, both = agreeing(la, lb)
    out: dict[str, Any] = {
        "bootstrap": {
            "agreement": bootstrap_ratio(same, both, resamples, seed),
            "cohen_kappa": bootstrap(kappa_statistic(la, lb, labels), n, resamples, seed),
            "krippendorff_alpha": bootstrap(alpha_statistic([la, lb], labels), n, resamples, seed),
        },
        "label_rates_differ": marginal_test(la, lb, labels),
    }
    if ordered:
        out["ordinal"] = ordinal(la, lb, labels)
    if gold is not None:
        right_a, has = correct(la, gold)
        right_b, _ = correct(lb, gold)
        out["accuracy_difference"] = bootstrap_ratio_difference(right_a, has, right_b, has, resamples, seed)
    return out


def accuracy_interval(labels: Sequence[Label], gold: Sequence[Label], resamples: int = RESAMPLES,
                      seed: int = SEED) -> dict[str, Any]:
    right, has = correct(labels, gold)
    return bootstrap_ratio(right, has, resamples, seed)


def rate_interval(labels: Sequence[Label], label: str, resamples: int = RESAMPLES, seed: int = SEED
                  ) -> dict[str, Any]:
    """The share of labelled items given `label`, with its bootstrap interval by items."""
    given = np.array([x == label for x in labels], dtype=float)
    read = np.array([x is not None for x in labels], dtype=float)
    return bootstrap_ratio(given, read, resamples, seed)


def _tests(node: Any, found: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        if "pvalue" in node and "test" in node:
            found.append(node)
        for value in node.values():
            _tests(value, found)
    elif isinstance(node, list):
        for value in node:
            _tests(value, found)


def detectable(statistics: dict[str, Any]) -> None:
    """Writes `minimum_detectable` beside every McNemar test in a report's statistics: the smallest
    paired difference (a share of the test's items) its exact test would detect with 80% power at
    two-sided 0.05, from the test's own discordant counts (`power.minimum_detectable_difference`;
    None where none would be). Computed here, with the statistics, because the report is rendered
    again from memoised statistics without importing scipy (see reporting/memo.py)."""
    found: list[dict[str, Any]] = []
    _tests(statistics, found)
    for test in found:
        if "a_only_correct" in test:  # on correctness: b and c with the 2 x 2 table's items
            b, c, n = test["a_only_correct"], test["b_only_correct"], sum(map(sum, test["table"]))
        elif str(test["test"]).startswith("McNemar") and "b" in test:
            b, c, n = test["b"], test["c"], test["n"]
        else:
            continue
        test["minimum_detectable"] = minimum_detectable_difference(b, c, n)


def adjust(statistics: dict[str, Any], exploratory: str = "slices") -> dict[str, Any]:
    """Holm's correction over every test in a report's statistics (each a dict with `test` and
    `pvalue`): writes `pvalue_holm` beside each, and returns the family's description. The tests
    under `exploratory` (the `slices:`, looked at after the fact) are a family of their own, so that
    slicing the data neither dilutes the planned tests nor borrows their power; its description is
    the returned dict's `exploratory`."""
    planned = {k: v for k, v in statistics.items() if k != exploratory}
    out = _holm(planned)
    if exploratory in statistics:
        out["exploratory"] = {"of": exploratory, **_holm(statistics[exploratory])}
    return out


def _holm(statistics: Any) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    _tests(statistics, found)
    adjusted = holm([t["pvalue"] for t in found])
    for test, q in zip(found, adjusted, strict=True):
        test["pvalue_holm"] = q
    return {"correction": "Holm", "tests": sum(t["pvalue"] is not None for t in found)}
