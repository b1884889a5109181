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

from .errors import Problem, SpecError, in_order
from .errors import short as _short
from .extract import ExtractorConfigError, build_extractor
from .prompts import TemplateProblem, variable_lines, variables
from .yamlpos import MAX_BYTES, Located, load_yaml, too_big

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
    tpm: float | None = None  # tokens per minute: prompt (estimated) plus max_tokens, then what was used
    price: tuple[float, float] | None = None  # USD per million input and output tokens, given in the spec
    timeout: float = DEFAULT_TIMEOUT
    params: dict[str, object] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return is_embedded(self.model)


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


def is_embedded(model: str) -> bool:
    """Models of the in-process provider (see embedded.py)."""
    return model.startswith("evalrun/")


def default_concurrency(model: str) -> int:
    # llama.cpp already uses every core for one sequence; parallel requests would only queue on its lock
    return 1 if is_embedded(model) else DEFAULT_CONCURRENCY


def model_from_string(model: str) -> ModelConfig:
    return ModelConfig(model=model, name=model, concurrency=default_concurrency(model))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


# JSON Schema types, in plain words
_EXPECTED = {"string": "text", "integer": "a whole number", "number": "a number", "object": "a mapping (key: value)",
             "array": "a list", "boolean": "true or false", "null": "nothing"}


def describe(value: object) -> str:
    """A value as a user would name it: `the number 3`, `text 'abc'`, `a list`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text '{_short(value)}'" if value else "empty text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    if hasattr(value, "isoformat"):
        return f"a date ({value})"
    return f"a {type(value).__name__}"


def _expected(kinds: object) -> str:
    names = [kinds] if isinstance(kinds, str) else list(kinds)  # type: ignore[call-overload]
    return " or ".join(_EXPECTED.get(str(k), str(k)) for k in names)


def _schema_problems(located: Located) -> list[Problem]:
    validator = Draft202012Validator(schema())
    errors = [e for e in validator.iter_errors(located.data) if tuple(e.absolute_path) not in located.broken]
    # keys a typo seems to stand for: their `required` error would say the same thing twice
    meant: set[tuple[tuple[str | int, ...], str]] = set()
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in known:
                    meant.update((tuple(error.absolute_path), m) for m in difflib.get_close_matches(key, known, n=1))
    problems: list[Problem] = []
    for error in errors:
        problems.extend(_explain(located, error, meant))
    return problems


_PATTERN_HINTS = {
    "name": ("is not a valid name", "use letters, digits, '_', '.' and '-', starting with a letter or digit; "
             "it names the report folder"),
    "path": ("is not a dataset file", "the file name must end in .csv, .jsonl, .ndjson or .parquet"),
}


def _explain(located: Located, error: ValidationError,
             meant: set[tuple[tuple[str | int, ...], str]]) -> list[Problem]:
    path = tuple(error.absolute_path)
    where = _dotted(path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    last = path[-1] if path else None

    if "propertyNames" in error.schema_path:  # a variant name; the error's instance is the name itself
        return [located.problem((*path, str(instance)), f"{where}: '{_short(str(instance))}' is not a valid "
                                "variant name", key=True,
                                hint="start with a letter, then letters, digits, '_' or '-'")]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        out = []
        for key in instance:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(known)
                out.append(located.problem((*path, key), f"unknown key '{_short(key)}' in {where}", key=True,
                                           hint=hint))
        return out
    if kind == "required" and isinstance(instance, dict):
        return [located.problem(path, f"{where}: missing required key '{key}'" if path else
                                f"missing required key '{key}'")
                for key in value if key not in instance and (path, key) not in meant]
    if kind == "oneOf" and path == ("dataset",):
        if not isinstance(instance, dict):
            return []  # the type error says it
        if "items" in instance and "path" in instance:
            return [located.problem(path, "dataset: give either `path:` (a data file) or `items:` (inline items), "
                                    "not both")]
        if (path, "path") in meant or (path, "items") in meant:
            return []
        return [located.problem(path, "dataset: missing `path:` (a data file) or `items:` (inline items)")]
    if kind == "oneOf" and len(path) == 2 and path[0] == "models":
        return _explain_model(located, error, meant)
    if kind in ("oneOf", "anyOf", "allOf") and error.context:
        return _explain(located, best_match(error.context), meant)
    if kind == "type":
        message = f"{where}: expected {_expected(value)}, got {describe(instance)}"
        hint = None
        if value == "string" and isinstance(instance, bool):
            hint = "YAML reads yes/no/on/off/true/false as booleans; put it in quotes to make it text"
        elif value == "string" and (instance is None or isinstance(instance, (int, float))):
            hint = "put it in quotes to make it text"
        elif value == "array" and isinstance(instance, (str, int, float)) and not isinstance(instance, bool):
            hint = f"write a list: [{_short(str(instance))}]"
        return [located.problem(path, message, hint=hint)]
    if kind == "enum" and last == "type":
        options = ", ".join(map(str, value))
        close = difflib.get_close_matches(str(instance), list(map(str, value)), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"one of: {options}"
        return [located.problem(path, f"{where}: unknown extractor type '{_short(str(instance))}'", hint=hint)]
    if kind == "pattern" and last == "api_key_env":
        # never echo the value: it may be the key itself, pasted by mistake
        return [located.problem(path, f"{where}: is not the name of an environment variable",
                                hint="give the variable's name, e.g. OPENAI_API_KEY, not the key itself")]
    if kind == "pattern" and last in _PATTERN_HINTS:
        what, hint = _PATTERN_HINTS[str(last)]
        return [located.problem(path, f"{where}: '{_short(str(instance))}' {what}", hint=hint)]
    if kind == "minLength":
        return [located.problem(path, f"{where}: must not be empty")]
    if kind == "minItems":
        got = len(instance) if isinstance(instance, list) else 0
        if path == ("labels",):
            return [located.problem(path, f"labels: needs at least {value} labels, got {got}")]
        if path == ("models",):
            return [located.problem(path, "models: the list is empty",
                                    hint="leave `models:` out to use the embedded model evalrun/smollm2")]
        if len(path) == 2 and path[0] == "compare":
            return [located.problem(path, f"{where}: a pair names 2 variants, got {got}")]
        return [located.problem(path, f"{where}: needs at least {value} item(s), got {got}")]
    if kind == "maxItems" and len(path) == 2 and path[0] == "compare":
        return [located.problem(path, f"{where}: a pair names 2 variants, got {len(instance)}")]
    if kind == "minProperties":
        got = len(instance) if isinstance(instance, dict) else 0
        if path == ("variants",):
            return [located.problem(path, f"variants: needs at least {value} variants to compare, got {got}")]
        return [located.problem(path, f"{where}: needs at least {value} label(s), got {got}")]
    if kind == "uniqueItems" and isinstance(instance, list):
        seen: set[str] = set()
        repeated = "?"
        for x in map(str, instance):
            if x in seen:
                repeated = x
                break
            seen.add(x)
        return [located.problem(path, f"{where}: '{_short(repeated)}' is listed more than once")]
    if kind == "not" and len(path) == 2 and path[0] == "labels":
        return [located.problem(path, f"{where}: '{instance}' is reserved for answers that match no label",
                                hint="choose another label name")]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {"minimum": "at least", "exclusiveMinimum": "greater than", "maximum": "at most",
                 "exclusiveMaximum": "less than"}[kind]
        return [located.problem(path, f"{where}: must be {bound} {value}, got {instance}")]
    return [located.problem(path, f"{where}: {_short(error.message, 120)}")]


def _explain_model(located: Located, error: ValidationError,
                   meant: set[tuple[tuple[str | int, ...], str]]) -> list[Problem]:
    path = tuple(error.absolute_path)
    where = _dotted(path)
    instance = error.instance
    if isinstance(instance, dict):
        sub = list(Draft202012Validator(schema()["$defs"]["model"]).iter_errors(instance))  # type: ignore[index]
        for e in sub:  # re-anchor at the model's place in the spec
            e.path.extendleft(reversed(path))
        out = []
        for e in sub:
            if e.validator == "additionalProperties":
                known = list(e.schema.get("properties", {}))
                for key in instance:
                    if key not in known:
                        meant.update((path, m) for m in difflib.get_close_matches(key, known, n=1))
        for e in sub:
            out.extend(_explain(located, e, meant))
        return out
    if isinstance(instance, str):  # the only way a string fails: it is empty
        return [located.problem(path, f"{where}: the model name is empty")]
    return [located.problem(path, f"{where}: expected a model name such as 'openai/gpt-4o-mini' or a mapping "
                            f"with a `model:` key, got {describe(instance)}")]


def parse_spec(text: str, file: Path) -> tuple[Spec | None, list[Problem]]:
    """Parse and check a spec's text. Returns the spec (None when errors block it) and every problem."""
    located, problems = load_yaml(text, str(file))
    if located is None:
        return None, problems
    if not isinstance(located.data, dict):
        message = f"a spec must be a mapping of keys (name:, dataset:, ...), not {describe(located.data)}"
        return None, in_order([*problems, located.problem((), message)], str(file))
    problems += _schema_problems(located)
    if any(p.severity == "error" for p in problems):
        return None, in_order(problems, str(file))
    data = located.data
    spec = _build(data, file, located, hashlib.sha256(text.encode("utf-8", "replace")).hexdigest())
    problems = in_order(problems + _semantic_problems(spec), str(file))
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
        # JSON Schema counts 2.0 as an integer; Python code downstream wants a real int
        name: Variant(name=name, prompt=v["prompt"], system=v.get("system"),
                      extract={k: int(x) if k == "margin" else x for k, x in v["extract"].items()},
                      params=dict(v.get("params", {})))
        for name, v in data["variants"].items()
    }
    models = []
    for m in data.get("models", [EMBEDDED_MODEL]):
        if isinstance(m, str):
            models.append(model_from_string(m))
        else:
            models.append(ModelConfig(
                model=m["model"], name=m.get("name", m["model"]), api_base=m.get("api_base"),
                api_key_env=m.get("api_key_env"),
                concurrency=int(m.get("concurrency", default_concurrency(m["model"]))),
                rpm=m.get("rpm"), tpm=m.get("tpm"), timeout=float(m.get("timeout", DEFAULT_TIMEOUT)),
                price=(float(m["price"]["input"]), float(m["price"]["output"])) if "price" in m else None,
                params=dict(m.get("params", {}))))
    compare = [tuple(pair) for pair in data.get("compare", [])] or list(itertools.combinations(variants, 2))
    return Spec(file=file, name=data["name"], description=data.get("description", ""), dataset=dataset,
                labels=list(data["labels"]), variants=variants, compare=compare, models=models,
                samples=int(data.get("samples", 1)), params=dict(data.get("params", {})), sha256=sha,
                located=located)


def _labels_hint(name: str, labels: list[str]) -> str:
    close = difflib.get_close_matches(name, labels, n=1)
    return f"did you mean '{close[0]}'?" if close else "labels: " + ", ".join(labels)


def _extractor_label_problems(spec: Spec, name: str, config: dict[str, object]) -> list[Problem]:
    """Every label an extractor names that is not in the label set (build_extractor stops at the first)."""
    loc = spec.located
    at = ("variants", name, "extract")
    labels = spec.labels
    out = []
    kind = config.get("type")
    for table in ("choices", "words"):
        entries = config.get(table)
        if kind in ("choice", "pronouns") and isinstance(entries, dict):
            out.extend(loc.problem((*at, table, label), f"{_dotted((*at, table))}: '{_short(label)}' is not one of "
                                   "the labels", key=True, hint=_labels_hint(label, labels))
                       for label in entries if label not in labels)
    mapping = config.get("map")
    if kind == "regex" and isinstance(mapping, dict):
        out.extend(loc.problem((*at, "map", raw), f"{_dotted((*at, 'map'))}: '{_short(raw)}' maps to "
                               f"'{_short(str(label))}', which is not one of the labels",
                               hint=_labels_hint(str(label), labels))
                   for raw, label in mapping.items() if label not in labels)
    return out


def _template_problems(spec: Spec, name: str, key: str, source: str) -> list[Problem]:
    path = ("variants", name, key)
    try:
        variables(source)
    except TemplateProblem as exc:
        line, col = spec.located.where_in_text(path, exc.lineno)
        return [Problem(spec.located.file, line, col, f"{_dotted(path)}: {exc}")]
    return []


def _semantic_problems(spec: Spec) -> list[Problem]:
    loc = spec.located
    problems: list[Problem] = []
    for name, variant in spec.variants.items():
        for key in ("system", "prompt"):
            source = getattr(variant, key)
            if source is not None:
                problems += _template_problems(spec, name, key, source)
        at = ("variants", name, "extract")
        label_problems = _extractor_label_problems(spec, name, variant.extract)
        if label_problems:
            problems += label_problems
            continue
        try:
            extractor = build_extractor(variant.extract, spec.labels)
        except ExtractorConfigError as exc:
            path = (*at, *exc.path)
            problems.append(loc.problem(path, f"{_dotted(path if len(exc.path) == 1 else at)}: {exc}",
                                        key=len(exc.path) == 2))
            continue
        never = [label for label in spec.labels if label not in extractor.can_produce()]
        if never:
            problems.append(loc.problem(at, f"{_dotted(at)} can never produce "
                                        + ", ".join(f"'{n}'" for n in never),
                                        hint="those labels will have no answers; give the extractor a way to "
                                        "produce them, or drop them from `labels:`", severity="warning"))
    for i, pair in enumerate(spec.compare):
        for j, name in enumerate(pair):
            if name not in spec.variants:
                close = difflib.get_close_matches(name, list(spec.variants), n=1)
                problems.append(loc.problem(("compare", i, j), f"compare.{i}: no variant named '{_short(name)}'",
                                            hint=f"did you mean '{close[0]}'?" if close else
                                            "variants: " + ", ".join(spec.variants)))
        if len(pair) == 2 and pair[0] == pair[1]:
            problems.append(loc.problem(("compare", i), f"compare.{i}: a variant compared with itself"))
    if spec.dataset.gold is not None and spec.dataset.gold == spec.dataset.id:
        problems.append(loc.problem(("dataset", "gold"), "dataset.gold: the gold column cannot be the id column"))
    problems += _model_problems(spec)
    return problems


def _model_problems(spec: Spec) -> list[Problem]:
    """Models that would be mixed up: reports, limits and results tell models apart by name, and
    litellm keeps one price per model string."""
    problems: list[Problem] = []
    named: dict[str, int] = {}
    priced: dict[str, tuple[int, tuple[float, float] | None]] = {}
    for i, model in enumerate(spec.models):
        if model.name in named:
            problems.append(spec.located.problem(("models", i), f"models.{i}: a second model named "
                                                 f"'{_short(model.name)}' (models.{named[model.name]} is the first)",
                                                 hint="give each its own `name:`"))
        named.setdefault(model.name, i)
        first = priced.setdefault(model.model, (i, model.price))
        if first[1] != model.price and model.price is not None and first[1] is not None:
            problems.append(spec.located.problem(("models", i, "price"), f"models.{i}.price: a different price "
                                                 f"for {_short(model.model)} than models.{first[0]}",
                                                 hint="litellm keeps one price per model string"))
    return problems


def check_columns(spec: Spec, columns: list[str]) -> list[Problem]:
    """Template variables that no dataset column provides (static, before any request)."""
    problems = []
    for name, variant in spec.variants.items():
        for key in ("system", "prompt"):
            source = getattr(variant, key)
            if source is None:
                continue
            try:
                lines = variable_lines(source)
            except TemplateProblem:
                continue  # already reported by parse_spec
            for var in sorted(set(lines) - set(columns)):
                close = difflib.get_close_matches(var, columns, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "columns: " + (", ".join(columns) or "none")
                message = f"variants.{name}.{key} uses '{var}', which no dataset column provides"
                line, col = spec.located.where_in_text(("variants", name, key), lines[var])
                problems.append(Problem(spec.located.file, line, col, message, hint))
    return problems


def load_spec(path: Path) -> Spec:
    """Read and check a spec file; raises SpecError listing every problem."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading: a huge file should not even be loaded
            raise SpecError([too_big(file, size)])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(file, None, None, "no such file")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(file, None, None, "is a directory, not a spec file")]) from None
    except OSError as exc:
        raise SpecError([Problem(file, None, None, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Problem(file, line, col, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                 "save it as UTF-8")]) from None
    spec, problems = parse_spec(text, path)
    if spec is None:
        raise SpecError(problems)
    return spec
