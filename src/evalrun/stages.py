"""The second stage: requests about the first answers, through the same runner, store and budget.

A follow-up asks the same model, in the same conversation, a question about its answer; its
request is the first request's messages, the answer as the assistant's turn, and the follow-up
prompt (a template with `answer` beside the item's columns and the condition's values). Its cell
is the first one's, in the variant `<variant>.followup`, so everything downstream reads it as
another variant, compared with the first answers.

A judge is a reader that asks a model (Inspect's "a judge is just a scorer calling a model"): one
request per judge per answered first-stage job, read strictly by extract.judge. Both kinds are
generated lazily, a model's stream at a time, from the design and the answers already labelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from .design import Design
from .extract import Reading, build_extractor
from .extract.judge import JudgeExtractor
from .jobs import Job, Reads, request_key
from .prompts import render
from .results import Results
from .spec import ModelConfig, Variant, model_from_string

# a judge reads; it should not improvise (its own params override these)
JUDGE_PARAMS: dict[str, object] = {"temperature": 0.0, "max_tokens": 300, "seed": 0}


@dataclass(frozen=True)
class Judge:
    reader: str
    index: int
    model: ModelConfig
    reads: JudgeExtractor  # the prompt, question and params, as the judge extractor type parsed them
    params: dict[str, object]


class SecondStage:
    """The follow-up and judge requests of a run whose first stage is in `results`."""

    def __init__(self, design: Design, results: Results) -> None:
        self.design = design
        self.results = results
        spec = design.spec
        evaluated = {m.name: m for m in spec.models}
        self.followups = [name for name, v in spec.variants.items() if v.followup is not None]
        self.judges: dict[str, list[Judge]] = {}  # variant -> its judges
        for name, variant in spec.variants.items():
            for reader, config in {"extract": variant.extract, **variant.readers}.items():
                if config.get("type") != "judge":
                    continue
                judge = build_extractor(config, spec.labels)
                assert isinstance(judge, JudgeExtractor)
                for i, model in enumerate(judge.models):
                    self.judges.setdefault(name, []).append(Judge(
                        reader, i, evaluated.get(model) or model_from_string(model), judge,
                        {**JUDGE_PARAMS, **judge.params}))
        judge_models = {j.model.name: j.model for js in self.judges.values() for j in js}
        self.models = [*spec.models, *(m for name, m in judge_models.items() if name not in evaluated)]

    def totals(self) -> dict[str, int]:
        """Jobs per model: one follow-up per answered job of a variant that has one, one request per
        judge per answered job of a variant it reads."""
        out: dict[str, int] = {}
        if self.followups:
            for model in self.design.spec.models:
                out[model.name] = self.results.count_answers(self.followups, model.name)
        for variant, judges in self.judges.items():
            answered = self.results.count_answers([variant])
            for judge in judges:
                out[judge.model.name] = out.get(judge.model.name, 0) + answered
        return {name: n for name, n in out.items() if n}

    def streams(self) -> dict[str, Iterator[Job]]:
        """One lazy stream per model: its follow-ups, then the judge requests it answers."""
        return {m.name: self._stream(m) for m in self.models}

    def _answered(self, variants: list[str]) -> Iterator[tuple[Job, str]]:
        """Every first-stage job of these variants that was answered, with its answer, in expansion order."""
        answers = self.results.answers(variants)
        pending = next(answers, None)
        for job in self.design.expand():
            while pending is not None and pending[0] < job.position:
                pending = next(answers, None)
            if pending is not None and pending[0] == job.position:
                yield job, pending[1]

    def _stream(self, model: ModelConfig) -> Iterator[Job]:
        spec = self.design.spec
        if self.followups and model.name in {m.name for m in spec.models}:
            for job, answer in self._answered(self.followups):
                if job.model.name == model.name:
                    yield self._followup(job, answer)
        judged = [v for v, judges in self.judges.items() if any(j.model.name == model.name for j in judges)]
        if judged:
            for job, answer in self._answered(judged):
                for judge in self.judges[job.cell.variant]:
                    if judge.model.name == model.name:
                        yield self._judge(job, answer, judge)

    def _followup(self, job: Job, answer: str) -> Job:
        variant: Variant = self.design.spec.variants[job.cell.variant]
        assert variant.followup is not None
        condition = self.design.spec.conditions.get(job.cell.condition or "")
        context = {**job.item, **(condition.values if condition else {}), "answer": answer}
        messages = [*job.messages, {"role": "assistant", "content": answer},
                    {"role": "user", "content": render(variant.followup.prompt.content, context)}]
        params = {**job.params, **variant.followup.params, "seed": job.params.get("seed")}
        cell = replace(job.cell, variant=f"{job.cell.variant}.followup")
        return Job(cell=cell, job_id=self.design.job_id(cell), key=request_key(job.model, messages, params,
                                                                                  job.cell.sample),
                   model=job.model, messages=messages, params=params, item=job.item,
                   position=self.design.slots() + job.position)

    def _judge(self, job: Job, answer: str, judge: Judge) -> Job:
        messages = judge.reads.messages(Reading(answer, job.item))
        return Job(cell=job.cell, job_id=f"{job.job_id}/{judge.reader}:{judge.index}",
                   key=request_key(judge.model, messages, judge.params, 0), model=judge.model, messages=messages,
                   params=judge.params, item=job.item, position=job.position,
                   reads=Reads(judge.reader, judge.index, job.position))
