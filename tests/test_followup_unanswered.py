"""A run whose follow-up was never asked (every first answer failed) still gets its report, with no traceback.

The Summary quotes each compared pair's accuracies against the gold labels; the follow-up variant had no row
when its first answers all failed (a server error, not an unreachable model, whose figures the Summary leaves
out), and the report stopped on a KeyError.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from loopback_server import LoopbackServer, Rule

from evalrun.cli import main

EVALS = Path(__file__).resolve().parent.parent / "evals"


def test_followup_with_no_answers_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str],
                                              loopback: Callable[..., LoopbackServer]) -> None:
    # every story request fails with a 500, so the follow-up is never asked; the direct question answers
    server = loopback([Rule("main character", fault="500"), Rule("same gender as the person", fault="500")],
                      default_reply="female")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALRUN_TEST_KEY", "not-a-secret")
    shutil.copytree(EVALS / "data", tmp_path / "data")
    spec = yaml.safe_load((EVALS / "gender.yaml").read_text(encoding="utf-8"))
    assert any("followup" in v for v in spec["variants"].values()), "gender.yaml no longer has a follow-up"
    spec["models"] = [{"model": "openai/loop", "name": "loop", "api_key_env": "EVALRUN_TEST_KEY",
                       "api_base": server.base_url}]
    spec["judge"] = "loop"
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    for _ in range(2):  # the second run asks the failed requests again
        code = main(["g.yaml", "--limit", "2", "--retries", "0", "--no-figures"])
        err = capsys.readouterr().err
        assert code != 0 and "Traceback" not in err, err
    reports = sorted((tmp_path / "reports" / "gender").glob("*/report.md"))
    assert len(reports) == 2
    text = reports[-1].read_text(encoding="utf-8")
    assert "## Summary" in text and "story.followup" in text
