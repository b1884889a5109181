"""Issue 24, item 12: `evalrun render --item` rendered every item of the dataset to show one (11 s on 200,000
items), and left out the follow-up turn and what a templated reader's pattern renders to."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import evalrun.authoring as authoring
import evalrun.design.cells as design
from evalrun.authoring import render
from evalrun.cli import main

ITEMS = 500

SPEC = textwrap.dedent("""\
    name: preview
    dataset: {path: data.jsonl}
    labels: [kept, switched]
    variants:
      asked:
        prompts: ["Q1 {{ question }}", "Q2 {{ question }}", "Q3 {{ question }}"]
        paraphrases_per_item: 1
        extract:
          type: regex
          pattern: 'answer: (?P<label>{{ correct }}|{{ wrong }})'
          map: {"{{ correct }}": kept, "{{ wrong }}": switched}
        followup:
          prompt: "You said {{ answer }}. Are you sure it is not {{ wrong }}?"
          extract: {type: choice, choices: {kept: ["{{ correct }}"], switched: ["{{ wrong }}"]}}
          params: {max_tokens: 5}
      plain:
        prompt: "{{ question }}"
        extract: {type: choice, choices: {kept: ["yes"], switched: ["no"]}}
    params: {seed: 3}
    """)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "data.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "question": f"Capital {i}?", "correct": f"C.{i}", "wrong": f"W{i}"}) + "\n"
        for i in range(ITEMS)), encoding="utf-8")
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def test_render_of_one_item_renders_only_that_item(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    real = design.render

    def counting(source: str, context: dict[str, object]) -> str:
        rendered.append(str(context["id"]))
        return real(source, context)

    monkeypatch.setattr(design, "render", counting)
    requests = list(render(spec, items=[f"q{ITEMS - 1}"]))
    assert set(rendered) == {f"q{ITEMS - 1}"}  # one prompt per variant, not one per variant and item
    assert len(rendered) == 2
    # its paraphrase is the one the whole run asks it in (a rotation over the items)
    whole = [r for r in render(spec, items=None, limit=ITEMS) if str(r["job_id"]).startswith(f"q{ITEMS - 1}/")]
    assert [r["job_id"] for r in requests] == [r["job_id"] for r in whole]
    assert [r["messages"] for r in requests] == [r["messages"] for r in whole]


def test_render_shows_the_follow_up_turn_and_the_rendered_readers(spec: Path) -> None:
    answer = authoring.ANSWER
    asked, followup, plain = render(spec, items=["q7"])
    assert asked["readers"] == {"extract": r"pattern 'answer: (?P<label>C\.7|W7)'; map 'C.7' -> kept, 'W7' -> switched"}
    paraphrase = str(asked["job_id"]).split("/")[2]
    assert followup["job_id"] == f"q7/asked.followup/{paraphrase}/evalrun/smollm2/0"
    assert followup["messages"] == [*asked["messages"], {"role": "assistant", "content": answer},  # type: ignore[misc]
                                    {"role": "user", "content": f"You said {answer}. Are you sure it is not W7?"}]
    assert followup["params"] == {"seed": 3, "max_tokens": 5}
    assert followup["readers"] == {"followup.extract": "keywords kept: 'kept', 'C.7'; switched: 'switched', 'W7'"}
    assert plain["readers"] == {}  # no template in its keywords: nothing to show


def test_the_text_output_names_the_readers(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(spec), "--item", "q2", "--variant", "asked"]) == 0
    out = capsys.readouterr().out
    assert "--- reader extract reads with pattern 'answer: (?P<label>C\\.2|W2)'; map 'C.2' -> kept" in out
    answer = "<the model's answer>"
    assert f"--- assistant\n{answer}\n--- user\nYou said {answer}. Are you sure it is not W2?\n" in out
