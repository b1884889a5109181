"""Labelling in `evalrun view`: a label POSTed through the real server on 127.0.0.1 reaches the store with who and
when and the next report's "Readers against a person"; a POST that is not from the server's own page is refused
and stores nothing; the static file, which has no server, offers no labelling.

These tests check that the served page carries the token and the label mode's controls, and that the
script parses (with node, where it is installed); the page's keyboard handling (page.js) is run in headless
Chromium by tests/test_view_browser.py."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import evalrun
from evalrun.record import RunRecord
from evalrun.reporting import write_report
from evalrun.store import HumanLabel, Store, answer_key, read_labels
from evalrun.view import ViewServer, serve, write_static

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "reports" / "example"
SECTION = "## Readers against a person"


class _Controls(HTMLParser):
    """The attributes of each named input, and the text of the element with id labelnote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.note = ""
        self._in_note = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name"):
            self.inputs[str(found["name"])] = found
        if found.get("id") == "labelnote":
            self._in_note = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_note = False

    def handle_data(self, data: str) -> None:
        if self._in_note:
            self.note += data


def _controls(page: str) -> _Controls:
    parsed = _Controls()
    parsed.feed(page)
    parsed.close()
    return parsed


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("figures"))
    return folder


@pytest.fixture
def server(example: Path) -> Iterator[ViewServer]:
    running = serve(example, who="ann")
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=30)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
    return body


def _token(server: ViewServer) -> str:
    """The token as the page carries it (not read from the server's object: the page is what a browser has)."""
    token = _controls(_get(server.url).decode("utf-8")).inputs["mode"].get("data-token")
    assert token
    return token


def _post(server: ViewServer, body: object, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + "labels", data=json.dumps(body).encode("utf-8"),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _headers(server: ViewServer, token: str) -> dict[str, str]:
    """What the page's fetch sends (a browser adds Origin to every POST)."""
    return {"Content-Type": "application/json", "Origin": server.url.rstrip("/"), "X-Evalrun-Token": token}


def _answer(example: Path, variant: str, label: str) -> dict[str, Any]:
    row: dict[str, Any] = (pl.read_parquet(example / "results.parquet")
                           .filter((pl.col("variant") == variant) & (pl.col("label") == label)).row(0, named=True))
    return row


def test_the_served_data_names_each_answer_as_the_store_keys_it(server: ViewServer, example: Path) -> None:
    data = json.loads(_get(server.url + "data.json"))
    results = pl.read_parquet(example / "results.parquet")
    at = data["fields"].index("answer")
    expected = [None if r["error_class"] else answer_key(r["key"], r["response"])
                for r in results.iter_rows(named=True)]
    assert [a[at] for a in data["answers"]] == expected
    assert any(k is not None for k in expected)


def test_a_label_posted_from_the_page_is_stored_and_reported(server: ViewServer, example: Path) -> None:
    row = _answer(example, "direct", "female")
    key = answer_key(row["key"], row["response"])
    assert json.loads(_get(server.url + "labels")) == {"who": "ann", "labels": {}}
    before = datetime.now(UTC).replace(microsecond=0)
    status, stored = _post(server, {"answer_key": key, "label": "male"}, _headers(server, _token(server)))
    assert status == 200
    assert (stored["answer_key"], stored["label"], stored["who"]) == (key, "male", "ann")
    assert datetime.fromisoformat(stored["at"]) >= before
    assert json.loads(_get(server.url + "labels")) == {"who": "ann", "labels": {key: "male"}}
    assert read_labels() == [HumanLabel(key, "male", "ann", stored["at"])]

    write_report(example, RunRecord.load(example / "summary.json"), figures=False)
    report = (example / "report.md").read_text(encoding="utf-8")
    section = report[report.index(SECTION):]
    assert "1 answers labelled by hand (ann," in section
    # the person said male where the pronoun reader read female: one answer, got wrong
    assert f"- item {row['item_id']}: human male, extract female: \"" in section
    assert "extract (direct) got 1 wrong:" in section


@pytest.mark.parametrize("fault", ["no token", "another token", "foreign origin", "no origin", "form content type",
                                   "foreign host"])
def test_a_post_not_from_the_page_is_refused_and_stores_nothing(server: ViewServer, example: Path,
                                                                fault: str) -> None:
    row = _answer(example, "story", "male")
    headers = _headers(server, _token(server))
    if fault == "no token":
        del headers["X-Evalrun-Token"]
    elif fault == "another token":
        headers["X-Evalrun-Token"] = secrets.token_urlsafe(32)
    elif fault == "foreign origin":
        headers["Origin"] = "https://example.com"
    elif fault == "no origin":
        del headers["Origin"]
    elif fault == "form content type":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:  # a page on a domain rebound to 127.0.0.1 names its own domain as the host
        headers["Host"] = f"rebound.example:{server.server_address[1]}"
    status, _ = _post(server, {"answer_key": answer_key(row["key"], row["response"]), "label": "female"}, headers)
    assert status == 403
    assert read_labels() == []


@pytest.mark.parametrize("body", [{"answer_key": "f" * 64, "label": "male"}, {"label": "male"},
                                  "male", {"answer_key": None, "label": "female"}, {"label": "neither"}])
def test_a_post_of_something_but_a_label_of_this_run_is_a_bad_request(server: ViewServer, example: Path,
                                                                     body: Any) -> None:
    if isinstance(body, dict) and body.get("label") == "neither":
        row = _answer(example, "story", "male")
        body = {"answer_key": answer_key(row["key"], row["response"]), "label": "neither"}
    status, _ = _post(server, body, _headers(server, _token(server)))
    assert status == 400
    assert read_labels() == []


def test_a_get_naming_another_host_is_refused(server: ViewServer) -> None:
    request = urllib.request.Request(server.url + "data.json",
                                     headers={"Host": f"rebound.example:{server.server_address[1]}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403


def test_the_served_page_offers_label_mode_with_its_own_token_and_the_static_file_does_not(
        server: ViewServer, example: Path, tmp_path: Path) -> None:
    served = _controls(_get(server.url).decode("utf-8"))
    mode = served.inputs["mode"]
    assert mode.get("type") == "checkbox" and "disabled" not in mode
    assert server.labelling is not None and mode.get("data-token") == server.labelling.token
    assert len(server.labelling.token) >= 32
    assert "as ann; keys: 1 female, 2 male, u unclear, n or \u2192 next" in served.note
    other = serve(example)
    try:
        assert other.labelling is not None and other.labelling.token != server.labelling.token
    finally:
        other.server_close()

    static = _controls(write_static(example, tmp_path / "view.html").read_text(encoding="utf-8"))
    assert "disabled" in static.inputs["mode"] and "data-token" not in static.inputs["mode"]
    assert "labelling needs the server" in static.note and "evalrun view RUN_DIR" in static.note


def test_the_page_script_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node here to parse page.js with")
    checked = subprocess.run([node, "--check", str(Path(evalrun.__file__).parent / "view" / "page.js")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_cli_labels_as_who(example: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(evalrun.__file__).parent.parent),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, "-m", "evalrun", "view", str(example), "--no-browser",
                                "--who", "bob"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[0]
        token = _controls(_get(url).decode("utf-8")).inputs["mode"]["data-token"]
        assert token
        row = _answer(example, "story", "male")
        key = answer_key(row["key"], row["response"])
        request = urllib.request.Request(url + "labels", method="POST",
                                         data=json.dumps({"answer_key": key, "label": "unclear"}).encode(),
                                         headers={"Content-Type": "application/json", "Origin": url.rstrip("/"),
                                                  "X-Evalrun-Token": token})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    store = Store()
    try:
        assert [(h.label, h.who) for h in store.labels([key])] == [("unclear", "bob")]
    finally:
        store.close()


def test_report_links_to_a_view_written_beside_it_filtered_to_each_section(example: Path) -> None:
    record = RunRecord.load(example / "summary.json")
    write_report(example, record, figures=False)
    plain = (example / "report.md").read_text(encoding="utf-8")
    assert "view.html" not in plain  # no view.html beside it: the report as before

    page = write_static(example, example / "view.html").read_text(encoding="utf-8")
    write_report(example, record, figures=False)
    linked = (example / "report.md").read_text(encoding="utf-8")
    links = [line for line in linked.splitlines() if "](view.html#" in line]
    assert links == ["[The items whose variants disagree, answer by answer](view.html#variants=disagree)",
                     "[The answers whose readers disagree, with each reader's reason](view.html#readers=disagree)",
                     "[Every unparsed answer](view.html#unparsed=1)"]
    # each in its section, and each fragment a filter the page has, with the value its control sets
    for heading, link in zip(["## Agreement between variants", "## Readers", "## Unparsed answers"], links,
                             strict=True):
        section = linked[linked.index(f"\n{heading}\n"):]
        assert link in section[:section.index("\n## ", 1)]
    controls = _controls(page).inputs
    assert controls["variants"]["value"] == "disagree" and controls["readers"]["value"] == "disagree"
    assert controls["unparsed"]["value"] == "1"
    # the links are all that changed
    for link in links:
        linked = linked.replace(f"\n\n{link}", "", 1)
    assert linked == plain
