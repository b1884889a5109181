"""The answers report.md quotes, read from results.parquet by filter: disagreements between compared
variants, answers no label could be read from, and failed jobs."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...stats.items import item_labels
from .common import Context, excerpt
from .links import view_file, view_link

EXAMPLES_PER_PAIR = 5
FAILURES_SHOWN = 50
UNPARSED_SHOWN = 3
FOLD_CHARS = 160  # longer answers are folded in <details>


def examples(ctx: Context, results: Path) -> list[str]:
    stats, group = ctx.stats, list(ctx.grouping.group)
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
        title = ctx.at(p)
        out += [f"{title}, {a} vs {b}: {joined.height} items disagree; the first {shown.height}:", ""]
        for item, label, gold, label_b in shown.select("item_id", "label", "gold", "label_b").iter_rows():
            out += [f"**{item}** (gold: {gold or '-'}): {excerpt(text[item], 300)}", "",
                    _quoted(a, label, *answer[item, a, label]), _quoted(b, label_b, *answer[item, b, label_b]), ""]
    if not any_shown:
        out.append("No item got two different labels from a compared pair of variants.")
    return out


def _quoted(variant: str, label: str, response: str | None, reason: str | None) -> str:
    """One answer as a list line: the variant, the label read and why, and the answer (a long one folded
    in <details>, which GitHub and editors' previews render closed)."""
    flat = " ".join(str(response or "").split())
    head = f"- *{variant}*: **{label}** ({excerpt(reason, 120)})"
    if len(flat) <= FOLD_CHARS:
        return f"{head}: {_html(flat)}"
    return f"{head}: <details><summary>{_html(flat[:FOLD_CHARS - 1])}…</summary>{_html(flat)}</details>"


def _html(text: str) -> str:
    # answers are model output: escape them, so an answer cannot inject markup into the report
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unparsed(results: Path) -> list[str]:
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
           "reader's reason.", *view_link(view_file(results.parent), "Every unparsed answer", unparsed="1"), "",
           "| job | answer | reason |", "|---|---|---|"]
    seen: set[tuple[str, str]] = set()
    for model, variant, job_id, response, reason in shown.iter_rows():
        if (model, variant) not in seen:
            seen.add((model, variant))
            out.append(f"| **{model} / {variant}: {total[model, variant]} unparsed** | | |")
        out.append(f"| {job_id} | {excerpt(response, 200)} | {excerpt(reason, 200)} |")
    return out


def failures(results: Path, failed: int) -> list[str]:
    if not failed:
        return []
    listed = pl.scan_parquet(results).filter(pl.col("error_class").is_not_null()).select(
        "job_id", "error_class", "attempts", "error_message").head(FAILURES_SHOWN).collect()
    out = ["", f"## Failed jobs ({failed})", "", "| job | error | attempts | message |", "|---|---|---|---|"]
    for job_id, error_class, attempts, message in listed.iter_rows():
        out.append(f"| {job_id} | {error_class} | {attempts} | {excerpt(message, 160)} |")
    if failed > FAILURES_SHOWN:
        out.append(f"\n... and {failed - FAILURES_SHOWN} more (see results.parquet).")
    return out
