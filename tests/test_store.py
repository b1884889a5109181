"""The response store and its keys: what makes two requests the same, and what survives a rerun."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from evalrun.jobs import request_key
from evalrun.spec import ModelConfig
from evalrun.store import Store, StoredResponse, home

MODEL = ModelConfig(model="openai/gpt-4o-mini", name="mini", api_base="http://127.0.0.1:1/v1")
MESSAGES = [{"role": "user", "content": "Tea or coffee?"}]
PARAMS: dict[str, object] = {"temperature": 0.7, "seed": 3}


def response(key: str, status: str = "ok", text: str | None = "tea") -> StoredResponse:
    return StoredResponse(key=key, model="openai/gpt-4o-mini", api_base=None, request="{}", status=status,
                          text=text if status == "ok" else None, finish_reason="stop", prompt_tokens=3,
                          completion_tokens=1, cost=None, latency=0.1, attempts=2 if status == "error" else 1,
                          error_class="RateLimitError" if status == "error" else None,
                          error_message="slow down" if status == "error" else None, created_at=time.time())


def test_key_covers_everything_that_determines_the_answer() -> None:
    base = request_key(MODEL, MESSAGES, PARAMS, 0)
    assert base == request_key(ModelConfig(model=MODEL.model, name="renamed", api_base=MODEL.api_base,
                                           concurrency=99, rpm=5), MESSAGES, dict(PARAMS), 0)  # limits don't count
    changed = [
        request_key(ModelConfig(model="openai/gpt-4o", name="mini", api_base=MODEL.api_base), MESSAGES, PARAMS, 0),
        request_key(ModelConfig(model=MODEL.model, name="mini", api_base="http://other/v1"), MESSAGES, PARAMS, 0),
        request_key(MODEL, [{"role": "user", "content": "Tea or coffee? "}], PARAMS, 0),
        request_key(MODEL, [{"role": "system", "content": "Be brief."}, *MESSAGES], PARAMS, 0),
        request_key(MODEL, MESSAGES, {**PARAMS, "temperature": 0.0}, 0),
        request_key(MODEL, MESSAGES, {**PARAMS, "seed": 4}, 0),
        request_key(MODEL, MESSAGES, PARAMS, 1),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_an_answer_replaces_a_failure_never_the_reverse(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.put(response("k", status="error"))
    assert store.get("k") is None  # failures are asked again
    store.put(response("k", text="coffee"))
    store.put(response("k", status="error"))
    stored = store.get("k")
    assert stored is not None and stored.text == "coffee" and stored.attempts == 1
    store.close()


def test_each_put_is_committed_at_once_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.put(response("k1"))
    # another connection (a later run, after a kill -9 of this one) sees the row without close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT key, text FROM responses").fetchall() == [("k1", "tea")]
    store.close()


def test_store_lives_under_evalrun_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "h"))
    store = Store()
    assert store.path == tmp_path / "h" / "store.sqlite" and store.path.is_file()
    store.close()
    monkeypatch.delenv("EVALRUN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert home() == tmp_path / "user" / ".evalrun"


def test_keys_from_credential_variables_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    # a key litellm picked up by itself (no api_key_env in the spec) must not survive either
    from evalrun.redact import environment_secrets, redact

    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "zz9-plural-z-alpha")
    monkeypatch.setenv("NOT_A_CREDENTIAL", "zz9-plural-z-alpha-visible")
    secrets = environment_secrets()
    assert "zz9-plural-z-alpha" in secrets
    assert "zz9-plural-z-alpha-visible" not in secrets
    assert redact("auth failed for zz9-plural-z-alpha", secrets) == "auth failed for [REDACTED]"
