"""The runner's parts: error classification, backoff, rate and concurrency limits, budget, progress."""

from __future__ import annotations

import asyncio
import io
import json
import os
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported: no price-list download

import httpx
import litellm
import polars as pl
import pytest
from aiohttp import web

from evalrun import cli, pacing, runner, sendpath
from evalrun.cli import main
from evalrun.dataset import load_dataset
from evalrun.design import Cell, Design
from evalrun.jobs import Job
from evalrun.progress import Display
from evalrun.providers import Answer, classify, retry_after
from evalrun.sendpath import Outcome, RetryPolicy, RunOptions
from evalrun.spec import ModelConfig, load_spec
from evalrun.store import Store, StoredResponse

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import OneStage, Quiet

SECRET = "sk-runner-QQ77SECRETSECRET"
KEY_ENV = "EVALRUN_RUNNER_KEY"


def _status_error(cls: type[Exception], status: int, headers: dict[str, str] | None = None) -> Exception:
    response = httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://x/v1"))
    return cls(message=f"failed with key {SECRET}", llm_provider="openai", model="m", response=response)


@pytest.mark.parametrize(("exc", "retryable"), [
    (_status_error(litellm.RateLimitError, 429), True),
    (_status_error(litellm.InternalServerError, 500), True),
    (_status_error(litellm.ServiceUnavailableError, 503), True),
    (litellm.Timeout(message="timed out", model="m", llm_provider="openai"), True),
    (litellm.APIConnectionError(message="reset", llm_provider="openai", model="m"), True),
    (TimeoutError(), True),
    (litellm.BadRequestError(message="bad", model="m", llm_provider="openai"), False),
    (litellm.ContextWindowExceededError(message="too long", model="m", llm_provider="openai"), False),
    (litellm.AuthenticationError(message=f"bad key {SECRET}", llm_provider="openai", model="m"), False),
    (litellm.NotFoundError(message="no model", model="m", llm_provider="openai"), False),
    (ValueError("a bug of ours"), False),
])
def test_classify(exc: Exception, retryable: bool) -> None:
    error = classify(exc, [SECRET])
    assert error.retryable is retryable
    assert error.error_class == type(exc).__name__
    assert SECRET not in error.message and error.message


def test_retry_after_is_read_where_litellm_keeps_it() -> None:
    # litellm 1.106.2 puts the real headers on `litellm_response_headers`; `response` has none
    exc = _status_error(litellm.RateLimitError, 429)
    exc.litellm_response_headers = httpx.Headers({"Retry-After": "7"})  # type: ignore[attr-defined]
    assert classify(exc, []).retry_after == 7.0
    assert retry_after(_status_error(litellm.RateLimitError, 429, {"retry-after": "2.5"})) == 2.5
    assert retry_after(_status_error(litellm.RateLimitError, 429, {"retry-after-ms": "1500"})) == 1.5
    date = format_datetime(datetime.now(UTC), usegmt=True)
    assert 0 <= retry_after(_status_error(litellm.RateLimitError, 429, {"Retry-After": date})) <= 1  # type: ignore[operator]
    assert retry_after(_status_error(litellm.RateLimitError, 429)) is None


def test_backoff_is_capped_jittered_and_yields_to_retry_after() -> None:
    policy = RetryPolicy(attempts=4, base=1.0, cap=8.0)
    assert all(0 <= policy.delay(1, None) <= 1 for _ in range(50))
    assert all(0 <= policy.delay(10, None) <= 8 for _ in range(50))
    assert policy.delay(1, 5.0) == 5.0
    assert policy.delay(1, 10_000.0) == 16.0  # a nonsensical Retry-After cannot stall the run for hours


def test_cli_defaults_match_the_runner() -> None:
    run = cli._parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    assert (run.get_default("retries"), run.get_default("retry_delay")) == (sendpath.DEFAULT_RETRIES,
                                                                            sendpath.DEFAULT_RETRY_DELAY)
    assert RetryPolicy() == RetryPolicy(attempts=sendpath.DEFAULT_RETRIES + 1, base=sendpath.DEFAULT_RETRY_DELAY)
    text = " ".join(run.format_help().split())
    assert "--max-errors SHARE exit 1 if more than this share of jobs failed (default 0.1)" in text
    assert "--retries N" in text and "--retry-delay SECONDS" in text


def test_the_same_model_twice_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # two models of one name would share one result slot per job; nothing is asked
    gender = Path(__file__).resolve().parent.parent / "evals" / "gender.yaml"
    for second in ("openai/x", "openai/x@http://127.0.0.1:9/v1"):
        code = main(["run", str(gender), "--model", "openai/x", "--model", second])
        assert code == 2
        assert capsys.readouterr().err == (
            "evalrun: error: --model: 'openai/x' is given twice (a model string names one model, whatever its "
            "address; two servers of one model need two `models:` entries with their own names)\n")


class CountingServer(LoopbackServer):
    """Also records the most requests it ever held at once, and when each arrived."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.in_flight = self.most_in_flight = 0
        self.arrivals: list[float] = []

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super()._handle_chat(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with CountingServer(default_reply="alpha", latency=0.02) as s:
        yield s


def write_spec(folder: Path, model: str, items: int) -> Path:
    (folder / "items.jsonl").write_text("".join(json.dumps({"id": f"i{n}"}) + "\n" for n in range(items)))
    extract = "{type: choice, choices: {a: [alpha], b: [beta]}}"
    spec = folder / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""\
        name: limits
        dataset: {{path: items.jsonl}}
        labels: [a, b]
        variants:
          one: {{prompt: "ONE {{{{ id }}}}", extract: {extract}}}
          two: {{prompt: "TWO {{{{ id }}}}", extract: {extract}}}
        models:
          - {{model: {model}, name: m, api_base: 'BASE', api_key_env: {KEY_ENV}, concurrency: 3}}
        """))
    return spec


def run(capsys: pytest.CaptureFixture[str], spec: Path, server: LoopbackServer, *args: str) -> tuple[int, Path, str]:
    spec.write_text(spec.read_text().replace("BASE", server.base_url))
    capsys.readouterr()
    code = main([str(spec), "--out", str(spec.parent / "out"), *args])
    out, err = capsys.readouterr()
    assert out.strip(), err
    return code, Path(out.strip().splitlines()[-1]), err


def test_concurrency_queues_requests_rather_than_rejecting_them(
        tmp_path: Path, server: CountingServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = write_spec(tmp_path, "openai/loop", items=15)
    code, report, _ = run(capsys, spec, server, "--rpm", "600", "--concurrency", "25")
    assert code == 0
    assert pl.read_parquet(report.parent / "results.parquet")["error_class"].null_count() == 30
    assert len(server.arrivals) == 30 and server.most_in_flight <= 25

    server.arrivals.clear()
    server.most_in_flight = 0
    code, _, _ = run(capsys, spec, server, "--fresh", "--concurrency", "2")
    assert code == 0 and len(server.arrivals) == 30 and server.most_in_flight <= 2


class VirtualTime:
    """A clock that moves only when a pacer sleeps (or a test says so): pacing checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # what is ready runs first, at the time it was ready at (a request booked before this sleep is sent
        # then, not a sleep later); then the clock moves
        await asyncio.sleep(0)
        self.now += seconds


def test_rpm_lets_one_second_s_worth_go_at_once_then_one_request_per_interval() -> None:
    # --rpm 600: a bucket of 10 (one second's worth) draining 10 a second. 30 requests at once: 10 at t=0,
    # then one every 0.1 s, the last at 2.0 s (a leaky bucket, recomputed here by hand).
    time_ = VirtualTime()
    pace = pacing.Pace(600, None, time_.clock, time_.sleep)
    sent: list[float] = []

    async def one() -> None:
        await pace.request(0)
        sent.append(time_.now)

    async def all_at_once() -> None:
        await asyncio.gather(*(one() for _ in range(30)))

    asyncio.run(all_at_once())
    assert sent == pytest.approx([0.0] * 10 + [0.1 * k for k in range(1, 21)])


class BlockingSender:
    """Readying blocks the loop for two seconds, as importing litellm does; records when each request goes."""

    def __init__(self, time_: VirtualTime) -> None:
        self.time = time_
        self.readied = False
        self.sent: list[float] = []

    def want(self, count: int) -> None:
        pass

    async def ready(self, models: list[ModelConfig]) -> None:
        if not self.readied:
            self.readied = True
            self.time.now += 2.0  # no await: nothing else runs meanwhile

    async def ask(self, job: Job, key: str | None) -> Answer:
        self.sent.append(self.time.now)
        return Answer("alpha", "stop", 1, 1, None)

    async def close(self) -> None:
        pass


def test_rpm_paces_at_the_moment_of_sending_not_before_readying_blocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: Quiet, one_stage: OneStage) -> None:
    """Issue 22.8: pacing taken before litellm's first import blocked the loop let about two seconds' worth
    reach the provider at once (the tokens taken before, and a bucket drained during the block)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    path = write_spec(tmp_path, "openai/loop", items=15)
    path.write_text(path.read_text().replace("BASE", "http://127.0.0.1:9/v1"))  # never asked: the sender answers
    spec = load_spec(path)
    spec.models = [replace(m, rpm=600, concurrency=25) for m in spec.models]
    design = Design(spec, load_dataset(spec))
    time_ = VirtualTime()
    sender = BlockingSender(time_)
    store = Store(tmp_path / "store.sqlite")
    ran = runner.Runner(store, RunOptions(), quiet, sender=sender,
                        pace=lambda m: pacing.Pace(m.rpm, m.tpm, time_.clock, time_.sleep))

    one_stage(ran, {m.name: design.expand(only=m) for m in spec.models}, spec.models)
    store.close()
    assert len(sender.sent) == 30
    # never more than one second's worth (10) at one instant (before the fix: 20 when the block ended), and
    # 30 requests at 10 a second take at least 2 s after the first
    assert max(sum(abs(t - u) < 1e-9 for u in sender.sent) for t in sender.sent) <= 10
    assert sender.sent[-1] - sender.sent[0] >= 2.0 - 1e-9


def test_tpm_paces_by_estimated_tokens_even_when_one_request_exceeds_a_second_s_worth(
        tmp_path: Path, server: CountingServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = write_spec(tmp_path, "openai/loop", items=2)
    # each prompt counts 10 tokens (litellm.token_counter on "ONE i0" as a user message), no max_tokens.
    # --tpm 480 is 8 tokens a second, less than one request: each takes the bucket twice. 4 requests
    # need 40 tokens, 8 of them in the bucket at the start: the last can go only after ~4 s.
    code, report, _ = run(capsys, spec, server, "--tpm", "480", "--concurrency", "4")
    assert code == 0
    assert pl.read_parquet(report.parent / "results.parquet")["label"].to_list() == ["a"] * 4
    assert len(server.arrivals) == 4
    assert server.arrivals[-1] - server.arrivals[0] >= 2.5


def test_tpm_charges_tokens_beyond_the_estimate_once_the_answer_is_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = write_spec(tmp_path, "openai/loop", items=4)
    # estimated 10 tokens a request, but the server reports 2 + 80 used. --tpm 6000 is 100 a second
    # with 100 in the bucket: by the estimate alone (8 x 10) all 8 would go at once. Paying what was
    # used, the last request waits for 4 x 82 + 4 x 10 - 100 tokens: ~2.7 s (the server sees the
    # first requests up to ~0.4 s late, behind litellm's first-call work, so it sees a shorter span).
    with CountingServer(default_reply="alpha" + " word" * 79, latency=0.02) as server:
        code, _, _ = run(capsys, spec, server, "--tpm", "6000", "--concurrency", "4")
        assert code == 0 and len(server.arrivals) == 8
        assert server.arrivals[-1] - server.arrivals[0] >= 1.0


def test_max_cost_stops_new_requests(tmp_path: Path, server: CountingServer, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    # litellm prices gpt-4o-mini from its bundled list, whatever server answers
    spec = write_spec(tmp_path, "openai/gpt-4o-mini", items=5)
    code, report, _ = run(capsys, spec, server, "--max-cost", "0.0000001", "--concurrency", "1")
    assert code == 1  # 9 of 10 jobs not asked
    frame = pl.read_parquet(report.parent / "results.parquet")
    assert len(server.arrivals) == 1
    assert frame["error_class"].to_list().count("BudgetExceeded") == 9
    assert frame["cost"].drop_nulls().to_list()[0] > 0
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["totals"]["cost_usd"] > 0 and summary["totals"]["cost_unknown_responses"] == 0


def test_a_price_in_the_spec_makes_cost_and_max_cost_count(tmp_path: Path, server: CountingServer,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    # litellm keeps registered prices for the whole process: a model name no other test uses
    spec = write_spec(tmp_path, "openai/priced-loop", items=3)
    priced = "concurrency: 1, price: {input: 1000000, output: 500000}}"
    spec.write_text(spec.read_text().replace("concurrency: 3}", priced))
    # $1 a prompt token, $0.50 a completion token; the server counts "ONE i0" as 2 and "alpha" as 1: $2.50 a
    # request, so --max-cost 5 is spent after two requests and the other four are not sent
    code, report, err = run(capsys, spec, server, "--max-cost", "5")
    assert code == 1 and len(server.arrivals) == 2
    assert "no price" not in err
    frame = pl.read_parquet(report.parent / "results.parquet")
    assert frame["cost"].drop_nulls().to_list() == [2.5, 2.5]
    assert frame["error_class"].to_list().count("BudgetExceeded") == 4
    totals = json.loads((report.parent / "summary.json").read_text())["totals"]
    assert (totals["cost_usd"], totals["cost_unknown_responses"]) == (5.0, 0)


def test_max_cost_warns_about_models_it_cannot_price(tmp_path: Path, server: CountingServer,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    spec = write_spec(tmp_path, "openai/loop", items=1)
    code, _, err = run(capsys, spec, server, "--max-cost", "0.01")
    assert code == 0 and len(server.arrivals) == 2
    assert ("model 'm': litellm knows no price for openai/loop, so --max-cost cannot stop its requests (give it a "
            "`price` in the spec)") in err


def _outcome(model: ModelConfig, cost: float | None, status: str = "ok", cached: bool = False) -> Outcome:
    job = Job(cell=Cell(model.name, None, "v", None, None, "i", 0), job_id="i/v/m/0", key="k", model=model,
              messages=[{"role": "user", "content": "q"}], params={}, item={"id": "i"}, position=0)
    response = StoredResponse(key="k", model=model.model, api_base=None, request="{}", status=status,
                              text="a" if status == "ok" else None, finish_reason="stop", prompt_tokens=3,
                              completion_tokens=2, cost=cost, latency=0.1, attempts=1,
                              error_class=None if status == "ok" else "Timeout", error_message=None,
                              created_at=0.0)
    return Outcome(job, response, cached)


def test_plain_progress_lines_mark_unknown_cost() -> None:
    priced, local = ModelConfig(model="openai/gpt-4o-mini", name="priced"), ModelConfig(model="x/y", name="local")
    stream = io.StringIO()
    display = Display({"priced": 3, "local": 2}, stream=stream, interval=0.0)
    display.finished(_outcome(priced, 0.25))
    display.finished(_outcome(priced, None))
    display.finished(_outcome(priced, None, status="error"))
    display.finished(_outcome(local, None, cached=True))
    display.close()
    last = stream.getvalue().splitlines()[-2:]
    assert "priced: 3/3 done (0 stored), 1 errors" in last[0] and "$0.2500 + 1 of unknown price" in last[0]
    assert "local: 1/2 done (1 stored)" in last[1] and "cost unknown" in last[1] and "ETA" not in last[1]
    assert "ETA" not in last[0] and "tokens" in last[0]


def test_rich_progress_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    display = Display({"local": 2}, stream=stream)
    assert display.progress is not None
    display.finished(_outcome(ModelConfig(model="x/y", name="local"), None))
    display.close()
    assert "local" in stream.getvalue() and "cost unknown" in stream.getvalue()
