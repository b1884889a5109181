"""report.md: the summary's figures in words and tables, with quoted examples read from results.parquet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ..extract import UNPARSED
from ..stats.items import item_labels
from ..stats.words import kappa_words, verdict
from .figures import Figure, figure_lines
from .format import num as _f
from .format import pct as _pct

EXAMPLES_PER_PAIR = 5
FAILURES_SHOWN = 50
UNPARSED_SHOWN = 3
FOLD_CHARS = 160  # longer answers are folded in <details>


def _ci(p: dict[str, Any]) -> str:
    if p.get("estimate") is None:
        return "n/a (no items)"
    return f"{_pct(p['estimate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] ({p['count']}/{p['n']})"


def _boot(b: dict[str, Any] | None, pct: bool = False) -> str:
    """A bootstrap interval as `[low, high]`, or why there is none."""
    if not b or b.get("ci_low") is None:
        return "[no interval]"
    fmt = _pct if pct else _f
    note = " (all resamples equal)" if b.get("degenerate") else ""
    return f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}]{note}"


def _settled(x: float | None) -> float | None:
    # floating point leaves 1e-17 where a kappa is exactly 0 or 1, which would read as the next band
    return None if x is None else round(x, 12)


def _p(test: dict[str, Any] | None) -> str:
    """Raw and Holm-adjusted p of a test, or that none was possible."""
    if not test or test.get("pvalue") is None:
        return "no test possible"
    return f"p = {_f(test['pvalue'], 3)}, Holm {_f(test.get('pvalue_holm'), 3)}"


def _kappa_text(k: dict[str, Any]) -> str:
    if k.get("degenerate"):
        return f"{_f(k['kappa'])} [no asymptotic interval: zero variance]"
    return f"{_f(k['kappa'])} [{_f(k['ci_low'])}, {_f(k['ci_high'])}]"


def _excerpt(text: object, limit: int) -> str:
    s = " ".join(str(text or "").split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def _who(entry: dict[str, Any]) -> str:
    """`**model**`, and the condition where the design has conditions."""
    return f"**{entry['model']}**" + (f" under *{entry['condition']}*" if "condition" in entry else "")


def _keyed(entry: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in keys)


def _summary_lines(stats: dict[str, Any], has_gold: bool, unreachable: dict[str, str]) -> list[str]:
    # a model that never answered has no figures to speak of: say so once instead of quoting zeros
    lines = [f"- **{name}** was unreachable at {address or 'its address'}: its requests were given up after "
             "repeated connection failures, so it has no figures below." for name, address in unreachable.items()]
    by_variant = {_keyed(v, "model", "condition", "variant"): v for v in stats["variants"]}
    for pair in stats["pairs"]:
        if pair["model"] in unreachable:
            continue
        a, b = pair["a"], pair["b"]
        k = pair["cohen_kappa"]["kappa"]
        agree = pair["agreement"]
        text = (f"- {_who(pair)}: the *{a}* and *{b}* answers name the same label on "
                f"{_pct(agree['estimate'])} of the {pair['both_labelled']} items both could be read for "
                f"(of {pair['items']}); Cohen's kappa {_f(k)} ({kappa_words(_settled(k))}), bootstrap 95% interval "
                f"{_boot(pair['bootstrap']['cohen_kappa'])}.")
        if has_gold:
            acc_a = by_variant[(*_keyed(pair, "model", "condition"), a)]["accuracy"]["estimate"]
            acc_b = by_variant[(*_keyed(pair, "model", "condition"), b)]["accuracy"]["estimate"]
            test = pair["mcnemar"]
            text += (f" Against the gold labels, *{a}* is right on {_pct(acc_a)} of items and *{b}* on "
                     f"{_pct(acc_b)}, a difference of {_pct(pair['accuracy_difference']['estimate'])} "
                     f"{_boot(pair['accuracy_difference'], pct=True)} (McNemar exact {_p(test)}: "
                     f"{verdict(test['pvalue_holm'] if test['pvalue'] is not None else None)}).")
        lines.append(text)
    for c in stats.get("conditions", []):
        lines.append(f"- **{c['model']}** / *{c['variant']}*: under *{c['a']}* and *{c['b']}* the answers name the "
                     f"same label on {_pct(c['agreement']['estimate'])} of the {c['both_labelled']} items both could "
                     f"be read for; label counts per condition are in the Variants table.")
    for bias in stats.get("position_bias", []):
        share = bias["first_position"]
        lines.append(f"- {_who(bias)} / *{bias['variant']}*: {_pct(share['estimate'])} of readable answers pick the "
                     f"option listed first ({share['count']}/{share['n']}, 95% CI {_pct(share['ci_low'])} to "
                     f"{_pct(share['ci_high'])}); with each option listed first equally often, a model without "
                     f"position bias would pick it about {_pct(1 / bias['options'])} of the time.")
    for v in stats["variants"]:
        rate = v["unparsed_rate"]["estimate"]
        if v["errors"]:
            lines.append(f"- {_who(v)} / *{v['variant']}*: {v['errors']} of {v['responses']} requests failed.")
        if rate is not None and rate >= 0.2:
            lines.append(f"- {_who(v)} / *{v['variant']}*: {_pct(rate)} of answers could not be read as a "
                         "label (unparsed); read the agreement figures with that in mind.")
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _label_table(entries: list[dict[str, Any]], keys: list[str], labels: list[str], has_gold: bool,
                 extra: tuple[str, ...] = ()) -> list[str]:
    """One row per entry of variant_summary: its keys, responses, label counts and accuracy."""
    keys = [k for k in keys if entries and k in entries[0]]
    head = [k.replace("_", " ") for k in keys] + ["responses", "errors", *labels, UNPARSED, "unparsed rate"]
    head += [*extra] + (["accuracy (items) [95% CI]"] if has_gold else [])
    out = [_row(head), "|" + "---|" * len(head)]
    for v in entries:
        row = [str(v[k]) for k in keys] + [str(v["responses"]), str(v["errors"]),
                                          *(str(v["labels"][label]) for label in [*labels, UNPARSED]),
                                          _pct(v["unparsed_rate"]["estimate"])]
        row += [_ci(v[e.split(" ")[0].replace("-", "_")]) for e in extra]
        if has_gold:
            row.append(_ci(v["accuracy"]))
        out.append(_row(row))
    return out


def _agreement_table(pairs: list[dict[str, Any]], keys: list[str], has_gold: bool) -> list[str]:
    keys = [k for k in keys if pairs and k in pairs[0]]
    head = [*keys, "pair", "items", "both labelled", "agreement [95% CI]", "Cohen's kappa [asymptotic 95% CI]",
            "kappa [bootstrap 95%]", "Krippendorff's alpha [bootstrap 95%]", "label rates differ"]
    if has_gold:
        head.append("McNemar exact, correctness (items only one of the two got right)")
    out = [_row(head), "|" + "---|" * len(head)]
    for p in pairs:
        boot = p["bootstrap"]
        row = [*(str(p[key]) for key in keys), f"{p['a']} vs {p['b']}", str(p["items"]), str(p["both_labelled"]),
               _ci(p["agreement"]), _kappa_text(p["cohen_kappa"]), _boot(boot["cohen_kappa"]),
               f"{_f(p['krippendorff_alpha'])} {_boot(boot['krippendorff_alpha'])}", _p(p["label_rates_differ"])]
        if has_gold:
            mc = p["mcnemar"]
            row.append(f"{_p(mc)} ({p['a']} only: {mc['a_only_correct']}, {p['b']} only: {mc['b_only_correct']})")
        out.append(_row(row))
    return out


def _confusion(p: dict[str, Any], title: str) -> list[str]:
    c = p["confusion"]
    out = ["", f"### Confusion: {title}, {p['a']} (rows) x {p['b']} (columns)", "",
           _row([f"{p['a']} \\ {p['b']}", *c["categories"]]), "|" + "---|" * (len(c["categories"]) + 1)]
    for name, counts in zip(c["categories"], c["counts"], strict=True):
        out.append(_row([f"**{name}**", *map(str, counts)]))
    return out


def _ranking(stats: dict[str, Any], has_gold: bool) -> list[str]:
    """The models side by side: per compared pair, ranked by kappa; per variant, by accuracy; with
    intervals. The paired tests between them follow in "Models compared"."""
    out = ["", "## Models ranked", "", "Higher first; intervals are 95% bootstrap intervals over items. Overlapping "
           "intervals are no ranking: the paired tests below say whether two models differ. A model whose kappa is "
           "undefined (one label only on both sides: agreement then says nothing its label rates do not) is listed "
           "last, unranked.", "",
           _row(["pair", "rank", "model", "Cohen's kappa [bootstrap 95%]", "agreement"]), "|---|---|---|---|---|"]
    by_pair: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for p in stats["pairs"]:
        by_pair.setdefault((p.get("condition"), p["a"], p["b"]), []).append(p)
    for (condition, a, b), entries in by_pair.items():
        ranked = sorted((p for p in entries if p["cohen_kappa"]["kappa"] is not None),
                        key=lambda p: -p["cohen_kappa"]["kappa"])
        unranked = [p for p in entries if p["cohen_kappa"]["kappa"] is None]
        for rank, p in enumerate([*ranked, *unranked], start=1):
            name = f"{a} vs {b}" + (f" ({condition})" if condition else "")
            place = str(rank) if rank <= len(ranked) else "-"
            out.append(_row([name, place, p["model"], f"{_f(p['cohen_kappa']['kappa'])} "
                             f"{_boot(p['bootstrap']['cohen_kappa'])}", _pct(p["agreement"]["estimate"])]))
    if has_gold:
        out += ["", _row(["variant", "rank", "model", "accuracy [bootstrap 95%]"]), "|---|---|---|---|"]
        by_variant: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for v in stats["variants"]:
            by_variant.setdefault((v.get("condition"), v["variant"]), []).append(v)
        for (condition, variant), entries in by_variant.items():
            ranked = sorted(entries, key=lambda v: -(v["accuracy"]["estimate"] or 0.0))
            for rank, v in enumerate(ranked, start=1):
                name = variant + (f" ({condition})" if condition else "")
                out.append(_row([name, str(rank), v["model"], f"{_pct(v['accuracy']['estimate'])} "
                                 f"{_boot(v['accuracy_bootstrap'], pct=True)}"]))
    return out


def _resamples(stats: dict[str, Any]) -> int:
    return int(stats["variants"][0]["label_rates"][next(iter(stats["variants"][0]["label_rates"]))]["resamples"])


def _tables(stats: dict[str, Any], labels: list[str], has_gold: bool, figures: Sequence[Figure]
            ) -> list[str]:
    out = ["## Variants", "", *_label_table(stats["variants"], ["model", "condition", "variant"], labels, has_gold),
           "", *figure_lines(figures, "labels"), *figure_lines(figures, "accuracy")]
    out += ["", "### Label rates by item", "",
            "Of each variant's items that have an item-level label, the share given each label, with a 95% "
            "interval from "
            f"{_resamples(stats)} bootstrap resamples of items (seeded, so a rerun gives the same interval).", "",
            _row(head := ["model", *(["condition"] if "condition" in stats["variants"][0] else []), "variant",
                          *labels]), "|" + "---|" * len(head)]
    for v in stats["variants"]:
        keys = [v["model"], *([v["condition"]] if "condition" in v else []), v["variant"]]
        out.append(_row([*keys, *(f"{_pct(v['label_rates'][label]['estimate'])} "
                                  f"{_boot(v['label_rates'][label], pct=True)}" for label in labels)]))
    out += ["", "## Agreement between variants", "",
            "Agreement is the share of items both variants labelled that got the same label; Cohen's kappa "
            "corrects it for the agreement two independent readers with these label rates would reach by chance "
            "(0: none beyond chance; below 0: less than chance); alpha is Krippendorff's, with unparsed items as "
            "missing. \"Label rates differ\" tests whether the two variants give the labels at different rates "
            "(McNemar on the labels for two labels, Stuart-Maxwell for more); McNemar on correctness tests "
            "whether one variant is right more often. Every p-value is shown raw and Holm-adjusted over the "
            f"{stats['tests']['tests']} tests of this report.", "",
            *_agreement_table(stats["pairs"], ["model", "condition"], has_gold)]
    # stats["variants"] has one entry per model x variant: count variant names, or two variants on two
    # models would print an "across all variants" alpha that is just the pair's alpha again
    n_variants = len({v["variant"] for v in stats["variants"]})
    for m in stats["models"]:
        if n_variants > 2:
            where = m["model"] + (f" under {m['condition']}" if "condition" in m else "")
            out.append(f"\nKrippendorff's alpha across all {n_variants} variants of {where} (every variant, "
                       f"including pairs `compare:` leaves out): {_f(m['krippendorff_alpha_all_variants'])}")
            if "fleiss_kappa_all_variants" in m:
                text = (f"Over the {m['items_all_labelled']} items every variant labelled: Fleiss' kappa "
                        f"{_f(m['fleiss_kappa_all_variants'])}")
                if "cochran_q" in m:
                    text += f"; do the variants give the labels at different rates? Cochran's Q {_p(m['cochran_q'])}"
                out.append(text + ".")
    scaled = [p for p in stats["pairs"] if "ordinal" in p]
    if scaled:
        out += ["", "### As a scale", "", "The labels are ordered (`ordinal: true`): quadratic-weighted kappa counts "
                "near misses as partial agreement, Spearman's rho and ordinal alpha compare the labels' ranks, and "
                "Wilcoxon's signed-rank test asks whether one variant reads higher than the other.", "",
                _row(["model", "pair", "weighted kappa [95% CI]", "Spearman's rho (p)", "ordinal alpha",
                      "Wilcoxon"]), "|---|---|---|---|---|---|"]
        for p in scaled:
            o = p["ordinal"]
            rho = o["spearman"] or {}
            who = p["model"] + (f" ({p['condition']})" if "condition" in p else "")
            out.append(_row([who, f"{p['a']} vs {p['b']}", _kappa_text(o["weighted_kappa"]),
                             f"{_f(rho.get('rho'))} ({_f(rho.get('pvalue'), 3)})", _f(o["krippendorff_alpha_ordinal"]),
                             _p(o["wilcoxon"])]))
    out += ["", *figure_lines(figures, "agreement")]
    for p in stats["pairs"]:
        out += _confusion(p, p["model"] + (f" under {p['condition']}" if "condition" in p else ""))
    if "conditions" in stats:
        out += ["", "## Each variant across conditions", "",
                "The same variant asked under two conditions, item by item: where they differ, the condition "
                "changed the answer.", "", *_agreement_table(stats["conditions"], ["model", "variant"], has_gold)]
        out += ["", "Does a pair of variants agree more under one condition than the other? Over the items both "
                "variants labelled under both conditions, with the paired difference and McNemar's test on the "
                "items that agree under one condition only.", "",
                _row(["model", "pair", "conditions", "items", "agreement", "difference [bootstrap 95%]", "McNemar"]),
                "|---|---|---|---|---|---|---|"]
        for d in stats["agreement_across_conditions"]:
            first, second = d["agreement"]
            out.append(_row([d["model"], f"{d['a']} vs {d['b']}", " vs ".join(d["conditions"]), str(d["items"]),
                             f"{_pct(first['estimate'])} vs {_pct(second['estimate'])}",
                             f"{_pct(d['difference']['estimate'])} {_boot(d['difference'], pct=True)}",
                             _p(d["mcnemar"])]))
        out += ["", *figure_lines(figures, "conditions")]
        for p in stats["conditions"]:
            out += _confusion(p, f"{p['model']}, {p['variant']}")
    probable = [v for v in stats["variants"] if "label_probabilities" in v]
    if probable:
        out += ["", "## Label probabilities", "", "Read from the first answer token's log-probabilities: each "
                "label's mean probability over the answers that had them, and the share of the probability mass "
                "the labels held before renormalising (low: the model mostly wanted to say something else).", "",
                _row(["model", "variant", *labels, "mass on the labels", "answers", "without log-probabilities"]),
                "|" + "---|" * (len(labels) + 5)]
        for v in probable:
            lp = v["label_probabilities"]
            out.append(_row([v["model"], v["variant"], *(_pct(lp["mean"][label]) for label in labels),
                             _pct(lp["captured"]), str(lp["answers"]), str(lp["without_logprobs"])]))
        lacking = sorted({v["model"] for v in probable if v["label_probabilities"]["without_logprobs"]})
        if lacking:
            out += ["", "These models returned no log-probabilities, so their answers have no probabilities "
                    "(their sampled labels above are unaffected): " + ", ".join(lacking) + "."]
    if "readers" in stats:
        out += ["", "## Readers", "", "Each variant's other readers against its primary one (`extract`), item by "
                "item: how far the label read from an answer depends on who reads it.", "",
                *_agreement_table(stats["readers"], ["model", "condition", "variant"], has_gold)]
        for r in stats["readers"]:
            if r["disagreements"]:
                items = ", ".join(f"{d['item_id']} ({d['label'] or UNPARSED} / {d['other'] or UNPARSED})"
                                  for d in r["disagreements"])
                more = r["disagreements_total"] - len(r["disagreements"])
                out.append(f"\n{r['model']}, {r['variant']}: {r['a']} and {r['b']} differ on "
                           f"{r['disagreements_total']} items: {items}" + (f" and {more} more" if more else "") + ".")
    if "model_pairs" in stats:
        out += _ranking(stats, has_gold)
        out += ["", "## Models compared", "", "The same variant asked of two models, item by item.", "",
                *_agreement_table(stats["model_pairs"], ["condition", "variant"], has_gold)]
        if has_gold:
            out += ["", _row(["condition", "variant", "models", "accuracy difference [bootstrap 95%]"]
                             if "condition" in stats["model_pairs"][0] else ["variant", "models",
                                                                               "accuracy difference [bootstrap 95%]"]),
                    "|" + "---|" * (4 if "condition" in stats["model_pairs"][0] else 3)]
            for p in stats["model_pairs"]:
                d = p["accuracy_difference"]
                out.append(_row([*([p["condition"]] if "condition" in p else []), p["variant"],
                                 f"{p['a']} - {p['b']}", f"{_pct(d['estimate'])} {_boot(d, pct=True)}"]))
    if "stability" in stats:
        out += ["", "## Stability across samples", "",
                "How often a model repeats itself: the mean share of an item's samples that give its most "
                "frequent answer (standard error clustered by item), and Fleiss' kappa across samples "
                "(over the items with every sample answered; unparsed is a category).", "",
                _row(["model", "variant", "modal share [95% CI]", "Fleiss' kappa (items)"]), "|---|---|---|---|"]
        for e in stats["stability"]:
            m = e["modal_share"] or {}
            who = e["model"] + (f" ({e['condition']})" if "condition" in e else "")
            out.append(_row([who, e["variant"], f"{_pct(m.get('mean'))} [{_pct(m.get('ci_low'))}, "
                             f"{_pct(m.get('ci_high'))}]", f"{_f(e['fleiss_kappa'])} ({e['fleiss_items']})"]))
        out += ["", "Sample-level agreement: the probability that one sample of each variant names the same "
                "label, averaged over items (beside the item-level agreement above, which compares modal labels).",
                "", _row(["model", "pair", "probability [95% CI]"]), "|---|---|---|"]
        for e in stats["sample_agreement"]:
            pr = e["probability"] or {}
            who = e["model"] + (f" ({e['condition']})" if "condition" in e else "")
            out.append(_row([who, f"{e['a']} vs {e['b']}", f"{_f(pr.get('mean'))} [{_f(pr.get('ci_low'))}, "
                             f"{_f(pr.get('ci_high'))}]"]))
    if stats.get("paraphrase_pairs"):
        out += ["", "## Agreement between paraphrases", "", "Two wordings of one variant on the items asked in "
                "both: if they agree less than the variants do, the gap between variants is within wording "
                "noise.", "", *_agreement_table([p for p in stats["paraphrase_pairs"] if p["items"]],
                                                 ["model", "condition", "variant"], has_gold)]
        for e in stats.get("paraphrase_alpha", []):
            who = e["model"] + (f" under {e['condition']}" if "condition" in e else "")
            out.append(f"\nKrippendorff's alpha across the {e['paraphrases']} wordings of {who}'s {e['variant']} "
                       f"(items asked in one wording only count as missing): {_f(e['krippendorff_alpha'])}")
    for part in stats.get("slices", []):
        if part is stats["slices"][0]:
            out += ["", "## Slices", "", "The key figures again within each value of the dataset columns named in "
                    "`slices:` (their tests are in the report's Holm family)."]
        out += ["", f"### {part['column']} = {part['value']}", "",
                *_label_table(part["variants"], ["model", "condition", "variant"], labels, has_gold), "",
                *_agreement_table(part["pairs"], ["model", "condition"], has_gold)]
    if "paraphrases" in stats:
        several = {(v["model"], v["variant"]) for v in stats["paraphrases"] if v["paraphrase"] > 0}
        shown = [v for v in stats["paraphrases"] if (v["model"], v["variant"]) in several]
        out += ["", "## Paraphrases", "", "Each wording of a variant on its own (item-level labels within the "
                "paraphrase); paraphrase numbers count from 0 in the order the spec lists `prompts:`.", "",
                *_label_table(shown, ["model", "condition", "variant", "paraphrase"], labels, has_gold)]
    if "option_orders" in stats:
        out += ["", "## Option order", "", "Each order the options were listed in, with the share of readable "
                "answers that picked the option listed first.", "",
                *_label_table(stats["option_orders"], ["model", "condition", "variant", "option_order"], labels,
                              has_gold, extra=("first-position share [95% CI]",)), "",
                *figure_lines(figures, "orders")]
    return out


def _examples(results: Path, stats: dict[str, Any], group: list[str]) -> list[str]:
    out = ["", "## Disagreements", ""]
    # the item-level (modal) labels the tables count, in expansion order
    scan = pl.scan_parquet(results)
    items = item_labels(scan, group)
    any_shown = False
    for p in stats["pairs"]:
        where = {k: p[k] for k in group if k in p}
        a, b = p["a"], p["b"]
        rows = items.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items()))
        left = rows.filter(pl.col("variant") == a).select("item_id", "label", "gold")
        right = rows.filter(pl.col("variant") == b).select("item_id", pl.col("label").alias("label_b"))
        joined = left.join(right, on="item_id", maintain_order="left").filter(
            pl.col("label").is_not_null() & pl.col("label_b").is_not_null() & (pl.col("label") != pl.col("label_b")))
        if joined.is_empty():
            continue
        any_shown = True
        order = scan.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())
                            & pl.col("item_id").is_in(joined["item_id"].implode())).select("item_id").unique(
            maintain_order=True).collect()["item_id"].to_list()
        shown = joined.filter(pl.col("item_id").is_in(order[:EXAMPLES_PER_PAIR]))
        # quote, per item and variant, the first answer that was read as the item's label, with its reason
        quoted = scan.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())
                             & pl.col("variant").is_in([a, b]) & pl.col("item_id").is_in(shown["item_id"].implode())
                             & pl.col("label").is_not_null()).select(
            "item_id", "variant", "item_text", "label", "response", "extraction").collect()
        text = dict(zip(quoted["item_id"], quoted["item_text"], strict=True))
        answer: dict[tuple[str, str, str], tuple[str, str]] = {}
        for i, v, label, r, why in quoted.select("item_id", "variant", "label", "response", "extraction").iter_rows():
            answer.setdefault((i, v, label), (r, why))
        title = p["model"] + (f" under {p['condition']}" if "condition" in p else "")
        out += [f"{title}, {a} vs {b}: {joined.height} items disagree; the first {shown.height}:", ""]
        for item, label, gold, label_b in shown.select("item_id", "label", "gold", "label_b").iter_rows():
            out += [f"**{item}** (gold: {gold or '-'}): {_excerpt(text[item], 300)}", "",
                    _quoted(a, label, *answer[item, a, label]), _quoted(b, label_b, *answer[item, b, label_b]), ""]
    if not any_shown:
        out.append("No item got two different labels from a compared pair of variants.")
    return out


def _quoted(variant: str, label: str, response: str | None, reason: str | None) -> str:
    """One answer as a list line: the variant, the label read and why, and the answer (a long one folded
    in <details>, which GitHub and editors' previews render closed)."""
    flat = " ".join(str(response or "").split())
    head = f"- *{variant}*: **{label}** ({_excerpt(reason, 120)})"
    if len(flat) <= FOLD_CHARS:
        return f"{head}: {_html(flat)}"
    return f"{head}: <details><summary>{_html(flat[:FOLD_CHARS - 1])}…</summary>{_html(flat)}</details>"


def _html(text: str) -> str:
    # answers are model output: escape them, so an answer cannot inject markup into the report
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unparsed(results: Path) -> list[str]:
    """A few answers per variant that no label could be read from, with the reader's reason: what a spec's
    author needs to fix an extractor (or a prompt) without opening results.parquet."""
    unread = pl.scan_parquet(results).filter(pl.col("error_class").is_null() & pl.col("label").is_null())
    counts = unread.group_by("model", "variant").len().collect()
    if counts.is_empty():
        return []
    shown = (unread.with_columns(pl.int_range(pl.len()).over("model", "variant").alias("nth"))
             .filter(pl.col("nth") < UNPARSED_SHOWN)
             .select("model", "variant", "job_id", "response", "extraction").collect())
    total = dict(zip(zip(counts["model"], counts["variant"], strict=True), counts["len"], strict=True))
    out = ["", "## Unparsed answers", "", f"Up to {UNPARSED_SHOWN} answers per variant that gave no label, with the "
           "reader's reason.", "", "| job | answer | reason |", "|---|---|---|"]
    seen: set[tuple[str, str]] = set()
    for model, variant, job_id, response, reason in shown.iter_rows():
        if (model, variant) not in seen:
            seen.add((model, variant))
            out.append(f"| **{model} / {variant}: {total[model, variant]} unparsed** | | |")
        out.append(f"| {job_id} | {_excerpt(response, 200)} | {_excerpt(reason, 200)} |")
    return out


def _failures(results: Path, failed: int) -> list[str]:
    if not failed:
        return []
    listed = pl.scan_parquet(results).filter(pl.col("error_class").is_not_null()).select(
        "job_id", "error_class", "attempts", "error_message").head(FAILURES_SHOWN).collect()
    out = ["", f"## Failed jobs ({failed})", "", "| job | error | attempts | message |", "|---|---|---|---|"]
    for job_id, error_class, attempts, message in listed.iter_rows():
        out.append(f"| {job_id} | {error_class} | {attempts} | {_excerpt(message, 160)} |")
    if failed > FAILURES_SHOWN:
        out.append(f"\n... and {failed - FAILURES_SHOWN} more (see results.parquet).")
    return out



def axes(meta: dict[str, Any]) -> list[str]:
    return list(meta.get("design", {}).get("axes", []))



def _design_text(meta: dict[str, Any]) -> str:
    """`2 conditions x 2 variants (direct: 2 paraphrases x 2 option orders) x `: the design's levels."""
    design = meta.get("design", {})
    text = f"{len(design['conditions'])} conditions x " if "conditions" in design else ""
    per_variant = []
    for variant in meta["variants"]:
        levels = []
        if design.get("paraphrases", {}).get(variant, 1) > 1:
            levels.append(f"{design['paraphrases'][variant]} paraphrases")
        if variant in design.get("option_orders", {}):
            levels.append(f"{len(design['option_orders'][variant])} option orders")
        if levels:
            per_variant.append(f"{variant}: " + " x ".join(levels))
    return text + f"{len(meta['variants'])} variants " + (f"({'; '.join(per_variant)}) " if per_variant else "") + "x "


def render_markdown(results: Path, summary: dict[str, Any], figures: Sequence[Figure] = ()) -> str:
    meta, stats, totals = summary["run"], summary["statistics"], summary["totals"]
    labels, has_gold = meta["labels"], meta["has_gold"]
    lines = [f"# {meta['name']}: {meta['run_id']}", ""]
    if meta.get("description"):
        lines += [meta["description"].strip(), ""]
    unreachable = {m["name"]: m.get("address", "") for m in meta["models"] if m.get("unreachable")}
    lines += ["## Summary", "", *_summary_lines(stats, has_gold, unreachable), "",
              "Item-level labels are the modal label over samples (a tie, or no readable sample, counts as "
              "unparsed). Agreement and kappa use items both variants labelled; accuracy counts unparsed items "
              "as wrong; alpha treats unparsed as missing.", ""]
    lines += _tables(stats, labels, has_gold, figures)
    lines += _examples(results, stats, ["model", "condition", "variant"] if "condition" in axes(meta)
                       else ["model", "variant"])
    lines += _unparsed(results)
    lines += _failures(results, totals["failed"])
    if totals["cost_usd"] is None:
        cost = "unknown (no price known for these models)"
    else:
        cost = f"${totals['cost_usd']:.4f}" + (f" (+ {totals['cost_unknown_responses']} responses of unknown price)"
                                              if totals["cost_unknown_responses"] else "")
    if batched := [m["name"] for m in meta["models"] if m.get("batch_prices")]:
        cost += " (at batch-API prices for " + ", ".join(f"`{name}`" for name in batched) + ")"
    lines += ["", "## Run", "",
              f"- spec: `{meta['spec_path']}` (sha256 {meta['spec_sha256'][:16]}…), dataset {meta['dataset_source']} "
              f"(sha256 {meta['dataset_sha256'][:16]}…)",
              "- models: " + ", ".join(f"`{m['name']}` ({m['model']})" for m in meta["models"]),
              f"- {meta['items']} items x {_design_text(meta)}{len(meta['models'])} models x "
              f"{meta['samples']} samples = {totals['jobs']} jobs: {totals['asked']} asked, "
              f"{totals['from_store']} from the store, {totals['failed']} failed",
              f"- parameters: `{json.dumps(meta['params'], sort_keys=True)}`; sample k uses seed "
              f"{meta['seed']} + k",
              f"- tokens: {totals['prompt_tokens']:,} prompt + {totals['completion_tokens']:,} completion; cost {cost}",
              f"- started {meta['started']}, took {meta['duration_s']:.1f} s",
              "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
              ""]
    return "\n".join(lines)

