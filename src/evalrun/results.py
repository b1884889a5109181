"""The results table: one row per response, with the label extracted from it.

Columns (also written to results.parquet):
    job_id, key, item_id, item_text (the item's non-id, non-gold columns), variant, model,
    model_string, sample, seed, system, prompt,
    response, finish_reason, label (null = unparsed or error), extraction (why),
    gold, error_class, error_message, attempts, latency_s, prompt_tokens,
    completion_tokens, cost (null = price unknown), cached
"""

from __future__ import annotations

import polars as pl

from .dataset import Dataset
from .extract import Extractor, build_extractor
from .runner import Outcome
from .spec import Spec

SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "job_id": pl.String, "key": pl.String, "item_id": pl.String, "item_text": pl.String,
    "variant": pl.String, "model": pl.String,
    "model_string": pl.String, "sample": pl.Int64, "seed": pl.Int64, "system": pl.String, "prompt": pl.String,
    "response": pl.String, "finish_reason": pl.String, "label": pl.String, "extraction": pl.String,
    "gold": pl.String, "error_class": pl.String, "error_message": pl.String, "attempts": pl.Int64,
    "latency_s": pl.Float64, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64, "cost": pl.Float64,
    "cached": pl.Boolean,
}


BATCH_ROWS = 2048  # rows held as Python objects before they become one Arrow batch


class Labeller:
    """Applies each variant's extractor to answers as they arrive; keeps Arrow batches, not objects.

    Rows wait in one Python list per column only until BATCH_ROWS have arrived, then become one
    Arrow-backed batch (strings in a single buffer, no object per value). Python objects per row
    cost ~0.7 KB and, kept for the whole run, also pin the interpreter's memory pools between
    litellm's short-lived objects; a batch costs only its data (~0.25 KB a row in the benchmark).
    """

    def __init__(self, spec: Spec, dataset: Dataset) -> None:
        self.extractors: dict[str, Extractor] = {
            name: build_extractor(v.extract, spec.labels) for name, v in spec.variants.items()}
        self.gold = {dataset.item_id(item): dataset.gold(item) for item in dataset.items}
        shown = [c for c in dataset.columns if c not in (dataset.id_column, dataset.gold_column)]
        # an excerpt is enough to recognise the item in a report; the full text is in the prompt column
        self.text = {dataset.item_id(item): " / ".join(str(item[c]) for c in shown)[:300] for item in dataset.items}
        # expansion order (see jobs.expand) as one number per row, so frame() need not expand again
        self.item_rank = {dataset.item_id(item): i for i, item in enumerate(dataset.items)}
        self.variant_rank = {name: i for i, name in enumerate(spec.variants)}
        self.model_rank = {model.name: i for i, model in enumerate(spec.models)}
        self.samples = spec.samples
        self.columns: dict[str, list[object]] = {name: [] for name in SCHEMA}  # rows not yet in a batch
        self.order: list[int] = []
        self.batches: list[pl.DataFrame] = []

    def add(self, outcome: Outcome) -> None:
        job, r = outcome.job, outcome.response
        label = extraction = None
        if r.status == "ok":
            found = self.extractors[job.variant].extract(r.text or "")
            label, extraction = found.label, found.reason
        messages = {m["role"]: m["content"] for m in job.messages}
        row = {
            "job_id": job.job_id, "key": job.key, "item_id": job.item_id, "item_text": self.text.get(job.item_id),
            "variant": job.variant,
            "model": job.model.name, "model_string": job.model.model, "sample": job.sample,
            "seed": job.params.get("seed"), "system": messages.get("system"), "prompt": messages.get("user"),
            "response": r.text, "finish_reason": r.finish_reason, "label": label, "extraction": extraction,
            "gold": self.gold.get(job.item_id), "error_class": r.error_class, "error_message": r.error_message,
            "attempts": r.attempts, "latency_s": r.latency, "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "cost": r.cost, "cached": outcome.cached,
        }
        for name, column in self.columns.items():
            column.append(row[name])
        rank = (self.item_rank.get(job.item_id, len(self.item_rank)) * len(self.variant_rank)
                + self.variant_rank[job.variant]) * len(self.model_rank) + self.model_rank[job.model.name]
        self.order.append(rank * self.samples + job.sample)
        if len(self.order) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.order:
            return
        self.batches.append(pl.DataFrame(self.columns, schema=SCHEMA).with_columns(
            pl.Series("_order", self.order, dtype=pl.Int64)))
        self.columns = {name: [] for name in SCHEMA}
        self.order = []

    def frame(self) -> pl.DataFrame:
        """Rows in expansion order (outcomes arrive in completion order). Empties the labeller."""
        self._flush()
        if not self.batches:
            return pl.DataFrame(schema=SCHEMA)
        # sort gathers the chunks into one contiguous copy; the batches go as soon as it exists
        frame = pl.concat(self.batches, rechunk=False)
        self.batches = []
        return frame.sort("_order").drop("_order")
