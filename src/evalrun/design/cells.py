"""The cell, and the design that expands a spec over a dataset into cells and jobs by walking the axes.

A cell is one point of the registered axes (see axes.py). Its position in the run is the mixed-radix
number of its levels' places, in registry order, each axis taking `Axis.size` places; a level a
variant lacks is simply skipped, so a spec that uses no optional axis expands exactly as release 0.1
did. Jobs are generated lazily so memory does not grow with the size of a run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from jinja2 import TemplateError

from ..dataset import Dataset
from ..embedded import CONTINUATIONS
from ..errors import DatasetError, Problem
from ..extract import build_extractor, wants_logprobs
from ..jobs import Job, request_key
from ..prompts import render
from ..spec import DEFAULT_SEED, ModelConfig, Spec, Variant
from .axes import Axis, Item, registered

# the built-in axes' levels are the cell's fields, read by name across the pipeline (cell.variant)
_FIELDS = ("model", "condition", "variant", "paraphrase", "option_order", "item_id", "sample")


@dataclass(frozen=True)
class Cell:
    """One request's place in the design; None on an axis the spec does not use."""

    model: str
    condition: str | None
    variant: str
    paraphrase: int | None
    option_order: tuple[str, ...] | None
    item_id: str
    sample: int
    more: tuple[tuple[str, object], ...] = ()  # (axis, level) of each axis registered beyond the built-ins

    @classmethod
    def of(cls, levels: Mapping[str, object]) -> Cell:
        """The cell of these values (by axis name: every built-in axis, and any registered beyond them)."""
        more = tuple((name, value) for name, value in levels.items() if name not in _FIELDS)
        return cls(*(levels[name] for name in _FIELDS), more=more)  # type: ignore[arg-type]

    def level(self, axis: str) -> object:
        """The cell's level on an axis, by the axis's name."""
        return getattr(self, axis) if axis in _FIELDS else dict(self.more).get(axis)

    def columns(self) -> dict[str, object]:
        """The cell as results columns (see results.columns)."""
        return {column: value for axis in registered() for column, value in axis.values(self.level(axis.name)).items()}


class Design:
    """The cells of one spec over one dataset, and the names that follow from them.

    `axes` are the axes this spec uses, in the order of the job id and the expansion.
    """

    def __init__(self, spec: Spec, dataset: Dataset) -> None:
        self.spec = spec
        self.dataset = dataset
        self.seed = int(spec.params.get("seed", DEFAULT_SEED))  # type: ignore[call-overload]
        self._all = registered()
        self.axes: tuple[Axis, ...] = tuple(a for a in self._all if a.used(spec))
        self._used = {a.name for a in self.axes}
        # the places each axis takes in the expansion order; an unused axis is asked at its first level only, so
        # takes one. The outermost (the item) multiplies no place, so its size is asked only by slots(): the
        # expansion reads items lazily, one at a time
        self._sizes = {a.name: a.size(self) if a.name in self._used else 1 for a in self._all[1:]}
        built = {name: [build_extractor(c, spec.labels_of(name)) for _, c in v.readings()]
                 for name, v in spec.variants.items()}
        # variants read from token log-probabilities: their requests must ask for them
        self.logprobs = {name for name, extractors in built.items() if any(map(wants_logprobs, extractors))}
        # variants read from the likelihoods of their labels' texts (choice's `mode: likelihood`): the extractors
        # that say which texts each item's requests have the embedded model score
        self.scored = {name: scoring for name, extractors in built.items()
                       if (scoring := [e for e in extractors if getattr(e, "scores_continuations", False)])}

    # ---- counts ---------------------------------------------------------------------------------------

    def per_item(self) -> int:
        """Jobs per item: the same for every item, since rotations ask each item the same number of levels."""
        if not self.dataset.items:
            return 0
        first = {"item_id": Item(0, self.dataset.items[0], "")}
        return sum(1 for _ in self._points(self._all[1:], first, 0, {}))

    def slots(self) -> int:
        """One more than the largest position a first-stage job can have: second-stage jobs are placed after."""
        return math.prod([self._all[0].size(self), *self._sizes.values()])

    def count(self, model: ModelConfig | None = None) -> int:
        jobs = len(self.dataset.items) * self.per_item()
        return jobs if model is None else jobs // len(self.spec.models)

    # ---- names that follow from a cell ---------------------------------------------------------------

    def _values(self, axes: Sequence[Axis], at: Mapping[str, object]) -> dict[str, object]:
        """What a cell records of these axes' levels at a point: each used axis's value, None on the others."""
        return {a.name: a.value(at[a.name]) if a.name in self._used else None for a in axes}

    def _parts(self, axes: Sequence[Axis], values: Mapping[str, object]) -> list[str]:
        return [part for a in axes if a.name in self._used and (part := a.part(values[a.name])) is not None]

    def job_id(self, cell: Cell) -> str:
        """Readable and stable: the used axes' levels, item first (release 0.1: item/variant/model/sample)."""
        return "/".join(self._parts(self._all, {a.name: cell.level(a.name) for a in self._all}))

    def describe(self) -> dict[str, object]:
        """The design as summary.json records it: which optional axes are used and their levels."""
        out: dict[str, object] = {"axes": [a.name for a in self.axes if a.optional]}
        for axis in self.axes:
            out.update(axis.describe(self))
        return out

    # ---- requests ------------------------------------------------------------------------------------

    def _points(self, axes: Sequence[Axis], at: Mapping[str, object], place: int,
                fixed: Mapping[str, Collection[object]]) -> Iterator[tuple[int, Mapping[str, object]]]:
        """(place, levels) of every point of `axes` (not empty) below `at`, in expansion order; `fixed` keeps only
        the points whose cell has one of these values on these axes."""
        axis, rest, size = axes[0], axes[1:], self._sizes.get(axes[0].name, 1)
        levels = axis.levels(self, at)
        for index, level in levels if axis.name in self._used else itertools.islice(levels, 1):
            if axis.name not in fixed or axis.value(level) in fixed[axis.name]:
                point = {**at, axis.name: level}
                if rest:
                    yield from self._points(rest, point, place * size + index, fixed)
                else:  # the last axis yields its points itself: one generator fewer per job
                    yield place * size + index, point

    def _messages(self, at: Mapping[str, object]) -> list[dict[str, str]]:
        """The conversation sent at a point: each turn of the paraphrase over the item's columns and what
        each axis adds (the condition's values, the options in this order)."""
        item, variant = at["item_id"], at["variant"]
        assert isinstance(item, Item) and isinstance(variant, Variant)
        context = dict(item.row)
        for axis in self.axes:  # an unused axis adds nothing: its name may be an item's column
            if axis.conversation:
                context.update(axis.context(at[axis.name], at))
        messages = []
        for turn in variant.paraphrases[at["paraphrase"]]:  # type: ignore[index]
            try:
                messages.append({"role": turn.role, "content": render(turn.content, context)})
            except TemplateError as exc:
                line, col = self.spec.located.where(turn.at)
                where = ".".join(map(str, turn.at))
                raise DatasetError([Problem(self.spec.located.file, line, col,
                                            f"{where}: cannot render for item '{item.id}': {exc}")]) from None
        return messages

    def _conversations(self, items: Collection[int] | None = None
                       ) -> Iterator[tuple[int, Mapping[str, object], list[dict[str, str]]]]:
        """(slot, levels, messages) of every distinct conversation: a point of the axes that change it (of the
        items at these indexes only, when given: their levels and positions are those of the whole run)."""
        fixed: dict[str, Collection[object]] = {}
        if items is not None:  # ids are unique (the dataset refuses duplicates), so they stand for the rows
            rows = self.dataset.items
            fixed["item_id"] = {self.dataset.item_id(rows[i]) for i in items if 0 <= i < len(rows)}
        for slot, at in self._points([a for a in self._all if a.conversation], {}, 0, fixed):
            yield slot, at, self._messages(at)

    def check_renders(self) -> None:
        """Render every request once (before any is sent), so a template error never costs a partial run."""
        for _ in self._conversations():
            pass

    def expand(self, only: ModelConfig | None = None, items: Collection[int] | None = None) -> Iterator[Job]:
        """Every job of the run (or of one model; of the items at these indexes), in an order that interleaves
        models so each progresses."""
        spec = self.spec
        talking = [a for a in self._all if a.conversation]
        asking = [a for a in self._all if not a.conversation]  # after the others: the job id's tail
        fixed = {} if only is None else {"model": {only.name}}
        for slot, conversation, messages in self._conversations(items):
            variant, item = conversation["variant"], conversation["item_id"]
            assert isinstance(variant, Variant) and isinstance(item, Item)
            # the same for every model and sample: worked out once per conversation
            shared = self._values(talking, conversation)
            prefix = self._parts(talking, shared)
            for position, at in self._points(asking, conversation, slot, fixed):
                model, sample = at["model"], at["sample"]
                assert isinstance(model, ModelConfig) and isinstance(sample, int)
                params = {**spec.params, **model.params, **variant.params}
                if variant.name in self.logprobs:  # 20: the most OpenAI returns; a spec may ask fewer
                    params = {"logprobs": True, "top_logprobs": 20, **params}
                # only the embedded model scores texts (validation refuses the mode for a spec's remote models; one
                # given with --model gets its answers read from the text, with the reason saying so)
                if variant.name in self.scored and model.embedded:
                    texts = dict.fromkeys(t for e in self.scored[variant.name] for t in e.continuations(item.row))
                    params = {CONTINUATIONS: list(texts), **params}
                seed = int(params.pop("seed", DEFAULT_SEED)) + sample  # type: ignore[call-overload]
                params = {**params, "seed": seed}  # last, as release 0.1 sent it
                values = self._values(asking, at)
                yield Job(cell=Cell.of({**shared, **values}), job_id="/".join([*prefix, *self._parts(asking, values)]),
                          key=request_key(model, messages, params, sample),
                          model=model, messages=messages, params=params, item=item.row, position=position)
