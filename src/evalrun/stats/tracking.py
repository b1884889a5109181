"""Change tracking: between two runs of one spec by two models (a base A and its fine-tune B), does
the change in the stated answer track the change in behaviour, item by item?

The design is a difference-in-differences (as in Card & Krueger 1994, a treated group's change
minus a control group's), here paired over items: each change is B minus A on the same item, so
what the item itself pulls toward cancels, and the difference of the two changes (stated minus
behaviour) is taken within the item too, so the item is the unit the interval resamples.

For a compared pair of variants, the first stated (direct: "would you ...?") and the second
behaviour (indirect: the choice a task reveals), and item i with labels A_s(i), B_s(i) (stated,
by A and by B) and A_b(i), B_b(i) (behaviour):

* stated change s_i = 1[B_s(i) != A_s(i)], behaviour change b_i = 1[B_b(i) != A_b(i)];
* toward a label x, the signed change of the stated answer 1[B_s(i) = x] - 1[A_s(i) = x] (+1 the item
  moved to x, -1 it left x, 0 neither), and likewise of behaviour;
* the difference-in-differences for x, DiD(x) = mean_i [(1[B_s = x] - 1[A_s = x]) - (1[B_b = x] - 1[A_b = x])]:
  the change in the share of items whose stated answer is x minus the change in the share whose
  behaviour is x. 0: on average the statement moved toward x as much as behaviour did; positive:
  the statement moved toward x more than behaviour (the fine-tune changed what the model says more
  than what it does); negative: behaviour moved toward x more than the statement.
  Its 95% interval is the item-clustered percentile bootstrap of `bootstrap` (the mean of the
  per-item differences over resampled items).

A mean of 0 can hide changes that do not track (one item's statement moves while another item's
behaviour does), so the item-level agreement of the change vectors is reported too: percent
agreement and Cohen's kappa (the one `agreement` function) of s against b, and of the signed
changes toward each label; and the counts of items where both changed, only the statement, only
behaviour, neither.

Edge rules: an item counts only where all four labels were read (a change from or to unparsed
is not a change of answer but of legibility); the change vectors say None for the others, and
`read` says how many items are left. With no item read every estimate is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .agreement import Label, agreement
from .bootstrap import bootstrap_ratio

CHANGE_LABELS = ("changed", "same")
SIGNED_LABELS = ("toward", "none", "away")


def changes(before: Sequence[Label], after: Sequence[Label]) -> list[Label]:
    """Per item "changed" or "same" (the label of B against A's), None where either is unparsed."""
    return [None if x is None or y is None else "changed" if x != y else "same"
            for x, y in zip(before, after, strict=True)]


STEPS = {1: "toward", 0: "none", -1: "away"}  # a signed change toward a label, as a number and as a label


def signed_changes(before: Sequence[Label], after: Sequence[Label], label: str) -> list[Label]:
    """Per item "toward" `label` (B gave it, A did not), "away" (A gave it, B did not) or "none"; None
    where either is unparsed."""
    return [None if x is None or y is None else STEPS[(y == label) - (x == label)]
            for x, y in zip(before, after, strict=True)]


def _moved(signed: Sequence[Label], read: Sequence[bool]) -> np.ndarray:
    """The signed change (`signed_changes`) of each read item as a number, +1, 0 or -1."""
    number = {word: step for step, word in STEPS.items()}
    return np.array([number[s] for s, r in zip(signed, read, strict=True) if r], dtype=float)


def tracking(stated_a: Sequence[Label], stated_b: Sequence[Label], behaviour_a: Sequence[Label],
             behaviour_b: Sequence[Label], labels: Sequence[str]) -> dict[str, Any]:
    """How the change from run A to run B in the stated answer tracks the change in behaviour.

    The four vectors are aligned by item (A's and B's labels of the stated and the behaviour
    variant). Keys: n (items), read (items with all four labels read), counts (both, stated_only,
    behaviour_only, neither, over the read items), agreement (`agreement` of the change vectors s
    and b), and labels: per label x, label, stated and behaviour (the change in the share of read
    items labelled x, B minus A), did (their difference with its bootstrap interval, as
    `bootstrap_ratio` returns it) and agreement (of the signed changes toward x).
    """
    if not len(stated_a) == len(stated_b) == len(behaviour_a) == len(behaviour_b):
        raise ValueError("the four label vectors must have one entry per item, aligned")
    said, did = changes(stated_a, stated_b), changes(behaviour_a, behaviour_b)
    read = [s is not None and b is not None for s, b in zip(said, did, strict=True)]
    pairs = [(s, b) for s, b, r in zip(said, did, read, strict=True) if r]
    counts = {"both": pairs.count(("changed", "changed")), "stated_only": pairs.count(("changed", "same")),
              "behaviour_only": pairs.count(("same", "changed")), "neither": pairs.count(("same", "same"))}
    per_label = []
    for label in labels:
        signed_s, signed_b = signed_changes(stated_a, stated_b, label), signed_changes(behaviour_a, behaviour_b, label)
        stated, behaviour = _moved(signed_s, read), _moved(signed_b, read)
        ones = np.ones(len(stated))
        per_label.append({
            "label": label,
            "stated": float(stated.mean()) if len(stated) else None,
            "behaviour": float(behaviour.mean()) if len(behaviour) else None,
            "did": bootstrap_ratio(stated - behaviour, ones),
            "agreement": agreement(signed_s, signed_b, SIGNED_LABELS),
        })
    return {"n": len(stated_a), "read": sum(read), "counts": counts,
            "agreement": agreement(said, did, CHANGE_LABELS), "labels": per_label}
