"""Property tests: no document, however broken, gets a traceback out of the checker.

Random YAML-ish text and random mutations of the example spec's data (keys deleted, types changed,
unknown keys inserted, strings scrambled), dumped back to YAML, go through `parse_spec` and
`evalrun.cli.check`; the only acceptable outcomes are a spec or a list of one-line problems.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalrun.api import check
from evalrun.errors import Problem
from evalrun.spec import parse_spec

EVALS = Path(__file__).parent.parent / "evals"
EXAMPLE = yaml.safe_load((EVALS / "gender.yaml").read_text(encoding="utf-8"))
# EVALRUN_FUZZ_EXAMPLES=5000 for a longer hunt
SETTINGS = settings(max_examples=int(os.environ.get("EVALRUN_FUZZ_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _assert_clean(problems: list[Problem]) -> None:
    for p in problems:
        line = p.render()
        assert "\n" not in line and "\r" not in line
        assert p.severity in ("error", "warning")
        assert "Traceback" not in line


TOKENS = [*"abcnyl:-[]{}&*!|>'\",#%@`?~<= \n\t01.\\", "\u00e9", "\x00", "!!python/object:os.system ", "<<: ",
          "{{ ", " }}", "{%", "&a ", "*a", "\n  ", "2024-13-45", "!!int ", "!!binary ", "? "]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@SETTINGS
@given(YAMLISH)
def test_random_yamlish_text_never_escapes(text: str) -> None:
    spec, problems = parse_spec(text, Path("fuzz.yaml"))
    _assert_clean(problems)
    assert spec is not None or any(p.severity == "error" for p in problems)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["female", "male", "choice", "regex", "pronouns",
                                                           "{{ text }}", "{{ x", "(?P<label>", "[", "data/x.csv"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


def _paths(data: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_example(draw: st.DrawFn) -> dict:
    data = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "insert", "rename"]))
        last = path[-1]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(VALUES)
        elif action == "insert" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = parent.pop(last)
    return data


@SETTINGS
@given(mutated_example())
def test_mutations_of_the_example_never_escape(tmp_path_factory, data: dict) -> None:
    folder = tmp_path_factory.mktemp("mut")
    (folder / "data").mkdir()
    (folder / "data" / "gender_texts.jsonl").write_bytes((EVALS / "data" / "gender_texts.jsonl").read_bytes())
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    spec = folder / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    problems = check(spec)
    _assert_clean(problems)
    _, direct = parse_spec(text, spec)
    _assert_clean(direct)


@SETTINGS
@given(st.data())
def test_random_dataset_files_never_escape(tmp_path_factory, data: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("ds")
    suffix = data.draw(st.sampled_from([".csv", ".jsonl", ".parquet"]))
    content = data.draw(st.one_of(
        st.binary(max_size=60),
        st.text(alphabet=st.sampled_from(list('id,text,gold\n"{}:[] femal\x00')), max_size=80).map(str.encode)))
    (folder / f"d{suffix}").write_bytes(content)
    (folder / "spec.yaml").write_text(
        f"name: ds\ndataset: {{path: d{suffix}, gold: gold}}\nlabels: [female, male]\nvariants:\n"
        "  a: {prompt: '{{ text }}', extract: {type: pronouns}}\n"
        "  b: {prompt: '{{ text }}!', extract: {type: pronouns}}\n", encoding="utf-8")
    _assert_clean(check(folder / "spec.yaml"))
