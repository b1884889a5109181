"""The Variants section (answers, labels and accuracy per group, with the item-level label rates) and the
Label probabilities section (what the log-probabilities said)."""

from __future__ import annotations

from typing import Any

from ..figures import figure_lines
from ..format import pct as _pct
from ..format import share
from .common import Context, boot, by_labels, head, label_table, row


def _resamples(ctx: Context) -> int:
    rates = ctx.stats["variants"][0]["label_rates"]
    return int(rates[next(iter(rates))]["resamples"])


def _count(v: dict[str, Any], label: str) -> tuple[int, int]:
    """How many of the variant's labelled items got `label`, and how many were labelled: the rate's
    count and n, for Wilson's interval where the bootstrap's has width zero."""
    labelled = v["items"] - v["items_unparsed"]
    return round((v["label_rates"][label]["estimate"] or 0.0) * labelled), labelled


def variants(ctx: Context) -> list[str]:
    stats, group = ctx.stats, ctx.grouping.group
    out = ["## Variants", "", *label_table(stats["variants"], group, ctx.has_gold),
           "", *figure_lines(ctx.figures, "labels"), *figure_lines(ctx.figures, "accuracy")]
    keys = [k for k in group if k in stats["variants"][0]]
    out += ["", "### Label rates by item", "",
            "Of each variant's items that have an item-level label, the share given each label, with a 95% "
            "interval from "
            f"{_resamples(ctx)} bootstrap resamples of items (seeded, so a rerun gives the same interval). Where "
            "every resample gave the same share (every item one label, or none), that interval would have width "
            "zero, which is no certainty: Wilson's interval over the labelled items is given instead, marked "
            "(Wilson)."]
    for labels, part in by_labels(stats["variants"], lambda v: list(v["label_rates"])):  # a table per label set
        out += ["", *head([*keys, *labels])]
        for v in part:
            rates = v["label_rates"]
            out.append(row([*(str(v[k]) for k in keys),
                            *(f"{share(*_count(v, label))} {boot(rates[label], _pct, _count(v, label))}"
                              for label in labels)]))
    return out + _per_prompt(ctx, keys)


def _per_prompt(ctx: Context, keys: list[str]) -> list[str]:
    """Beside the pooled item-level shares, for variants asking an item in more than one prompt, the same rule
    applied per prompt, and the pooled rule in words where it pools over prompts."""
    spread = [v for v in ctx.stats["variants"] if "per_prompt" in v]
    if not spread:
        return []
    out = ["", "Where a variant asks an item in more than one prompt (a wording, an option order), the item-level "
           "label above pools every prompt's answers: it is the modal label over all of them, and a tie for the mode "
           "(or no answer read) leaves the item unparsed and out of the shares, so an item its prompts split evenly "
           "is dropped. Beside it, the label taken per prompt by the same rule over that prompt's answers alone: of "
           "the prompts with a label, the share given each label (pooled in brackets)."]
    for labels, part in by_labels(spread, lambda v: list(v["per_prompt"]["labels"])):
        out += ["", *head([*keys, "prompts", "with a label, per prompt (pooled)", *labels])]
        for v in part:
            p = v["per_prompt"]
            read = v["items"] - v["items_unparsed"]
            out.append(row([*(str(v[k]) for k in keys), str(p["prompts"]),
                            f"{share(p['read'], p['prompts'])} of {p['prompts']} ({share(read, v['items'])} of "
                            f"{v['items']} items)",
                            *(f"{share(p['labels'][label], p['read'])} ({share(*_count(v, label))})"
                              for label in labels)]))
    return out


def probabilities(ctx: Context) -> list[str]:
    probable = [v for v in ctx.stats["variants"] if "label_probabilities" in v]
    if not probable:
        return []
    out = ["", "## Label probabilities", "", "Read from the first answer token's log-probabilities: each "
           "label's mean probability over the answers that had them, and the share of the probability mass "
           "the labels held before renormalising (low: the model mostly wanted to say something else)."]
    for labels, part in by_labels(probable, lambda v: list(v["label_probabilities"]["mean"])):
        out += ["", *head(["model", "variant", *labels, "mass on the labels", "answers", "without log-probabilities"])]
        for v in part:
            lp = v["label_probabilities"]
            out.append(row([v["model"], v["variant"], *(_pct(lp["mean"][label]) for label in labels),
                            _pct(lp["captured"]), str(lp["answers"]), str(lp["without_logprobs"])]))
    lacking = sorted({v["model"] for v in probable if v["label_probabilities"]["without_logprobs"]})
    if lacking:
        out += ["", "These models returned no log-probabilities, so their answers have no probabilities "
                "(their sampled labels above are unaffected): " + ", ".join(lacking) + "."]
    return out
