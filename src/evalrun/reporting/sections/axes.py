"""The sections of the nested axes (see stats/grouping.py): each level on its own, and where the statistics
compare an axis's levels with each other (the paraphrases), how far they agree. An axis without wording of
its own here (one a plugin registers) gets a section titled by its name."""

from __future__ import annotations

from dataclasses import dataclass

from ...stats.grouping import breakdown
from ..figures import figure_lines
from ..format import num as _f
from .common import Context, agreement_table, label_table, several


@dataclass(frozen=True)
class _Wording:
    title: str
    text: str
    noun: str = ""  # what one level is called in prose (a paraphrase is a wording)
    several: bool = False  # only variants asked at a level beyond the first
    extra: tuple[str, ...] = ()  # columns of the entries beside the label counts
    figures: str = ""  # the figures section drawn for it


_WORDING = {
    "paraphrase": _Wording("Paraphrases", "Each wording of a variant on its own (item-level labels within the "
                           "paraphrase); paraphrase numbers count from 0 in the order the spec lists `prompts:`.",
                           noun="wording", several=True),
    "option_order": _Wording("Option order", "Each order the options were listed in, with the share of readable "
                             "answers that picked the option listed first.",
                             extra=("first-position share [95% CI]",), figures="orders"),
}


def _wording(axis: str) -> _Wording:
    name = axis.replace("_", " ")
    return _WORDING.get(axis, _Wording(name.capitalize(), f"Each {name} on its own (item-level labels within "
                                       f"the {name})."))


def level_pairs(ctx: Context, axis: str) -> list[str]:
    """Two levels of one variant on the items asked at both, and alpha across all of a variant's levels."""
    if not ctx.stats.get(f"{axis}_pairs"):
        return []
    noun = _wording(axis).noun or axis.replace("_", " ")
    out = ["", f"## Agreement between {breakdown(axis)}", "", f"Two {noun}s of one variant on the items asked in "
           f"both: if they agree less than the variants do, the gap between variants is within {noun} "
           "noise.", "", *agreement_table([p for p in ctx.stats[f"{axis}_pairs"] if p["items"]], ctx.grouping.group,
                                          ctx.has_gold)]
    for e in ctx.stats.get(f"{axis}_alpha", []):
        out.append(f"\nKrippendorff's alpha across the {e[breakdown(axis)]} {noun}s of {ctx.at(e)}'s {e['variant']} "
                   f"(items asked in one {noun} only count as missing): {_f(e['krippendorff_alpha'])}")
    return out


def levels(ctx: Context, axis: str) -> list[str]:
    """Each level of a nested axis on its own: the variants' answers and labels within it."""
    if breakdown(axis) not in ctx.stats:
        return []
    wording = _wording(axis)
    entries = ctx.stats[breakdown(axis)]
    shown = several(entries, axis) if wording.several else entries
    out = ["", f"## {wording.title}", "", wording.text, "",
           *label_table(shown, [*ctx.grouping.group, axis], ctx.has_gold, extra=wording.extra)]
    return out + (["", *figure_lines(ctx.figures, wording.figures)] if wording.figures else [])
