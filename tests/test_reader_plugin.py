"""Issue 22 item 4 and issue 24 item 2: a reader that asks a model, registered as a plugin, runs end to end
through the same store, budget and progress as the first answers; the judge's model is named in the run
record and its requests counted in summary.json's totals; a judge with no model to ask is refused.

The plugin reader is defined here and registered as an installed plugin is: a `*.dist-info` folder whose
entry_points.txt names it, in a temporary folder on sys.path (see test_plugins). Every figure is worked
out by hand from the scripted replies below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from jsonschema import Draft202012Validator

import evalrun
from evalrun.cli import main
from evalrun.errors import EvalrunError
from evalrun.extract import (
    AskingExtractor,
    Extraction,
    ExtractorType,
    Reading,
    Request,
    extractor_types,
)
from evalrun.record import ModelRecord, RunRecord
from evalrun.spec import load_spec
from evalrun.spec.model import schema
from evalrun.stages import run_judge

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import SpecWriter


class LetterGrader:
    """Reads an answer by asking `model` which letter it names (the reply's `LETTER x`)."""

    def __init__(self, labels: Sequence[str], model: str) -> None:
        self.labels = list(labels)
        self.models = [model]

    def request(self, reading: Reading, index: int) -> Request:
        return Request([{"role": "user", "content": f"GRADE <{reading.item['id']}> {reading.text}"}],
                       {"temperature": 0})

    def extract(self, reading: Reading) -> Extraction:
        found = re.search(r"LETTER (\w+)", reading.text)
        if found is None or found[1] not in self.labels:
            return Extraction(None, "no letter")
        return Extraction(found[1], f"the grader said {found[1]}")

    def settle(self, readings: Sequence[Extraction]) -> Extraction:
        (only,) = readings
        return only

    def can_produce(self) -> set[str]:
        return set(self.labels)


GRADER = ExtractorType(name="letter_grader",
                       schema={"required": ["model"], "properties": {"model": {"type": "string", "minLength": 1}}},
                       build=lambda config, labels: LetterGrader(labels, str(config["model"])))


def _forget() -> None:
    extractor_types.cache_clear()
    schema.cache_clear()


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """GRADER registered through the `evalrun.extractors` entry points, as an installed plugin is."""
    info = tmp_path / "site" / "evalrun_letter_grader-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evalrun-letter-grader\nVersion: 0.1.0\n",
                                   encoding="utf-8")
    # this module, by the name it was imported under: loading the entry point finds it in sys.modules
    (info / "entry_points.txt").write_text(f"[evalrun.extractors]\nletter_grader = {__name__}:GRADER\n",
                                           encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    _forget()
    yield
    _forget()


# b2's answer names the wrong letter: the grader reads what the answer says, not the gold label
GOLD = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
CHOICE = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}


def _reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if text.startswith("GRADE"):
        return "LETTER a" if "alpha" in text else "LETTER b"
    return "alpha" if "<a" in text or "<b2>" in text else "beta"


def _spec(write_spec: SpecWriter, folder: Path, base: str, extract: dict[str, Any], model: str,
          **extra: Any) -> Path:
    # $1 a prompt token, $0.50 a completion token (litellm keeps a registered price for the whole process:
    # a model name no other test uses). The server counts words: "ASK <a1>" 2 and "alpha" 1, so $2.50 a first
    # request; "GRADE <a1> alpha" 3 and "LETTER a" 2, so $4 a grading request
    loop = write_spec.model(base, model=model, concurrency=1, price={"input": 1_000_000, "output": 500_000})
    return write_spec(folder, name="graded", dataset={"gold": "gold"}, inline=True,
                      items=[{"id": i, "gold": g} for i, g in GOLD.items()],
                      variants={"ask": {"prompt": "ASK <{{ id }}>", "extract": extract},
                                "tell": {"prompt": "TELL <{{ id }}>", "extract": CHOICE}}, models=[loop], **extra)


def test_a_plugin_reader_asks_through_the_store_budget_and_progress(
        plugin: None, tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(LetterGrader(["a"], "m"), AskingExtractor)
    server = loopback(default_reply=_reply)
    spec = _spec(write_spec, tmp_path, server.base_url, {"type": "letter_grader", "model": "loop"},
                 "openai/reader-plugin-loop")
    out = tmp_path / "out"

    run = evalrun.run(spec, out=out, retries=0)
    assert (len(server.requests), server.count("GRADE")) == (12, 4)
    # progress counted the grader's requests with the first answers: 8 + 4 of the one model
    assert "loop: 12/12 done (0 stored), 0 errors" in capsys.readouterr().err
    # the grader is the primary reader of `ask`: its labels are the rows' labels, b2's wrong answer read as a
    asked = run.results.filter(pl.col("variant") == "ask")
    assert asked["label"].to_list() == ["a", "a", "b", "a"]
    assert asked["extraction"].to_list()[0] == "the grader said a"
    variant = next(v for v in run.summary["statistics"]["variants"] if v["variant"] == "ask")
    assert variant["labels"] == {"a": 3, "b": 1, "unparsed": 0}
    readings = pl.read_parquet(run.dir / "readings.parquet")
    assert json.loads(readings["judge_response"][3]) == ["LETTER a"]
    # its requests in the totals: 4 asked at $4, beside the 8 first answers at $2.50
    totals = run.summary["totals"]
    assert (totals["jobs"], totals["cost_usd"]) == (8, 20.0)
    assert {k: totals["readers"][k] for k in ("jobs", "answered", "asked", "from_store", "prompt_tokens",
                                              "completion_tokens", "cost_usd")} == {
        "jobs": 4, "answered": 4, "asked": 4, "from_store": 0, "prompt_tokens": 12, "completion_tokens": 8,
        "cost_usd": 16.0}
    assert run.summary["run"]["judges"] == [{"name": "loop", "model": "openai/reader-plugin-loop",
                                             "api_base": server.base_url}]
    # and the report names the model the reader asked, with what its requests took
    assert ("- readers asked `loop` (openai/reader-plugin-loop): 4 requests (4 asked, 0 from the store, 0 failed), "
            "12 prompt + 8 completion tokens, cost $16.0000") in run.report_path.read_text(encoding="utf-8")
    schema_file = Path(__file__).resolve().parent.parent / "schemas" / "summary.schema.json"
    Draft202012Validator(json.loads(schema_file.read_text(encoding="utf-8"))).validate(run.summary)

    again = evalrun.run(spec, out=out, retries=0)
    assert len(server.requests) == 12  # the store answered the grader's requests too
    assert "loop: 12/12 done (12 stored)" in capsys.readouterr().err
    assert again.summary["totals"]["readers"]["from_store"] == 4
    assert again.summary["statistics"] == run.summary["statistics"]

    # the budget counts the grader's costs: $20 of first answers and one $4 grading spend $24, so the three
    # other gradings are not sent (were its costs not counted, all four would be)
    fresh = evalrun.run(spec, out=out, retries=0, fresh=True, max_cost=24.0)
    assert (len(server.requests), server.count("GRADE")) == (12 + 9, 5)
    requests = pl.read_parquet(fresh.dir / "reader_requests.parquet")
    assert requests["error_class"].to_list() == [None, "BudgetExceeded", "BudgetExceeded", "BudgetExceeded"]
    assert fresh.results.filter(pl.col("variant") == "ask")["label"].to_list() == ["a", None, None, None]
    assert fresh.summary["totals"]["readers"]["failed"] == 3


JUDGE = {"type": "judge", "question": "which letter does answer <{{ id }}> name?"}


def _judge_reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "<<<BEGIN ANSWER>>>" in text:
        return "It names a letter.\nLABEL: a" if "alpha" in text else "It names a letter.\nLABEL: b"
    return _reply(body)


def test_a_judge_naming_no_model_on_remote_models_is_refused_before_anything_is_asked(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply=_judge_reply)
    spec = _spec(write_spec, tmp_path, server.base_url, JUDGE, "openai/reader-judge-refused")
    with pytest.raises(EvalrunError, match=r"^the reader 'ask.extract' names no model to ask and the run's models "
                                           r"are not embedded: name one with `judge:` in the spec or --judge "
                                           r"MODEL\[@ADDRESS\]$"):
        evalrun.run(spec, out=tmp_path / "out", retries=0)
    assert server.requests == []  # not the embedded SmolLM2, nor a first answer paid for in vain


def test_the_spec_judge_and_the_judge_flag_name_the_model_a_judge_asks(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    server = loopback(default_reply=_judge_reply)
    # `judge:` names one of the spec's models
    spec = _spec(write_spec, tmp_path / "named", server.base_url, JUDGE, "openai/reader-judge-named", judge="loop")
    run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    assert server.count("<<<BEGIN ANSWER>>>") == 4
    assert run.results.filter(pl.col("variant") == "ask")["label"].to_list() == ["a", "a", "b", "a"]
    assert run.summary["totals"]["readers"]["jobs"] == 4
    assert run.summary["run"]["judges"][0]["name"] == "loop"

    # --judge replaces it with a model string and its address (the key comes from the provider's variable)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-evalrun-test-judge")
    capsys.readouterr()
    address = f"openai/reader-judge-flag@{server.base_url}"
    assert main(["run", str(spec), "--judge", address, "--out", str(tmp_path / "out"), "--retries", "0"]) == 0
    judged = [r for r in server.requests if "<<<BEGIN ANSWER>>>" in r["messages"][-1]["content"]]
    assert [r["model"] for r in judged[4:]] == ["reader-judge-flag"] * 4  # asked again: another model
    summary = json.loads((Path(capsys.readouterr().out.strip()).parent / "summary.json").read_text("utf-8"))
    # named with its address, which tells it from a model of the same string elsewhere (test_judge_address)
    assert summary["run"]["judges"] == [{"name": address, "model": "openai/reader-judge-flag",
                                         "api_base": server.base_url}]
    # the record reads its judges back
    record = RunRecord.from_json(summary["run"], "summary.json")
    assert record.judges == [ModelRecord(address, "openai/reader-judge-flag", server.base_url)]
    assert summary["totals"]["readers"]["asked"] == 4


def test_a_mistyped_judge_address_is_a_spec_problem(tmp_path: Path, write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=["openai/x"], judge="openai/x@ftp://127.0.0.1/v1")
    problems = evalrun.check(spec)
    assert [p.message.split(":")[0] for p in problems if p.severity == "error"] == ["judge"]
    assert any("is not an http:// or https:// address" in p.message for p in problems)
    with pytest.raises(EvalrunError, match="is not an http:// or https:// address"):
        evalrun.run(write_spec(tmp_path / "ok", models=["openai/x"]), judge="openai/x@ftp://127.0.0.1/v1",
                    out=tmp_path / "out")


def test_the_embedded_model_judges_only_a_run_that_loads_it_anyway(tmp_path: Path, write_spec: SpecWriter) -> None:
    def judge_of(models: list[str], **extra: Any) -> str:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        return run_judge(load_spec(write_spec(folder, models=models, **extra)), "v.extract")

    assert judge_of(["evalrun/smollm2"]) == judge_of(["evalrun/smollm2", "openai/x"]) == "evalrun/smollm2"
    assert judge_of(["openai/x"], judge="openai/y") == "openai/y"
    assert judge_of(["evalrun/smollm2"], judge="openai/y") == "openai/y"
    with pytest.raises(EvalrunError, match="--judge MODEL"):
        judge_of(["openai/x", "anthropic/z"])


def test_a_followup_cannot_be_read_by_a_reader_that_asks(tmp_path: Path, write_spec: SpecWriter) -> None:
    # its requests would come after the follow-ups, in a round no run has
    followup = {"prompt": "Sure? {{ answer }}", "extract": {"type": "judge", "model": "openai/x"}}
    spec = write_spec(tmp_path, models=["openai/x"],
                      variants={"one": {"prompt": "ONE", "extract": CHOICE, "followup": followup}, "two": "TWO"})
    (problem,) = [p for p in evalrun.check(spec) if p.severity == "error"]
    assert problem.message == ("variants.one.followup.extract: a follow-up's answer cannot be read by a reader that "
                               "asks a model")
    assert problem.line == int(write_spec.where(spec, "type: judge").split(":")[0])
