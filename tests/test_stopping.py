"""Issue 24.11: a run told to stop (SIGTERM, the first Ctrl-C) sends nothing new, lets the requests in flight
land and stores them, then exits 130 with one line; a second signal stops at once. A real `evalrun` process
against a slow loopback server on 127.0.0.1; the time bounds here are liveness bounds, never speed checks."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun import runner
from evalrun.cli import main
from evalrun.dataset import load_dataset
from evalrun.design import Design
from evalrun.jobs import Job
from evalrun.providers import Answer
from evalrun.sendpath import RunOptions
from evalrun.spec import ModelConfig, load_spec
from evalrun.store import Store

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import Quiet, SpecWriter

ITEMS = 60  # two variants: 120 jobs, far more than the 20 in flight when the signal comes
LIVENESS = 120.0  # seconds a stopping run may take before the test calls it hung (the grace is 10 s)


def _stored_answers(home: Path) -> int:
    with sqlite3.connect(home / "store.sqlite") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM responses WHERE status = 'ok'").fetchone()
    return int(count)


def _start(spec: Path, tmp_path: Path, home: Path, workers: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "EVALRUN_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(tmp_path / "reports"),
                             "--workers", str(workers)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_requests(server: LoopbackServer, process: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + LIVENESS
    while len(server.requests) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.requests) >= count, "the run never had its requests in flight"


def _spec(tmp_path: Path, write_spec: SpecWriter, base: str) -> Path:
    return write_spec(tmp_path, items=[f"i{n:03d}" for n in range(ITEMS)],
                      models=[write_spec.model(base, concurrency=20, timeout=60)])


# SIGINT is Ctrl-C's signal; with sender processes (--workers 2) the requests in flight are theirs
@pytest.mark.parametrize(("stop", "workers"), [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGTERM, 2)])
def test_a_stop_lets_the_requests_in_flight_land_and_a_rerun_asks_only_the_rest(
        stop: signal.Signals, workers: int, tmp_path: Path, evalrun_home: Path, write_spec: SpecWriter,
        capsys: pytest.CaptureFixture[str], loopback: Callable[..., LoopbackServer]) -> None:
    slow = loopback(default_reply="alpha", latency=1.0)
    spec = _spec(tmp_path, write_spec, slow.base_url)
    process = _start(spec, tmp_path, evalrun_home, workers)
    try:
        _wait_for_requests(slow, process, 10)
        process.send_signal(stop)
        out, err = process.communicate(timeout=LIVENESS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("evalrun: interrupted after ") and lines[-1].endswith(
        "Run the same command again to resume."), err
    assert out == ""
    asked = len(slow.requests)
    # nothing new was sent after the signal (at most the 20 in flight then), and every request the server got
    # was answered within the grace and stored (before: the answers in flight were paid for and lost)
    assert asked < 2 * ITEMS
    assert _stored_answers(evalrun_home) == asked

    # the rerun asks only for the rest: no request is paid for twice
    code = main(["run", str(spec), "--out", str(tmp_path / "reports"), "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    assert len(slow.requests) == 2 * ITEMS


class HangingSender:
    """Sends into a void: every request stays in flight until cancelled; counts the requests sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.cancelled = 0

    def want(self, count: int) -> None:
        pass

    async def ready(self, models: list[ModelConfig]) -> None:
        pass

    async def ask(self, job: Job, key: str | None) -> Answer:
        self.sent += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("signals", [1, 2])
def test_a_second_stop_or_the_end_of_the_grace_stops_the_requests_in_flight(
        signals: int, tmp_path: Path, write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch, quiet: Quiet) -> None:
    # one stop: the grace (shortened here) runs out on requests that never land; two: they stop at once, so
    # with an hour's grace the test would hang (and pytest-timeout fail it) if the second did nothing
    monkeypatch.setattr(runner, "STOP_GRACE_SECONDS", 0.2 if signals == 1 else 3600.0)
    spec = load_spec(_spec(tmp_path, write_spec, "http://127.0.0.1:9/v1"))
    design = Design(spec, load_dataset(spec))
    sender = HangingSender()
    store = Store(tmp_path / "store.sqlite")
    ran = runner.Runner(store, RunOptions(), quiet, sender=sender)

    async def stage() -> None:
        async def stop_once_all_are_in_flight() -> None:
            while sender.sent < 20:
                await asyncio.sleep(0.01)
            for _ in range(signals):
                ran.stop()

        stopper = asyncio.create_task(stop_once_all_are_in_flight())
        try:
            with pytest.raises(runner.Stopped):
                await ran.stage({m.name: design.expand(only=m) for m in spec.models}, spec.models)
        finally:
            await stopper
            await ran.close()

    asyncio.run(stage())
    store.close()
    assert (sender.sent, sender.cancelled) == (20, 20)  # nothing new after the stop; the ones in flight ended
