"""Release 0.1's files still work: its spec gives the same statistics, its store answers without a request.

The fixtures in tests/fixtures/legacy-0.1/ were written by release 0.1 itself (see make.py there),
over scripted answers; nothing expected here was produced by today's code.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from evalrun.cli import main
from evalrun.store import MIGRATIONS, Store

LEGACY = Path(__file__).parent / "fixtures" / "legacy-0.1"
sys.path.insert(0, str(LEGACY))
from scripted import API_BASE, reply  # noqa: E402

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer


def _spec(tmp_path: Path, api_base: str) -> Path:
    """The 0.1 gender spec, untouched, with one scripted model appended (as make.py did)."""
    shutil.copytree(LEGACY / "data", tmp_path / "data")
    spec = tmp_path / "gender.yaml"
    spec.write_text((LEGACY / "gender.yaml").read_text(encoding="utf-8")
                    + f"models:\n  - model: openai/scripted\n    name: scripted\n    api_base: {api_base}\n",
                    encoding="utf-8")
    return spec


def _kept(old: Any, new: Any) -> Any:
    """`new` cut down to the keys `old` has, recursively (lists item by item)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: _kept(v, new.get(k)) for k, v in old.items()}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_kept(o, n) for o, n in zip(old, new, strict=True)]
    return new


def _same(old: Any, new: Any) -> bool:
    """Equal, floats to 1e-12 relative: 0.1 computed Cohen's kappa in floating point, today it is the
    correctly rounded ratio of integers, which can differ in the 16th digit (and so can its interval)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_same(v, new[k]) for k, v in old.items())
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(o, n) for o, n in zip(old, new, strict=True))
    if isinstance(old, float) and isinstance(new, float):
        return new == pytest.approx(old, rel=1e-12, abs=1e-15)
    return bool(old == new) and type(old) is type(new)


def _summary(out: Path) -> dict:
    (path,) = out.glob("*/*/summary.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_release_01_spec_gives_the_same_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "not-a-key")
    with LoopbackServer(default_reply=reply) as server:
        spec = _spec(tmp_path, server.base_url)
        code = main([str(spec), "--out", str(tmp_path / "out"), "--samples", "2", "--retries", "0"])
    assert code == 0, capsys.readouterr().err
    summary = _summary(tmp_path / "out")
    expected = json.loads((LEGACY / "statistics.json").read_text(encoding="utf-8"))
    # every figure 0.1 reported is there, to the last digit; later releases only add figures beside them
    assert _same(expected, _kept(expected, summary["statistics"]))
    assert "design" not in summary["run"]  # no optional axis: the run reads as 0.1's did

    # the run record as release 0.1 wrote it (its cli.py's keys, in its order, no version) is reported again
    # and written back with only `version` added
    (path,) = (tmp_path / "out").glob("*/*/summary.json")
    old = {**summary, "run": {k: v for k, v in summary["run"].items() if k != "version"}}
    assert list(old["run"]) == RELEASE_01_RUN_KEYS
    path.write_text(json.dumps(old), encoding="utf-8")
    assert main(["report", str(path.parent)]) == 0, capsys.readouterr().err
    again = _summary(tmp_path / "out")
    assert list(again["run"].items()) == [("version", 1), *old["run"].items()]
    assert again["statistics"] == summary["statistics"]


RELEASE_01_RUN_KEYS = ["name", "description", "run_id", "spec_path", "spec_sha256", "dataset_source",
                       "dataset_sha256", "items", "labels", "variants", "compare", "has_gold", "models", "samples",
                       "params", "seed", "started", "duration_s", "versions"]


def test_a_release_01_store_is_migrated_and_answers_without_a_request(
        tmp_path: Path, evalrun_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "not-a-key")
    shutil.copy(LEGACY / "store.sqlite", evalrun_home / "store.sqlite")
    before = sqlite3.connect(evalrun_home / "store.sqlite").execute("PRAGMA user_version").fetchone()[0]
    assert before == 0  # 0.1 kept no version
    # nothing listens at the fixture's address: any request would fail, and the run would say so
    spec = _spec(tmp_path, API_BASE)
    code = main([str(spec), "--out", str(tmp_path / "out"), "--samples", "2", "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    totals = _summary(tmp_path / "out")["totals"]
    assert (totals["jobs"], totals["from_store"], totals["asked"], totals["failed"]) == (192, 192, 0, 0)
    db = sqlite3.connect(evalrun_home / "store.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    again = Store(path)
    assert again._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    again.close()
