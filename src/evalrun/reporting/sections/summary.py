"""The report's Summary: each compared pair in a sentence, then what a reader should know before the tables."""

from __future__ import annotations

from typing import Any

from ...stats.grouping import compared
from ...stats.words import verdict
from ..format import num as _f
from ..format import pct as _pct
from ..format import points, pp
from .common import Context, boot, kappa_reading, p_text


def _who(ctx: Context, entry: dict[str, Any]) -> str:
    """`**model**`, and its levels of the other crossed axes (the condition)."""
    return f"**{entry['model']}**" + "".join(f" under *{level}*" for level in ctx.levels(entry))


def _pair(ctx: Context, pair: dict[str, Any], by_variant: dict[tuple[Any, ...], dict[str, Any]]) -> str:
    a, b = pair["a"], pair["b"]
    kappa, kappa_boot = pair["cohen_kappa"], pair["bootstrap"]["cohen_kappa"]
    agree = pair["agreement"]
    text = (f"- {_who(ctx, pair)}: the *{a}* and *{b}* answers name the same label on "
            f"{_pct(agree['estimate'])} of the {pair['both_labelled']} items both could be read for "
            f"(of {pair['items']}); Cohen's kappa {_f(kappa['kappa'])} ({kappa_reading(kappa, kappa_boot)}), "
            f"bootstrap 95% interval {boot(kappa_boot)}.")
    if ctx.has_gold:
        acc_a = by_variant[(*ctx.grouping.levels(pair), a)]["accuracy"]["estimate"]
        acc_b = by_variant[(*ctx.grouping.levels(pair), b)]["accuracy"]["estimate"]
        test = pair["mcnemar"]
        text += (f" Against the gold labels, *{a}* is right on {_pct(acc_a)} of items and *{b}* on "
                 f"{_pct(acc_b)}, a difference of {points(pair['accuracy_difference']['estimate'])} "
                 f"{boot(pair['accuracy_difference'], pp)} (unadjusted bootstrap 95% interval); McNemar exact "
                 f"{p_text(test)}: {verdict(test['pvalue_holm'] if test['pvalue'] is not None else None)}.")
    return text


def summary(ctx: Context, unreachable: dict[str, str]) -> list[str]:
    stats = ctx.stats
    # a model that never answered has no figures to speak of: say so once instead of quoting zeros
    lines = [f"- **{name}** was unreachable at {address or 'its address'}: its requests were given up after "
             "repeated connection failures, so it has no figures below." for name, address in unreachable.items()]
    by_variant = {ctx.grouping.levels(v, ctx.grouping.group): v for v in stats["variants"]}
    lines += [_pair(ctx, pair, by_variant) for pair in stats["pairs"] if pair["model"] not in unreachable]
    for axis in ctx.grouping.optional:
        for c in stats.get(compared(axis), []):
            lines.append(f"- **{c['model']}** / *{c['variant']}*: under *{c['a']}* and *{c['b']}* the answers name "
                         f"the same label on {_pct(c['agreement']['estimate'])} of the {c['both_labelled']} items "
                         f"both could be read for; label counts per {axis} are in the Variants table.")
    for bias in stats.get("position_bias", []):
        share = bias["first_position"]
        lines.append(f"- {_who(ctx, bias)} / *{bias['variant']}*: {_pct(share['estimate'])} of readable answers pick "
                     f"the option listed first ({share['count']}/{share['n']}, 95% CI {_pct(share['ci_low'])} to "
                     f"{_pct(share['ci_high'])}); with each option listed first equally often, a model without "
                     f"position bias would pick it about {_pct(1 / bias['options'])} of the time.")
    for v in stats["variants"]:
        rate = v["unparsed_rate"]["estimate"]
        if v["errors"]:
            lines.append(f"- {_who(ctx, v)} / *{v['variant']}*: {v['errors']} of {v['responses']} requests failed.")
        if rate is not None and rate >= 0.2:
            lines.append(f"- {_who(ctx, v)} / *{v['variant']}*: {_pct(rate)} of answers could not be read as a "
                         "label (unparsed); read the agreement figures with that in mind.")
    return lines
