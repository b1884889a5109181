"""Issue 14, the command line: `evalrun report` on a damaged run folder says which file is wrong in one line,
and `evalrun validate` refuses what `run` would refuse when it renders the prompts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from evalrun import api
from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

# the second row makes the first variant's prompt 100 MB, which only rendering shows
REPEATED = {"variants": {"a": "{{ text * n }}", "b": "B {{ text }}"},
            "items": [{"id": "i1", "text": "hi", "n": 3}, {"id": "i2", "text": "hi", "n": 100000000}]}


def parts(**varied: Any) -> dict[str, Any]:
    """conftest's write_spec's parts: two variants over inline items, read as agree or refuse; `varied` replaces any."""
    return {"name": "cli", "inline": True, "labels": ["agree", "refuse"],
            "extract": {"type": "choice", "choices": {"agree": ["sure"], "refuse": ["never"]}}, **varied}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, write_spec: SpecWriter, api_key: ApiKey) -> Path:
    """A real run folder (summary.json, results.parquet, report.md) to damage copies of."""
    folder = tmp_path_factory.mktemp("finished")
    with LoopbackServer(default_reply="sure") as server, pytest.MonkeyPatch.context() as patch:
        # a module's fixture starts before the test's own: the key is not set yet
        patch.setenv(api_key.env, api_key.secret)
        patch.setenv("EVALRUN_HOME", str(folder / "home"))
        model = {"model": "openai/loop", "api_base": server.base_url, "api_key_env": api_key.env}
        items = [{"id": "i1", "text": "one"}, {"id": "i2", "text": "two"}]
        spec = write_spec(folder, models=[model],
                          **parts(variants={"a": "A {{ text }}", "b": "B {{ text }}"}, items=items))
        return api.run(spec, out=folder / "reports", warn=lambda _: None).dir


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _summary(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        summary = json.loads(path.read_text(encoding="utf-8"))
        change(summary)
        path.write_text(json.dumps(summary), encoding="utf-8")
    return damage


@pytest.mark.parametrize(("file", "damage", "message"), [
    ("results.parquet", _truncate, "cannot read it: "),
    ("results.parquet", Path.unlink, "no such file"),
    ("summary.json", _truncate, "cannot read it: "),
    ("summary.json", lambda p: p.write_bytes(b"\xff\xfe{"), "cannot read it: "),
    ("summary.json", Path.unlink, "no such file (is "),
    ("summary.json", _summary(lambda s: s.pop("run")), "not a run's summary: no 'run' key"),
    ("summary.json", _summary(lambda s: s["run"].pop("labels")), "not a run's summary: no 'labels' key"),
    ("summary.json", _summary(lambda s: s.update(run=[1, 2])), "not a run's summary: 'run' is list, "
     "not a mapping"),
])
def test_report_on_a_damaged_run_folder_is_one_line_naming_the_file(
        file: str, damage: Callable[[Path], None], message: str, finished_run: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    damage(run_dir / file)
    code = main(["report", str(run_dir)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"evalrun: error: {run_dir / file}: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_report_on_an_intact_run_folder_still_renders(finished_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out == f"{run_dir / 'report.md'}\n"


def test_validate_renders_rows_and_refuses_what_run_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str],
                                                          write_spec: SpecWriter) -> None:
    # the template is fine; the second row makes it build a 100 MB prompt, which only rendering shows
    spec = write_spec(tmp_path, **parts(**REPEATED))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "spec.yaml"]) == 2
    out, err = capsys.readouterr()
    where = write_spec.where(spec, "'{{ text * n }}'")  # the prompt, from its opening quote
    assert err == (f"spec.yaml:{where}: error: variants.a.prompt: cannot render for item 'i2': `*` would build more "
                   "than 1,000,000 characters, the most a prompt may hold\n"
                   "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)\n")
    assert out == ""


def test_validate_renders_only_the_first_rows_of_a_large_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 write_spec: SpecWriter) -> None:
    monkeypatch.setattr(api, "RENDER_CHECK_ROWS", 1)  # the bad second row is then beyond what validate renders
    write_spec(tmp_path, **parts(**REPEATED))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "spec.yaml"]) == 0
    capsys.readouterr()


def _compare_damaged(file: str, damage: Callable[[Path], None]) -> Callable[[Path, Path], tuple[list[str], Path]]:
    def arrange(finished_run: Path, tmp_path: Path) -> tuple[list[str], Path]:
        base, later = tmp_path / "base", tmp_path / "later"
        shutil.copytree(finished_run, base)
        shutil.copytree(finished_run, later)
        damage(later / file)
        return ["compare", str(base), str(later), "--out", str(tmp_path / "cmp")], later / file
    return arrange


def _compare_into_a_file(below: str) -> Callable[[Path, Path], tuple[list[str], Path]]:
    def arrange(finished_run: Path, tmp_path: Path) -> tuple[list[str], Path]:
        base, later, blocker = tmp_path / "base", tmp_path / "later", tmp_path / "compare.md"
        shutil.copytree(finished_run, base)
        shutil.copytree(finished_run, later)
        blocker.write_text("mine", encoding="utf-8")
        return ["compare", str(base), str(later), "--out", str(blocker / below)], blocker
    return arrange


def _new_into_a_file(finished_run: Path, tmp_path: Path) -> tuple[list[str], Path]:
    blocker = tmp_path / "evals"
    blocker.write_text("mine", encoding="utf-8")
    return ["new", "x", "--dir", str(blocker / "sub")], blocker


@pytest.mark.parametrize(("arrange", "message"), [
    (_compare_damaged("results.parquet", _truncate), "cannot read it: "),
    (_compare_damaged("summary.json", lambda p: p.write_text('{"run": 5}', encoding="utf-8")),
     "not a run's summary: 'run' is int, not a mapping"),
    (_compare_damaged("summary.json", _summary(lambda s: s["statistics"].update(variants=5))),
     "not a run's summary: 'int' object is not iterable"),
    (_compare_damaged("summary.json", _truncate), "cannot read it: "),
    (_compare_into_a_file(""), "is a file, not a folder"),
    (_compare_into_a_file("sub"), "is a file, not a folder"),
    (_new_into_a_file, "is a file, not a folder"),
], ids=["compare-truncated-results", "compare-run-5", "compare-variants-5", "compare-truncated-summary",
        "compare-out-a-file", "compare-out-below-a-file", "new-dir-below-a-file"])
def test_compare_and_new_on_wrong_inputs_are_one_line_naming_the_file(
        arrange: Callable[[Path, Path], tuple[list[str], Path]], message: str, finished_run: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, wrong = arrange(finished_run, tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"evalrun: error: {wrong}: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_new_with_dir_a_file_itself_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "evals"
    blocker.write_text("mine", encoding="utf-8")
    assert main(["new", "x", "--dir", str(blocker)]) == 2
    assert capsys.readouterr().err == (f"evalrun: error: {blocker}: is a file, not a folder (the spec and its "
                                       f"data/ go into {blocker})\n")
    assert blocker.read_text(encoding="utf-8") == "mine"
