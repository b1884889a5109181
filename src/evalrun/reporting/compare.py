"""Comparing runs of one spec (a base model and its fine-tune, last week and today): compare.md with figures.

A run is read only from its folder: summary.json for what was run, results.parquet for the
item-level labels. The first run is the baseline; every later run is set against it. For each
model x condition x variant both runs asked (the levels of every crossed axis, see stats/grouping.py),
over the items both asked: each run's accuracy and
item-level label shares, each compared pair's agreement and Cohen's kappa, the difference (later
minus baseline) with a paired bootstrap interval (the same resampled items for both runs, so an
item's own difficulty cancels), and the items whose item-level label changed.

Models are matched by name; two runs of one model each are matched whatever their names, which
is how a base model is set against its fine-tune. Where the matched models differ (in name or in
the model asked), compare.md also says, for each compared pair (the first variant the stated
answer, the second behaviour), whether the change in the stated answer tracks the change in
behaviour item by item (reporting/tracking.py; the statistics in stats/tracking.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..design.axes import registered
from ..errors import EvalrunError, short
from ..extract import UNPARSED
from ..stats.agreement import agreeing
from ..stats.bootstrap import RESAMPLES, SEED, bootstrap_difference, bootstrap_ratio_difference, kappa_statistic
from ..stats.inference import correct
from ..stats.items import item_labels
from ..stats.summary import own
from . import RESULTS
from .figures import PALETTE, Figure, Painter, Row, figure_lines, interval_chart
from .format import num, share
from .format import pp as _pp
from .sections.common import grouping
from .tracking import tracking_lines

CHANGED_SHOWN = 20  # changed items listed per model x variant; the rest are counted
REPORT = "compare.md"


@dataclass(frozen=True)
class _Run:
    dir: Path
    meta: dict[str, Any]
    stats: dict[str, Any]
    items: pl.DataFrame  # item-level labels: model, a column per crossed axis, variant, item_id, gold, label
    crossed: tuple[str, ...]  # the crossed axes besides the model, which a cell is keyed by


@dataclass(frozen=True)
class _Cell:
    """One model x crossed levels (a condition) x variant in both runs, aligned on the items both asked."""

    model_a: str
    model_b: str
    levels: tuple[str | None, ...]  # of the baseline's crossed axes besides the model
    variant: str
    items: pl.DataFrame  # item_id, gold, label (baseline), label_b


def _mapping(summary: object, key: str) -> dict[str, Any]:
    if not isinstance(summary, dict):
        raise TypeError(f"a {type(summary).__name__}, not a mapping")
    value = summary[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key!r} is {type(value).__name__}, not a mapping")
    return value


def _load(run_dir: Path) -> _Run:
    summary_path, results = run_dir / "summary.json", run_dir / RESULTS
    if not summary_path.is_file() or not results.is_file():
        raise EvalrunError(f"{run_dir}: not a run folder (it needs summary.json and {RESULTS})")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        meta, stats = _mapping(summary, "run"), _mapping(summary, "statistics")
        # every field the comparison reads, read once here: a hand-edited summary fails naming its file
        by = grouping(meta)
        crossed = by.others("model")
        (meta["name"], meta["run_id"], meta["started"], meta["has_gold"], sorted(meta["labels"]),
         [(m["name"], m["model"]) for m in meta["models"]],
         [(e["model"], *by.levels(e, crossed), e["variant"]) for e in stats["variants"]],
         [(p["model"], *by.levels(p, crossed), p["a"], p["b"]) for p in stats["pairs"]])
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EvalrunError(f"{summary_path}: cannot read it: {exc}") from None
    except KeyError as exc:
        raise EvalrunError(f"{summary_path}: not a run's summary: no {exc.args[0]!r} key") from None
    except (TypeError, AttributeError) as exc:  # a field of another type: a number where a mapping belongs
        raise EvalrunError(f"{summary_path}: not a run's summary: {' '.join(str(exc).split())}") from None
    try:
        items = item_labels(pl.scan_parquet(results), by.group)
    except pl.exceptions.PolarsError as exc:
        raise EvalrunError(f"{results}: cannot read it: {short(exc, 300)}") from None
    # a crossed axis this run did not use (results of release 0.1 have no condition column) has no level
    absent = [a.name for a in registered() if a.crossed and a.name not in items.columns]
    items = items.with_columns(pl.lit(None, dtype=pl.String).alias(name) for name in absent)
    return _Run(run_dir, meta, stats, items, crossed)


def _check_same_spec(base: _Run, other: _Run) -> None:
    if base.meta["name"] != other.meta["name"]:
        raise EvalrunError(f"runs of different specs: {base.dir} ran '{base.meta['name']}', "
                           f"{other.dir} ran '{other.meta['name']}'")
    if sorted(base.meta["labels"]) != sorted(other.meta["labels"]):
        raise EvalrunError(f"runs with different labels: {base.dir} has {base.meta['labels']}, "
                           f"{other.dir} has {other.meta['labels']}")
    if base.meta.get("variant_labels") != other.meta.get("variant_labels"):
        raise EvalrunError(f"runs whose variants read different labels: {base.dir} and {other.dir}")


def _model_pairs(base: _Run, other: _Run) -> list[tuple[str, str]]:
    names_a = [m["name"] for m in base.meta["models"]]
    names_b = [m["name"] for m in other.meta["models"]]
    shared = [n for n in names_a if n in names_b]
    if shared:
        return [(n, n) for n in shared]
    if len(names_a) == len(names_b) == 1:
        return [(names_a[0], names_b[0])]
    raise EvalrunError(f"runs share no model ({', '.join(names_a)} vs {', '.join(names_b)}); runs of different "
                       "models can be compared only when each ran exactly one model")


def _model_of(run: _Run, name: str) -> str:
    """The model a run's model entry `name` asked (its address, as the spec gave it)."""
    return next(str(m["model"]) for m in run.meta["models"] if m["name"] == name)


def _rows(run: _Run, model: str, crossed: tuple[str, ...], levels: tuple[str | None, ...], variant: str
          ) -> pl.DataFrame:
    at = [pl.col(axis).eq_missing(pl.lit(level, dtype=pl.String)) for axis, level in zip(crossed, levels, strict=True)]
    return run.items.filter(pl.all_horizontal(pl.col("model") == model, *at, pl.col("variant") == variant))


def _cells(base: _Run, other: _Run) -> list[_Cell]:
    cells = []
    for model_a, model_b in _model_pairs(base, other):
        for entry in base.stats["variants"]:
            if entry["model"] != model_a:
                continue
            levels, variant = tuple(entry.get(k) for k in base.crossed), entry["variant"]
            left = _rows(base, model_a, base.crossed, levels, variant).select("item_id", "gold", "label")
            right = _rows(other, model_b, base.crossed, levels, variant).select("item_id",
                                                                             pl.col("label").alias("label_b"))
            joined = left.join(right, on="item_id", how="inner", maintain_order="left")
            if joined.height:
                cells.append(_Cell(model_a, model_b, levels, variant, joined))
    if not cells:
        raise EvalrunError(f"{base.dir} and {other.dir} share no items: no item was asked of the same model, "
                           "variant (and condition) in both runs")
    return cells


def _place(cell: _Cell, *rest: str) -> str:
    model = cell.model_a if cell.model_a == cell.model_b else f"{cell.model_a} → {cell.model_b}"
    return " · ".join(x for x in (model, *cell.levels, *rest) if x is not None)


def _signed(x: float | None) -> str:
    return num(x, signed=True)


def _interval(diff: dict[str, Any], fmt: Callable[[float | None], str]) -> str:
    """`+12.5 [+2.1, +22.9]`, with the caveats of the bootstrap result."""
    text = fmt(diff["estimate"])
    if diff["ci_low"] is None:
        return text + " (no interval: undefined on every resample)"
    # every resample alike: a zero-width interval would read as certainty, so none is printed
    text += (f" [no interval: every resample gave {fmt(diff['ci_low'])}]" if diff["degenerate"]
             else f" [{fmt(diff['ci_low'])}, {fmt(diff['ci_high'])}]")
    if diff["dropped"]:
        text += f" ({diff['dropped']} of {diff['resamples']} resamples undefined)"
    return text


def _ratio(num: np.ndarray, den: np.ndarray) -> str:
    return f"{share(int(num.sum()), int(den.sum()))} ({int(num.sum())}/{int(den.sum())})" if den.sum() else "n/a"


def _statistics(cell: _Cell, labels: Sequence[str], has_gold: bool) -> tuple[list[str], list[Row]]:
    """Table rows (accuracy, then each label's item share) and figure rows (accuracy difference) of a cell."""
    a, b = cell.items["label"].to_list(), cell.items["label_b"].to_list()
    lines, rows = [], []
    if has_gold:
        gold = cell.items["gold"].to_list()
        right_a, has = correct(a, gold)
        right_b, _ = correct(b, gold)
        diff = bootstrap_ratio_difference(right_b, has, right_a, has)
        lines.append(f"| accuracy | {_ratio(right_a, has)} | {_ratio(right_b, has)} | {_interval(diff, _pp)} |")
        rows.append(Row(_place(cell, cell.variant), diff["estimate"], diff["ci_low"], diff["ci_high"],
                        f"{_pp(diff['estimate'])} pp", PALETTE[0]))
    # a label's share is of the items with a label read in that run, as in report.md; unparsed, of every item
    read_a, read_b = (np.array([x is not None for x in side], dtype=float) for side in (a, b))
    ones = np.ones(cell.items.height)
    for label, of_a, of_b, row in [*((label, read_a, read_b, f"items labelled *{label}*") for label in labels),
                                   (None, ones, ones, f"items {UNPARSED}")]:
        in_a = np.array([x == label for x in a], dtype=float)
        in_b = np.array([y == label for y in b], dtype=float)
        diff = bootstrap_ratio_difference(in_b, of_b, in_a, of_a)
        lines.append(f"| {row} | {_ratio(in_a, of_a)} | {_ratio(in_b, of_b)} | {_interval(diff, _pp)} |")
    return lines, rows


def _pair_vectors(base: _Run, other: _Run, cell_a: _Cell, cell_b: _Cell) -> pl.DataFrame:
    """Items both runs asked of both variants: the baseline's and the other run's label for each."""
    def side(run: _Run, model: str, cell: _Cell, name: str) -> pl.DataFrame:
        return _rows(run, model, base.crossed, cell.levels, cell.variant).select("item_id",
                                                                                 pl.col("label").alias(name))

    frame = side(base, cell_a.model_a, cell_a, "a_1")
    for run, model, cell, name in ((base, cell_b.model_a, cell_b, "b_1"), (other, cell_a.model_b, cell_a, "a_2"),
                                   (other, cell_b.model_b, cell_b, "b_2")):
        frame = frame.join(side(run, model, cell, name), on="item_id", how="inner", maintain_order="left")
    return frame


def _pair_frames(base: _Run, other: _Run, cells: list[_Cell]) -> list[tuple[_Cell, str, pl.DataFrame]]:
    """Every compared pair both runs asked: its first variant's cell, where it is, and `_pair_vectors`."""
    by_key = {(c.model_a, *c.levels, c.variant): c for c in cells}
    out = []
    for pair in base.stats["pairs"]:
        key = (pair["model"], *(pair.get(k) for k in base.crossed))
        cell_a, cell_b = by_key.get((*key, pair["a"])), by_key.get((*key, pair["b"]))
        if cell_a is None or cell_b is None:
            continue
        frame = _pair_vectors(base, other, cell_a, cell_b)
        if frame.height:
            out.append((cell_a, _place(cell_a, f"{pair['a']} vs {pair['b']}"), frame))
    return out


def _pairs(frames: list[tuple[_Cell, str, pl.DataFrame]], labels_of: Callable[[str], Sequence[str]]
           ) -> tuple[list[str], list[Row]]:
    """Table rows (kappa and agreement in each run, and their differences) and figure rows (kappa
    difference) of every compared pair both runs asked (over the labels its variants read)."""
    lines, rows = [], []
    for cell, where, frame in frames:
        labels = labels_of(cell.variant)
        a_1, b_1, a_2, b_2 = (frame[name].to_list() for name in ("a_1", "b_1", "a_2", "b_2"))
        kappa_1, kappa_2 = kappa_statistic(a_1, b_1, labels), kappa_statistic(a_2, b_2, labels)
        every = np.arange(frame.height)
        kappa_diff = bootstrap_difference(kappa_2, kappa_1, frame.height)
        (same_1, both_1), (same_2, both_2) = agreeing(a_1, b_1), agreeing(a_2, b_2)
        agree_diff = bootstrap_ratio_difference(same_2, both_2, same_1, both_1)
        k_1, k_2 = num(kappa_1(every), missing="undefined"), num(kappa_2(every), missing="undefined")
        lines.append(f"| {where} | {frame.height} | {k_1} | {k_2} | "
                     f"{_interval(kappa_diff, _signed)} | {_ratio(same_1, both_1)} | {_ratio(same_2, both_2)} | "
                     f"{_interval(agree_diff, _pp)} |")
        rows.append(Row(where, kappa_diff["estimate"], kappa_diff["ci_low"], kappa_diff["ci_high"],
                        _signed(kappa_diff["estimate"]), PALETTE[1]))
    return lines, rows


def _changed(cell: _Cell) -> list[str]:
    changed = cell.items.filter(pl.col("label").ne_missing(pl.col("label_b")))
    if not changed.height:
        return []
    out = [f"**{_place(cell, cell.variant)}**: {changed.height} of {cell.items.height} items changed label"
           + (f"; the first {CHANGED_SHOWN}:" if changed.height > CHANGED_SHOWN else ":"), "",
           "| item | gold | baseline | this run |", "|---|---|---|---|"]
    for item, gold, a, b in changed.head(CHANGED_SHOWN).select("item_id", "gold", "label", "label_b").iter_rows():
        out.append(f"| {item} | {gold or '-'} | {a or UNPARSED} | {b or UNPARSED} |")
    return [*out, ""]


def _describe(run: _Run, role: str) -> str:
    models = ", ".join(f"`{m['name']}` ({m['model']})" for m in run.meta["models"])
    return f"- {role}: `{run.dir}` (run {run.meta['run_id']}, started {run.meta['started']}), models {models}"


def _versus(base: _Run, other: _Run, painter: Painter, index: int) -> list[str]:
    _check_same_spec(base, other)
    cells = _cells(base, other)
    # a variant reading labels of its own is counted in them, as report.md counts it (stats/summary.py `own`)
    labels_of = partial(own, base.meta["labels"], base.meta.get("variant_labels"))
    has_gold = base.meta["has_gold"] and other.meta["has_gold"]
    out = [f"## {other.meta['run_id']} against {base.meta['run_id']}", ""]
    figure_rows: list[Row] = []
    for cell in cells:
        asked_a = _rows(base, cell.model_a, base.crossed, cell.levels, cell.variant).height
        asked_b = _rows(other, cell.model_b, base.crossed, cell.levels, cell.variant).height
        lines, rows = _statistics(cell, labels_of(cell.variant), has_gold)
        figure_rows += rows
        out += [f"### {_place(cell, cell.variant)}", "",
                f"{cell.items.height} shared items (baseline asked {asked_a}, this run {asked_b}).", "",
                "| statistic | baseline | this run | difference, pp [95% CI] |", "|---|---|---|---|", *lines, ""]
    frames = _pair_frames(base, other, cells)
    pair_lines, kappa_rows = _pairs(frames, labels_of)
    figures: list[Figure] = []
    if figure_rows:
        figures.append(interval_chart(
            painter, figure_rows, title=f"Accuracy, {other.meta['run_id']} minus {base.meta['run_id']}",
            alt="Difference in accuracy (this run minus the baseline) with 95% paired bootstrap intervals: "
                + "; ".join(f"{r.label}: {r.note}" for r in figure_rows),
            section="accuracy", stem=f"compare-{index}-accuracy", xlabel="difference in accuracy (percentage "
            "points / 100), 95% paired bootstrap interval", ylabel="model · condition · variant", xlim=(-1, 1),
            zero=0.0))
    if pair_lines:
        out += ["### Agreement between variants", "",
                "| model · condition · pair | items | kappa, baseline | kappa, this run | difference [95% CI] | "
                "agreement, baseline | agreement, this run | difference, pp [95% CI] |",
                "|---|---|---|---|---|---|---|---|", *pair_lines, ""]
        figures.append(interval_chart(
            painter, kappa_rows, title=f"Cohen's kappa, {other.meta['run_id']} minus {base.meta['run_id']}",
            alt="Difference in Cohen's kappa (this run minus the baseline) with 95% paired bootstrap intervals: "
                + "; ".join(f"{r.label}: {r.note}" for r in kappa_rows),
            section="agreement", stem=f"compare-{index}-kappa", xlabel="difference in Cohen's kappa, 95% paired "
            "bootstrap interval", ylabel="model · condition · pair", xlim=(-2, 2), zero=0.0))
    for section in ("accuracy", "agreement"):
        out += figure_lines(figures, section)
    for model_a, model_b in _model_pairs(base, other):
        # two models (by name or by address): whether the stated answer's change tracks behaviour's
        if (model_a, _model_of(base, model_a)) != (model_b, _model_of(other, model_b)):
            mine = [(cell, where, frame) for cell, where, frame in frames if cell.model_a == model_a]
            for labels in dict.fromkeys(tuple(labels_of(cell.variant)) for cell, _, _ in mine):
                out += tracking_lines([(where, frame) for cell, where, frame in mine
                                       if tuple(labels_of(cell.variant)) == labels], labels, model_a, model_b)
    changed = [line for cell in cells for line in _changed(cell)]
    out += ["### Items whose label changed", "", *(changed or ["No item changed its item-level label."]), ""]
    return out


def compare_runs(run_dirs: Sequence[Path], out: Path) -> Path:
    """Write `out`/compare.md (and its figures under `out`/figures) comparing every run with the first;
    returns the path of compare.md. Raises EvalrunError for fewer than two runs, runs of different
    specs or labels, runs with no model in common, or runs that share no items."""
    if len(run_dirs) < 2:
        raise EvalrunError("compare needs at least two run folders")
    runs = [_load(Path(d)) for d in run_dirs]
    base = runs[0]
    lines = [f"# {base.meta['name']}: comparing {len(runs)} runs", "", _describe(base, "baseline"),
             *(_describe(r, f"run {i}") for i, r in enumerate(runs[1:], start=1)), "",
             "Each run is set against the baseline over the items both asked of the same model, condition and "
             "variant. Values are item-level (the modal label over an item's answers: its samples, and its paraphrases "
             "and option orders where the variant has them; a tie or no readable answer is "
             f"unparsed, and counts as wrong for accuracy). Differences are this run minus the baseline "
             f"(percentage points for shares) with 95% percentile intervals from a paired bootstrap over items "
             f"({RESAMPLES} resamples, seed {SEED}): each resample draws the same items for both runs. "
             "\"Items labelled X\" is a share of the items with a label read (as in report.md); \"items unparsed\", "
             "of every shared item.", ""]
    # `out`, or a folder it would be created in, is a file
    blocker = next((p for p in [out, *out.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise EvalrunError(f"{blocker}: is a file, not a folder (the comparison writes {REPORT} and figures/ "
                           f"into {out})")
    out.mkdir(parents=True, exist_ok=True)
    with Painter(out) as painter:
        for index, other in enumerate(runs[1:], start=1):
            lines += _versus(base, other, painter, index)
    path = out / REPORT
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
