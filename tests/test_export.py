"""`evalrun export --format inspect`: logs that Inspect AI's own reader loads, on a copy of the example run.

Inspect is the judge of its format: every log is read back with inspect_ai's `read_eval_log`, which
validates it against Inspect's models, and found by `list_eval_logs`, the listing `inspect view` shows.
The expected values come from results.parquet and readings.parquet, read here independently.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from evalrun.cli import main
from evalrun.export import export
from evalrun.export.inspect import NEEDED
from evalrun.results import columns

inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect-ai (the test extra) reads the exported logs")


@pytest.fixture(autouse=True)
def inspect_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """inspect_ai keeps traces, the view server's ports and a cache under the user's data and cache folders:
    in a test (and the servers it starts), temporary ones."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _rows(run: Path) -> dict[str, dict[str, Any]]:
    return {r["job_id"]: r for r in pl.read_parquet(run / "results.parquet").iter_rows(named=True)}


def test_the_log_loads_in_inspect_with_one_sample_per_job(example: Path) -> None:
    (path,) = export(example, "inspect")
    log = inspect_log.read_eval_log(str(path))
    rows = _rows(example)
    assert log.status == "success" and log.eval.task == "gender" and log.eval.model == "evalrun/smollm2"
    assert log.eval.run_id == "20261123-205921-b8da36"
    assert log.eval.created == "2026-11-23T20:53:00+00:00"  # summary.json's "2026-11-23T20:53:00+0000"
    assert [s.id for s in log.samples] == list(rows)  # every job once, in results.parquet's order
    assert log.results is not None and log.results.total_samples == len(rows) == 288
    # `inspect view` lists a .json log only under a name starting with its timestamp
    assert [Path(info.name).name for info in inspect_log.list_eval_logs(str(path.parent))] == [path.name]


def test_samples_hold_the_jobs_messages_answers_labels_and_readers(example: Path) -> None:
    (path,) = export(example, "inspect")
    samples = {s.id: s for s in inspect_log.read_eval_log(str(path)).samples}
    rows = _rows(example)
    judged = pl.read_parquet(example / "readings.parquet").filter(pl.col("reader") == "judge")
    unparsed = next(r for r in rows.values() if r["label"] is None)
    wrong = next(r for r in rows.values() if r["label"] is not None and r["gold"] is not None
                 and r["label"] != r["gold"])
    followup = next(r for r in rows.values() if r["variant"] == "story.followup")  # three turns sent
    for row in (rows["t01/direct/p0/female>male/evalrun/smollm2/0"], unparsed, wrong, followup,
                rows[judged["job_id"][0]]):
        sample = samples[row["job_id"]]
        assert [(m.role, m.content) for m in sample.input] == [(m["role"], m["content"])
                                                               for m in json.loads(row["messages"])]
        assert sample.output.completion == row["response"] and sample.messages[-1].content == row["response"]
        assert sample.target == row["gold"]
        assert sample.metadata["variant"] == row["variant"] and sample.metadata["item_id"] == row["item_id"]
        assert sample.metadata["paraphrase"] == row["paraphrase"]
        if row["label"] is None:
            assert "label" not in sample.scores and sample.scores["correct"].value == "N"
        else:
            assert sample.scores["label"].value == row["label"]
            assert sample.scores["correct"].value == ("C" if row["label"] == row["gold"] else "I")
    assert samples[wrong["job_id"]].scores["correct"].value == "I"
    assert len(followup["messages"]) > 0 and len(samples[followup["job_id"]].input) == 3
    reading = judged.row(0, named=True)
    assert samples[reading["job_id"]].metadata["readers"]["judge"] == {"label": reading["label"],
                                                                       "reason": reading["reason"]}


def test_the_results_carry_the_reports_headline_figures(example: Path) -> None:
    (path,) = export(example, "inspect")
    log = inspect_log.read_eval_log(str(path))
    assert log.results is not None
    scores = {s.name: s for s in log.results.scores}
    # the report's figures for the example (reports/example/report.md): direct's accuracy 15 of 48 items,
    # 8 of the 19 items both variants labelled agree
    assert scores["correct"].metrics["accuracy/direct"].value == pytest.approx(15 / 48)
    assert scores["label"].metrics["agreement/direct~story"].value == pytest.approx(8 / 19)
    assert scores["label"].metrics["agreement/direct~story"].metadata["n"] == 19
    assert scores["label"].metrics["cohen_kappa/direct~story"].value < 0
    assert scores["correct"].scored_samples == 288  # every example item has a gold label


@pytest.mark.slow
def test_inspect_view_lists_and_serves_the_log(example: Path, tmp_path: Path) -> None:
    """The real `inspect view` server, on loopback: its listing names the log and its log route returns it."""
    (path,) = export(example, "inspect", tmp_path / "logs")
    with socket.socket() as probe:  # a free port; the server takes it a moment later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "inspect"), "view", "--log-dir", str(path.parent),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api"
    try:
        while True:  # until the server answers; pytest-timeout bounds a server that never does
            assert server.poll() is None, "inspect view exited"
            try:
                with urllib.request.urlopen(f"{base}/log-files") as reply:
                    listing = json.load(reply)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert [f["name"] for f in listing["files"]] == [path.as_uri()]
        assert listing["files"][0]["task"] == "gender"
        with urllib.request.urlopen(f"{base}/logs/{urllib.parse.quote(str(path), safe='')}") as reply:
            served = json.load(reply)
        assert served["status"] == "success" and len(served["samples"]) == 288
    finally:
        server.terminate()
        server.wait()


def test_one_log_per_model(example: Path, tmp_path: Path) -> None:
    results = pl.read_parquet(example / "results.parquet")
    other = results.head(10).with_columns(model=pl.lit("other"), model_string=pl.lit("openai/other-model"),
                                          job_id=pl.col("job_id").str.replace("evalrun/smollm2", "other"))
    pl.concat([results, other]).write_parquet(example / "results.parquet")
    summary = json.loads((example / "summary.json").read_text(encoding="utf-8"))
    summary["run"]["models"].append({"name": "other", "model": "openai/other-model", "api_base": None})
    (example / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    logs = [inspect_log.read_eval_log(str(p)) for p in export(example, "inspect", tmp_path / "logs")]
    assert [(log.eval.model, len(log.samples)) for log in logs] == [("evalrun/smollm2", 288),
                                                                    ("openai/other-model", 10)]
    assert {s.id for s in logs[1].samples} == set(other["job_id"])
    assert logs[0].eval.eval_id != logs[1].eval.eval_id


def test_a_registered_axis_is_in_the_samples_metadata(example: Path, toned: pl.DataFrame) -> None:
    (path,) = export(example, "inspect")
    samples = {s.id: s for s in inspect_log.read_eval_log(str(path)).samples}
    assert {job: samples[job].metadata["tone"] for job in toned["job_id"]} == dict(toned.select("job_id", "tone")
                                                                                   .iter_rows())


def test_the_columns_read_are_results_columns() -> None:
    assert set(NEEDED) <= set(columns())


def test_the_cli_writes_the_logs_and_prints_their_paths(example: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(example), "--format", "inspect", "--out", str(tmp_path / "out")]) == 0
    (printed,) = capsys.readouterr().out.splitlines()
    assert Path(printed).parent == tmp_path / "out"
    assert len(inspect_log.read_eval_log(printed).samples) == 288


def test_an_out_that_is_a_file_is_one_error_line(example: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("", encoding="utf-8")
    assert main(["export", str(example), "--format", "inspect", "--out", str(tmp_path / "taken")]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("evalrun: error: ") and "cannot write the logs there" in err


@pytest.mark.parametrize(("damage", "fmt", "says"), [
    (lambda run: shutil.rmtree(run), "inspect", "no such folder"),
    (lambda run: (run / "summary.json").write_text("{not json", encoding="utf-8"), "inspect", "summary.json"),
    (lambda run: (run / "results.parquet").unlink(), "inspect", "results.parquet: no such file"),
    (lambda run: (run / "results.parquet").write_bytes(b"PAR1 garbled"), "inspect", "results.parquet: cannot"),
    (lambda run: None, "csv", "unknown export format 'csv'"),
    (lambda run: None, "eee", "format 'eee': Every Eval Ever's schemas are public"),  # not written yet
])
def test_bad_input_is_one_error_line(example: Path, damage: Any, fmt: str, says: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    damage(example)
    assert main(["export", str(example), "--format", fmt]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("evalrun: error: ") and says in err[0], err
