"""Faults over real HTTP: `evalrun run` in-process against a loopback server that misbehaves on cue.

Every job must end answered or recorded as failed, each stored `attempts` must equal the
requests the server saw for that job (so nothing completed is asked twice), Retry-After must
be waited for, and only retryable errors are retried. Delays and timeouts are tiny.
"""

from __future__ import annotations

import itertools
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from aiohttp import web

from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule, message_text
except ImportError:
    from loopback_server import LoopbackServer, Rule, message_text

KEY_ENV = "EVALRUN_FAULTS_KEY"
SECRET = "sk-faults-Xy8TOPSECRETVALUE42"
RETRY_AFTER = 0.4
# item -> what the server does to the first requests that mention it (both variants share a rule)
FAULTS: dict[str, Rule] = {
    "ok1": Rule("<ok1>", reply="fine"),
    "ok2": Rule("<ok2>", reply="fine"),
    "r429": Rule("<r429>", fault="429", times=2, retry_after=RETRY_AFTER),
    "r500": Rule("<r500>", fault="500", times=2),
    "hang": Rule("<hang>", fault="hang", times=1),
    "drop": Rule("<drop>", fault="drop", times=2),
    "malformed": Rule("<malformed>", fault="malformed", times=1),
    "dead": Rule("<dead>", fault="500"),  # never recovers: fails for good after every retry
}
RETRIES = 3


class TimedServer(LoopbackServer):
    """The loopback server, also noting when each request arrived (for Retry-After)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.arrivals: list[tuple[float, str]] = []

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.arrivals.append((time.monotonic(), message_text(body)))
        return await super()._handle_chat(request)


@pytest.fixture
def server() -> Iterator[TimedServer]:
    with TimedServer(list(FAULTS.values()), default_reply="fine") as s:
        yield s


def write_spec(folder: Path, models: str) -> Path:
    (folder / "items.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in FAULTS), encoding="utf-8")
    spec = folder / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        name: faults
        dataset: {path: items.jsonl}
        labels: [good, other]
        variants:
          one: {prompt: "ONE <{{ id }}>", extract: {type: choice, choices: {good: [fine], other: [zzz]}}}
          two: {prompt: "TWO <{{ id }}>", extract: {type: choice, choices: {good: [fine], other: [zzz]}}}
        models:
        """) + models, encoding="utf-8")
    return spec


def model_entry(base: str, name: str = "loop", concurrency: int = 4) -> str:
    return (f"  - {{model: openai/loop, name: {name}, api_base: '{base}', api_key_env: {KEY_ENV}, "
            f"concurrency: {concurrency}, timeout: 0.5}}\n")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Path, str]:
    capsys.readouterr()
    code = main([*args, "--retries", str(RETRIES), "--retry-delay", "0.01"])
    out, err = capsys.readouterr()
    assert out.strip(), err
    return code, Path(out.strip().splitlines()[-1]), err


def test_every_fault_ends_answered_or_failed_and_nothing_is_asked_twice(
        tmp_path: Path, server: TimedServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, evalrun_home: Path) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = write_spec(tmp_path, model_entry(server.base_url))
    code, report, err = run(capsys, str(spec), "--out", str(tmp_path / "out"))

    # 2 of 16 jobs (the dead item's) failed: more than the default --max-errors 0.1
    assert code == 1
    assert "2 of 16 jobs failed (more than --max-errors 0.1)" in err
    frame = pl.read_parquet(report.parent / "results.parquet")
    assert frame.height == 16
    for row in frame.iter_rows(named=True):
        tag = f"{row['variant'].upper()} <{row['item_id']}>"
        # the server saw exactly as many requests for this job as the store says were made
        assert server.count(tag) == row["attempts"], row
        if row["item_id"] == "dead":
            assert row["error_class"] == "InternalServerError" and row["attempts"] == RETRIES + 1
            assert row["label"] is None
        else:
            assert row["error_class"] is None and row["label"] == "good", row
    by_item = {item: frame.filter(pl.col("item_id") == item)["attempts"].sum() for item in FAULTS}
    # each rule's faults were all absorbed by retries: one extra attempt per fault served
    assert by_item == {"ok1": 2, "ok2": 2, "r429": 4, "r500": 4, "hang": 3, "drop": 4, "malformed": 3,
                       "dead": 2 * (RETRIES + 1)}

    # Retry-After was honoured: a job's retry after a 429 came no sooner than the server asked
    times: dict[str, list[float]] = {}
    for at, text in server.arrivals:
        if "<r429>" in text:
            times.setdefault(text, []).append(at)
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(ts)]
    assert gaps and min(gaps) >= RETRY_AFTER - 0.02

    text = report.read_text(encoding="utf-8")
    assert "## Failed jobs (2)" in text and "| dead/one/loop/0 | InternalServerError | 4 |" in text
    summary = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
    assert (summary["totals"]["answered"], summary["totals"]["failed"]) == (14, 2)
    assert "retries" in err  # the progress line counts them

    # a rerun asks again only for what failed
    before = len(server.requests)
    code, report, _ = run(capsys, str(spec), "--out", str(tmp_path / "out"), "--max-errors", "0.2")
    assert code == 0  # 2/16 = 0.125 is within 0.2
    assert len(server.requests) - before == 2 * (RETRIES + 1)
    assert {text.split(" ")[1] for _, text in server.arrivals[before:]} == {"<dead>"}


def test_request_errors_are_not_retried(
        tmp_path: Path, server: TimedServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, evalrun_home: Path) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    # a wrong path answers 404 (NotFoundError): asking again would fail the same way
    spec = write_spec(tmp_path, model_entry(server.base_url + "/missing", name="wrong"))
    code, report, err = run(capsys, str(spec), "--out", str(tmp_path / "out"))
    assert code == 1
    frame = pl.read_parquet(report.parent / "results.parquet")
    assert frame.height == 16
    assert set(frame["error_class"].to_list()) == {"NotFoundError"}
    assert set(frame["attempts"].to_list()) == {1}
    assert server.requests == []
    assert all("404" in m and SECRET not in m for m in frame["error_message"].to_list())
    assert SECRET not in err and SECRET not in report.read_text(encoding="utf-8")
