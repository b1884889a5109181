"""Loading a spec: YAML with positions, the JSON Schema, the typed Spec, and every problem at once."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from ..errors import EvalrunError, Problem, SpecError, in_order
from ..yamlpos import MAX_BYTES, Located, load_yaml, too_big
from .checks import semantic_problems
from .model import (
    DEFAULT_TIMEOUT,
    EMBEDDED_MODEL,
    Condition,
    DatasetConfig,
    Followup,
    HubDataset,
    ModelConfig,
    Options,
    Spec,
    Stated,
    Turn,
    Variant,
    default_concurrency,
    model_from_string,
)
from .wording import describe, schema_problems


def parse_spec(text: str, file: Path) -> tuple[Spec | None, list[Problem]]:
    """Parse and check a spec's text. Returns the spec (None when errors block it) and every problem."""
    spec, problems = _parse(text, file)
    return (None if any(p.severity == "error" for p in problems) else spec), problems


def _parse(text: str, file: Path) -> tuple[Spec | None, list[Problem]]:
    """The spec whenever its YAML and schema let it be built, even with other errors, and every problem."""
    located, problems = load_yaml(text, str(file))
    if located is None:
        return None, problems
    if not isinstance(located.data, dict):
        message = f"a spec must be a mapping of keys (name:, dataset:, ...), not {describe(located.data)}"
        return None, in_order([*problems, located.problem((), message)], str(file))
    problems += schema_problems(located)
    if any(p.severity == "error" for p in problems):
        return None, in_order(problems, str(file))
    data = located.data
    spec = _build(data, file, located, hashlib.sha256(text.encode("utf-8", "replace")).hexdigest())
    problems = in_order(problems + semantic_problems(spec), str(file))
    spec.warnings = [p for p in problems if p.severity == "warning"]
    return spec, problems


def _hub(ds: dict, file: Path) -> HubDataset:
    name = str(ds["hf"])
    local = name.startswith(("./", "../", "/"))  # a hub name never does: ORG/NAME or NAME
    return HubDataset(name=name, folder=(file.parent / name) if local else None, split=ds.get("split"),
                      revision=ds.get("revision"), config=ds.get("config"))


def _build(data: dict, file: Path, located: Located, sha: str) -> Spec:
    ds = data["dataset"]
    dataset = DatasetConfig(
        items=ds.get("items"),
        path=(file.parent / ds["path"]) if "path" in ds else None,
        id=ds.get("id", "id"),
        gold=ds.get("gold"),
        hf=_hub(ds, file) if "hf" in ds else None,
    )
    variants = {name: _variant(name, v) for name, v in data["variants"].items()}
    models = []
    for m in data.get("models", [EMBEDDED_MODEL]):
        if isinstance(m, str):
            try:
                models.append(model_from_string(m))
            except EvalrunError:  # a mistyped address: semantic_problems locates it, and it blocks the spec
                models.append(ModelConfig(model=m, name=m))
        else:
            models.append(ModelConfig(
                model=m["model"], name=m.get("name", m["model"]), api_base=m.get("api_base"),
                api_key_env=m.get("api_key_env"),
                concurrency=int(m.get("concurrency", default_concurrency(m["model"]))),
                rpm=m.get("rpm"), tpm=m.get("tpm"), timeout=float(m.get("timeout", DEFAULT_TIMEOUT)),
                price=(float(m["price"]["input"]), float(m["price"]["output"])) if "price" in m else None,
                params=dict(m.get("params", {})), mode=m.get("mode")))
    # without top-level `labels:` (every variant has its own), the spec's labels are all of theirs, in order
    labels = list(data["labels"]) if "labels" in data else list(
        dict.fromkeys(label for v in variants.values() for label in v.labels or ()))
    written = data.get("compare", [])
    stated = [Stated(c["stated"], c["behaviour"], c["measure"], str(c.get("yes", "")), i)
              for i, c in enumerate(written) if isinstance(c, dict) and c["measure"] != "label"]
    compare = [tuple(c) if isinstance(c, list) else (c["stated"], c["behaviour"]) for c in written
               if isinstance(c, list) or c["measure"] == "label"]
    conditions = {name: Condition(name, dict(values)) for name, values in data.get("conditions", {}).items()}
    spec = Spec(file=file, name=data["name"], description=data.get("description", ""), dataset=dataset,
                labels=labels, variants=variants, compare=compare, conditions=conditions, models=models,
                samples=int(data.get("samples", 1)), params=dict(data.get("params", {})), sha256=sha,
                located=located, ordinal=bool(data.get("ordinal", False)), slices=list(data.get("slices", [])),
                judge=data.get("judge"), stated=stated)
    if "compare" not in data:  # every pair whose answers are read as the same labels
        spec.compare = [(a, b) for a, b in itertools.combinations(variants, 2)
                        if set(spec.labels_of(a)) == set(spec.labels_of(b))]
    return spec


def _variant(name: str, v: dict) -> Variant:
    at = ("variants", name)
    if "messages" in v:
        paraphrases = [tuple(Turn(t["role"], t["content"], (*at, "messages", i, "content"))
                             for i, t in enumerate(v["messages"]))]
    else:
        system = [Turn("system", v["system"], (*at, "system"))] if "system" in v else []
        prompts = [(v["prompt"], (*at, "prompt"))] if "prompt" in v else [
            (p, (*at, "prompts", i)) for i, p in enumerate(v["prompts"])]
        paraphrases = [(*system, Turn("user", text, where)) for text, where in prompts]
    options = None
    if "options" in v:
        listed = v["options"]
        texts = dict(listed) if isinstance(listed, dict) else {label: label for label in listed}
        options = Options(labels=tuple(texts), texts=texts, counterbalance=v.get("counterbalance", "none"),
                          per_item=v.get("orders_per_item"))
    followup = None
    if "followup" in v:
        f = v["followup"]
        followup = Followup(Turn("user", f["prompt"], (*at, "followup", "prompt")), _extractor(f["extract"]),
                            dict(f.get("params", {})))
    return Variant(name=name, paraphrases=tuple(paraphrases), extract=_extractor(v["extract"]),
                   params=dict(v.get("params", {})), paraphrases_per_item=v.get("paraphrases_per_item"),
                   options=options, readers={r: _extractor(c) for r, c in v.get("readers", {}).items()},
                   followup=followup, predicts=v.get("predicts"), mode=v.get("mode"),
                   labels=tuple(v["labels"]) if "labels" in v else None)


def _extractor(config: dict) -> dict[str, object]:
    # JSON Schema counts 2.0 as an integer; Python code downstream wants a real int
    return {k: int(x) if k == "margin" else x for k, x in config.items()}


def load_spec(path: Path) -> Spec:
    """Read and check a spec file; raises SpecError listing every problem."""
    spec, problems = read_spec(path)
    if spec is None or any(p.severity == "error" for p in problems):
        raise SpecError(problems)
    return spec


def read_spec(path: Path) -> tuple[Spec | None, list[Problem]]:
    """Every problem of a spec file, and the spec whenever it could be built despite them, so that `validate`
    can still check it against its dataset and report every problem of the file at once. A spec with errors
    must not be run: `load_spec` is the way to a runnable one."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading: a huge file should not even be loaded
            return None, [too_big(file, size)]
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(file, None, None, "no such file")]
    except IsADirectoryError:
        return None, [Problem(file, None, None, "is a directory, not a spec file")]
    except OSError as exc:
        return None, [Problem(file, None, None, f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(file, line, col, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                              "save it as UTF-8")]
    return _parse(text, path)
