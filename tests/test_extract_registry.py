"""The extractor registry: built-ins come through the same entry points as plugins, and the spec schema's
`$defs/extractor` is composed from the registered types' fragments."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from evalrun.extract import (
    GROUP,
    ExtractorConfigError,
    ExtractorType,
    build_extractor,
    extractor_schema,
    extractor_type,
    extractor_types,
)
from evalrun.extract.builtin import choice
from evalrun.spec.model import schema

STATIC = Path(__file__).parent.parent / "schemas" / "evalspec.schema.json"
BUILTINS = ["choice", "judge", "number", "pronouns", "regex"]


def _builtin_types() -> dict[str, ExtractorType]:
    own = {ep.name for ep in entry_points(group=GROUP) if ep.dist is not None and ep.dist.name == "evalrun"}
    return {name: kind for name, kind in extractor_types().items() if name in own}


def test_the_builtins_are_registered_through_the_entry_points() -> None:
    assert sorted(_builtin_types()) == BUILTINS
    assert extractor_type("choice") is choice


def test_the_static_schema_is_the_composed_schema_of_the_builtins() -> None:
    static = json.loads(STATIC.read_text(encoding="utf-8"))
    assert static["$defs"]["extractor"] == extractor_schema(_builtin_types()), (
        "schemas/evalspec.schema.json is out of date: write extractor_schema() of the built-ins into $defs/extractor")
    composed = schema()
    assert {k: v for k, v in composed.items() if k != "$defs"} == {k: v for k, v in static.items() if k != "$defs"}
    assert {k: v for k, v in composed["$defs"].items() if k != "extractor"} == {  # type: ignore[union-attr]
        k: v for k, v in static["$defs"].items() if k != "extractor"}
    Draft202012Validator.check_schema(composed)


def test_a_fragment_governs_only_its_own_type() -> None:
    extra = ExtractorType(name="vibes", schema={"required": ["mood"], "properties": {"mood": {"enum": ["good"]}},
                                                "dependentRequired": {"mood": []}},
                          build=lambda config, labels: choice.build({"choices": {"a": []}}, labels))
    composed = extractor_schema({"choice": choice, "vibes": extra})
    assert composed["properties"] == {"type": {"enum": ["choice", "vibes"]}}
    vibes = composed["allOf"][1]  # type: ignore[index]
    assert vibes["if"] == {"properties": {"type": {"const": "vibes"}}, "required": ["type"]}
    assert vibes["then"] == {"additionalProperties": False, "required": ["mood"], "dependentRequired": {"mood": []},
                             "properties": {"type": True, "mood": {"enum": ["good"]}}}
    validator = Draft202012Validator(composed)
    assert validator.is_valid({"type": "vibes", "mood": "good"})
    assert not validator.is_valid({"type": "vibes", "mood": "good", "choices": {}})  # another type's key
    assert not validator.is_valid({"type": "vibes"})
    assert not validator.is_valid({"type": "other"})


def test_an_unknown_type_says_what_is_registered() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "pronoun"}, ["female", "male"])
    assert info.value.path == ("type",)
    assert str(info.value) == "unknown extractor type 'pronoun' (did you mean 'pronouns'?)"
    with pytest.raises(ExtractorConfigError, match="registered types: choice, judge, number, pronouns, regex"):
        extractor_type("zzz")


def test_build_raises_the_first_problem_its_type_finds() -> None:
    with pytest.raises(ExtractorConfigError) as info:
        build_extractor({"type": "number", "bins": {"low": [1, 3], "high": [3, 7]}}, ["low", "high"])
    assert info.value.path == ("bins", "high")
    assert "overlap" in str(info.value)
