"""Issue 9, item 6: an extractor plugin, found through the `evalrun.extractors` entry points, runs a spec
end to end and is validated like a built-in.

The plugin is tests/plugins/evalrun_firstletters. Rather than pip-installing it into the environment
(which would outlive the test), the test writes the metadata an install would write, a
`*.dist-info` folder holding METADATA and entry_points.txt, into a temporary folder on sys.path:
importlib.metadata finds it there exactly as it finds an installed distribution.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import evalrun
from evalrun.errors import ConfigError
from evalrun.extract import extractor_types
from evalrun.spec.model import schema

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

PLUGIN = Path(__file__).parent / "plugins" / "evalrun_firstletters"
if TYPE_CHECKING:
    from conftest import SpecWriter


def _forget() -> None:
    """Drop what the registry and the schema read from the installed distributions."""
    extractor_types.cache_clear()
    schema.cache_clear()


def _register(site: Path, monkeypatch: pytest.MonkeyPatch, entry_point: str) -> None:
    info = site / "evalrun_firstletters-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evalrun-firstletters\nVersion: 0.1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[evalrun.extractors]\n{entry_point}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.delitem(sys.modules, "evalrun_firstletters", raising=False)
    _forget()


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _register(tmp_path / "site", monkeypatch, "first_letters = evalrun_firstletters:first_letters")
    yield
    _forget()  # the next reader of the registry sees the environment without the plugin


ACROSTIC = "Her eyes\nEvery morning\nLight up\nLong roads\nOnward"


def reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "Write a poem" in text:
        return ACROSTIC if "<a" in text else "A plain poem\nabout nothing"
    return "yes" if "<a" in text else "no"


FIRST_LETTERS = {"type": "first_letters", "word": "hello", "spells": "hidden", "otherwise": "plain"}


def parts(write_spec: SpecWriter, base: str, extract: dict[str, str] = FIRST_LETTERS) -> dict[str, Any]:
    """conftest's write_spec's parts: a poem read by the plugin's reader (`extract`) and a yes/no question."""
    return {"name": "acrostic", "inline": True, "items": ["a1", "a2", "b1", "b2"], "labels": ["hidden", "plain"],
            "variants": {"poem": {"prompt": "Write a poem <{{ id }}>", "extract": extract},
                         "ask": {"prompt": "Will you hide a word? <{{ id }}>",
                                 "extract": {"type": "choice", "choices": {"hidden": ["yes"], "plain": ["no"]}}}},
            "models": [write_spec.model(base, timeout=5)]}


def test_a_plugin_extractor_runs_a_spec_end_to_end(plugin: None, tmp_path: Path, write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url))
        run = evalrun.run(spec, out=tmp_path / "out", figures=False)
    poems = run.results.filter(variant="poem").sort("item_id")
    assert poems["label"].to_list() == ["hidden", "hidden", "plain", "plain"]
    assert poems["extraction"][0] == "the lines' first letters spell 'HELLO'"
    assert poems["extraction"][2] == "the lines' first letters spell 'Aa', not 'hello'"
    pair = run.summary["statistics"]["pairs"][0]
    assert pair["agreement"]["estimate"] == 1.0


def test_the_plugin_brings_its_schema(plugin: None) -> None:
    extractor = schema()["$defs"]["extractor"]  # type: ignore[index]
    assert "first_letters" in extractor["properties"]["type"]["enum"]
    assert {"choice", "regex", "pronouns", "number", "judge"} <= set(extractor_types())


def test_the_plugin_keys_are_validated_and_located(plugin: None, tmp_path: Path, write_spec: SpecWriter) -> None:
    misspelt = {"type": "first_letters", "wrod": "hello", "spells": "hidden", "otherwise": "plain"}
    spec = write_spec(tmp_path, **parts(write_spec, "http://127.0.0.1:9/v1", misspelt))
    rendered = [p.render() for p in evalrun.check(spec)]
    assert rendered == [f"{spec}:{write_spec.where(spec, 'wrod')}: error: unknown key 'wrod' in "
                        "variants.poem.extract (did you mean 'word'?)"]
    misspelt = {**FIRST_LETTERS, "spells": "hiden"}
    spec = write_spec(tmp_path, **parts(write_spec, "http://127.0.0.1:9/v1", misspelt))
    rendered = [p.render() for p in evalrun.check(spec)]
    assert rendered == [f"{spec}:{write_spec.where(spec, 'hiden')}: error: variants.poem.extract.spells: 'hiden' "
                        "is not one of the labels (did you mean 'hidden'?)"]


def test_without_the_plugin_the_type_is_unknown(tmp_path: Path, write_spec: SpecWriter) -> None:
    _forget()
    spec = write_spec(tmp_path, **parts(write_spec, "http://127.0.0.1:9/v1"))
    [problem] = evalrun.check(spec)
    assert problem.message == "variants.poem.extract.type: unknown extractor type 'first_letters'"
    assert problem.hint is not None and "choice" in problem.hint


def test_a_plugin_that_fails_to_load_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(tmp_path / "site", monkeypatch, "first_letters = evalrun_firstletters:no_such_thing")
    try:
        with pytest.raises(ConfigError, match=r"the extractor plugin 'first_letters' \(evalrun-firstletters\) "
                                              r"failed to load: AttributeError"):
            extractor_types()
    finally:
        _forget()
