"""The axes of the design as data: each axis declares, once, everything that follows from it.

An `Axis` says whether a spec uses it, its levels for a spec (and, for a rotated axis, for an item),
how many places it takes in the expansion order, what a cell records of a level, the level's part
of the job id, the results columns it fills (with their polars types and place in results.parquet),
what it adds to the prompt templates' context, and what `Design.describe()` records of it.
`Design`, job ids, the expansion order, `Cell.columns()` and the results schema all loop over
`registered()`, so a new axis is one `Axis` and one `register` call.

The registry's order is the order of the job id and of the expansion (item first, as release 0.1
did): item, condition, variant, paraphrase, option order, model, sample. Axes whose level changes
the conversation sent come before those that only say who is asked and how often (model, sample).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from ..spec import Condition, ModelConfig, Spec, Variant

if TYPE_CHECKING:
    from .cells import Design

DType = pl.DataType | type[pl.DataType]
Level = tuple[int, object]  # (its place among the axis's levels in the expansion order, the level)
Point = Mapping[str, object]  # the levels chosen so far, by axis name


class Item(NamedTuple):
    """A level of the item axis: the dataset row and where it stands."""

    index: int
    row: Mapping[str, object]
    id: str


@dataclass(frozen=True, eq=False)  # an axis is itself: compared and hashed by identity
class Axis:
    """One axis of the design. The base class is an axis every spec uses, whose levels a subclass gives.

    `name` is the cell's field and the results column naming the level (the column to group by);
    `columns` every results column the axis fills, its own first; `after` the results column its
    columns follow in results.parquet (empty: at the end). `optional` axes may go unused: an unused
    axis is asked at its first level only (one place in the expansion order), adds nothing to the
    templates' context, is left out of the job id and is null in results, so a spec that does not
    use an axis expands as if it did not exist. `conversation` axes change the messages sent.
    `crossed` axes are crossed with the variants (statistics per level, and the levels compared with
    each other item by item); the others a variant's items are spread over (rotated) are pooled within
    and broken down per level (see stats/grouping.py). The item, variant and sample are the unit, the
    compared and the replicate: their flag is not read.
    """

    name: str
    columns: Mapping[str, DType] = field(default_factory=dict)
    after: str = ""
    optional: bool = False
    conversation: bool = True
    crossed: bool = False

    def used(self, spec: Spec) -> bool:
        return True

    def size(self, design: Design) -> int:
        """Places this axis takes in the expansion order: the most levels any variant has."""
        raise NotImplementedError

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        """The levels asked at the point `at` (the levels of the axes before this one)."""
        raise NotImplementedError

    def value(self, level: object) -> object:
        """What the cell records of a level."""
        return level

    def part(self, value: object) -> str | None:
        """The cell value's part of the job id (None: no part)."""
        return str(value)

    def values(self, value: object) -> dict[str, object]:
        """The cell value as results columns."""
        return {self.name: value}

    def context(self, level: object, at: Point) -> Mapping[str, object]:
        """What the level adds to the prompt templates' context."""
        return {}

    def describe(self, design: Design) -> dict[str, object]:
        """What summary.json's `run.design` records of the axis's levels, when a spec uses it."""
        return {}


def rotation(n: int, k: int | None, item_index: int, salt: str) -> list[int]:
    """Which k of n levels an item is asked in: a rotation from a seeded start, so every level is used
    equally often over consecutive items (a random subset per item would not balance them)."""
    if k is None or k >= n:
        return list(range(n))
    start = random.Random(salt).randrange(n)
    return sorted((start + item_index * k + j) % n for j in range(k))


class ItemAxis(Axis):
    def size(self, design: Design) -> int:
        return len(design.dataset.items)

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        for index, row in enumerate(design.dataset.items):
            yield index, Item(index, row, design.dataset.item_id(row))

    def value(self, level: object) -> object:
        assert isinstance(level, Item)
        return level.id


class ConditionAxis(Axis):
    def used(self, spec: Spec) -> bool:
        return bool(spec.conditions)

    def size(self, design: Design) -> int:
        return len(design.spec.conditions) or 1

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        return enumerate(list(design.spec.conditions.values()) or [None])

    def value(self, level: object) -> object:
        return level.name if isinstance(level, Condition) else None

    def context(self, level: object, at: Point) -> Mapping[str, object]:
        return level.values if isinstance(level, Condition) else {}

    def describe(self, design: Design) -> dict[str, object]:
        return {"conditions": {c.name: c.values for c in design.spec.conditions.values()}}


class VariantAxis(Axis):
    def size(self, design: Design) -> int:
        return len(design.spec.variants)

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        return enumerate(design.spec.variants.values())

    def value(self, level: object) -> object:
        assert isinstance(level, Variant)
        return level.name


def _variant(at: Point) -> Variant:
    variant = at["variant"]
    assert isinstance(variant, Variant)
    return variant


def _item_index(at: Point) -> int:
    item = at["item_id"]
    assert isinstance(item, Item)
    return item.index


class ParaphraseAxis(Axis):
    def used(self, spec: Spec) -> bool:
        return any(len(v.paraphrases) > 1 for v in spec.variants.values())

    def size(self, design: Design) -> int:
        return max(len(v.paraphrases) for v in design.spec.variants.values())

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        variant = _variant(at)
        for index in rotation(len(variant.paraphrases), variant.paraphrases_per_item, _item_index(at),
                              f"{design.seed}/{variant.name}/paraphrases"):
            yield index, index

    def part(self, value: object) -> str | None:
        return f"p{value}"

    def describe(self, design: Design) -> dict[str, object]:
        return {"paraphrases": {v.name: len(v.paraphrases) for v in design.spec.variants.values()}}


def _orders(variant: Variant) -> list[tuple[str, ...] | None]:
    return list(variant.options.orders()) if variant.options else [None]


class OptionOrderAxis(Axis):
    def used(self, spec: Spec) -> bool:
        return any(v.options is not None for v in spec.variants.values())

    def size(self, design: Design) -> int:
        return max(len(_orders(v)) for v in design.spec.variants.values())

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        variant = _variant(at)
        orders = _orders(variant)
        per_item = variant.options.per_item if variant.options else None
        for index in rotation(len(orders), per_item, _item_index(at), f"{design.seed}/{variant.name}/orders"):
            yield index, orders[index]

    def part(self, value: object) -> str | None:
        return None if value is None else ">".join(value)  # type: ignore[call-overload]

    def values(self, value: object) -> dict[str, object]:
        order: tuple[str, ...] | None = value  # type: ignore[assignment]
        return {"option_order": None if order is None else ", ".join(order),
                "first_option": None if order is None else order[0]}

    def context(self, level: object, at: Point) -> Mapping[str, object]:
        variant = _variant(at)
        if level is None or variant.options is None:
            return {}
        return {"options": [variant.options.texts[label] for label in level]}  # type: ignore[attr-defined]

    def describe(self, design: Design) -> dict[str, object]:
        return {"option_orders": {v.name: [", ".join(o) for o in v.options.orders()]
                                  for v in design.spec.variants.values() if v.options}}


class ModelAxis(Axis):
    def size(self, design: Design) -> int:
        return len(design.spec.models)

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        return enumerate(design.spec.models)

    def value(self, level: object) -> object:
        assert isinstance(level, ModelConfig)
        return level.name


class SampleAxis(Axis):
    def size(self, design: Design) -> int:
        return design.spec.samples

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        return ((sample, sample) for sample in range(design.spec.samples))


# the built-in axes, in the order of the job id and the expansion; `after` keeps release 0.1's columns in place
_REGISTRY: list[Axis] = [
    ItemAxis("item_id", {"item_id": pl.String}, after="key"),
    ConditionAxis("condition", {"condition": pl.String}, after="cached", optional=True, crossed=True),
    VariantAxis("variant", {"variant": pl.String}, after="item_text"),
    ParaphraseAxis("paraphrase", {"paraphrase": pl.Int64}, after="condition", optional=True),
    OptionOrderAxis("option_order", {"option_order": pl.String, "first_option": pl.String}, after="paraphrase",
                    optional=True),
    ModelAxis("model", {"model": pl.String}, after="variant", conversation=False, crossed=True),
    SampleAxis("sample", {"sample": pl.Int64}, after="model_string", conversation=False),
]


_BUILT_IN = tuple(_REGISTRY)


def registered() -> tuple[Axis, ...]:
    """Every axis, in the order of the job id and the expansion."""
    return tuple(_REGISTRY)


def register(axis: Axis, before: str = "model") -> None:
    """Add an axis before the axis named `before` (by default the last axis that changes the conversation).
    It must be optional, so that specs which do not use it keep their job ids, positions and keys."""
    names = [a.name for a in _REGISTRY]
    if axis.name in names:
        raise ValueError(f"an axis named '{axis.name}' is registered already")
    if not axis.optional:
        raise ValueError(f"axis '{axis.name}': an added axis must be optional")
    at = names.index(before)
    if at == 0:
        raise ValueError(f"axis '{axis.name}': the item stays the outermost axis")
    if axis.conversation and not all(a.conversation for a in _REGISTRY[:at]):
        raise ValueError(f"axis '{axis.name}' changes the conversation: it must come before model and sample")
    _REGISTRY.insert(at, axis)


def unregister(name: str) -> None:
    """Remove an axis `register` added."""
    if name in {a.name for a in _BUILT_IN}:
        raise ValueError(f"axis '{name}' is built in")
    _REGISTRY[:] = [a for a in _REGISTRY if a.name != name]


def used(names: Iterable[str]) -> tuple[Axis, ...]:
    """The axes a run used, from the optional axes summary.json's `run.design.axes` names: every axis a
    spec cannot leave out, and those named, in registry order (what a report groups by)."""
    named = set(names)
    return tuple(a for a in _REGISTRY if not a.optional or a.name in named)


def results_columns(own: Mapping[str, DType]) -> dict[str, DType]:
    """The results schema: `own` columns with every axis's columns placed after its `after` column."""
    order = list(own.items())
    for axis in _REGISTRY:
        names = [name for name, _ in order]
        at = names.index(axis.after) + 1 if axis.after else len(order)
        order[at:at] = list(axis.columns.items())
    return dict(order)
