"""Issue 24 item 11: two renderings of one run folder at once (`evalrun report` twice, one with
--no-figures) leave a report.md whose figures are exactly the PNGs in figures/: neither removes PNGs
the other's report.md links."""

from __future__ import annotations

import multiprocessing
import shutil
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import evalrun.reporting as reporting
from evalrun.record import RunRecord
from evalrun.reporting import write_report

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"
# Generous: a spawned child imports polars and matplotlib before it renders (seconds); these bounds
# only turn a stuck child into a failed test instead of a CI run that never ends.
PATIENCE = 300.0


def _with_figures_pausing(run_dir: Path, paused: Event, go_on: Event) -> None:
    """Render with figures, stopping after the PNGs are drawn and before report.md is written."""
    render = reporting.render_markdown

    def pausing(*args: Any) -> str:
        paused.set()
        go_on.wait(PATIENCE)
        return render(*args)

    reporting.render_markdown = pausing  # patched in this child process only
    write_report(run_dir, RunRecord.load(run_dir / "summary.json"))


def _without_figures(run_dir: Path) -> None:
    write_report(run_dir, RunRecord.load(run_dir / "summary.json"), figures=False)


def _finish(process: BaseProcess) -> int | None:
    process.join(PATIENCE)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return process.exitcode


def test_a_rendering_without_figures_does_not_remove_those_another_is_linking(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(EXAMPLE, run_dir)
    # spawn, not fork: a fork taken after polars has started its thread pool (earlier tests in the
    # same session) can deadlock the child, and the test then waited forever in CI
    context = multiprocessing.get_context("spawn")
    paused, go_on = context.Event(), context.Event()
    drawing = context.Process(target=_with_figures_pausing, args=(run_dir, paused, go_on))
    drawing.start()
    plain: BaseProcess | None = None
    try:
        # a child that fails or sticks before its pause fails the test, not leaves it waiting
        assert paused.wait(PATIENCE), f"the rendering with figures never reached its pause ({drawing.exitcode=})"
        plain = context.Process(target=_without_figures, args=(run_dir,))
        plain.start()
        # the second rendering may remove the first's PNGs now; a locked folder keeps it waiting
        plain.join(timeout=5)
    finally:
        go_on.set()
        codes = (_finish(drawing), _finish(plain) if plain is not None else None)
    assert codes == (0, 0)
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    linked = {line.split("](figures/")[1].split(")")[0] for line in report.splitlines() if "](figures/" in line}
    on_disk = {p.name for p in (run_dir / "figures").glob("*.png")} if (run_dir / "figures").exists() else set()
    assert linked == on_disk
