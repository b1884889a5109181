"""Stability across samples: how often a model repeats itself, and agreement between single samples."""

from __future__ import annotations

from ..format import num as _f
from ..format import pct as _pct
from .common import Context, head, mean_interval, row


def samples(ctx: Context) -> list[str]:
    if "stability" not in ctx.stats:
        return []
    out = ["", "## Stability across samples", "",
           "How often a model repeats itself: the mean share of an item's samples that give its most "
           "frequent answer (standard error clustered by item), and Fleiss' kappa across samples "
           "(over the items with every sample answered; unparsed is a category). Where every item gives the same "
           "share the clustered interval has width zero, which is no certainty: Wilson's interval over the items "
           "is given instead, marked so.", "",
           *head(["model", "variant", "modal share [95% CI]", "Fleiss' kappa (items)"])]
    for e in ctx.stats["stability"]:
        out.append(row([ctx.at(e, " ({})"), e["variant"], mean_interval(e["modal_share"], _pct),
                        f"{_f(e['fleiss_kappa'])} ({e['fleiss_items']})"]))
    out += ["", "Sample-level agreement: the probability that one sample of each variant names the same "
            "label, averaged over items (beside the item-level agreement above, which compares modal labels).",
            "", *head(["model", "pair", "probability [95% CI]"])]
    for e in ctx.stats["sample_agreement"]:
        out.append(row([ctx.at(e, " ({})"), f"{e['a']} vs {e['b']}", mean_interval(e["probability"], _f)]))
    return out
