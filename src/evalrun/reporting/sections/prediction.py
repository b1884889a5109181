"""Prediction: a variant that `predicts:` another, scored against each model's answers to it (self- and
cross-prediction, stats/prediction.py), beside the baseline of always guessing the most common answer."""

from __future__ import annotations

from typing import Any

from ...stats.words import verdict
from ..format import counted, points
from ..format import pct as _pct
from .common import Context, ci, detectable, head, p_text, row

# how an accuracy reads against the baseline (stats/prediction.versus): a side only where the Wilson intervals
# do not overlap
_AGAINST = {"above": "above it (the intervals do not overlap)", "below": "below it (the intervals do not overlap)",
            "overlaps": "not distinguishable from it (the intervals overlap)", None: "not comparable (no items)"}


def _who(ctx: Context, entry: dict[str, Any]) -> str:
    return f"**{entry['model']}**" + "".join(f" under *{level}*" for level in ctx.levels(entry))


def _baseline(b: dict[str, Any]) -> str:
    """`always 'no': 60.4% [46.3%, 73.0%] (29/48)`, naming every label tied for the most common."""
    guess = " or ".join(f"'{label}'" for label in b["tied"]) or "n/a"
    return f"always {guess}: {ci(b)}"


def _who_predicts(p: dict[str, Any]) -> str:
    return "self-prediction" if p["self"] else f"cross-prediction by **{p['predictor_model']}**"


def _test(t: dict[str, Any]) -> str:
    """Self against one cross-prediction on the items all three were read for, with McNemar's exact test."""
    if t["pvalue"] is None:
        return f"Self vs **{t['predictor_model']}**: no item read for all three, no test possible"
    power = detectable(t)
    return (f"Self vs **{t['predictor_model']}** on the {counted(t['items'], 'item')} all three were read for: "
            f"{_pct(t['self_accuracy']['estimate'])} vs {_pct(t['cross_accuracy']['estimate'])}, "
            f"{points(t['difference'])}; McNemar exact {p_text(t, power=False)} (only self right: {t['b']}, "
            f"only cross right: {t['c']}" + (f"; {power}" if power else "") + f"): {verdict(t['pvalue_holm'])}")


def prediction(ctx: Context) -> list[str]:
    entries = ctx.stats.get("prediction")
    if not entries:
        return []
    out = ["", "## Prediction", "",
           "A predicting variant asks a model about its own answer to another variant (the target); each model's "
           "prediction is scored against the target's answers of every model, item by item. A model predicting its "
           "own answers (self-prediction, the diagonal) better than another model predicts them (cross-prediction) "
           "is what Binder et al. 2024 read as introspection. Accuracy is over the items whose prediction and "
           "target answer were both read (Wilson 95% interval, count/n); the baseline always guesses the target's "
           "most common answer. An accuracy is called above or below the baseline only where their intervals do "
           "not overlap. Self vs cross: McNemar's exact test on whether each item was predicted right, "
           "Holm-adjusted over the target's comparisons (a family of their own, apart from the report's other "
           "tests)."]
    tables: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for entry in entries:
        tables.setdefault((entry["predictor"], entry["target"], *ctx.levels(entry)), []).append(entry)
    for (predictor, target, *levels), group in tables.items():
        models = [p["predictor_model"] for p in group[0]["predictions"]]
        order = [group[0]["model"], *(m for m in models if m != group[0]["model"])]
        under = "".join(f" under *{level}*" for level in levels)
        out += ["", f"### *{predictor}* predicts *{target}*{under}", "",
                *head(["target \\ predictor", *order, "baseline"])]
        for entry in group:
            by = {p["predictor_model"]: p for p in entry["predictions"]}
            out.append(row([f"**{entry['model']}**", *(ci(by[m]["accuracy"]) for m in order),
                            _baseline(entry["baseline"])]))
        out.append("")
        out += [_details(ctx, entry) for entry in group]
    return out


def _details(ctx: Context, entry: dict[str, Any]) -> str:
    """A target's readings against the baseline, what was left out, and its self-vs-cross tests."""
    readings = "; ".join(f"{_who_predicts(p)} {_AGAINST[p['baseline']]}" for p in entry["predictions"])
    left = ", ".join(f"{p['predictor_model']}'s prediction unparsed on {p['unparsed_prediction']}"
                     for p in entry["predictions"] if p["unparsed_prediction"])
    self_ = entry["predictions"][0]
    text = (f"- {_who(ctx, entry)}, against the baseline ({_baseline(entry['baseline'])}): {readings}. Left out: "
            f"the target unparsed on {self_['unparsed_target']} of {self_['items']} items"
            + (f", {left}" if left else "") + ".")
    if entry["self_vs_cross"]:
        text += " " + ". ".join(_test(t) for t in entry["self_vs_cross"]) + "."
    return text


def summary(ctx: Context, unreachable: set[str]) -> list[str]:
    """The Summary's line per target: self- and cross-prediction accuracy, the test between them, the baseline.
    An unreachable target has no answers to predict (the Summary says it was unreachable once)."""
    lines = []
    for entry in ctx.stats.get("prediction", []):
        if entry["model"] in unreachable:
            continue
        own, *others = entry["predictions"]
        text = (f"- {_who(ctx, entry)} / *{entry['predictor']}* predicts *{entry['target']}*: self-prediction "
                f"{ci(own['accuracy'])}")
        text += "".join(f"; cross-prediction by **{p['predictor_model']}** {ci(p['accuracy'])}" for p in others)
        for t in entry["self_vs_cross"]:
            if t["pvalue"] is not None:
                text += (f"; self - cross by **{t['predictor_model']}** {points(t['difference'])} on the "
                         f"{counted(t['items'], 'item')} all three were read for "
                         f"({_pct(t['self_accuracy']['estimate'])} vs "
                         f"{_pct(t['cross_accuracy']['estimate'])}), McNemar exact {p_text(t, power=False)}: "
                         f"{verdict(t['pvalue_holm'])}")
        text += (f". The most-common-answer baseline ({_baseline(entry['baseline'])}): self-prediction "
                 f"{_AGAINST[own['baseline']]}.")
        lines.append(text)
    return lines
