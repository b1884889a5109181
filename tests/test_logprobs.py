"""Label probabilities from token log-probabilities: on the embedded model for real, and over loopback
from a server that gives none (named in the report, its sampled figures untouched)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

WOMAN_OR_MAN = {"female": ["woman"], "male": ["man"]}
# conftest's write_spec's parts: one question read from log-probabilities, one from the sampled answer
SPEC: dict[str, Any] = {
    "name": "lp", "inline": True, "labels": ["female", "male"],
    "items": [{"id": "a", "text": "My husband and I painted the nursery."},
              {"id": "b", "text": "My wife and I painted the nursery."},
              {"id": "c", "text": "I wore my grandmother's pearls at my wedding."}],
    "variants": {
        "probs": {"prompt": '"{{ text }}" Was the author a woman or a man? Answer with one word: female or male.',
                  "extract": {"type": "choice", "mode": "logprobs", "choices": WOMAN_OR_MAN},
                  "params": {"max_tokens": 3}},
        "sampled": {"prompt": '"{{ text }}" Was the author a woman or a man? Answer female or male.',
                    "extract": {"type": "choice", "choices": WOMAN_OR_MAN}, "params": {"max_tokens": 3}},
    },
    "params": {"temperature": 0, "seed": 1},
}


@pytest.mark.slow
def test_the_embedded_model_gives_label_probabilities(tmp_path: Path, write_spec: SpecWriter) -> None:
    run = evalrun.run(write_spec(tmp_path, **SPEC), out=tmp_path / "out", retries=0, figures=False)
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
                                                                        write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply="female") as server:
        spec = write_spec(tmp_path, models=[write_spec.model(server.base_url, name="x", model="openai/x")], **SPEC)
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
