"""`compare:` naming a follow-up (`<variant>.followup`): checked when the spec loads, and compared over real
HTTP like any pair, once. Every expected figure is worked out here by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import evalrun
from evalrun.errors import SpecError
from evalrun.spec import load_spec
from evalrun.spec.model import FOLLOWUP, followup_variant

if TYPE_CHECKING:
    from conftest import SpecWriter

# the follow-up answers beta on i3 and i4; every first answer (direct or story) is alpha
FOLLOWED_BETA = {"i3", "i4"}


def _reply(body: dict[str, Any]) -> str:
    messages = body["messages"]
    item = re.search(r"<(i\d)>", json.dumps(messages))[1]  # type: ignore[index]
    if "AFTER" in messages[-1]["content"]:
        return "beta" if item in FOLLOWED_BETA else "alpha"
    return "alpha"


def _variants(followup: bool) -> dict[str, Any]:
    pick = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}
    story: dict[str, Any] = {"prompt": "STORY <{{ id }}>", "extract": pick}
    if followup:
        story["followup"] = {"prompt": "AFTER: alpha or beta?", "extract": pick}
    return {"direct": {"prompt": "DIRECT <{{ id }}>", "extract": pick}, "story": story}


def test_the_suffix_checked_is_the_one_jobs_reads_a_followup_as() -> None:
    assert followup_variant("story") == "story" + FOLLOWUP


def test_compare_names_a_followup_and_its_pair_is_compared_once(tmp_path: Path, write_spec: SpecWriter,
                                                                 loopback: Any) -> None:
    server = loopback(default_reply=_reply)
    # the second pair is the automatic one (story, story.followup), written the other way round
    spec = write_spec(tmp_path, variants=_variants(followup=True), items=["i1", "i2", "i3", "i4"],
                      models=[write_spec.model(server.base_url)],
                      compare=[["direct", "story.followup"], ["story.followup", "story"]])
    run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    pairs = run.summary["statistics"]["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("direct", "story.followup"), ("story.followup", "story")]
    # direct: alpha on i1-i4; the follow-up: alpha on i1, i2, beta on i3, i4: agree on 2 of 4
    first = pairs[0]
    assert (first["both_labelled"], first["agreement"]["count"]) == (4, 2)
    assert first["confusion"]["counts"][0][:2] == [2, 2]  # direct's alpha row: 2 alpha, 2 beta after
    text = run.report_path.read_text(encoding="utf-8")
    assert "| loop | direct vs story.followup |" in text
    assert text.count("story.followup vs story |") == 1 and "story vs story.followup |" not in text


def _refused(spec: Path) -> str:
    """The one problem loading `spec` raises, rendered."""
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    (problem,) = info.value.problems
    return problem.render()


def test_compare_naming_the_followup_of_a_variant_without_one_is_located(tmp_path: Path,
                                                                          write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, variants=_variants(followup=False), compare=[["direct", "story.followup"]])
    assert _refused(spec) == (f"{spec}:{write_spec.where(spec, 'story.followup')}: error: compare.0: variant "
                              "'story' has no follow-up (give 'story' a `followup:`, or compare 'story' itself)")


def test_compare_naming_the_followup_of_no_variant_is_a_missing_variant(tmp_path: Path,
                                                                         write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, variants=_variants(followup=True), compare=[["direct", "tale.followup"]])
    assert "compare.0: no variant named 'tale.followup'" in _refused(spec)
