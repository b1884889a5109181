"""Self- and cross-prediction: a variant that `predicts:` another is scored against that variant's answers.

Binder et al. 2024 ("Looking Inward: Language Models Can Learn About Themselves by Introspection", arXiv
2410.13787) read introspection as a model predicting its own behaviour better than another model predicts it:
self-prediction accuracy above cross-prediction accuracy, both read against the baseline of always guessing the
most common object-level answer. Here, for each target model T (and each level of the other crossed axes):

* accuracy: the share of items on which a predictor model P's item label of the predicting variant names T's
  item label of the target variant (`agreement`'s percent, Wilson 95%); P = T is self-prediction, P != T
  cross-prediction. Item labels are the pooled item-level labels (`items.item_labels`); an item unparsed on
  either side is left out, and counted.
* the baseline: always predicting T's modal target label, over the items T's answer was read for (Wilson). A
  tie for the mode names every tied label; the share is the same whichever is guessed.
* self vs cross: McNemar's exact test on the items the self- and the cross-prediction and the target were all
  read for, correct or not item by item, Holm-adjusted over the target's comparisons (a family of their own:
  one question per target, whether its own predictions beat each other model's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .agreement import agreement
from .grouping import Grouping
from .grouping import where as _where
from .inference import detectable
from .items import item_labels
from .paired import holm, mcnemar_exact
from .proportion import wilson
from .summary import LabelSets, own

if TYPE_CHECKING:  # stats reads the axes it is given, never imports design (see grouping.py)
    from ..design.axes import Axis

Label = str | None

TEST = "McNemar exact (self vs cross prediction, correct per item)"


def scored(predicted: Sequence[Label], target: Sequence[Label], labels: Sequence[str]) -> dict[str, Any]:
    """One predictor against one target, items aligned: accuracy over the items both were read for (Wilson),
    Cohen's kappa and the confusion table (rows: predicted, columns: target), and the items left out."""
    found = agreement(predicted, target, labels)
    return {"items": found["n"], "unparsed_prediction": sum(p is None for p in predicted),
            "unparsed_target": sum(t is None for t in target), "accuracy": found["percent"],
            "cohen_kappa": found["kappa"], "confusion": found["confusion"]}


def modal_baseline(target: Sequence[Label], labels: Sequence[str]) -> dict[str, Any]:
    """The accuracy of always guessing the target's most common label, over the items it was read for (Wilson):
    `label` is the guess (the first tied label in `labels` order), `tied` every label as common."""
    counts = {label: sum(t == label for t in target) for label in labels}
    n = sum(counts.values())
    top = max(counts.values(), default=0)
    tied = [label for label, count in counts.items() if count == top] if n else []
    return {"label": tied[0] if tied else None, "tied": tied, **wilson(top if n else 0, n)}


def versus(accuracy: Mapping[str, Any], baseline: Mapping[str, Any]) -> str | None:
    """How an accuracy reads against the baseline, by their Wilson intervals: `above` or `below` only where the
    intervals do not overlap (conservative: overlapping intervals can still differ), `overlaps` otherwise; None
    where either has no observations."""
    if accuracy.get("ci_low") is None or baseline.get("ci_low") is None:
        return None
    if accuracy["ci_low"] > baseline["ci_high"]:
        return "above"
    if accuracy["ci_high"] < baseline["ci_low"]:
        return "below"
    return "overlaps"


def self_vs_cross(own: Sequence[Label], other: Sequence[Label], target: Sequence[Label]) -> dict[str, Any]:
    """Self- against cross-prediction of one target, items aligned, over the items all three were read for:
    each accuracy (Wilson), the difference self - cross, and McNemar's exact test (b: only the self-prediction
    right; c: only the cross-prediction right)."""
    kept = [(s, c, t) for s, c, t in zip(own, other, target, strict=True) if None not in (s, c, t)]
    right_self = np.array([s == t for s, _, t in kept], dtype=bool)
    right_cross = np.array([c == t for _, c, t in kept], dtype=bool)
    n = len(kept)
    test = mcnemar_exact(int((right_self & ~right_cross).sum()), int((~right_self & right_cross).sum()), n)
    first, second = wilson(int(right_self.sum()), n), wilson(int(right_cross.sum()), n)
    difference = None if not n else first["estimate"] - second["estimate"]
    return {"items": n, "self_accuracy": first, "cross_accuracy": second, "difference": difference, "test": TEST,
            **(test or {"statistic": None, "pvalue": None, "n": 0})}


def predictions(items: pl.DataFrame, predicts: Mapping[str, str], labels: Sequence[str], models: Sequence[str],
                others: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per predicting variant, level of the crossed axes `others` (beside the model) and target model, in the
    order of `models`: every model's prediction of the target's answers (itself first), the most-common-answer
    baseline, and the self-vs-cross tests, Holm-adjusted within the target. `items` is the item-level table
    (`items.item_labels` by model, the `others` and variant)."""
    levels = items.select(others).unique(maintain_order=True).rows() if others else [()]
    out = []
    for predictor, target in predicts.items():
        for level in levels:
            at = dict(zip(others, level, strict=True))
            rows = _where(items, at)
            ids = rows["item_id"].unique(maintain_order=True).to_list()
            by_model = {(model, variant): _labels(rows, model, variant, ids) for model in models
                        for variant in (predictor, target)}
            for model in models:
                out.append(_target(by_model, predictor, target, model, models, labels, at))
    return out


def _labels(rows: pl.DataFrame, model: str, variant: str, ids: Sequence[str]) -> list[Label]:
    """A model's item labels of a variant, in the order of `ids` (None where it has none)."""
    part = rows.filter((pl.col("model") == model) & (pl.col("variant") == variant))
    lookup = dict(zip(part["item_id"].to_list(), part["label"].to_list(), strict=True))
    return [lookup.get(i) for i in ids]


def _target(by_model: Mapping[tuple[str, str], list[Label]], predictor: str, target: str, model: str,
            models: Sequence[str], labels: Sequence[str], at: Mapping[str, Any]) -> dict[str, Any]:
    answers = by_model[model, target]
    baseline = modal_baseline(answers, labels)
    entries = []
    for other in [model, *(m for m in models if m != model)]:  # self-prediction first
        entry = {"predictor_model": other, "self": other == model,
                 **scored(by_model[other, predictor], answers, labels)}
        entry["baseline"] = versus(entry["accuracy"], baseline)
        entries.append(entry)
    own = by_model[model, predictor]
    tests = [{"predictor_model": other, **self_vs_cross(own, by_model[other, predictor], answers)}
             for other in models if other != model]
    for test, adjusted in zip(tests, holm([t["pvalue"] for t in tests]), strict=True):
        test["pvalue_holm"] = adjusted
    return {"predictor": predictor, "target": target, **at, "model": model, "baseline": baseline,
            "predictions": entries, "self_vs_cross": tests}


def prediction(responses: pl.LazyFrame, predicts: Mapping[str, str], labels: Sequence[str], models: Sequence[str],
               axes: Sequence[Axis] = (), sets: LabelSets = None) -> list[dict[str, Any]]:
    """summary.json's `prediction`: `predictions` over a run's responses, grouped as its axes say (a crossed
    axis beside the model, a condition, gives each of its levels apart; nested ones are pooled in the item
    label), with the smallest difference each test could detect (`inference.detectable`). Each target is scored
    in its own labels (`sets`, as `summary.own` reads them; a predictor reads its target's), the targets
    reading one label set together, label sets in the order first seen."""
    grouping = Grouping.of(axes)
    items = item_labels(responses, grouping.group)
    by_labels: dict[tuple[str, ...], dict[str, str]] = {}
    for predictor, target in predicts.items():
        by_labels.setdefault(tuple(own(labels, sets, target)), {})[predictor] = target
    found = [entry for read, part in by_labels.items()
             for entry in predictions(items, part, list(read), models, grouping.others("model"))]
    detectable({"prediction": found})
    return found
