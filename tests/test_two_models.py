"""Issue 11's done-when, at small scale: the gender spec run on the embedded model and a loopback
server named on the command line (`--model openai/NAME@ADDRESS`) gives every figure per model and
the model comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

GENDER = Path(__file__).resolve().parents[1] / "evals" / "gender.yaml"


@pytest.mark.slow
def test_gender_on_the_embedded_model_and_a_loopback_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "loopback")  # litellm's openai provider wants one; the server ignores it
    with LoopbackServer(default_reply=lambda body: "female. She kept her notes and she smiled.") as server:
        loopback = f"openai/loopback@{server.base_url}"
        code = main(["run", str(GENDER), "--model", "evalrun/smollm2", "--model", loopback, "--limit", "2",
                     "--out", str(tmp_path)])
        asked = len(server.requests)
    out, err = capsys.readouterr()
    assert code in (0, 1), err  # 1: SmolLM2's judge leaves many stories unparsed, an error share over the limit
    report = Path(out.strip().splitlines()[-1])
    summary = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
    models = {m["name"]: m for m in summary["run"]["models"]}
    assert models["openai/loopback"]["api_base"] == server.base_url
    # 2 items: 2 wordings x 2 orders of the direct question, a story and its follow-up, per item
    assert asked == 2 * (4 + 1 + 1)
    text = report.read_text(encoding="utf-8")
    assert "## Models ranked" in text and "## Models compared" in text
    assert "| direct | evalrun/smollm2 vs openai/loopback |" in text
    # the loopback model answers one label only: its kappa is undefined, so it is listed unranked
    ranked = [line.split(" | ")[1:3] for line in text.splitlines() if line.startswith("| direct vs story | ")]
    assert ranked[-1] == ["-", "openai/loopback"]
    linked = {line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")}
    on_disk = {p.relative_to(report.parent).as_posix() for p in (report.parent / "figures").glob("*.png")}
    assert linked == on_disk
    for model in ("evalrun-smollm2", "openai-loopback"):
        assert f"figures/confusion-{model}-direct-story.png" in on_disk
    assert {"figures/kappa.png", "figures/labels.png", "figures/accuracy.png", "figures/position-bias.png"} <= on_disk
