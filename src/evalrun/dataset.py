"""The dataset: items with an id, an optional gold label, and template variables.

Files are read with polars (CSV, JSONL, Parquet). CSV cells are kept as text so
that ids like "007" survive. Every problem found is reported at once, located by
file and row (line numbers for CSV and JSONL, item positions for inline items).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .errors import DatasetError, Problem
from .spec import Spec

MAX_PROBLEMS_PER_KIND = 5  # a broken 10,000-row file should not print 10,000 lines


@dataclass(frozen=True)
class Dataset:
    items: list[dict[str, object]]
    columns: list[str]
    id_column: str
    gold_column: str | None
    source: str
    sha256: str

    def item_id(self, item: dict[str, object]) -> str:
        return str(item[self.id_column])

    def gold(self, item: dict[str, object]) -> str | None:
        if self.gold_column is None:
            return None
        value = item.get(self.gold_column)
        return None if value is None else str(value)


def _read_file(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    return pl.read_parquet(path)


def _row_where(spec: Spec, source_is_file: bool, path: Path | None, row: int) -> tuple[str, int | None, int | None]:
    if source_is_file and path is not None:
        # CSV has a header line; JSONL has none; Parquet has no lines at all
        offset = {".csv": 2, ".jsonl": 1, ".ndjson": 1}.get(path.suffix.lower())
        return str(path), (row + offset if offset else None), None
    line, col = spec.located.where(("dataset", "items", row))
    return spec.located.file, line, col


def load_dataset(spec: Spec, limit: int | None = None) -> Dataset:
    """Read and check the spec's dataset; raises DatasetError listing every problem."""
    cfg = spec.dataset
    path = cfg.path
    if path is not None:
        where = spec.located.where(("dataset", "path"))
        if not path.is_file():
            raise DatasetError([Problem(spec.located.file, *where, f"dataset.path: no such file '{path}'")])
        try:
            raw = path.read_bytes()
            frame = _read_file(path)
        except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetError([Problem(str(path), None, None, f"cannot read as {path.suffix[1:]}: {first}")]) from None
        items = frame.to_dicts()
        columns = frame.columns
        source = str(path)
    else:
        items = [dict(item) for item in cfg.items or []]
        columns = list(dict.fromkeys(key for item in items for key in item))
        raw = json.dumps(items, sort_keys=True, default=str).encode()
        source = "inline"

    problems: list[Problem] = []

    def add(row: int | None, message: str) -> None:
        if row is not None:
            problems.append(Problem(*_row_where(spec, path is not None, path, row), message))
        elif path is not None:
            problems.append(Problem(str(path), None, None, message))
        else:
            problems.append(spec.located.problem(("dataset", "items"), message))

    if not items:
        add(None, "the dataset has no items")
    for column, role in ((cfg.id, "id"), (cfg.gold, "gold")):
        if column is not None and column not in columns:
            line, col = spec.located.where(("dataset", role))
            problems.append(Problem(spec.located.file, line, col,
                                    f"dataset: no {role} column '{column}' (columns: {', '.join(columns) or 'none'})"))
    if problems:
        raise DatasetError(problems)

    kinds: Counter[str] = Counter()

    def add_limited(kind: str, row: int, message: str) -> None:
        kinds[kind] += 1
        if kinds[kind] <= MAX_PROBLEMS_PER_KIND:
            add(row, message)

    seen: dict[str, int] = {}
    labels = set(spec.labels)
    for row, item in enumerate(items):
        for column in columns:
            item.setdefault(column, None)  # inline items may omit optional columns
        ident = item.get(cfg.id)
        if ident is None or str(ident).strip() == "":
            add_limited("id", row, f"item {row + 1}: empty id in column '{cfg.id}'")
            continue
        key = str(ident)
        if key in seen:
            add_limited("dup", row, f"item {row + 1}: duplicate id '{key}' (first at item {seen[key] + 1})")
        else:
            seen[key] = row
        if cfg.gold is not None:
            gold = item.get(cfg.gold)
            if gold is not None and str(gold) not in labels:
                add_limited("gold", row, f"item {row + 1}: gold label '{gold}' is not one of {sorted(labels)}")
    for kind, n in kinds.items():
        if n > MAX_PROBLEMS_PER_KIND:
            add(None, f"... and {n - MAX_PROBLEMS_PER_KIND} more problems of the same kind ({kind})")
    if problems:
        raise DatasetError(problems)
    if limit is not None:
        items = items[:limit]
    return Dataset(items=items, columns=list(columns), id_column=cfg.id, gold_column=cfg.gold, source=source,
                   sha256=hashlib.sha256(raw).hexdigest())
