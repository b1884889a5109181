"""Expansion of a spec and its dataset into jobs, and the request keys the store relies on."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from evalrun.dataset import Dataset, load_dataset
from evalrun.design import Design
from evalrun.errors import DatasetError
from evalrun.jobs import Job
from evalrun.spec import DEFAULT_SEED, Spec, parse_spec

BASE = """\
name: jobs-test
dataset:
  items:
    - {id: a1, text: first}
    - {id: b2, text: second}
    - {id: c3, text: third}
labels: [pos, neg]
variants:
  plain:
    prompt: "Q {{ text }}"
    extract: {type: choice, choices: {pos: [], neg: []}}
  sys:
    system: "You are terse about {{ text }}."
    prompt: "Again {{ text }}"
    extract: {type: choice, choices: {pos: [], neg: []}}
    params: {max_tokens: 3, temperature: 0.9}
models:
  - model: openai/one
    name: one
    api_base: http://127.0.0.1:9/v1
    params: {temperature: 0.5, top_p: 0.8}
  - model: openai/two
    name: two
samples: 2
params: {temperature: 0.1, max_tokens: 50, top_p: 0.3, seed: 100}
"""


def _load(text: str, tmp_path: Path, name: str = "spec.yaml") -> tuple[Spec, Dataset]:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    spec, problems = parse_spec(text, file)
    assert spec is not None, [p.render() for p in problems]
    return spec, load_dataset(spec)


def _by_id(jobs: list[Job]) -> dict[str, Job]:
    return {job.job_id: job for job in jobs}


def test_expansion_count_and_ids(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    jobs = list(Design(spec, dataset).expand())
    # 3 items x 2 variants x 2 models x 2 samples
    assert len(jobs) == 3 * 2 * 2 * 2 == Design(spec, dataset).count()
    expected_ids = {f"{i}/{v}/{m}/{s}" for i, v, m, s in
                    itertools.product(["a1", "b2", "c3"], ["plain", "sys"], ["one", "two"], [0, 1])}
    assert {job.job_id for job in jobs} == expected_ids
    assert len({job.key for job in jobs}) == len(jobs)  # every request is distinct
    job = _by_id(jobs)["b2/sys/two/1"]
    assert (job.cell.item_id, job.cell.variant, job.model.name, job.cell.sample) == ("b2", "sys", "two", 1)


def test_expansion_is_stable_across_runs(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    first = [(job.job_id, job.key) for job in Design(spec, dataset).expand()]
    spec2, dataset2 = _load(BASE, tmp_path, "again.yaml")  # parsed afresh, from another file
    second = [(job.job_id, job.key) for job in Design(spec2, dataset2).expand()]
    assert first == second


def test_count_with_other_shapes(tmp_path: Path) -> None:
    text = BASE.replace("samples: 2", "samples: 5")
    spec, dataset = _load(text, tmp_path)
    assert len(list(Design(spec, dataset).expand())) == 3 * 2 * 2 * 5
    limited = load_dataset(spec, limit=1)
    assert len(list(Design(spec, limited).expand())) == 1 * 2 * 2 * 5


def test_seed_is_base_seed_plus_sample(tmp_path: Path) -> None:
    spec, dataset = _load(BASE.replace("samples: 2", "samples: 4"), tmp_path)
    for job in Design(spec, dataset).expand():
        assert job.params["seed"] == 100 + job.cell.sample


def test_seed_defaults_and_variant_seed_override(tmp_path: Path) -> None:
    text = BASE.replace(", seed: 100}", "}").replace("params: {max_tokens: 3, temperature: 0.9}",
                                                       "params: {max_tokens: 3, temperature: 0.9, seed: 7}")
    spec, dataset = _load(text, tmp_path)
    for job in Design(spec, dataset).expand():
        base = 7 if job.cell.variant == "sys" else DEFAULT_SEED
        assert job.params["seed"] == base + job.cell.sample


def test_param_precedence_spec_then_model_then_variant(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    jobs = _by_id(list(Design(spec, dataset).expand()))
    # spec only (model two has no params, variant plain has none)
    assert jobs["a1/plain/two/0"].params == {"temperature": 0.1, "max_tokens": 50, "top_p": 0.3, "seed": 100}
    # model one overrides temperature and top_p
    assert jobs["a1/plain/one/0"].params == {"temperature": 0.5, "max_tokens": 50, "top_p": 0.8, "seed": 100}
    # variant sys overrides temperature and max_tokens over both; model one's top_p stays
    assert jobs["a1/sys/one/1"].params == {"temperature": 0.9, "max_tokens": 3, "top_p": 0.8, "seed": 101}
    assert jobs["a1/sys/two/0"].params == {"temperature": 0.9, "max_tokens": 3, "top_p": 0.3, "seed": 100}


def test_system_message_only_when_given(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    jobs = _by_id(list(Design(spec, dataset).expand()))
    assert jobs["c3/plain/one/0"].messages == [{"role": "user", "content": "Q third"}]
    assert jobs["c3/sys/one/0"].messages == [
        {"role": "system", "content": "You are terse about third."},
        {"role": "user", "content": "Again third"},
    ]


def _keys(text: str, tmp_path: Path) -> dict[str, str]:
    spec, dataset = _load(text, tmp_path)
    return {job.job_id: job.key for job in Design(spec, dataset).expand()}


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert before.keys() == after.keys()
    return {job_id for job_id in before if before[job_id] != after[job_id]}


def _all(pattern: str, before: dict[str, str]) -> set[str]:
    parts = pattern.split("/")
    return {job_id for job_id in before
            if all(p == "*" or p == q for p, q in zip(parts, job_id.split("/"), strict=True))}


def test_keys_change_exactly_with_the_prompt(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    after = _keys(BASE.replace('prompt: "Again {{ text }}"', 'prompt: "Once more {{ text }}"'), tmp_path)
    assert _changed(before, after) == _all("*/sys/*/*", before)


def test_keys_change_exactly_with_the_system_message(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    after = _keys(BASE.replace("You are terse", "You are brief"), tmp_path)
    assert _changed(before, after) == _all("*/sys/*/*", before)


def test_keys_change_exactly_with_an_item(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    after = _keys(BASE.replace("{id: b2, text: second}", "{id: b2, text: changed}"), tmp_path)
    assert _changed(before, after) == _all("b2/*/*/*", before)


def test_keys_change_exactly_with_params(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    # a spec parameter that every job sees except where the variant overrides it
    after = _keys(BASE.replace("params: {temperature: 0.1,", "params: {temperature: 0.2,"), tmp_path)
    assert _changed(before, after) == _all("*/plain/two/*", before)
    # a model parameter
    after = _keys(BASE.replace("params: {temperature: 0.5, top_p: 0.8}", "params: {temperature: 0.5, top_p: 0.7}"),
                  tmp_path)
    assert _changed(before, after) == _all("*/*/one/*", before)
    # a variant parameter
    after = _keys(BASE.replace("params: {max_tokens: 3,", "params: {max_tokens: 4,"), tmp_path)
    assert _changed(before, after) == _all("*/sys/*/*", before)
    # the base seed changes every job
    after = _keys(BASE.replace("seed: 100}", "seed: 101}"), tmp_path)
    assert _changed(before, after) == set(before)


def test_keys_change_exactly_with_model_and_api_base(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    after = _keys(BASE.replace("model: openai/two", "model: openai/three"), tmp_path)
    assert _changed(before, after) == _all("*/*/two/*", before)
    after = _keys(BASE.replace("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"), tmp_path)
    assert _changed(before, after) == _all("*/*/one/*", before)


def test_keys_ignore_what_does_not_reach_the_request(tmp_path: Path) -> None:
    before = _keys(BASE, tmp_path)
    # display name, concurrency, timeout, description, extractor, spec name: none changes an answer
    text = (BASE.replace("name: one\n", "name: one\n    concurrency: 2\n    timeout: 5\n")
            .replace("name: jobs-test\n", "name: jobs-test\ndescription: words\n")
            .replace('extract: {type: choice, choices: {pos: [], neg: []}}\n  sys:',
                     'extract: {type: choice, choices: {pos: [y], neg: [n]}}\n  sys:'))
    assert "concurrency: 2" in text and "description: words" in text and "pos: [y]" in text
    assert _keys(text, tmp_path) == before


def test_keys_differ_by_sample_even_without_seed_change(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    jobs = _by_id(list(Design(spec, dataset).expand()))
    assert jobs["a1/plain/one/0"].key != jobs["a1/plain/one/1"].key
    assert jobs["a1/plain/one/0"].messages == jobs["a1/plain/one/1"].messages


def test_keys_same_request_from_another_spec_is_shared(tmp_path: Path) -> None:
    # two specs that send the same request share the stored answer: the key ignores the spec's name
    before = _keys(BASE, tmp_path)
    text = BASE.replace("name: jobs-test", "name: other-test")
    assert text != BASE
    after = _keys(text, tmp_path)
    assert before == after


def test_expand_is_lazy(tmp_path: Path) -> None:
    spec, dataset = _load(BASE, tmp_path)
    pulled = 0

    def many_items() -> Iterator[dict[str, object]]:
        nonlocal pulled
        for n in range(100_000):
            pulled += 1
            yield {"id": f"i{n}", "text": f"t{n}"}

    # expansion reads items only as jobs are taken: 5 jobs need the first item only (it yields 8)
    big = replace(dataset, items=many_items())  # type: ignore[arg-type]
    jobs = Design(spec, big).expand()
    assert inspect.isgenerator(jobs)
    assert pulled == 0
    taken = list(itertools.islice(jobs, 5))
    assert [job.job_id for job in taken] == ["i0/plain/one/0", "i0/plain/one/1", "i0/plain/two/0",
                                             "i0/plain/two/1", "i0/sys/one/0"]
    assert pulled == 1


def test_expand_reports_an_item_that_cannot_render(tmp_path: Path) -> None:
    text = BASE.replace('prompt: "Q {{ text }}"', 'prompt: "Q {{ text.upper() }}"').replace(
        "{id: c3, text: third}", "{id: c3, text: 5}")
    spec, dataset = _load(text, tmp_path)
    jobs = Design(spec, dataset).expand()
    assert next(jobs).messages == [{"role": "user", "content": "Q FIRST"}]
    with pytest.raises(DatasetError) as info:
        list(jobs)
    assert "c3" in str(info.value)


def test_order_is_the_place_in_the_whole_expansion_even_per_model(tmp_path: Path) -> None:
    # the runner expands each model on its own; `order` must still place a job in the interleaved run
    spec, dataset = _load(BASE, tmp_path)
    whole = list(Design(spec, dataset).expand())
    assert [job.position for job in whole] == list(range(len(whole)))
    per_model = {job.job_id: job.position for model in spec.models for job in Design(spec, dataset).expand(only=model)}
    assert per_model == {job.job_id: job.position for job in whole}
