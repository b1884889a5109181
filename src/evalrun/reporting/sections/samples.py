"""Stability across samples: how often a model repeats itself, and agreement between single samples."""

from __future__ import annotations

from ..format import num as _f
from ..format import pct as _pct
from .common import Context, head, mean_interval, row


def samples(ctx: Context) -> list[str]:
    if "stability" not in ctx.stats:
        return []
    out = ["", "## Stability across samples", "",
           "How often a model repeats itself when asked the same thing: within one prompt (an item in one wording "
           "and one option order), the mean share of its samples that give its most frequent answer (standard "
           "error clustered by item), and Fleiss' kappa across samples (over the prompts with every sample "
           "answered; unparsed is a category). Answers that change with the wording or the order are wording "
           "sensitivity, not instability: the paraphrase and option-order sections measure them. Where every item "
           "gives the same share the clustered interval has width zero, which is no certainty: Wilson's interval "
           "over the items is given instead, marked so.", "",
           *head(["model", "variant", "prompts", "modal share [95% CI]", "Fleiss' kappa (prompts)"])]
    for e in ctx.stats["stability"]:
        # statistics written before stability was measured within a prompt pooled each item's prompts
        prompts = str(e["prompts"]) if "prompts" in e else "n/a (pooled)"
        out.append(row([ctx.at(e, " ({})"), e["variant"], prompts, mean_interval(e["modal_share"], _pct),
                        f"{_f(e['fleiss_kappa'])} ({e['fleiss_items']})"]))
    out += ["", "Sample-level agreement: the probability that one sample of each variant names the same "
            "label, averaged over items (beside the item-level agreement above, which compares modal labels).",
            "", *head(["model", "pair", "probability [95% CI]"])]
    for e in ctx.stats["sample_agreement"]:
        out.append(row([ctx.at(e, " ({})"), f"{e['a']} vs {e['b']}", mean_interval(e["probability"], _f)]))
    return out
