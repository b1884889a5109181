"""What may be compared: the pairs `compare:` compares label by label, which must read the same labels (a
variant's own `labels:`, else the spec's), the typed comparisons of a stated answer with a measured
behaviour (`compare:` as a mapping), whose measure the behaviour variant must allow, and the variant a
`predicts:` names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import Problem
from ..errors import short as _short
from ..prompts import TemplateProblem, variables
from .model import FOLLOWUP, Spec, Turn
from .wording import dotted

_TYPED = "{stated: A, behaviour: B, measure: changes or first, \"yes\": LABEL}"


def _name_problem(spec: Spec, at: tuple[str | int, ...], name: str) -> Problem | None:
    """A compared name that is no variant, nor a variant's follow-up (`<variant>.followup`)."""
    if name in spec.variants:
        return None
    where = f"compare.{at[1]}"
    base = name.removesuffix(FOLLOWUP)
    if base != name and base in spec.variants:  # a follow-up's answers, read as a variant of their own
        if spec.variants[base].followup is not None:
            return None
        return spec.located.problem(at, f"{where}: variant '{_short(base)}' has no follow-up",
                                    hint=f"give '{_short(base)}' a `followup:`, or compare '{_short(base)}' itself")
    close = difflib.get_close_matches(name, list(spec.variants), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "variants: " + ", ".join(spec.variants)
    return spec.located.problem(at, f"{where}: no variant named '{_short(name)}'", hint=hint)


def compare_problems(spec: Spec) -> list[Problem]:
    """Every entry of `compare:` as written (the automatic pairs are made valid): its names exist and differ,
    a label-by-label comparison's two variants read the same labels, a typed one's measure can be taken."""
    problems: list[Problem] = []
    for i, entry in enumerate(spec.located.data.get("compare") or []):  # type: ignore[union-attr]
        typed = isinstance(entry, dict)
        places = [(("compare", i, key), entry[key]) for key in ("stated", "behaviour")] if typed else [
            (("compare", i, j), name) for j, name in enumerate(entry)]
        found = [p for at, name in places if (p := _name_problem(spec, at, name)) is not None]
        problems += found
        if found or len(places) != 2:
            continue
        a, b = (name for _, name in places)
        if a == b:
            problems.append(spec.located.problem(("compare", i), f"compare.{i}: a variant compared with itself"))
        elif not typed or entry["measure"] == "label":
            problems += _label_pair_problems(spec, i, a, b, typed)
        else:
            problems += _typed_problems(spec, i, entry)
    return problems


def _label_pair_problems(spec: Spec, i: int, a: str, b: str, typed: bool) -> list[Problem]:
    la, lb = spec.labels_of(a), spec.labels_of(b)
    if set(la) == set(lb):
        return []
    hint = ("compare a statement with a behaviour by `measure: changes` or `measure: first`" if typed else
            f"to compare a stated answer with a measured behaviour, write {_TYPED}")
    return [spec.located.problem(("compare", i), f"compare.{i}: '{_short(a)}' ({', '.join(la)}) and '{_short(b)}' "
                                 f"({', '.join(lb)}) read different labels, so they cannot be compared label by label",
                                 hint=hint)]


def _typed_problems(spec: Spec, i: int, entry: dict[str, str]) -> list[Problem]:
    """`yes:` is one of the stated variant's labels; `changes` needs conditions the behaviour variant's prompt
    uses; `first` needs options listed in more than one order."""
    loc, measure = spec.located, entry["measure"]
    stated = spec.labels_of(entry["stated"])
    out = []
    if "yes" not in entry:
        out.append(loc.problem(("compare", i), f"compare.{i}: `measure: {measure}` needs `\"yes\":`, the stated "
                               "label that asserts the behaviour", hint=f"one of: {', '.join(stated)}"))
    elif entry["yes"] not in stated:
        close = difflib.get_close_matches(entry["yes"], stated, n=1)
        out.append(loc.problem(("compare", i, "yes"), f"compare.{i}.yes: '{_short(entry['yes'])}' is not one of "
                               f"the labels of '{_short(entry['stated'])}'",
                               hint=f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(stated)}"))
    behaviour = spec.variants[entry["behaviour"].removesuffix(FOLLOWUP)]
    follows = entry["behaviour"] != behaviour.name
    if measure == "changes":
        given = sorted({var for c in spec.conditions.values() for var in c.values})
        # a follow-up's answers change with the conditions its variant's prompt (or its own) uses
        asked = _used(behaviour.templates())
        if len(spec.conditions) < 2:
            out.append(loc.problem(("compare", i, "measure"), f"compare.{i}.measure: `changes` needs two or more "
                                   "`conditions:` for the behaviour to change between",
                                   hint="add `conditions:`, or compare the labels with `measure: label`"))
        elif not asked.intersection(given):
            out.append(loc.problem(("compare", i, "behaviour"), f"compare.{i}.behaviour: '{_short(entry['behaviour'])}'"
                                   " does not use the conditions in its prompt, so its answers cannot change between "
                                   "them", hint="use a condition's variable in its prompt: " + ", ".join(given)))
    elif behaviour.options is None or follows:
        out.append(loc.problem(("compare", i, "behaviour"), f"compare.{i}.behaviour: '{_short(entry['behaviour'])}' "
                               "lists no `options:`, so no option is listed first",
                               hint="give it `options:` with `counterbalance: rotations`"))
    elif len(behaviour.options.orders()) < 2:
        out.append(loc.problem(("compare", i, "measure"), f"compare.{i}.measure: `first` with the options of "
                               f"'{_short(behaviour.name)}' in one order only: picking the option listed first "
                               "cannot be told from preferring it", hint="give it `counterbalance: rotations`"))
    elif behaviour.options.per_item == 1:
        out.append(loc.problem(("variants", behaviour.name, "orders_per_item"), f"variants.{behaviour.name}."
                               "orders_per_item: 1 asks each item in one order, so an item's pick of the first option "
                               f"cannot be told from its preference (compare.{i})", severity="warning",
                               hint="ask each item in two orders or more"))
    return out


def prediction_problems(spec: Spec) -> list[Problem]:
    """`predicts:` names another variant read with the same labels: a prediction is scored by whether it names
    the label that variant's answer got, so a label the other side cannot give could never be right."""
    loc = spec.located
    problems = []
    for name, variant in spec.variants.items():
        target = variant.predicts
        if target is None:
            continue
        at = ("variants", name, "predicts")
        if target == name:
            problems.append(loc.problem(at, f"{dotted(at)}: a variant cannot predict itself",
                                        hint="name the variant whose answers this one predicts"))
        elif target not in spec.variants:
            close = difflib.get_close_matches(target, [v for v in spec.variants if v != name], n=1)
            problems.append(loc.problem(at, f"{dotted(at)}: no variant named '{_short(target)}'",
                                        hint=f"did you mean '{close[0]}'?" if close else
                                        "variants: " + ", ".join(spec.variants)))
        elif set(mine := spec.labels_of(name)) != set(theirs := spec.labels_of(target)):
            problems.append(loc.problem(at, f"{dotted(at)}: '{_short(name)}' reads the labels "
                                        f"{', '.join(mine)} and '{_short(target)}' reads {', '.join(theirs)}",
                                        hint="a prediction names one of the other variant's labels: give both "
                                        "the same `labels:`"))
    return problems


def _used(turns: Iterable[Turn]) -> set[str]:
    """The variables the templates read (one that does not compile is reported elsewhere, and read as none)."""
    out: set[str] = set()
    for turn in turns:
        try:
            out |= variables(turn.content)
        except TemplateProblem:
            continue
    return out
