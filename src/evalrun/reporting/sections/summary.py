"""The report's Summary: each compared pair in a sentence, then what a reader should know before the tables."""

from __future__ import annotations

from typing import Any

from ...stats.grouping import compared
from ...stats.words import verdict
from ..format import num as _f
from ..format import pct as _pct
from ..format import points, pp
from .common import Context, boot, kappa_reading, p_text, rate_text
from .prediction import summary as _prediction
from .stated import stated_lines


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
    # a variant with no answers (a follow-up whose first answers all failed) has no row: no accuracy to quote
    rows = [by_variant.get((*ctx.grouping.levels(pair), v)) for v in (a, b)]
    if ctx.has_gold and rows[0] is not None and rows[1] is not None:
        acc_a, acc_b = (r["accuracy"]["estimate"] for r in rows)
        test = pair["mcnemar"]
        text += (f" Against the gold labels, *{a}* is right on {_pct(acc_a)} of items and *{b}* on "
                 f"{_pct(acc_b)}, a difference of {points(pair['accuracy_difference']['estimate'])} "
                 f"{boot(pair['accuracy_difference'], pp)} (unadjusted bootstrap 95% interval); McNemar exact "
                 f"{p_text(test)}: {verdict(test['pvalue_holm'] if test['pvalue'] is not None else None)}.")
    return text


def _subject(ctx: Context, axis: str, c: dict[str, Any]) -> str:
    """`**model** / *variant*`: what the levels of `axis` were compared within (for models: `*condition* /
    *variant*`)."""
    return " / ".join(f"**{c[k]}**" if k == "model" else f"*{c[k]}*" for k in ctx.grouping.within(axis) if k in c)


def _rates(effect: dict[str, Any], a: str, b: str) -> str:
    """`comply 68.8% [44.4%, 85.8%] under *free* vs 87.5% [...] under *paid*, -18.7 points [-43.8, +6.2]`."""
    return (f"{effect['label']} {rate_text(effect['a'])} under *{a}* vs {rate_text(effect['b'])} under *{b}*, "
            f"{points(effect['difference']['estimate'])} {boot(effect['difference'], pp)}")


def _effect(ctx: Context, axis: str, c: dict[str, Any]) -> str:
    """One comparison of two levels of a crossed axis, effect first: each label's rate at each level over the
    items read at both (Wilson 95%), the paired difference in points (item-clustered bootstrap, unadjusted) and
    McNemar's exact test with its Holm-adjusted p (with two labels one test, `label_rates_differ`, serves both
    labels)."""
    a, b, effects = c["a"], c["b"], c.get("effects", [])
    agree = f"{_pct(c['agreement']['estimate'])} of the {c['both_labelled']} items both could be read for"
    if not effects:  # statistics written before effects were
        return (f"- {_subject(ctx, axis, c)}: under *{a}* and *{b}* the answers name the same label on {agree}; "
                f"label counts per {axis} are in the Variants table.")
    text = (f"- {_subject(ctx, axis, c)}, *{a}* vs *{b}* over the {effects[0]['items']} items read under both "
            f"(rates with Wilson 95% intervals; differences {a} - {b} with paired bootstrap 95% intervals by item, "
            "unadjusted): ")
    if len(effects) == 2:
        text += "; ".join(_rates(e, a, b) for e in effects) + f"; McNemar exact {p_text(c['label_rates_differ'])}"
    else:
        text += "; ".join(f"{_rates(e, a, b)}, McNemar exact {p_text(e.get('mcnemar'))}" for e in effects)
    return text + f". The answers name the same label under both on {agree}."


def _constructed(ctx: Context, axis: str, c: dict[str, Any]) -> str:
    return (f"- {_subject(ctx, axis, c)}: under *{c['a']}* and *{c['b']}* the same requests were sent (its prompt "
            f"does not use the {axis}), so the answers are the same answers, equal by construction; this comparison "
            "is not tested and is left out of the Holm family.")


def summary(ctx: Context, unreachable: dict[str, str]) -> list[str]:
    stats = ctx.stats
    # a model that never answered has no figures to speak of: say so once instead of quoting zeros
    lines = [f"- **{name}** was unreachable at {address or 'its address'}: its requests were given up after "
             "repeated connection failures, so it has no figures below." for name, address in unreachable.items()]
    # the effect of each crossed axis (the conditions, the models) leads: what a researcher asked
    for axis in ctx.grouping.crossed:
        lines += [_effect(ctx, axis, c) for c in stats.get(compared(axis), [])
                  if not {c.get("model"), c["a"], c["b"]} & set(unreachable)]
        lines += [_constructed(ctx, axis, c) for c in stats.get(f"{compared(axis)}_by_construction", [])]
    lines += stated_lines(ctx, set(unreachable))  # what the model says against what it does
    by_variant = {ctx.grouping.levels(v, ctx.grouping.group): v for v in stats["variants"]}
    lines += [_pair(ctx, pair, by_variant) for pair in stats["pairs"] if pair["model"] not in unreachable]
    lines += _prediction(ctx, set(unreachable))
    same = _same_answers(ctx)
    for bias, note in _once(ctx, stats.get("position_bias", []), same):
        share = bias["first_position"]
        lines.append(f"- {_who(ctx, bias)} / *{bias['variant']}*{note}: {_pct(share['estimate'])} of readable "
                     f"answers pick the option listed first ({share['count']}/{share['n']}, 95% CI "
                     f"{_pct(share['ci_low'])} to {_pct(share['ci_high'])}); with each option listed first equally "
                     f"often, a model without position bias would pick it about {_pct(1 / bias['options'])} of the "
                     "time.")
    for v, note in _once(ctx, stats["variants"], same):
        rate = v["unparsed_rate"]["estimate"]
        if v["errors"]:
            lines.append(f"- {_who(ctx, v)} / *{v['variant']}*{note}: {v['errors']} of {v['responses']} requests "
                         "failed.")
        if rate is not None and rate >= 0.2:
            lines.append(f"- {_who(ctx, v)} / *{v['variant']}*{note}: {_pct(rate)} of answers could not be read as a "
                         "label (unparsed); read the agreement figures with that in mind.")
    return lines


def _same_answers(ctx: Context) -> dict[tuple[str, str], list[str]]:
    """(model, variant) -> the crossed axes whose levels were all sent the same requests (its prompt uses none of
    them: the comparison is true by construction, `<axis>_by_construction`), so its figures are the same at
    every level of them."""
    out: dict[tuple[str, str], list[str]] = {}
    for axis in ctx.grouping.crossed:
        if axis == "model":  # two models are never sent the same requests
            continue
        tested = {(c["model"], c["variant"]) for c in ctx.stats.get(compared(axis), []) if "variant" in c}
        for c in ctx.stats.get(f"{compared(axis)}_by_construction", []):
            key = (c["model"], c["variant"])
            if "variant" in c and key not in tested and axis not in out.get(key, []):
                out.setdefault(key, []).append(axis)
    return out


def _once(ctx: Context, entries: list[dict[str, Any]], same: dict[tuple[str, str], list[str]]
          ) -> list[tuple[dict[str, Any], str]]:
    """Entries per level of the crossed axes, each variant given once over the axes its answers do not depend on
    (the same answers at every level would otherwise be quoted once per level), with a note saying so."""
    out, seen = [], set()
    for entry in entries:
        axes = same.get((entry["model"], entry["variant"]), [])
        shown = {k: v for k, v in entry.items() if k not in axes}
        key = (entry["model"], entry["variant"], *ctx.levels(shown))
        if key not in seen:
            seen.add(key)
            out.append((shown, "".join(f" (the same answers under every {axis})" for axis in axes)))
    return out
