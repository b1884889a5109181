"""Issue 24 item 11: two renderings of one run folder at once (`evalrun report` twice, one with
--no-figures) leave a report.md whose figures are exactly the PNGs in figures/: neither removes PNGs
the other's report.md links."""

from __future__ import annotations

import multiprocessing
import shutil
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import evalrun.reporting as reporting
from evalrun.record import RunRecord
from evalrun.reporting import write_report

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"


def _with_figures_pausing(run_dir: Path, paused: Event, go_on: Event) -> None:
    """Render with figures, stopping after the PNGs are drawn and before report.md is written."""
    render = reporting.render_markdown

    def pausing(*args: Any) -> str:
        paused.set()
        go_on.wait()
        return render(*args)

    reporting.render_markdown = pausing  # this process only
    write_report(run_dir, RunRecord.load(run_dir / "summary.json"))


def _without_figures(run_dir: Path) -> None:
    write_report(run_dir, RunRecord.load(run_dir / "summary.json"), figures=False)


def test_a_rendering_without_figures_does_not_remove_those_another_is_linking(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(EXAMPLE, run_dir)
    context = multiprocessing.get_context("fork")  # the pause is patched into an already loaded module
    paused, go_on = context.Event(), context.Event()
    drawing = context.Process(target=_with_figures_pausing, args=(run_dir, paused, go_on))
    drawing.start()
    # a child that fails before its pause must fail the test, not leave it waiting
    while not paused.wait(timeout=1):
        assert drawing.is_alive(), f"the rendering with figures ended early (exit code {drawing.exitcode})"

    plain = context.Process(target=_without_figures, args=(run_dir,))
    plain.start()
    # main lets the second rendering remove the first's PNGs now; a locked folder keeps it waiting
    plain.join(timeout=5)
    go_on.set()
    drawing.join()
    plain.join()
    assert (drawing.exitcode, plain.exitcode) == (0, 0)
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    linked = {line.split("](figures/")[1].split(")")[0] for line in report.splitlines() if "](figures/" in line}
    on_disk = {p.name for p in (run_dir / "figures").glob("*.png")} if (run_dir / "figures").exists() else set()
    assert linked == on_disk
