"""The sections of the crossed axes (see stats/grouping.py): each variant compared across the levels of an
axis a spec may add (the conditions), and the models ranked and compared."""

from __future__ import annotations

from typing import Any

from ...stats.grouping import breakdown, compared
from ..figures import figure_lines
from ..format import num as _f
from ..format import pct as _pct
from ..format import pp
from .common import Context, agreement_table, boot, confusion, head, p_text, rate_text, row


def effects(ctx: Context, axis: str) -> list[str]:
    """The effect of the levels of a crossed axis label by label (stats/levels.py `label_effects`), and the
    comparisons equal by construction (the same requests at both levels), which are not tested."""
    pairs = [c for c in ctx.stats.get(compared(axis), []) if "effects" in c]
    constructed = ctx.stats.get(f"{compared(axis)}_by_construction", [])
    keys = [k for k in ctx.grouping.within(axis) if (pairs or constructed) and k in (pairs or constructed)[0]]
    out: list[str] = []
    if pairs:
        out += ["", f"Each label's rate under each {axis}, over the items read under both (Wilson 95% intervals), and "
                "the paired difference in percentage points (bootstrap 95% interval by item, unadjusted). The test of "
                "a label's rate is McNemar's exact test on the items that gave it under one level only; with two "
                "labels one test serves both.", "",
                *head([*keys, breakdown(axis), "items", "label", "rate a [95% CI]", "rate b [95% CI]",
                       "a - b, points [bootstrap 95%]", "McNemar exact"])]
        for c in pairs:
            for e in c["effects"]:
                test = c["label_rates_differ"] if len(c["effects"]) == 2 else e.get("mcnemar")
                out.append(row([*(str(c[k]) for k in keys), f"{c['a']} vs {c['b']}", str(e["items"]), e["label"],
                                rate_text(e["a"]), rate_text(e["b"]), f"{pp(e['difference']['estimate'])} "
                                f"{boot(e['difference'], pp)}", p_text(test)]))
    if constructed:
        out += ["", f"Equal by construction, so not tested (the prompt does not use the {axis}: both levels sent the "
                "same requests, answered once):", ""]
        out += [f"- {', '.join(str(c[k]) for k in keys)}: {c['a']} vs {c['b']}, {c['items']} items"
                for c in constructed]
    return out


def across(ctx: Context, axis: str) -> list[str]:
    """Each variant across two levels of an optional crossed axis, and whether a pair of variants agrees more
    at one level than at another."""
    if compared(axis) not in ctx.stats:
        return []
    plural = breakdown(axis)
    out = ["", f"## Each variant across {plural}", "",
           f"The same variant asked under two {plural}, item by item: where they differ, the {axis} "
           "changed the answer.", "",
           *agreement_table(ctx.stats[compared(axis)], ctx.grouping.within(axis), ctx.has_gold),
           *effects(ctx, axis)]
    across_levels = ctx.stats[f"agreement_across_{plural}"]
    if across_levels:  # none without a pair compared label by label
        out += ["", f"Does a pair of variants agree more under one {axis} than the other? Over the items both "
                f"variants labelled under both {plural}, with the paired difference and McNemar's test on the "
                f"items that agree under one {axis} only.", "",
                *head(["model", "pair", plural, "items", "agreement",
                       "difference, points [bootstrap 95%, unadjusted]", "McNemar"])]
    for d in across_levels:
        first, second = d["agreement"]
        out.append(row([d["model"], f"{d['a']} vs {d['b']}", " vs ".join(d[plural]), str(d["items"]),
                         f"{_pct(first['estimate'])} vs {_pct(second['estimate'])}",
                         f"{pp(d['difference']['estimate'])} {boot(d['difference'], pp)}",
                         p_text(d["mcnemar"])]))
    out += ["", *figure_lines(ctx.figures, plural)]
    for p in ctx.stats[compared(axis)]:
        out += confusion(p, ", ".join(str(p[k]) for k in ctx.grouping.within(axis) if k in p))
    return out


def _ranked(entries: list[dict[str, Any]], score: Any) -> list[tuple[str, dict[str, Any]]]:
    """(place, entry), best first; an entry without a score is listed last with place `-`."""
    ranked = sorted((e for e in entries if score(e) is not None), key=lambda e: -score(e))
    return [(str(i) if i <= len(ranked) else "-", e)
            for i, e in enumerate([*ranked, *(e for e in entries if score(e) is None)], start=1)]


def _ranking(ctx: Context) -> list[str]:
    """The models side by side: per compared pair, ranked by kappa; per variant, by accuracy; with
    intervals. The paired tests between them follow in "Models compared"."""
    out = ["", "## Models ranked", "", "Higher first; intervals are 95% bootstrap intervals over items (for an "
           "accuracy every resample gave alike, Wilson's interval instead: a zero-width interval is no certainty). "
           "Overlapping intervals are no ranking: the paired tests below say whether two models differ. A model "
           "whose kappa is undefined (one label only on both sides: agreement then says nothing its label rates do "
           "not) is listed last, unranked.", "",
           *head(["pair", "rank", "model", "Cohen's kappa [bootstrap 95%]", "agreement"])]
    by_pair: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for p in ctx.stats["pairs"]:
        by_pair.setdefault((*ctx.grouping.levels(p, ctx.grouping.others("model")), p["a"], p["b"]), []).append(p)
    for (*levels, a, b), entries in by_pair.items():
        name = f"{a} vs {b}" + _levels(levels)
        for place, p in _ranked(entries, lambda p: p["cohen_kappa"]["kappa"]):
            out.append(row([name, place, p["model"], f"{_f(p['cohen_kappa']['kappa'])} "
                            f"{boot(p['bootstrap']['cohen_kappa'])}", _pct(p["agreement"]["estimate"])]))
    if ctx.has_gold:
        out += ["", *head(["variant", "rank", "model", "accuracy [bootstrap 95%]"])]
        by_variant: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for v in ctx.stats["variants"]:
            by_variant.setdefault((*ctx.grouping.levels(v, ctx.grouping.within("model")),), []).append(v)
        for (*levels, variant), entries in by_variant.items():
            for place, v in _ranked(entries, lambda v: v["accuracy"]["estimate"] or 0.0):
                out.append(row([variant + _levels(levels), place, v["model"], f"{_pct(v['accuracy']['estimate'])} "
                                f"{boot(v['accuracy_bootstrap'], _pct, _count(v['accuracy']))}"]))
    return out


def _count(rate: dict[str, Any]) -> tuple[int, int]:
    """A Wilson rate's count and n (stats/proportion.py)."""
    return rate["count"], rate["n"]


def _levels(levels: list[Any]) -> str:
    """` (level, ...)` of the levels an entry has, or nothing."""
    named = [str(level) for level in levels if level]
    return f" ({', '.join(named)})" if named else ""


def models(ctx: Context) -> list[str]:
    """The same variant asked of two models, ranked and compared item by item."""
    pairs = ctx.stats.get(compared("model"))
    if pairs is None:
        return []
    keys = ctx.grouping.within("model")
    out = [*_ranking(ctx), "", "## Models compared", "", "The same variant asked of two models, item by item.", "",
           *agreement_table(pairs, keys, ctx.has_gold), *effects(ctx, "model")]
    if ctx.has_gold:
        keys = [k for k in keys if pairs and k in pairs[0]]
        out += ["", *head([*keys, "models", "accuracy difference, points [bootstrap 95%]"])]
        for p in pairs:
            d = p["accuracy_difference"]
            out.append(row([*(str(p[k]) for k in keys), f"{p['a']} - {p['b']}",
                            f"{pp(d['estimate'])} {boot(d, pp)}"]))
    return out
