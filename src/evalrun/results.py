"""The results table: one row per job, with the label extracted from its answer.

Columns (also written to results.parquet), the design's axes among them where each axis places
its own (see design/axes.py; by default item_id, variant, model, sample, condition, paraphrase,
option_order: "female, male", the labels in the order listed, and first_option: the label listed first):
    job_id, key, item_text (the item's non-id, non-gold columns), model_string, seed,
    system (the first system turn), prompt (the last user turn),
    response, finish_reason, label (null = unparsed or error), extraction (why),
    gold, error_class, error_message, attempts, latency_s, prompt_tokens,
    completion_tokens, cost (null = price unknown), cached, messages (every turn sent, as JSON),
    probabilities (JSON: each label's probability, for a reader of log-probabilities), captured
    (the probability mass those labels held), slices (JSON: the item's values of the spec's `slices` columns)
An axis's columns are null where a spec does not use it. Rows are built by column name.

Answers arrive in completion order but results.parquet lists them in expansion order
(item, condition, variant, paraphrase, option order, model, sample), so the same run
gives the same file whether it ran in one go or was resumed. Holding every row until the
end to sort it would make memory grow with the run, so rows go to a scratch SQLite table as they arrive, keyed by the
job's place in that order; the key is the table's rowid, so reading them back in order
walks the b-tree a batch at a time and nothing is ever sorted in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import polars as pl

from .dataset import Dataset
from .design.axes import DType, results_columns
from .errors import EvalrunError, short
from .extract import AskingExtractor, Extraction, Extractor, Reading, build_extractor
from .jobs import PRIMARY
from .sendpath import Outcome
from .spec import Spec, followup_variant

# the columns results.py fills itself; `columns()` places the axes' columns among them
_OWN: dict[str, DType] = {
    "job_id": pl.String, "key": pl.String, "item_text": pl.String, "model_string": pl.String, "seed": pl.Int64,
    "system": pl.String, "prompt": pl.String, "response": pl.String, "finish_reason": pl.String,
    "label": pl.String, "extraction": pl.String, "gold": pl.String, "error_class": pl.String,
    "error_message": pl.String, "attempts": pl.Int64, "latency_s": pl.Float64, "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64, "cost": pl.Float64, "cached": pl.Boolean, "messages": pl.String,
    "probabilities": pl.String, "captured": pl.Float64, "slices": pl.String,
}


def columns() -> dict[str, DType]:
    """results.parquet's columns and types, in order: results.py's own with the registered axes' placed."""
    return results_columns(_OWN)


# readings.parquet: one row per answer and reader, for variants with more than one reader and for asking
# readers (the primary reader is `extract`); the replies of the models an asking reader asked, as a JSON
# list, sit beside the label it gave
READINGS: dict[str, DType] = {
    "job_id": pl.String, "reader": pl.String, "label": pl.String, "reason": pl.String,
    "judge_response": pl.String,
}
# reader_requests.parquet: one row per request an asking reader sent (its job id is the answer's, then
# `/reader:index`), with what it cost; the totals count them beside the first answers
REQUESTS: dict[str, DType] = {
    "job_id": pl.String, "reader": pl.String, "model": pl.String, "model_string": pl.String,
    "error_class": pl.String, "error_message": pl.String, "attempts": pl.Int64, "latency_s": pl.Float64,
    "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64, "cost": pl.Float64, "cached": pl.Boolean,
}
AWAITING = "awaiting the replies of the models it asks"


def readers_disagree(readings: pl.DataFrame) -> set[str]:
    """The job ids whose readers (readings.parquet's rows, the primary reader among them) give different
    labels. An unparsed reading is a reading too: one reader's label against another's silence differs."""
    return set(readings.group_by("job_id").agg(pl.col("label").n_unique()).filter(pl.col("label") > 1)["job_id"])


def read_table(path: Path, needed: list[str], optional: Sequence[str] = (), must_exist: bool = True) -> pl.DataFrame:
    """A run folder's table (results.parquet, readings.parquet), as the view and the export read it: the
    `needed` columns and those `optional` ones the file has (a run may predate an axis); one EvalrunError if
    the file cannot be read or lacks a needed column. A missing optional file is empty."""
    if not path.exists():
        if must_exist:
            raise EvalrunError(f"{path}: no such file (is {path.parent} a run folder?)")
        return pl.DataFrame(schema=dict.fromkeys(needed, pl.String))
    try:
        schema = pl.read_parquet_schema(path)
        missing = [c for c in needed if c not in schema]
        if missing:
            raise EvalrunError(f"{path}: not a run's table: no column {missing[0]!r}")
        return pl.read_parquet(path, columns=list(dict.fromkeys(c for c in [*needed, *optional] if c in schema)))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise EvalrunError(f"{path}: cannot read it: {short(exc, 300)}") from None


BATCH_ROWS = 2048  # rows per insert transaction, per read-back batch, and per row group of results.parquet
EXCERPT_CHARS = 300  # enough to recognise an item in a report; the full text is in the prompt column


class Results:
    """Labels each answer as it arrives and keeps the row on disk until `write_parquet`.

    Use as a context manager: the scratch folder (under `scratch_parent`) goes when the block
    ends, whether the run finished, failed or was interrupted. It is scratch only: every answer
    is already in the response store, so a lost scratch file costs nothing a rerun cannot rebuild.
    """

    def __init__(self, spec: Spec, dataset: Dataset, scratch_parent: Path) -> None:
        # variant (and its follow-up's) -> reader -> extractor; an asking reader reads in a second stage
        self.readers: dict[str, dict[str, Extractor]] = {}
        for name, v in spec.variants.items():
            self.readers[name] = {r: build_extractor(c, spec.labels_of(name))
                                  for r, c in {PRIMARY: v.extract, **v.readers}.items()}
            if v.followup is not None:
                followup = build_extractor(v.followup.extract, spec.labels_of(name))
                self.readers[followup_variant(name)] = {PRIMARY: followup}
        self.slices = spec.slices
        self.dataset = dataset
        self.shown = [c for c in dataset.columns if c not in (dataset.id_column, dataset.gold_column)]
        scratch_parent.mkdir(parents=True, exist_ok=True)
        _sweep(scratch_parent)
        self.folder = Path(tempfile.mkdtemp(prefix=f"results-{os.getpid()}-", dir=scratch_parent))
        self._db = sqlite3.connect(self.folder / "results.sqlite")
        # durability is the store's job; this table only needs to be fast
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self.schema = columns()  # once per run: an axis registered later does not change this run's table
        names = ", ".join(self.schema)
        self._db.execute(f"CREATE TABLE results (position INTEGER PRIMARY KEY, {names})")
        self._insert = f"INSERT INTO results (position, {names}) VALUES (?, {', '.join('?' for _ in self.schema)})"
        self._select = f"SELECT {names} FROM results ORDER BY position"
        # judge -1 is a reader's final reading of the answer; 0, 1, ... an asking reader's reading of each reply
        self._db.execute("CREATE TABLE readings (position INTEGER, reader TEXT, judge INTEGER, label TEXT, "
                         "reason TEXT, judge_response TEXT, PRIMARY KEY (position, reader, judge))")
        self._db.execute(f"CREATE TABLE requests (position INTEGER, idx INTEGER, {', '.join(REQUESTS)}, "
                         "PRIMARY KEY (position, reader, idx))")
        self._pending: list[tuple[object, ...]] = []
        self._readings: list[tuple[object, ...]] = []
        self._requests: list[tuple[object, ...]] = []

    def __enter__(self) -> Results:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._db.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the parent stays while another run is using it
            self.folder.parent.rmdir()

    def add(self, outcome: Outcome) -> None:
        job, r = outcome.job, outcome.response
        if job.reads is not None:
            self._asked(outcome)
            return
        readers = self.readers[job.cell.variant]
        found: dict[str, Extraction] = {}
        if r.status == "ok":
            reading = Reading(r.text or "", job.item, json.loads(r.logprobs) if r.logprobs else None)
            found = {name: Extraction(None, AWAITING) if isinstance(e, AskingExtractor) else e.extract(reading)
                     for name, e in readers.items()}
        primary = found.get(PRIMARY)
        if len(readers) > 1:
            self._readings.extend((job.position, name, -1, e.label, e.reason, None) for name, e in found.items())
        row: dict[str, object] = {
            **job.cell.columns(),
            "job_id": job.job_id, "key": job.key,
            "item_text": " / ".join(str(job.item[c]) for c in self.shown)[:EXCERPT_CHARS],
            "model_string": job.model.model, "seed": job.params.get("seed"),
            "system": next((m["content"] for m in job.messages if m["role"] == "system"), None),
            "prompt": next((m["content"] for m in reversed(job.messages) if m["role"] == "user"), None),
            "response": r.text, "finish_reason": r.finish_reason,
            "label": primary and primary.label, "extraction": primary and primary.reason,
            "gold": self.dataset.gold(job.item), "error_class": r.error_class, "error_message": r.error_message,
            "attempts": r.attempts, "latency_s": r.latency, "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "cost": r.cost, "cached": outcome.cached,
            "messages": json.dumps(job.messages, ensure_ascii=False),
            "probabilities": json.dumps(primary.probabilities)
            if primary and primary.probabilities is not None else None,
            "captured": primary and primary.captured,
            "slices": json.dumps({c: str(job.item.get(c)) for c in self.slices}, ensure_ascii=False)
            if self.slices else None,
        }
        # every column by name, none unknown: a column cannot slip into its neighbour's place
        assert len(row) == len(self.schema), sorted(row.keys() ^ self.schema.keys())
        self._pending.append((job.position, *(row[name] for name in self.schema)))
        if len(self._pending) >= BATCH_ROWS:
            self._flush()

    def _asked(self, outcome: Outcome) -> None:
        """An asking reader's reading of one reply about a first answer (an error is a reading of no label,
        with its reason), and the request, for the totals."""
        job, r = outcome.job, outcome.response
        reads = job.reads
        assert reads is not None
        if r.status == "ok":
            reading = self.readers[job.cell.variant][reads.reader].extract(Reading(r.text or "", job.item))
        else:
            reading = Extraction(None, f"{job.model.name} did not answer: {r.error_class}: {r.error_message}")
        self._readings.append((reads.position, reads.reader, reads.index, reading.label, reading.reason, r.text))
        self._requests.append((reads.position, reads.index, job.job_id, reads.reader, job.model.name,
                               job.model.model, r.error_class, r.error_message, r.attempts, r.latency,
                               r.prompt_tokens, r.completion_tokens, r.cost, outcome.cached))
        if len(self._readings) >= BATCH_ROWS:
            self._flush()

    def answers(self, variants: list[str]) -> Iterator[tuple[int, str]]:
        """(position, text) of every answered job of these variants, in expansion order, a batch at a time."""
        self._flush()
        marks = ", ".join("?" for _ in variants)
        last = -1
        while batch := self._db.execute(
                f"SELECT position, response FROM results WHERE variant IN ({marks}) AND error_class IS NULL "
                "AND position > ? ORDER BY position LIMIT ?", (*variants, last, BATCH_ROWS)).fetchall():
            yield from batch
            last = batch[-1][0]

    def count_answers(self, variants: list[str], model: str | None = None) -> int:
        """Answered jobs of these variants (of one model, or of all)."""
        self._flush()
        marks = ", ".join("?" for _ in variants)
        query = f"SELECT COUNT(*) FROM results WHERE variant IN ({marks}) AND error_class IS NULL"
        args: list[str] = list(variants)
        if model is not None:
            query, args = query + " AND model = ?", [*args, model]
        return int(self._db.execute(query, args).fetchone()[0])

    def finalize(self) -> None:
        """Settle every asking reader's reading of an answer from its readings of the replies (the judge: their
        majority), kept with the replies; an asking reader that is a variant's primary reader labels its row."""
        self._flush()
        settled: list[tuple[object, ...]] = []
        rows = self._db.execute("SELECT position, reader, readings.label, reason, judge_response, variant "
                                "FROM readings JOIN results USING (position) WHERE judge >= 0 "
                                "ORDER BY position, reader, judge")
        for (position, reader, variant), replies in itertools.groupby(rows, key=lambda row: (row[0], row[1], row[5])):
            found = list(replies)
            asking = self.readers[variant][reader]
            assert isinstance(asking, AskingExtractor)
            final = asking.settle([Extraction(label, reason) for _, _, label, reason, _, _ in found])
            settled.append((position, reader, -1, final.label, final.reason,
                            json.dumps([row[4] for row in found], ensure_ascii=False)))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?, ?)", settled)
            self._db.executemany("UPDATE results SET label = ?, extraction = ? WHERE position = ?",
                                 [(label, reason, position) for position, reader, _, label, reason, _ in settled
                                  if reader == PRIMARY])

    def _flush(self) -> None:
        with self._db:  # one transaction per batch
            self._db.executemany(self._insert, self._pending)
            self._db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?, ?)", self._readings)
            self._db.executemany(f"INSERT OR REPLACE INTO requests VALUES ({', '.join('?' * (2 + len(REQUESTS)))})",
                                 self._requests)
        self._pending, self._readings, self._requests = [], [], []

    def write_readings(self, path: Path) -> int:
        """The settled readings of variants with more than one reader, in expansion order (none: no file)."""
        self._flush()
        rows = self._db.execute("SELECT results.job_id, reader, readings.label, reason, judge_response "
                                "FROM readings JOIN results USING (position) WHERE judge = -1 "
                                "ORDER BY position, reader").fetchall()
        if rows:
            pl.DataFrame(rows, schema=READINGS, orient="row").write_parquet(path)
        return len(rows)

    def write_requests(self, path: Path) -> int:
        """Every request the asking readers sent, in expansion order (none: no file)."""
        self._flush()
        rows = self._db.execute(f"SELECT {', '.join(REQUESTS)} FROM requests "
                                "ORDER BY position, reader, idx").fetchall()
        if rows:
            _frame(rows, REQUESTS).write_parquet(path)
        return len(rows)

    def write_parquet(self, path: Path) -> int:
        """Every row, in expansion order, to `path` (written whole or not at all). Returns the row count."""
        self._flush()
        parts = self.folder / "parts"
        parts.mkdir(exist_ok=True)
        cursor = self._db.execute(self._select)
        files: list[Path] = []
        rows = 0
        while batch := cursor.fetchmany(BATCH_ROWS):
            files.append(parts / f"{len(files):08d}.parquet")
            _frame(batch, self.schema).write_parquet(files[-1])
            rows += len(batch)
        partial = path.with_name(path.name + ".partial")
        if files:
            # a streaming concatenation of the ordered parts; small row groups keep its buffer small
            pl.scan_parquet(files).sink_parquet(partial, row_group_size=BATCH_ROWS)
        else:
            pl.DataFrame(schema=self.schema).write_parquet(partial)
        partial.replace(path)
        shutil.rmtree(parts)
        return rows


def _frame(rows: list[tuple[object, ...]], schema: dict[str, DType]) -> pl.DataFrame:
    """SQLite rows as a frame of `schema`. SQLite has no booleans: `cached` comes back as 0/1 and becomes
    Boolean once in polars."""
    return pl.DataFrame(rows, schema={**schema, "cached": pl.Int64}, orient="row").with_columns(
        pl.col("cached").cast(pl.Boolean))


def _sweep(parent: Path) -> None:
    """Remove scratch folders left by runs that were killed (kill -9 skips every cleanup)."""
    for folder in parent.glob("results-*-*"):
        try:
            os.kill(int(folder.name.split("-")[1]), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            pass  # not ours to judge: a name we did not make, or another user's live process
