"""Slices: the key figures again within each value of the dataset columns named in `slices:`."""

from __future__ import annotations

from .common import Context, agreement_table, label_table


def slices(ctx: Context) -> list[str]:
    out: list[str] = []
    for part in ctx.stats.get("slices", []):
        if part is ctx.stats["slices"][0]:
            out += ["", "## Slices", "", "The key figures again within each value of the dataset columns named in "
                    "`slices:`. They are exploratory: their tests are Holm-adjusted within a family of their own "
                    f"({ctx.stats['tests'].get('exploratory', {}).get('tests', 0)} tests), apart from the report's."]
        out += ["", f"### {part['column']} = {part['value']}", "",
                *label_table(part["variants"], ctx.grouping.group, ctx.has_gold), "",
                *agreement_table(part["pairs"], ctx.grouping.crossed, ctx.has_gold)]
    return out
