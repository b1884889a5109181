"""The second stage: requests about the first answers, through the same runner, store and budget.

A follow-up asks the same model, in the same conversation, a question about its answer; its
request is the first request's messages, the answer as the assistant's turn, and the follow-up
prompt (a template with `answer` beside the item's columns and the condition's values). Its cell
is the first one's, in the variant `followup_variant(variant)`, so everything downstream reads it as
another variant, compared with the first answers.

An asking reader (extract.AskingExtractor: the built-in judge, or any plugin's) reads an answer by
asking models about it (Inspect's "a judge is just a scorer calling a model"): one request per model
it asks per answered first-stage job, made by the reader itself and read by it (results.Results).
Both kinds are generated lazily, a model's stream at a time, from the design and the answers already
labelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from .design import Design
from .embedded import EMBEDDED_MODEL
from .errors import EvalrunError
from .extract import AskingExtractor, Reading, build_extractor
from .jobs import PRIMARY, Job, Reads, request_key
from .prompts import render
from .results import Results
from .spec import ModelConfig, Spec, Variant, followup_variant
from .spec.model import asked_model


@dataclass(frozen=True)
class Asked:
    """One model an asking reader asks: `reads.models[index]` (or the run's judge), as `model`."""

    reader: str
    index: int
    model: ModelConfig
    reads: AskingExtractor


def run_judge(spec: Spec, reader: str) -> str:
    """The model a reader that names none asks: the spec's `judge:` (or --judge); the embedded model when the run
    loads it anyway (one of its models); otherwise none, refused: loading it unasked would cost minutes and read
    a remote model's answers with a far weaker one."""
    if spec.judge:
        return spec.judge
    if any(m.embedded for m in spec.models):
        return EMBEDDED_MODEL
    raise EvalrunError(f"the reader '{reader}' names no model to ask and the run's models are not embedded: "
                       "name one with `judge:` in the spec or --judge MODEL[@ADDRESS]")


class SecondStage:
    """The follow-up and asking readers' requests of a run, made from the first stage's `results`.

    Built before the first stage, so a reader that cannot be asked is refused before any request is paid for.
    """

    def __init__(self, design: Design) -> None:
        self.design = design
        spec = design.spec
        evaluated = {m.name: m for m in spec.models}
        self.followups = [name for name, v in spec.variants.items() if v.followup is not None]
        self.asked: dict[str, list[Asked]] = {}  # variant -> whom its asking readers ask
        for name, variant in spec.variants.items():
            for reader, config in {PRIMARY: variant.extract, **variant.readers}.items():
                reads = build_extractor(config, spec.labels_of(name))
                if not isinstance(reads, AskingExtractor):
                    continue
                for i, model in enumerate(reads.models or [run_judge(spec, f"{name}.{reader}")]):
                    self.asked.setdefault(name, []).append(
                        Asked(reader, i, asked_model(model, spec.models), reads))
        readers = {a.model.name: a.model for asked in self.asked.values() for a in asked}
        self.readers = list(readers.values())  # every model a reader asks, in the order first named
        self.models = [*spec.models, *(m for name, m in readers.items() if name not in evaluated)]

    def totals(self, results: Results) -> dict[str, int]:
        """Jobs per model: one follow-up per answered job of a variant that has one, one request per model
        a reader asks per answered job of the reader's variant."""
        out: dict[str, int] = {}
        if self.followups:
            for model in self.design.spec.models:
                out[model.name] = results.count_answers(self.followups, model.name)
        for variant, asked in self.asked.items():
            answered = results.count_answers([variant])
            for one in asked:
                out[one.model.name] = out.get(one.model.name, 0) + answered
        return {name: n for name, n in out.items() if n}

    def streams(self, results: Results) -> dict[str, Iterator[Job]]:
        """One lazy stream per model: its follow-ups, then the readers' requests it answers."""
        return {m.name: self._stream(m, results) for m in self.models}

    def _answered(self, results: Results, variants: list[str]) -> Iterator[tuple[Job, str]]:
        """Every first-stage job of these variants that was answered, with its answer, in expansion order."""
        answers = results.answers(variants)
        pending = next(answers, None)
        for job in self.design.expand():
            while pending is not None and pending[0] < job.position:
                pending = next(answers, None)
            if pending is not None and pending[0] == job.position:
                yield job, pending[1]

    def _stream(self, model: ModelConfig, results: Results) -> Iterator[Job]:
        spec = self.design.spec
        if self.followups and model.name in {m.name for m in spec.models}:
            for job, answer in self._answered(results, self.followups):
                if job.model.name == model.name:
                    yield self._followup(job, answer)
        read = [v for v, asked in self.asked.items() if any(a.model.name == model.name for a in asked)]
        if read:
            for job, answer in self._answered(results, read):
                for asked in self.asked[job.cell.variant]:
                    if asked.model.name == model.name:
                        yield self._ask(job, answer, asked)

    def _followup(self, job: Job, answer: str) -> Job:
        variant: Variant = self.design.spec.variants[job.cell.variant]
        assert variant.followup is not None
        condition = self.design.spec.conditions.get(job.cell.condition or "")
        context = {**job.item, **(condition.values if condition else {}), "answer": answer}
        messages = [*job.messages, {"role": "assistant", "content": answer},
                    {"role": "user", "content": render(variant.followup.prompt.content, context)}]
        params = {**job.params, **variant.followup.params, "seed": job.params.get("seed")}
        cell = replace(job.cell, variant=followup_variant(job.cell.variant))
        return Job(cell=cell, job_id=self.design.job_id(cell), key=request_key(job.model, messages, params,
                                                                                  job.cell.sample),
                   model=job.model, messages=messages, params=params, item=job.item,
                   position=self.design.slots() + job.position)

    def _ask(self, job: Job, answer: str, asked: Asked) -> Job:
        request = asked.reads.request(Reading(answer, job.item), asked.index)
        params = dict(request.params)
        return Job(cell=job.cell, job_id=f"{job.job_id}/{asked.reader}:{asked.index}",
                   key=request_key(asked.model, request.messages, params, 0), model=asked.model,
                   messages=request.messages, params=params, item=job.item, position=job.position,
                   reads=Reads(asked.reader, asked.index, job.position))
