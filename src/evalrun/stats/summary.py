"""Statistics: from labelled responses to distributions, accuracy and agreement.

Everything here is computed by statsmodels, scipy or `krippendorff`; this module
only arranges the tables they take. Conventions (also in the README):

* The item-level label of a variant is the modal label over its samples, among
  samples that produced a label. A tie for the mode, or no labelled sample at all,
  makes the item `unparsed` for that variant.
* Accuracy is item-level, over items that have a gold label; an unparsed item
  counts as incorrect (so a model cannot gain accuracy by refusing).
* Agreement (percent, Cohen's kappa) is over items labelled by both variants;
  Krippendorff's alpha uses every item, with unparsed as missing data.
* McNemar's exact test compares the two variants' paired correctness on gold items.
* Intervals are 95%: Wilson for proportions, the asymptotic interval of
  statsmodels' `cohens_kappa` for kappa.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import krippendorff
import numpy as np
import polars as pl
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from ..extract import UNPARSED

ERROR = "error"  # a job with no answer at all; distinct from an answer with no label


def _num(x: float | np.floating | None) -> float | None:
    """A JSON-safe float: NaN and infinities (undefined statistics) become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def wilson(count: int, n: int) -> dict[str, float | int | None]:
    if n == 0:
        return {"count": count, "n": n, "estimate": None, "ci_low": None, "ci_high": None}
    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    return {"count": count, "n": n, "estimate": count / n, "ci_low": _num(low), "ci_high": _num(high)}


ITEM = ["model", "variant", "item_id"]


def _collect(query: pl.LazyFrame) -> pl.DataFrame:
    # the streaming engine reads the responses a batch at a time: memory follows the groups an
    # aggregation keeps (items, labels), not the number of responses (samples, repeats)
    return query.collect(engine="streaming")


def first_seen(responses: pl.LazyFrame, keys: list[str]) -> list[tuple[Any, ...]]:
    """The distinct values of `keys`, in the order they first appear (the order reports list them in)."""
    return _collect(responses.select(keys).with_row_index("row").group_by(keys).agg(pl.col("row").min())
                    .sort("row")).select(keys).rows()


def item_labels(responses: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """One row per model x variant x item (sorted) with gold and the modal label (None = unparsed)."""
    lf = responses.lazy()
    items = lf.group_by(ITEM).agg(pl.col("gold").first())
    votes = lf.filter(pl.col("label").is_not_null()).group_by([*ITEM, "label"]).len("votes")
    top = votes.filter(pl.col("votes") == pl.col("votes").max().over(ITEM))
    # a tie for the mode leaves more than one label on top, and the item unparsed; so does no label at all
    modal = top.group_by(ITEM).agg(pl.col("label").first(), pl.len().alias("on_top")).filter(pl.col("on_top") == 1)
    return _collect(items.join(modal.select(*ITEM, "label"), on=ITEM, how="left")).sort(ITEM)


def kappa(table: np.ndarray) -> dict[str, float | None]:
    """Cohen's kappa with its asymptotic 95% interval, or None where undefined (one category only)."""
    n = table.sum()
    if n == 0:
        return {"kappa": None, "ci_low": None, "ci_high": None, "se": None}
    expected = (table.sum(axis=0) @ table.sum(axis=1)) / n**2
    if math.isclose(expected, 1.0):
        return {"kappa": None, "ci_low": None, "ci_high": None, "se": None}
    # A table where one variant used a single label has kappa 0 but no variance estimate; statsmodels
    # warns while computing NaN, which _num turns into "undefined". The warning itself is noise.
    with np.errstate(invalid="ignore", divide="ignore"):
        res = cohens_kappa(table, return_results=True)
    return {"kappa": _num(res.kappa), "ci_low": _num(res.kappa_low), "ci_high": _num(res.kappa_upp),
            "se": _num(res.std_kappa)}


def alpha_nominal(columns: list[list[str | None]], labels: Sequence[str]) -> float | None:
    """Krippendorff's alpha (nominal) with one row per variant; None entries are missing data."""
    index = {label: float(i) for i, label in enumerate(labels)}
    data = np.array([[index[v] if v is not None else np.nan for v in col] for col in columns], dtype=float)
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    if values.size == 0 or len(np.unique(values[~np.isnan(values)])) < 2:
        return None  # no pairable units, or one value only: alpha is undefined
    return _num(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                   value_domain=list(index.values())))


def variant_summary(responses: pl.LazyFrame, items: pl.DataFrame, order: Sequence[tuple[Any, ...]],
                    labels: Sequence[str], has_gold: bool) -> list[dict[str, object]]:
    """Per model x variant, in `order`: responses, errors, label counts and item-level accuracy."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    errors: dict[tuple[str, str], int] = {}
    tally = responses.group_by("model", "variant", pl.col("error_class").is_not_null().alias("failed"), "label").len()
    for model, variant, failed, label, n in _collect(tally).rows():
        if failed:
            errors[model, variant] = errors.get((model, variant), 0) + n
        else:
            counts.setdefault((model, variant), {})[UNPARSED if label is None else label] = n
    out = []
    for model, variant in order:
        dist = counts.get((model, variant), {})
        answered = sum(dist.values())
        entry: dict[str, object] = {
            "model": model, "variant": variant,
            "responses": answered + errors.get((model, variant), 0),
            "errors": errors.get((model, variant), 0),
            "labels": {label: dist.get(label, 0) for label in [*labels, UNPARSED]},
            "unparsed_rate": wilson(dist.get(UNPARSED, 0), answered),
        }
        item_rows = items.filter((pl.col("model") == model) & (pl.col("variant") == variant))
        entry["items"] = item_rows.height
        entry["items_unparsed"] = item_rows["label"].null_count()
        if has_gold:
            gold_rows = item_rows.filter(pl.col("gold").is_not_null())
            correct = int((gold_rows["label"] == gold_rows["gold"]).fill_null(False).sum())
            entry["accuracy"] = wilson(correct, gold_rows.height)
        out.append(entry)
    return out


def pair_summary(items: pl.DataFrame, model: str, a: str, b: str, labels: Sequence[str], has_gold: bool
                 ) -> dict[str, object]:
    left = items.filter((pl.col("model") == model) & (pl.col("variant") == a)).select("item_id", "label", "gold")
    right = items.filter((pl.col("model") == model) & (pl.col("variant") == b)).select(
        "item_id", pl.col("label").alias("label_b"))
    joined = left.join(right, on="item_id", how="inner", maintain_order="left")
    la, lb = joined["label"].to_list(), joined["label_b"].to_list()

    categories = [*labels, UNPARSED]
    pos = {c: i for i, c in enumerate(categories)}
    confusion = np.zeros((len(categories), len(categories)), dtype=int)
    for x, y in zip(la, lb, strict=True):
        confusion[pos[x or UNPARSED], pos[y or UNPARSED]] += 1
    labelled = confusion[: len(labels), : len(labels)]
    both = int(labelled.sum())
    result: dict[str, object] = {
        "model": model, "a": a, "b": b,
        "items": joined.height,
        "both_labelled": both,
        "agreement": wilson(int(np.trace(labelled)), both),
        "cohen_kappa": kappa(labelled),
        "krippendorff_alpha": alpha_nominal([la, lb], labels),
        "confusion": {"rows": a, "cols": b, "categories": categories, "counts": confusion.tolist()},
    }
    if has_gold:
        gold = joined["gold"].to_list()
        pairs = [(x == g, y == g) for x, y, g in zip(la, lb, gold, strict=True) if g is not None]
        table = np.array([[sum(p == (True, True) for p in pairs), sum(p == (True, False) for p in pairs)],
                          [sum(p == (False, True) for p in pairs), sum(p == (False, False) for p in pairs)]])
        discordant = int(table[0, 1] + table[1, 0])
        test = mcnemar(table, exact=True) if discordant else None
        result["mcnemar"] = {
            "table": table.tolist(),  # rows: a correct / a wrong; cols: b correct / b wrong
            "a_only_correct": int(table[0, 1]), "b_only_correct": int(table[1, 0]),
            "statistic": _num(test.statistic) if test else None,
            "pvalue": _num(test.pvalue) if test else 1.0,  # no discordant pair: no evidence of a difference
        }
    return result


def model_alpha(items: pl.DataFrame, model: str, variants: Sequence[str], labels: Sequence[str]) -> float | None:
    """Krippendorff's alpha across all of a model's variants at once."""
    rows = items.filter(pl.col("model") == model)
    ids = rows["item_id"].unique(maintain_order=True).to_list()
    columns = []
    for variant in variants:
        lookup = dict(zip(*rows.filter(pl.col("variant") == variant).select("item_id", "label")
                          .to_dict(as_series=False).values(), strict=True))
        columns.append([lookup.get(i) for i in ids])
    return alpha_nominal(columns, labels)


def summarize(responses: pl.LazyFrame | pl.DataFrame, labels: Sequence[str], compare: Sequence[tuple[str, str]],
              variants: Sequence[str], has_gold: bool) -> dict[str, object]:
    """Every statistic of a run, as JSON-ready data. `responses` has one row per job with columns
    model, variant, item_id, sample, label (None = unparsed or error), gold, error_class; as a
    LazyFrame (a scan of results.parquet) it is read in batches, never held whole."""
    lf = responses.lazy()
    items = item_labels(lf)
    order = first_seen(lf, ["model", "variant"])
    models = list(dict.fromkeys(model for model, _ in order))
    return {
        "variants": variant_summary(lf, items, order, labels, has_gold),
        "pairs": [pair_summary(items, m, a, b, labels, has_gold) for m in models for a, b in compare],
        "models": [{"model": m, "krippendorff_alpha_all_variants": model_alpha(items, m, variants, labels)}
                   for m in models],
    }
