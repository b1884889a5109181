"""`evalrun view` in a real browser (issue 25 item 4): headless Chromium (conftest's `chromium`) opens the view of
a run made against the loopback server, filters it to the items whose variants disagree, and labels three answers
with the keyboard in the served page; the next `evalrun report` measures the reader against those three labels.
The static file is put through the same filters, and shows label mode as the unavailable thing it is there.
In both, the page logs no error and asks for nothing but the page's own addresses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

import evalrun
from evalrun.cli import main
from evalrun.store import answer_key, read_labels

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter, Watched
    from playwright.sync_api import Browser, Page

SECTION = "## Readers against a person"
ITEMS = [f"i{n}" for n in range(6)]
SPLIT = {"i1", "i3", "i4"}  # the items whose variant two the model answers otherwise: the variants disagree
ALL = "6 of 6 items, 12 of 12 answers"
DISAGREE = "3 of 6 items, 6 of 12 answers"


@pytest.fixture
def run(tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter,
        capsys: pytest.CaptureFixture[str]) -> Path:
    """A run folder of 6 items x variants one and two, one answer each; the choice reader reads "alpha" as a and
    "beta" as b, so variant one is a throughout and variant two b on the SPLIT items."""
    def reply(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        return "beta" if prompt.startswith("TWO") and any(f"<{item}>" in prompt for item in SPLIT) else "alpha"

    server = loopback(default_reply=reply)
    spec = write_spec(tmp_path / "spec", items=ITEMS, models=[write_spec.model(server.base_url, timeout=5)])
    assert main([str(spec), "--out", str(tmp_path / "reports")]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1]).parent


@pytest.fixture
def served(run: Path) -> Iterator[str]:
    """`evalrun view RUN --no-browser --who ann` running (its store: the test's EVALRUN_HOME); its address."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(evalrun.__file__).parent.parent),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, "-m", "evalrun", "view", str(run), "--no-browser", "--who", "ann"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().split()[0]
    finally:
        process.terminate()  # taken as Ctrl-C: the server stops and closes the store
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def _filter_to_disagreements(page: Page) -> None:
    """The filter the report's agreement section links to, ticked by hand: 3 items, both variants' answers."""
    from playwright.sync_api import expect

    count = page.locator("#count")
    expect(count).to_have_text(ALL)
    page.check("input[name=variants]")
    expect(count).to_have_text(DISAGREE)
    assert page.evaluate("location.hash") == "#variants=disagree"
    shown = page.locator("#answers tbody th .item-id").all_text_contents()
    assert shown == sorted(SPLIT)
    page.uncheck("input[name=variants]")
    expect(count).to_have_text(ALL)
    assert page.evaluate("location.hash") == ""  # no filter: an empty fragment
    page.check("input[name=variants]")
    expect(count).to_have_text(DISAGREE)


def test_the_served_view_filters_and_labels_with_the_keyboard_and_the_report_counts_the_labels(
        run: Path, served: str, chromium: Browser, watch: Callable[[Page], Watched]) -> None:
    from playwright.sync_api import expect

    watched = watch(chromium.new_page())
    page = watched.page
    page.goto(served)
    _filter_to_disagreements(page)

    page.check("input[name=mode]")
    # label mode hides the readers' labels of every answer this person has not labelled yet
    hidden = page.locator(".hidden-labels")
    expect(hidden).to_have_count(6)
    mine = page.locator(".mine .badge")
    expect(mine).to_have_count(0)
    page.keyboard.press("n")  # to the first answer shown
    given = ["b", "b", "a"]  # keys 2, 2, 1: the spec's labels are a and b
    for done, name in enumerate(given, start=1):
        page.keyboard.press(str(["a", "b"].index(name) + 1))
        # stored, redrawn with the readers' labels, and on to the next unlabelled answer
        expect(mine).to_have_count(done)
        expect(hidden).to_have_count(6 - done)
    assert mine.all_text_contents() == given

    # drawn row by row, variant one then two: i1/one, i1/two, i3/one
    results = pl.read_parquet(run / "results.parquet")
    labelled = [results.filter((pl.col("item_id") == item) & (pl.col("variant") == variant)).row(0, named=True)
                for item, variant in (("i1", "one"), ("i1", "two"), ("i3", "one"))]
    assert [r["label"] for r in labelled] == ["a", "b", "a"]  # what the reader read
    assert {(h.answer_key, h.label, h.who) for h in read_labels()} == {
        (answer_key(r["key"], r["response"]), name, "ann") for r, name in zip(labelled, given, strict=True)}
    assert watched.errors == []
    assert all(url.startswith(served) for url in watched.requests), watched.requests
    page.close()

    assert main(["report", str(run), "--no-figures"]) == 0
    report = (run / "report.md").read_text(encoding="utf-8")
    section = report[report.index(SECTION):]
    assert section.startswith(f"{SECTION}\n\n3 answers labelled by hand (ann, with ")
    # variant one: human b where the reader read a (wrong), then a and a (right); variant two: b and b
    rows = {line.split(" | ")[0]: line for line in section.splitlines() if line.startswith("| one |")
            or line.startswith("| two |")}
    for variant, right, n in (("one", 1, 2), ("two", 1, 1)):
        low, high = proportion_confint(right, n, alpha=0.05, method="wilson")
        assert rows[f"| {variant}"].startswith(
            f"| {variant} | extract | {n} | {100 * right / n:.1f}% [{100 * low:.1f}%, {100 * high:.1f}%] "
            f"({right}/{n}) |"), rows
    assert "extract (one) got 1 wrong:" in section
    assert "- item i1: human b, extract a: \"" in section
    assert "extract (two) got" not in section


def test_the_static_file_filters_alike_and_offers_no_labelling(run: Path, tmp_path: Path, chromium: Browser,
                                                               watch: Callable[[Page], Watched]) -> None:
    from playwright.sync_api import expect

    out = tmp_path / "view.html"
    assert main(["view", str(run), "--static", str(out)]) == 0
    watched = watch(chromium.new_page())
    page = watched.page
    page.goto(out.as_uri())
    _filter_to_disagreements(page)

    # no server to store a label: the mode is there, disabled, saying why, and the keys do nothing
    mode = page.locator("input[name=mode]")
    expect(mode).to_be_disabled()
    expect(page.locator("#labelnote")).to_contain_text("labelling needs the server")
    for key in ("n", "1", "2", "u"):
        page.keyboard.press(key)
    expect(page.locator(".mine")).to_have_count(0)
    expect(page.locator(".answer.current")).to_have_count(0)
    # every answer shows its reader's label straight away
    expect(page.locator(".hidden-labels")).to_have_count(0)
    expect(page.locator(".answer > div > .badge")).to_have_count(6)

    assert watched.errors == []
    assert watched.requests == [out.as_uri()]  # the one file: nothing fetched besides

    # the report's link opens the file filtered
    linked = watch(chromium.new_page())
    linked.page.goto(out.as_uri() + "#variants=disagree")
    expect(linked.page.locator("#count")).to_have_text(DISAGREE)
    expect(linked.page.locator("input[name=variants]")).to_be_checked()
    assert linked.errors == []
    assert linked.requests == [out.as_uri()]  # a request carries no fragment
