"""The report: report.md for people, summary.json for programs, results.parquet for analysis.

`write_report` needs only a run folder's results.parquet and the run's record (record.py), so
`evalrun report RUN_DIR` re-renders a run without asking any model. It never loads the
whole table: statistics and totals are aggregations over a scan of the file (memory
follows the number of items, not of responses), and the few prompts and answers the
report quotes are fetched from it by filter.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import polars as pl

from ..record import RunRecord
from . import memo
from .figures import FIGURES_DIR, Figure
from .markdown import render_markdown

SUMMARY_VERSION = 1
RESULTS = "results.parquet"
READINGS = "readings.parquet"  # every reader's label, for variants with more than one
REQUESTS = "reader_requests.parquet"  # the requests readers sent about the answers (a judge's)


def _totals(responses: pl.LazyFrame, requests: Path | None = None) -> dict[str, Any]:
    """Jobs, answers, tokens and cost of the first answers and follow-ups (results.parquet), and the same of
    the requests readers sent about them (`requests`: reader_requests.parquet, absent when none asked)."""
    answered = pl.col("error_class").is_null()
    t = responses.select(
        pl.len().alias("jobs"), answered.sum().alias("answered"), pl.col("cached").sum().alias("from_store"),
        pl.col("prompt_tokens").sum(), pl.col("completion_tokens").sum(),
        pl.col("cost").filter(answered).sum().alias("cost"),
        (answered & pl.col("cost").is_null()).sum().alias("unknown"),
    ).collect(engine="streaming").row(0, named=True)
    return {
        "jobs": t["jobs"],
        "answered": t["answered"],
        "failed": t["jobs"] - t["answered"],
        "from_store": t["from_store"],
        "asked": t["jobs"] - t["from_store"],
        "prompt_tokens": t["prompt_tokens"],
        "completion_tokens": t["completion_tokens"],
        # null when no answer could be priced: an unknown total is not a free one
        "cost_usd": float(t["cost"]) if t["unknown"] < t["answered"] or not t["unknown"] else None,
        "cost_unknown_responses": t["unknown"],
        # the same columns, so the same totals; a run whose readers asked nothing keeps release 0.2's shape
        **({"readers": _totals(pl.scan_parquet(requests))} if requests is not None and requests.exists() else {}),
    }


def statistics(responses: pl.LazyFrame, record: RunRecord, readings: pl.LazyFrame | None = None
               ) -> dict[str, Any]:
    """The statistics part of summary.json (statsmodels and scipy are imported here, not before)."""
    from ..stats.prediction import prediction
    from ..stats.summary import summarize

    stats = summarize(responses, record.labels, [(a, b) for a, b in record.compare], record.variants,
                      record.has_gold, record.axes, readings, record.readers,
                      record.ordinal, record.slices or [], sets=record.variant_labels, typed=record.stated or ())
    if record.predicts:  # after summarize's Holm family: the self-vs-cross tests are corrected per target
        stats["prediction"] = prediction(responses, record.predicts, record.labels, [m.name for m in record.models],
                                         record.axes, record.variant_labels)
    return stats


def _summary(run_dir: Path, record: RunRecord, stats: dict[str, Any]) -> dict[str, Any]:
    return {"summary_version": SUMMARY_VERSION, "run": record.to_json(),
            "totals": _totals(pl.scan_parquet(run_dir / RESULTS), run_dir / REQUESTS), "statistics": stats}


def _memo_statistics(results: Path, readings: Path, record: RunRecord) -> dict[str, Any]:
    """The statistics, from the memo when a run with the same rows and metadata was reported before."""
    key = memo.statistics_key(record.to_json(), results, readings)
    stats = memo.load_statistics(key)
    if stats is None:
        computed = statistics(pl.scan_parquet(results), record,
                              pl.scan_parquet(readings) if readings.exists() else None)
        # as the memo gives them back (JSON: tuples become lists), so a report never depends on which path ran
        stats = json.loads(json.dumps(computed))
        memo.save_statistics(key, stats)
    return stats


def _figures(summary: dict[str, Any], run_dir: Path) -> list[Figure]:
    """The figures, copied from the memo when the same statistics were drawn before, else drawn."""
    key = memo.figures_key(summary["statistics"], summary["run"]["labels"])
    figures = memo.restore_figures(key, run_dir)
    if figures is None:
        from .figures import draw

        figures = draw(summary, run_dir)
        memo.save_figures(key, run_dir, figures)
    return figures


def _drop_stale(run_dir: Path, figures: list[Figure]) -> None:
    """Remove PNGs an earlier rendering of this folder drew and this one did not (a figure the new
    statistics no longer support, or every figure with --no-figures): none of them is linked any more."""
    folder = run_dir / FIGURES_DIR
    if not folder.is_dir():
        return
    keep = {fig.path.name for fig in figures}
    for png in folder.glob("*.png"):
        if png.name not in keep:
            png.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_at_a_time(write: Callable[Concatenate[Path, _P], _R]) -> Callable[Concatenate[Path, _P], _R]:
    """Let one rendering of a run folder at a time write into it (an exclusive flock on the folder, held
    until it is done; the system drops it if the process dies). Two at once otherwise interleave: one with
    --no-figures, or whose statistics draw fewer figures, removes PNGs the other's report.md then links.
    Renaming each file into place would keep every file whole but not the figures matching report.md,
    so the folder is locked. Where flock is missing (Windows, some network filesystems) it goes unlocked."""
    @functools.wraps(write)
    def locked(run_dir: Path, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            import fcntl

            folder = os.open(run_dir, os.O_RDONLY)
        except (ImportError, OSError):  # no flock, or no folder (which the write itself then reports)
            return write(run_dir, *args, **kwargs)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: unlocked
                fcntl.flock(folder, fcntl.LOCK_EX)
            return write(run_dir, *args, **kwargs)
        finally:
            os.close(folder)  # which releases the lock

    return locked


@_one_at_a_time
def write_report(run_dir: Path, record: RunRecord, figures: bool = True, csv: bool = False) -> dict[str, Any]:
    """summary.json and report.md (with PNG figures under figures/ unless `figures` is off, and
    results.csv with `csv`) for the run folder holding results.parquet; returns the summary.

    markdown, figures and compare read the record as summary.json's `run` object (`record.to_json()`)."""
    results = run_dir / RESULTS
    summary = _summary(run_dir, record, _memo_statistics(results, run_dir / READINGS, record))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    drawn = _figures(summary, run_dir) if figures else []
    _drop_stale(run_dir, drawn)
    (run_dir / "report.md").write_text(render_markdown(results, summary, drawn), encoding="utf-8")
    if csv:  # streamed, like the statistics: a large run is never held whole
        pl.scan_parquet(results).sink_csv(run_dir / "results.csv")
    return summary


def rerender(run_dir: Path) -> Path:
    """Rebuild report.md and summary.json from a run folder's results.parquet and summary.json's record."""
    write_report(run_dir, RunRecord.load(run_dir / "summary.json"))
    return run_dir / "report.md"
