"""The response store: every answer (or final error) in SQLite, written the moment it arrives.

Rows are keyed by the job's request hash (see `jobs.request_key`), so a rerun
asks only for what is missing, a changed prompt asks again for exactly the jobs
it changed, and two specs that send the same request share the answer. WAL mode
with one commit per row means a crash or `kill -9` loses nothing that had arrived.

Location: `$EVALRUN_HOME/store.sqlite`; when EVALRUN_HOME is unset or empty,
`~/.evalrun/store.sqlite`. `evalrun run --fresh` asks again and overwrites what it gets.
Only answers (status 'ok') are reused; a stored failure is asked again on the next run.
No API key is ever written here: requests and addresses are stored without credentials
and error messages are redacted before they reach `put`.

Runs sharing a store take a lease on a key before asking it (the `leases` table), so two runs
never pay twice for one request. The schema grows by append-only MIGRATIONS, counted in
`PRAGMA user_version`, so a store written by an earlier release keeps answering.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from .redact import redact_params, redact_url

# Append-only: a store records the migrations it has had, and each opening applies the ones it lacks,
# in order. Never edit or reorder an entry once released; add a new one. The first is release 0.1's
# table exactly as it was created then, so a store written by 0.1 takes it as already applied.
MIGRATIONS: list[tuple[str, str]] = [
    ("001_responses", """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    api_base TEXT,
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    text TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    latency REAL,
    attempts INTEGER NOT NULL,
    error_class TEXT,
    error_message TEXT,
    created_at REAL NOT NULL
);
"""),
    # A run takes a lease on a request's key before sending it, so a second run on the same store waits
    # for that answer instead of paying for it again; `expires` lets a killed owner's leases lapse.
    ("002_leases", """
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""),
    # token log-probabilities (JSON, OpenAI's per-token shape), when the request asked for them
    ("003_logprobs", """
ALTER TABLE responses ADD COLUMN logprobs TEXT;
"""),
    # `evalrun run --batch`: each batch's input file as soon as it is uploaded, with the request keys it covers,
    # then the provider's batch id as soon as the batch exists (a run killed between the two finds the batch
    # by its input file), so a killed run polls its batches again instead of paying for them twice.
    # `collected` is set once every line of the batch's output and error files is in `responses`.
    ("004_batches", """
CREATE TABLE IF NOT EXISTS batches (
    input_file_id TEXT PRIMARY KEY,
    id TEXT UNIQUE,
    model TEXT NOT NULL,
    api_base TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch_requests (
    input_file_id TEXT NOT NULL REFERENCES batches (input_file_id),
    key TEXT NOT NULL,
    PRIMARY KEY (input_file_id, key)
);
CREATE INDEX IF NOT EXISTS batch_requests_key ON batch_requests (key);
"""),
    # `evalrun annotate`: a person's label of one answer (`answer_key`: its request key and text), so it
    # serves every later run that gets the same answer; one label per answer and person, the latest kept.
    # `label` is one of the spec's labels or "unclear"; `at` is UTC, ISO 8601.
    ("005_human_labels", """
CREATE TABLE IF NOT EXISTS human_labels (
    answer_key TEXT NOT NULL,
    label TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (answer_key, who)
);
"""),
]

# the user_version from which a store has the human_labels table
_HUMAN_LABELS = [name for name, _ in MIGRATIONS].index("005_human_labels") + 1
UNCLEAR = "unclear"  # a person's label for an answer they cannot place under any of the spec's labels


def home() -> Path:
    return Path(os.environ.get("EVALRUN_HOME") or Path.home() / ".evalrun")


@dataclass(frozen=True)
class StoredResponse:
    key: str
    model: str
    api_base: str | None
    request: str  # JSON of messages and parameters, without credentials
    status: str  # "ok" or "error"
    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    latency: float | None
    attempts: int
    error_class: str | None
    error_message: str | None
    created_at: float
    logprobs: str | None = None  # JSON: one entry per generated token, with its top alternatives


@dataclass(frozen=True)
class HumanLabel:
    """A person's label of one answer (`evalrun annotate`)."""

    answer_key: str  # `answer_key(request key, answer text)`
    label: str  # one of the spec's labels, or UNCLEAR
    who: str
    at: str  # when it was given: UTC, ISO 8601


def answer_key(request_key: str, text: str) -> str:
    """What a human label is keyed by: the request and the answer's text. The request key alone would pass a
    label on to a different answer after `--fresh` asked again; with the text, it follows that answer only."""
    return hashlib.sha256(f"{request_key}\0{text}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredBatch:
    """A provider batch (`evalrun run --batch`) as recorded: its input file once uploaded, its id once created."""

    input_file_id: str
    id: str | None  # the provider's batch id; None until the provider has created the batch
    model: str  # the litellm model string its requests were for
    api_base: str | None
    status: str  # "uploaded" until created, then the provider's word: in_progress, completed, expired, ...
    created_at: float


_COLUMNS = [f.name for f in fields(StoredResponse)]
_SELECT_OK = f"SELECT {', '.join(_COLUMNS)} FROM responses WHERE key = ? AND status = 'ok'"
# An earlier failure is replaced by a later answer, never the other way round.
_UPSERT = (f"INSERT INTO responses ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
           "ON CONFLICT(key) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "key")
           + " WHERE responses.status = 'error' OR excluded.status = 'ok'")


BUSY_SECONDS = 10.0  # how long two runs sharing a store wait for each other's writes before failing


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the store to WAL (a no-op once it is: the mode is kept in the file), retrying while other
    processes create or switch the same new store. SQLite refuses the switch at once with "database is
    locked", without calling its busy handler (waiting there could deadlock), when another connection holds
    a lock on the file, so no busy timeout covers it. Retrying is portable and needs no lock file beside
    the store, which locking the creation would (and every opening would have to take that lock too)."""
    deadline, pause = time.monotonic() + BUSY_SECONDS, 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.1)


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "store.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the busy timeout: two runs sharing a store wait for each other's writes (migrations too), not fail
        self._db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        _use_wal(self._db)
        # NORMAL under WAL survives a killed process (the kind of crash we guard against) at a
        # fraction of FULL's fsync cost; only an OS crash could lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)

    def get(self, key: str) -> StoredResponse | None:
        """The stored successful answer for this request, if any (failures are asked again)."""
        row = self._db.execute(_SELECT_OK, (key,)).fetchone()
        return StoredResponse(*row) if row else None

    def put(self, response: StoredResponse) -> None:
        """Write one response and commit it (autocommit): about 0.1 ms, durable against kill -9. Its address
        is stored without credentials (`http://user:PW@host`, `?api-key=`), as everything else here is."""
        self._db.execute(_UPSERT, [redact_url(response.api_base) if c == "api_base" else getattr(response, c)
                                   for c in _COLUMNS])

    def lease(self, key: str, owner: str, seconds: float) -> bool:
        """Take the lease on a request's key for `seconds`; False while a live lease holds it, even `owner`'s own:
        the holder is asking that request now, so a second asker (of any run) waits for its answer."""
        now = time.time()
        taken = self._db.execute(
            "INSERT INTO leases (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "owner = excluded.owner, expires = excluded.expires WHERE leases.expires < ?",
            (key, owner, now + seconds, now))
        return taken.rowcount == 1

    def renew(self, owner: str, seconds: float) -> None:
        """Extend every lease `owner` holds: its requests are still in flight."""
        self._db.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + seconds, owner))

    def release(self, key: str, owner: str) -> None:
        self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def release_all(self, owner: str) -> None:
        """Give up every lease `owner` holds (its run is ending), so another run need not wait for them to lapse."""
        self._db.execute("DELETE FROM leases WHERE owner = ?", (owner,))

    def add_batch(self, batch: StoredBatch, keys: list[str]) -> None:
        """Record an uploaded batch input file, with the request keys it covers (one transaction)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT INTO batches (input_file_id, id, model, api_base, status, created_at, updated_at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", (batch.input_file_id, batch.id, batch.model,
                                                              redact_url(batch.api_base), batch.status,
                                                              batch.created_at, batch.created_at))
            self._db.executemany("INSERT OR IGNORE INTO batch_requests (input_file_id, key) VALUES (?, ?)",
                                 [(batch.input_file_id, key) for key in keys])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def batch_created(self, input_file_id: str, batch_id: str, status: str) -> None:
        """The provider created the batch of this input file: its id, the moment it is known."""
        self._db.execute("UPDATE batches SET id = ?, status = ?, updated_at = ? WHERE input_file_id = ?",
                         (batch_id, status, time.time(), input_file_id))

    def batch_status(self, input_file_id: str, status: str, collected: bool = False) -> None:
        """A batch's latest status at the provider; `collected` once its answers are all stored."""
        self._db.execute("UPDATE batches SET status = ?, updated_at = ?, collected = ? WHERE input_file_id = ?",
                         (status, time.time(), int(collected), input_file_id))

    def open_batches(self, model: str, api_base: str | None) -> list[tuple[StoredBatch, set[str]]]:
        """The model's batches whose answers are not all stored yet, oldest first, each with its keys."""
        rows = self._db.execute("SELECT input_file_id, id, model, api_base, status, created_at FROM batches "
                                "WHERE model = ? AND api_base IS ? AND collected = 0 ORDER BY created_at",
                                (model, redact_url(api_base))).fetchall()
        return [(StoredBatch(*row), {key for (key,) in self._db.execute(
            "SELECT key FROM batch_requests WHERE input_file_id = ?", (row[0],))}) for row in rows]

    def put_label(self, label: HumanLabel) -> None:
        """Store a person's label of an answer (committed at once), replacing that person's earlier one."""
        self._db.execute("INSERT OR REPLACE INTO human_labels (answer_key, label, who, at) VALUES (?, ?, ?, ?)",
                         (label.answer_key, label.label, label.who, label.at))

    def labels(self, answer_keys: Iterable[str], who: str | None = None) -> list[HumanLabel]:
        """The human labels of these answers (of one person, or of everyone), by answer and person."""
        wanted = sorted(set(answer_keys))
        found: list[HumanLabel] = []
        for start in range(0, len(wanted), 500):  # under SQLite's limit on a statement's parameters
            chunk = wanted[start:start + 500]
            query = (f"SELECT answer_key, label, who, at FROM human_labels WHERE answer_key IN "
                     f"({', '.join('?' for _ in chunk)})")
            args: list[str] = chunk
            if who is not None:
                query, args = query + " AND who = ?", [*chunk, who]
            found.extend(HumanLabel(*row) for row in self._db.execute(query, args))
        return sorted(found, key=lambda h: (h.answer_key, h.who))

    def __iter__(self) -> Iterator[StoredResponse]:
        for row in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM responses ORDER BY created_at"):
            yield StoredResponse(*row)

    def close(self) -> None:
        self._db.close()


def read_labels(path: Path | None = None) -> list[HumanLabel]:
    """Every human label in the store at `path` (default: the user's; a few per answer a person read, so
    few), opened read-only so that rendering a report never creates or migrates a store; none when there is
    no store, or one that predates human labels."""
    path = path or home() / "store.sqlite"
    if not path.is_file():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] < _HUMAN_LABELS:
            return []
        return [HumanLabel(*row) for row in
                db.execute("SELECT answer_key, label, who, at FROM human_labels ORDER BY answer_key, who")]
    finally:
        db.close()


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this store lacks, each in its own transaction; returns their names.

    `PRAGMA user_version` holds how many have been applied, so two processes opening the same store
    at once cannot both apply one: the second waits for the first's write lock, then sees the count.
    """
    applied = []
    for number, (name, sql) in enumerate(MIGRATIONS, start=1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                db.execute("ROLLBACK")
                continue
            for statement in sql.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def request_json(messages: list[dict[str, str]], params: dict[str, object]) -> str:
    """A request as stored beside its answer. Validation refuses credentials in a spec's params; redacting
    here too keeps a key out of the store should one arrive some other way (the Python API, a new code path)."""
    return json.dumps({"messages": messages, "params": redact_params(params)}, sort_keys=True, default=str)
