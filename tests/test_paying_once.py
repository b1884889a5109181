"""Issue 24, "paid twice inside one run": jobs of one run that send the same request (the same key) while
in flight together send it once, whether the requests go from the run's process or from sender processes.
Counted at a real loopback server on 127.0.0.1, whose latency keeps the duplicates in flight together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

JUDGE_MARK = "<<<BEGIN ANSWER>>>"  # the judge prompt's quote of the answer it reads


def _reply(body: dict) -> str:
    text = str(body.get("messages"))
    return "The story is about a woman.\nLABEL: a" if JUDGE_MARK in text else "the same story, whatever the item"


@pytest.mark.parametrize("workers", [0, 2])
def test_judges_of_identical_answers_send_one_request(
        workers: int, tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply=_reply, latency=0.2)
    # 8 items whose stories all come back the same; the judge's question names no item, so its 8 requests
    # are one request (one key), asked by 8 jobs at once (concurrency 8)
    story = {"prompt": "STORY <{{ id }}>", "extract": {"type": "choice", "choices": {"a": ["woman"], "b": ["man"]}},
             "readers": {"judge": {"type": "judge", "model": "loop", "question": "the main character's gender"}}}
    spec = write_spec(tmp_path, items=[f"i{n}" for n in range(8)], variants={"story": story, "direct": "DIRECT"},
                      models=[write_spec.model(server.base_url, concurrency=8)])
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, workers=workers, warn=lambda _: None)
    assert (server.count("STORY"), server.count("DIRECT")) == (8, 1)
    assert server.count(JUDGE_MARK) == 1
    assert run.summary["totals"]["failed"] == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_identical_items_send_one_request_per_distinct_key(
        workers: int, tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply="alpha", latency=0.2)
    # 6 items x 2 variants whose prompts name no item: 12 jobs, all in flight at once, of 2 distinct requests
    spec = write_spec(tmp_path, items=[f"i{n}" for n in range(6)], variants={"one": "ONE", "two": "TWO"},
                      models=[write_spec.model(server.base_url, concurrency=12)])
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, workers=workers, warn=lambda _: None)
    assert (server.count("ONE"), server.count("TWO")) == (1, 1)
    assert run.summary["totals"]["jobs"] == 12 and run.summary["totals"]["failed"] == 0
    assert run.results["label"].to_list() == ["a"] * 12
