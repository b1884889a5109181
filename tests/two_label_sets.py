"""A run whose variants read different labels, made against the loopback server, for the tests of labelling by
hand (test_view_labels.py, test_annotate.py, test_view_browser.py): variant `asked` reads yes/no (and so does
its follow-up, `asked.followup`), variant `task` reads the spec's comply/refuse.

What the model answers, by item: asked yes on i1 i2 and no on i3 i4; task comply on i1 i3 and refuse on i2 i4;
the follow-up yes throughout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalrun.api import run

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

ITEMS = ["i1", "i2", "i3", "i4"]
ASKED = {"i1": "yes", "i2": "yes", "i3": "no", "i4": "no"}
TASK = {"i1": "comply", "i2": "refuse", "i3": "comply", "i4": "refuse"}
YES_NO = {"type": "choice", "choices": {"yes": ["yes"], "no": ["no"]}}
COMPLY = {"type": "choice", "choices": {"comply": ["comply"], "refuse": ["refuse"]}}
LABELS = {"asked": ["yes", "no"], "task": ["comply", "refuse"], "asked.followup": ["yes", "no"]}


def _reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if text.startswith("AFTER"):
        return "yes"
    item = text[text.index("<") + 1:text.index(">")]
    return ASKED[item] if text.startswith("ASKED") else TASK[item]


def two_label_sets(folder: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> Path:
    """The run folder (under `folder`) of 4 items x asked, task and asked's follow-up, one answer each."""
    server = loopback(default_reply=_reply)
    spec = write_spec(folder / "spec", labels=["comply", "refuse"], items=ITEMS,
                      models=[write_spec.model(server.base_url, timeout=5)],
                      variants={"asked": {"labels": ["yes", "no"], "prompt": "ASKED: would you? <{{ id }}>",
                                          "extract": YES_NO,
                                          "followup": {"prompt": "AFTER: sure?", "extract": YES_NO}},
                                "task": {"prompt": "TASK: do it <{{ id }}>", "extract": COMPLY}})
    return run(spec, out=folder / "reports", retries=0, warn=lambda _: None).dir
