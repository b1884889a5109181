"""`evalrun run --batch`: requests through OpenAI's files and batches endpoints, served by the loopback server.

The batched run must give the rows the one-request path gives (first answers, a judge and a follow-up in a
second round of batches), store each batch's answers as it ends, poll the batches a killed run left behind
rather than submitting them again, keep error and expired lines as failures, and price answers at batch prices.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

import evalrun
from evalrun.batches import MAX_REQUESTS_ENV, POLL_ENV, batch_prices, price_basis, unbatchable
from evalrun.cli import main
from evalrun.spec import model_from_string
from evalrun.store import MIGRATIONS, Store

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

ITEMS = [f"i{n:02d}" for n in range(10)]
# a judge reads every TWO answer and a follow-up follows it: 20 first requests, then 20 more about them
SECOND_STAGE = {
    "readers": {"judge": {"type": "judge", "model": "loop", "question": "the letter of answer <{{ id }}>"}},
    "followup": {"prompt": "FOLLOW-UP: alpha or beta?",
                 "extract": {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}},
}


def reply(body: dict[str, Any]) -> str:
    """Deterministic per request and varied, so the statistics are not trivially equal."""
    text = json.dumps(body["messages"])
    letter = "alpha" if sum(map(ord, text)) % 3 else "beta"
    return f"It reads as {letter}.\nLABEL: {'a' if letter == 'alpha' else 'b'}" if "BEGIN ANSWER" in text else letter


def parts(write_spec: SpecWriter, base: str, second_stage: bool = True, price_in: float = 1.0,
          max_tokens: int = 20, variant_two: dict[str, Any] | None = None,
          models: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """conftest's write_spec's parts: conftest's two variants over ITEMS, one batched model (and `models`)."""
    two = {"prompt": "TWO <{{ id }}>", "extract": {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}},
           **(SECOND_STAGE if second_stage else {}), **(variant_two or {})}
    # a model name no other test uses: litellm keeps registered prices for the whole process
    loop = write_spec.model(base, model="openai/batch-loop", timeout=5, price={"input": price_in, "output": 2})
    return {"name": "batched", "items": ITEMS, "variants": {"one": "ONE <{{ id }}>", "two": two},
            "models": [loop, *models], "params": {"temperature": 0, "seed": 1, "max_tokens": max_tokens}}


@pytest.fixture(autouse=True)
def batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLL_ENV, "0.02")
    monkeypatch.setenv(MAX_REQUESTS_ENV, "8")  # 20 requests a stage: batches of 8, 8 and 4


def stored(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "store.sqlite") as db:
        return db.execute(sql).fetchall()


# everything but what differs by design: latency (a batch has none per request), cost (batch prices), cached
COLUMNS = ["job_id", "key", "item_id", "variant", "model", "prompt", "response", "finish_reason", "label", "extraction",
           "gold", "error_class", "error_message", "attempts", "prompt_tokens", "completion_tokens", "messages"]


@pytest.mark.slow
def test_batches_give_the_rows_of_the_one_request_path_at_half_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     evalrun_home: Path,
                                                                     write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply, batch_polls=3) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url))
        usual = evalrun.run(spec, out=tmp_path / "usual", retries=0)
        assert len(server.requests) == 40 and not server.batches

        monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "batch-home"))  # an empty store
        batched = evalrun.run(spec, out=tmp_path / "batched", retries=0, batch=True)
        assert len(server.requests) == 40  # not one request outside a batch
        # two rounds (first answers, then the judge and follow-up requests), each split 8 + 8 + 4
        assert [len(server.files[b["input_file_id"]].splitlines()) for b in server.batches.values()] == [8, 8, 4] * 2
        assert sum("BEGIN ANSWER" in json.dumps(b) for b in server.batch_lines[20:]) == 10
        # each line is the request the one-request path sends: the provider's model name, messages, params
        assert server.batch_lines[0] == {"model": "batch-loop", "messages": [{"role": "user", "content": "ONE <i00>"}],
                                         "temperature": 0, "seed": 1, "max_tokens": 20}

        # each output file read once (litellm's own logging would read it again to price it)
        outputs = [b["output_file_id"] for b in server.batches.values()]
        assert sorted(server.downloads) == sorted(outputs)
        assert not any(b["error_file_id"] for b in server.batches.values())

        again = evalrun.run(spec, out=tmp_path / "batched", retries=0, batch=True)
        assert len(server.batches) == 6  # everything stored: no batch submitted again
        # 30 jobs: 20 first answers and 10 follow-ups (a judge's verdict is a reading of its answer's row)
        assert again.summary["totals"]["from_store"] == again.summary["totals"]["jobs"] == 30

    for name in ("results.parquet", "readings.parquet"):
        columns = COLUMNS if name == "results.parquet" else None
        assert pl.read_parquet(batched.dir / name, columns=columns).equals(
            pl.read_parquet(usual.dir / name, columns=columns)), name
    assert batched.summary["statistics"] == usual.summary["statistics"]
    assert batched.summary["totals"]["answered"] == 30
    # the spec's price (1 and 2 USD per million tokens) at OpenAI's batch discount of half
    totals = batched.summary["totals"]
    assert totals["cost_usd"] == pytest.approx((totals["prompt_tokens"] * 1 + totals["completion_tokens"] * 2) / 2e6)
    assert totals["cost_usd"] == pytest.approx(usual.summary["totals"]["cost_usd"] / 2)
    assert batched.summary["run"]["models"][0]["batch_prices"] is True
    assert "batch_prices" not in usual.summary["run"]["models"][0]
    assert "(at batch-API prices for `" in batched.report_path.read_text(encoding="utf-8")
    assert "batch-API prices" not in usual.report_path.read_text(encoding="utf-8")
    rows = stored(tmp_path / "batch-home", "SELECT status, collected, COUNT(*) FROM batches GROUP BY 1, 2")
    assert rows == [("completed", 1, 6)]
    assert stored(tmp_path / "batch-home", "SELECT COUNT(*) FROM batch_requests") == [(40,)]


def start_run(spec: Path, out: Path, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "EVALRUN_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(out), "--batch",
                             "--retries", "0", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(proc: subprocess.Popen[str], ready: Any) -> None:
    deadline = time.monotonic() + 60  # the child first imports litellm (several seconds)
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def answered(home: Path) -> int:
    return stored(home, "SELECT COUNT(*) FROM responses WHERE status = 'ok'")[0][0]


def collected(home: Path) -> int:
    """Batches whose answers are all stored (the store exists once the child has opened it)."""
    if not (home / "store.sqlite").exists():
        return 0
    try:
        return stored(home, "SELECT COUNT(*) FROM batches WHERE collected = 1")[0][0]
    except sqlite3.OperationalError:  # the child has not created the table yet
        return 0


@pytest.mark.slow
def test_a_killed_run_polls_its_batches_again_and_submits_nothing_twice(
        tmp_path: Path, evalrun_home: Path, write_spec: SpecWriter) -> None:
    # the first batch ends at its second look, the others not before the run is killed
    with LoopbackServer(default_reply=reply, batch_polls=[2, 10**6]) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        proc = start_run(spec, tmp_path / "killed", evalrun_home)
        # the first batch's 8 answers are stored while the other two batches still run: as they come
        wait_for(proc, lambda: len(server.batches) == 3 and collected(evalrun_home) == 1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        assert answered(evalrun_home) == 8
        recorded = stored(evalrun_home, "SELECT id, collected FROM batches ORDER BY created_at")
        assert sorted(recorded) == sorted((b, int(b == next(iter(server.batches)))) for b in server.batches)
        uploads = len(server.files)

        server.batch_polls = 1  # the provider finishes the rest
        run = evalrun.run(spec, out=tmp_path / "resumed", retries=0, batch=True)
        assert len(server.batches) == 3 and len(server.files) == uploads + 2  # two output files, no new input
        assert len(server.batch_lines) == 20  # each request answered once, however many runs waited for it
    totals = run.summary["totals"]
    assert (totals["answered"], totals["failed"], totals["from_store"]) == (20, 0, 8)
    assert stored(evalrun_home, "SELECT COUNT(*) FROM batches WHERE collected = 1") == [(3,)]


def input_files(server: LoopbackServer) -> list[str]:
    return [f for f, content in server.files.items() if b'"custom_id"' in content and b'"method"' in content]


@pytest.mark.slow
def test_a_batch_created_without_word_of_it_is_found_not_created_again(tmp_path: Path, write_spec: SpecWriter) -> None:
    # the first creation reaches the provider but its answer is lost; the second fails before creating
    with LoopbackServer(default_reply=reply, batch_create_faults=["lost", "500"]) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        first = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        assert (first.summary["totals"]["answered"], first.summary["totals"]["failed"]) == (4, 16)
        failed = first.results.filter(pl.col("error_class").is_not_null())
        assert all(m.startswith("batch not created: ") for m in failed["error_message"])
        assert len(server.batches) == 2 and len(input_files(server)) == 3  # the lost one, and the third

        second = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        # the lost batch was found by its input file and polled; the other created from its recorded file
        assert len(server.batches) == 3 and len(input_files(server)) == 3
        assert len(server.batch_lines) == 20
    assert (second.summary["totals"]["answered"], second.summary["totals"]["from_store"]) == (20, 4)


def test_a_retried_creation_looks_for_the_batch_first(tmp_path: Path, write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply, batch_create_faults=["lost"]) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        run = evalrun.run(spec, out=tmp_path / "out", retries=1, retry_delay=0, batch=True)
        assert len(server.batches) == 3 and len(server.batch_lines) == 20
    assert run.summary["totals"]["answered"] == 20


def test_polling_outlasts_failed_looks(tmp_path: Path, write_spec: SpecWriter) -> None:
    # with no retries at all, a batch that cannot be read at a few polls is still read at a later one
    with LoopbackServer(default_reply=reply, batch_polls=2, batch_retrieve_faults=5) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        run = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        assert server.batch_retrieve_faults == 0 and len(server.batches) == 3
    assert run.summary["totals"]["answered"] == 20


@pytest.mark.slow
def test_ctrl_c_leaves_the_batches_running_and_says_how_to_collect_them(
        tmp_path: Path, evalrun_home: Path, write_spec: SpecWriter, api_key: ApiKey) -> None:
    with LoopbackServer(default_reply=reply, batch_polls=10**6) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        proc = start_run(spec, tmp_path / "out", evalrun_home)
        wait_for(proc, lambda: len(server.batches) == 3)
        time.sleep(0.2)  # polling
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert "3 batch(es) left running at the provider" in err and "again with --batch" in err
    assert api_key.secret not in err


def test_error_and_expired_lines_are_failures_asked_again_next_time(tmp_path: Path, evalrun_home: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    write_spec: SpecWriter) -> None:
    rules = [Rule("ONE <i03>", fault="500", times=1), Rule("TWO <i04>", fault="hang", times=1),
             Rule("ONE <i09>", fault="malformed", times=1)]
    with LoopbackServer(default_reply=reply, rules=rules) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        first = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        results = first.results.filter(pl.col("error_class").is_not_null())
        assert sorted(zip(results["job_id"], results["error_class"], strict=True)) == [
            ("i03/one/loop/0", "InternalServerError"), ("i04/two/loop/0", "BatchExpired"),
            ("i09/one/loop/0", "BatchIncomplete")]
        messages = dict(zip(results["job_id"], results["error_message"], strict=True))
        assert messages["i03/one/loop/0"] == "500: loopback fault 500"
        assert "ended expired before this request was done" in messages["i04/two/loop/0"]
        assert [b["status"] for b in server.batches.values()] == ["completed", "expired", "completed"]

        second = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        assert len(server.batches) == 4  # one more batch, of the three failures only
        assert len(server.files[list(server.batches.values())[-1]["input_file_id"]].splitlines()) == 3
    assert (second.summary["totals"]["answered"], second.summary["totals"]["from_store"]) == (20, 17)


def test_a_model_without_a_batch_api_runs_the_usual_way_beside_batched_ones(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str],
                                                                          write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=reply) as server:
        vllm = {"model": "hosted_vllm/loop", "name": "vllm", "api_base": server.base_url, "timeout": 5}
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False, models=(vllm,)))
        code = main(["run", str(spec), "--out", str(tmp_path / "out"), "--batch", "--retries", "0"])
        assert code == 0
        assert len(server.requests) == 20 and len(server.batch_lines) == 20
    err = capsys.readouterr().err
    assert ("model 'loop' is batched: its requests go through the provider's batch API, and its answers are "
            "priced at 50% of the spec's price") in err
    assert ("model 'vllm' is not batched: evalrun sends batches to OpenAI only, and this model's provider is "
            "hosted_vllm; its requests are sent one by one, at the usual price") in err


def test_the_budget_submits_only_what_its_estimate_allows(tmp_path: Path, write_spec: SpecWriter) -> None:
    # no input price, 1,000 tokens of answer at 2 USD per million, halved: at most 0.001 USD a request
    with LoopbackServer(default_reply=reply) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False, price_in=0,
                                            max_tokens=1000))
        run = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True, max_cost=0.0055)
        assert len(server.batch_lines) == 5
    failed = run.results.filter(pl.col("error_class").is_not_null())
    assert failed.height == 15 and set(failed["error_class"]) == {"BudgetExceeded"}


def test_batch_prices() -> None:
    # litellm's own batch prices where it lists them, else the usual price halved
    assert batch_prices(model_from_string("gpt-4o-mini")) == (7.5e-08, 3e-07)
    usual = batch_prices(model_from_string("gpt-4"))
    assert usual is not None and usual == pytest.approx((3e-05 / 2, 6e-05 / 2))
    assert batch_prices(model_from_string("openai/not-a-model")) is None
    assert unbatchable(model_from_string("gpt-4o-mini")) is None
    assert price_basis(model_from_string("gpt-4o-mini")) == "litellm's batch prices"
    assert price_basis(model_from_string("gpt-4")) == "50% of litellm's usual price"
    assert unbatchable(model_from_string("anthropic/claude-3-5-haiku-20241022")) == (
        "litellm 1.106.2 can read Anthropic batches but not create them")


def test_migration_004_is_appended_to_a_store_written_before_it(tmp_path: Path) -> None:
    assert [name for name, _ in MIGRATIONS][:4] == ["001_responses", "002_leases", "003_logprobs", "004_batches"]
    path = tmp_path / "s.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for number, (_, sql) in enumerate(MIGRATIONS[:3], start=1):
        db.executescript(sql)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO responses (key, model, request, status, attempts, created_at) "
               "VALUES ('k', 'm', '{}', 'ok', 1, 0)")
    db.close()
    store = Store(path)
    assert store.get("k") is not None and store.open_batches("m", None) == []
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [row[1] for row in db.execute("PRAGMA table_info(batch_requests)")] == ["input_file_id", "key"]


def test_a_bad_batch_setting_is_one_line_before_anything_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 write_spec: SpecWriter) -> None:
    monkeypatch.setenv(POLL_ENV, "soon")
    with LoopbackServer(default_reply=reply) as server:
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False))
        assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--batch"]) == 2
        assert not server.files and not server.requests
    err = capsys.readouterr().err
    assert f"{POLL_ENV} must be a number of seconds more than 0, not 'soon'" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_second_stage_with_nothing_for_one_model_leaves_it_out(tmp_path: Path, write_spec: SpecWriter) -> None:
    # the judge (loop) reads both models' answers; the second model has no request of its own to batch
    with LoopbackServer(default_reply=reply) as server:
        other = write_spec.model(server.base_url, name="other", model="openai/other")
        spec = write_spec(tmp_path, **parts(write_spec, server.base_url, second_stage=False, models=(other,),
                                            variant_two={"readers": SECOND_STAGE["readers"]}))
        run = evalrun.run(spec, out=tmp_path / "out", retries=0, batch=True)
        # both models answer alike, so the judge is asked 10 distinct requests for 20 answers: each once
        assert len(server.batch_lines) == 40 + 10 and not server.requests
        assert len(server.batches) == 3 + 3 + 2  # each model's 20 in batches of 8, 8 and 4; then 8 and 2
    assert run.summary["totals"]["answered"] == 40
    judged = pl.read_parquet(run.dir / "readings.parquet").filter(pl.col("reader") == "judge")
    assert judged.height == 20 and judged["label"].null_count() == 0
