"""Extractors: from an answer (its text, its item, its token log-probabilities) to one label of the spec's
closed set, or unparsed with a reason.

    base        Reading, Extraction, the Extractor protocol, ExtractorType (what a plugin publishes), and
                AskingExtractor with its Request (a reader that asks models about the answer, as the judge does)
    registry    the types found through the `evalrun.extractors` entry points; build_extractor
    builtin     the built-in types (choice, regex, pronouns, number, judge), registered like plugins
    choice, pattern, pronouns, number, judge    the built-in extractors
    templated   keywords, patterns and map keys that are templates over the item's columns
"""

from .base import (
    UNPARSED,
    AskingExtractor,
    ConfigProblem,
    Extraction,
    Extractor,
    ExtractorConfigError,
    ExtractorType,
    Reading,
    Request,
    TemplateSpot,
    wants_logprobs,
)
from .choice import NO_LOGPROBS, ChoiceExtractor
from .judge import DEFAULT_JUDGE_PROMPT, JudgeExtractor, judge_messages, parse_verdict, vote
from .number import NumberExtractor
from .pattern import RegexExtractor
from .pronouns import DEFAULT_GENDER_WORDS, PronounExtractor
from .registry import (
    GROUP,
    build_extractor,
    config_problems,
    extractor_schema,
    extractor_type,
    extractor_types,
    template_spots,
)

__all__ = ["DEFAULT_GENDER_WORDS", "DEFAULT_JUDGE_PROMPT", "GROUP", "NO_LOGPROBS", "UNPARSED", "AskingExtractor",
           "ChoiceExtractor", "ConfigProblem", "Extraction", "Extractor", "ExtractorConfigError", "ExtractorType",
           "JudgeExtractor", "NumberExtractor", "PronounExtractor", "Reading", "RegexExtractor", "Request",
           "TemplateSpot", "build_extractor", "config_problems", "extractor_schema", "extractor_type",
           "extractor_types", "judge_messages", "parse_verdict", "template_spots", "vote", "wants_logprobs"]
