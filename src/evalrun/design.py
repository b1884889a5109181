"""The experimental design: the axes of a run, and the cell from which everything else follows.

A cell is one point of model x condition x variant x paraphrase x option order x item x sample.
Job ids, the expansion order, request keys, the result columns and the groupings of the
statistics all derive from the cell and the axes a spec uses, so a new axis is added here
and nowhere else. A spec that uses no optional axis (no conditions, one prompt per variant,
no options) expands exactly as release 0.1 did: the same job ids, positions and request keys.

Jobs are generated lazily so memory does not grow with the size of a run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from jinja2 import TemplateError

from .dataset import Dataset
from .errors import DatasetError, Problem
from .extract import build_extractor, wants_logprobs
from .jobs import Job, request_key
from .prompts import render
from .spec import DEFAULT_SEED, Condition, ModelConfig, Spec, Variant

# every axis, in the order a job id names them (item first, as release 0.1 did)
AXES = ("model", "condition", "variant", "paraphrase", "option_order", "item_id", "sample")
# axes a spec may leave out; a result column of an unused axis is null
OPTIONAL_AXES = ("condition", "paraphrase", "option_order")


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

    def columns(self) -> dict[str, object]:
        """The cell as result columns (see results.SCHEMA)."""
        order = self.option_order
        return {"model": self.model, "condition": self.condition, "variant": self.variant,
                "paraphrase": self.paraphrase, "option_order": None if order is None else ", ".join(order),
                "first_option": None if order is None else order[0], "item_id": self.item_id, "sample": self.sample}


def _rotation(n: int, k: int | None, item_index: int, salt: str) -> list[int]:
    """Which k of n levels an item is asked in: a rotation from a seeded start, so every level is used
    equally often over consecutive items (a random subset per item would not balance them)."""
    if k is None or k >= n:
        return list(range(n))
    start = random.Random(salt).randrange(n)
    return sorted((start + item_index * k + j) % n for j in range(k))


class Design:
    """The cells of one spec over one dataset, and the names and groupings that follow from them."""

    def __init__(self, spec: Spec, dataset: Dataset) -> None:
        self.spec = spec
        self.dataset = dataset
        variants = spec.variants.values()
        used = {"condition": bool(spec.conditions),
                "paraphrase": any(len(v.paraphrases) > 1 for v in variants),
                "option_order": any(v.options is not None for v in variants)}
        self.axes: tuple[str, ...] = tuple(a for a in OPTIONAL_AXES if used[a])
        self.conditions: list[Condition | None] = list(spec.conditions.values()) or [None]
        self.orders = {name: v.options.orders() if v.options else [None] for name, v in spec.variants.items()}
        # mixed-radix place values of the expansion order; levels a variant lacks are simply skipped
        self._radix = (len(self.conditions), len(spec.variants), max(len(v.paraphrases) for v in variants),
                       max(len(o) for o in self.orders.values()), len(spec.models), spec.samples)
        self.seed = int(spec.params.get("seed", DEFAULT_SEED))  # type: ignore[call-overload]
        # variants read from token log-probabilities: their requests must ask for them
        self.logprobs = {name for name, v in spec.variants.items()
                         if any(c.get("type") != "judge" and wants_logprobs(build_extractor(c, spec.labels))
                                for _, c in v.readings())}

    # ---- the levels each item is asked at ----------------------------------------------------------

    def paraphrases(self, variant: Variant, item_index: int) -> list[int]:
        return _rotation(len(variant.paraphrases), variant.paraphrases_per_item, item_index,
                         f"{self.seed}/{variant.name}/paraphrases")

    def option_orders(self, variant: Variant, item_index: int) -> list[int]:
        per_item = variant.options.per_item if variant.options else None
        return _rotation(len(self.orders[variant.name]), per_item, item_index, f"{self.seed}/{variant.name}/orders")

    def per_item(self) -> int:
        """Jobs per item: the same for every item, since rotations ask each item the same number of levels."""
        requests = sum(len(self.paraphrases(v, 0)) * len(self.option_orders(v, 0)) for v in self.spec.variants.values())
        return requests * len(self.conditions) * len(self.spec.models) * self.spec.samples

    def slots(self) -> int:
        """One more than the largest position a first-stage job can have: second-stage jobs are placed after."""
        return len(self.dataset.items) * math.prod(self._radix)

    def count(self, model: ModelConfig | None = None) -> int:
        jobs = len(self.dataset.items) * self.per_item()
        return jobs if model is None else jobs // len(self.spec.models)

    # ---- names that follow from a cell ---------------------------------------------------------------

    def job_id(self, cell: Cell) -> str:
        """Readable and stable: the used axes' levels, item first (release 0.1: item/variant/model/sample)."""
        parts = [cell.item_id]
        if "condition" in self.axes:
            parts.append(str(cell.condition))
        parts.append(cell.variant)
        if "paraphrase" in self.axes:
            parts.append(f"p{cell.paraphrase}")
        if "option_order" in self.axes and cell.option_order is not None:
            parts.append(">".join(cell.option_order))
        return "/".join([*parts, cell.model, str(cell.sample)])

    def group_keys(self, *extra: str) -> list[str]:
        """The columns a figure is grouped by: model, each used condition axis, variant, then `extra`."""
        return ["model", *(["condition"] if "condition" in self.axes else []), "variant", *extra]

    # ---- requests ------------------------------------------------------------------------------------

    def messages(self, variant: Variant, paraphrase: int, condition: Condition | None,
                 order: tuple[str, ...] | None, item: Mapping[str, object], item_id: str) -> list[dict[str, str]]:
        """The conversation sent for one cell: each turn's template over the item's columns, the
        condition's values and the options in this order."""
        context = {**item, **(condition.values if condition else {})}
        if order is not None and variant.options is not None:
            context["options"] = [variant.options.texts[label] for label in order]
        messages = []
        for turn in variant.paraphrases[paraphrase]:
            try:
                messages.append({"role": turn.role, "content": render(turn.content, context)})
            except TemplateError as exc:
                line, col = self.spec.located.where(turn.at)
                where = ".".join(map(str, turn.at))
                raise DatasetError([Problem(self.spec.located.file, line, col,
                                            f"{where}: cannot render for item '{item_id}': {exc}")]) from None
        return messages

    def check_renders(self) -> None:
        """Render every request once (before any is sent), so a template error never costs a partial run."""
        for _ in self._requests():
            pass

    def _requests(self, items: Collection[int] | None = None,
                  ) -> Iterator[tuple[int, Cell, list[dict[str, str]], Mapping[str, object]]]:
        """(slot, cell without model and sample, messages, item) for every distinct conversation (of the items
        at these indexes only, when given: their levels and positions are those of the whole run)."""
        spec = self.spec
        n_cond, n_var, n_para, n_order, _, _ = self._radix
        for item_index, item in enumerate(self.dataset.items):
            if items is not None and item_index not in items:
                continue
            item_id = self.dataset.item_id(item)
            for ci, condition in enumerate(self.conditions):
                for vi, variant in enumerate(spec.variants.values()):
                    orders = self.orders[variant.name]
                    for pi in self.paraphrases(variant, item_index):
                        for oi in self.option_orders(variant, item_index):
                            messages = self.messages(variant, pi, condition, orders[oi], item, item_id)
                            slot = ((((item_index * n_cond + ci) * n_var + vi) * n_para + pi) * n_order + oi)
                            cell = Cell(model="", condition=condition.name if condition else None,
                                        variant=variant.name,
                                        paraphrase=pi if "paraphrase" in self.axes else None,
                                        option_order=orders[oi], item_id=item_id, sample=0)
                            yield slot, cell, messages, item

    def expand(self, only: ModelConfig | None = None, items: Collection[int] | None = None) -> Iterator[Job]:
        """Every job of the run (or of one model; of the items at these indexes), in an order that interleaves
        models so each progresses."""
        spec = self.spec
        *_, n_models, n_samples = self._radix
        models = spec.models if only is None else [only]
        model_index = {m.name: i for i, m in enumerate(spec.models)}
        for slot, base, messages, item in self._requests(items):
            variant = spec.variants[base.variant]
            for model in models:
                params = {**spec.params, **model.params, **variant.params}
                if variant.name in self.logprobs:  # 20: the most OpenAI returns; a spec may ask fewer
                    params = {"logprobs": True, "top_logprobs": 20, **params}
                base_seed = int(params.pop("seed", DEFAULT_SEED))  # type: ignore[call-overload]
                first = (slot * n_models + model_index[model.name]) * n_samples
                for sample in range(spec.samples):
                    p = {**params, "seed": base_seed + sample}
                    cell = Cell(model=model.name, condition=base.condition, variant=base.variant,
                                paraphrase=base.paraphrase, option_order=base.option_order, item_id=base.item_id,
                                sample=sample)
                    yield Job(cell=cell, job_id=self.job_id(cell), key=request_key(model, messages, p, sample),
                              model=model, messages=messages, params=p, item=item, position=first + sample)

    def describe(self) -> dict[str, object]:
        """The design as summary.json records it: which optional axes are used and their levels."""
        out: dict[str, object] = {"axes": list(self.axes)}
        if "condition" in self.axes:
            out["conditions"] = {c.name: c.values for c in self.conditions if c is not None}
        if "paraphrase" in self.axes:
            out["paraphrases"] = {v.name: len(v.paraphrases) for v in self.spec.variants.values()}
        if "option_order" in self.axes:
            out["option_orders"] = {name: [", ".join(o) for o in orders if o is not None]
                                    for name, orders in self.orders.items() if orders != [None]}
        return out

