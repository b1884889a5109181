"""The report memo: a rerun with the same rows reuses statistics and figures, giving the same bytes
without importing statsmodels, scipy.stats or matplotlib; anything that changes what they are computed
from computes them again; a damaged or unwritable memo costs time, never the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from evalrun.record import RunRecord
from evalrun.reporting import RESULTS, rerender, write_report

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"
HEAVY = ("statsmodels", "scipy.stats", "matplotlib")

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter


def _copy(tmp_path: Path, name: str) -> Path:
    run_dir = tmp_path / name
    shutil.copytree(EXAMPLE, run_dir)
    shutil.rmtree(run_dir / "figures")
    return run_dir


def _rerender_in_subprocess(run_dir: Path, home: Path) -> list[str]:
    """Re-render in a fresh interpreter; return the heavy libraries it imported."""
    code = ("import sys, json, pathlib\nfrom evalrun.reporting import rerender\n"
            f"rerender(pathlib.Path({str(run_dir)!r}))\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "EVALRUN_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _outputs(run_dir: Path) -> dict[str, bytes]:
    files = [run_dir / "summary.json", run_dir / "report.md", *sorted((run_dir / "figures").glob("*.png"))]
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in files}


def test_a_second_rendering_of_the_same_rows_imports_no_statistics_or_plotting_library(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = _copy(tmp_path, "first"), _copy(tmp_path, "second")
    assert sorted(_rerender_in_subprocess(first, home)) == sorted(HEAVY)
    assert _rerender_in_subprocess(second, home) == []
    assert _outputs(second) == _outputs(first)
    assert len(_outputs(first)) > 8  # summary, report and the example's figures


def test_changed_rows_are_computed_again(tmp_path: Path, evalrun_home: Path) -> None:
    first, changed, fresh = _copy(tmp_path, "first"), _copy(tmp_path, "changed"), _copy(tmp_path, "fresh")
    rerender(first)
    for run_dir in (changed, fresh):  # the same change in two folders: one with the memo, one without
        frame = pl.read_parquet(run_dir / RESULTS)
        flipped = frame.with_columns(pl.when(pl.col("label") == "female").then(pl.lit("male"))
                                     .otherwise(pl.col("label")).alias("label"))
        flipped.write_parquet(run_dir / RESULTS)
    rerender(changed)
    shutil.rmtree(evalrun_home / "cache")
    rerender(fresh)
    assert _outputs(changed) == _outputs(fresh)
    assert json.loads((changed / "summary.json").read_bytes())["statistics"] != \
        json.loads((first / "summary.json").read_bytes())["statistics"]


def test_only_where_answers_came_from_does_not_count(tmp_path: Path, evalrun_home: Path) -> None:
    # a rerun answered from the store differs from its first run only in `cached`
    first, rerun = _copy(tmp_path, "first"), _copy(tmp_path, "rerun")
    rerender(first)
    frame = pl.read_parquet(rerun / RESULTS)
    frame.with_columns(pl.lit(True).alias("cached")).write_parquet(rerun / RESULTS)
    entries = sorted(p.name for p in (evalrun_home / "cache" / "reports").iterdir())
    rerender(rerun)
    assert sorted(p.name for p in (evalrun_home / "cache" / "reports").iterdir()) == entries
    assert json.loads((rerun / "summary.json").read_bytes())["totals"]["from_store"] == frame.height


def test_a_damaged_memo_is_computed_again(tmp_path: Path, evalrun_home: Path) -> None:
    first, second = _copy(tmp_path, "first"), _copy(tmp_path, "second")
    rerender(first)
    for entry in (evalrun_home / "cache" / "reports").iterdir():
        for file in entry.iterdir():
            file.write_bytes(b"\x00not json" if file.suffix == ".json" else b"")
        if (entry / "figures.json").exists():
            next(p for p in entry.iterdir() if p.suffix == ".png").unlink()
    rerender(second)
    assert _outputs(second) == _outputs(first)


def _edit_statistics(entry: Path, edit: str) -> None:
    if edit == "another shape":  # issue 24.4: this crashed the report after summary.json had taken it
        (entry / "statistics.json").write_text('{"variants": 5}', encoding="utf-8")
        return
    text = (entry / "statistics.json").read_text(encoding="utf-8")
    # the same shape with one count changed: parses and fits, and would print a wrong number
    changed = text.replace('"responses": ', '"responses": 9', 1)
    assert changed != text
    (entry / "statistics.json").write_text(changed, encoding="utf-8")


@pytest.mark.parametrize("edit", ["another shape", "a changed value"])
def test_an_edited_memo_is_computed_again_before_any_of_it_is_written(tmp_path: Path, evalrun_home: Path,
                                                                      edit: str) -> None:
    first, second = _copy(tmp_path, "first"), _copy(tmp_path, "second")
    rerender(first)
    entries = list((evalrun_home / "cache" / "reports").iterdir())
    for entry in entries:
        if (entry / "statistics.json").exists():
            _edit_statistics(entry, edit)
        else:  # a figures entry: one PNG swapped for another, and a record of another shape
            pngs = sorted(entry.glob("*.png"))
            pngs[0].write_bytes(pngs[1].read_bytes())
    rerender(second)
    assert _outputs(second) == _outputs(first)
    second_figures = _copy(tmp_path, "second-figures")
    for entry in (evalrun_home / "cache" / "reports").iterdir():
        if (entry / "figures.json").exists():
            (entry / "figures.json").write_text('[{"path": 5}]', encoding="utf-8")
    rerender(second_figures)
    assert _outputs(second_figures) == _outputs(first)


def test_an_unwritable_memo_still_gives_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("EVALRUN_HOME", str(blocker))
    run_dir = _copy(tmp_path, "run")
    rerender(run_dir)
    assert (run_dir / "report.md").exists() and any((run_dir / "figures").glob("*.png"))


def test_pngs_the_new_rendering_does_not_draw_are_removed(tmp_path: Path, evalrun_home: Path) -> None:
    run_dir = _copy(tmp_path, "run")
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "from-an-older-design.png").write_bytes(b"\x89PNG")
    (run_dir / "figures" / "notes.txt").write_text("mine", encoding="utf-8")
    rerender(run_dir)
    names = {p.name for p in (run_dir / "figures").iterdir()}
    assert "from-an-older-design.png" not in names and "notes.txt" in names
    linked = {line.split("](figures/")[1].rstrip(")") for line in (run_dir / "report.md").read_text().splitlines()
              if "](figures/" in line}
    assert linked == names - {"notes.txt"}
    meta = RunRecord.load(run_dir / "summary.json")
    write_report(run_dir, meta, figures=False)
    assert [p.name for p in (run_dir / "figures").iterdir()] == ["notes.txt"]
    (run_dir / "figures" / "notes.txt").unlink()
    write_report(run_dir, meta, figures=False)
    assert not (run_dir / "figures").exists()


def test_a_stored_rerun_of_a_run_imports_no_statistics_or_plotting_library(tmp_path: Path,
                                                                            write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=lambda body: "I agree") as server:
        spec = write_spec(tmp_path, name="memo", dataset={"id": "id", "gold": "gold"}, labels=["agree", "differ"],
                          items=[{"id": f"i{n}", "text": f"text {n}", "gold": "agree"} for n in range(4)],
                          variants={"direct": "Is it? {{ text }}", "story": "Tell. {{ text }}"},
                          extract={"type": "choice", "choices": {"agree": ["agree"], "differ": ["differ"]}},
                          models=[write_spec.model(server.base_url, name="m", model="openai/m")])
        code = ("import sys, json, evalrun\n"
                f"run = evalrun.run({str(spec)!r}, out={str(tmp_path / 'reports')!r}, retries=0)\n"
                f"print(json.dumps([run.summary['totals']['from_store'], [m for m in {HEAVY!r} if m in sys.modules]]))")
        env = {**os.environ, "EVALRUN_HOME": str(tmp_path / "home")}
        outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
                for _ in range(2)]
    for done in outs:
        assert done.returncode == 0, done.stderr
    (first_stored, first_heavy), (second_stored, second_heavy) = (json.loads(d.stdout.splitlines()[-1]) for d in outs)
    assert (first_stored, second_stored) == (0, 8)
    assert sorted(first_heavy) == sorted(HEAVY) and second_heavy == []
    first, second = sorted((tmp_path / "reports" / "memo").iterdir())
    summaries = [json.loads((d / "summary.json").read_text(encoding="utf-8")) for d in (first, second)]
    assert summaries[0]["statistics"] == summaries[1]["statistics"]
    assert [summaries[0]["totals"]["asked"], summaries[1]["totals"]["asked"]] == [8, 0]
    figures = [{p.name: p.read_bytes() for p in (d / "figures").glob("*.png")} for d in (first, second)]
    assert figures[0] == figures[1] and figures[0]
