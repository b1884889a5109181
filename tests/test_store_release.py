"""Issue 24: an answer and the release of its lease in one commit, seen at once by another connection."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from evalrun.store import Store, StoredResponse


def response(key: str, api_base: str | None = None) -> StoredResponse:
    return StoredResponse(key=key, model="openai/x", api_base=api_base, request="{}", status="ok", text="tea",
                          finish_reason="stop", prompt_tokens=3, completion_tokens=1, cost=None, latency=0.1,
                          attempts=1, error_class=None, error_message=None, created_at=time.time())


def test_an_answer_stored_with_its_lease_released_is_committed_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert store.lease("k1", "run-a", 30.0) and store.lease("k2", "run-a", 30.0)
    store.put(response("k1", api_base="http://user:secret@127.0.0.1:1/v1"), release="run-a")
    # another connection (a later run, after a kill -9 of this one) sees the answer, and the lease gone with it
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT key, text, api_base FROM responses").fetchall() == [
            ("k1", "tea", "http://127.0.0.1:1/v1")]
        assert db.execute("SELECT key FROM leases").fetchall() == [("k2",)]  # the other key's lease is kept
    assert store.lease("k1", "run-b", 30.0)  # free for another run at once, not after the lease lapses
    store.close()


def test_only_the_owner_s_lease_is_released(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert store.lease("k", "run-a", 30.0)
    store.put(response("k"), release="run-b")  # run-b never held it: run-a's lease stays
    assert not store.lease("k", "run-c", 30.0)
    assert store.get("k") is not None
    store.close()
