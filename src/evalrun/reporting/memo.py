"""A memo of the report's two costly parts, the statistics and the figures, keyed by all they come from.

A rerun whose answers all come from the store has the same results table as the run before it, so
the same statistics and the same figures; computing them again imports statsmodels, scipy and
matplotlib and draws every PNG (about 1.5 s on 2 cores, most of a stored rerun). The memo keeps
each result under a key made of:

- the code: every source file of evalrun and the versions of Python and of the libraries that
  compute or draw (numpy, scipy, statsmodels, polars, matplotlib), so a change to either misses;
- for the statistics: the run's metadata except what names this run alone (id, start, duration),
  and a digest of every row of results.parquet and readings.parquet, every column but `cached`
  (where an answer came from, not what it says);
- for the figures: the statistics and the labels, all that `figures.draw` reads.

Entries live in `$EVALRUN_HOME/cache/reports/<key>/`; the KEEP most recently used are kept. The memo
is best effort: an entry that cannot be read or written is computed instead, never an error.

An entry's content is fixed by its key, so the only valid content is exactly what was saved: each file
holds its body with a SHA-256 of it (and figures.json that of every PNG), and an entry whose digests do not
match (edited, truncated, of another shape) is dropped and computed again before any of it reaches a
report. This checks every field at once, where a check of the shape would repeat summary.schema.json.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import polars as pl

from .figures import Figure

KEEP = 64
STATISTICS = "statistics.json"
FIGURES = "figures.json"
# what names one run rather than what it found: two runs differing only here have the same statistics
RUN_ONLY = ("run_id", "started", "duration_s")
LIBRARIES = ("numpy", "scipy", "statsmodels", "polars", "matplotlib")


def root() -> Path:
    from ..store import home

    return home() / "cache" / "reports"


@functools.cache
def _code() -> str:
    h = hashlib.sha256(sys.version.encode())
    for name in LIBRARIES:
        try:
            h.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            h.update(f"{name}=none;".encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def digest(path: Path) -> str:
    """A digest of a parquet file's rows in order, every column but `cached`; "none" if there is no file."""
    if not path.exists():
        return "none"
    scan = pl.scan_parquet(path)
    schema = scan.collect_schema()
    columns = [name for name in schema.names() if name != "cached"]
    hashes = scan.select(pl.struct(columns).hash(seed=0).alias("h")).collect(engine="streaming")["h"]
    h = hashlib.sha256(repr([(name, str(schema[name])) for name in columns]).encode())
    h.update(hashes.to_numpy().tobytes())
    return h.hexdigest()


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([_code(), *parts], sort_keys=True, default=str).encode()).hexdigest()[:32]


def statistics_key(meta: dict[str, Any], results: Path, readings: Path) -> str:
    return _key("statistics", {k: v for k, v in meta.items() if k not in RUN_ONLY}, digest(results), digest(readings))


def figures_key(statistics: dict[str, Any], labels: list[str]) -> str:
    return _key("figures", statistics, labels)


def _entry(key: str) -> Path:
    return root() / key


def _used(folder: Path) -> None:
    try:
        os.utime(folder)  # most recently used, so pruning keeps it
    except OSError:  # a read-only memo still answers; it is pruned by age alone
        return


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_sealed(path: Path, body: object) -> None:
    path.write_text(json.dumps({"sha256": _sha(json.dumps(body).encode()), "body": body}), encoding="utf-8")


def _read_sealed(path: Path) -> Any:
    """The body of an entry file, checked against its digest (a body written by json.dumps dumps back the same)."""
    sealed = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(sealed, dict) or sealed.keys() != {"sha256", "body"} \
            or sealed["sha256"] != _sha(json.dumps(sealed["body"]).encode()):
        raise ValueError(f"{path}: not what was saved")
    return sealed["body"]


def _drop(folder: Path) -> None:
    """Remove an entry that failed its check, so the computed result can be saved in its place."""
    shutil.rmtree(folder, ignore_errors=True)


def load_statistics(key: str) -> dict[str, Any] | None:
    folder = _entry(key)
    if not (folder / STATISTICS).is_file():
        return None
    try:
        statistics = _read_sealed(folder / STATISTICS)
    except (OSError, ValueError):  # unreadable, not JSON, or not what was saved
        _drop(folder)
        return None
    _used(folder)
    return statistics


def save_statistics(key: str, statistics: dict[str, Any]) -> None:
    _save(key, lambda folder: _write_sealed(folder / STATISTICS, statistics))


def restore_figures(key: str, run_dir: Path) -> list[Figure] | None:
    """The memo's figures copied into the run folder, or None (nothing copied) if it has none for `key`."""
    folder = _entry(key)
    if not (folder / FIGURES).is_file():
        return None
    try:
        records = _read_sealed(folder / FIGURES)
        figures = [Figure(Path(r["path"]), r["title"], r["alt"], r["section"]) for r in records]
        pngs = [(folder / fig.path.name).read_bytes() for fig in figures]
        if [_sha(png) for png in pngs] != [r["sha256"] for r in records]:
            raise ValueError(f"{folder}: a figure is not what was saved")
    except (OSError, ValueError, KeyError, TypeError):  # unreadable, not JSON, a PNG missing, not what was saved
        _drop(folder)
        return None
    for fig, png in zip(figures, pngs, strict=True):
        target = run_dir / fig.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    _used(folder)
    return figures


def save_figures(key: str, run_dir: Path, figures: list[Figure]) -> None:
    def write(folder: Path) -> None:
        records = []
        for fig in figures:
            png = (run_dir / fig.path).read_bytes()
            (folder / fig.path.name).write_bytes(png)
            records.append({"path": fig.path.as_posix(), "title": fig.title, "alt": fig.alt, "section": fig.section,
                            "sha256": _sha(png)})
        _write_sealed(folder / FIGURES, records)

    _save(key, write)


def _save(key: str, write: Callable[[Path], object]) -> None:
    """Write an entry into a temporary folder and rename it into place, so no reader sees half of one
    and two runs saving the same key at once leave one whole entry; then drop the least recently used."""
    base = root()
    try:
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=base))
        try:
            write(staging)
            staging.rename(base / key)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return
        entries = sorted((p for p in base.iterdir() if not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:  # a read-only or full EVALRUN_HOME costs the memo, never the report
        return
