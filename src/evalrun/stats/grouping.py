"""How the statistics group a run's rows: which axes are crossed with the variants, which are nested.

Read from the design's axis declarations (`Axis.crossed`, design/axes.py), never from a list of axis
names: a crossed axis (condition, model) has every figure per level, and its levels are compared
item by item; a nested one (paraphrase, option order: levels a variant's items are rotated over) is
pooled within those groups and broken down per level beside them. The item is the unit, the variant
what is compared, the sample the replicate. summary.py, the report's sections, its figures and the
run comparison all group by what this module says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from .items import GROUP

if TYPE_CHECKING:  # stats sits beside design in the layers: it reads the axes it is given, never imports them
    from ..design.axes import Axis

# the per-level comparisons of a crossed axis are summary.json's `<axis>s`; the models' kept release 0.2's name
_COMPARED_AS = {"model": "model_pairs"}


@dataclass(frozen=True)
class Grouping:
    """`crossed`: the axes every figure is given per level of, the model first (what variants are compared
    within); `nested`: those broken down per level; `axes`: both, in the design's (registry) order;
    `optional`: the crossed axes a spec may leave out."""

    crossed: tuple[str, ...] = GROUP[:-1]  # no axes given: release 0.1's grouping
    nested: tuple[str, ...] = ()
    axes: tuple[str, ...] = GROUP[:-1]
    optional: tuple[str, ...] = ()

    @classmethod
    def of(cls, axes: Sequence[Axis]) -> Grouping:
        """The grouping of a run that used these axes (RunRecord.axes); none: release 0.1's."""
        if not axes:
            return cls()
        # who is asked (the model: it changes no message) before what is asked
        crossed = sorted((a for a in axes if a.crossed), key=lambda a: a.conversation)
        nested = {a.name for a in axes if a.optional and not a.crossed}
        return cls(tuple(a.name for a in crossed), tuple(a.name for a in axes if a.name in nested),
                   tuple(a.name for a in axes if a.crossed or a.name in nested),
                   tuple(a.name for a in axes if a.crossed and a.optional))

    @property
    def group(self) -> tuple[str, ...]:
        """The columns an entry of the variants' statistics is keyed by."""
        return (*self.crossed, "variant")

    def within(self, axis: str) -> tuple[str, ...]:
        """The group's other columns: what the levels of `axis` are compared within."""
        return tuple(k for k in self.group if k != axis)

    def others(self, axis: str) -> tuple[str, ...]:
        """The crossed axes other than `axis`."""
        return tuple(k for k in self.crossed if k != axis)

    def levels(self, entry: Mapping[str, Any], axes: Sequence[str] | None = None) -> tuple[Any, ...]:
        """An entry's levels of `axes` (by default the crossed ones); None where it has none."""
        return tuple(entry.get(k) for k in (self.crossed if axes is None else axes))


def breakdown(axis: str) -> str:
    """summary.json's key for the per-level breakdown of a nested axis (`paraphrases`, `option_orders`)."""
    return f"{axis}s"


def compared(axis: str) -> str:
    """summary.json's key for the item-by-item comparisons of a crossed axis's levels (`conditions`)."""
    return _COMPARED_AS.get(axis, f"{axis}s")


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def where(frame: Frame, values: Mapping[str, Any]) -> Frame:
    """The rows of `frame` (a table, or a scan) at these levels."""
    return frame.filter(pl.all_horizontal(pl.col(k) == v for k, v in values.items())) if values else frame


def distinct(keys: Sequence[tuple[Any, ...]], at: Sequence[int]) -> list[tuple[Any, ...]]:
    """The distinct values of the keys' places `at`, in the order they first appear."""
    return list(dict.fromkeys(tuple(key[i] for i in at) for key in keys))
