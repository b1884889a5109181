"""The item-level table: one row per group x item with its modal label, and the order groups first appear in.

Kept apart from `summary` (which needs statsmodels and scipy) so that reading a report's items, as
the markdown and run comparison do, costs only polars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

GROUP = ("model", "variant")  # what release 0.1 grouped by; a design adds its used axes (design.group_keys)


def collect(query: pl.LazyFrame) -> pl.DataFrame:
    # the streaming engine reads the responses a batch at a time: memory follows the groups an
    # aggregation keeps (items, labels), not the number of responses (samples, repeats)
    return query.collect(engine="streaming")


def first_seen(responses: pl.LazyFrame, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The distinct values of `keys`, in the order they first appear (the order reports list them in)."""
    keys = list(keys)
    return collect(responses.select(keys).with_row_index("row").group_by(keys).agg(pl.col("row").min())
                   .sort("row")).select(keys).rows()


def item_labels(responses: pl.LazyFrame | pl.DataFrame, group: Sequence[str] = GROUP) -> pl.DataFrame:
    """One row per group x item (sorted) with gold and the modal label (None = unparsed): the item-level
    label over every response of the group, whatever other axes (samples, paraphrases, orders) they span."""
    unit = [*group, "item_id"]
    lf = responses.lazy()
    items = lf.group_by(unit).agg(pl.col("gold").first())
    votes = lf.filter(pl.col("label").is_not_null()).group_by([*unit, "label"]).len("votes")
    top = votes.filter(pl.col("votes") == pl.col("votes").max().over(unit))
    # a tie for the mode leaves more than one label on top, and the item unparsed; so does no label at all
    modal = top.group_by(unit).agg(pl.col("label").first(), pl.len().alias("on_top")).filter(pl.col("on_top") == 1)
    return collect(items.join(modal.select(*unit, "label"), on=unit, how="left")).sort(unit)


def per_prompt(responses: pl.LazyFrame | pl.DataFrame, group: Sequence[str], prompt: Sequence[str],
               labels: Sequence[str], sets: Mapping[str, Sequence[str]] | None = None
               ) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per group whose items are asked in more than one prompt (an item at one level of each nested axis in
    `prompt`: one wording, one option order): the label taken per prompt by the item-level rule over that
    prompt's samples alone, with how many prompts there are, how many got a label, and how many got each of the
    variant's labels (`sets`: a variant's own, else `labels`).

    Beside the pooled item-level label (`item_labels` over every prompt of an item), whose mode leaves unparsed
    an item its prompts split evenly: the items a wording or an order sways are the ones it drops."""
    group = list(group)
    rows = item_labels(responses, [*group, *prompt])
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, part in rows.group_by(group, maintain_order=True):
        if part.height == part["item_id"].n_unique():  # one prompt per item: the pooled label is the prompt's
            continue
        given = part["label"].drop_nulls()
        read = (sets or {}).get(dict(zip(group, key, strict=True))["variant"], labels)
        out[tuple(key)] = {"prompts": part.height, "read": given.len(),
                           "labels": {label: int((given == label).sum()) for label in read}}
    return out
