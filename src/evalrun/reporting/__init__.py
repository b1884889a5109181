"""The report: report.md for people, summary.json for programs, results.parquet for analysis.

`write_report` needs only a run folder's results.parquet and the run's metadata, so
`evalrun report RUN_DIR` re-renders a run without asking any model. It never loads the
whole table: statistics and totals are aggregations over a scan of the file (memory
follows the number of items, not of responses), and the few prompts and answers the
report quotes are fetched from it by filter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ..stats.summary import summarize
from .markdown import axes, render_markdown

SUMMARY_VERSION = 1
RESULTS = "results.parquet"
READINGS = "readings.parquet"  # every reader's label, for variants with more than one


def _totals(responses: pl.LazyFrame) -> dict[str, Any]:
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
    }




def build_summary(responses: pl.LazyFrame, meta: dict[str, Any], readings: pl.LazyFrame | None = None
                  ) -> dict[str, Any]:
    """summary.json from the responses (a scan of results.parquet), the readers' readings (a scan of
    readings.parquet, for variants with more than one reader) and the run's metadata."""
    stats = summarize(responses, meta["labels"], [tuple(p) for p in meta["compare"]], meta["variants"],
                      meta["has_gold"], axes(meta), readings, meta.get("readers"), bool(meta.get("ordinal")),
                      meta.get("slices", []))
    return {"summary_version": SUMMARY_VERSION, "run": meta, "totals": _totals(responses), "statistics": stats}



def write_report(run_dir: Path, meta: dict[str, Any], figures: bool = True, csv: bool = False) -> dict[str, Any]:
    """summary.json and report.md (with PNG figures under figures/ unless `figures` is off, and
    results.csv with `csv`) for the run folder holding results.parquet; returns the summary."""
    from .figures import draw

    results = run_dir / RESULTS
    readings = run_dir / READINGS
    summary = build_summary(pl.scan_parquet(results), meta, pl.scan_parquet(readings) if readings.exists() else None)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    drawn = draw(summary, run_dir) if figures else []
    (run_dir / "report.md").write_text(render_markdown(results, summary, drawn), encoding="utf-8")
    if csv:  # streamed, like the statistics: a large run is never held whole
        pl.scan_parquet(results).sink_csv(run_dir / "results.csv")
    return summary


def rerender(run_dir: Path) -> Path:
    """Rebuild report.md and summary.json from a run folder's results.parquet and metadata."""
    meta = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["run"]
    write_report(run_dir, meta)
    return run_dir / "report.md"
