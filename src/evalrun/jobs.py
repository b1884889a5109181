"""A job: one request (model, messages, parameters) and the design cell that asked for it.

First-stage jobs ask the design's questions; second-stage jobs ask a follow-up question in the same
conversation (a cell of the variant `followup_variant(variant)`) or are an asking reader's requests
about a first answer (`reads` says which).

A job's `key` hashes everything that determines its answer (provider model, api_base,
messages, parameters, seed, sample index), so the store can tell an answer already paid
for from one still to ask, and a changed prompt or parameter invalidates exactly the jobs
it touches. Jobs are made by `design.Design.expand`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .spec import ModelConfig

if TYPE_CHECKING:
    from .design import Cell


PRIMARY = "extract"  # a variant's own reader (its `extract:`), which labels the answer's row


@dataclass(frozen=True)
class Reads:
    """What a second-stage request of an asking reader is for: reader `reader` asking its model number
    `index` about the answer at `position` (the first-stage job's place in the expansion order)."""

    reader: str
    index: int
    position: int


@dataclass(frozen=True)
class Job:
    cell: Cell  # where the job stands in the design
    job_id: str  # the cell's used axes: stable and readable
    key: str  # content hash: what the store is keyed by
    model: ModelConfig
    messages: list[dict[str, str]]
    params: dict[str, object]
    item: Mapping[str, object]  # the dataset row (a reference, not a copy): gold label and text for results
    position: int  # place in the whole run's expansion order, over all models: results are sorted by it
    reads: Reads | None = None  # set on a reader's request: the answer it reads (its cell is that answer's)


def request_key(model: ModelConfig, messages: list[dict[str, str]], params: dict[str, object], sample: int) -> str:
    payload = {"model": model.model, "api_base": model.api_base, "messages": messages, "params": params,
               "sample": sample}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
