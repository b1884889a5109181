"""The report: report.md for people, summary.json for programs, results.parquet for analysis.

`write_report` needs only a run folder's results.parquet and the run's metadata, so
`evalrun report RUN_DIR` re-renders a run without asking any model. It never loads the
whole table: statistics and totals are aggregations over a scan of the file (memory
follows the number of items, not of responses), and the few prompts and answers the
report quotes are fetched from it by filter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from .extract import UNPARSED
from .stats.summary import summarize

SUMMARY_VERSION = 1
EXAMPLES_PER_PAIR = 5
FAILURES_SHOWN = 50
RESULTS = "results.parquet"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ci(p: dict[str, Any]) -> str:
    if p.get("estimate") is None:
        return "n/a (no items)"
    return f"{_pct(p['estimate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] ({p['count']}/{p['n']})"


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _strength(k: float | None) -> str:
    """Landis & Koch (1977) benchmarks for kappa, as researchers conventionally read it."""
    if k is None:
        return "undefined"
    # Landis & Koch's bands are < 0 poor, 0.00-0.20 slight, ...: a kappa of exactly 0 is "slight", not "poor"
    if k < 0:
        return "poor"
    for bound, word in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= bound:
            return word
    return "almost perfect"


def _excerpt(text: object, limit: int) -> str:
    s = " ".join(str(text or "").split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def _summary_lines(stats: dict[str, Any], has_gold: bool) -> list[str]:
    lines = []
    by_variant = {(v["model"], v["variant"]): v for v in stats["variants"]}
    for pair in stats["pairs"]:
        m, a, b = pair["model"], pair["a"], pair["b"]
        k = pair["cohen_kappa"]["kappa"]
        agree = pair["agreement"]
        text = (f"- **{m}**: the *{a}* and *{b}* answers name the same label on "
                f"{_pct(agree['estimate'])} of the {pair['both_labelled']} items both could be read for "
                f"(of {pair['items']}); Cohen's kappa {_f(k)} ({_strength(k)} agreement beyond chance).")
        if has_gold:
            acc_a = by_variant[(m, a)]["accuracy"]["estimate"]
            acc_b = by_variant[(m, b)]["accuracy"]["estimate"]
            p = pair["mcnemar"]["pvalue"]
            verdict = ("a difference unlikely to be chance" if p is not None and p < 0.05
                       else "no significant difference")
            text += (f" Against the gold labels, *{a}* is right on {_pct(acc_a)} of items and *{b}* on "
                     f"{_pct(acc_b)} (McNemar exact p = {_f(p, 3)}: {verdict}).")
        lines.append(text)
    for v in stats["variants"]:
        rate = v["unparsed_rate"]["estimate"]
        if v["errors"]:
            lines.append(f"- **{v['model']}** / *{v['variant']}*: {v['errors']} of {v['responses']} requests failed.")
        if rate is not None and rate >= 0.2:
            lines.append(f"- **{v['model']}** / *{v['variant']}*: {_pct(rate)} of answers could not be read as a "
                         "label (unparsed); read the agreement figures with that in mind.")
    return lines


def _tables(stats: dict[str, Any], labels: list[str], has_gold: bool) -> list[str]:
    out = ["## Variants", ""]
    head = ["model", "variant", "responses", "errors", *labels, UNPARSED, "unparsed rate"]
    if has_gold:
        head.append("accuracy (items) [95% CI]")
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in stats["variants"]:
        row = [v["model"], v["variant"], str(v["responses"]), str(v["errors"]),
               *(str(v["labels"][label]) for label in [*labels, UNPARSED]), _pct(v["unparsed_rate"]["estimate"])]
        if has_gold:
            row.append(_ci(v["accuracy"]))
        out.append("| " + " | ".join(row) + " |")
    out += ["", "## Agreement between variants", ""]
    head = ["model", "pair", "items", "both labelled", "agreement [95% CI]", "Cohen's kappa [95% CI]",
            "Krippendorff's alpha"]
    if has_gold:
        head.append("McNemar exact p (a-only / b-only correct)")
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in stats["pairs"]:
        k = p["cohen_kappa"]
        row = [p["model"], f"{p['a']} vs {p['b']}", str(p["items"]), str(p["both_labelled"]), _ci(p["agreement"]),
               f"{_f(k['kappa'])} [{_f(k['ci_low'])}, {_f(k['ci_high'])}]", _f(p["krippendorff_alpha"])]
        if has_gold:
            mc = p["mcnemar"]
            row.append(f"{_f(mc['pvalue'], 3)} ({mc['a_only_correct']} / {mc['b_only_correct']})")
        out.append("| " + " | ".join(row) + " |")
    # stats["variants"] has one entry per model x variant: count variant names, or two variants on two
    # models would print an "across all variants" alpha that is just the pair's alpha again
    n_variants = len({v["variant"] for v in stats["variants"]})
    for m in stats["models"]:
        if n_variants > 2:
            out.append(f"\nKrippendorff's alpha across all variants of {m['model']}: "
                       f"{_f(m['krippendorff_alpha_all_variants'])}")
    for p in stats["pairs"]:
        c = p["confusion"]
        out += ["", f"### Confusion: {p['model']}, {p['a']} (rows) x {p['b']} (columns)", "",
                "| " + " | ".join([f"{p['a']} \\ {p['b']}", *c["categories"]]) + " |",
                "|" + "---|" * (len(c["categories"]) + 1)]
        for name, counts in zip(c["categories"], c["counts"], strict=True):
            out.append("| " + " | ".join([f"**{name}**", *map(str, counts)]) + " |")
    return out


def _examples(results: Path, stats: dict[str, Any]) -> list[str]:
    out = ["", "## Disagreements", ""]
    # one row per model x variant x item, in the file's (expansion) order, which decides the examples shown
    first = pl.scan_parquet(results).filter(pl.col("sample") == 0).select(
        "model", "variant", "item_id", "label", "gold").collect()
    any_shown = False
    for p in stats["pairs"]:
        model, a, b = p["model"], p["a"], p["b"]
        left = first.filter((pl.col("model") == model) & (pl.col("variant") == a)).select("item_id", "label", "gold")
        right = first.filter((pl.col("model") == model) & (pl.col("variant") == b)).select(
            "item_id", pl.col("label").alias("label_b"))
        joined = left.join(right, on="item_id", maintain_order="left").filter(
            pl.col("label").is_not_null() & pl.col("label_b").is_not_null() & (pl.col("label") != pl.col("label_b")))
        if joined.is_empty():
            continue
        any_shown = True
        shown = joined.head(EXAMPLES_PER_PAIR)
        quoted = pl.scan_parquet(results).filter(
            (pl.col("model") == model) & pl.col("variant").is_in([a, b]) & (pl.col("sample") == 0)
            & pl.col("item_id").is_in(shown["item_id"].implode())).select(
            "item_id", "variant", "item_text", "response").collect()
        text = dict(zip(quoted["item_id"], quoted["item_text"], strict=True))
        response = {(i, v): r for i, v, r in quoted.select("item_id", "variant", "response").iter_rows()}
        out += [f"{model}, {a} vs {b}: {joined.height} items disagree on their first sample; "
                f"the first {shown.height}:", "",
                f"| item | text | {a} | {b} |", "|---|---|---|---|"]
        for item, label, gold, label_b in shown.select("item_id", "label", "gold", "label_b").iter_rows():
            out.append(f"| {item} (gold: {gold or '-'}) | {_excerpt(text[item], 160)} | "
                       f"**{label}**: {_excerpt(response[item, a], 200)} | "
                       f"**{label_b}**: {_excerpt(response[item, b], 200)} |")
        out.append("")
    if not any_shown:
        out.append("No item got two different labels from a compared pair of variants.")
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


def _totals(responses: pl.LazyFrame) -> dict[str, Any]:
    answered = pl.col("error_class").is_null()
    t = responses.select(
        pl.len().alias("jobs"), answered.sum().alias("answered"), pl.col("cached").sum().alias("from_store"),
        pl.col("prompt_tokens").sum(), pl.col("completion_tokens").sum(),
        pl.col("cost").filter(answered).sum().alias("cost"),
        (answered & pl.col("cost").is_null()).sum().alias("unknown"),
    ).collect(engine="streaming").row(0, named=True)
    return {
        "jobs": t["jobs"],
        "answered": t["answered"],
        "failed": t["jobs"] - t["answered"],
        "from_store": t["from_store"],
        "asked": t["jobs"] - t["from_store"],
        "prompt_tokens": t["prompt_tokens"],
        "completion_tokens": t["completion_tokens"],
        # null when no answer could be priced: an unknown total is not a free one
        "cost_usd": float(t["cost"]) if t["unknown"] < t["answered"] or not t["unknown"] else None,
        "cost_unknown_responses": t["unknown"],
    }


def build_summary(responses: pl.LazyFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """summary.json from the responses (a scan of results.parquet) and the run's metadata."""
    stats = summarize(responses, meta["labels"], [tuple(p) for p in meta["compare"]], meta["variants"],
                      meta["has_gold"])
    return {"summary_version": SUMMARY_VERSION, "run": meta, "totals": _totals(responses), "statistics": stats}


def render_markdown(results: Path, summary: dict[str, Any]) -> str:
    meta, stats, totals = summary["run"], summary["statistics"], summary["totals"]
    labels, has_gold = meta["labels"], meta["has_gold"]
    lines = [f"# {meta['name']}: {meta['run_id']}", ""]
    if meta.get("description"):
        lines += [meta["description"].strip(), ""]
    lines += ["## Summary", "", *_summary_lines(stats, has_gold), "",
              "Item-level labels are the modal label over samples (a tie, or no readable sample, counts as "
              "unparsed). Agreement and kappa use items both variants labelled; accuracy counts unparsed items "
              "as wrong; alpha treats unparsed as missing.", ""]
    lines += _tables(stats, labels, has_gold)
    lines += _examples(results, stats)
    lines += _failures(results, totals["failed"])
    if totals["cost_usd"] is None:
        cost = "unknown (no price known for these models)"
    else:
        cost = f"${totals['cost_usd']:.4f}" + (f" (+ {totals['cost_unknown_responses']} responses of unknown price)"
                                              if totals["cost_unknown_responses"] else "")
    lines += ["", "## Run", "",
              f"- spec: `{meta['spec_path']}` (sha256 {meta['spec_sha256'][:16]}…), dataset {meta['dataset_source']} "
              f"(sha256 {meta['dataset_sha256'][:16]}…)",
              "- models: " + ", ".join(f"`{m['name']}` ({m['model']})" for m in meta["models"]),
              f"- {meta['items']} items x {len(meta['variants'])} variants x {len(meta['models'])} models x "
              f"{meta['samples']} samples = {totals['jobs']} jobs: {totals['asked']} asked, "
              f"{totals['from_store']} from the store, {totals['failed']} failed",
              f"- parameters: `{json.dumps(meta['params'], sort_keys=True)}`; sample k uses seed "
              f"{meta['seed']} + k",
              f"- tokens: {totals['prompt_tokens']:,} prompt + {totals['completion_tokens']:,} completion; cost {cost}",
              f"- started {meta['started']}, took {meta['duration_s']:.1f} s",
              "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
              ""]
    return "\n".join(lines)


def write_report(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """summary.json and report.md for the run folder holding results.parquet; returns the summary."""
    results = run_dir / RESULTS
    summary = build_summary(pl.scan_parquet(results), meta)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(results, summary), encoding="utf-8")
    return summary


def rerender(run_dir: Path) -> Path:
    """Rebuild report.md and summary.json from a run folder's results.parquet and metadata."""
    meta = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["run"]
    write_report(run_dir, meta)
    return run_dir / "report.md"
