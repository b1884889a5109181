"""Issue 24: the terminal display updates rich's task at most once per redraw, not once per answer, and still
ends on the true count."""

from __future__ import annotations

import io

import pytest
from rich.progress import Progress

from evalrun.design import Cell
from evalrun.jobs import Job
from evalrun.progress import Display
from evalrun.sendpath import Outcome
from evalrun.spec import ModelConfig
from evalrun.store import StoredResponse

MODEL = ModelConfig(model="x/y", name="local")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _outcome() -> Outcome:
    job = Job(cell=Cell(MODEL.name, None, "v", None, None, "i", 0), job_id="i/v/m/0", key="k", model=MODEL,
              messages=[{"role": "user", "content": "q"}], params={}, item={"id": "i"}, position=0)
    response = StoredResponse(key="k", model=MODEL.model, api_base=None, request="{}", status="ok", text="a",
                              finish_reason="stop", prompt_tokens=3, completion_tokens=2, cost=None, latency=0.1,
                              attempts=1, error_class=None, error_message=None, created_at=0.0)
    return Outcome(job, response, cached=False)


def test_a_burst_of_answers_updates_the_terminal_display_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    updates: list[int | None] = []
    real = Progress.update

    def counted(self: Progress, task: object, **fields: object) -> None:
        completed = fields.get("completed")
        updates.append(completed if isinstance(completed, int) else None)
        real(self, task, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(Progress, "update", counted)
    stream = Terminal()
    display = Display({"local": 3001}, stream=stream)
    for _ in range(3000):
        display.finished(_outcome())
    assert len(updates) < 100  # 3,000 answers in well under the seconds 100 redraws take
    display.close()
    assert updates[-1] == 3000  # the last state shown is the true one
    assert display.progress is not None and display.progress.tasks[0].completed == 3000


def test_the_last_answer_of_a_model_is_shown_at_once() -> None:
    stream = Terminal()
    display = Display({"local": 2}, stream=stream)
    display.finished(_outcome())
    display.finished(_outcome())
    assert display.progress is not None
    assert display.progress.tasks[0].completed == 2
    display.close()
