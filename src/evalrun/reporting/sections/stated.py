"""Typed comparisons in report.md: what a model says it would do against what it does, item by item (the
statistics and their rules are in stats/stated.py). A line per comparison in the Summary, and a section with
the figures and each comparison's confusion table."""

from __future__ import annotations

from typing import Any

from .common import Context, head, kappa_phrase, kappa_text, p_text, rate_text, row


def _measured(c: dict[str, Any]) -> str:
    """What was measured of the behaviour variant, in words."""
    if c["measure"] == "changes":
        return f"changing between conditions ({', '.join(c['conditions'])})"
    return "picking the option listed first"


def _left_out(c: dict[str, Any]) -> str:
    why = {"stated_unparsed": "the statement unparsed", "behaviour_unread": "the behaviour not read",
           "not_asked_both": "not asked of both variants"}
    parts = [f"{n} {why[k]}" for k, n in c["left_out"].items() if n]
    return f" ({c['items'] - c['both_read']} left out: {', '.join(parts)})" if parts else ""


def stated_lines(ctx: Context, unreachable: set[str]) -> list[str]:
    """The Summary's line per typed comparison (of a model that answered), effect first: the two rates, then
    their agreement."""
    out = []
    for c in ctx.stats.get("stated", []):
        if c["model"] in unreachable:
            continue
        if c["both_read"] == 0:
            out.append(f"- **{c['model']}**: `{c['stated']}` vs `{c['behaviour']}` {_measured(c)}: no item has both "
                       f"the statement and the behaviour read{_left_out(c)}.")
            continue
        kappa = c["cohen_kappa"]
        rule = (f" (an item's pick: in more than half of its prompts read, in two orders or more; per prompt "
                f"{rate_text(c['first_position'])} "
                f"of {c['first_position']['n']})" if c["measure"] == "first" else "")
        out.append(f"- **{c['model']}**: `{c['stated']}` vs `{c['behaviour']}` {_measured(c)}{rule}: says it would "
                   f"{rate_text(c['says'])}, does {rate_text(c['does'])}; agree {rate_text(c['agreement'])} of "
                   f"{c['both_read']} items{_left_out(c)}, kappa {kappa_phrase(kappa)}; "
                   f"95% intervals, unadjusted; McNemar {p_text(c['rates_differ'])}.")
    return out


_RULES = {
    "changes": "the behaviour is the variant's item-level label differing between the conditions (its label under "
               "each condition is the modal label over that condition's answers; an item unparsed under any "
               "condition is left out)",
    "first": "the behaviour is picking the option listed first: per prompt (one option order and wording) the "
             "modal label over its samples, and an item shows the behaviour when it picked the first-listed option "
             "in more than half of its prompts read (half or fewer: it does not; read in fewer than two orders: left "
             "out, as one order cannot tell position from preference). The "
             "share of all prompts read that picked the first option is given beside it",
}


def stated(ctx: Context) -> list[str]:
    """The section: the rules, a row per typed comparison, and each one's confusion table."""
    entries = ctx.stats.get("stated", [])
    if not entries:
        return []
    measures = dict.fromkeys(c["measure"] for c in entries)
    out = ["", "## Stated and measured", "",
           "Each typed comparison sets what a model says it would do (the stated variant's item-level label: the "
           "modal label over all its answers to the item, pooled over conditions, wordings and orders; a tie is "
           "unparsed) against what it does, item by item. The statement asserts the behaviour when it is the "
           "comparison's `yes` label and its absence when it is any other label. "
           + " ".join(f"With `measure: {m}`, {_RULES[m]}." for m in measures)
           + " Over the items both sides read: the share that says it would and the share that does (Wilson 95% "
           "intervals), their agreement (Wilson) and Cohen's kappa (asymptotic 95% interval), and McNemar's exact "
           "test of whether the two shares differ, paired by item; its p is Holm-adjusted with the report's other "
           "tests, the intervals are not.", "",
           *head(["model", "stated vs behaviour", "measured", "items (both read)", "says it would [95% CI]",
                  "does [95% CI]", "agreement [95% CI]", "Cohen's kappa [95% CI]", "McNemar exact"])]
    for c in entries:
        measured = _measured(c) + (f"; {rate_text(c['first_position'])} of {c['first_position']['n']} prompts read "
                                   "pick it" if c["measure"] == "first" else "")
        out.append(row([c["model"], f"{c['stated']} vs {c['behaviour']}", measured,
                        f"{c['items']} ({c['both_read']})", rate_text(c["says"]), rate_text(c["does"]),
                        rate_text(c["agreement"]), kappa_text(c["cohen_kappa"]), p_text(c["rates_differ"])]))
    for c in entries:
        counts = c["confusion"]["counts"]
        out += ["", f"### Confusion: {c['model']}, {c['stated']} (rows) x {c['behaviour']} {_measured(c)} (columns)",
                "", *head([f"{c['stated']} \\ {c['behaviour']}", "present", "absent"]),
                row(["**says present**", *map(str, counts[0])]), row(["**says absent**", *map(str, counts[1])])]
    return out
