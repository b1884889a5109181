"""The run record: what a run was (spec, dataset, models, design, versions), typed and versioned.

`api.run` builds a `RunRecord`; `reporting.write_report` writes it as summary.json's `run` object
(`to_json`, the shape release 0.2 wrote plus `version`) and `evalrun report` reads it back with
`RunRecord.load`, which turns a malformed summary into one EvalrunError naming the file and the
field. A summary written before the record had a version (releases 0.1 and 0.2) is version 1.

Dataclasses, not pydantic: evalrun does not declare pydantic (it is only installed as a litellm
dependency, which evalrun imports lazily and may drop), the record is a dozen flat fields whose
check is a short walk over the type hints, and the error wording must be evalrun's own
("file: not a run's summary: 'models[0].name' is int, not a string").
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from .design.axes import Axis, used
from .errors import EvalrunError

RECORD_VERSION = 1  # raise on a change an older reader would misread; a summary with no version is 1


class _Malformed(Exception):
    """A field of the record that is missing or of the wrong type (becomes the EvalrunError's reason)."""


@dataclass(frozen=True)
class ModelRecord:
    name: str
    model: str
    api_base: str | None = None
    unreachable: bool = False  # given up after connection failures in a row: the report says so
    address: str | None = None  # the address that did not answer, with unreachable
    batch_prices: bool = False  # sent through the provider's batch API: its costs are batch prices
    mode: str | None = None  # `mode:` as the model's entry wrote it (completion: a base model asked as raw text)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "model": self.model, "api_base": self.api_base}
        if self.mode is not None:
            out["mode"] = self.mode
        if self.unreachable:
            out["unreachable"] = True
            if self.address is not None:
                out["address"] = self.address
        if self.batch_prices:
            out["batch_prices"] = True
        return out


@dataclass(frozen=True)
class RunRecord:
    """summary.json's `run` object. Fields after `versions` are written only when set (as release 0.2 did)."""

    name: str
    description: str | None
    run_id: str
    spec_path: str
    spec_sha256: str
    dataset_source: str
    dataset_sha256: str
    items: int
    labels: list[str]
    variants: list[str]  # with `<variant>.followup` for each follow-up, read as a variant of its own
    compare: list[list[str]]  # the pairs of variants compared item by item
    has_gold: bool
    models: list[ModelRecord]
    samples: int
    params: dict[str, object]  # redacted
    seed: int
    started: str
    duration_s: float
    versions: dict[str, str]  # python and the libraries that ran or computed it
    design: dict[str, object] | None = None  # Design.describe(), when the spec uses optional axes
    ordinal: bool = False  # the labels are ordered as listed: the report adds a scale's statistics
    slices: list[str] | None = None  # item columns the figures are repeated per value of
    readers: dict[str, list[str]] | None = None  # variant -> its readers beside the primary one
    judges: list[ModelRecord] | None = None  # the models readers asked about the answers (a judge's)
    predicts: dict[str, str] | None = None  # variant -> the variant whose answers it predicts (`predicts:`)
    variant_labels: dict[str, list[str]] | None = None  # each variant's labels, when some variant has its own
    stated: list[dict[str, str]] | None = None  # typed comparisons: stated, behaviour, measure, yes
    variant_modes: dict[str, str] | None = None  # variant -> its `mode:`, for the variants that wrote one
    version: int = RECORD_VERSION
    more: dict[str, object] = field(default_factory=dict)  # keys a newer writer added: kept, not read

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The axes the run used, in job-id order (see evalrun.design): what statistics group by."""
        return used(self.design.get("axes", []) if self.design else [])  # type: ignore[arg-type]

    def labels_of(self, variant: str) -> list[str]:
        """The labels a variant's answers were read as: its own (a follow-up's are listed under its name), else
        the run's; a run recorded before variants had labels of their own gives the run's for every one."""
        return list((self.variant_labels or {}).get(variant, self.labels))

    def to_json(self) -> dict[str, Any]:
        """summary.json's `run` object: release 0.2's keys in its order, with `version` first."""
        out: dict[str, Any] = {"version": self.version}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("version", "more") or (f.default is not dataclasses.MISSING and value in (None, False)):
                continue
            out[f.name] = [m.to_json() for m in value] if f.name in ("models", "judges") else value
        return {**out, **self.more}

    @classmethod
    def from_json(cls, data: object, source: Path | str) -> RunRecord:
        """The record of a summary's `run` object; a malformed one raises EvalrunError naming `source`."""
        try:
            if not isinstance(data, Mapping):
                raise _Malformed(f"'run' is {type(data).__name__}, not a mapping")
            version = _checked(data.get("version", 1), int, "version")
            if version > RECORD_VERSION:  # type: ignore[operator]
                raise EvalrunError(f"{source}: written by a newer evalrun (run record version {version}; this "
                                   f"one reads up to {RECORD_VERSION}): upgrade evalrun to report it")
            record = _build(cls, data, "")
        except _Malformed as exc:
            raise EvalrunError(f"{source}: not a run's summary: {exc}") from None
        assert isinstance(record, RunRecord)
        return record

    @classmethod
    def load(cls, summary_path: Path) -> RunRecord:
        """The record of a run folder's summary.json; one EvalrunError naming the file if it cannot be."""
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EvalrunError(f"{summary_path}: no such file (is {summary_path.parent} a run folder?)") from None
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise EvalrunError(f"{summary_path}: cannot read it: {exc}") from None
        if not isinstance(summary, dict) or "run" not in summary:
            raise EvalrunError(f"{summary_path}: not a run's summary: no 'run' key")
        return cls.from_json(summary["run"], summary_path)


_WHAT = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _build(kind: type, data: Mapping[str, object], where: str) -> object:
    """An instance of dataclass `kind` from JSON `data`, every field checked against its type hint."""
    hints = get_type_hints(kind)
    values: dict[str, object] = {}
    for f in dataclasses.fields(kind):
        name = f"{where}.{f.name}" if where else f.name
        if f.name == "more":
            values["more"] = {k: v for k, v in data.items() if k not in hints}
        elif f.name in data:
            values[f.name] = _checked(data[f.name], hints[f.name], name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Malformed(f"no {name!r} key")
    return kind(**values)


def _checked(value: object, hint: object, where: str) -> object:
    """`value` if it is of type `hint` (lists, dicts and records checked inside), else _Malformed."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = (a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    if hint is object:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _Malformed(f"{where!r} is {type(value).__name__}, not a list")
        return [_checked(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _Malformed(f"{where!r} is {type(value).__name__}, not a mapping")
        if origin is dict:
            return {k: _checked(v, args[1], f"{where}.{k}") for k, v in value.items()}
        return _build(hint, value, where)  # type: ignore[arg-type]
    # bool is an int to Python, not to JSON; an integer is a number
    ok = (isinstance(value, bool) if hint is bool else not isinstance(value, bool) and
          isinstance(value, (int, float) if hint is float else hint))  # type: ignore[arg-type]
    if not ok:
        raise _Malformed(f"{where!r} is {type(value).__name__}, not {_WHAT[hint]}")  # type: ignore[index]
    return value
