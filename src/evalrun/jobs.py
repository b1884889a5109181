"""Expansion: items x variants x models x samples -> jobs, each one request.

A job's `key` hashes everything that determines its answer (provider model,
api_base, messages, parameters, seed, sample index), so the store can tell an
answer already paid for from one still to ask, and a changed prompt or parameter
invalidates exactly the jobs it touches. Jobs are generated lazily so memory does
not grow with the size of a run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from jinja2 import TemplateError

from .dataset import Dataset
from .errors import DatasetError, Problem
from .prompts import render
from .spec import DEFAULT_SEED, ModelConfig, Spec


@dataclass(frozen=True)
class Job:
    job_id: str  # item/variant/model/sample: stable and readable
    key: str  # content hash: what the store is keyed by
    item_id: str
    variant: str
    model: ModelConfig
    sample: int
    messages: list[dict[str, str]]
    params: dict[str, object]
    item: Mapping[str, object]  # the dataset row (a reference, not a copy): gold label and text for results
    order: int  # position in the whole run's expansion order, over all models: results are sorted by it


def request_key(model: ModelConfig, messages: list[dict[str, str]], params: dict[str, object], sample: int) -> str:
    payload = {"model": model.model, "api_base": model.api_base, "messages": messages, "params": params,
               "sample": sample}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def messages_for(spec: Spec, variant: str, item: dict[str, object], item_id: str) -> list[dict[str, str]]:
    v = spec.variants[variant]
    try:
        messages = []
        if v.system:
            messages.append({"role": "system", "content": render(v.system, item)})
        messages.append({"role": "user", "content": render(v.prompt, item)})
    except TemplateError as exc:
        line, col = spec.located.where(("variants", variant, "prompt"))
        raise DatasetError([Problem(spec.located.file, line, col,
                                    f"variants.{variant}: cannot render for item '{item_id}': {exc}")]) from None
    return messages


def expand(spec: Spec, dataset: Dataset, only: ModelConfig | None = None) -> Iterator[Job]:
    """Every job of the run (or of one model), in an order that interleaves models so each progresses."""
    models = spec.models if only is None else [only]
    model_index = {m.name: i for i, m in enumerate(spec.models)}
    for item_index, item in enumerate(dataset.items):
        item_id = dataset.item_id(item)
        for variant_index, variant in enumerate(spec.variants):
            messages = messages_for(spec, variant, item, item_id)
            for model in models:
                slot = (item_index * len(spec.variants) + variant_index) * len(spec.models) + model_index[model.name]
                params = {**spec.params, **model.params, **spec.variants[variant].params}
                base_seed = int(params.pop("seed", DEFAULT_SEED))  # type: ignore[call-overload]
                for sample in range(spec.samples):
                    p = {**params, "seed": base_seed + sample}
                    yield Job(
                        job_id=f"{item_id}/{variant}/{model.name}/{sample}",
                        key=request_key(model, messages, p, sample),
                        item_id=item_id, variant=variant, model=model, sample=sample,
                        messages=messages, params=p, item=item, order=slot * spec.samples + sample)


def count_jobs(spec: Spec, dataset: Dataset) -> int:
    return len(dataset.items) * len(spec.variants) * len(spec.models) * spec.samples
