"""Writing a new eval: a starting spec and dataset (`evalrun new`), and a preview of the exact requests
a spec would send (`evalrun render`), with no model call and no litellm import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EvalrunError
from .jobs import PRIMARY, Job
from .spec import followup_variant

if TYPE_CHECKING:
    from .design import Design
    from .spec.model import Followup, Spec

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# A direct question and a behaviour that reveals the same thing, over a handful of items: the
# smallest spec that shows every part (dataset, labels, two variants, two readers, gold).
SPEC = """\
# yaml-language-server: $schema={schema}
#
# A starting point: the model says which of two options it would choose (direct), then acts it out
# (revealed). Replace the dataset and prompts with your own; `evalrun validate {file}` checks it,
# `evalrun render {file}` shows the requests, and `evalrun {file}` runs it on the embedded model.
name: {name}
description: Does the option a model says it prefers match the one it picks when it acts?

dataset:
  path: data/{name}.jsonl
  id: id

labels: [a, b]

variants:
  direct:
    prompt: |
      Which would you rather do: (a) {{{{ option_a }}}} or (b) {{{{ option_b }}}}?
      Answer with one letter, a or b.
    extract:
      type: regex
      pattern: '^\\W*\\(?(?P<label>[ab])\\b'
    params: {{max_tokens: 4}}
  revealed:
    prompt: |
      You have a free afternoon and can either {{{{ option_a }}}} or {{{{ option_b }}}}, not both.
      Describe your afternoon in two sentences, then end with "Choice: a" or "Choice: b".
    extract:
      type: regex
      pattern: 'choice:\\s*\\(?(?P<label>[ab])\\b'
    params: {{max_tokens: 80}}

samples: 1
params:
  temperature: 0.7
  seed: 1
"""

ITEMS = [
    ("read a novel", "go for a run"), ("cook a new recipe", "order a pizza"),
    ("visit a museum", "walk in a park"), ("call an old friend", "write a letter"),
    ("learn a song on the guitar", "paint a small picture"), ("tidy the garden", "watch a film"),
]


def new(name: str, folder: Path | str = "evals") -> list[Path]:
    """Write `folder/NAME.yaml` and `folder/data/NAME.jsonl`, refusing to overwrite either."""
    if not NAME.match(name):
        raise EvalrunError(f"'{name}' is not a valid eval name: use letters, digits, '_', '.' and '-', starting "
                           "with a letter or digit (it names the spec, its dataset and its report folder)")
    folder = Path(folder)
    # the folder, or one it would be created in, is a file
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise EvalrunError(f"{blocker}: is a file, not a folder (the spec and its data/ go into {folder})")
    spec, data = folder / f"{name}.yaml", folder / "data" / f"{name}.jsonl"
    for path in (spec, data):
        if path.exists():
            raise EvalrunError(f"{path}: already exists; choose another name or remove it")
    schema = _schema_reference(folder)
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps({"id": f"{name}-{i:02d}", "option_a": a, "option_b": b}) + "\n"
                            for i, (a, b) in enumerate(ITEMS, start=1)), encoding="utf-8")
    spec.write_text(SPEC.format(schema=schema, name=name, file=spec), encoding="utf-8")
    return [spec, data]


def _schema_reference(folder: Path) -> str:
    """The schema for editors: relative to the spec when the project's schemas/ is above it, else the
    copy installed with evalrun."""
    for parent in [folder.resolve(), *folder.resolve().parents]:
        candidate = parent / "schemas" / "evalspec.schema.json"
        if candidate.is_file():
            return Path(*[".."] * len(folder.resolve().relative_to(parent).parts), "schemas",
                        "evalspec.schema.json").as_posix()
    from importlib import resources

    return str(resources.files("evalrun").joinpath("evalspec.schema.json"))


# stands for the first answer in a follow-up's preview: a preview asks no model, so it has none
ANSWER = "<the model's answer>"


def render(spec_path: Path | str, items: list[str] | None = None, variants: list[str] | None = None,
           limit: int = 3) -> Iterator[dict[str, object]]:
    """The requests a run would send, as the provider would get them: job id, model, api_base, parameters and
    messages; for the items and variants asked (default: the first `limit` items, every variant). A variant's
    follow-up comes after its first request, with ANSWER standing for the answer it follows. `readers` gives,
    for each reader whose keywords, pattern or map keys are templates, what they render to for the item.
    Judges read answers, which a preview does not have, so their requests are not shown."""
    from .dataset import load_dataset
    from .design import Design
    from .errors import ProblemsError
    from .spec import check_columns, load_spec

    spec = load_spec(Path(spec_path))
    for name in variants or []:
        if name not in spec.variants:
            raise EvalrunError(f"--variant: no variant named '{name}' (variants: {', '.join(spec.variants)})")
    dataset = load_dataset(spec)
    problems = [p for p in check_columns(spec, dataset.columns) if p.severity == "error"]
    if problems:
        raise ProblemsError(problems)
    index = {dataset.item_id(item): i for i, item in enumerate(dataset.items)}
    for wanted in items or []:
        if wanted not in index:
            raise EvalrunError(f"--item: no item with id '{wanted}' in {dataset.source}")
    chosen = {index[wanted] for wanted in items} if items else set(range(min(limit, len(dataset.items))))
    design = Design(spec, dataset)
    readers = _Readers(spec)
    # only the chosen items are expanded (and rendered), at the levels and ids they have in the whole run
    for job in design.expand(items=chosen):
        if variants and job.cell.variant not in variants:
            continue
        variant = spec.variants[job.cell.variant]
        yield {"job_id": job.job_id, "model": job.model.model, "api_base": job.model.api_base, "params": job.params,
               "messages": job.messages,
               "readers": readers.shown([(at, c) for at, c in variant.readings() if "followup" not in at], job.item)}
        if variant.followup is not None:
            yield _followup(design, job, variant.followup, readers)


def _followup(design: Design, job: Job, followup: Followup, readers: _Readers) -> dict[str, object]:
    """The follow-up request after `job`'s answer, as the second stage sends it (stages.SecondStage), with
    ANSWER for the answer."""
    from .prompts import render as render_template

    condition = design.spec.conditions.get(job.cell.condition or "")
    context = {**job.item, **(condition.values if condition else {}), "answer": ANSWER}
    turn = {"role": "user", "content": render_template(followup.prompt.content, context)}
    at = ("variants", job.cell.variant, "followup", PRIMARY)
    return {"job_id": design.job_id(replace(job.cell, variant=followup_variant(job.cell.variant))),
            "model": job.model.model, "api_base": job.model.api_base,
            "params": {**job.params, **followup.params, "seed": job.params.get("seed")},
            "messages": [*job.messages, {"role": "assistant", "content": ANSWER}, turn],
            "readers": readers.shown([(at, followup.extract)], job.item)}


class _Readers:
    """Each reader of the spec built once, and what its templates render to for an item."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.built: dict[tuple[str | int, ...], object] = {}

    def shown(self, readings: list[tuple[tuple[str | int, ...], dict[str, object]]],
              item: Mapping[str, object]) -> dict[str, str]:
        from .extract import build_extractor

        out = {}
        for at, config in readings:
            if at not in self.built:
                self.built[at] = build_extractor(config, self.spec.labels_of(str(at[1])))
            rendered = getattr(self.built[at], "rendered", None)
            text = rendered(item) if rendered is not None else None
            if text is not None:
                out[".".join(map(str, at[2:]))] = text
        return out
