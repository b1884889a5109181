"""What every section of report.md shares: the run it reports (`Context`), how a figure reads, and the
tables of the variants' statistics and of comparisons that several sections print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...design.axes import used
from ...extract import UNPARSED
from ...stats.grouping import Grouping
from ..format import num as _f
from ..format import pct as _pct

if TYPE_CHECKING:  # figures.py reads `grouping` from here
    from ..figures import Figure


@dataclass(frozen=True)
class Context:
    """The summary's statistics and what the sections read beside them."""

    stats: dict[str, Any]
    labels: list[str]
    has_gold: bool
    figures: Sequence[Figure]
    grouping: Grouping

    @classmethod
    def of(cls, summary: dict[str, Any], figures: Sequence[Figure]) -> Context:
        meta = summary["run"]
        return cls(summary["statistics"], meta["labels"], meta["has_gold"], figures, grouping(meta))

    def at(self, entry: dict[str, Any], form: str = " under {}") -> str:
        """The entry's model and its levels of the other crossed axes it has (`m under c`, or `m (c)`)."""
        return entry["model"] + "".join(form.format(entry[k]) for k in self.grouping.others("model") if k in entry)

    def levels(self, entry: dict[str, Any], axis: str = "model") -> list[Any]:
        """The entry's levels of the crossed axes other than `axis` (those it has)."""
        return [entry[k] for k in self.grouping.others(axis) if k in entry]


def grouping(meta: dict[str, Any]) -> Grouping:
    """How a run's statistics are grouped, from its record's optional axes (summary.json's `run`)."""
    return Grouping.of(used(meta.get("design", {}).get("axes", [])))


def several(entries: list[dict[str, Any]], axis: str) -> list[dict[str, Any]]:
    """The entries of the variants (of a model) asked at a level beyond the first (levels numbered from 0)."""
    asked = {(v["model"], v["variant"]) for v in entries if v[axis]}
    return [v for v in entries if (v["model"], v["variant"]) in asked]


def ci(p: dict[str, Any]) -> str:
    if p.get("estimate") is None:
        return "n/a (no items)"
    return f"{_pct(p['estimate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] ({p['count']}/{p['n']})"


def boot(b: dict[str, Any] | None, pct: bool = False) -> str:
    """A bootstrap interval as `[low, high]`, or why there is none."""
    if not b or b.get("ci_low") is None:
        return "[no interval]"
    fmt = _pct if pct else _f
    note = " (all resamples equal)" if b.get("degenerate") else ""
    return f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}]{note}"


def p_text(test: dict[str, Any] | None) -> str:
    """Raw and Holm-adjusted p of a test, or that none was possible."""
    if not test or test.get("pvalue") is None:
        return "no test possible"
    return f"p = {_f(test['pvalue'], 3)}, Holm {_f(test.get('pvalue_holm'), 3)}"


def kappa_text(k: dict[str, Any]) -> str:
    if k.get("degenerate"):
        return f"{_f(k['kappa'])} [no asymptotic interval: zero variance]"
    return f"{_f(k['kappa'])} [{_f(k['ci_low'])}, {_f(k['ci_high'])}]"


def excerpt(text: object, limit: int) -> str:
    s = " ".join(str(text or "").split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def head(cells: list[str]) -> list[str]:
    """A table's header row and its rule."""
    return [row(cells), "|" + "---|" * len(cells)]


def label_table(entries: list[dict[str, Any]], keys: Sequence[str], labels: list[str], has_gold: bool,
                extra: tuple[str, ...] = ()) -> list[str]:
    """One row per entry of variant_summary: its keys, responses, label counts and accuracy."""
    keys = [k for k in keys if entries and k in entries[0]]
    out = head([k.replace("_", " ") for k in keys] + ["responses", "errors", *labels, UNPARSED, "unparsed rate",
                                                       *extra] + (["accuracy (items) [95% CI]"] if has_gold else []))
    for v in entries:
        cells = [str(v[k]) for k in keys] + [str(v["responses"]), str(v["errors"]),
                                            *(str(v["labels"][label]) for label in [*labels, UNPARSED]),
                                            _pct(v["unparsed_rate"]["estimate"])]
        cells += [ci(v[e.split(" ")[0].replace("-", "_")]) for e in extra]
        if has_gold:
            cells.append(ci(v["accuracy"]))
        out.append(row(cells))
    return out


def agreement_table(pairs: list[dict[str, Any]], keys: Sequence[str], has_gold: bool) -> list[str]:
    """One row per comparison of two levels: agreement, kappa, alpha and the tests."""
    keys = [k for k in keys if pairs and k in pairs[0]]
    out = head([*keys, "pair", "items", "both labelled", "agreement [95% CI]", "Cohen's kappa [asymptotic 95% CI]",
                "kappa [bootstrap 95%]", "Krippendorff's alpha [bootstrap 95%]", "label rates differ"]
               + (["McNemar exact, correctness (items only one of the two got right)"] if has_gold else []))
    for p in pairs:
        b = p["bootstrap"]
        cells = [*(str(p[key]) for key in keys), f"{p['a']} vs {p['b']}", str(p["items"]), str(p["both_labelled"]),
                 ci(p["agreement"]), kappa_text(p["cohen_kappa"]), boot(b["cohen_kappa"]),
                 f"{_f(p['krippendorff_alpha'])} {boot(b['krippendorff_alpha'])}", p_text(p["label_rates_differ"])]
        if has_gold:
            mc = p["mcnemar"]
            cells.append(f"{p_text(mc)} ({p['a']} only: {mc['a_only_correct']}, {p['b']} only: "
                         f"{mc['b_only_correct']})")
        out.append(row(cells))
    return out


def confusion(p: dict[str, Any], title: str) -> list[str]:
    c = p["confusion"]
    out = ["", f"### Confusion: {title}, {p['a']} (rows) x {p['b']} (columns)", "",
           *head([f"{p['a']} \\ {p['b']}", *c["categories"]])]
    for name, counts in zip(c["categories"], c["counts"], strict=True):
        out.append(row([f"**{name}**", *map(str, counts)]))
    return out
