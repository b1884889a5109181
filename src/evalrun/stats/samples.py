"""What a run's samples say: how consistent a model is with itself, and agreement between single samples
(or between the label probabilities read from log-probabilities) rather than between item-level labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ..extract import UNPARSED
from .clustered import clustered_mean
from .grouping import where as _where
from .items import collect
from .kappa import fleiss_kappa


def expected_agreement(responses: pl.LazyFrame, where: dict[str, Any], a: str, b: str, labels: Sequence[str]
                       ) -> dict[str, Any]:
    """From the label probabilities instead of sampled labels: per item, the chance that a draw from
    each variant's mean distribution names the same label (sum over labels of p_a * p_b), averaged
    over the items both variants have probabilities for."""
    rows = collect(responses.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())
                                     & pl.col("variant").is_in([a, b]) & pl.col("probabilities").is_not_null())
                    .select("variant", "item_id", "probabilities"))
    mean: dict[tuple[str, str], np.ndarray] = {}
    for (variant, item), part in rows.group_by(["variant", "item_id"], maintain_order=True):
        given = [json.loads(p) for p in part["probabilities"]]
        mean[variant, item] = np.array([[g.get(label, 0.0) for label in labels] for g in given]).mean(axis=0)
    items = sorted({i for v, i in mean if v == a} & {i for v, i in mean if v == b})
    values = np.array([float(mean[a, i] @ mean[b, i]) for i in items])
    return {"items": len(items), "probability": clustered_mean(values, items) if items else None}


def _sample_counts(responses: pl.LazyFrame, group: Sequence[str], within: Sequence[str] = ()) -> pl.DataFrame:
    """Per group x item (x level of each of `within`) x label (None = unparsed), how many answered samples
    gave it."""
    unit = [*group, "item_id", *within]
    return collect(responses.filter(pl.col("error_class").is_null()).group_by([*unit, "label"]).len("n"))


PROMPT = "prompt_unit"  # an item as one prompt put it: the item and its level of each nested axis


def stability(responses: pl.LazyFrame, group: Sequence[str], order: Sequence[tuple[Any, ...]],
              labels: Sequence[str], within: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per group: the mean share of a prompt's samples that give its most frequent answer (with a
    standard error clustered by item, Miller 2024), and Fleiss' kappa across samples, over the prompts
    with every sample answered (unparsed counts as a category of its own).

    A prompt is an item at one level of each nested axis in `within` (one wording, one option order):
    stability is the model repeating itself when asked the same thing. Pooling an item's samples over
    its wordings and orders would also count the answers a rewording changes, which is wording
    sensitivity (the paraphrase and option-order sections measure that), not stability."""
    counts = _sample_counts(responses, group, within).with_columns(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in ["item_id", *within]],
                      separator="\x1f").alias(PROMPT))
    out = []
    for key in order:
        # by prompt: the counts come in the order the threads finished, and a float sum in that order differed
        # in its last digit from one rendering to the next
        rows = _where(counts, dict(zip(group, key, strict=True))).sort(PROMPT, "label", nulls_last=True)
        per_prompt = rows.group_by(PROMPT, maintain_order=True).agg(
            pl.col("item_id").first(), pl.col("n").max().alias("top"), pl.col("n").sum().alias("all"))
        modal = per_prompt.with_columns(share=pl.col("top") / pl.col("all"))
        table = rows.with_columns(pl.col("label").fill_null(UNPARSED)).pivot(
            "label", index=PROMPT, values="n").fill_null(0)
        columns = [c for c in [*labels, UNPARSED] if c in table.columns]
        matrix = table.select(columns).to_numpy() if columns else np.zeros((0, 0))
        full = matrix[matrix.sum(axis=1) == matrix.sum(axis=1).max()] if matrix.size else matrix
        out.append({**dict(zip(group, key, strict=True)),
                    "within": list(within), "prompts": modal.height,
                    "modal_share": clustered_mean(modal["share"].to_numpy(), modal["item_id"].to_list())
                    if modal.height else None,
                    "fleiss_kappa": fleiss_kappa(full) if len(full) and full.sum(axis=1)[0] >= 2 else None,
                    "fleiss_items": len(full)})
    return out


def sample_agreement(responses: pl.LazyFrame, where: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    """The probability that one sample of `a` and one of `b` for the same item name the same label,
    averaged over items both answered: sum over labels of p_a(label) * p_b(label), per item."""
    counts = _where(_sample_counts(responses, [*where, "variant"]), where)
    shares = counts.with_columns(p=pl.col("n") / pl.col("n").sum().over(["variant", "item_id"]))
    left = shares.filter((pl.col("variant") == a) & pl.col("label").is_not_null()).select("item_id", "label", "p")
    right = shares.filter((pl.col("variant") == b) & pl.col("label").is_not_null()).select(
        "item_id", "label", pl.col("p").alias("q"))
    answered = set(shares.filter(pl.col("variant") == a)["item_id"]) & set(
        shares.filter(pl.col("variant") == b)["item_id"])
    both = left.join(right, on=["item_id", "label"]).group_by("item_id").agg((pl.col("p") * pl.col("q")).sum())
    per_item = dict(zip(both["item_id"], both["p"], strict=True))
    values = np.array([per_item.get(i, 0.0) for i in sorted(answered)])
    return {**where, "a": a, "b": b, "items": len(values),
            "probability": clustered_mean(values, sorted(answered)) if len(values) else None}

