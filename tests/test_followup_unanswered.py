"""A run whose follow-up was never asked (every first answer failed) still gets its report, with no traceback.

The Summary quotes each compared pair's accuracies against the gold labels; the follow-up variant had no row
when its first answers all failed, and the report stopped on a KeyError (found with a server that refused
every connection, on the second run, once the model was no longer marked unreachable).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml

from evalrun.cli import main

EVALS = Path(__file__).resolve().parent.parent / "evals"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_followup_with_no_answers_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALRUN_TEST_KEY", "not-a-secret")
    shutil.copytree(EVALS / "data", tmp_path / "data")
    spec = yaml.safe_load((EVALS / "gender.yaml").read_text(encoding="utf-8"))
    assert any("followup" in v for v in spec["variants"].values()), "gender.yaml no longer has a follow-up"
    spec["models"] = [{"model": "openai/refused", "name": "refused", "api_key_env": "EVALRUN_TEST_KEY",
                       "api_base": f"http://127.0.0.1:{_closed_port()}/v1"}]
    spec["judge"] = "refused"
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    for _ in range(2):  # the second run finds the first's failures and asks again
        code = main(["g.yaml", "--limit", "2", "--retries", "0", "--no-figures"])
        err = capsys.readouterr().err
        assert code != 0 and "Traceback" not in err, err
    reports = sorted((tmp_path / "reports" / "gender").glob("*/report.md"))
    assert len(reports) == 2
    text = reports[-1].read_text(encoding="utf-8")
    assert "## Summary" in text and "story.followup" in text
