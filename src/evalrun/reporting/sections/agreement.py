"""Agreement between variants: the compared pairs item by item, agreement across all variants, the pairs
as a scale when the labels are ordered, and each pair's confusion table."""

from __future__ import annotations

from typing import Any

from ..figures import figure_lines
from ..format import num as _f
from ..format import p_value
from .common import Context, agreement_table, confusion, head, kappa_text, p_text, row
from .links import view_link


def _all_variants(ctx: Context, m: dict[str, Any], n_variants: int, alike: bool) -> list[str]:
    which = (f"the {n_variants} variants of {ctx.at(m)} that read the run's labels (every one, including pairs "
             "`compare:` leaves out; not those reading labels of their own)" if alike else
             f"all {n_variants} variants of {ctx.at(m)} (every variant, including pairs `compare:` leaves out)")
    out = [f"\nKrippendorff's alpha across {which}: {_f(m['krippendorff_alpha_all_variants'])}"]
    if "fleiss_kappa_all_variants" in m:
        text = (f"Over the {m['items_all_labelled']} items every variant labelled: Fleiss' kappa "
                f"{_f(m['fleiss_kappa_all_variants'])}")
        if "cochran_q" in m:
            text += f"; do the variants give the labels at different rates? Cochran's Q {p_text(m['cochran_q'])}"
        out.append(text + ".")
    return out


def _scale(ctx: Context) -> list[str]:
    scaled = [p for p in ctx.stats["pairs"] if "ordinal" in p]
    if not scaled:
        return []
    out = ["", "### As a scale", "", "The labels are ordered (`ordinal: true`): quadratic-weighted kappa counts "
           "near misses as partial agreement, Spearman's rho and ordinal alpha compare the labels' ranks, and "
           "Wilcoxon's signed-rank test asks whether one variant reads higher than the other.", "",
           *head(["model", "pair", "weighted kappa [95% CI]", "Spearman's rho (p)", "ordinal alpha", "Wilcoxon"])]
    for p in scaled:
        o = p["ordinal"]
        rho = o["spearman"] or {}
        out.append(row([ctx.at(p, " ({})"), f"{p['a']} vs {p['b']}", kappa_text(o["weighted_kappa"]),
                        # statistics written before Spearman's p joined the Holm family have no adjusted p
                        f"{_f(rho.get('rho'))} ({p_text(rho) if 'pvalue_holm' in rho else p_value(rho.get('pvalue'))})",
                        _f(o["krippendorff_alpha_ordinal"]),
                        p_text(o["wilcoxon"])]))
    return out


def _apart(stats: dict[str, Any]) -> str:
    """Where the report has slices: that their tests are a Holm family of their own (stats/inference.py `adjust`)."""
    exploratory = stats["tests"].get("exploratory")
    return f" (the {exploratory['tests']} tests of the slices are corrected apart)" if exploratory else ""


def agreement(ctx: Context) -> list[str]:
    stats = ctx.stats
    if not stats["pairs"]:
        return ["", "## Agreement between variants", "", "No pair of variants is compared label by label: the "
                "variants compared read different labels (a statement and a behaviour are set against each other "
                "under Stated and measured)."]
    out = ["", "## Agreement between variants", "",
           "Agreement is the share of items both variants labelled that got the same label; Cohen's kappa "
           "corrects it for the agreement two independent readers with these label rates would reach by chance "
           "(0: none beyond chance; below 0: less than chance); alpha is Krippendorff's, with unparsed items as "
           "missing. \"Label rates differ\" tests whether the two variants give the labels at different rates "
           "(McNemar on the labels for two labels, Stuart-Maxwell for more); McNemar on correctness tests "
           "whether one variant is right more often. Every p-value is shown raw and Holm-adjusted over the "
           f"{stats['tests']['tests']} tests of this report{_apart(stats)}; the intervals are not adjusted for them. "
           "Beside a "
           "McNemar test the report does not call significant (Holm-adjusted p of 0.05 or more) stands the smallest "
           "difference, in percentage points of the items, that the test would have detected with 80% power at "
           "two-sided alpha 0.05 given its discordant items (Lachin 1992, exact). Kappa is \"undefined here\" where "
           "one variant used one label, or on one item (kappa is then 0 by construction, with zero variance).", "",
           *agreement_table(stats["pairs"], ctx.grouping.crossed, ctx.has_gold)]
    # stats["variants"] has one entry per model x variant: count variant names, or two variants on two
    # models would print an "across all variants" alpha that is just the pair's alpha again
    n_variants = len({v["variant"] for v in stats["variants"]})
    for m in stats["models"]:
        alike = m.get("variants_alike")  # where some variants read labels of their own: those reading the run's
        if (n_variants if alike is None else len(alike)) > 2:
            out += _all_variants(ctx, m, n_variants if alike is None else len(alike), alike is not None)
    out += view_link(ctx.view, "The items whose variants disagree, answer by answer", variants="disagree")
    out += [*_scale(ctx), "", *figure_lines(ctx.figures, "agreement")]
    for p in stats["pairs"]:
        out += confusion(p, ctx.at(p))
    return out
