"""Resume: reruns ask only for what is missing, `kill -9` and Ctrl-C lose nothing that had arrived.

Requests are counted server-side by the `<item>` tag each prompt carries. The interrupted runs are
real `python -m evalrun` subprocesses; the reruns run in-process, against the same server and store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

ITEMS = [f"i{n:02d}" for n in range(15)]
VARIANTS = ("ONE", "TWO")


def reply(body: dict[str, Any]) -> str:
    # deterministic per prompt, and varied, so the statistics are not trivially equal
    text = body["messages"][-1]["content"]
    return "alpha" if sum(map(ord, text)) % 3 else "beta"


@pytest.fixture
def server(loopback: Callable[..., LoopbackServer]) -> LoopbackServer:
    return loopback(default_reply=reply)


def parts(write_spec: SpecWriter, base: str, second_prompt: str = "TWO <{{ id }}>",
          concurrency: int = 3) -> dict[str, Any]:
    """conftest's write_spec's parts: two variants (alpha or beta) over ITEMS, one model."""
    return {"name": "resume", "items": ITEMS, "variants": {"one": "ONE <{{ id }}>", "two": second_prompt},
            "models": [write_spec.model(base, concurrency=concurrency, timeout=5)]}


def counts(server: LoopbackServer) -> dict[str, int]:
    return {f"{v} <{i}>": server.count(f"{v} <{i}>") for i in ITEMS for v in VARIANTS}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Path]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert out.strip(), err
    return code, Path(out.strip().splitlines()[-1])


def summary(report: Path) -> dict[str, Any]:
    return json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))


def test_rerun_asks_only_what_is_missing_or_changed(tmp_path: Path, server: LoopbackServer,
                                                    capsys: pytest.CaptureFixture[str],
                                                    write_spec: SpecWriter) -> None:
    out = str(tmp_path / "out")
    spec = write_spec(tmp_path, **parts(write_spec, server.base_url))
    assert run(capsys, str(spec), "--out", out)[0] == 0
    assert set(counts(server).values()) == {1}

    code, report = run(capsys, str(spec), "--out", out)  # nothing missing: nothing asked
    assert code == 0 and len(server.requests) == 30
    assert summary(report)["totals"]["from_store"] == 30

    # a changed prompt asks again for exactly the jobs it changed (the new text has a new tag)
    spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_prompt="TWO <{{ id }}> briefly"))
    code, report = run(capsys, str(spec), "--out", out)
    assert code == 0 and len(server.requests) == 45
    assert all(server.count(f"TWO <{i}> briefly") == 1 for i in ITEMS)
    assert all(server.count(f"ONE <{i}>") == 1 for i in ITEMS)
    totals = summary(report)["totals"]
    assert (totals["asked"], totals["from_store"]) == (15, 15)

    # --fresh asks everything again
    code, report = run(capsys, str(spec), "--out", out, "--fresh")
    assert code == 0 and len(server.requests) == 75
    assert summary(report)["totals"]["asked"] == 30


def test_report_rerenders_with_no_model_call(tmp_path: Path, server: LoopbackServer,
                                            capsys: pytest.CaptureFixture[str],
                                            write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, server.base_url))
    _, report = run(capsys, str(spec), "--out", str(tmp_path / "out"))
    before = report.read_text(encoding="utf-8"), summary(report)
    report.unlink()
    server.stop()  # any model call would now fail
    code, again = run(capsys, "report", str(report.parent))
    assert code == 0 and again == report
    assert (report.read_text(encoding="utf-8"), summary(report)) == before


def start_run(spec: Path, out: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EVALRUN_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_requests(server: LoopbackServer, proc: subprocess.Popen[str], n: int) -> None:
    deadline = time.monotonic() + 60  # the child first imports litellm (several seconds)
    while len(server.requests) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.02)


def stored_keys(home: Path) -> set[str]:
    with sqlite3.connect(home / "store.sqlite") as db:
        return {key for (key,) in db.execute("SELECT key FROM responses WHERE status = 'ok'")}


@pytest.mark.slow
def test_kill_9_midway_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, evalrun_home: Path,
                                     write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply, latency=0.15) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, concurrency=2))
        proc = start_run(spec, tmp_path / "killed", evalrun_home)
        wait_for_requests(server, proc, 9)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        survived = stored_keys(evalrun_home)
        asked_before = counts(server)
        assert 0 < len(survived) < 30  # it really was midway
        assert len(list((evalrun_home / "scratch").iterdir())) == 1  # kill -9 left its scratch rows behind

        code, resumed = run(capsys, str(spec), "--out", str(tmp_path / "out"))
        assert code == 0
        after = counts(server)
        totals = summary(resumed)["totals"]
        assert (totals["answered"], totals["failed"], totals["from_store"]) == (30, 0, len(survived))
        # every job asked; the only repeats are requests in flight when the process died (at most 2)
        assert all(n >= 1 for n in after.values())
        repeated = [tag for tag, n in after.items() if n > 1]
        assert all(after[tag] == 2 and asked_before[tag] == 1 for tag in repeated)
        assert len(repeated) <= 2
        assert sum(asked_before.values()) - len(survived) == len(repeated)

        # the same statistics as an uninterrupted run into a fresh store
        monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "fresh-home"))
        code, fresh = run(capsys, str(spec), "--out", str(tmp_path / "fresh"))
        assert code == 0 and summary(fresh)["totals"]["asked"] == 30
        assert summary(resumed)["statistics"] == summary(fresh)["statistics"]
        # and the same results table, row for row, however the answers arrived
        columns = ["job_id", "key", "response", "label", "gold"]
        assert pl.read_parquet(resumed.parent / "results.parquet", columns=columns).equals(
            pl.read_parquet(fresh.parent / "results.parquet", columns=columns))
        assert not (evalrun_home / "scratch").exists()  # the resumed run swept the dead run's scratch


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     evalrun_home: Path, write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply, latency=0.15) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, concurrency=2))
        proc = start_run(spec, tmp_path / "out", evalrun_home)
        wait_for_requests(server, proc, 5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and out == ""
        assert "interrupted after" in err and "Run the same command again to resume" in err
        survived = stored_keys(evalrun_home)
        assert 0 < len(survived) < 30
        assert not (evalrun_home / "scratch").exists()  # Ctrl-C cleans up after itself
        asked_before = counts(server)

        code, report = run(capsys, str(spec), "--out", str(tmp_path / "out"))
        assert code == 0 and summary(report)["totals"]["from_store"] == len(survived)
        after = counts(server)
        assert all(n >= 1 for n in after.values())
        # requests cancelled by Ctrl-C are asked again; nothing that had arrived is
        assert sum(after.values()) - 30 == sum(asked_before.values()) - len(survived) <= 2
