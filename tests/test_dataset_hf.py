"""Issue 26, item 5 (datasets): `dataset: {hf: ...}` read through the Hugging Face `datasets` library.

Every dataset here is a folder the test writes itself (with `save_to_disk`, or as Parquet files); the hub is
never reached: the offline switches are on, and a hub name fails as a dataset missing from the cache does.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# datasets (through huggingface_hub) reads the offline switches once, when it is imported
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
datasets = pytest.importorskip("datasets", reason="datasets (the test and hf extras) reads `dataset: {hf: ...}`")
import huggingface_hub.constants  # noqa: E402  (after the switches above)

from evalrun.cli import main  # noqa: E402

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

ROWS = {"id": ["q1", "q2", "q3"], "text": ["first", "second", "third"], "gold": ["a", "b", "a"]}
HELD_OUT = {"id": ["t1", "t2"], "text": ["fourth", "fifth"], "gold": ["b", "a"]}
VARIANTS = {"one": "ONE <{{ id }}> {{ text }}", "two": "TWO <{{ id }}> {{ text }}"}


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, also if another test imported datasets before the switches were set; a cache of the test's own."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _saved(folder: Path) -> Path:
    datasets.disable_progress_bars()
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS),
                          "test": datasets.Dataset.from_dict(HELD_OUT)}).save_to_disk(str(folder))
    datasets.enable_progress_bars()
    return folder


def _validate(capsys: pytest.CaptureFixture[str], spec: Path) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["validate", str(spec)])
    return code, capsys.readouterr().err.splitlines()


def test_a_saved_split_runs_end_to_end_and_the_record_names_it(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer],
        capsys: pytest.CaptureFixture[str]) -> None:
    _saved(tmp_path / "data")
    server = loopback(default_reply="alpha")
    spec = write_spec(tmp_path, dataset={"hf": "./data", "split": "test", "gold": "gold"}, variants=VARIANTS,
                      models=[write_spec.model(server.base_url)])
    assert _validate(capsys, spec) == (0, ["1 file checked: 1 valid, 0 invalid (0 errors, 0 warnings)"])
    code = main(["run", str(spec), "--out", str(tmp_path / "reports")])
    out, err = capsys.readouterr()
    assert code == 0, err
    run = Path(out.strip()).parent
    record = json.loads((run / "summary.json").read_text(encoding="utf-8"))["run"]
    assert record["dataset_source"] == "hf:./data (split test)"
    # the same rows given inline hash the same: the identity is the rows as loaded, not the folder's files
    rows = [dict(zip(HELD_OUT, values, strict=True)) for values in zip(*HELD_OUT.values(), strict=True)]
    inline = write_spec(tmp_path / "inline", items=rows, inline=True, dataset={"gold": "gold"}, variants=VARIANTS,
                        models=[write_spec.model(server.base_url)])
    assert main(["run", str(inline), "--out", str(tmp_path / "reports-inline")]) == 0
    out, err = capsys.readouterr()
    inline_record = json.loads((Path(out.strip()).parent / "summary.json").read_text(encoding="utf-8"))["run"]
    assert record["dataset_sha256"] == inline_record["dataset_sha256"]
    # only the test split's items were asked about
    sent = {body["messages"][-1]["content"] for body in server.requests}
    assert sent == {f"{v} <{i}> {t}" for v in ("ONE", "TWO") for i, t in zip(HELD_OUT["id"], HELD_OUT["text"],
                                                                                 strict=True)}


def test_a_changed_row_changes_the_dataset_hash(tmp_path: Path, write_spec: SpecWriter,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from evalrun.dataset import load_dataset
    from evalrun.spec import load_spec

    spec = write_spec(tmp_path, dataset={"hf": "./data", "split": "train"}, variants=VARIANTS)
    _saved(tmp_path / "data")
    before = load_dataset(load_spec(spec))
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({**ROWS, "text": ["first", "second", "3rd"]})}
                         ).save_to_disk(str(tmp_path / "data"))
    after = load_dataset(load_spec(spec))
    assert [before.item_id(i) for i in before.items] == [after.item_id(i) for i in after.items] == ROWS["id"]
    assert before.sha256 != after.sha256
    assert before.source == after.source == "hf:./data (split train)"


def test_a_folder_of_parquet_files_renders(tmp_path: Path, write_spec: SpecWriter,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_dict(ROWS).to_parquet(str(tmp_path / "pq" / "train.parquet"))
    spec = write_spec(tmp_path, dataset={"hf": "./pq", "split": "train"}, variants=VARIANTS)
    assert _validate(capsys, spec)[0] == 0
    assert main(["render", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "ONE <q3> third" in out and "TWO <q1> first" in out


def test_a_missing_split_is_one_located_line(tmp_path: Path, write_spec: SpecWriter,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _saved(tmp_path / "data")
    spec = write_spec(tmp_path, dataset={"hf": "./data", "split": "validation"}, variants=VARIANTS)
    where = write_spec.where(spec, "validation")
    assert _validate(capsys, spec) == (2, [
        f"{spec}:{where}: error: dataset.split: no split 'validation' in './data' (splits: train, test)",
        "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)"])
    assert main(["run", str(spec), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{where}: error: dataset.split: no split 'validation'" in err and "Traceback" not in err


def test_a_split_missing_from_a_parquet_folder_is_located_too(tmp_path: Path, write_spec: SpecWriter,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pq").mkdir()
    datasets.Dataset.from_dict(ROWS).to_parquet(str(tmp_path / "pq" / "train.parquet"))
    spec = write_spec(tmp_path, dataset={"hf": "./pq", "split": "test"}, variants=VARIANTS)
    code, lines = _validate(capsys, spec)
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith(f"{spec}:{write_spec.where(spec, 'test')}: error: dataset.split: no split 'test' "
                               "in './pq': Unknown split")


def test_a_hub_dataset_not_in_the_cache_is_one_located_line_offline(tmp_path: Path, write_spec: SpecWriter,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, dataset={"hf": "nobody-evalrun/nothing", "split": "train", "revision": "main"},
                      variants=VARIANTS)
    code, lines = _validate(capsys, spec)
    assert code == 2 and len(lines) == 2, lines
    assert lines[0].startswith(f"{spec}:{write_spec.where(spec, 'nobody-evalrun')}: error: dataset.hf: cannot "
                               "read 'nobody-evalrun/nothing': ")
    assert lines[0].endswith("(offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set), only a dataset already in "
                             "the cache can be read)")


def test_a_missing_folder_and_splits_unchosen(tmp_path: Path, write_spec: SpecWriter,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, dataset={"hf": "./nowhere"}, variants=VARIANTS)
    assert _validate(capsys, spec) == (2, [
        f"{spec}:{write_spec.where(spec, './nowhere')}: error: dataset.hf: no such folder '{tmp_path / 'nowhere'}' "
        "(a local dataset is a folder, relative to the spec file's folder)",
        "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)"])
    _saved(tmp_path / "data")
    spec = write_spec(tmp_path, dataset={"hf": "./data"}, variants=VARIANTS)
    assert _validate(capsys, spec)[1][0] == (f"{spec}:{write_spec.where(spec, './data')}: error: dataset.hf: "
                                             "'./data' has splits (train, test): choose one (add `split:` to "
                                             "`dataset:`)")


def test_hub_keys_belong_to_hf_and_a_folder_has_no_revision(tmp_path: Path, write_spec: SpecWriter,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, dataset={"split": "train"}, variants=VARIANTS)
    assert _validate(capsys, spec)[1][0] == (f"{spec}:{write_spec.where(spec, 'split')}: error: dataset.split: "
                                             "only with `hf:` (a Hugging Face dataset)")
    _saved(tmp_path / "data")
    spec = write_spec(tmp_path, dataset={"hf": "./data", "split": "train", "revision": "v1"}, variants=VARIANTS)
    assert _validate(capsys, spec)[1][0] == (f"{spec}:{write_spec.where(spec, 'revision')}: error: "
                                             "dataset.revision: a local folder has no revisions; only a hub "
                                             "dataset does (give the hub name, ORG/NAME, or leave it out)")


def test_without_datasets_installed_one_line_says_how_to_install_it(
        tmp_path: Path, write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` then raises ImportError
    spec = write_spec(tmp_path, dataset={"hf": "org/name", "split": "train"}, variants=VARIANTS)
    assert _validate(capsys, spec) == (2, [
        f"{spec}:{write_spec.where(spec, 'org/name')}: error: dataset.hf: reading a Hugging Face dataset needs the "
        "`datasets` library, which is not installed (pip install 'evalrun[hf]')",
        "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)"])


def test_a_bad_row_is_named_by_its_number_at_the_hf_line(tmp_path: Path, write_spec: SpecWriter,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    datasets.Dataset.from_dict({**ROWS, "id": ["q1", "q2", "q1"], "gold": ["a", "c", "a"]}).save_to_disk(
        str(tmp_path / "data"))
    spec = write_spec(tmp_path, dataset={"hf": "./data", "gold": "gold"}, variants=VARIANTS)
    at = f"{spec}:{write_spec.where(spec, './data')}: error: "
    assert _validate(capsys, spec) == (2, [
        at + "row 2: gold label 'c' in column 'gold' is not one of the labels (labels: a, b)",
        at + "row 3: duplicate id 'q1' in column 'id' (first used at item 1)",
        "1 file checked: 0 valid, 1 invalid (2 errors, 0 warnings)"])
