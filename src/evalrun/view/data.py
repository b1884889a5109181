"""A run folder as the view's data: plain JSON-ready values, one list per answer.

The answers' fields are listed once (`fields`) and each answer is a list in that order, so 10,000
answers do not repeat every key 10,000 times; prompts, which the samples, models and readers of a
cell share, are listed once (`prompts`) and named by their index. The design's columns come from
the registered axes (design/axes.py), so an axis added later is shown and filtered by without a change
here; only the item (the rows) and the variant (the columns side by side) are placed by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ..design.axes import registered
from ..record import RunRecord
from ..reporting import READINGS, RESULTS
from ..results import PRIMARY, read_table, readers_disagree
from ..results import READINGS as READING_COLUMNS
from ..stats.items import GROUP, item_labels
from ..store import answer_key

ROW, SIDE = "item_id", "variant"  # the axes placed by the layout, not offered as filters
# results.parquet's columns the view reads beside the axes'
READ = ("job_id", "key", "item_text", "gold", "prompt", "response", "label", "extraction", "error_class",
        "error_message")
FIELDS = ("id", "item", "variant", "prompt", "response", "label", "reason", "error", "readings",
          "readers_disagree", "variants_disagree", "answer")
# the variants are compared for the same item and model (models may well differ from each other)
SAME = (ROW, *(c for c in GROUP if c != SIDE))


def load(run_dir: Path) -> dict[str, Any]:
    """The view's data for a run folder; a folder that is not a run's raises one EvalrunError naming the file."""
    record = RunRecord.load(run_dir / "summary.json")
    results = read_table(run_dir / RESULTS, [*READ, ROW, SIDE, *SAME], _axis_columns())
    readings = read_table(run_dir / READINGS, list(READING_COLUMNS), must_exist=False)
    # axes whose columns vary in this run; a column with one value (one model, one sample) says nothing
    axes = [{"column": c, "values": [str(v) for v in results[c].drop_nulls().unique().sort()]}
            for c in _axis_columns() if c in results.columns]
    axes = [a for a in axes if len(a["values"]) > 1]
    others = _other_readings(readings)
    disagreeing = readers_disagree(readings)
    split = _variants_disagree(results)
    prompts: dict[str, int] = {}
    answers: list[list[Any]] = []
    items: dict[str, dict[str, Any]] = {}
    for row in results.iter_rows(named=True):
        items.setdefault(row[ROW], {"id": row[ROW], "text": row["item_text"], "gold": row["gold"]})
        read = others.get(row["job_id"], [])
        error = f"{row['error_class']}: {row['error_message']}" if row["error_class"] else None
        answers.append([
            row["job_id"], row[ROW], row[SIDE], prompts.setdefault(row["prompt"] or "", len(prompts)),
            row["response"], row["label"], row["extraction"], error, read,
            row["job_id"] in disagreeing,
            tuple(row[c] for c in SAME) in split,
            _answer_key(row),
            *(None if row[a["column"]] is None else str(row[a["column"]]) for a in axes),
        ])
    variants = _variants(record.variants, results[SIDE].unique(maintain_order=True).to_list())
    own = {v: record.labels_of(v) for v in variants}
    return {
        # labels: every label an answer may have (the label filter's); variant_labels: those a person labels a
        # variant's answers in, the ones its readers read (a run whose variants share the spec's: those for all)
        "run": {"name": record.name, "run_id": record.run_id,
                "labels": list(dict.fromkeys([*record.labels, *(label for ls in own.values() for label in ls)])),
                "variant_labels": own},
        "variants": variants,
        "axes": axes,
        "fields": [*FIELDS, *(a["column"] for a in axes)],
        "items": list(items.values()),
        "prompts": list(prompts),
        "answers": answers,
    }


def _answer_key(row: dict[str, Any]) -> str | None:
    """What a person's label of the answer is stored under (store.py); None for a failed job, which has no
    answer to label."""
    if row["error_class"] or row["response"] is None or row["key"] is None:
        return None
    return answer_key(row["key"], row["response"])


def _variants(listed: list[str], present: list[str]) -> list[str]:
    """The variants with answers, in the record's order; any the record does not list (a hand-edited
    summary) after them, so that no answer goes unshown."""
    return [v for v in listed if v in present] + [v for v in present if v not in listed]


def _axis_columns() -> list[str]:
    """Every registered axis's results columns but the row's and the side's, in the registry's order."""
    return [c for axis in registered() if axis.name not in (ROW, SIDE) for c in axis.columns]


def _variants_disagree(results: pl.DataFrame) -> set[tuple[Any, ...]]:
    """The (item, model) pairs whose variants' item-level labels differ: each variant's modal label over its
    answers, as the report's agreement compares them (stats/items.py; a variant unparsed there says nothing)."""
    modal = item_labels(results.select(*SAME, SIDE, "label", "gold"), GROUP).drop_nulls("label")
    split = modal.group_by(SAME).agg(pl.col("label").n_unique()).filter(pl.col("label") > 1)
    return set(split.select(SAME).iter_rows())


def _other_readings(readings: pl.DataFrame) -> dict[str, list[list[Any]]]:
    """job_id -> [reader, label, reason, the judge's own answers] for every reader but the primary one,
    whose label and reason are the answer's own."""
    found: dict[str, list[list[Any]]] = {}
    for row in readings.filter(pl.col("reader") != PRIMARY).iter_rows(named=True):
        found.setdefault(row["job_id"], []).append(
            [row["reader"], row["label"], row["reason"], _judge_answers(row["judge_response"])])
    return found


def _judge_answers(text: str | None) -> list[str] | None:
    """The judges' own answers, stored as a JSON list; text that is not one is shown as it is."""
    if text is None:
        return None
    try:
        answers = json.loads(text)
    except ValueError:
        return [text]
    return [str(a) for a in answers] if isinstance(answers, list) else [text]
