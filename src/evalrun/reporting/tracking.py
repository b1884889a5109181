"""compare.md's change-tracking section, for two runs of one spec by two models (a base and its
fine-tune): does the change in the stated answer track the change in behaviour, item by item?
The statistics, and what they mean, are in stats/tracking.py; this module only lays them out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from ..stats.bootstrap import RESAMPLES, SEED
from ..stats.tracking import tracking
from .format import num, pct, points, pp


def _share(result: dict[str, Any]) -> str:
    """Percent agreement as `75.0% (3/4) [40.9%, 95.5%]`, from `wilson`'s dict."""
    if result["estimate"] is None:
        return "n/a"
    return (f"{pct(result['estimate'])} ({result['count']}/{result['n']}) "
            f"[{pct(result['ci_low'])}, {pct(result['ci_high'])}]")


def _kappa(result: dict[str, Any]) -> str:
    return num(result["kappa"]["kappa"], missing="undefined")


def _did(did: dict[str, Any]) -> str:
    text = pp(did["estimate"])
    if did["estimate"] is None or did["ci_low"] is None:
        return text
    if did["degenerate"]:  # a zero-width interval would read as certainty
        return f"{text} [no interval: every resample gave {pp(did['ci_low'])}]"
    return f"{text} [{pp(did['ci_low'])}, {pp(did['ci_high'])}]"


def _reading(where: str, label: str, did: dict[str, Any]) -> str:
    """What a difference-in-differences says, in words, by where its interval lies."""
    head = f"- {where}, *{label}*: "
    estimate, low, high = did["estimate"], did["ci_low"], did["ci_high"]
    if estimate is None:
        return head + "no item has all four labels read."
    if did["degenerate"] and estimate == 0:
        return head + f"on every item the stated answer moved toward *{label}* exactly as behaviour did."
    if low is not None and low > 0:
        return head + (f"the stated answer moved toward *{label}* more than behaviour did ({points(estimate)}); "
                       "the change in what the model says outran the change in what it does.")
    if high is not None and high < 0:
        return head + (f"behaviour moved toward *{label}* more than the stated answer did ({points(estimate)}); "
                       "the change in what the model does outran the change in what it says.")
    return head + (f"no difference detected ({points(estimate)}, the interval includes 0): these items do not show "
                   f"the stated answer and behaviour moving toward *{label}* by different amounts (whether they "
                   "moved together item by item is the agreement above).")


def tracking_lines(frames: Sequence[tuple[str, pl.DataFrame]], labels: Sequence[str], model_a: str,
                   model_b: str) -> list[str]:
    """The section for the compared pairs: (where, frame) with the frame's columns a_1 and b_1 (the
    baseline's labels of the pair's first and second variant) and a_2, b_2 (this run's), aligned by
    item. Empty without pairs."""
    if not frames:
        return []
    counts, shifts, readings = [], [], []
    for where, frame in frames:
        a_1, b_1, a_2, b_2 = (frame[name].to_list() for name in ("a_1", "b_1", "a_2", "b_2"))
        result = tracking(a_1, a_2, b_1, b_2, labels)
        c = result["counts"]
        counts.append(f"| {where} | {result['read']} of {result['n']} | {c['both']} | {c['stated_only']} | "
                      f"{c['behaviour_only']} | {c['neither']} | {_share(result['agreement']['percent'])} | "
                      f"{_kappa(result['agreement'])} |")
        for row in result["labels"]:
            shifts.append(f"| {where} | {row['label']} | {pp(row['stated'])} | {pp(row['behaviour'])} | "
                          f"{_did(row['did'])} | {_share(row['agreement']['percent'])} | "
                          f"{_kappa(row['agreement'])} |")
            readings.append(_reading(where, row["label"], row["did"]))
    return [
        f"### Does the stated answer's change track behaviour's? ({model_a} → {model_b})", "",
        "For each compared pair, the first variant is read as the stated answer and the second as behaviour. "
        f"Per item, each changed if this run's model ({model_b}) labelled it otherwise than the baseline's "
        f"({model_a}); only items with all four labels read count. The changes agree when both or neither "
        "changed (percent agreement with its Wilson interval, and Cohen's kappa over changed/same).", "",
        "| model · condition · pair | items read | both changed | only stated | only behaviour | neither | "
        "changes agree [95% CI] | kappa |", "|---|---|---|---|---|---|---|---|", *counts, "",
        "A paired difference-in-differences over items, per label: the change (this run minus the baseline) in "
        "the share of items whose stated answer is the label, minus the change in the share whose behaviour is; "
        "0 when the statement moved as behaviour did. Its 95% interval is a percentile bootstrap over items "
        f"({RESAMPLES} resamples, seed {SEED}). The signed changes (toward the label, away, none) agree when the "
        "statement and behaviour moved alike on the item.", "",
        "| model · condition · pair | label | stated, change in share, pp | behaviour, change in share, pp | "
        "difference-in-differences, pp [95% CI] | signed changes agree [95% CI] | kappa |",
        "|---|---|---|---|---|---|---|", *shifts, "", *readings, ""]
