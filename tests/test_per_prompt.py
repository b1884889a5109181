"""The item-level label per prompt, beside the label pooled over an item's prompts, over real HTTP. Two wordings
that split two of four items evenly: pooled, a tie leaves those items unparsed and out of the shares (alpha reads
100%); per prompt, 6 of the 8 prompts say alpha (75%). Every figure is worked out here by hand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import evalrun

if TYPE_CHECKING:
    from conftest import SpecWriter

SWAYED = {"i3", "i4"}  # the second wording gets beta on these; every other prompt gets alpha


def _reply(body: dict[str, Any]) -> str:
    wording, item = re.search(r"(P1|P2) <(i\d)>", body["messages"][-1]["content"]).groups()  # type: ignore[union-attr]
    return "beta" if wording == "P2" and item in SWAYED else "alpha"


def test_a_variant_with_two_wordings_gets_its_label_per_prompt(tmp_path: Path, write_spec: SpecWriter,
                                                                loopback: Any) -> None:
    server = loopback(default_reply=_reply)
    pick = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}
    spec = write_spec(tmp_path, items=["i1", "i2", "i3", "i4"], models=[write_spec.model(server.base_url)],
                      variants={"ask": {"prompts": ["P1 <{{ id }}>", "P2 <{{ id }}>"], "extract": pick},
                                "once": {"prompt": "P1 <{{ id }}>", "extract": pick}})
    run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    variants = {v["variant"]: v for v in run.summary["statistics"]["variants"]}
    ask = variants["ask"]
    # pooled: i1, i2 alpha twice; i3, i4 one alpha one beta, a tie: unparsed
    assert (ask["items"], ask["items_unparsed"], ask["label_rates"]["a"]["estimate"]) == (4, 2, 1.0)
    # per prompt: 4 items x 2 wordings, each read; alpha on all 4 of P1 and i1, i2 of P2
    assert ask["per_prompt"] == {"prompts": 8, "read": 8, "labels": {"a": 6, "b": 2}}
    assert "per_prompt" not in variants["once"]  # one prompt per item: the pooled label is the prompt's
    text = run.report_path.read_text(encoding="utf-8")
    assert ("a tie for the mode (or no answer read) leaves the item unparsed and out of the shares, so an item "
            "its prompts split evenly is dropped") in text
    lines = text.splitlines()
    at = lines.index("| model | variant | prompts | with a label, per prompt (pooled) | a | b |")
    # one row, the variant asking in two wordings; `once` asks in one, so it has no row
    assert lines[at + 2:at + 4] == [
        "| loop | ask | 8 | 100.0% of 8 (50.0% of 4 items) | 75.0% (100.0%) | 25.0% (0.0%) |", ""]
