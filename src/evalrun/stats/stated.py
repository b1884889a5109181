"""Typed comparisons: what a model says it would do (a stated variant's answer) against what it does (a
behaviour measured from another variant's answers), item by item, where the two are read in different label
sets (spec: `compare:` as a mapping).

Per item, both sides become one of `present` / `absent` (the behaviour, asserted or shown):

* stated: the stated variant's item-level label (the pooled rule of `items.item_labels`: the mode over every
  answer of the item, over samples and, if the variant uses them, conditions, paraphrases and orders; a tie is
  unparsed) is `present` when it is the spec's `yes` label, `absent` when it is any other label;
* `changes`: the behaviour variant's item-level label under each condition (the pooled rule within the
  condition); `present` when they are not all equal. An item unparsed under any condition, or not asked under
  every one, is left out;
* `first`: the behaviour variant's label per prompt (one option order, one paraphrase: the pooled rule over
  its samples) picks the option listed first or not; the item is `present` when it picked the first-listed
  option in more than half of its prompts whose answer was read (half or less: `absent`); an item read in
  fewer than two option orders is left out (one order cannot tell position from preference). The share of
  read prompts picking the first option is given beside it.

The two vectors go through the one `agreement` function (percent agreement with Wilson's interval, Cohen's
kappa with its asymptotic interval, the confusion table) over the items both sides read; the two rates
("says it would", "does") are Wilson intervals over those same items, and McNemar's exact test asks whether
they differ (paired by item: the items where exactly one side is `present`). That test joins the report's
confirmatory Holm family like every other (`inference.adjust` finds it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from .agreement import Label, agreement
from .grouping import where
from .inference import marginal_test
from .items import collect, item_labels
from .proportion import wilson

CATEGORIES = ("present", "absent")


def _where(responses: pl.LazyFrame, model: str, variant: str) -> pl.LazyFrame:
    return where(responses, {"model": model, "variant": variant})


def stated_by_item(responses: pl.LazyFrame, model: str, variant: str, yes: str) -> dict[str, Label]:
    """Per item the stated variant asked: `present` if its item-level label is `yes`, `absent` if another
    label, None if unparsed."""
    rows = item_labels(_where(responses, model, variant), ["model", "variant"])
    return {i: None if x is None else CATEGORIES[x != yes] for i, x in rows.select("item_id", "label").rows()}


def changes_by_item(responses: pl.LazyFrame, model: str, variant: str, conditions: Sequence[str]
                    ) -> dict[str, Label]:
    """Per item: `present` if the variant's item-level labels under the conditions are not all equal, `absent`
    if they are; None if any condition's label is unparsed or missing."""
    rows = item_labels(_where(responses, model, variant).filter(pl.col("condition").is_in(list(conditions))),
                       ["model", "variant", "condition"])
    out: dict[str, Label] = {}
    for (item,), part in rows.group_by(["item_id"], maintain_order=True):
        given = part["label"].to_list()
        read = part.height == len(conditions) and None not in given
        out[str(item)] = CATEGORIES[len(set(given)) == 1] if read else None
    return out


def first_by_item(responses: pl.LazyFrame, model: str, variant: str) -> tuple[dict[str, Label], dict[str, Any]]:
    """Per item: `present` if its label picked the option listed first in more than half of its prompts read
    (a prompt: one option order and paraphrase, its label the pooled rule over its samples), `absent` if in
    half or fewer, None if read in fewer than two orders; and the share of read prompts that picked the first
    option."""
    prompt = ["model", "variant", "option_order", "paraphrase"]
    scoped = _where(responses, model, variant).filter(pl.col("first_option").is_not_null())
    labels = item_labels(scoped.with_columns(pl.col("paraphrase").fill_null(0)), prompt)
    firsts = collect(scoped.group_by("item_id", "option_order").agg(pl.col("first_option").first()))
    rows = labels.join(firsts, on=["item_id", "option_order"], how="left")
    out: dict[str, Label] = {}
    picked_all = read_all = 0
    for (item,), part in rows.group_by(["item_id"], maintain_order=True):
        read = part.filter(pl.col("label").is_not_null())
        picked = int((read["label"] == read["first_option"]).sum())
        picked_all, read_all = picked_all + picked, read_all + read.height
        # read in one order only, a pick of the first-listed option cannot be told from a preference for it
        out[str(item)] = None if read["option_order"].n_unique() < 2 else CATEGORIES[not 2 * picked > read.height]
    return out, wilson(picked_all, read_all)


def compare_stated(stated: Mapping[str, Label], measured: Mapping[str, Label]) -> dict[str, Any]:
    """The statement against the measured behaviour over the items both sides have: how many were left out and
    why, the two rates over the items both read, their agreement (`agreement`) and McNemar's exact test of the
    two rates (paired by item)."""
    items = [i for i in stated if i in measured]
    said = [stated[i] for i in items]
    did = [measured[i] for i in items]
    both = [(s, d) for s, d in zip(said, did, strict=True) if s is not None and d is not None]
    found = agreement(said, did, CATEGORIES)
    test = marginal_test(said, did, CATEGORIES)
    return {
        "items": len(items),
        "both_read": len(both),
        "left_out": {"stated_unparsed": said.count(None),
                     "behaviour_unread": sum(d is None and s is not None for s, d in zip(said, did, strict=True)),
                     "not_asked_both": len(set(stated) ^ set(measured))},
        "says": wilson(sum(s == "present" for s, _ in both), len(both)),
        "does": wilson(sum(d == "present" for _, d in both), len(both)),
        "agreement": found["percent"],
        "cohen_kappa": found["kappa"],
        "confusion": {"rows": "stated", "cols": "behaviour", "categories": list(CATEGORIES),
                      "counts": [row[:2] for row in found["confusion"]["counts"][:2]]},
        "rates_differ": None if test is None else {**test, "test": "McNemar exact (stated vs measured rate)"},
    }


def stated_comparisons(responses: pl.LazyFrame, typed: Sequence[Mapping[str, str]], models: Sequence[str],
                       conditions: Sequence[str]) -> list[dict[str, Any]]:
    """Each typed comparison (`stated`, `behaviour`, `measure`, `yes`) for each model, as `compare_stated`
    gives it, with what it compared: the conditions (`changes`) or the first-position share per prompt
    (`first`)."""
    out = []
    for model in models:
        for c in typed:
            said = stated_by_item(responses, model, c["stated"], c["yes"])
            entry: dict[str, Any] = {"model": model, **c}
            if c["measure"] == "changes":
                did = changes_by_item(responses, model, c["behaviour"], conditions)
                entry["conditions"] = list(conditions)
            else:
                did, entry["first_position"] = first_by_item(responses, model, c["behaviour"])
            out.append({**entry, **compare_stated(said, did)})
    return out
