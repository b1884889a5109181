"""Issue 24 item 5: processes opening one new store at once all get it ("database is locked" came from the
switch to WAL: 12 of 20 starts from two processes, 20 of 40 from three)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from evalrun.store import MIGRATIONS, Store

PROCESSES, STARTS = 4, 10


def _open(path: Path, barrier: Barrier, outcomes: multiprocessing.Queue) -> None:
    barrier.wait()  # every process opens the store at the same moment
    try:
        Store(path).close()
    except Exception as exc:  # reported to the test, which names it
        outcomes.put(repr(exc))
    else:
        outcomes.put("opened")


def _complete(path: Path) -> None:
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


def test_processes_racing_to_create_a_store_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as separate `evalrun run`s are
    outcomes: multiprocessing.Queue = context.Queue()
    seen = []
    for start in range(STARTS):
        path = tmp_path / f"home-{start}" / "store.sqlite"
        barrier = context.Barrier(PROCESSES)
        processes = [context.Process(target=_open, args=(path, barrier, outcomes)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        seen += [outcomes.get() for _ in processes]
        for process in processes:
            process.join()
        _complete(path)
    assert [outcome for outcome in seen if outcome != "opened"] == []


def test_a_store_opened_while_another_process_holds_the_new_file_waits_for_it(tmp_path: Path) -> None:
    # the race above made certain: another connection holds the new file's write lock (as a process switching
    # it to WAL or applying the first migration does) while this one opens the store
    path = tmp_path / "store.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    outcome: list[str] = []

    def open_store() -> None:
        try:
            Store(path).close()
        except sqlite3.Error as exc:
            outcome.append(repr(exc))
        else:
            outcome.append("opened")

    opener = threading.Thread(target=open_store)
    opener.start()
    time.sleep(0.3)  # time for the opener to meet the lock (on main it then fails at once)
    holder.execute("COMMIT")
    holder.close()
    opener.join()
    assert outcome == ["opened"]
    _complete(path)
