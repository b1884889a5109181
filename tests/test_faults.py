"""Faults over real HTTP: `evalrun run` in-process against a loopback server that misbehaves on cue.

Every job must end answered or recorded as failed, each stored `attempts` must equal the
requests the server saw for that job (so nothing completed is asked twice), Retry-After must
be waited for, and only retryable errors are retried. Delays and timeouts are tiny.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

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


@pytest.fixture
def server(loopback: Callable[..., LoopbackServer]) -> LoopbackServer:
    return loopback(list(FAULTS.values()), default_reply="fine")


# the spec's parts, for conftest's write_spec: both variants read "fine" as good
SPEC = {"name": "faults", "items": list(FAULTS), "labels": ["good", "other"],
        "extract": {"type": "choice", "choices": {"good": ["fine"], "other": ["zzz"]}}}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Path, str]:
    capsys.readouterr()
    code = main([*args, "--retries", str(RETRIES), "--retry-delay", "0.01"])
    out, err = capsys.readouterr()
    assert out.strip(), err
    return code, Path(out.strip().splitlines()[-1]), err


def test_every_fault_ends_answered_or_failed_and_nothing_is_asked_twice(
        tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str],
        write_spec: SpecWriter, evalrun_home: Path) -> None:
    spec = write_spec(tmp_path, models=[write_spec.model(server.base_url, concurrency=4, timeout=0.5)], **SPEC)
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
    for at, text in server.arrived:
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
    assert {text.split(" ")[1] for _, text in server.arrived[before:]} == {"<dead>"}


def test_request_errors_are_not_retried(
        tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str],
        write_spec: SpecWriter, api_key: ApiKey, evalrun_home: Path) -> None:
    # a wrong path answers 404 (NotFoundError): asking again would fail the same way
    spec = write_spec(tmp_path, models=[write_spec.model(server.base_url + "/missing", name="wrong", concurrency=4,
                                                         timeout=0.5)], **SPEC)
    code, report, err = run(capsys, str(spec), "--out", str(tmp_path / "out"))
    assert code == 1
    frame = pl.read_parquet(report.parent / "results.parquet")
    assert frame.height == 16
    assert set(frame["error_class"].to_list()) == {"NotFoundError"}
    assert set(frame["attempts"].to_list()) == {1}
    assert server.requests == []
    assert all("404" in m and api_key.secret not in m for m in frame["error_message"].to_list())
    assert api_key.secret not in err and api_key.secret not in report.read_text(encoding="utf-8")
