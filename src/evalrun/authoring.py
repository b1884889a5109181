"""Writing a new eval: a starting spec and dataset (`evalrun new`), and a preview of the exact requests
a spec would send (`evalrun render`), with no model call and no litellm import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import EvalrunError

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


def render(spec_path: Path | str, items: list[str] | None = None, variants: list[str] | None = None,
           limit: int = 3) -> Iterator[dict[str, object]]:
    """The requests a run would send (first stage), as the provider would get them: job id, model,
    api_base, parameters and messages; for the items and variants asked (default: the first `limit`
    items, every variant). Follow-ups and judges depend on answers, so they are not shown."""
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
    ids = [dataset.item_id(item) for item in dataset.items]
    for wanted in items or []:
        if wanted not in ids:
            raise EvalrunError(f"--item: no item with id '{wanted}' in {dataset.source}")
    chosen = set(items) if items else set(ids[:limit])
    for job in Design(spec, dataset).expand():
        if job.cell.item_id in chosen and (not variants or job.cell.variant in variants):
            yield {"job_id": job.job_id, "model": job.model.model, "api_base": job.model.api_base,
                   "params": job.params, "messages": job.messages}
