"""The run record: release 0.2's summary.json loads and writes back unchanged but for `version`; a malformed
one is one EvalrunError naming the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from evalrun.errors import EvalrunError
from evalrun.record import RECORD_VERSION, ModelRecord, RunRecord

ROOT = Path(__file__).resolve().parent.parent
# reports/example's summary.json as release 0.2 wrote it, before the record had a version
EXAMPLE = ROOT / "tests" / "fixtures" / "release-0.2" / "summary.json"
VALIDATOR = Draft202012Validator(json.loads((ROOT / "schemas" / "summary.schema.json").read_text(encoding="utf-8")))


def _run() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))["run"]


def test_a_release_02_record_reads_as_version_1_and_writes_back_key_for_key() -> None:
    old = _run()
    assert "version" not in old
    record = RunRecord.from_json(old, EXAMPLE)
    assert record.version == 1 and record.labels == ["female", "male"] and record.models[0].api_base is None
    assert list(record.to_json().items()) == [("version", 1), *old.items()]
    assert [a.name for a in record.axes] == ["item_id", "variant", "paraphrase", "option_order", "model", "sample"]


def test_a_record_round_trips_and_its_summary_validates() -> None:
    record = RunRecord(
        name="n", description=None, run_id="r", spec_path="s.yaml", spec_sha256="a" * 64, dataset_source="d",
        dataset_sha256="b" * 64, items=3, labels=["x", "y"], variants=["v", "w"], compare=[["v", "w"]],
        has_gold=False, models=[ModelRecord("m", "openai/m", "http://h", unreachable=True, address="http://h"),
                                ModelRecord("b", "openai/b", batch_prices=True)],
        samples=2, params={"seed": 3}, seed=3, started="t", duration_s=1, versions={"python": "3"},
        ordinal=True, slices=["topic"], readers={"v": ["judge"]}, more={"added_later": [1]})
    written = record.to_json()
    assert written["models"] == [{"name": "m", "model": "openai/m", "api_base": "http://h", "unreachable": True,
                                  "address": "http://h"},
                                 {"name": "b", "model": "openai/b", "api_base": None, "batch_prices": True}]
    assert "design" not in written and written["ordinal"] is True and written["added_later"] == [1]
    assert RunRecord.from_json(json.loads(json.dumps(written)), "x") == record
    summary = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    summary["run"] = written
    assert list(VALIDATOR.iter_errors(summary)) == []
    summary["run"]["version"] = 0
    assert list(VALIDATOR.iter_errors(summary)) != []


def _broken(change: Any) -> dict[str, Any]:
    run = copy.deepcopy(_run())
    change(run)
    return run


@pytest.mark.parametrize(("change", "reason"), [
    (lambda r: r.pop("labels"), "no 'labels' key"),
    (lambda r: r.update(items="48"), "'items' is str, not an integer"),
    (lambda r: r.update(has_gold=1), "'has_gold' is int, not true or false"),
    (lambda r: r.update(items=True), "'items' is bool, not an integer"),
    (lambda r: r.update(duration_s="slow"), "'duration_s' is str, not a number"),
    (lambda r: r["models"][0].pop("name"), "no 'models[0].name' key"),
    (lambda r: r["models"][0].update(model=7), "'models[0].model' is int, not a string"),
    (lambda r: r.update(compare=[["direct", 2]]), "'compare[0][1]' is int, not a string"),
    (lambda r: r.update(versions={"python": 3.11}), "'versions.python' is float, not a string"),
    (lambda r: r.update(models={}), "'models' is dict, not a list"),
    (lambda r: r.update(design=[]), "'design' is list, not a mapping"),
    (lambda r: r.update(version="1"), "'version' is str, not an integer"),
])
def test_a_malformed_record_is_one_error_naming_the_file_and_the_field(change: Any, reason: str) -> None:
    with pytest.raises(EvalrunError) as caught:
        RunRecord.from_json(_broken(change), "runs/x/summary.json")
    assert str(caught.value).startswith(f"runs/x/summary.json: not a run's summary: {reason}"), str(caught.value)


def test_a_record_from_a_newer_evalrun_says_so() -> None:
    with pytest.raises(EvalrunError, match=rf"^x.json: written by a newer evalrun \(run record version "
                                           rf"{RECORD_VERSION + 1}; this one reads up to {RECORD_VERSION}\)"):
        RunRecord.from_json(_broken(lambda r: r.update(version=RECORD_VERSION + 1)), "x.json")


def test_load_names_the_file_of_a_summary_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(EvalrunError, match=r"summary.json: not a run's summary: no 'run' key"):
        RunRecord.load(path)
    path.write_text(json.dumps({"run": "gender"}), encoding="utf-8")
    with pytest.raises(EvalrunError, match=r"summary.json: not a run's summary: 'run' is str, not a mapping"):
        RunRecord.load(path)
