"""What every section of report.md shares: the run it reports (`Context`), how a figure reads, and the
tables of the variants' statistics and of comparisons that several sections print."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...design.axes import used
from ...extract import UNPARSED
from ...stats.grouping import Grouping
from ...stats.proportion import wilson_interval
from ...stats.words import SIGNIFICANCE, kappa_words
from ..format import num as _f
from ..format import p_value
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
    view: str | None = None  # the run's static view beside report.md (links.py), which sections link to

    @classmethod
    def of(cls, summary: dict[str, Any], figures: Sequence[Figure]) -> Context:
        meta = summary["run"]
        return cls(summary["statistics"], all_labels(meta), meta["has_gold"], figures, grouping(meta))

    def at(self, entry: dict[str, Any], form: str = " under {}") -> str:
        """The entry's model and its levels of the other crossed axes it has (`m under c`, or `m (c)`)."""
        return entry["model"] + "".join(form.format(entry[k]) for k in self.grouping.others("model") if k in entry)

    def levels(self, entry: dict[str, Any], axis: str = "model") -> list[Any]:
        """The entry's levels of the crossed axes other than `axis` (those it has)."""
        return [entry[k] for k in self.grouping.others(axis) if k in entry]


def all_labels(meta: dict[str, Any]) -> list[str]:
    """Every label of a run (summary.json's `run`): the spec's, then those variants read of their own."""
    own = meta.get("variant_labels") or {}
    return list(dict.fromkeys([*meta["labels"], *(label for labels in own.values() for label in labels)]))


def by_labels(entries: Sequence[dict[str, Any]], labels: Callable[[dict[str, Any]], Sequence[str]]
              ) -> list[tuple[list[str], list[dict[str, Any]]]]:
    """Entries grouped by the labels they were read as (`labels` of an entry), in the order first seen: a table
    per label set, so that no variant's row has columns of zeros for labels it cannot give. A run whose variants
    all read the spec's labels has one group."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(tuple(labels(entry)), []).append(entry)
    return [(list(key), part) for key, part in groups.items()]


def grouping(meta: dict[str, Any]) -> Grouping:
    """How a run's statistics are grouped, from its record's optional axes (summary.json's `run`)."""
    return Grouping.of(used(meta.get("design", {}).get("axes", [])))


def several(entries: list[dict[str, Any]], axis: str) -> list[dict[str, Any]]:
    """The entries of the variants (of a model) asked at a level beyond the first (levels numbered from 0)."""
    asked = {(v["model"], v["variant"]) for v in entries if v[axis]}
    return [v for v in entries if (v["model"], v["variant"]) in asked]


def rate_text(r: dict[str, Any]) -> str:
    """A share with its interval as `68.8% [44.4%, 85.8%]` (a `wilson` dict; None parts read `n/a`)."""
    return f"{_pct(r['estimate'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]"


def ci(p: dict[str, Any]) -> str:
    """`rate_text` with its count, `68.8% [44.4%, 85.8%] (11/16)`; "n/a (no items)" without observations."""
    if p.get("estimate") is None:
        return "n/a (no items)"
    return f"{rate_text(p)} ({p['count']}/{p['n']})"


def boot(b: dict[str, Any] | None, fmt: Callable[[float | None], str] = _f,
         rate: tuple[int, int] | None = None) -> str:
    """A bootstrap interval as `[low, high]`, or why there is none.

    Where every resample gave the same value the percentile interval has width zero, which would
    read as certainty: a rate (`rate`: its count and n) then gets Wilson's interval instead, marked
    so; any other statistic says that there is no interval and what every resample gave."""
    if not b or b.get("ci_low") is None:
        return "[no interval]"
    if b.get("degenerate"):
        if rate is not None:
            return wilson_text(*rate)
        return f"[no interval: every resample gave {fmt(b['ci_low'])}]"
    return f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}]"


def wilson_text(count: int, n: int) -> str:
    """`[83.9%, 100.0%] (Wilson)`: the Wilson 95% interval of count / n."""
    bounds = wilson_interval(count, n)
    return "[no interval]" if bounds is None else f"[{_pct(bounds[0])}, {_pct(bounds[1])}] (Wilson)"


def mean_interval(m: dict[str, Any] | None, fmt: Callable[[float | None], str]) -> str:
    """A clustered mean of shares (stats/clustered.py) with its interval, `67.5% [60.1%, 74.9%]`.

    Where every item gives the same share the clustered standard error is 0 and the normal interval
    has width zero, which would read as certainty; the items are then the independent units and the
    interval is Wilson's over them (count = mean x items), marked so."""
    m = m or {}
    mean = m.get("mean")
    if mean is None or m.get("ci_low") is None:
        return f"{fmt(mean)} [no interval]"
    if m["ci_low"] == m["ci_high"]:
        low, high = wilson_interval(round(mean * m["clusters"]), m["clusters"]) or (None, None)
        return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}] (Wilson over {m['clusters']} items)"
    return f"{fmt(mean)} [{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]"


def detectable(test: dict[str, Any]) -> str:
    """Beside a McNemar test the report does not call significant (raw and Holm-adjusted p at or above
    `SIGNIFICANCE`): the smallest difference the run could have detected, at 80% power and
    two-sided alpha 0.05, as the statistics give it (`minimum_detectable`, stats/inference.py).
    Empty for other tests, for significant ones, and for statistics written before it existed."""
    if "minimum_detectable" not in test or test.get("pvalue") is None:
        return ""
    # a test significant before adjustment did detect a difference; only the Holm family holds it back, so
    # "too few discordant items to detect any difference" beside its p would contradict it
    if any(p is not None and p < SIGNIFICANCE for p in (test["pvalue"], test.get("pvalue_holm"))):
        return ""
    d = test["minimum_detectable"]
    if d is None:
        return "too few discordant items to detect any difference at 80% power"
    return f"could detect ≥ {100 * d:.1f} points"


def p_text(test: dict[str, Any] | None, power: bool = True) -> str:
    """Raw and Holm-adjusted p of a test, or that none was possible; beside a non-significant
    McNemar test, the smallest difference it could have detected (unless `power` is off: the
    caller places it)."""
    if not test or test.get("pvalue") is None:
        return "no test possible"
    text = f"{p_value(test['pvalue'])}, {p_value(test.get('pvalue_holm'), 'Holm', ' ')}"
    return text + f" ({found})" if power and (found := detectable(test)) else text


def _undefined(k: dict[str, Any]) -> bool:
    """A degenerate kappa of 0: one item, or one variant used one label, so that kappa is 0 by
    construction and says nothing about agreement. (The other degenerate kappas, perfect agreement
    and perfect disagreement, are what the table shows, without an interval.)"""
    return bool(k.get("degenerate")) and k.get("kappa") is not None and round(k["kappa"], 12) == 0


def kappa_text(k: dict[str, Any]) -> str:
    """Cohen's kappa with its asymptotic interval, or why it has none."""
    if _undefined(k):
        return f"undefined here ({_f(k['kappa'])}, zero variance)"
    if k.get("degenerate"):
        return f"{_f(k['kappa'])} [no interval: zero variance]"
    return f"{_f(k['kappa'])} [{_f(k['ci_low'])}, {_f(k['ci_high'])}]"


def kappa_reading(k: dict[str, Any], *bootstraps: dict[str, Any] | None) -> str:
    """How a kappa reads in prose: its Landis & Koch band (stats/words.py) only where every interval
    the report gives for it (the asymptotic one, and the bootstraps passed) excludes 0; otherwise
    "not distinguishable from chance". A degenerate kappa of 0 is "undefined here"; perfect
    agreement and perfect disagreement say what they are."""
    kappa = k.get("kappa")
    if kappa is None:
        return kappa_words(None)
    if _undefined(k):
        return "undefined here"
    if k.get("degenerate"):
        return "perfect agreement" if kappa > 0 else "no item agrees (no interval)"
    intervals = [(k["ci_low"], k["ci_high"])] + [(b["ci_low"], b["ci_high"]) for b in bootstraps
                                                   if b and b.get("ci_low") is not None]
    if any(low <= 0 <= high for low, high in intervals):
        return "not distinguishable from chance"
    # floating point leaves 1e-17 where a kappa is exactly on a band's edge, which would read as the next band
    return kappa_words(round(kappa, 12))


def kappa_phrase(k: dict[str, Any]) -> str:
    """Cohen's kappa with its interval and how it reads in prose, for a sentence; an undefined kappa says so
    once ("undefined here (0.00, zero variance)")."""
    text = kappa_text(k)
    return text if _undefined(k) else f"{text} ({kappa_reading(k)})"


def excerpt(text: object, limit: int) -> str:
    s = " ".join(str(text or "").split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def head(cells: list[str]) -> list[str]:
    """A table's header row and its rule."""
    return [row(cells), "|" + "---|" * len(cells)]


def label_table(entries: list[dict[str, Any]], keys: Sequence[str], has_gold: bool, extra: tuple[str, ...] = ()
                ) -> list[str]:
    """One row per entry of variant_summary: its keys, responses, counts of its labels and accuracy; a table per
    label set (`by_labels`)."""
    out: list[str] = []
    for labels, part in by_labels(entries, lambda v: [k for k in v["labels"] if k != UNPARSED]):
        out += [*([""] if out else []), *_label_table(part, keys, labels, has_gold, extra)]
    return out or _label_table(entries, keys, [], has_gold, extra)


def _label_table(entries: list[dict[str, Any]], keys: Sequence[str], labels: list[str], has_gold: bool,
                 extra: tuple[str, ...]) -> list[str]:
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
            # the counts and the detectable difference in one parenthesis
            power = detectable(mc) if mc else ""
            cells.append(f"{p_text(mc, power=False)} ({p['a']} only: {mc['a_only_correct']}, {p['b']} only: "
                         f"{mc['b_only_correct']}" + (f"; {power})" if power else ")"))
        out.append(row(cells))
    return out


def confusion(p: dict[str, Any], title: str) -> list[str]:
    c = p["confusion"]
    out = ["", f"### Confusion: {title}, {p['a']} (rows) x {p['b']} (columns)", "",
           *head([f"{p['a']} \\ {p['b']}", *c["categories"]])]
    for name, counts in zip(c["categories"], c["counts"], strict=True):
        out.append(row([f"**{name}**", *map(str, counts)]))
    return out
