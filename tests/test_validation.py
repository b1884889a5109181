"""The malformed-input corpus: each tests/invalid/<case>/ holds a spec.yaml (and data files) and the exact
output of `evalrun validate spec.yaml` run from inside the case folder, so every path in expected.txt is
relative to the case and the files are portable. Problem lines (stderr) come first, then the summary (stdout).

A case may hold limits.json ({"MAX_BYTES": 1000}) to lower yamlpos's limits, so the oversize case stays small;
the real limit is tested separately below.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import evalrun.yamlpos as yamlpos
from evalrun.cli import main

CORPUS = Path(__file__).parent / "invalid"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
GOOD = Path(__file__).parent.parent / "evals" / "gender.yaml"


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder = CORPUS / case
    limits = folder / "limits.json"
    if limits.exists():
        for name, value in json.loads(limits.read_text(encoding="utf-8")).items():
            monkeypatch.setattr(yamlpos, name, value)
    monkeypatch.chdir(folder)
    code, out, err = _validate(capsys, "spec.yaml")
    expected = (folder / "expected.txt").read_text(encoding="utf-8")
    assert err + out == expected
    assert "Traceback" not in err + out
    *problems, summary = [line for line in err.splitlines() if line]
    has_error = any(": error: " in line for line in problems)
    assert code == (2 if has_error else 0)
    for line in problems:  # every problem names file, line and column
        assert line.split(": ", 1)[0].count(":") == 2, line
    # the summary line comes last, on stderr with the problems, so the two never interleave
    assert out == "" and " checked: " in summary


def test_a_real_oversize_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\n" + "# padding\n" * (yamlpos.MAX_BYTES // 10 + 1), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = _validate(capsys, "big.yaml")
    assert code == 2
    size = spec.stat().st_size
    assert err == (f"big.yaml:1:1: error: the file is {size:,} bytes, over the 1,000,000-byte limit for a spec; "
                   "refusing to read it (a spec is hand-written; put large data in a dataset file)\n"
                   "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)\n")


def test_missing_file_and_unmatched_glob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _validate(capsys, "nope.yaml", "none-*.yaml")
    assert code == 2
    assert err.splitlines()[:-1] == ["nope.yaml: error: no such file", "none-*.yaml: error: no such file"]
    assert out == "" and err.endswith("2 files checked: 0 valid, 2 invalid (2 errors, 0 warnings)\n")


def test_globs_several_files_and_the_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(GOOD.parent, tmp_path / "evals")
    for case in ("unknown_key_top", "extractor_never_produces_warning", "several_problems"):
        shutil.copytree(CORPUS / case, tmp_path / "cases" / case)
    monkeypatch.chdir(tmp_path)
    code, out, err = _validate(capsys, "evals/*.yaml", "cases/**/spec.yaml", "evals/gender.yaml")
    assert code == 2
    specs = len(list((tmp_path / "evals").glob("*.yaml")))  # every example spec is valid
    # gender.yaml counted once, though named twice
    assert out == "" and err.endswith(
        f"{specs + 3} files checked: {specs + 1} valid, 2 invalid (5 errors, 2 warnings)\n")
    *lines, _ = err.splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("cases/extractor_never_produces_warning/spec.yaml:10:7: warning: ")
    assert lines[-1].startswith("cases/unknown_key_top/spec.yaml:5:1: error: unknown key 'lables'")
    assert "Traceback" not in err


def test_valid_files_exit_zero(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(GOOD.parent.parent)
    code, out, err = _validate(capsys, "evals/*.yaml")
    assert (code, out) == (0, "")
    assert err.endswith("0 invalid (0 errors, 0 warnings)\n") and err.count("\n") == 1


def test_json_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for case in ("unknown_key_top", "extractor_never_produces_warning"):
        shutil.copytree(CORPUS / case, tmp_path / case)
    monkeypatch.chdir(tmp_path)
    code, out, err = _validate(capsys, "*/spec.yaml", "--format", "json")
    assert code == 2
    assert err == ""
    report = json.loads(out)
    assert report["errors"] == 1 and report["warnings"] == 2
    files = {f["file"]: f for f in report["files"]}
    bad = files["unknown_key_top/spec.yaml"]
    assert bad["valid"] is False
    assert bad["problems"] == [{"file": "unknown_key_top/spec.yaml", "line": 5, "col": 1, "severity": "error",
                                "message": "unknown key 'lables' in (top level)",
                                "hint": "did you mean 'labels'?"}]
    warned = files["extractor_never_produces_warning/spec.yaml"]
    assert warned["valid"] is True
    assert {p["severity"] for p in warned["problems"]} == {"warning"}


def test_debug_shows_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalrun.errors import SpecError

    shutil.copytree(CORPUS / "unknown_key_top", tmp_path / "case")
    monkeypatch.chdir(tmp_path / "case")
    with pytest.raises(SpecError) as info:  # `run` stops at the spec; with --debug the exception propagates
        main(["--debug", "run", "spec.yaml"])
    assert "unknown key 'lables'" in str(info.value)


def test_without_debug_run_prints_one_line_per_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(CORPUS / "several_problems", tmp_path / "case")
    monkeypatch.chdir(tmp_path / "case")
    assert main(["run", "spec.yaml"]) == 2
    _, err = capsys.readouterr()
    expected = (CORPUS / "several_problems" / "expected.txt").read_text(encoding="utf-8").splitlines()[:-1]
    assert err.splitlines() == expected
    assert "Traceback" not in err


def test_no_secret_is_echoed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CORPUS / "unknown_key_model"
    assert "sk-do-not-echo" in (folder / "spec.yaml").read_text(encoding="utf-8")
    monkeypatch.chdir(folder)
    _, out, err = _validate(capsys, "spec.yaml", "--format", "json")
    assert "sk-do-not-echo" not in out + err
