"""The spec's typed form: the dataclasses a loaded spec becomes, and the defaults they carry."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..address import split_address
from ..embedded import COMPLETION as COMPLETION  # `mode: completion` is what a request carries as {MODE: COMPLETION}
from ..embedded import EMBEDDED_MODEL as EMBEDDED_MODEL  # the spec's default model, re-exported
from ..errors import EvalrunError, Problem, short
from ..extract import extractor_schema
from ..redact import redact_url
from ..yamlpos import Located

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
    mode: str | None = None  # `chat` or `completion` as written in the entry; None: not written (see `mode_of`)

    @property
    def embedded(self) -> bool:
        return is_embedded(self.model)

    @property
    def server(self) -> tuple[str, str | None]:
        """What is asked: the model string and the address it is asked at. A model a reader names by a string
        is one of the run's models when their servers are the same (`asked_model`)."""
        return self.model, self.api_base


CHAT = "chat"


def mode_of(variant: Variant, model: ModelConfig) -> str:
    """How a variant's requests go to a model: `chat` (messages, the model's chat template) or `completion` (raw
    text continued by the model, for a base model). The variant's `mode:` wins over the model entry's, so one
    variant can ask every model the same way; else the model's, so a base model among instruct ones is asked
    as text; else chat.

    A completion's prompt is the variant's user message exactly as rendered (`prompt:` or `prompts:`), with no
    separator or role added: a base model continues the text as written, so a spec writes the text to continue
    (ending it, e.g., with "Answer:"). What has no plain-text form is refused where the spec says completion
    (spec/checks): `system:`, `messages:`, `followup:`, and the logprobs and likelihood readers. A reader that
    asks a model about an answer (a judge) asks by chat, whatever that model's mode."""
    return variant.mode or model.mode or CHAT


MAX_ORDERS = 24  # every order of 4 options; beyond that, rotations measure position bias in n orders, not n!

# a follow-up's answers are read as a variant of their own, named after the variant they follow, which
# `compare:` may name: what the design, the results and the report call it
FOLLOWUP = ".followup"


def followup_variant(variant: str) -> str:
    """The variant a follow-up's answers are read as, compared with the answers they follow."""
    return variant + FOLLOWUP
COUNTERBALANCE = ("none", "rotations", "permutations")

Where = tuple[str | int, ...]  # a place in the spec, for locating a problem


@dataclass(frozen=True)
class Turn:
    """One message of a conversation template; `at` is where its template stands in the spec."""

    role: str  # system, user or assistant
    content: str  # a Jinja2 template
    at: Where


@dataclass(frozen=True)
class Options:
    """Labels listed to the model in the prompt, and the orders to list them in.

    `none` keeps the written order (first-position share is still reported, but cannot be told from
    a preference); `rotations` puts every option in every position once (n orders); `permutations`
    asks every order (n!, at most MAX_ORDERS). `per_item` asks each item only that many of the
    orders, rotating through them from item to item so each order is used equally often.
    """

    labels: tuple[str, ...]
    texts: dict[str, str]  # label -> the words shown for it
    counterbalance: str = "none"
    per_item: int | None = None

    def orders(self) -> list[tuple[str, ...]]:
        n = len(self.labels)
        if self.counterbalance == "rotations":
            return [self.labels[i:] + self.labels[:i] for i in range(n)]
        if self.counterbalance == "permutations":
            return list(itertools.permutations(self.labels))
        return [self.labels]


@dataclass(frozen=True)
class Followup:
    """A question asked after the variant's answer, in the same conversation; `answer` is a template
    variable holding that answer."""

    prompt: Turn
    extract: dict[str, object]
    params: dict[str, object]


@dataclass(frozen=True)
class Variant:
    """One way of asking: its paraphrases (each a conversation of templates), the options it lists,
    how to read its answer, and parameter overrides.

    `prompt:` (with an optional `system:`), `prompts:` (one paraphrase each) and `messages:` (a
    conversation) all become `paraphrases`; a variant written with `prompt:` has exactly one.
    """

    name: str
    paraphrases: tuple[tuple[Turn, ...], ...]
    extract: dict[str, object]
    params: dict[str, object]
    paraphrases_per_item: int | None = None
    options: Options | None = None
    readers: dict[str, dict[str, object]] = field(default_factory=dict)  # more readers beside `extract`
    followup: Followup | None = None
    # `predicts:` names the variant whose item label this variant's item label predicts (Binder et al. 2024's
    # self- and cross-prediction): statistics/prediction.py scores it against that variant's answers
    predicts: str | None = None
    mode: str | None = None  # `chat` or `completion` as written in the variant; None: not written (see `mode_of`)
    labels: tuple[str, ...] | None = None  # its own `labels:`, instead of the spec's

    def readings(self) -> Iterator[tuple[Where, dict[str, object]]]:
        """Every extractor configuration of the variant, with its place in the spec."""
        yield ("variants", self.name, "extract"), self.extract
        for name, config in self.readers.items():
            yield ("variants", self.name, "readers", name), config
        if self.followup is not None:
            yield ("variants", self.name, "followup", "extract"), self.followup.extract

    def templates(self) -> Iterator[Turn]:
        for conversation in self.paraphrases:
            yield from conversation
        if self.followup is not None:
            yield self.followup.prompt


@dataclass(frozen=True)
class Condition:
    """A named context crossed with every variant; its values are template variables."""

    name: str
    values: dict[str, object]


@dataclass(frozen=True)
class Stated:
    """A typed comparison (`compare:` as a mapping): the `stated` variant's answer against the behaviour the
    `behaviour` variant's answers show, item by item. `measure` is what of the behaviour: `changes` (its label
    differs between the conditions) or `first` (it picked the option listed first); the stated label `yes`
    asserts the behaviour, every other one its absence. (`measure: label` is a pair, in `Spec.compare`.)
    `at` is its place in `compare:`."""

    stated: str
    behaviour: str
    measure: str
    yes: str
    at: int


@dataclass(frozen=True)
class HubDataset:
    """`dataset: {hf: ...}`: a Hugging Face dataset, read through the `datasets` library.

    `name` is as written: a hub name (ORG/NAME), or a local folder when it starts with ./, ../ or /; `folder`
    is then that folder, relative to the spec file."""

    name: str
    folder: Path | None
    split: str | None
    revision: str | None
    config: str | None


@dataclass(frozen=True)
class DatasetConfig:
    items: list[dict[str, object]] | None
    path: Path | None
    id: str
    gold: str | None
    hf: HubDataset | None = None


@dataclass
class Spec:
    file: Path
    name: str
    description: str
    dataset: DatasetConfig
    labels: list[str]
    variants: dict[str, Variant]
    compare: list[tuple[str, str]]  # compared label by label
    conditions: dict[str, Condition]
    models: list[ModelConfig]
    samples: int
    params: dict[str, object]
    sha256: str
    located: Located
    warnings: list[Problem] = field(default_factory=list)
    ordinal: bool = False  # the labels are ordered, lowest first, as listed
    slices: list[str] = field(default_factory=list)  # dataset columns the report repeats its figures by
    judge: str | None = None  # the model a reader asks when it names none (MODEL[@ADDRESS] or a model's name)
    stated: list[Stated] = field(default_factory=list)  # typed comparisons of a statement with a behaviour

    def labels_of(self, variant: str) -> list[str]:
        """The labels a variant's answers are read as (a follow-up's: its variant's): its own, else the spec's."""
        base = self.variants.get(variant.removesuffix(FOLLOWUP))
        return list(base.labels) if base is not None and base.labels is not None else self.labels

    def variant_labels(self) -> dict[str, list[str]] | None:
        """Each variant's labels (its follow-up's too) when some variant has its own, else None (the spec's
        labels are every variant's)."""
        if all(v.labels is None for v in self.variants.values()):
            return None
        out = {}
        for name, variant in self.variants.items():
            out[name] = self.labels_of(name)
            if variant.followup is not None:
                out[followup_variant(name)] = self.labels_of(name)
        return out

    def with_overrides(self, models: list[str] | None = None, samples: int | None = None,
                       judge: str | None = None) -> Spec:
        """The same spec with the command line's --model / --samples / --judge applied. A --model that is the
        `name:` of one of the spec's models keeps that entry whole (its address, limits, price and mode), so a
        run can be narrowed to some of the spec's models; any other string is a model of its own."""
        out = replace(self)
        if models:
            named = {m.name: m for m in self.models}
            out.models = [named[m] if m in named else model_from_string(m) for m in models]
        if samples is not None:
            out.samples = samples
        if judge is not None:
            out.judge = judge
        return out


@lru_cache(maxsize=1)
def schema() -> dict[str, object]:
    """The spec schema validation uses: the file, with `$defs/extractor` composed from the extractor registry,
    so a plugin's keys are checked like the built-ins' (the file itself describes the built-ins only)."""
    text = resources.files("evalrun").joinpath("evalspec.schema.json").read_text(encoding="utf-8")
    composed = json.loads(text)
    composed["$defs"]["extractor"] = extractor_schema()
    return composed


def is_embedded(model: str) -> bool:
    """Models of the in-process provider (see the embedded package)."""
    return model.startswith("evalrun/")


def default_concurrency(model: str) -> int:
    # llama.cpp already uses every core for one sequence; parallel requests would only queue on its lock
    return 1 if is_embedded(model) else DEFAULT_CONCURRENCY


def model_from_string(model: str) -> ModelConfig:
    """A model named by a string: a litellm model string, optionally followed by `@` and the base URL of
    its server (`openai/local@http://127.0.0.1:8080/v1`), so that `--model` can name a self-hosted model.
    The address is the model's `api_base`: part of its stored answers' keys and shown in the report,
    which an address given through the environment (OPENAI_API_BASE) would not be.

    Raises EvalrunError for a mistyped address (see `split_address`)."""
    try:
        model, api_base = split_address(model)
    except ValueError as exc:
        raise EvalrunError(f"model '{short(model, 80)}': {exc}") from None
    return ModelConfig(model=model, name=model, api_base=api_base, concurrency=default_concurrency(model))


def asked_model(model: str, models: Sequence[ModelConfig]) -> ModelConfig:
    """The model a reader asks (a judge), named by `model`, among a run's `models`.

    One of `models` by its name, or by its model string and address (the same server): it then shares that
    model's limits, price and row in the totals. Otherwise a model of its own, with default limits and no
    price but litellm's; named, when it has an address, with that address (without credentials), since a run
    looks a model's limits, requests and totals up by its name, and the same model string at another address
    (`openai/x@http://B/v1` judging `openai/x` at A) is another server, not the model it judges.

    Raises EvalrunError for a mistyped address (see `split_address`)."""
    for known in models:
        if known.name == model:
            return known
    config = model_from_string(model)
    for known in models:
        if known.server == config.server:
            return known
    if config.api_base is None:
        return config
    return replace(config, name=f"{config.model}@{redact_url(config.api_base)}")
