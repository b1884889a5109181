"""The extractor registry: every extractor type, built-in or plugin, found through the `evalrun.extractors`
entry-point group.

A plugin is an installed distribution declaring, in its own metadata,

    [project.entry-points."evalrun.extractors"]
    first_letters = "my_package.module:first_letters"      # an ExtractorType named first_letters

The built-ins are declared the same way in evalrun's pyproject.toml, so one path loads them all. A spec
only names a type; nothing in a spec can make evalrun import code, so a plugin must be installed by the
user. Each type's schema fragment goes into the spec schema (`spec.model.schema()`), so validation and
editors see a plugin's keys as they see the built-ins'.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import Config, ConfigProblem, Extractor, ExtractorConfigError, ExtractorType, TemplateSpot

GROUP = "evalrun.extractors"


@lru_cache(maxsize=1)
def extractor_types() -> dict[str, ExtractorType]:
    """Every registered extractor type by name, sorted by name (read once per process; tests that install a
    plugin call `extractor_types.cache_clear()`, and `spec.model.schema.cache_clear()`)."""
    found: dict[str, ExtractorType] = {}
    owners: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        owner = ep.dist.name if ep.dist else ep.value
        if ep.name in found:
            raise ConfigError(f"two installed packages register the extractor type '{ep.name}': {owners[ep.name]} "
                              f"and {owner}; uninstall one")
        try:
            kind = ep.load()
        except Exception as exc:  # a plugin's import can fail in any way; say whose, not a traceback
            raise ConfigError(f"the extractor plugin '{ep.name}' ({owner}) failed to load: "
                              f"{type(exc).__name__}: {exc}; reinstall or uninstall {owner}") from None
        if not isinstance(kind, ExtractorType) or kind.name != ep.name:
            raise ConfigError(f"the entry point '{ep.name}' of {owner} ({ep.value}) is not an "
                              f"evalrun.extract.ExtractorType named '{ep.name}'")
        found[ep.name] = kind
        owners[ep.name] = owner
    if "choice" not in found:  # evalrun's own entry points are missing: its install predates them
        raise ConfigError("evalrun's built-in extractors are not registered (its installed metadata is out of date); "
                          "reinstall evalrun, e.g. `pip install -e .` in its folder")
    return dict(sorted(found.items()))


def extractor_type(name: object) -> ExtractorType:
    types = extractor_types()
    if isinstance(name, str) and name in types:
        return types[name]
    close = difflib.get_close_matches(str(name), list(types), n=1)
    hint = f"did you mean '{close[0]}'?" if close else "registered types: " + ", ".join(types)
    raise ExtractorConfigError(f"unknown extractor type '{name}' ({hint})", ("type",))


def config_problems(config: Config, labels: Sequence[str]) -> list[ConfigProblem]:
    """Everything wrong with a schema-valid `extract:` mapping that its type can see before building it."""
    kind = extractor_type(config.get("type"))
    return kind.problems(config, labels) if kind.problems else []


def template_spots(config: Config) -> list[TemplateSpot]:
    """The strings of an `extract:` mapping that are templates over the item's columns."""
    kind = extractor_type(config.get("type"))
    return kind.templates(config) if kind.templates else []


def build_extractor(config: Config, labels: Sequence[str]) -> Extractor:
    """Turn a spec's `extract:` mapping (already schema-valid) into an extractor.

    Raises ExtractorConfigError for what the schema cannot see (the first of `config_problems`, then
    whatever the builder refuses: a bad regular expression, a missing named group).
    """
    kind = extractor_type(config.get("type"))
    for problem in kind.problems(config, labels) if kind.problems else []:
        raise ExtractorConfigError(problem.message, problem.path, key=problem.key, field=problem.field,
                                   label=problem.label, line=problem.line)
    return kind.build(config, labels)


def extractor_schema(types: Mapping[str, ExtractorType] | None = None) -> dict[str, object]:
    """`$defs/extractor` of the spec schema: `type` names a registered type, and each type's fragment
    governs the rest of the mapping (its own keys only)."""
    types = extractor_types() if types is None else types
    branches = []
    for name, kind in types.items():
        fragment = dict(kind.schema)
        own = fragment.pop("properties", {})
        assert isinstance(own, Mapping)
        # a fragment may constrain its keys further (dependentRequired, oneOf, ...); unknown keys stay refused
        then: dict[str, object] = {"additionalProperties": False, **fragment, "properties": {"type": True, **own}}
        branches.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": then})
    return {"type": "object", "required": ["type"], "properties": {"type": {"enum": list(types)}}, "allOf": branches}
