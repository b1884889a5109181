"""Readers: each variant's other readers against its primary one, item by item."""

from __future__ import annotations

from ...extract import UNPARSED
from .common import Context, agreement_table
from .links import view_link


def readers(ctx: Context) -> list[str]:
    if "readers" not in ctx.stats:
        return []
    out = ["", "## Readers", "", "Each variant's other readers against its primary one (`extract`), item by "
           "item: how far the label read from an answer depends on who reads it.", "",
           *agreement_table(ctx.stats["readers"], ctx.grouping.group, ctx.has_gold),
           *view_link(ctx.view, "The answers whose readers disagree, with each reader's reason", readers="disagree")]
    for r in ctx.stats["readers"]:
        if r["disagreements"]:
            items = ", ".join(f"{d['item_id']} ({d['label'] or UNPARSED} / {d['other'] or UNPARSED})"
                              for d in r["disagreements"])
            more = r["disagreements_total"] - len(r["disagreements"])
            out.append(f"\n{r['model']}, {r['variant']}: {r['a']} and {r['b']} differ on "
                       f"{r['disagreements_total']} items: {items}" + (f" and {more} more" if more else "") + ".")
    return out
