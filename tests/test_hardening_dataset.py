"""Issue 14, item 8 (dataset part): a raw control byte in JSONL, a long CSV cell and a symlinked spec each give
one whole, located message that says what was found or tried."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import evalrun.dataset as dataset_module
from evalrun.dataset import load_dataset
from evalrun.errors import DatasetError
from evalrun.spec import load_spec

if TYPE_CHECKING:
    from conftest import SpecWriter

# conftest's write_spec's parts; a test names the dataset's path (`dataset={"path": ...}`)
SPEC = {"name": "hardening", "labels": ["pos", "neg"], "variants": {"a": "{{ text }}", "b": "Again: {{ text }}"},
        "extract": {"type": "choice", "choices": {"pos": [], "neg": []}}}


def _problems(spec: Path) -> list[str]:
    with pytest.raises(DatasetError) as info:
        load_dataset(load_spec(spec))
    return [p.render() for p in info.value.problems]


# ---- JSONL --------------------------------------------------------------------------------------------


def test_a_raw_nul_byte_in_jsonl_is_named_in_a_whole_sentence(tmp_path: Path, write_spec: SpecWriter) -> None:
    (tmp_path / "data.jsonl").write_bytes(b'{"id": "a1", "text": "hi\x00there"}\n')
    spec = write_spec(tmp_path, dataset={"path": "data.jsonl"}, **SPEC)
    assert _problems(spec) == [
        f"{tmp_path}/data.jsonl:1:25: error: not valid JSON: a raw control character, U+0000 (NUL), inside a "
        "string (write it escaped, as \\u0000, or remove it)"]


def test_a_raw_control_byte_outside_a_string_is_named_too(tmp_path: Path, write_spec: SpecWriter) -> None:
    (tmp_path / "data.jsonl").write_bytes(b'{"id": "a1",\x00 "text": "x"}\n\x1b\n')
    spec = write_spec(tmp_path, dataset={"path": "data.jsonl"}, **SPEC)
    assert _problems(spec) == [
        f"{tmp_path}/data.jsonl:1:13: error: not valid JSON: a raw control character, U+0000 (NUL), where JSON "
        "allows none (remove it)",
        f"{tmp_path}/data.jsonl:2:1: error: not valid JSON: a raw control character, U+001B (ESC), where JSON "
        "allows none (remove it)"]


def test_json_messages_that_end_in_a_position_are_completed(tmp_path: Path, write_spec: SpecWriter) -> None:
    (tmp_path / "data.jsonl").write_bytes(b'{"id": "a1", "text": "never closed}\n')
    spec = write_spec(tmp_path, dataset={"path": "data.jsonl"}, **SPEC)
    assert _problems(spec) == [
        f"{tmp_path}/data.jsonl:1:22: error: not valid JSON: Unterminated string starting here "
        "(each line of a JSONL file is one JSON object)"]


def test_jsonl_lines_end_only_at_line_feeds(tmp_path: Path, write_spec: SpecWriter) -> None:
    # JSON allows U+2028, U+2029 and U+0085 raw inside a string, and json.dumps(ensure_ascii=False) writes them
    # so; str.splitlines() would cut the line there. \r\n endings still work.
    texts = ["line\u2028separator", "paragraph\u2029separator", "next\x85line"]
    lines = [json.dumps({"id": f"i{n}", "text": t}, ensure_ascii=False) for n, t in enumerate(texts)]
    (tmp_path / "data.jsonl").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    data = load_dataset(load_spec(write_spec(tmp_path, dataset={"path": "data.jsonl"}, **SPEC)))
    assert [item["text"] for item in data.items] == texts


# ---- CSV ----------------------------------------------------------------------------------------------


def test_a_csv_cell_longer_than_csvs_default_limit_is_read(tmp_path: Path, write_spec: SpecWriter) -> None:
    long = "word " * 40_000  # 200,000 characters: over the csv module's default 131,072
    (tmp_path / "data.csv").write_text(f"id,text\nt1,{long}\nt2,short\n", encoding="utf-8")
    data = load_dataset(load_spec(write_spec(tmp_path, dataset={"path": "data.csv"}, **SPEC)))
    assert [len(str(item["text"])) for item in data.items] == [200_000, 5]


def test_a_csv_cell_over_the_limit_is_located_with_a_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter) -> None:
    monkeypatch.setattr(dataset_module, "MAX_CELL_CHARS", 1_000)  # the real limit is 10,000,000
    rows = 'id,text\nt1,fine\nt2,"an unclosed quote\nt3,swallows\n' + "t4,the rest\n" * 200
    (tmp_path / "data.csv").write_text(rows, encoding="utf-8")
    assert _problems(write_spec(tmp_path, dataset={"path": "data.csv"}, **SPEC)) == [
        f"{tmp_path}/data.csv:3:1: error: a cell in this row is over 1,000 characters, the limit for a CSV cell "
        "(an opening quote without its closing quote makes the rest of the file one cell; "
        "long texts beyond the limit cannot fit a prompt anyway)"]


def test_the_real_cell_limit() -> None:
    assert dataset_module.MAX_CELL_CHARS == 10_000_000


# ---- a symlinked spec ---------------------------------------------------------------------------------


def test_a_symlinked_spec_says_the_full_path_it_tried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.csv").write_text("id,text\nt1,hello\n", encoding="utf-8")
    target = write_spec(real, dataset={"path": "data.csv"}, **SPEC)
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "spec.yaml"
    link.symlink_to(os.path.relpath(target, link.parent))
    monkeypatch.chdir(tmp_path)
    problems = _problems(Path("links/spec.yaml"))
    assert problems == [
        f"links/spec.yaml:3:9: error: dataset.path: no such file '{tmp_path}/links/data.csv' "
        f"(a spec's paths are relative to the folder of the spec as named, here the link links/spec.yaml, not its "
        f"target {target}; the file is beside the target: link it too, or give an absolute path)"]


def test_a_symlinked_spec_reads_its_dataset_beside_the_link(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = write_spec(real, dataset={"path": "data.csv"}, **SPEC)
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "data.csv").write_text("id,text\nt1,hello\n", encoding="utf-8")
    (tmp_path / "links" / "spec.yaml").symlink_to(target)
    data = load_dataset(load_spec(tmp_path / "links" / "spec.yaml"))
    assert data.source == str(tmp_path / "links" / "data.csv")


def test_a_plain_missing_dataset_keeps_its_short_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter) -> None:
    write_spec(tmp_path, dataset={"path": "data.csv"}, **SPEC)
    monkeypatch.chdir(tmp_path)
    # no link involved: the path shown, relative to the working folder, is the path tried
    assert _problems(Path("spec.yaml")) == [
        "spec.yaml:3:9: error: dataset.path: no such file 'data.csv' (the path is relative to the spec file's folder)"]


def test_a_dataset_that_is_a_broken_link_names_its_target(tmp_path: Path, write_spec: SpecWriter) -> None:
    (tmp_path / "data.csv").symlink_to(tmp_path / "gone" / "data.csv")
    spec = write_spec(tmp_path, dataset={"path": "data.csv"}, **SPEC)
    assert _problems(spec) == [
        f"{spec}:3:9: error: dataset.path: '{tmp_path}/data.csv' is a link to '{tmp_path}/gone/data.csv', "
        "which does not exist"]
