"""JSON Schema errors in plain words, each located at its place in the spec."""

from __future__ import annotations

import difflib

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ..errors import Problem
from ..errors import short as _short
from ..yamlpos import Located
from .model import schema


def dotted(path: tuple[str | int, ...]) -> str:
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


def schema_problems(located: Located) -> list[Problem]:
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
    # `labels: [1, 2, 3, 4, 5]` is one mistake, not five: say it once, at the list
    numbers = [e for e in errors if e.validator == "type" and len(e.absolute_path) == 2
               and e.absolute_path[0] == "labels" and isinstance(e.instance, (int, float))
               and not isinstance(e.instance, bool)]
    problems: list[Problem] = []
    if len(numbers) > 1:
        quoted = ", ".join(f"'{e.instance}'" for e in numbers[:3]) + (", ..." if len(numbers) > 3 else "")
        problems.append(located.problem(("labels",), f"labels: {len(numbers)} labels are numbers, not text",
                                        hint=f"quote them, labels: [{quoted}]; a `number` extractor reads a "
                                        "number in an answer as the label with its text"))
        errors = [e for e in errors if e not in numbers]
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
    where = dotted(path)
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
        given = [k for k in ("path", "items", "hf") if k in instance]
        if len(given) > 1:
            return [located.problem(path, "dataset: give one of `path:` (a data file), `items:` (inline items) and "
                                    "`hf:` (a Hugging Face dataset), not " + " and ".join(f"`{k}:`" for k in given))]
        if any((path, k) in meant for k in ("path", "items", "hf")):
            return []
        return [located.problem(path, "dataset: missing `path:` (a data file), `items:` (inline items) or `hf:` "
                                "(a Hugging Face dataset)")]
    if kind == "oneOf" and len(path) == 2 and path[0] == "variants" and isinstance(instance, dict):
        given = [k for k in ("prompt", "prompts", "messages") if k in instance]
        if not given:
            if any((path, k) in meant for k in ("prompt", "prompts", "messages")):
                return []
            return [located.problem(path, f"{where}: missing `prompt:` (or `prompts:` for paraphrases, or "
                                    "`messages:` for a conversation)")]
        if len(given) > 1:
            return [located.problem((*path, given[1]), f"{where}: give one of `prompt:`, `prompts:` and "
                                    f"`messages:`, not " + " and ".join(f"`{g}:`" for g in given), key=True)]
        return [located.problem((*path, "system"), f"{where}: with `messages:`, write the system message as its "
                                "first turn (`role: system`)", key=True)]
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
    where = dotted(path)
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


