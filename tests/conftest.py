"""Shared fixtures: every test gets its own evalrun home and litellm's bundled price list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def evalrun_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh EVALRUN_HOME per test, so no test reads or writes ~/.evalrun (or another test's store)."""
    home = tmp_path_factory.mktemp("evalrun-home")
    monkeypatch.setenv("EVALRUN_HOME", str(home))
    # litellm would otherwise fetch its model cost map over the network on import
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    yield home
