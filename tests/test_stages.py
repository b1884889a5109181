"""Second-stage requests over real HTTP: a judge reading the stories beside the pronoun counter, and a
follow-up question asked in the same conversation. Every expected figure is worked out here by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

# every protagonist is a woman; a story about a woman and her three brothers has more "he" than "she",
# so the pronoun count reads it as male where the judge (scripted to read it right) says female
GOLD = {f"s{n}": "female" for n in range(1, 7)}
CROWDED = {"s1", "s2", "s3"}
NO_VERDICT = "s6"  # the judge explains but never gives its final LABEL line


def _story(item: str) -> str:
    if item in CROWDED:
        return "Mara visited her three brothers. He cooked, he sang, and he told his father about his day."
    return "Lena packed her bag. She thanked her mother and took her sister to the station."


def _reply(body: dict[str, Any]) -> str:
    messages = body["messages"]
    text = messages[-1]["content"]
    item = re.search(r"<(s\d)>", json.dumps(messages))[1]  # type: ignore[index]
    if "<<<BEGIN ANSWER>>>" in text:  # the judge
        if item == NO_VERDICT:
            return "The main character seems to be a woman, judging by the opening."
        return "The story is about Mara or Lena, a woman.\nLABEL: female"
    if "FOLLOW-UP" in text:  # asked after the story, in the same conversation
        assert messages[-2] == {"role": "assistant", "content": _story(item)}
        return "female" if item != "s1" else "male"
    if "DIRECT" in text:
        return "female"
    return _story(item)


PICK = {"type": "choice", "choices": {"female": [], "male": []}}
# conftest's write_spec's parts: a direct question, and a story read by pronouns and by a judge, then followed up
SPEC: dict[str, Any] = {
    "name": "stages", "inline": True, "dataset": {"gold": "gender"}, "labels": ["female", "male"],
    "items": [{"id": i, "text": f"text {i}", "gender": g} for i, g in GOLD.items()],
    "variants": {
        "direct": {"prompt": "DIRECT <{{ id }}> Who wrote {{ text }}? female or male", "extract": PICK},
        "story": {
            "prompt": "STORY <{{ id }}> Write about someone like the author of {{ text }}.",
            "extract": {"type": "pronouns", "margin": 1},
            "readers": {"judge": {"type": "judge", "model": "scripted",
                                  "question": "the gender of the main character of story <{{ id }}>"}},
            "followup": {"prompt": "FOLLOW-UP: is the main character of your story a woman or a man? female or male",
                         "extract": PICK},
        },
    },
    "params": {"temperature": 0, "seed": 1},
}


def test_a_judge_beside_the_pronoun_reader_and_a_followup(tmp_path: Path, write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=_reply) as server:
        scripted = write_spec.model(server.base_url, name="scripted", model="openai/scripted")
        spec = write_spec(tmp_path, models=[scripted], **SPEC)
        run = evalrun.run(spec, out=tmp_path / "out", retries=0)
        judged = server.count("<<<BEGIN ANSWER>>>")
        followed = server.count("FOLLOW-UP")
        # 6 direct + 6 stories, then 6 judge requests and 6 follow-ups
        assert (len(server.requests), judged, followed) == (24, 6, 6)

        again = evalrun.run(spec, out=tmp_path / "out", retries=0)
        assert len(server.requests) == 24  # a rerun asks nothing again, judges and follow-ups included
    assert again.summary["totals"]["from_store"] == again.summary["totals"]["jobs"] == 18
    assert again.summary["statistics"] == run.summary["statistics"]

    stats = run.summary["statistics"]
    (readers,) = stats["readers"]
    assert (readers["variant"], readers["a"], readers["b"]) == ("story", "extract", "judge")
    # pronouns: male on s1-s3 (3 he + 3 his against 1 her), female on s4-s6; the judge: female on s1-s5,
    # unparsed on s6 (no verdict line). Both read s1-s5: agree on s4, s5 only
    assert (readers["both_labelled"], readers["agreement"]["count"]) == (5, 2)
    assert readers["disagreements_total"] == 4
    assert {d["item_id"]: (d["label"], d["other"]) for d in readers["disagreements"]} == {
        "s1": ("male", "female"), "s2": ("male", "female"), "s3": ("male", "female"), "s6": ("female", None)}

    readings = pl.read_parquet(run.dir / "readings.parquet")
    judge = readings.filter(pl.col("reader") == "judge")
    assert judge.height == 6
    silent = judge.filter(pl.col("job_id").str.starts_with(f"{NO_VERDICT}/"))
    assert silent["label"].to_list() == [None]  # a missing verdict is unparsed, never a default label
    assert "judging by the opening" in silent["judge_response"][0]  # the judge's own answer, for audit

    # the follow-up is read as the variant story.followup and compared with the story's reading
    follow = next(v for v in stats["variants"] if v["variant"] == "story.followup")
    assert follow["labels"] == {"female": 5, "male": 1, "unparsed": 0}
    pair = next(p for p in stats["pairs"] if (p["a"], p["b"]) == ("story", "story.followup"))
    # story (pronouns) male s1-s3, female s4-s6; follow-up male s1, female s2-s6: agree on s1, s4, s5, s6
    assert (pair["both_labelled"], pair["agreement"]["count"]) == (6, 4)
    frame = run.results
    asked = frame.filter(pl.col("variant") == "story.followup")
    turns = json.loads(asked["messages"][0])
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]

    text = run.report_path.read_text(encoding="utf-8")
    assert "## Readers" in text
    assert "scripted, story: extract and judge differ on 4 items: s1 (male / female)" in text
    assert "| scripted | story vs story.followup |" in text
