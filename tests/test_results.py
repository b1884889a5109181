"""The results table: labels applied on arrival, rows kept on disk, results.parquet in expansion order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from evalrun.dataset import Dataset, load_dataset
from evalrun.design import Design
from evalrun.jobs import Job
from evalrun.results import BATCH_ROWS, Results, columns
from evalrun.sendpath import Outcome
from evalrun.spec import Spec, parse_spec
from evalrun.store import StoredResponse

SPEC = """\
name: results-test
dataset: {path: items.jsonl, gold: truth}
labels: [pro, con]
variants:
  ask: {prompt: "Is {{ text }} true?", extract: {type: choice, choices: {pro: [], con: []}}}
  tell: {system: "Be brief.", prompt: "Whether {{ text }} holds?", extract: {type: choice, choices: {pro: [], con: []}}}
models: [{model: openai/a, name: a}, {model: openai/b, name: b}]
samples: 2
"""


def _spec(tmp_path: Path, items: int) -> tuple[Spec, Dataset]:
    with (tmp_path / "items.jsonl").open("w", encoding="utf-8") as f:
        for i in range(items):
            f.write(json.dumps({"id": f"i{i}", "text": f"claim {i}", "truth": "pro" if i % 3 else "con"}) + "\n")
    file = tmp_path / "spec.yaml"
    file.write_text(SPEC, encoding="utf-8")
    spec, problems = parse_spec(SPEC, file)
    assert spec is not None, [p.render() for p in problems]
    return spec, load_dataset(spec)


def _outcome(job: Job) -> Outcome:
    # answers that name a label, one that names none, and failures, chosen by the job's place
    n = job.position
    status = "error" if n % 7 == 0 else "ok"
    text = None if status == "error" else ("pro, it is" if n % 2 else "con" if n % 5 else "hard to say")
    response = StoredResponse(
        key=job.key, model=job.model.model, api_base=None, request="{}", status=status, text=text,
        finish_reason=None if status == "error" else "stop", prompt_tokens=10, completion_tokens=n % 4,
        cost=None if n % 2 else 0.001, latency=0.01, attempts=1 if status == "ok" else 3,
        error_class="RateLimitError" if status == "error" else None,
        error_message="limit" if status == "error" else None, created_at=time.time())
    return Outcome(job, response, cached=n % 3 == 0)

# results.parquet's columns as release 0.2 wrote them, in order: the axes' columns must land where they were
RELEASE_02 = {
    "job_id": pl.String, "key": pl.String, "item_id": pl.String, "item_text": pl.String, "variant": pl.String,
    "model": pl.String, "model_string": pl.String, "sample": pl.Int64, "seed": pl.Int64, "system": pl.String,
    "prompt": pl.String, "response": pl.String, "finish_reason": pl.String, "label": pl.String,
    "extraction": pl.String, "gold": pl.String, "error_class": pl.String, "error_message": pl.String,
    "attempts": pl.Int64, "latency_s": pl.Float64, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64,
    "cost": pl.Float64, "cached": pl.Boolean, "condition": pl.String, "paraphrase": pl.Int64,
    "option_order": pl.String, "first_option": pl.String, "messages": pl.String, "probabilities": pl.String,
    "captured": pl.Float64, "slices": pl.String,
}


def test_the_columns_are_release_02s_in_its_order() -> None:
    assert list(columns().items()) == list(RELEASE_02.items())


def test_rows_arrive_in_any_order_and_leave_in_expansion_order(tmp_path: Path) -> None:
    spec, dataset = _spec(tmp_path, 700)  # 700 x 2 variants x 2 models x 2 samples = 5,600 jobs
    jobs = [job for model in spec.models for job in Design(spec, dataset).expand(only=model)]
    assert len(jobs) > 2 * BATCH_ROWS  # several insert batches and several read-back batches
    random.Random(3).shuffle(jobs)
    scratch = tmp_path / "scratch"
    with Results(spec, dataset, scratch_parent=scratch) as results:
        for job in jobs:
            results.add(_outcome(job))
        rows = results.write_parquet(tmp_path / "results.parquet")
    assert rows == len(jobs)
    assert not scratch.exists()  # nothing left behind

    frame = pl.read_parquet(tmp_path / "results.parquet")
    assert frame.schema == pl.Schema(RELEASE_02)
    expected = list(Design(spec, dataset).expand())
    assert frame["job_id"].to_list() == [job.job_id for job in expected]
    by_order = {job.position: _outcome(job) for job in expected}
    for n in (0, 1, 2, 5, 10, 2049, len(expected) - 1):
        row, outcome = frame.row(n, named=True), by_order[n]
        job, r = outcome.job, outcome.response
        assert row["key"] == job.key and row["model"] == job.model.name and row["sample"] == job.cell.sample
        assert row["item_text"] == f"claim {job.cell.item_id[1:]}"
        assert row["gold"] == job.item["truth"]
        assert row["prompt"] == job.messages[-1]["content"]
        assert row["system"] == ("Be brief." if job.cell.variant == "tell" else None)
        assert row["seed"] == job.params["seed"]
        assert row["response"] == r.text and row["error_class"] == r.error_class
        assert row["cost"] == r.cost and row["cached"] == outcome.cached
        # the label is extracted here: none for a failure, none for an answer naming no label
        expected_label = None if r.text in (None, "hard to say") else r.text.split(",")[0]
        assert row["label"] == expected_label


def test_an_empty_run_writes_an_empty_table_and_an_interrupted_one_leaves_no_scratch(tmp_path: Path) -> None:
    spec, dataset = _spec(tmp_path, 3)
    with Results(spec, dataset, scratch_parent=tmp_path / "s1") as results:
        assert results.write_parquet(tmp_path / "empty.parquet") == 0
    assert pl.read_parquet(tmp_path / "empty.parquet").schema == pl.Schema(RELEASE_02)

    with pytest.raises(KeyboardInterrupt), Results(spec, dataset, scratch_parent=tmp_path / "s2") as results:
        for job in Design(spec, dataset).expand():
            results.add(_outcome(job))
        raise KeyboardInterrupt
    assert not (tmp_path / "s2").exists()


def test_scratch_of_a_killed_run_is_swept_and_a_live_one_kept(tmp_path: Path) -> None:
    spec, dataset = _spec(tmp_path, 3)
    scratch = tmp_path / "scratch"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    for name in (f"results-{dead}-abc", f"results-{os.getpid()}-def", "results-notapid-x", "notes"):
        (scratch / name).mkdir(parents=True)
    with Results(spec, dataset, scratch_parent=scratch) as results:
        left = sorted(p.name for p in scratch.iterdir() if p != results.folder)
    # the dead run's folder goes; a live process's (here: this one), a name we did not make, and others stay
    assert left == sorted([f"results-{os.getpid()}-def", "notes", "results-notapid-x"])
