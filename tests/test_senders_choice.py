"""Issue 24: how many sender processes a stage gets (a pure rule: workers.senders_for), an explicit --workers N
kept whatever the machine looks like, and the collector's thresholds while a stage runs."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun import runner, workers
from evalrun.dataset import load_dataset
from evalrun.design import Design
from evalrun.sendpath import RunOptions
from evalrun.spec import ModelConfig, load_spec
from evalrun.store import Store

if TYPE_CHECKING:
    from conftest import OneStage, Quiet, SpecWriter
    from loopback_server import LoopbackServer


def test_no_senders_for_a_stage_with_few_requests_in_flight() -> None:
    # one per PER_SENDER in flight, none rather than one
    assert [workers.senders_for(8, n) for n in (8, 50, 99, 100, 175, 1000)] == [0, 0, 0, 2, 3, 8]


def test_at_most_one_per_cpu_and_none_on_one_cpu() -> None:
    assert [workers.senders_for(cores, 1000) for cores in (1, 2, 3, 64)] == [0, 2, 3, 20]
    for cores in (1, 2, 4, 16):
        for pending in (0, 1, 100, 10_000):
            assert 0 <= workers.senders_for(cores, pending) <= cores


def test_the_default_counts_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert workers.auto_count(1000) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert workers.auto_count(1000) == 4


@pytest.mark.parametrize(("chosen", "expected"), [(None, 2), (0, 0), (1, 1)])
def test_an_explicit_worker_count_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: int | None, expected: int, quiet: Quiet,
        one_stage: OneStage) -> None:
    # 8 CPUs, where the default for 100 in flight is 2 senders
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    model = ModelConfig(model="openai/x", name="x", api_base="http://127.0.0.1:9/v1", concurrency=100)
    store = Store(tmp_path / "store.sqlite")
    ran = runner.Runner(store, RunOptions(workers=chosen), quiet)

    # no jobs: the stage decides its senders, and none starts since nothing is asked
    one_stage(ran, {model.name: iter([])}, [model])
    store.close()
    assert isinstance(ran.run.sender, workers.Senders)
    assert ran.run.sender.count == expected


def test_a_stage_collects_young_objects_rarely_and_restores_the_thresholds_after(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter, quiet: Quiet,
        one_stage: OneStage) -> None:
    """Issue 24: the run's process spent 10-16% of a --workers 0 run collecting litellm's short-lived objects."""
    server = loopback(default_reply="ok")
    spec = load_spec(write_spec(tmp_path, items=["i1", "i2"], models=[write_spec.model(server.base_url)]))
    design = Design(spec, load_dataset(spec))
    seen: list[tuple[int, int, int]] = []
    store = Store(tmp_path / "store.sqlite")
    ran = runner.Runner(store, RunOptions(workers=0), quiet, read=lambda outcome: seen.append(gc.get_threshold()))
    before = gc.get_threshold()

    one_stage(ran, {m.name: design.expand(only=m) for m in spec.models}, spec.models)
    store.close()
    assert len(seen) == 4 and set(seen) == {runner.STAGE_COLLECTION}  # each answer arrived under the stage's
    assert gc.get_threshold() == before != runner.STAGE_COLLECTION
