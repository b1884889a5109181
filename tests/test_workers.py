"""Sender processes (evalrun.workers): a run whose requests go out through them stores what a run sending
from its own process stores, a killed sender's requests are asked again, and with no sender left the run
sends from its own process."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import evalrun
from evalrun import workers
from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter


def parts(write_spec: SpecWriter, base: str, items: int, concurrency: int = 8) -> dict[str, Any]:
    """conftest's write_spec's parts: its default two variants (ONE, TWO) over `items` items, one model."""
    return {"name": "senders", "items": [f"i{n:03d}" for n in range(items)], "params": {"temperature": 0, "seed": 3},
            "models": [write_spec.model(base, model="openai/senders-loop", concurrency=concurrency, timeout=10)]}


def rows(home: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "store.sqlite") as db:
        # the request, not its key: the key hashes api_base, and each run has a server (a port) of its own
        return db.execute("SELECT request, status, text, error_class, prompt_tokens, completion_tokens, attempts "
                          "FROM responses ORDER BY request").fetchall()


def reply(body: dict[str, Any]) -> str:
    """An answer that depends on the question: items whose number is odd answer beta to ONE."""
    text = body["messages"][-1]["content"]
    number = int(text.split("<i")[1][:3])
    return "beta" if text.startswith("ONE") and number % 2 else "alpha"


@pytest.mark.slow
def test_a_run_through_senders_stores_and_reports_what_a_run_without_them_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter, api_key: ApiKey) -> None:
    # a 429, a 500 and a dropped connection, each retried once
    rules = [Rule("ONE <i007>", fault="429", times=1), Rule("TWO <i011>", fault="500", times=1),
             Rule("TWO <i013>", fault="drop", times=1)]
    runs = {}
    for count in (0, 2):
        home = tmp_path / f"home{count}"
        monkeypatch.setenv("EVALRUN_HOME", str(home))
        with LoopbackServer(rules=rules, default_reply=reply, latency=0.01) as server:
            spec = write_spec(tmp_path / f"spec{count}", **parts(write_spec, server.base_url, items=30))
            if count:
                # in this process nothing can be sent: every answer must come from a sender
                async def refuse(*args: object) -> None:
                    raise AssertionError("sent from the run's own process")

                monkeypatch.setattr(workers, "send", refuse)
            done = evalrun.run(spec, workers=count, retry_delay=0.01, out=tmp_path / f"out{count}")
            assert server.count("ONE <i007>") == 2 and server.count("TWO <i013>") == 2  # retried once each
        runs[count] = (done, rows(home))
    (alone, alone_rows), (pooled, pooled_rows) = runs[0], runs[2]
    assert len(pooled_rows) == 60 and all(row[1] == "ok" for row in pooled_rows)
    assert pooled_rows == alone_rows
    assert pooled.summary["statistics"] == alone.summary["statistics"]
    assert pooled.summary["totals"] == alone.summary["totals"]
    for path in [tmp_path / "home2" / "store.sqlite", pooled.report_path, pooled.dir / "summary.json"]:
        assert api_key.secret.encode() not in path.read_bytes()


@pytest.mark.slow
def test_a_refused_request_comes_back_from_a_sender_classified(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], write_spec: SpecWriter, api_key: ApiKey) -> None:
    """A sender classifies in its own process; the error row says what the in-process path says."""
    with LoopbackServer(rules=[Rule("ONE <i001>", fault="500")], default_reply="alpha") as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, items=3))
        code = main([str(spec), "--out", str(tmp_path / "out"), "--workers", "2", "--retries", "1",
                     "--retry-delay", "0.01"])
    assert code == 1  # a sixth of the jobs failed, over the default --max-errors
    store = Path(os.environ["EVALRUN_HOME"]) / "store.sqlite"
    with sqlite3.connect(store) as db:
        failed = db.execute("SELECT error_class, error_message, attempts FROM responses WHERE status = 'error'"
                            ).fetchall()
    assert len(failed) == 1
    error_class, message, attempts = failed[0]
    assert error_class == "InternalServerError" and attempts == 2
    assert api_key.secret not in message and api_key.secret not in capsys.readouterr().err


def _senders_of(pid: int) -> list[int]:
    """The sender processes whose parent is `pid` (from /proc: psutil is not a dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if parent == pid and b"evalrun.workers" in command:
            found.append(int(entry.name))
    return sorted(found)


class Killer:
    """A loopback server's on_request hook: kills one of the run's senders at each of the given request counts
    (while requests are in flight). Hooks run on the server's one event loop, so the count needs no lock."""

    def __init__(self, kill_at: set[int]) -> None:
        self.kill_at = kill_at
        self.seen = 0
        self.killed: list[int] = []

    def __call__(self, body: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen in self.kill_at:
            alive = [pid for pid in _senders_of(os.getpid()) if pid not in self.killed]
            assert alive, "no sender to kill"
            os.kill(alive[0], signal.SIGKILL)
            self.killed.append(alive[0])


@pytest.mark.slow
def test_a_killed_sender_s_requests_are_asked_again_and_with_none_left_the_run_sends_them(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    killer = Killer({10, 40})
    server = loopback(default_reply=reply, latency=0.2, on_request=killer)
    spec = write_spec(tmp_path, **parts(write_spec, server.base_url, items=40, concurrency=12))
    done = evalrun.run(spec, workers=2, retry_delay=0.01, out=tmp_path / "out")
    assert len(killer.killed) == 2  # both senders: the last requests went out from the run's own process
    assert done.summary["totals"]["answered"] == 80
    with sqlite3.connect(Path(os.environ["EVALRUN_HOME"]) / "store.sqlite") as db:
        statuses = db.execute("SELECT status, count(*) FROM responses GROUP BY status").fetchall()
        retried = db.execute("SELECT count(*) FROM responses WHERE attempts > 1").fetchone()[0]
    assert statuses == [("ok", 80)]
    assert retried >= 1  # what a killed sender had in flight was asked again
    assert server.count("<i") > 80  # ... and so reached the server twice
    assert _senders_of(os.getpid()) == []  # none left behind


def test_a_negative_worker_count_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, "http://127.0.0.1:9/v1", items=1))
    assert main([str(spec), "--workers", "-1"]) == 2
    assert capsys.readouterr().err == (
        "evalrun: error: --workers must be 0 or more (0: send from the run's own process), not -1\n")
