"""Two levels of one axis (two variants, two conditions, two models, two readers, two wordings) compared
item by item, within the other axes' levels: agreement, kappa, alpha, confusion and the paired tests
(`compare_levels`); for a crossed axis, the effect of moving from one level to the other label by label
(`label_effects`), whether the two levels sent the same requests and so agree by construction
(`same_requests`, such a pair is listed apart and not tested), and whether a pair of variants agrees more
at one level than at another (`agreement_difference`). `summary` places what these return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ..extract import UNPARSED
from .agreement import agreement
from .bootstrap import bootstrap_ratio_difference
from .grouping import breakdown
from .grouping import where as _where
from .inference import correctness_test, paired
from .items import collect
from .paired import mcnemar_exact
from .proportion import wilson


def _paired(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, *beside: str) -> pl.DataFrame:
    """The items asked at both levels `a` and `b` of `axis` within `where`, in level a's order: item_id, label
    (at a), the columns `beside` (at a) and label_b (at b)."""
    rows = _where(items, where)
    left = rows.filter(pl.col(axis) == a).select("item_id", "label", *beside)
    right = rows.filter(pl.col(axis) == b).select("item_id", pl.col("label").alias("label_b"))
    return left.join(right, on="item_id", how="inner", maintain_order="left")


def compare_levels(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, labels: Sequence[str],
                   has_gold: bool, ordered: bool = False) -> dict[str, object]:
    """Two levels of one axis (two variants, two conditions, ...) compared item by item, within `where`
    (the other axes' levels): agreement, kappa, alpha, confusion and, with gold, McNemar's test."""
    joined = _paired(items, where, axis, a, b, "gold")
    la, lb = joined["label"].to_list(), joined["label_b"].to_list()

    gold = joined["gold"].to_list() if has_gold else None
    found = agreement(la, lb, labels)
    result: dict[str, object] = {
        **where, "a": a, "b": b,
        "items": joined.height,
        "both_labelled": found["n_both"],
        "agreement": found["percent"],
        "cohen_kappa": found["kappa"],
        "krippendorff_alpha": found["alpha"],
        "confusion": {"rows": a, "cols": b, "categories": [*labels, UNPARSED], "counts": found["confusion"]["counts"]},
    }
    if gold is not None:
        result["mcnemar"] = correctness_test(la, lb, gold)
    result.update(paired(la, lb, gold, labels, ordered=ordered))
    return result


def label_effects(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, labels: Sequence[str]
                  ) -> list[dict[str, Any]]:
    """The effect of moving from level `a` to level `b` of an axis, label by label, within `where`, over the
    items labelled at both levels: each label's rate at each level (Wilson), the paired difference a - b
    in its share (item-clustered bootstrap) and, with three labels or more, McNemar's exact test of that
    label's rate. With two labels the test of either label's rate is `label_rates_differ` (McNemar on the
    labels, the same items and the same discordant pairs), which is not repeated here so that the Holm
    family counts it once."""
    joined = _paired(items, where, axis, a, b).drop_nulls(["label", "label_b"])
    la, lb = joined["label"].to_numpy(), joined["label_b"].to_numpy()
    n, ones = joined.height, np.ones(joined.height)
    out = []
    for label in labels:
        x, y = la == label, lb == label
        entry: dict[str, Any] = {"label": label, "items": n, "a": wilson(int(x.sum()), n), "b": wilson(int(y.sum()), n),
                                 "difference": bootstrap_ratio_difference(x, ones, y, ones)}
        if len(labels) > 2:
            test = mcnemar_exact(int((x & ~y).sum()), int((~x & y).sum()), n)
            entry["mcnemar"] = None if test is None else {"test": f"McNemar exact (rate of '{label}')", **test}
        out.append(entry)
    return out


def same_requests(responses: pl.LazyFrame, where: dict[str, Any], axis: str, a: str, b: str) -> bool:
    """Whether levels `a` and `b` of `axis` sent the very same requests within `where` (a variant), and got the
    same answers: every item has the same request keys (results' `key`) at both, each answered, with the same
    labels. Then the store answered the second level with the first one's answers (the variant's prompt does not
    use the axis), and the two agree by construction. The same key alone is not enough: a request that failed
    (a model entry without its API key) or was sent afresh has answers of its own."""
    if "key" not in responses.collect_schema():  # a table written before requests were keyed
        return False
    rows = collect(_where(responses, where).filter(pl.col(axis).is_in([a, b]))
                   .select(axis, "item_id", "key", "label", "error_class"))
    if rows["error_class"].null_count() < rows.height:
        return False
    answers = [set(rows.filter(pl.col(axis) == level).select("item_id", "key", "label").rows()) for level in (a, b)]
    return bool(answers[0]) and answers[0] == answers[1]


def agreement_difference(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, c1: str, c2: str
                         ) -> dict[str, Any]:
    """Does a pair of variants agree more at one level of a crossed axis (a condition) than at another, within
    `where` (the other crossed axes' levels)? Over the items both variants labelled at both levels: each
    level's agreement, the paired difference (bootstrap by items) and McNemar's exact test on the items that
    agree at one level only."""
    rows = _where(items, where).filter(pl.col("variant").is_in([a, b]) & pl.col(axis).is_in([c1, c2])
                                       & pl.col("label").is_not_null())
    keyed = rows.with_columns(pl.concat_str([axis, "variant"], separator="\x1f").alias("cell"))
    wide = keyed.pivot("cell", index="item_id", values="label").drop_nulls()
    columns = {(c, v): f"{c}\x1f{v}" for c in (c1, c2) for v in (a, b)}
    if wide.is_empty() or not all(name in wide.columns for name in columns.values()):
        first = second = np.zeros(0)
    else:
        first = (wide[columns[c1, a]] == wide[columns[c1, b]]).to_numpy().astype(float)
        second = (wide[columns[c2, a]] == wide[columns[c2, b]]).to_numpy().astype(float)
    n = len(first)
    only_first, only_second = int((first > second).sum()), int((second > first).sum())
    test = mcnemar_exact(only_first, only_second, n)
    ones = np.ones(n)
    return {**where, "a": a, "b": b, breakdown(axis): [c1, c2], "items": n,
            "agreement": [wilson(int(first.sum()), n), wilson(int(second.sum()), n)],
            "difference": bootstrap_ratio_difference(first, ones, second, ones),
            "mcnemar": None if test is None else {"test": f"McNemar exact (agreement under each {axis})", **test}}
