"""The eval spec: loading, validation against the JSON Schema, and the typed result.

`schemas/evalspec.schema.json` is the single source of truth for the format; this
module adds what a schema cannot say (templates compile, extractor labels exist,
compared variants exist) and turns every failure into a located Problem.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .errors import Problem, SpecError
from .extract import ExtractorConfigError, build_extractor
from .prompts import TemplateProblem, variables
from .yamlpos import Located, load_yaml

EMBEDDED_MODEL = "evalrun/smollm2"
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 60.0
DEFAULT_SEED = 0


@dataclass(frozen=True)
class ModelConfig:
    """One model to ask, as litellm knows it, with its own limits."""

    model: str
    name: str
    api_base: str | None = None
    api_key_env: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rpm: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    params: dict[str, object] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.model.startswith("evalrun/")


@dataclass(frozen=True)
class Variant:
    """One way of asking: a prompt template, how to read its answer, and parameter overrides."""

    name: str
    prompt: str
    system: str | None
    extract: dict[str, object]
    params: dict[str, object]


@dataclass(frozen=True)
class DatasetConfig:
    items: list[dict[str, object]] | None
    path: Path | None
    id: str
    gold: str | None


@dataclass
class Spec:
    file: Path
    name: str
    description: str
    dataset: DatasetConfig
    labels: list[str]
    variants: dict[str, Variant]
    compare: list[tuple[str, str]]
    models: list[ModelConfig]
    samples: int
    params: dict[str, object]
    sha256: str
    located: Located
    warnings: list[Problem] = field(default_factory=list)

    def with_overrides(self, models: list[str] | None = None, samples: int | None = None) -> Spec:
        """The same spec with the command line's --model / --samples applied."""
        out = replace(self)
        if models:
            out.models = [model_from_string(m) for m in models]
        if samples is not None:
            out.samples = samples
        return out


@lru_cache(maxsize=1)
def schema() -> dict[str, object]:
    text = resources.files("evalrun").joinpath("evalspec.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def model_from_string(model: str) -> ModelConfig:
    return ModelConfig(model=model, name=model, concurrency=1 if model.startswith("evalrun/") else DEFAULT_CONCURRENCY)


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_problems(located: Located) -> list[Problem]:
    problems: list[Problem] = []
    validator = Draft202012Validator(schema())
    for error in sorted(validator.iter_errors(located.data), key=lambda e: list(map(str, e.absolute_path))):
        problems.extend(_explain(located, error))
    return problems


def _explain(located: Located, error: ValidationError) -> list[Problem]:
    path = tuple(error.absolute_path)
    where = _dotted(path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        out = []
        for key in error.instance:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(known)
                out.append(located.problem((*path, key), f"unknown key '{key}' in {where}", key=True, hint=hint))
        return out
    if error.validator == "required":
        return [located.problem(path, f"{where}: {error.message}")]
    if error.validator == "oneOf" and path and path[0] == "dataset" and len(path) == 1:
        return [located.problem(path, "dataset: give exactly one of `items:` (inline) or `path:` (a file)")]
    if error.validator in ("oneOf", "anyOf", "allOf") and error.context:
        return _explain(located, best_match(error.context))
    if error.validator == "enum" and path and path[-1] == "type":
        options = ", ".join(map(str, error.validator_value))
        close = difflib.get_close_matches(str(error.instance), list(map(str, error.validator_value)), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of: {options}"
        return [located.problem(path, f"{where}: unknown extractor type '{error.instance}'", hint=hint)]
    if error.validator == "propertyNames":
        return [located.problem(path, f"{where}: {error.message}")]
    return [located.problem(path, f"{where}: {error.message}")]


def parse_spec(text: str, file: Path) -> tuple[Spec | None, list[Problem]]:
    """Parse and check a spec's text. Returns the spec (None when errors block it) and every problem."""
    located, problems = load_yaml(text, str(file))
    if located is None:
        return None, problems
    if not isinstance(located.data, dict):
        return None, [*problems, located.problem((), "a spec must be a mapping of keys (name:, dataset:, ...)")]
    problems += _schema_problems(located)
    if any(p.severity == "error" for p in problems):
        return None, problems
    data = located.data
    spec = _build(data, file, located, hashlib.sha256(text.encode()).hexdigest())
    problems += _semantic_problems(spec)
    spec.warnings = [p for p in problems if p.severity == "warning"]
    if any(p.severity == "error" for p in problems):
        return None, problems
    return spec, problems


def _build(data: dict, file: Path, located: Located, sha: str) -> Spec:
    ds = data["dataset"]
    dataset = DatasetConfig(
        items=ds.get("items"),
        path=(file.parent / ds["path"]) if "path" in ds else None,
        id=ds.get("id", "id"),
        gold=ds.get("gold"),
    )
    variants = {
        name: Variant(name=name, prompt=v["prompt"], system=v.get("system"), extract=v["extract"],
                      params=dict(v.get("params", {})))
        for name, v in data["variants"].items()
    }
    models = []
    for m in data.get("models", [EMBEDDED_MODEL]):
        if isinstance(m, str):
            models.append(model_from_string(m))
        else:
            embedded = m["model"].startswith("evalrun/")
            models.append(ModelConfig(
                model=m["model"], name=m.get("name", m["model"]), api_base=m.get("api_base"),
                api_key_env=m.get("api_key_env"),
                concurrency=m.get("concurrency", 1 if embedded else DEFAULT_CONCURRENCY),
                rpm=m.get("rpm"), timeout=float(m.get("timeout", DEFAULT_TIMEOUT)), params=dict(m.get("params", {}))))
    compare = [tuple(pair) for pair in data.get("compare", [])] or list(itertools.combinations(variants, 2))
    return Spec(file=file, name=data["name"], description=data.get("description", ""), dataset=dataset,
                labels=list(data["labels"]), variants=variants, compare=compare, models=models,
                samples=int(data.get("samples", 1)), params=dict(data.get("params", {})), sha256=sha,
                located=located)


def _semantic_problems(spec: Spec) -> list[Problem]:
    loc = spec.located
    problems: list[Problem] = []
    for name, variant in spec.variants.items():
        for key in ("system", "prompt"):
            source = getattr(variant, key)
            if source is None:
                continue
            try:
                variables(source)
            except TemplateProblem as exc:
                line, col = loc.where(("variants", name, key))
                if line is not None and exc.lineno is not None:
                    # a block scalar's text starts on the line after its `|`
                    line += exc.lineno - (0 if ("variants", name, key) in loc.blocks else 1)
                problems.append(Problem(loc.file, line, col, f"variants.{name}.{key}: {exc}"))
        try:
            extractor = build_extractor(variant.extract, spec.labels)
        except ExtractorConfigError as exc:
            problems.append(loc.problem(("variants", name, "extract", *exc.path),
                                        f"variants.{name}.extract: {exc}", key=len(exc.path) == 2))
            continue
        never = [label for label in spec.labels if label not in extractor.can_produce()]
        if never:
            problems.append(loc.problem(("variants", name, "extract"),
                                        f"variants.{name}.extract can never produce "
                                        + ", ".join(f"'{n}'" for n in never), severity="warning"))
    for i, pair in enumerate(spec.compare):
        for j, name in enumerate(pair):
            if name not in spec.variants:
                close = difflib.get_close_matches(name, list(spec.variants), n=1)
                problems.append(loc.problem(("compare", i, j), f"compare: no variant named '{name}'",
                                            hint=f"did you mean '{close[0]}'?" if close else None))
        if pair[0] == pair[1]:
            problems.append(loc.problem(("compare", i), "compare: a variant compared with itself"))
    if spec.dataset.gold is not None and spec.dataset.gold == spec.dataset.id:
        problems.append(loc.problem(("dataset", "gold"), "dataset: the gold column cannot be the id column"))
    return problems


def check_columns(spec: Spec, columns: list[str]) -> list[Problem]:
    """Template variables that no dataset column provides (static, before any request)."""
    problems = []
    for name, variant in spec.variants.items():
        for key in ("system", "prompt"):
            source = getattr(variant, key)
            if source is None:
                continue
            for var in sorted(variables(source) - set(columns)):
                close = difflib.get_close_matches(var, columns, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "columns: " + ", ".join(columns)
                message = f"variants.{name}.{key} uses '{var}', which no dataset column provides"
                problems.append(spec.located.problem(("variants", name, key), message, hint=hint))
    return problems


def load_spec(path: Path) -> Spec:
    """Read and check a spec file; raises SpecError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(str(path), None, None, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), None, None, f"cannot read: {exc}")]) from None
    spec, problems = parse_spec(text, path)
    if spec is None:
        raise SpecError(problems)
    return spec
