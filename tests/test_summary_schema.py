"""schemas/summary.schema.json describes every summary.json evalrun writes: the committed example,
and real runs over a loopback server, one plain and one using every optional axis and a failed job."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator

from evalrun.api import run

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "summary.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)

PICK = {"type": "choice", "choices": {"female": [], "male": []}}
# conftest's write_spec's parts of both specs (their items and models are added when written)
PLAIN: dict[str, Any] = {
    "name": "plain", "filename": "plain.yaml", "dataset": {"gold": "gender"}, "labels": ["female", "male"],
    "variants": {"direct": {"prompt": "DIRECT {{ id }}", "extract": PICK},
                 "story": {"prompt": "STORY {{ id }}", "extract": {"type": "pronouns"}}},
}

# conditions, paraphrases, counterbalanced options, two models, two samples; i03 of one model fails
EVERY_AXIS: dict[str, Any] = {
    "name": "every-axis", "filename": "every.yaml", "dataset": {"gold": "gender"}, "labels": ["female", "male"],
    "conditions": {"plain": {"tone": "plain"}, "warm": {"tone": "warm"}},
    "variants": {
        "direct": {"prompts": ["DIRECT {{ tone }} {{ id }} {{ options | join(' or ') }}",
                               "ASK {{ tone }} {{ id }} {{ options }}"],
                   "options": ["female", "male"], "counterbalance": "rotations", "extract": PICK},
        "story": {"prompt": "STORY {{ tone }} {{ id }}", "extract": {"type": "pronouns"}},
    },
    "samples": 2,
}


def _reply(body: dict[str, Any]) -> str:
    text = "\n".join(m["content"] for m in body["messages"])
    n = sum(map(ord, text))  # varied but repeatable answers
    if "STORY" in text:
        return ["She smiled at her sister.", "He thanked his father.", "Rain fell."][n % 3]
    return ["female", "male", "I cannot tell."][n % 3]


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory, write_spec: SpecWriter,
              api_key: ApiKey) -> Iterator[list[dict[str, Any]]]:
    """The summaries of both runs, as returned and as written to summary.json."""
    root = tmp_path_factory.mktemp("runs")
    items = [{"id": f"i{n:02d}", "gender": ["female", "male"][n % 2]} for n in range(1, 7)]
    out = []
    # module-scoped, so the per-test EVALRUN_HOME of conftest is not set up yet: set our own
    with pytest.MonkeyPatch.context() as mp, LoopbackServer(
            rules=[Rule(contains="DIRECT plain i03", fault="500")], default_reply=_reply) as server:
        mp.setenv("EVALRUN_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        mp.setenv(api_key.env, api_key.secret)
        for parts, names in ((PLAIN, ["scripted"]), (EVERY_AXIS, ["m1", "m2"])):
            models = [write_spec.model(server.base_url, name=n, model=f"openai/{n}") for n in names]
            spec = write_spec(root, items=items, models=models, **parts)
            result = run(spec, out=root / "reports", retries=0, warn=lambda _: None)
            out += [result.summary, json.loads((result.dir / "summary.json").read_text(encoding="utf-8"))]
    yield out


def _errors(summary: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(summary)]


def test_the_schema_is_valid_json_schema_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_committed_example_validates() -> None:
    example = json.loads((ROOT / "reports" / "example" / "summary.json").read_text(encoding="utf-8"))
    assert _errors(example) == []


def test_every_summary_of_real_runs_validates(summaries: list[dict[str, Any]]) -> None:
    for summary in summaries:
        assert _errors(summary) == [], summary["run"]["name"]
    every = summaries[-1]
    # the run meant to use every optional section did use it, so the schema was tested on it
    assert {"conditions", "paraphrases", "option_orders", "position_bias"} <= set(every["statistics"])
    assert every["totals"]["failed"] > 0


@pytest.mark.parametrize(("path", "why"), [
    (("statistics",), "required"),
    (("run", "labels"), "required"),
    (("statistics", "pairs", 0, "cohen_kappa"), "required"),
    (("statistics", "pairs", 0, "confusion", "counts"), "required"),
    (("statistics", "variants", 0, "labels", "unparsed"), "required"),
    (("statistics", "variants", 0, "unparsed_rate", "ci_low"), "required"),
    (("totals", "jobs"), "required"),
])
def test_a_missing_required_key_is_an_error(path: tuple[Any, ...], why: str) -> None:
    summary = json.loads((ROOT / "reports" / "example" / "summary.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(summary)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert any(why in e for e in _errors(broken)), path


def test_wrong_types_are_errors_and_new_statistics_are_welcome() -> None:
    summary = json.loads((ROOT / "reports" / "example" / "summary.json").read_text(encoding="utf-8"))
    wrong = copy.deepcopy(summary)
    wrong["statistics"]["variants"][0]["accuracy"]["estimate"] = 1.5
    wrong["statistics"]["pairs"][0]["cohen_kappa"]["kappa"] = "high"
    assert len(_errors(wrong)) == 2
    extended = copy.deepcopy(summary)  # statistics the lead may add later must not break old readers' schema
    extended["statistics"]["pairs"][0]["bootstrap"] = {"kappa": {"ci_low": 0.1}}
    extended["statistics"]["rankings"] = []
    assert _errors(extended) == []
    extended["surprise"] = 1  # but the top level is closed: a typo in a top-level key is caught
    assert _errors(extended) != []
