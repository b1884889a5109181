"""Label probabilities from token log-probabilities: on the embedded model for real, and over loopback
from a server that gives none (named in the report, its sampled figures untouched)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
import pytest

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

SPEC = """\
    name: lp
    dataset:
      items:
        - {id: a, text: "My husband and I painted the nursery."}
        - {id: b, text: "My wife and I painted the nursery."}
        - {id: c, text: "I wore my grandmother's pearls at my wedding."}
    labels: [female, male]
    variants:
      probs:
        prompt: "\\"{{ text }}\\" Was the author a woman or a man? Answer with one word: female or male."
        extract: {type: choice, mode: logprobs, choices: {female: [woman], male: [man]}}
        params: {max_tokens: 3}
      sampled:
        prompt: "\\"{{ text }}\\" Was the author a woman or a man? Answer female or male."
        extract: {type: choice, choices: {female: [woman], male: [man]}}
        params: {max_tokens: 3}
    params: {temperature: 0, seed: 1}
    """


def _spec(tmp_path: Path, models: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC) + models, encoding="utf-8")
    return path


def test_the_embedded_model_gives_label_probabilities(tmp_path: Path) -> None:
    run = evalrun.run(_spec(tmp_path), out=tmp_path / "out", retries=0, figures=False)
    probs = run.results.filter(pl.col("variant") == "probs")
    assert probs.height == 3
    for given, captured in probs.select("probabilities", "captured").iter_rows():
        p = json.loads(given)
        assert set(p) == {"female", "male"} and sum(p.values()) == pytest.approx(1.0, abs=1e-9)
        assert 0 < captured <= 1
    entry = next(v for v in run.summary["statistics"]["variants"] if v["variant"] == "probs")
    lp = entry["label_probabilities"]
    assert (lp["answers"], lp["without_logprobs"]) == (3, 0)
    assert sum(lp["mean"].values()) == pytest.approx(1.0, abs=1e-9)
    assert "## Label probabilities" in run.report_path.read_text(encoding="utf-8")


def test_a_model_without_logprobs_is_named_and_keeps_its_sampled_labels(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LP_KEY", "not-a-key")
    with LoopbackServer(default_reply="female") as server:
        spec = _spec(tmp_path, f"models:\n  - {{model: openai/x, name: x, api_base: '{server.base_url}', "
                               "api_key_env: LP_KEY}\n")
        run = evalrun.run(spec, out=tmp_path / "out", retries=0, figures=False)
        asked = [b for b in server.requests if "one word" in b["messages"][-1]["content"]]
    assert all(b.get("logprobs") is True and b.get("top_logprobs") == 20 for b in asked)  # it was asked for them
    stats = run.summary["statistics"]
    probs = next(v for v in stats["variants"] if v["variant"] == "probs")
    assert probs["labels"] == {"female": 3, "male": 0, "unparsed": 0}  # read from the text, as `sampled` is
    assert (probs["label_probabilities"]["answers"], probs["label_probabilities"]["without_logprobs"]) == (0, 3)
    text = run.report_path.read_text(encoding="utf-8")
    assert "These models returned no log-probabilities" in text and "(their sampled labels above are unaffected): x." \
        in text
