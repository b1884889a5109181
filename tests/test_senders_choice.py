"""Issue 24: how many sender processes a stage gets follows the CPU other work leaves free, and an explicit
--workers N is kept whatever the machine looks like."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from evalrun import runner, workers
from evalrun.sendpath import Outcome, RunOptions
from evalrun.spec import ModelConfig
from evalrun.store import Store


def test_no_senders_when_less_than_two_cores_are_free() -> None:
    # 2 CPUs: idle, two senders; a quarter-busy machine still rounds to 2 free cores; from one busy core on, none
    assert [workers.senders_for(2, load, 100) for load in (0.0, 0.4, 0.6, 1.0, 2.5, 6.0)] == [2, 2, 0, 0, 0, 0]
    # 8 CPUs with 5.2 cores busy: 3 free, so 3 senders however many requests could use more
    assert workers.senders_for(8, 5.2, 1000) == 3
    assert workers.senders_for(8, 7.0, 1000) == 0


def test_no_senders_for_a_stage_with_few_requests_in_flight() -> None:
    # one per PER_SENDER in flight, none rather than one
    assert [workers.senders_for(8, 0.0, n) for n in (8, 50, 99, 100, 175, 1000)] == [0, 0, 0, 2, 3, 8]


def test_the_count_never_exceeds_the_cpus_or_goes_negative() -> None:
    for cores in (1, 2, 4, 16):
        for load in (0.0, 0.5, 3.0, 40.0):
            for pending in (0, 1, 100, 10_000):
                assert 0 <= workers.senders_for(cores, load, pending) <= cores
    assert workers.senders_for(1, 0.0, 10_000) == 0  # one CPU: a sender could only take the run's own core


def test_the_default_reads_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 3.0, 3.0))  # the last minute counts, not the last 15
    assert workers.auto_count(200) == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (3.1, 0.0, 0.0))
    assert workers.auto_count(200) == 0


@pytest.mark.parametrize(("chosen", "expected"), [(None, 2), (0, 0), (1, 1)])
def test_an_explicit_worker_count_is_kept_on_an_idle_machine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: int | None, expected: int) -> None:
    # an idle machine of 8 CPUs, where the default for 100 in flight is 2 senders
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    model = ModelConfig(model="openai/x", name="x", api_base="http://127.0.0.1:9/v1", concurrency=100)
    store = Store(tmp_path / "store.sqlite")
    ran = runner.Runner(store, RunOptions(workers=chosen), Quiet())

    async def stage() -> None:
        try:  # no jobs: the stage decides its senders, and none starts since nothing is asked
            await ran.stage({model.name: iter([])}, [model])
        finally:
            await ran.close()

    asyncio.run(stage())
    store.close()
    assert isinstance(ran.run.sender, workers.Senders)
    assert ran.run.sender.count == expected


class Quiet:
    def finished(self, outcome: Outcome) -> None:
        pass

    def retrying(self, model: str, error: object) -> None:
        pass

    def gave_up(self, model: str, message: str) -> None:
        pass
