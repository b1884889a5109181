"""report.md: the summary's figures in words and tables, with quoted examples read from results.parquet.

Each section is a module of `sections/`; this one puts them in order, walking the design's axes (see
stats/grouping.py): the sections of the crossed axes a spec adds after the variants' agreement, the
models' after the readers, and each nested axis's levels last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .figures import Figure
from .sections import agreement, axes, crossed, human, links, quotes, readers, samples, slices, summary, variants
from .sections import stated as stated_
from .sections.common import Context
from .sections.prediction import prediction
from .sections.quotes import FOLD_CHARS, _quoted  # noqa: F401 (read here by the tests of answer folding)
from .sections.run import run


def render_markdown(results: Path, summary_: dict[str, Any], figures: Sequence[Figure] = ()) -> str:
    meta, totals = summary_["run"], summary_["totals"]
    ctx = replace(Context.of(summary_, figures), view=links.view_file(results.parent))
    nested = ctx.grouping.nested
    lines = [f"# {meta['name']}: {meta['run_id']}", ""]
    if meta.get("description"):
        lines += [meta["description"].strip(), ""]
    unreachable = {m["name"]: m.get("address", "") for m in meta["models"] if m.get("unreachable")}
    # the pooled rule (stats/items.py) takes the mode over every answer of an item to a variant: over its
    # paraphrases and option orders too, where the variant has them
    over = ["samples", *(axis.replace("_", " ") + "s" for axis in nested)]
    pooled = ", ".join(over[:-1]) + " and " + over[-1] if len(over) > 1 else over[0]
    lines += ["## Summary", "", *summary.summary(ctx, unreachable), "",
              f"Item-level labels are the modal label over {pooled} (a tie, or no readable "
              f"{'sample' if len(over) == 1 else 'answer'}, counts as unparsed). Agreement and kappa use items both "
              "variants labelled; accuracy counts unparsed items as wrong; alpha treats unparsed as missing.", ""]
    lines += [*variants.variants(ctx), *agreement.agreement(ctx), *stated_.stated(ctx), *prediction(ctx),
              *(line for axis in ctx.grouping.optional for line in crossed.across(ctx, axis)),
              *variants.probabilities(ctx), *readers.readers(ctx), *crossed.models(ctx), *samples.samples(ctx),
              *(line for axis in nested for line in axes.level_pairs(ctx, axis)), *slices.slices(ctx),
              *(line for axis in nested for line in axes.levels(ctx, axis))]
    lines += human.human(ctx, results)
    lines += [*quotes.examples(ctx, results), *quotes.unparsed(results), *quotes.failures(results, totals["failed"])]
    return "\n".join([*lines, *run(meta, totals)])
