"""What a schema cannot say: templates compile, extractor labels exist, compared variants exist,
template variables have a source; with the checks of the modules beside it (`compared`, `literals`, and
`sending`: models' addresses, names and prices, credentials in params, tokens-per-minute limits)."""

from __future__ import annotations

import difflib
import math

from ..errors import Problem
from ..errors import short as _short
from ..extract import (
    AskingExtractor,
    ConfigProblem,
    ExtractorConfigError,
    build_extractor,
    config_problems,
    template_spots,
    wants_logprobs,
)
from ..prompts import TemplateProblem, variable_lines, variables
from .compared import compare_problems, prediction_problems
from .literals import literal_template_problems
from .model import COMPLETION, MAX_ORDERS, Spec, Turn, Variant, is_embedded, mode_of
from .sending import address_problems, credential_problems, model_problems, token_budget_problems
from .wording import dotted as _dotted


def _labels_hint(name: str, labels: list[str]) -> str:
    close = difflib.get_close_matches(name, labels, n=1)
    return f"did you mean '{close[0]}'?" if close else "labels: " + ", ".join(labels)


def _config_problem(spec: Spec, at: tuple[str | int, ...], problem: ConfigProblem) -> Problem:
    """An extractor's own problem, located in the spec: at the key or value it names, or at a line of its
    template."""
    loc = spec.located
    path = (*at, *problem.path)
    named = _dotted((*at, *(problem.path if problem.field is None else problem.field)))
    hint = None if problem.label is None else _labels_hint(problem.label, spec.labels_of(str(at[1])))
    if problem.line is not None and not problem.key:
        line, col = loc.where_in_text(path, problem.line)
        return Problem(loc.file, line, col, f"{named}: {problem.message}", hint)
    return loc.problem(path, f"{named}: {problem.message}", key=problem.key, hint=hint)


def _extractor_template_problems(config: dict[str, object]) -> list[ConfigProblem]:
    """Syntax errors in an extractor's templates (keywords, patterns, map keys, a judge's prompt)."""
    out = []
    for spot in template_spots(config):
        try:
            variables(spot.source)
        except TemplateProblem as exc:
            out.append(ConfigProblem(str(exc), spot.path, key=spot.key, line=exc.lineno))
    return out


def _extractor_problems(spec: Spec, at: tuple[str | int, ...], config: dict[str, object]) -> list[Problem]:
    """One extractor's problems: every one its type finds (labels outside the set, broken templates, ...),
    else the first its builder refuses, else the labels it can never give. It reads with its variant's labels."""
    labels = spec.labels_of(str(at[1]))
    found = _extractor_template_problems(config) + config_problems(config, labels)
    if found:
        return [_config_problem(spec, at, p) for p in found]
    try:
        extractor = build_extractor(config, labels)
    except ExtractorConfigError as exc:
        return [_config_problem(spec, at, exc.problem)]
    if "followup" in at and isinstance(extractor, AskingExtractor):  # its requests would need a third round
        return [spec.located.problem((*at, "type"), f"{_dotted(at)}: a follow-up's answer cannot be read by a "
                                     "reader that asks a model", hint="read it with a reader that reads the text "
                                     "(choice, regex, number, ...), or ask the question as a variant of its own")]
    never = [label for label in labels if label not in extractor.can_produce()]
    if never:
        return [spec.located.problem(at, f"{_dotted(at)} can never produce " + ", ".join(f"'{n}'" for n in never),
                                     hint="those labels will have no answers; give the extractor a way to "
                                     "produce them, or drop them from `labels:`", severity="warning")]
    return []


def _likelihood_problems(spec: Spec, at: tuple[str | int, ...], config: dict[str, object]) -> list[Problem]:
    """`mode: likelihood` scores the labels' texts with the model's own logits, which only the embedded model
    (run in-process) gives: a remote model's requests would come back without the likelihoods."""
    if config.get("type") != "choice" or config.get("mode") != "likelihood":
        return []
    remote = [m.model for m in spec.models if not is_embedded(m.model)]
    if not remote:
        return []
    where = (*at, "mode")
    return [spec.located.problem(where, f"{_dotted(where)}: likelihood needs an embedded model, and "
                                 f"'{_short(remote[0])}' is not one", hint="run this variant on evalrun/smollm2 or "
                                 "evalrun/<file>.gguf, or read the first token with `mode: logprobs`")]


def _completion_problems(spec: Spec, variant: Variant) -> list[Problem]:
    """A completion sends the variant's prompt as raw text (see spec.model.mode_of): what has no plain-text form,
    or reads what a completion does not return, is refused where the variant says it."""
    asked = [i for i, model in enumerate(spec.models) if mode_of(variant, model) == COMPLETION]
    if not asked:
        return []
    at = ("variants", variant.name)
    why = (f"{_dotted(at)} is asked in `mode: completion`" if variant.mode == COMPLETION else
           f"models.{asked[0]} is asked in `mode: completion`")
    data = spec.located.data["variants"][variant.name]
    out = [spec.located.problem((*at, key), f"{_dotted((*at, key))}: {what}, and {why} (its prompt sent as raw "
                                "text)", key=True, hint="write the whole text in `prompt:`, or give this variant "
                                "`mode: chat`")
           for key, what in (("system", "a completion has no system message"),
                             ("messages", "a completion has no conversation"),
                             ("followup", "a completion has no conversation to follow up"))
           if key in data]
    for where, config in variant.readings():
        if "followup" in where:
            continue
        try:
            logprobs = wants_logprobs(build_extractor(config, spec.labels_of(variant.name)))
        except ExtractorConfigError:  # reported by _extractor_problems
            continue
        if logprobs:
            place = (*where, "mode") if "mode" in config else where
            out.append(spec.located.problem(place, f"{_dotted(place)}: reads token log-probabilities, which evalrun "
                                            f"asks for in chat only, and {why}",
                                            hint="read the answer's text: `type: choice` without `mode:`, for one"))
    return out


def _template_problems(spec: Spec, turn: Turn) -> list[Problem]:
    try:
        variables(turn.content)
    except TemplateProblem as exc:
        line, col = spec.located.where_in_text(turn.at, exc.lineno)
        return [Problem(spec.located.file, line, col, f"{_dotted(turn.at)}: {exc}")]
    return []


def _conversation_problems(spec: Spec, variant: Variant) -> list[Problem]:
    loc = spec.located
    at = ("variants", variant.name, "messages")
    turns = variant.paraphrases[0]
    out = []
    if not any(t.role == "user" for t in turns):
        out.append(loc.problem(at, f"{_dotted(at)}: the conversation has no user turn",
                               hint="add a turn with `role: user`; a model is asked to answer the user"))
    out += [loc.problem(t.at[:-1], f"{_dotted(t.at[:-1])}: a system turn after the first turn",
                        hint="put the system message first")
            for t in turns[1:] if t.role == "system"]
    return out


def _option_problems(spec: Spec, variant: Variant) -> list[Problem]:
    loc = spec.located
    at = ("variants", variant.name)
    data = loc.data["variants"][variant.name]
    options = variant.options
    out = []
    if options is None:
        out += [loc.problem((*at, key), f"{_dotted((*at, key))}: needs `options:` (the labels listed in the prompt)",
                            key=True) for key in ("counterbalance", "orders_per_item") if key in data]
        return out
    listed, labels = data["options"], spec.labels_of(variant.name)
    for i, label in enumerate(options.labels):
        if label not in labels:
            where = (*at, "options", label) if isinstance(listed, dict) else (*at, "options", i)
            out.append(loc.problem(where, f"{_dotted((*at, 'options'))}: '{_short(label)}' is not one of the labels",
                                   key=isinstance(listed, dict), hint=_labels_hint(label, labels)))
    missing = [label for label in labels if label not in options.labels]
    if missing and not out:
        out.append(loc.problem((*at, "options"), f"{_dotted((*at, 'options'))} does not list "
                               + ", ".join(f"'{m}'" for m in missing), severity="warning",
                               hint="the model is never offered those labels; position bias is measured over the "
                               "options listed"))
    if options.counterbalance == "permutations" and math.factorial(len(options.labels)) > MAX_ORDERS:
        out.append(loc.problem((*at, "counterbalance"), f"{_dotted((*at, 'counterbalance'))}: "
                               f"{len(options.labels)} options have {math.factorial(len(options.labels)):,} orders, "
                               f"more than {MAX_ORDERS}", hint="use `counterbalance: rotations` (each option in each "
                               "position once), or `orders_per_item`"))
    elif options.per_item is not None and options.per_item > len(options.orders()):
        out.append(loc.problem((*at, "orders_per_item"), f"{_dotted((*at, 'orders_per_item'))}: "
                               f"{options.per_item} is more than the {len(options.orders())} order(s) there are"))
    return out


def _paraphrase_problems(spec: Spec, variant: Variant) -> list[Problem]:
    at = ("variants", variant.name, "paraphrases_per_item")
    if variant.paraphrases_per_item is not None and variant.paraphrases_per_item > len(variant.paraphrases):
        return [spec.located.problem(at, f"{_dotted(at)}: {variant.paraphrases_per_item} is more than the "
                                     f"{len(variant.paraphrases)} paraphrase(s) there are")]
    return []


def semantic_problems(spec: Spec) -> list[Problem]:
    loc = spec.located
    problems: list[Problem] = []
    for name, variant in spec.variants.items():
        for turn in variant.templates():
            problems += _template_problems(spec, turn)
        if "messages" in loc.data["variants"][name]:
            problems += _conversation_problems(spec, variant)
        problems += (_option_problems(spec, variant) + _paraphrase_problems(spec, variant)
                     + _completion_problems(spec, variant))
        for at, config in variant.readings():
            problems += _extractor_problems(spec, at, config) + _likelihood_problems(spec, at, config)
    problems += compare_problems(spec)
    problems += prediction_problems(spec)
    if spec.dataset.gold is not None and spec.dataset.gold == spec.dataset.id:
        problems.append(loc.problem(("dataset", "gold"), "dataset.gold: the gold column cannot be the id column"))
    problems += _hub_problems(spec)
    problems += address_problems(spec) + model_problems(spec) + credential_problems(spec)
    problems += literal_template_problems(spec)
    return problems + token_budget_problems(spec)


def _hub_problems(spec: Spec) -> list[Problem]:
    """`split:`, `revision:` and `config:` belong to `hf:`; a local folder has no revisions or configurations."""
    loc, hub = spec.located, spec.dataset.hf
    data = loc.data.get("dataset") if isinstance(loc.data, dict) else None
    written = [k for k in ("split", "revision", "config") if isinstance(data, dict) and k in data]
    if hub is None:
        return [loc.problem(("dataset", k), f"dataset.{k}: only with `hf:` (a Hugging Face dataset)", key=True)
                for k in written]
    if hub.folder is None:
        return []
    return [loc.problem(("dataset", k), f"dataset.{k}: a local folder has no {k}s; only a hub dataset does",
                        key=True, hint="give the hub name, ORG/NAME, or leave it out")
            for k in ("revision", "config") if k in written]


def check_columns(spec: Spec, columns: list[str]) -> list[Problem]:
    """Template variables that neither a dataset column, nor every condition, nor the variant's options
    provide; condition variables that would hide a column; variants whose requests would not depend on
    the item (static, before any request)."""
    loc = spec.located
    problems = []
    conditions = spec.conditions.values()
    set_by_all = set.intersection(*(set(c.values) for c in conditions)) if conditions else set()
    for condition in conditions:
        for var in condition.values:
            if var in columns or (var == "options" and any(v.options for v in spec.variants.values())):
                what = "a dataset column" if var in columns else "the variants' option list"
                problems.append(loc.problem(("conditions", condition.name, var), f"conditions.{condition.name}: "
                                            f"'{var}' is also {what}, which it would hide", key=True,
                                            hint="rename the condition's variable"))
    for i, column in enumerate(spec.slices):
        if column not in columns:
            close = difflib.get_close_matches(column, columns, n=1)
            problems.append(loc.problem(("slices", i), f"slices.{i}: '{column}' is not a dataset column",
                                        hint=f"did you mean '{close[0]}'?" if close else
                                        "columns: " + (", ".join(columns) or "none")))
    for name, variant in spec.variants.items():
        provided = set(columns) | set_by_all | ({"options"} if variant.options else set())
        uses_column = False
        for turn in variant.templates():
            try:
                lines = variable_lines(turn.content)
            except TemplateProblem:  # already reported by parse_spec; what it reads is unknown
                uses_column = True
                continue
            uses_column = uses_column or bool(set(lines) & set(columns))
            followup = variant.followup is not None and turn is variant.followup.prompt
            for var in sorted(set(lines) - provided - ({"answer"} if followup else set())):
                line, col = loc.where_in_text(turn.at, lines[var])
                lacking = [c.name for c in conditions if var not in c.values]
                if len(lacking) < len(spec.conditions):
                    problems.append(Problem(loc.file, line, col, f"{_dotted(turn.at)} uses '{var}', which condition "
                                            + ", ".join(f"'{c}'" for c in lacking) + " does not set",
                                            "give every condition a value for it"))
                    continue
                sources = columns + sorted({v for c in conditions for v in c.values})
                close = difflib.get_close_matches(var, sources, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "columns: " + (", ".join(columns) or "none")
                source = "dataset column or condition" if spec.conditions else "dataset column"
                if var == "options":
                    hint = "list the labels in `options:` to render them in each order"
                problems.append(Problem(loc.file, line, col, f"{_dotted(turn.at)} uses '{var}', which no {source} "
                                        "provides", hint))
        for at, config in variant.readings():
            problems += _extractor_column_problems(spec, at, config, columns)
        if not uses_column:
            problems.append(loc.problem(("variants", name), f"variants.{name}: no template uses a dataset column, so "
                                        "every item sends the same request and gets the same stored answer",
                                        severity="warning", key=True,
                                        hint="use the item's columns in the prompt, e.g. {{ " +
                                        next((c for c in columns if c != spec.dataset.id), "text") + " }}"))
    return problems


def _extractor_column_problems(spec: Spec, at: tuple[str | int, ...], config: dict[str, object],
                               columns: list[str]) -> list[Problem]:
    """Variables of an extractor's templates that are not dataset columns: a reader renders over the item
    alone (no condition or option list), so a misspelt column would make every answer unparsed."""
    loc = spec.located
    problems = []
    for spot in template_spots(config):
        try:
            lines = variable_lines(spot.source)
        except TemplateProblem:
            continue  # already reported by parse_spec
        path = (*at, *spot.path)
        for var in sorted(set(lines) - set(columns) - spot.extra):
            line, col = loc.where(path, key=True) if spot.key else loc.where_in_text(path, lines[var])
            close = difflib.get_close_matches(var, columns, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "columns: " + (", ".join(columns) or "none")
            where = f"{_dotted(path[:-1])} key '{_short(spot.source)}'" if spot.key else _dotted(path)
            problems.append(Problem(loc.file, line, col, f"{where} uses '{var}', which no dataset column provides",
                                    hint))
    return problems
