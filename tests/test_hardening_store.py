"""Issue 14, the store: two runs sharing one store never pay twice for a request (a lease on its key, which
lapses if its owner dies), and no credential reaches a stored request."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun.store import MIGRATIONS, Store, request_json

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter


def test_the_lease_migration_is_appended_and_applied(tmp_path: Path) -> None:
    assert [name for name, _ in MIGRATIONS][:2] == ["001_responses", "002_leases"]
    Store(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [row[1] for row in db.execute("PRAGMA table_info(leases)")] == ["key", "owner", "expires"]


def test_a_lease_is_held_renewed_released_and_lapses(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")  # two runs, two connections
    assert first.lease("k", "run-1", 30)
    assert not second.lease("k", "run-2", 30)  # held by a live owner
    assert not first.lease("k", "run-1", 30)  # not even by its owner: one request per key per store (issue 24.1)
    first.release("k", "run-1")
    assert second.lease("k", "run-2", 30)  # released: free
    assert not first.lease("k", "run-1", 30)
    assert second.lease("dead", "run-2", -1)  # a lease whose owner stopped renewing it...
    assert first.lease("dead", "run-1", 30)  # ...lapses, and another run may ask
    second.renew("run-2", -1)  # renewal moves every lease of one owner
    assert first.lease("k", "run-1", 30)
    first.release_all("run-1")
    assert second.lease("k", "run-2", 30) and second.lease("dead", "run-2", 30)
    first.close()
    second.close()


def test_a_stored_request_never_holds_a_credential() -> None:
    stored = json.loads(request_json([{"role": "user", "content": "hi"}],
                                     {"api_key": "sk-abcdefghijklmnopqrst", "temperature": 0,
                                      "extra_headers": {"Authorization": "Bearer abcdefghijklmnop"}}))
    assert stored["params"] == {"api_key": "[REDACTED]", "temperature": 0,
                                "extra_headers": {"Authorization": "[REDACTED]"}}


@pytest.mark.slow
def test_two_runs_started_together_on_one_store_ask_each_request_once(tmp_path: Path, evalrun_home: Path,
                                                                     write_spec: SpecWriter, api_key: ApiKey) -> None:
    items = 12
    with LoopbackServer(default_reply="sure", latency=0.3) as server:
        model = {"model": "openai/loop", "api_base": server.base_url, "api_key_env": api_key.env, "concurrency": 4}
        spec = write_spec(tmp_path, name="shared", inline=True, labels=["agree", "refuse"],
                          items=[{"id": f"i{n:02d}", "text": f"text {n}"} for n in range(items)],
                          variants={"a": "A <{{ id }}> {{ text }}", "b": "B <{{ id }}> {{ text }}"},
                          extract={"type": "choice", "choices": {"agree": ["sure"], "refuse": ["never"]}},
                          models=[model], samples=2, params={"max_tokens": 5})
        env = {**os.environ, "EVALRUN_HOME": str(evalrun_home)}
        # two processes, as two terminals would start them: each imports litellm (seconds) before its first request
        runs = [subprocess.Popen([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(tmp_path / out)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for out in ("one", "two")]
        outputs = [run.communicate(timeout=180) for run in runs]
        asked = Counter((b["messages"][-1]["content"], b["seed"]) for b in server.requests)
    jobs = items * 2 * 2
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert len(asked) == jobs and set(asked.values()) == {1}, [k for k, n in asked.items() if n > 1]
    summaries = [json.loads(next((tmp_path / out).rglob("summary.json")).read_text()) for out in ("one", "two")]
    assert all(s["totals"]["answered"] == jobs for s in summaries)
    # what one asked the other took from the store, waiting for it when it was in flight (release 0.1's two
    # runs, started together like these, each sent all 48)
    asked_by = [s["totals"]["asked"] for s in summaries]
    assert sum(asked_by) == jobs, asked_by
    assert sqlite3.connect(evalrun_home / "store.sqlite").execute("SELECT COUNT(*) FROM leases").fetchone() == (0,)
