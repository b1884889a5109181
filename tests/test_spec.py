"""Loading specs: the example, defaults, model objects, overrides, and positions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from evalrun.errors import SpecError
from evalrun.spec import EMBEDDED_MODEL, load_spec, parse_spec
from evalrun.yamlpos import load_yaml

EVALS = Path(__file__).parent.parent / "evals"

MINIMAL = textwrap.dedent("""\
    name: minimal
    dataset:
      items:
        - {id: a, text: hello}
    labels: [yes_, no_]
    variants:
      first:
        prompt: "{{ text }}"
        extract: {type: choice, choices: {yes_: [], no_: []}}
      second:
        prompt: "{{ text }}?"
        extract: {type: choice, choices: {yes_: [], no_: []}}
      third:
        prompt: "{{ text }}!"
        extract: {type: regex, pattern: "(?P<label>yes_|no_)"}
    """)


def _parse(text: str):
    spec, problems = parse_spec(text, Path("spec.yaml"))
    assert spec is not None, [p.render() for p in problems]
    return spec


def test_the_example_spec_loads() -> None:
    spec = load_spec(EVALS / "gender.yaml")
    assert spec.name == "gender"
    assert spec.labels == ["female", "male"]
    assert list(spec.variants) == ["direct", "story"]
    assert spec.variants["direct"].extract["type"] == "choice"
    assert spec.variants["story"].extract == {"type": "pronouns", "margin": 2}
    assert spec.variants["direct"].params == {"max_tokens": 6}
    assert spec.dataset.path == EVALS / "data" / "gender_texts.jsonl"
    assert (spec.dataset.id, spec.dataset.gold) == ("id", "gender")
    assert spec.samples == 1
    assert spec.params == {"temperature": 0.7, "seed": 7}
    assert spec.compare == [("direct", "story")]
    assert spec.warnings == []
    assert len(spec.sha256) == 64


def test_defaults_embedded_model_and_all_pairs() -> None:
    spec = _parse(MINIMAL)
    assert [m.model for m in spec.models] == [EMBEDDED_MODEL]
    assert spec.models[0].embedded and spec.models[0].concurrency == 1
    assert spec.compare == [("first", "second"), ("first", "third"), ("second", "third")]
    assert spec.samples == 1 and spec.params == {} and spec.description == ""
    assert spec.dataset.id == "id" and spec.dataset.gold is None
    assert spec.dataset.items == [{"id": "a", "text": "hello"}]


def test_model_strings_and_objects() -> None:
    spec = _parse(MINIMAL + textwrap.dedent("""\
        models:
          - openai/gpt-4o-mini
          - model: openai/local
            name: local
            api_base: http://localhost:8000/v1
            api_key_env: LOCAL_KEY_THAT_IS_NOT_SET
            concurrency: 2
            rpm: 30
            tpm: 9000
            price: {input: 0.15, output: 0.6}
            timeout: 5
            params: {temperature: 0}
          - model: evalrun/smollm2
        compare: [[third, first]]
        """))
    mini, local, embedded = spec.models
    assert (mini.name, mini.concurrency, mini.api_base, mini.embedded) == ("openai/gpt-4o-mini", 8, None, False)
    assert (local.name, local.api_base, local.api_key_env) == ("local", "http://localhost:8000/v1",
                                                               "LOCAL_KEY_THAT_IS_NOT_SET")
    assert (local.concurrency, local.rpm, local.tpm, local.timeout, local.params) == (2, 30, 9000, 5.0,
                                                                                       {"temperature": 0})
    assert embedded.embedded and embedded.concurrency == 1 and embedded.name == "evalrun/smollm2"
    assert (local.price, mini.price) == ((0.15, 0.6), None)
    assert spec.compare == [("third", "first")]


def test_overrides() -> None:
    spec = _parse(MINIMAL + "samples: 3\n")
    changed = spec.with_overrides(models=["openai/a", "openai/b"], samples=5)
    assert [m.model for m in changed.models] == ["openai/a", "openai/b"]
    assert changed.samples == 5
    assert spec.samples == 3 and [m.model for m in spec.models] == [EMBEDDED_MODEL]  # the original is untouched
    same = spec.with_overrides()
    assert same.samples == 3 and same.models == spec.models


def test_positions_of_values_and_keys() -> None:
    spec = _parse(MINIMAL)
    loc = spec.located
    assert loc.where(("labels",)) == (5, 9)
    assert loc.where(("labels",), key=True) == (5, 1)
    assert loc.where(("variants", "second", "prompt")) == (11, 13)
    assert loc.where(("variants", "second", "prompt"), key=True) == (11, 5)
    assert loc.where(("dataset", "items", 0, "text")) == (4, 21)
    # a path that does not exist points at its nearest ancestor
    assert loc.where(("variants", "second", "system")) == (11, 5)


def test_block_scalar_lines_map_to_file_lines() -> None:
    located, problems = load_yaml("a:\n  b: |\n\n    one\n    two {{ x }}\n", "f.yaml")
    assert problems == [] and located is not None
    assert located.where_in_text(("a", "b"), 3) == (5, 5)
    assert located.where_in_text(("a", "b"), None) == (2, 6)


def test_keys_are_the_text_written_and_merges_override() -> None:
    located, problems = load_yaml("base: &b {yes: 1, x: 2}\nother:\n  <<: *b\n  x: 3\n", "f.yaml")
    assert problems == [] and located is not None
    assert located.data == {"base": {"yes": 1, "x": 2}, "other": {"yes": 1, "x": 3}}


def test_load_spec_raises_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(MINIMAL.replace("labels:", "lables:").replace("name: minimal", "name: 3"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    rendered = [p.render() for p in info.value.problems]
    assert rendered == [f"{path}:1:7: error: name: expected text, got the number 3 (put it in quotes to make it text)",
                        f"{path}:5:1: error: unknown key 'lables' in (top level) (did you mean 'labels'?)"]


def test_missing_and_unreadable_spec_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "bin.yaml")
    assert info.value.problems[0].render().endswith("bin.yaml:1:10: error: the file is not UTF-8 text (byte 0xe9) "
                                                    "(save it as UTF-8)")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
