"""The eval library (evals/*.yaml): every spec validates cleanly, follows the library's conventions, and
runs end to end with --limit 2 against a loopback server, so none of them rots.

The smoke run writes a copy of each spec beside the real one's data (a copy of evals/) with a `models:`
block pointing at the loopback server, since the command line's --model takes a model string and no
api_base. The server answers plausibly: the first option a prompt lists after "one word:" or "the
letter:", otherwise a short answer that some readers label and others leave unparsed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

EVALS = Path(__file__).parent.parent / "evals"
SPECS = sorted(EVALS.glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/evalspec.schema.json"
MIN_ITEMS = 40
# specs whose question is about the models they name (a base model against an instruct one), so name them
NAMED_MODELS = {"base_vs_instruct"}
LISTED = re.compile(r"(?:one word|the letter|a single digit)[^:\n]*:\s*\(?([\w-]+)", re.IGNORECASE)


def _reply(body: dict[str, Any]) -> str:
    """The first option the last user turn lists, or a short answer with a declared choice."""
    messages = body.get("messages") or [{}]
    asked = str(messages[-1].get("content", ""))
    listed = LISTED.search(asked)
    if listed:
        return listed[1]
    return "Cats are calm animals.\nLines go on.\nOne more line.\nChoice: a"


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(default_reply=_reply) as s:
        yield s


def _data(spec: Path) -> dict[str, Any]:
    return yaml.safe_load(spec.read_text(encoding="utf-8"))


def test_the_library_has_specs() -> None:
    names = {p.stem for p in SPECS}
    assert {"risk", "self_prediction", "observed", "pattern_awareness", "persona", "preferences"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_validates_without_errors_or_warnings(spec: Path) -> None:
    problems = evalrun.check(spec)
    assert [p.render() for p in problems] == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_follows_the_library_conventions(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE
    data = _data(spec)
    assert data.get("description"), "every spec says what it measures"
    assert "models" not in data or spec.stem in NAMED_MODELS, \
        "the library runs on the embedded model unless --model says otherwise"
    assert "seed" in data.get("params", {}), "a fixed seed makes a rerun ask the same requests"
    readme = (EVALS / "README.md").read_text(encoding="utf-8")
    assert f"`{spec.name}`" in readme, f"evals/README.md has no section naming `{spec.name}`"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_dataset_has_enough_items(spec: Path) -> None:
    data = _data(spec)
    path = spec.parent / data["dataset"]["path"]
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = len(lines) - (1 if path.suffix == ".csv" else 0)
    assert items >= MIN_ITEMS


@pytest.fixture(scope="module")
def library_copy(tmp_path_factory: pytest.TempPathFactory, server: LoopbackServer, write_spec: SpecWriter) -> Path:
    """evals/ copied, each spec given a `models:` block naming the loopback server, which also judges (a run
    whose models are not embedded names its judge)."""
    root = tmp_path_factory.mktemp("library") / "evals"
    shutil.copytree(EVALS, root)
    for spec in root.glob("*.yaml"):
        data = _data(spec)
        data["models"] = [write_spec.model(server.base_url, name="loopback", model="openai/loopback")]
        data["judge"] = "loopback"
        spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_runs_with_limit_2(spec: Path, library_copy: Path, tmp_path: Path) -> None:
    run = evalrun.run(library_copy / spec.name, limit=2, out=tmp_path / "reports", retries=0, figures=False,
                      warn=lambda message: pytest.fail(f"unexpected warning: {message}"))
    totals = run.summary["totals"]
    assert totals["jobs"] > 0
    assert (totals["answered"], totals["failed"]) == (totals["jobs"], 0)
    assert run.report_path.name == "report.md" and run.report_path.is_file()
    frame = run.results
    assert frame["item_id"].n_unique() == 2
    assert frame["error_class"].null_count() == frame.height
