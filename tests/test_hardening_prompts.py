"""Issue 14, item 7 (templates): a template cannot build a huge prompt or huge intermediate values, and every
failure while rendering is a jinja2 TemplateError (which jobs.messages_for turns into a located problem), not a
traceback. Each trap is refused before it allocates, so each test is quick and small."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from jinja2 import TemplateError

from evalrun import prompts, sandbox
from evalrun.cli import main
from evalrun.prompts import render

if TYPE_CHECKING:
    from conftest import SpecWriter

LIMIT = f"{sandbox.MAX_PROMPT_CHARS:,}"
TOO_BIG = f"more than {LIMIT} characters, the most a prompt may hold"
# Computed, the big traps below would build 100 MB or (far) more; refused, a render allocates no more than its
# work budget (MAX_WORK_CHARS one-byte characters, 50 MB) and a little besides.
MOST_ALLOCATED = sandbox.MAX_WORK_CHARS + 16 * 2**20


def _refused(source: str, context: dict[str, object] | None = None) -> str:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError) as info:
            render(source, context or {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MOST_ALLOCATED  # refused, not computed
    return str(info.value)


def test_the_limit_is_a_million_characters() -> None:
    assert sandbox.MAX_PROMPT_CHARS == 1_000_000
    assert len(render("{{ 'x' * 1000000 }}", {})) == 1_000_000  # exactly the limit is fine


def test_a_rendered_prompt_over_the_limit_is_refused() -> None:
    assert _refused("{{ 'x' * 10**8 }}") == f"`*` would build {TOO_BIG}"
    # many small pieces: the output is counted as it is produced
    message = _refused("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}")
    assert message == f"the rendered prompt would be {TOO_BIG}"
    assert _refused("{{ text }}{{ text }}", {"text": "y" * 600_000}) == f"the rendered prompt would be {TOO_BIG}"


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**10 }}",
    "{{ 10**10 * 'x' }}",
    "{{ ['x'] * 10**10 }}",
    "{{ ('x' * 1000, ) * 10000 }}",  # a list of references: cheap to make, huge as text
    "{{ 'x' * 1000000 + 'y' }}",
])
def test_repetition_and_concatenation_are_refused_before_they_allocate(source: str) -> None:
    assert _refused(source).endswith(TOO_BIG)


def test_a_huge_range_is_a_template_error() -> None:
    message = _refused("{% for i in range(10**9) %}{% endfor %}")
    assert message == "range() of 1,000,000,000 numbers: a template may loop over at most 100,000"


def test_huge_numbers_are_refused() -> None:
    assert _refused("{{ 10 ** (10 ** 10) }}") == "`**` would make a number of more than 4,300 digits"
    assert _refused("{% set ns = namespace(n=10**4000) %}{% for i in range(5) %}{% set ns.n = ns.n * ns.n %}"
                    "{% endfor %}{{ ns.n }}") == "`*` would make a number of more than 4,300 digits"


@pytest.mark.parametrize("source", [
    "{{ 'x'|center(10**10) }}",
    "{{ 'x'.center(10**10) }}",
    "{{ 'x'.ljust(10**10) }}",
    "{{ '1'.zfill(10**10) }}",
    "{{ ('a\n' * 1000)|indent(10**6) }}",
    "{{ ('a' * 10**6)|replace('a', 'bb') }}",
    "{{ ('a' * 10**6).replace('a', 'bb') }}",
    "{{ ('x' * 10**6)|wordwrap(1, wrapstring='yy') }}",
    "{{ ['a' * 10**6, 'b']|join('c') }}",
    "{{ range(1000)|join('x' * 10**4) }}",
    "{{ ''.join(['a' * 600000, 'b' * 600000]) }}",
    "{{ '%10000000000s'|format('x') }}",
    "{{ '%10000000000s' % 'x' }}",
    "{{ '%*s' % (10**10, 'x') }}",
    "{{ '{:10000000000}'.format('x') }}",
    "{{ '{:{}}'.format('x', 10**10) }}",
    "{{ '{:.10000000000f}'.format(1.5) }}",
    "{{ ('\t' * 1000).expandtabs(10**6) }}",
    "{{ ('x' * 10**6).translate({120: 'yy'}) }}",
    "{{ [1]|batch(10**10, 0)|list }}",
    "{{ [1]|slice(10**10)|list }}",
    "{{ lipsum(10**6) }}",
])
def test_functions_that_grow_text_are_bounded(source: str) -> None:
    assert TOO_BIG in _refused(source)


def test_stringifying_a_list_of_references_is_refused_before_it_allocates() -> None:
    # each element is small to build, but the list holds one big string a thousand times
    setup = ("{% set big = 'x' * 100000 %}{% set l = [] %}"
             "{% for i in range(1000) %}{{ l.append(big) or '' }}{% endfor %}")
    for use in ("{{ l }}", "{{ l|string }}", "{{ l ~ '' }}", "{{ '%s' % (l,) }}", "{{ '{}'.format(l) }}",
                "{{ l|tojson }}", "{{ l|join }}"):
        assert TOO_BIG in _refused(setup + use), use


def test_work_on_intermediate_values_is_bounded() -> None:
    # a hundred thousand values of a million characters each: every one fits, all of them do not
    message = _refused("{% for i in range(100000) %}{% set y = 'x' * 1000000 %}{% endfor %}")
    assert message == (f"the template builds more than {sandbox.MAX_WORK_CHARS:,} characters of intermediate "
                       "text for one prompt")
    assert _refused("{{ range(100000)|map('center', 1000000)|list|length }}").startswith("the template builds")


def test_doubling_through_a_namespace_or_a_macro_is_bounded() -> None:
    assert TOO_BIG in _refused("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                               "{% endfor %}{{ ns.s|length }}")
    assert TOO_BIG in _refused("{% macro twice(s) %}{{ twice(s ~ s) }}{% endmacro %}{{ twice('x') }}")


@pytest.mark.parametrize("source", [
    "{% set big = 'x' * 1000000 %}{% set s %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endset %}"
    "{{ s|length }}",
    "{% set big = 'x' * 1000000 %}{% macro m() %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endmacro %}"
    "{{ m()|length }}",
    "{% set big = 'x' * 1000000 %}{% filter length %}{% for i in range(100000) %}{{ big }}{% endfor %}"
    "{% endfilter %}",
])
def test_what_a_block_gathers_is_bounded(source: str) -> None:
    # the pieces are references to one string: cheap to gather, huge once joined
    assert TOO_BIG in _refused(source)


def test_filters_take_their_arguments_by_name() -> None:
    assert render("{{ 'a\nb'|indent(width=2, first=True) }}|{{ [1, 2, 3]|batch(linecount=2)|list }}|"
                  "{{ [1, 2, 3]|slice(slices=2, fill_with=0)|list }}|"
                  "{{ 'a b'|wordwrap(width=1, break_on_hyphens=False) }}|"
                  "{{ 'x'|center(width=3) }}|{{ 'a-a'|replace('a', 'b', count=1) }}", {}) == (
        "a\n  b|[[1, 2], [3]]|[[1, 2], [3, 0]]|a\nb| x |b-a")


def test_other_failures_while_rendering_are_template_errors() -> None:
    assert _refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}") == (
        "the template calls itself too deeply (a macro that never stops calling itself?)")
    assert _refused("{{ 1 / 0 }}") == "ZeroDivisionError: division by zero"
    assert _refused("{{ 10.0 ** 1000 }}").startswith("OverflowError: ")
    assert _refused("{{ '{:d}'.format('x') }}").startswith("ValueError: ")


def test_ordinary_templates_render_as_before() -> None:
    context = {"text": "Hello world " * 1000, "items": ["a", "b", "c"], "n": 3}
    source = ("{{ text|truncate(50) }} {{ items|join(', ') }} {{ '%05d' % n }} {{ '{:>6}'.format(n) }} "
              "{{ 'ab' * 3 }} {{ n ** 3 }} {{ items * 2 }} {{ text|wordcount }} {{ 'x'|center(9) }}"
              "{% for i in range(3) %}{{ i }}{% endfor %} {{ lipsum(1, html=False)|wordcount > 0 }}")
    assert render(source, context) == ("Hello world Hello world Hello world Hello... a, b, c 00003      3 ababab 27 "
                                       "['a', 'b', 'c', 'a', 'b', 'c'] 2000     x    012 True")


def test_urlize_is_not_available() -> None:
    with pytest.raises(prompts.TemplateProblem, match="urlize"):
        prompts.variables("{{ text|urlize }}")


def test_a_run_stops_at_a_huge_prompt_with_one_located_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str],
                                                           write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, name="trap", inline=True, items=[{"id": "t1", "text": "hi"}], labels=["pos", "neg"],
                      variants={"a": "{{ text * 10**8 }}", "b": "{% for i in range(10**9) %}{% endfor %}"},
                      extract={"type": "choice", "choices": {"pos": [], "neg": []}},
                      models=[{"model": "openai/test", "api_base": "http://127.0.0.1:9/v1"}])
    prompt_line = write_spec.where(spec, "{{ text * 10**8 }}").split(":")[0]
    monkeypatch.chdir(tmp_path)
    assert main(["run", "spec.yaml", "--out", str(tmp_path / "reports")]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    # the rest of the line (which variant, which item) is the caller's; the cause is the template's
    assert any(line.startswith(f"spec.yaml:{prompt_line}:") and line.endswith(f"`*` would build {TOO_BIG}")
               for line in err.splitlines()), err
