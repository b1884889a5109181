"""The report: report.md for people, summary.json for programs, results.parquet for analysis.

`write_report` needs only the results table and the run's metadata, both plain
data, so `evalrun report RUN_DIR` can re-render a run without asking any model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from .extract import UNPARSED
from .stats import summarize

SUMMARY_VERSION = 1
EXAMPLES_PER_PAIR = 5


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


def _examples(frame: pl.DataFrame, stats: dict[str, Any]) -> list[str]:
    out = ["", "## Disagreements", ""]
    first = frame.filter(pl.col("sample") == 0)
    any_shown = False
    for p in stats["pairs"]:
        a = first.filter((pl.col("model") == p["model"]) & (pl.col("variant") == p["a"]))
        b = first.filter((pl.col("model") == p["model"]) & (pl.col("variant") == p["b"])).select(
            "item_id", pl.col("label").alias("label_b"), pl.col("response").alias("response_b"))
        joined = a.join(b, on="item_id", maintain_order="left").filter(
            pl.col("label").is_not_null() & pl.col("label_b").is_not_null() & (pl.col("label") != pl.col("label_b")))
        if joined.is_empty():
            continue
        any_shown = True
        out += [f"{p['model']}, {p['a']} vs {p['b']}: {joined.height} items disagree on their first sample; "
                f"the first {min(EXAMPLES_PER_PAIR, joined.height)}:", "",
                f"| item | text | {p['a']} | {p['b']} |", "|---|---|---|---|"]
        for row in joined.head(EXAMPLES_PER_PAIR).iter_rows(named=True):
            out.append(f"| {row['item_id']} (gold: {row['gold'] or '-'}) | {_excerpt(row['item_text'], 160)} | "
                       f"**{row['label']}**: {_excerpt(row['response'], 200)} | "
                       f"**{row['label_b']}**: {_excerpt(row['response_b'], 200)} |")
        out.append("")
    if not any_shown:
        out.append("No item got two different labels from a compared pair of variants.")
    return out


def _failures(frame: pl.DataFrame) -> list[str]:
    failed = frame.filter(pl.col("error_class").is_not_null())
    if failed.is_empty():
        return []
    out = ["", f"## Failed jobs ({failed.height})", "", "| job | error | attempts | message |", "|---|---|---|---|"]
    for row in failed.head(50).iter_rows(named=True):
        out.append(f"| {row['job_id']} | {row['error_class']} | {row['attempts']} | "
                   f"{_excerpt(row['error_message'], 160)} |")
    if failed.height > 50:
        out.append(f"\n... and {failed.height - 50} more (see results.parquet).")
    return out


def _totals(frame: pl.DataFrame) -> dict[str, Any]:
    answered = frame.filter(pl.col("error_class").is_null())
    unknown = answered.filter(pl.col("cost").is_null()).height
    return {
        "jobs": frame.height,
        "answered": answered.height,
        "failed": frame.height - answered.height,
        "from_store": int(frame["cached"].sum()),
        "asked": frame.height - int(frame["cached"].sum()),
        "prompt_tokens": int(frame["prompt_tokens"].fill_null(0).sum()),
        "completion_tokens": int(frame["completion_tokens"].fill_null(0).sum()),
        # null when no answer could be priced: an unknown total is not a free one
        "cost_usd": float(answered["cost"].fill_null(0).sum()) if unknown < answered.height or not unknown else None,
        "cost_unknown_responses": unknown,
    }


def build_summary(frame: pl.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    stats = summarize(frame, meta["labels"], [tuple(p) for p in meta["compare"]], meta["variants"], meta["has_gold"])
    return {"summary_version": SUMMARY_VERSION, "run": meta, "totals": _totals(frame), "statistics": stats}


def render_markdown(frame: pl.DataFrame, summary: dict[str, Any]) -> str:
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
    lines += _examples(frame, stats)
    lines += _failures(frame)
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


def write_report(run_dir: Path, frame: pl.DataFrame, meta: dict[str, Any], *, write_results: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    if write_results:
        frame.write_parquet(run_dir / "results.parquet")
    summary = build_summary(frame, meta)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    path = run_dir / "report.md"
    path.write_text(render_markdown(frame, summary), encoding="utf-8")
    return path


def rerender(run_dir: Path) -> Path:
    """Rebuild report.md and summary.json from a run folder's results.parquet and metadata."""
    frame = pl.read_parquet(run_dir / "results.parquet")
    meta = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["run"]
    return write_report(run_dir, frame, meta, write_results=False)
