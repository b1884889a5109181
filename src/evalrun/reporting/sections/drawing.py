"""The figures of each section of report.md, drawn in the house style of figures.py (which calls `draw_sections`
from `figures.draw`): the agreement between variants, labels (per variant and per paraphrase), accuracy,
each variant across the levels of an optional crossed axis (the conditions), and the option orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...stats.grouping import Grouping, breakdown, compared
from ..figures import (
    MAX_ROWS,
    PALETTE,
    SEP,
    Painter,
    Row,
    confusion_heatmap,
    interval_chart,
    shares_chart,
    short,
    slug,
    who,
)
from ..format import num, pct, pp
from .common import all_labels, grouping, several


def _kappa_rows(entries: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[Row]:
    rows = []
    for e in entries:
        k = e["cohen_kappa"]
        interval = k["ci_low"] is not None and k["ci_high"] is not None
        if k["kappa"] is None:
            note = f"undefined, n={e['both_labelled']}"
        elif interval:
            note = f"{num(k['kappa'])} [{num(k['ci_low'])}, {num(k['ci_high'])}], n={e['both_labelled']}"
        else:
            note = f"{num(k['kappa'])} (no interval), n={e['both_labelled']}"
        rows.append(Row(f"{who(e, *keys)}{SEP}{short(e['a'], 20)} vs {short(e['b'], 20)}", k["kappa"],
                        k["ci_low"] if interval else None, k["ci_high"] if interval else None, note))
    return rows


def _kappa_alt(rows: Sequence[Row]) -> str:
    return (f"Forest plot of Cohen's kappa with 95% intervals, {len(rows)} rows: "
            + "; ".join(f"{r.label}: {r.note}" for r in rows[:8]) + ("; ..." if len(rows) > 8 else ""))


def _chunks(entries: Sequence[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """No chart without entries, all entries in one, or one per model when they would not fit legibly."""
    if not entries:
        return []
    if len(entries) <= MAX_ROWS:
        return [(None, list(entries))]
    models = list(dict.fromkeys(e["model"] for e in entries))
    return [(m, [e for e in entries if e["model"] == m]) for m in models]


def _for(model: str | None) -> str:
    return "" if model is None else f", {short(model)}"


def _agreement(painter: Painter, stats: dict[str, Any], by: Grouping) -> None:
    for pair in stats["pairs"]:
        confusion_heatmap(painter, pair, who(pair, *by.crossed), section="agreement",
                          stem=slug("confusion", *by.levels(pair), pair["a"], pair["b"]))
    for model, chunk in _chunks(stats["pairs"]):
        rows = _kappa_rows(chunk, by.crossed)
        interval_chart(painter, rows, title=f"Agreement between variants: Cohen's kappa{_for(model)}",
                       alt=_kappa_alt(rows), section="agreement", stem=slug("kappa", model), zero=0.0,
                       xlabel="Cohen's kappa with 95% interval (0 = chance agreement, 1 = perfect)",
                       ylabel="model · condition · pair", xlim=(-1.05, 1.05))


def _accuracy(painter: Painter, stats: dict[str, Any], by: Grouping) -> None:
    entries = [v for v in stats["variants"] if "accuracy" in v]
    if not entries:
        return
    variants = list(dict.fromkeys(v["variant"] for v in entries))
    for model, chunk in _chunks(entries):
        rows = []
        for v in chunk:
            acc = v["accuracy"]
            note = "no gold items" if acc["estimate"] is None else (
                f"{pct(acc['estimate'], 0)} [{pct(acc['ci_low'], 0)}, {pct(acc['ci_high'], 0)}], "
                f"{acc['count']}/{acc['n']}")
            rows.append(Row(who(v, *by.group), acc["estimate"], acc["ci_low"], acc["ci_high"],
                            note, PALETTE[variants.index(v["variant"]) % len(PALETTE)]))
        interval_chart(painter, rows, title=f"Accuracy against the gold labels{_for(model)}",
                       alt="Accuracy per variant with 95% Wilson intervals: "
                           + "; ".join(f"{r.label}: {r.note}" for r in rows),
                       section="accuracy", stem=slug("accuracy", model), zero=None, percent=True,
                       xlabel="gold items labelled correctly (unparsed = wrong), 95% Wilson interval",
                       ylabel="model · condition · variant", xlim=(0, 1))


def _labels(painter: Painter, stats: dict[str, Any], labels: Sequence[str], by: Grouping) -> None:
    keys = [k for k in by.group if any(k in v for v in stats["variants"])]
    for model, chunk in _chunks(stats["variants"]):
        shares_chart(painter, chunk, keys, labels, title=f"Labels per variant{_for(model)}", section="labels",
                      stem=slug("labels", model))
    # like the report's table: only variants asked in more than one wording
    shown = several(stats.get("paraphrases", []), "paraphrase")
    for model, chunk in _chunks(shown):
        shares_chart(painter, chunk, [*keys, "paraphrase"], labels,
                      title=f"Labels per paraphrase (numbered from 0){_for(model)}", section="labels",
                      stem=slug("labels-paraphrases", model))


def _across(painter: Painter, stats: dict[str, Any], by: Grouping, axis: str) -> None:
    """Each variant across the levels of an optional crossed axis (the conditions)."""
    entries, plural, within = stats.get(compared(axis), []), breakdown(axis), by.within(axis)
    for c in entries:
        confusion_heatmap(painter, c, who(c, *within), section=plural,
                          stem=slug(f"confusion-{plural}", *by.levels(c, within), c["a"], c["b"]))
    for model, chunk in _chunks(entries):
        rows = _kappa_rows(chunk, within)
        interval_chart(painter, rows, title=f"Each variant across {plural}: Cohen's kappa{_for(model)}",
                       alt=_kappa_alt(rows), section=plural, stem=slug(f"kappa-{plural}", model), zero=0.0,
                       xlabel=f"Cohen's kappa with 95% interval (1 = the {axis} changed no answer)",
                       ylabel=f"{SEP.join(within)}{SEP}{plural}", xlim=(-1.05, 1.05))


def _gap_rows(entries: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[Row]:
    """Per comparison, each label's difference a - b in its rate (stats/summary.py `label_effects`); with two
    labels the second label's is the first's mirrored, so only the first is drawn."""
    rows = []
    for e in entries:
        effects = e.get("effects", [])
        for effect in effects[:1] if len(effects) == 2 else effects:
            d = effect["difference"]
            interval = d["ci_low"] is not None and not d.get("degenerate")
            note = (f"{pp(d['estimate'])} [{pp(d['ci_low'])}, {pp(d['ci_high'])}] points" if interval
                    else f"{pp(d['estimate'])} points (no interval)") + f", n={effect['items']}"
            # drawn in points (x 100): a difference of two percentages is not a percentage
            rows.append(Row(f"{who(e, *keys)}{SEP}{short(effect['label'], 16)}: {short(e['a'], 16)} - "
                            f"{short(e['b'], 16)}", _points(d["estimate"]), _points(d["ci_low"]) if interval else None,
                            _points(d["ci_high"]) if interval else None, note))
    return rows


def _points(x: float | None) -> float | None:
    return None if x is None else 100 * x


def _gaps(painter: Painter, stats: dict[str, Any], by: Grouping, axis: str) -> None:
    """The effect of each crossed axis's levels: the gap in a label's rate between two levels, per comparison."""
    entries, plural, within = stats.get(compared(axis), []), breakdown(axis), by.within(axis)
    for model, chunk in _chunks([e for e in entries if e.get("effects")]):
        rows = _gap_rows(chunk, within)
        interval_chart(painter, rows, title=f"The gap between {plural}: a label's rate, a - b{_for(model)}",
                       alt=(f"Forest plot of the difference in a label's rate between two {plural}, in percentage "
                            f"points with paired bootstrap 95% intervals by item, {len(rows)} rows: "
                            + "; ".join(f"{r.label}: {r.note}" for r in rows[:8]) + ("; ..." if len(rows) > 8 else "")),
                       section=plural, stem=slug(f"gap-{plural}", model), zero=0.0,
                       xlabel="difference in percentage points (0: no gap)",
                       ylabel=f"{SEP.join(within)}{SEP}label", xlim=(-105.0, 105.0))


def _orders(painter: Painter, stats: dict[str, Any], labels: Sequence[str], by: Grouping) -> None:
    entries = stats.get("option_orders", [])
    if not entries:
        return
    keys = [k for k in (*by.group, "option_order") if k in entries[0]]
    for model, chunk in _chunks(entries):
        shares_chart(painter, chunk, keys, labels, title=f"Labels per option order{_for(model)}", section="orders",
                      stem=slug("labels-orders", model))
    rows = []
    for e in entries:
        share = e["first_position"]
        options = len(str(e["option_order"]).split(", "))
        rows.append(Row(who(e, *keys), share["estimate"], share["ci_low"], share["ci_high"],
                        f"{pct(share['estimate'], 0)}, {share['count']}/{share['n']}", reference=1 / options))
    interval_chart(painter, rows, title="Position bias: answers picking the option listed first",
                   alt="Share of readable answers that picked the option listed first, per option order, with 95% "
                       "Wilson intervals; the grey mark is 1 / number of options (no position bias): "
                       + "; ".join(f"{r.label}: {r.note}" for r in rows[:8]) + ("; ..." if len(rows) > 8 else ""),
                   section="orders", stem="position-bias", zero=None, xlim=(0, 1), percent=True,
                   xlabel="readable answers naming the first-listed option, 95% Wilson interval",
                   ylabel=SEP.join(keys))


def draw_sections(painter: Painter, summary: dict[str, Any]) -> None:
    """Every figure the summary supports, in report order (per section: agreement, labels, accuracy,
    the crossed axes' levels, orders)."""
    stats, labels, by = summary["statistics"], all_labels(summary["run"]), grouping(summary["run"])
    _agreement(painter, stats, by)
    _labels(painter, stats, labels, by)
    _accuracy(painter, stats, by)
    for axis in by.optional:
        _gaps(painter, stats, by, axis)
        _across(painter, stats, by, axis)
    _orders(painter, stats, labels, by)
