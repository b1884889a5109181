"""`evalrun view`: the static file and the local server of a run's answers, on a copy of the example run and
on small runs whose disagreements are known; untrusted text stays text; the CLI's errors are one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

import evalrun
from evalrun.cli import main
from evalrun.results import READINGS, columns
from evalrun.view import serve, write_static
from evalrun.view.data import load

if TYPE_CHECKING:
    from conftest import Watched
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "reports" / "example"
HOSTILE = '</script><img src=x onerror="alert(1)"><!-- & \u2028'
VOID = {"meta", "input", "br", "img", "link", "hr"}


class _Page(HTMLParser):
    """The page's elements as html.parser sees them: every tag closed in order, scripts, controls."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.controls: dict[str, list[str]] = {}  # a control's name -> its options' values
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)
        if tag == "script":
            self.scripts.append((found, ""))
        if tag in ("input", "select") and found.get("name"):
            self.controls[str(found["name"])] = []
            self._select = str(found["name"]) if tag == "select" else None
        if tag == "option" and self._select is not None:
            self.controls[self._select].append(str(found.get("value")))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (self.open[-3:], tag)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert parsed.open == []
    return parsed


def _embedded(parsed: _Page) -> dict[str, Any]:
    (data,) = [text for attrs, text in parsed.scripts if attrs.get("type") == "application/json"]
    found: dict[str, Any] = json.loads(data)
    return found


def _answers(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(data["fields"], a, strict=True)) for a in data["answers"]]


def test_the_static_file_parses_and_embeds_every_answer_with_its_readings(example: Path, tmp_path: Path) -> None:
    page = write_static(example, tmp_path / "view.html").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert [attrs.get("type") for attrs, _ in parsed.scripts] == ["application/json", None]
    assert not any(attrs.get("src") for attrs, _ in parsed.scripts)
    data = _embedded(parsed)
    results = pl.read_parquet(example / "results.parquet")
    answers = _answers(data)
    assert [a["id"] for a in answers] == results["job_id"].to_list()
    assert [a["response"] for a in answers] == results["response"].to_list()
    assert [a["label"] for a in answers] == results["label"].to_list()
    assert [a["reason"] for a in answers] == results["extraction"].to_list()
    assert [data["prompts"][a["prompt"]] for a in answers] == results["prompt"].to_list()
    assert data["variants"] == ["direct", "story", "story.followup"]
    # every reader but the primary one, with the judge's own answers
    judged = pl.read_parquet(example / "readings.parquet").filter(pl.col("reader") == "judge")
    shown = {a["id"]: a["readings"] for a in answers if a["readings"]}
    assert len(shown) == judged.height == 48
    for row in judged.iter_rows(named=True):
        ((reader, label, reason, own),) = shown[row["job_id"]]
        assert (reader, label, reason, own) == ("judge", row["label"], row["reason"],
                                                json.loads(row["judge_response"]))


def test_filter_controls_cover_the_flags_the_labels_and_the_axes_that_vary(example: Path, tmp_path: Path) -> None:
    controls = _parse(write_static(example, tmp_path / "view.html").read_text(encoding="utf-8")).controls
    assert {"variants", "readers", "unparsed", "q"} <= controls.keys()
    assert controls["label"] == ["", "female", "male"]
    assert controls["paraphrase"] == ["", "0", "1"]
    assert controls["option_order"] == ["", "female, male", "male, female"]
    assert controls["first_option"] == ["", "female", "male"]
    # one model and one sample, no conditions: nothing to filter by
    assert not {"model", "sample", "condition"} & controls.keys()


def test_an_axis_registered_later_is_shown_and_filtered_by(example: Path, toned: pl.DataFrame) -> None:
    data = load(example)
    assert {"column": "tone", "values": ["casual", "formal"]} in data["axes"]
    assert [a["tone"] for a in _answers(data)] == toned["tone"].to_list()


def test_hostile_text_stays_text(example: Path, tmp_path: Path) -> None:
    results = pl.read_parquet(example / "results.parquet")
    first = pl.int_range(pl.len()) == 0
    results.with_columns(
        response=pl.when(first).then(pl.lit(HOSTILE)).otherwise("response"),
        item_text=pl.when(first).then(pl.lit(HOSTILE)).otherwise("item_text"),
        option_order=pl.when(first).then(pl.lit(HOSTILE)).otherwise("option_order"),
    ).write_parquet(example / "results.parquet")
    page = write_static(example, tmp_path / "view.html").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert "img" not in parsed.tags
    assert len(parsed.scripts) == 2
    assert "</script><img" not in page
    data = _embedded(parsed)
    (answer, *_) = _answers(data)
    assert answer["response"] == HOSTILE and data["items"][0]["text"] == HOSTILE
    assert HOSTILE in parsed.controls["option_order"]  # the filter's option, escaped in the page


def _write_run(folder: Path, rows: list[dict[str, Any]], readings: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    shutil.copy(EXAMPLE / "summary.json", folder / "summary.json")
    base = {"model": "m", "sample": 0, "prompt": "p", "response": "r", "item_text": "t", "gold": None}
    full = [{**base, **row, "job_id": f"{row['item_id']}/{row['variant']}/{i}"} for i, row in enumerate(rows)]
    pl.DataFrame(full, schema=columns()).write_parquet(folder / "results.parquet")
    pl.DataFrame(readings, schema=READINGS).write_parquet(folder / "readings.parquet")
    return folder


def test_variants_disagree_where_their_item_labels_differ_and_readers_where_theirs_do(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "small", [
        # a: direct's modal label is female, story's male: the variants disagree
        {"item_id": "a", "variant": "direct", "label": "female"},
        {"item_id": "a", "variant": "direct", "label": "female"},
        {"item_id": "a", "variant": "direct", "label": "male"},
        {"item_id": "a", "variant": "story", "label": "male"},
        # b: story unparsed says nothing either way
        {"item_id": "b", "variant": "direct", "label": "female"},
        {"item_id": "b", "variant": "story", "label": None},
        # c: direct ties (unparsed at the item level), story agrees with one of them: no disagreement
        {"item_id": "c", "variant": "direct", "label": "female"},
        {"item_id": "c", "variant": "direct", "label": "male"},
        {"item_id": "c", "variant": "story", "label": "male"},
    ], [
        {"job_id": "a/story/3", "reader": "extract", "label": "male", "reason": "he 3"},
        {"job_id": "a/story/3", "reader": "judge", "label": "male", "reason": "verdict", "judge_response": None},
        {"job_id": "b/story/5", "reader": "extract", "label": None, "reason": "none"},
        {"job_id": "b/story/5", "reader": "judge", "label": "female", "reason": "verdict",
         "judge_response": '["LABEL: female"]'},
    ])
    answers = {a["id"]: a for a in _answers(load(run))}
    assert {i for i, a in answers.items() if a["variants_disagree"]} == {
        "a/direct/0", "a/direct/1", "a/direct/2", "a/story/3"}
    assert {i for i, a in answers.items() if a["readers_disagree"]} == {"b/story/5"}
    assert answers["b/story/5"]["readings"] == [["judge", "female", "verdict", ["LABEL: female"]]]


def test_the_server_serves_the_page_and_its_data_on_loopback(example: Path) -> None:
    server = serve(example)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/html")
            parsed = _parse(response.read().decode("utf-8"))
        # the served page fetches its data: nothing embedded
        assert [attrs.get("type") for attrs, _ in parsed.scripts] == [None]
        with urllib.request.urlopen(server.url + "data.json", timeout=30) as response:
            assert json.loads(response.read()) == load(example)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "elsewhere", timeout=30)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_cli_writes_the_static_file(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "view.html"
    assert main(["view", str(example), "--static", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert len(_answers(_embedded(_parse(out.read_text(encoding="utf-8"))))) == 288


def test_cli_serves_until_stopped(example: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(evalrun.__file__).parent.parent),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, "-m", "evalrun", "view", str(example), "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[0]
        with urllib.request.urlopen(url + "data.json", timeout=30) as response:
            assert len(json.loads(response.read())["answers"]) == 288
    finally:
        process.terminate()  # SIGTERM, which the CLI takes as Ctrl-C: the server stops, the command succeeds
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


@pytest.mark.parametrize("damage", ["missing", "garbled results", "garbled summary", "no results"])
def test_cli_says_in_one_line_what_is_wrong_with_a_run_folder(
        example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    if damage == "missing":
        shutil.rmtree(example)
    elif damage == "garbled results":
        (example / "results.parquet").write_bytes(b"PAR1 not really")
    elif damage == "garbled summary":
        (example / "summary.json").write_text("{not json", encoding="utf-8")
    else:
        (example / "results.parquet").unlink()
    out = tmp_path / "view.html"
    assert main(["view", str(example), "--static", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evalrun: error: "), err
    assert not out.exists()


def test_the_static_file_filters_in_a_headless_browser(example: Path, tmp_path: Path, chromium: Browser,
                                                      watch: Callable[[Page], Watched]) -> None:
    from playwright.sync_api import expect

    page_file = write_static(example, tmp_path / "view.html")
    watched = watch(chromium.new_page())
    page = watched.page
    page.goto(page_file.as_uri())
    expect(page.locator("#count")).to_have_text("48 of 48 items, 288 of 288 answers")
    page.check("input[name=readers]")
    readers = sum(bool(a["readers_disagree"]) for a in _answers(load(example)))
    expect(page.locator("#count")).to_contain_text(f"{readers} of 288 answers")
    assert page.evaluate("location.hash") == "#readers=disagree"
    assert watched.errors == []
    assert watched.requests == [page_file.as_uri()]  # the one file: nothing fetched besides
