"""Readers against a person: each reader's labels measured against the labels people gave by hand.

People label answers with `evalrun annotate` (annotate.py) or in `evalrun view` (view/labels.py); the
labels live in the response store, keyed by the answer (its request and text), so a report finds them for
every run that got the same answers. Read here, from the store, rather than copied into the run folder: a
label given after a run, or while labelling another run with the same answers, then counts at the next
`evalrun report` without any copy to keep in step.
The section appears only when some of the run's answers have a human label; otherwise report.md is as before.

The person is the reference, a reader named `human`: an answer's human label is the one its labellers gave
(those who marked it "unclear" abstain); an answer all of them found unclear, or on which they differ, is
left out and counted. Each variant is measured in its own labels (a variant may read labels of its own), so an
answer given a label its variant does not read (stored before the view and `evalrun annotate` offered each
variant's labels, or given for another run's same answer) is left out and counted too. Accuracy counts an
unparsed reading as wrong, as the report's accuracy against gold does; kappa and the confusion come from
stats/agreement.py, the one function over two aligned label vectors.
Once a variant's own reader has enough hand labels of every label, the agreement between variants is also shown
corrected for the readers' errors (stats/misclassification.py: the matrix method, Barron 1977).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ...extract import UNPARSED
from ...jobs import PRIMARY
from ...stats.confusion import labelled
from ...stats.misclassification import MAX_CONDITION, MAX_DROPPED, MIN_PER_LABEL, corrected_agreement
from ...store import UNCLEAR, answer_key, read_labels
from ..format import counted, pct
from ..format import num as _f
from .common import Context, boot, ci, excerpt, head, row

READINGS = "readings.parquet"
SLICE_ROWS = 10_000  # rows of results.parquet read at a time: the answers' texts are never all in memory
WRONG_SHOWN = 3  # answers a reader got wrong quoted per reader
QUOTE_CHARS = 120


@dataclass(frozen=True)
class _Labelled:
    """An answer of the run a person labelled, with every reader's label of it."""

    job_id: str
    variant: str
    item_id: str
    text: str
    human: str
    readers: dict[str, str | None]


def _person(given: dict[str, str]) -> str | None:
    """The human label of an answer from its labellers' (who -> label): UNCLEAR when every one found it
    unclear, None when those who gave a label differ."""
    named = set(given.values()) - {UNCLEAR}
    if not named:
        return UNCLEAR
    return named.pop() if len(named) == 1 else None


def _labelled(results: Path, people: dict[str, dict[str, str]]) -> tuple[list[_Labelled], int, int, set[str]]:
    """The run's answers people labelled (each job once): labelled, left out as unclear, left out because the
    people differ, and who labelled them."""
    found: list[_Labelled] = []
    unclear = differ = 0
    who: set[str] = set()
    scan = pl.scan_parquet(results).filter(pl.col("error_class").is_null() & pl.col("response").is_not_null())
    total = scan.select(pl.len()).collect().item()
    for start in range(0, total, SLICE_ROWS):
        rows = scan.slice(start, SLICE_ROWS).select("job_id", "key", "variant", "item_id", "response",
                                                    "label").collect()
        for r in rows.iter_rows(named=True):
            given = people.get(answer_key(r["key"], r["response"]))
            if given is None:
                continue
            who |= given.keys()
            human = _person(given)
            if human is None:
                differ += 1
            elif human == UNCLEAR:
                unclear += 1
            else:
                found.append(_Labelled(r["job_id"], r["variant"], str(r["item_id"]), r["response"], human,
                                       {PRIMARY: r["label"]}))
    return found, unclear, differ, who


def _other_readers(readings: Path, answers: list[_Labelled]) -> None:
    """Add each answer's other readers' labels (judges, second extractors) from readings.parquet."""
    if not readings.exists() or not answers:
        return
    by_job = {a.job_id: a for a in answers}
    rows = (pl.scan_parquet(readings).filter(pl.col("job_id").is_in(list(by_job)) & (pl.col("reader") != PRIMARY))
            .select("job_id", "reader", "label").collect())
    for job_id, reader, label in rows.iter_rows():
        by_job[job_id].readers[reader] = label


def _labels_of(ctx: Context) -> dict[str, list[str]]:
    """Each variant's labels, as its statistics list them (stats/summary.py reads each in its own)."""
    return {v["variant"]: list(v["label_rates"]) for v in ctx.stats["variants"]}


def _measure(answers: list[_Labelled], variant: str, reader: str, labels: list[str]) -> dict[str, Any]:
    # here, not at the top: a report without human labels (or one drawn from the memo) imports no scipy/statsmodels
    from ...stats.agreement import agreement
    from ...stats.proportion import wilson

    mine = [a for a in answers if a.variant == variant and reader in a.readers]
    human = [a.human for a in mine]
    read = [a.readers[reader] for a in mine]
    return {"variant": variant, "reader": reader, "labels": labels, "n": len(mine),
            "unparsed": sum(x is None for x in read),
            "accuracy": wilson(sum(h == x for h, x in zip(human, read, strict=True)), len(mine)),
            **agreement(human, read, labels),
            "wrong": [(a, x) for a, x in zip(mine, read, strict=True) if x != a.human]}


def _kappa(k: dict[str, Any]) -> str:
    if k["kappa"] is None:
        return "n/a (undefined: no answers in common, or one label only)"
    if k["degenerate"]:
        return f"{_f(k['kappa'])} [no asymptotic interval: zero variance]"
    return f"{_f(k['kappa'])} [{_f(k['ci_low'])}, {_f(k['ci_high'])}]"


def _corrected(ctx: Context, measured: list[dict[str, Any]]) -> list[str]:
    """Agreement between each compared pair of variants, observed and corrected for their own readers' errors;
    nothing until some variant's reader has MIN_PER_LABEL hand labels of every label it read."""
    # each variant's reader against the person, unparsed readings left out (the method's square matrix)
    readers = {m["variant"]: (m["labels"], labelled(np.array(m["confusion"]["counts"])))
               for m in measured if m["reader"] == PRIMARY}
    if not any(counts.sum(axis=1).min() >= MIN_PER_LABEL for _, counts in readers.values()):
        return []
    out = ["", "Agreement between variants corrected for the readers' errors (matrix method, Barron 1977, "
           "Biometrics 33:414-418): each variant's reader's rates of reading each label given the person's, "
           "pooled over the run, invert the observed table of the items both variants labelled (unparsed left "
           "out); negative cells clipped to 0 and the table renormalised. Shown for a reader with at least "
           f"{MIN_PER_LABEL} hand labels of every label and well-conditioned rates (condition number below "
           f"{MAX_CONDITION:g}). The rates come from the answers people labelled, which favour doubtful ones, so "
           "the correction may overstate the readers' errors. Its interval is a percentile bootstrap (seeded) that "
           "redraws both what it rests on: the items both variants labelled and, independently, each reader's "
           "hand-labelled answers; a resample in which a reader's rates are singular or not well-conditioned is "
           f"dropped, and with more than {MAX_DROPPED:.0%} of them dropped there is no interval.", ""]
    for p in ctx.stats["pairs"]:
        name = f"{p['a']} vs {p['b']} ({ctx.at(p)})"
        if p["a"] not in readers or p["b"] not in readers:
            out.append(f"- {name}: not shown: a variant's answers have no hand labels")
            continue
        # a compared pair reads one set of labels, each variant maybe in its own order: the pair's order counts
        order = p["confusion"]["categories"][:-1]
        c = corrected_agreement(labelled(np.array(p["confusion"]["counts"])), _in_order(*readers[p["a"]], order),
                                _in_order(*readers[p["b"]], order))
        if c.observed is None:
            out.append(f"- {name}: not shown: {c.refused}")
        elif c.corrected is None:
            out.append(f"- {name}: observed {_f(100 * c.observed, 1)}%, corrected not shown: {c.refused}")
        else:
            out.append(f"- {name}: observed {_f(100 * c.observed, 1)}%, corrected {_f(100 * c.corrected, 1)}% "
                       + _interval(c.interval or {}))
    return out


def _interval(b: dict[str, Any]) -> str:
    """The corrected agreement's bootstrap interval, with what it resampled and how many resamples were dropped,
    or why it has none."""
    how = f"bootstrap over the items and the hand labels, {counted(b['resamples'], 'resample')}; {b['dropped']} dropped"
    if b["refused"]:
        return f"[no interval: {b['refused']}] ({how})"
    return f"{boot(b, pct)} ({how})"


def _in_order(labels: list[str], counts: np.ndarray, order: list[str]) -> np.ndarray:
    """A square table of counts over `labels` with its rows and columns in `order` (the same labels)."""
    at = [labels.index(label) for label in order]
    return counts[np.ix_(at, at)]


def human(ctx: Context, results: Path) -> list[str]:
    """The section, or nothing when no answer of the run has a human label."""
    people: dict[str, dict[str, str]] = {}
    for h in read_labels():
        people.setdefault(h.answer_key, {})[h.who] = h.label
    if not people:
        return []
    answers, unclear, differ, who = _labelled(results, people)
    if not answers and not unclear and not differ:
        return []
    own = _labels_of(ctx)
    readable = [a for a in answers if a.human in own.get(a.variant, ctx.labels)]
    foreign = len(answers) - len(readable)
    answers = readable
    _other_readers(results.with_name(READINGS), answers)
    pairs = dict.fromkeys((a.variant, r) for a in answers for r in a.readers)  # in the results' order
    measured = [_measure(answers, v, r, own.get(v, ctx.labels)) for v, r in pairs]
    # a run whose human labels all fit their variants' labels keeps the sentence it always had
    left = (f", {differ} on which the people differ and {foreign} given a label their variant does not read"
            if foreign else f" and {differ} on which the people differ")
    out = ["", "## Readers against a person", "",
           f"{len(answers) + unclear + differ + foreign} answers labelled by hand ({', '.join(sorted(who))}, with "
           f"`evalrun annotate` or `evalrun view`), of which {unclear} marked unclear{left} are left out. Each "
           "reader's label against the person's: accuracy counts an unparsed reading as wrong (Wilson 95% "
           "interval); Cohen's kappa uses the answers the reader labelled. `evalrun "
           "annotate` samples (and `evalrun view`'s filters offer) the answers the readers disagree on or could "
           "not read first, so these accuracies speak for the "
           "doubtful answers more than for the run's answers as a whole.", "",
           *head(["variant", "reader", "answers", "accuracy [95% CI]", "Cohen's kappa [asymptotic 95% CI]",
                  UNPARSED])]
    for m in measured:
        out.append(row([m["variant"], m["reader"], str(m["n"]), ci(m["accuracy"]), _kappa(m["kappa"]),
                        str(m["unparsed"])]))
    for m in measured:
        counts = m["confusion"]["counts"]
        out += ["", f"### Confusion: {m['variant']}, human (rows) x {m['reader']} (columns)", "",
                *head([f"human \\ {m['reader']}", *m["labels"], UNPARSED])]
        out += [row([f"**{label}**", *map(str, counts[i])]) for i, label in enumerate(m["labels"])]
        if m["wrong"]:
            shown = [f"- item {a.item_id}: human {a.human}, {m['reader']} {x or UNPARSED}: "
                     f"\"{excerpt(a.text, QUOTE_CHARS)}\"" for a, x in m["wrong"][:WRONG_SHOWN]]
            more = len(m["wrong"]) - len(shown)
            out += ["", f"{m['reader']} ({m['variant']}) got {len(m['wrong'])} wrong"
                    + (f", {more} not shown" if more else "") + ":", "", *shown]
    return out + _corrected(ctx, measured)
