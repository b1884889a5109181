"""The axes as data: the shipped specs expand as release 0.2 expanded them, and an axis registered
here alone shows in job ids, prompts, positions, results columns and the design's description, and after
a run in results.parquet, summary.json's statistics and report.md."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from jsonschema import Draft202012Validator

from evalrun.api import run
from evalrun.dataset import load_dataset
from evalrun.design import Axis, Design, register, unregister
from evalrun.design.axes import Level, Point, registered
from evalrun.jobs import Job
from evalrun.reporting.compare import compare_runs
from evalrun.results import Results, columns
from evalrun.runner import Outcome
from evalrun.spec import Spec, load_spec, parse_spec
from evalrun.stats.grouping import Grouping
from evalrun.store import StoredResponse

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

ROOT = Path(__file__).resolve().parent.parent
EVALS = ROOT / "evals"

# (jobs, sha256 of "position job_id key" per job, first 32 hex digits), from release 0.2's design.py (main at
# 01ec545) before the axes became data. A spec edited on purpose changes its keys: recompute its pin then.
RELEASE_02 = {
    "gender.yaml": (240, "6000b1eea6c381e9ca992b9a9b5c70f2"),
    "gender_fewshot.yaml": (144, "40b7eb381041f6a36494396e825295af"),
    "gender_observed.yaml": (288, "fa1e0a951a431f9521bc06ea9e49e736"),
    "observed.yaml": (176, "7bbdb9d711aae65f79707e5cf42b05ea"),
    "pattern_awareness.yaml": (176, "89ec942003dc3f1a17c6fd8e6142c81b"),
    "persona.yaml": (352, "7015ea930eb50d18414f6448376270bc"),
    "preferences.yaml": (132, "68fa90ee14064ded11d6858df7adc2f7"),
    "risk.yaml": (176, "1b9b077b870d460358cde22c7250c144"),
    "self_prediction.yaml": (96, "83e811632f8694440e5a0bae37e90ef7"),
}
# Specs shipped after release 0.2, pinned when they were added (base_vs_instruct: `mode: completion`, two
# models; the other three: per-variant labels and typed comparisons), so that a change to the design code
# that moves their jobs' ids, positions or keys (and with them every stored answer) is seen here too.
ADDED_SINCE = {
    "base_vs_instruct.yaml": (160, "298899a7834b7747b31fb87fa7175dca"),
    "position_bias.yaml": (120, "27626909f444a45a3ee59ad9a4229816"),
    "sycophancy.yaml": (160, "a4d77678b3c9ac1ded2123bbddc6d98a"),
    "tier_compliance.yaml": (160, "6fb00ed69c7196ef50d3cf74477a5013"),
}


def _pin(jobs: Iterable[Job]) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for job in jobs:
        h.update(f"{job.position} {job.job_id} {job.key}\n".encode())
        n += 1
    return n, h.hexdigest()[:32]


def _design(name: str) -> Design:
    spec = load_spec(EVALS / name)
    return Design(spec, load_dataset(spec))


@pytest.mark.parametrize("name", sorted(RELEASE_02))
def test_every_shipped_spec_has_release_02s_job_ids_positions_and_keys(name: str) -> None:
    assert _pin(_design(name).expand()) == RELEASE_02[name]


@pytest.mark.parametrize("name", sorted(ADDED_SINCE))
def test_specs_added_since_keep_their_job_ids_positions_and_keys(name: str) -> None:
    assert _pin(_design(name).expand()) == ADDED_SINCE[name]


def test_every_shipped_spec_is_pinned() -> None:
    assert sorted(p.name for p in EVALS.glob("*.yaml")) == sorted({**RELEASE_02, **ADDED_SINCE})


class Tone(Axis):
    """An axis a plugin might add: each item asked in a formal and a casual tone, where a prompt asks for one."""

    def used(self, spec: Spec) -> bool:
        return any("tone" in turn.content for v in spec.variants.values() for p in v.paraphrases for turn in p)

    def size(self, design: Design) -> int:
        return 2

    def levels(self, design: Design, at: Point) -> Iterable[Level]:
        return enumerate(("formal", "casual"))

    def context(self, level: object, at: Point) -> Mapping[str, object]:
        return {"tone": level}

    def describe(self, design: Design) -> dict[str, object]:
        return {"tones": ["formal", "casual"]}


TONED = """\
name: toned
dataset:
  items:
    - {id: a1, text: first}
    - {id: b2, text: second}
labels: [pos, neg]
variants:
  ask:
    prompt: "In a {{ tone }} tone: {{ text }}"
    extract: {type: choice, choices: {pos: [], neg: []}}
  say:
    prompt: "{{ text }}, said in a {{ tone }} tone"
    extract: {type: choice, choices: {pos: [], neg: []}}
models: [{model: openai/one, name: one}]
samples: 2
"""


def _registered(axis: Axis) -> Iterator[Axis]:
    register(axis, before="model")
    try:
        yield axis
    finally:
        unregister(axis.name)


@pytest.fixture
def tone() -> Iterator[Axis]:
    yield from _registered(Tone("tone", {"tone": pl.String}, optional=True))


@pytest.fixture
def crossed_tone() -> Iterator[Axis]:
    """The tone crossed with the variants (like the conditions): every figure per tone, the tones compared."""
    yield from _registered(Tone("tone", {"tone": pl.String}, optional=True, crossed=True))


def _outcome(job: Job) -> Outcome:
    return Outcome(job, StoredResponse(
        key=job.key, model=job.model.model, api_base=None, request="{}", status="ok", text="pos",
        finish_reason="stop", prompt_tokens=1, completion_tokens=1, cost=None, latency=0.01, attempts=1,
        error_class=None, error_message=None, created_at=time.time()), cached=False)


def test_a_registered_axis_is_in_ids_prompts_positions_columns_and_description(tone: Axis, tmp_path: Path) -> None:
    file = tmp_path / "toned.yaml"
    file.write_text(TONED, encoding="utf-8")
    spec, problems = parse_spec(TONED, file)
    assert spec is not None, [p.render() for p in problems]
    dataset = load_dataset(spec)
    design = Design(spec, dataset)
    jobs = list(design.expand())
    # item, variant, then the tone (registered before the model), model and sample
    assert [job.job_id for job in jobs] == [f"{i}/{v}/{t}/one/{s}" for i in ("a1", "b2") for v in ("ask", "say")
                                            for t in ("formal", "casual") for s in (0, 1)]
    assert [job.position for job in jobs] == list(range(16)) and design.slots() == 16 and design.count() == 16
    assert jobs[2].messages == [{"role": "user", "content": "In a casual tone: first"}]
    assert jobs[4].messages == [{"role": "user", "content": "first, said in a formal tone"}]
    assert jobs[2].cell.level("tone") == "casual" and jobs[2].cell.columns()["tone"] == "casual"
    assert len({job.key for job in jobs}) == 16
    assert design.describe() == {"axes": ["tone"], "tones": ["formal", "casual"]}
    assert [a.name for a in design.axes] == ["item_id", "variant", "tone", "model", "sample"]
    assert list(columns())[-1] == "tone"  # no `after`: at the end of results.parquet

    with Results(spec, dataset, scratch_parent=tmp_path / "scratch") as results:
        for job in reversed(jobs):
            results.add(_outcome(job))
        results.write_parquet(tmp_path / "results.parquet")
    frame = pl.read_parquet(tmp_path / "results.parquet")
    assert frame["tone"].to_list() == ["formal", "formal", "casual", "casual"] * 4
    assert frame["job_id"].to_list() == [job.job_id for job in jobs]


def test_a_registered_axis_leaves_specs_that_do_not_use_it_as_they_were(tone: Axis) -> None:
    design = _design("gender.yaml")
    assert tone not in design.axes
    assert _pin(design.expand()) == RELEASE_02["gender.yaml"]
    assert "tone" not in design.describe()["axes"]  # type: ignore[operator]


def test_an_added_axis_must_be_optional_and_may_not_displace_the_item() -> None:
    with pytest.raises(ValueError, match="optional"):
        register(Tone("tone", {"tone": pl.String}))
    with pytest.raises(ValueError, match="outermost"):
        register(Tone("tone", {"tone": pl.String}, optional=True), before="item_id")
    with pytest.raises(ValueError, match="before model and sample"):
        register(Tone("tone", {"tone": pl.String}, optional=True), before="sample")
    with pytest.raises(ValueError, match="built in"):
        unregister("variant")


def test_describe_is_what_summary_json_records_and_json_ready() -> None:
    described = _design("persona.yaml").describe()
    assert described["axes"] == ["condition", "option_order"]
    assert json.loads(json.dumps(described)) == described


def _by_tone(body: dict[str, Any]) -> str:
    """`one` answers by the tone it was asked in, `two` always the same: only a breakdown by tone shows it."""
    text = body["messages"][-1]["content"]
    return "alpha" if "formal" in text or text.startswith("TWO") else "beta"


def _toned_run(tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]
               ) -> tuple[Path, dict[str, Any]]:
    """A run of two variants, `one` asked in a tone; its folder and its summary, checked against the schema."""
    server = loopback(default_reply=_by_tone)
    # the spec check knows the dataset's columns and the conditions' values, not what an added axis gives the
    # templates: a `tone` column lets it pass, and the axis's level takes its place in the prompt
    spec = write_spec(tmp_path, variants={"one": "ONE in a {{ tone }} tone <{{ id }}>", "two": "TWO <{{ id }}>"},
                      items=[{"id": i, "tone": "unset"} for i in ("i1", "i2")],
                      models=[write_spec.model(server.base_url)])
    result = run(spec, out=tmp_path / "reports", retries=0, warn=lambda _: None)
    summary = json.loads((result.dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["design"]["axes"] == ["tone"]
    schema = json.loads((ROOT / "schemas" / "summary.schema.json").read_text(encoding="utf-8"))
    assert [e.message for e in Draft202012Validator(schema).iter_errors(summary)] == []
    return result.dir, summary


def test_a_registered_axis_is_in_the_results_the_summary_and_the_report_of_a_run(
        tone: Axis, tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    folder, summary = _toned_run(tmp_path, write_spec, loopback)
    frame = pl.read_parquet(folder / "results.parquet")
    assert frame.select("variant", "tone", "label").rows() == [
        (v, t, label) for _ in ("i1", "i2") for v, labels in (("one", ("a", "b")), ("two", ("a", "a")))
        for t, label in zip(("formal", "casual"), labels, strict=True)]
    # nested (not crossed with the variants): pooled in the variants' figures, broken down by tone beside them
    stats = summary["statistics"]
    assert [(v["variant"], v["labels"]) for v in stats["variants"]] == [
        ("one", {"a": 2, "b": 2, "unparsed": 0}), ("two", {"a": 4, "b": 0, "unparsed": 0})]
    assert [(e["variant"], e["tone"], e["labels"], e["items"]) for e in stats["tones"]] == [
        ("one", "formal", {"a": 2, "b": 0, "unparsed": 0}, 2), ("one", "casual", {"a": 0, "b": 2, "unparsed": 0}, 2),
        ("two", "formal", {"a": 2, "b": 0, "unparsed": 0}, 2), ("two", "casual", {"a": 2, "b": 0, "unparsed": 0}, 2)]

    report = (folder / "report.md").read_text(encoding="utf-8")
    table = report.split("\n## Tone\n", 1)[1].split("\n## ", 1)[0]
    assert "| model | variant | tone | responses | errors | a | b | unparsed | unparsed rate |" in table
    assert "| loop | one | casual | 2 | 0 | 0 | 2 | 0 | 0.0% |" in table


def test_a_registered_crossed_axis_groups_every_figure_and_compares_its_levels(
        crossed_tone: Axis, tmp_path: Path, write_spec: SpecWriter,
        loopback: Callable[..., LoopbackServer]) -> None:
    folder, summary = _toned_run(tmp_path, write_spec, loopback)
    stats = summary["statistics"]
    # per tone, like per condition (in the order the run asked them): the variants, their pairs, and each
    # variant's two tones item by item
    assert [(v["model"], v["tone"], v["variant"], v["labels"]["a"]) for v in stats["variants"]] == [
        ("loop", "formal", "one", 2), ("loop", "casual", "one", 0), ("loop", "formal", "two", 2),
        ("loop", "casual", "two", 2)]
    assert [(p["tone"], p["a"], p["b"], p["agreement"]["count"]) for p in stats["pairs"]] == [
        ("formal", "one", "two", 2), ("casual", "one", "two", 0)]
    # `two` does not use the tone: its casual requests are its formal ones, answered from the store, so its two
    # tones agree by construction and are listed apart, untested
    assert [(c["variant"], c["a"], c["b"], c["agreement"]["count"]) for c in stats["tones"]] == [
        ("one", "formal", "casual", 0)]
    assert stats["tones_by_construction"] == [{"model": "loop", "variant": "two", "a": "formal", "b": "casual",
                                               "items": 2}]
    (across,) = stats["agreement_across_tones"]
    assert (across["tones"], across["items"], [a["count"] for a in across["agreement"]]) == (
        ["formal", "casual"], 2, [2, 0])
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "**loop** under *casual*: the *one* and *two* answers name the same label on 0.0%" in report
    section = report.split("\n## Each variant across tones\n", 1)[1].split("\n## ", 1)[0]
    assert "The same variant asked under two tones" in section and "| loop | one | formal vs casual | 2 |" in section
    assert "- loop, two: formal vs casual, 2 items" in section
    # two runs compared per tone: the same answers again (from the store), so nothing changed
    again, _ = _toned_run(tmp_path, write_spec, loopback)
    compared = compare_runs([folder, again], tmp_path / "compared").read_text(encoding="utf-8")
    assert [line for line in compared.splitlines() if line.startswith("### loop")] == [
        f"### loop · {t} · {v}" for v in ("one", "two") for t in ("formal", "casual")]
    assert "| loop · casual · one vs two | 2 |" in compared


def test_the_statistics_group_by_what_the_axes_declare(tone: Axis) -> None:
    every = Grouping.of(registered())
    # the model (who is asked) before the condition; the registered tone, declared neither, is nested
    assert (every.crossed, every.nested, every.optional) == (("model", "condition"),
                                                             ("paraphrase", "option_order", "tone"), ("condition",))
    assert every.group == ("model", "condition", "variant") and every.within("model") == ("condition", "variant")
    assert Grouping.of([a for a in registered() if not a.optional]).group == ("model", "variant")  # release 0.1's
