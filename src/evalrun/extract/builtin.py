"""The built-in extractor types, published through the `evalrun.extractors` entry-point group in
pyproject.toml exactly as a plugin publishes its own: each brings its schema fragment, its builder, and
the checks validation runs before building it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..address import split_address
from ..prompts import TemplateProblem, variables
from .base import Config, ConfigProblem, Extractor, ExtractorType, TemplateSpot, outside
from .choice import ChoiceExtractor
from .judge import JudgeExtractor
from .number import NumberExtractor, as_number
from .pattern import RegexExtractor
from .pronouns import DEFAULT_GENDER_WORDS, PronounExtractor
from .templated import is_template

_KEYWORDS = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _choice_spots(config: Config) -> list[TemplateSpot]:
    choices = config.get("choices")
    if not isinstance(choices, Mapping):
        return []
    return [TemplateSpot(("choices", label, i), word) for label, words in choices.items()
            for i, word in enumerate(words) if isinstance(word, str) and is_template(word)]


def _build_choice(config: Config, labels: Sequence[str]) -> Extractor:
    return ChoiceExtractor(config["choices"], str(config.get("mode", "keywords")))  # type: ignore[arg-type]


choice = ExtractorType(
    name="choice",
    schema={
        "required": ["choices"],
        "properties": {
            "choices": {
                "description": "label -> keywords (whole words, case-insensitive). A label's own name always counts "
                               "as a keyword. A keyword may be a template over the item's columns "
                               "(\"{{ correct }}\"), rendered for each item.",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": _KEYWORDS,
            },
            "mode": {
                "description": "keywords (default): the one label whose keywords the answer uses. logprobs: each "
                               "label's probability as the answer's first token, from its top log-probabilities; "
                               "the most probable label wins. likelihood (embedded models only): each label's "
                               "probability as the answer's start, from the whole token sequence of its name and "
                               "keywords after the prompt.",
                "enum": ["keywords", "logprobs", "likelihood"],
            },
        },
    },
    build=_build_choice,
    problems=lambda config, labels: outside(config["choices"], labels, "choices"),  # type: ignore[arg-type]
    templates=_choice_spots,
)


def _regex_spots(config: Config) -> list[TemplateSpot]:
    spots = [TemplateSpot(("pattern",), str(config["pattern"]))] if is_template(str(config["pattern"])) else []
    mapping = config.get("map") or {}
    assert isinstance(mapping, Mapping)
    return spots + [TemplateSpot(("map", raw), raw, key=True) for raw in mapping if is_template(raw)]


def _regex_problems(config: Config, labels: Sequence[str]) -> list[ConfigProblem]:
    mapping = config.get("map") or {}
    assert isinstance(mapping, Mapping)
    problems = [ConfigProblem(f"'{raw}' maps to '{label}', which is not one of the labels", ("map", raw),
                              field=("map",), label=str(label))
                for raw, label in mapping.items() if label not in labels]
    otherwise = config.get("otherwise")
    if otherwise is not None and otherwise not in labels:
        problems.append(ConfigProblem(f"otherwise: '{otherwise}' is not one of the labels", ("otherwise",),
                                      field=("otherwise",), label=str(otherwise)))
    return problems


def _build_regex(config: Config, labels: Sequence[str]) -> Extractor:
    mapping = config.get("map") or {}
    assert isinstance(mapping, Mapping)
    otherwise = config.get("otherwise")
    return RegexExtractor(str(config["pattern"]), str(config.get("group", "label")), mapping, labels,
                          None if otherwise is None else str(otherwise))


regex = ExtractorType(
    name="regex",
    schema={
        "required": ["pattern"],
        "properties": {
            "pattern": {
                "description": "Python regular expression, searched case-insensitively. It may be a template over "
                               "the item's columns; a column's text is inserted literally (escaped).",
                "type": "string",
                "minLength": 1,
            },
            "group": {"description": "Named group holding the answer (default: label).", "type": "string"},
            "map": {
                "description": "Matched text (case-insensitive) -> label. Without it, the matched text must be a "
                               "label. A key may be a template over the item's columns.",
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
            "otherwise": {
                "description": "The label of an answer the pattern does not match anywhere, said on purpose: a "
                               "refusal detector reads every answer without a refusal phrase as `complied`. Without "
                               "it such an answer is unparsed. A match of empty text is unparsed either way.",
                "type": "string",
                "minLength": 1,
            },
        },
    },
    build=_build_regex,
    problems=_regex_problems,
    templates=_regex_spots,
)


def _pronoun_problems(config: Config, labels: Sequence[str]) -> list[ConfigProblem]:
    words = config.get("words")
    if isinstance(words, Mapping):
        return outside(words, labels, "words")
    if set(DEFAULT_GENDER_WORDS) - set(labels):
        return [ConfigProblem("the default pronoun lists need the labels 'female' and 'male'; give `words:` for "
                              "other labels", ("type",))]
    return []


def _build_pronouns(config: Config, labels: Sequence[str]) -> Extractor:
    words = config.get("words", DEFAULT_GENDER_WORDS)
    margin = config.get("margin", 2)
    assert isinstance(words, Mapping) and isinstance(margin, int)
    return PronounExtractor(words, margin)


pronouns = ExtractorType(
    name="pronouns",
    schema={
        "properties": {
            "words": {
                "description": "label -> gendered words counted in the answer. Default: English pronouns and nouns "
                               "for female and male.",
                "type": "object",
                "minProperties": 2,
                "additionalProperties": {"type": "array", "minItems": 1,
                                         "items": {"type": "string", "minLength": 1}},
            },
            "margin": {
                "description": "The winning label needs at least this many more hits than the runner-up (default 2).",
                "type": "integer",
                "minimum": 1,
            },
        },
    },
    build=_build_pronouns,
    problems=_pronoun_problems,
)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _number_problems(config: Config, labels: Sequence[str]) -> list[ConfigProblem]:
    low, high = config.get("min"), config.get("max")
    # YAML's `.nan` is a number to the schema, but no value is above or below it: every answer would be unparsed
    out = [ConfigProblem(f"the {word} is NaN, which no number is above or below", (key,))
           for key, word in (("min", "minimum"), ("max", "maximum")) if _is_nan(config.get(key))]
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        out.append(ConfigProblem(f"the minimum {low:g} is above the maximum {high:g}", ("min",)))
    bins = config.get("bins")
    if not isinstance(bins, Mapping):
        if not any(as_number(label) is not None for label in labels):
            out.append(ConfigProblem("none of the labels is a number, so no number can be read as one; give `bins:` "
                                     "(label: [low, high])", ("type",)))
        return out
    out += outside(bins, labels, "bins")
    out += [ConfigProblem(f"the range of '{label}' has a bound that is NaN, so no number is in it", ("bins", label, i))
            for label, bounds in bins.items() for i, bound in enumerate(bounds) if _is_nan(bound)]
    ranges = [(label, lo, hi) for label, (lo, hi) in bins.items()]
    out += [ConfigProblem(f"the range of '{label}' starts above its end ({lo:g} > {hi:g})", ("bins", label))
            for label, lo, hi in ranges if lo > hi]
    for i, (a, a_lo, a_hi) in enumerate(ranges):
        out += [ConfigProblem(f"the ranges of '{a}' and '{b}' overlap, so a number in both would have two labels",
                              ("bins", b)) for b, b_lo, b_hi in ranges[i + 1:] if a_lo <= b_hi and b_lo <= a_hi]
    return out


def _build_number(config: Config, labels: Sequence[str]) -> Extractor:
    low, high, bins = config.get("min"), config.get("max"), config.get("bins")
    assert low is None or isinstance(low, (int, float))
    assert high is None or isinstance(high, (int, float))
    assert bins is None or isinstance(bins, Mapping)
    return NumberExtractor(labels, low, high, bins)


_BOUND = {"type": "number"}
number = ExtractorType(
    name="number",
    schema={
        "properties": {
            "min": {**_BOUND, "description": "Smallest number accepted; a smaller one is unparsed."},
            "max": {**_BOUND, "description": "Largest number accepted; a larger one is unparsed."},
            "bins": {
                "description": "label -> [low, high], inclusive ranges. Without bins, the labels are numbers "
                               "(\"1\" .. \"7\") and a number reads as the label of the same value.",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": _BOUND},
            },
        },
    },
    build=_build_number,
    problems=_number_problems,
)


_JUDGE_VARIABLES = frozenset({"answer", "labels", "question"})


def _judge_spots(config: Config) -> list[TemplateSpot]:
    spots = [TemplateSpot(("prompt",), str(config["prompt"]), extra=_JUDGE_VARIABLES)] if "prompt" in config else []
    return spots + ([TemplateSpot(("question",), str(config["question"]))] if "question" in config else [])


def _judge_problems(config: Config, labels: Sequence[str]) -> list[ConfigProblem]:
    out = []
    if "model" in config and "judges" in config:
        out.append(ConfigProblem("give `model:` (one judge) or `judges:` (several, voting), not both", ("judges",),
                                 key=True))
    try:
        quoted = "prompt" not in config or "answer" in variables(str(config["prompt"]))
    except TemplateProblem:
        quoted = True  # its syntax error is reported with the other templates'
    if not quoted:
        out.append(ConfigProblem("the judge's prompt never shows it the answer; put {{ answer }} where it goes",
                                 ("prompt",)))
    judges = config.get("judges") or []
    assert isinstance(judges, list)
    named: list[tuple[tuple[str | int, ...], object]] = [(("model",), config["model"])] if "model" in config else []
    for where, model in [*named, *((("judges", i), m) for i, m in enumerate(judges))]:
        try:
            split_address(str(model))
        except ValueError as exc:
            out.append(ConfigProblem(str(exc), where))
    return out


def _build_judge(config: Config, labels: Sequence[str]) -> Extractor:
    # no model named: the run's judge (the spec's `judge:`, or --judge), which stages resolves
    judges = config.get("judges") or ([config["model"]] if "model" in config else [])
    params = config.get("params") or {}
    assert isinstance(judges, list) and isinstance(params, Mapping)
    prompt, question = config.get("prompt"), config.get("question")
    return JudgeExtractor(labels, [str(j) for j in judges], None if prompt is None else str(prompt),
                          None if question is None else str(question), params)


_MODEL = {"type": "string", "minLength": 1}
judge = ExtractorType(
    name="judge",
    schema={
        "properties": {
            "model": {**_MODEL, "description": "The judge: a litellm model string, MODEL[@ADDRESS], or a "
                                         "model's name (default: the run's judge, the spec's `judge:` or --judge)."},
            "judges": {"description": "Several judges (litellm model strings); the label most of them give wins, a "
                                      "tie is unparsed.", "type": "array", "minItems": 2, "items": _MODEL},
            "question": {"description": "What the judge decides, e.g. 'the gender of the story's main character' "
                                        "(a template over the item's columns).", "type": "string", "minLength": 1},
            "prompt": {"description": "The judge's prompt, replacing the default: a template over the item's columns "
                                      "and `answer` (the answer, quoted between markers), `labels` and `question`. "
                                      "It must ask for a final line `LABEL: <label>`.",
                       "type": "string", "minLength": 1},
            "params": {"description": "Parameters of the judge's requests (temperature, max_tokens, ...).",
                       "$ref": "#/$defs/params"},
        },
    },
    build=_build_judge,
    problems=_judge_problems,
    templates=_judge_spots,
)
