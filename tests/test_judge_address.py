"""Issue 24 item 12: a judge of the same name as an evaluated model, at another address, is another model.

The run asks `openai/loopback-judged` at server A (concurrency 1, a price of its own) and its judge is the
same model string at server B. The judge's requests go to B and only there, under limits of their own (not
behind the model's one request at a time), at no price of the model's (litellm knows none for this model
string, so their cost is unknown), and the report names the judge with its address. A judge named by the
model's name, or given as the same string at the same address, is that model: same server, same limits,
same price.

Costs are worked out here from the token counts the results hold and the spec's price (USD per million
tokens); the judge's requests are told from the first answers by the quote markers of the judge's prompt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

import evalrun
from evalrun.spec import ModelConfig
from evalrun.spec.model import asked_model

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

MODEL = "openai/loopback-judged"  # a model string litellm's price list does not have
PRICE = {"input": 1000.0, "output": 2000.0}  # USD per million tokens, the evaluated model's only
ITEMS = [f"i{n}" for n in range(6)]
QUOTE = "<<<BEGIN ANSWER>>>"  # the judge's prompt quotes the answer between markers; first questions do not
JUDGE_KEY = "sk-evalrun-judge-Kq3NEVERSHOWNJUDGE77"  # the judge's key (OPENAI_API_KEY: it names no variable)
HELD = 0.5  # seconds the judge's server holds each request, so requests sent together are in flight together


def _verdict(body: dict[str, Any]) -> str:
    return "The answer names the first letter.\nLABEL: a"


def _spec(write_spec: SpecWriter, folder: Path, base: str, **extra: Any) -> Path:
    """Two variants over ITEMS, `ask` read by the run's judge; its one model at `base`, one request at a time."""
    ask = {"prompt": "Which letter? <{{ id }}>",
           "extract": {"type": "judge", "question": "which letter does answer <{{ id }}> name?"}}
    model = write_spec.model(base, name=MODEL, model=MODEL, concurrency=1, price=PRICE)
    return write_spec(folder, items=ITEMS, variants={"ask": ask, "plain": "Plain? <{{ id }}>"}, models=[model],
                      **extra)


def _cost(frame: pl.DataFrame) -> float:
    """What the rows' tokens cost at the evaluated model's price."""
    return sum(p * PRICE["input"] / 1e6 + c * PRICE["output"] / 1e6
               for p, c in zip(frame["prompt_tokens"], frame["completion_tokens"], strict=True))


@pytest.fixture
def servers(loopback: Callable[..., LoopbackServer], monkeypatch: pytest.MonkeyPatch) -> tuple[LoopbackServer,
                                                                                                  LoopbackServer]:
    """Server A answers the model's questions at once; server B answers the judge's, holding each for HELD s."""
    monkeypatch.setenv("OPENAI_API_KEY", JUDGE_KEY)
    return loopback(default_reply="alpha"), loopback(default_reply=_verdict, latency=HELD)


def _judged(server: LoopbackServer) -> int:
    return server.count(QUOTE)


@pytest.mark.parametrize("given", ["flag", "spec"])
def test_a_judge_of_the_same_name_at_another_address_is_another_model(
        given: str, tmp_path: Path, write_spec: SpecWriter, api_key: ApiKey,
        servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    model_server, judge_server = servers
    judge = f"{MODEL}@{judge_server.base_url}"
    if given == "flag":
        run = evalrun.run(_spec(write_spec, tmp_path, model_server.base_url), judge=judge, workers=0,
                          out=tmp_path / "out", retries=0)
    else:
        run = evalrun.run(_spec(write_spec, tmp_path, model_server.base_url, judge=judge), workers=0,
                          out=tmp_path / "out", retries=0)

    # (a) each server gets its own requests, and only those
    assert (len(model_server.requests), _judged(model_server)) == (2 * len(ITEMS), 0)
    assert (len(judge_server.requests), _judged(judge_server)) == (len(ITEMS), len(ITEMS))
    assert run.results["label"].to_list() == ["a"] * 2 * len(ITEMS)

    # (b) the model is asked one request at a time; its judge is not queued behind that one request
    assert max(model_server.peak_in_flight.values()) == 1
    assert max(judge_server.peak_in_flight.values()) >= 2

    # (c) the first answers cost the model's price; the judge's replies have no price (none was given for
    # the judge, and litellm knows none for this model string), so their cost is unknown, not the model's
    totals = run.summary["totals"]
    assert totals["cost_usd"] == pytest.approx(_cost(run.results))
    requests = pl.read_parquet(run.dir / "reader_requests.parquet")
    assert requests["cost"].null_count() == len(ITEMS)
    assert (totals["readers"]["cost_usd"], totals["readers"]["cost_unknown_responses"]) == (None, len(ITEMS))

    # (d) the judge is named with its address wherever its requests are counted, apart from the model
    assert run.summary["run"]["models"] == [{"name": MODEL, "model": MODEL, "api_base": model_server.base_url}]
    assert run.summary["run"]["judges"] == [{"name": judge, "model": MODEL, "api_base": judge_server.base_url}]
    assert requests["model"].to_list() == [judge] * len(ITEMS)
    report = (run.dir / "report.md").read_text(encoding="utf-8")
    (readers,) = [line for line in report.splitlines() if line.startswith("- readers asked ")]
    assert readers.startswith(f"- readers asked `{judge}` ({MODEL}): {len(ITEMS)} requests")
    assert readers.endswith("cost unknown (no price known for these models)")
    summary = (run.dir / "summary.json").read_text(encoding="utf-8")
    for secret in (api_key.secret, JUDGE_KEY):
        assert secret not in summary and secret not in report


@pytest.mark.parametrize("judge", ["name", "address"])
def test_a_judge_that_is_the_model_at_its_own_address_shares_its_limits_and_price(
        judge: str, tmp_path: Path, write_spec: SpecWriter,
        servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    model_server, judge_server = servers
    # named by the model's `name:`, or given as its model string at its address: the same server either way
    named = MODEL if judge == "name" else f"{MODEL}@{model_server.base_url}"
    run = evalrun.run(_spec(write_spec, tmp_path, model_server.base_url, judge=named), workers=0,
                      out=tmp_path / "out", retries=0)

    assert (len(model_server.requests), _judged(model_server), len(judge_server.requests)) == (
        3 * len(ITEMS), len(ITEMS), 0)
    assert max(model_server.peak_in_flight.values()) == 1  # the judge's requests wait their turn too
    requests = pl.read_parquet(run.dir / "reader_requests.parquet")
    assert requests["model"].to_list() == [MODEL] * len(ITEMS)
    assert run.summary["totals"]["readers"]["cost_usd"] == pytest.approx(_cost(requests))
    assert run.summary["run"]["judges"] == [{"name": MODEL, "model": MODEL, "api_base": model_server.base_url}]


def test_a_judge_is_named_with_its_address_without_its_credentials() -> None:
    model = ModelConfig(model=MODEL, name=MODEL, api_base="http://127.0.0.1:9/v1", concurrency=1, price=(1.0, 2.0))
    at = "http://user:PWjudge8Q@127.0.0.1:8/v1?api-key=Kjudge5Z&api-version=2"
    judge = asked_model(f"{MODEL}@{at}", [model])
    assert judge.name == f"{MODEL}@http://127.0.0.1:8/v1?api-key=[REDACTED]&api-version=2"
    assert (judge.api_base, judge.price, judge.concurrency) == (at, None, ModelConfig.concurrency)
    # the model by its name, or by its string and address; anything else is a model of its own
    assert asked_model(MODEL, [model]) is asked_model(f"{MODEL}@http://127.0.0.1:9/v1", [model]) is model
    assert asked_model("openai/other", [model]) == ModelConfig(model="openai/other", name="openai/other")


@pytest.mark.slow
def test_through_a_sender_process_the_judge_s_requests_go_to_its_own_address(
        tmp_path: Path, write_spec: SpecWriter, servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    model_server, judge_server = servers
    run = evalrun.run(_spec(write_spec, tmp_path, model_server.base_url), judge=f"{MODEL}@{judge_server.base_url}",
                      workers=1, out=tmp_path / "out", retries=0)
    assert (len(model_server.requests), _judged(model_server)) == (2 * len(ITEMS), 0)
    assert _judged(judge_server) == len(ITEMS)
    assert json.loads((run.dir / "summary.json").read_text("utf-8"))["totals"]["readers"]["failed"] == 0


def test_one_model_string_at_two_addresses_may_have_two_prices(tmp_path: Path, write_spec: SpecWriter,
                                                                loopback: Callable[..., LoopbackServer]) -> None:
    # each entry's price is its own (providers.own_price), so the spec check that refused a second price for one
    # model string (when litellm held the one price per string) would only stop a valid spec
    a, b = loopback(default_reply="a"), loopback(default_reply="a")
    cheap = {"input": 1.0, "output": 2.0}
    models = [write_spec.model(a.base_url, name="dear", model=MODEL, price=PRICE),
              write_spec.model(b.base_url, name="cheap", model=MODEL, price=cheap)]
    spec = write_spec(tmp_path, items=ITEMS, variants={"plain": "Plain? <{{ id }}>", "other": "Other? <{{ id }}>"},
                      models=models)
    run = evalrun.run(spec, out=tmp_path / "reports", retries=0, figures=False)
    frame = run.results
    for name, price in (("dear", PRICE), ("cheap", cheap)):
        rows = frame.filter(pl.col("model") == name)
        expected = sum(p * price["input"] / 1e6 + c * price["output"] / 1e6
                       for p, c in zip(rows["prompt_tokens"], rows["completion_tokens"], strict=True))
        assert rows.height == 2 * len(ITEMS) and expected > 0
        assert sum(rows["cost"].to_list()) == pytest.approx(expected)


def test_max_cost_warns_about_a_judge_it_cannot_price(tmp_path: Path, write_spec: SpecWriter,
                                                      loopback: Callable[..., LoopbackServer]) -> None:
    # the judge at B is a model of its own with no price litellm knows: the budget cannot see its requests coming,
    # which the run says as it does for the spec's own unpriced models (the evaluated model here has a price)
    a, b = loopback(default_reply="a"), loopback(default_reply=_verdict)
    warnings: list[str] = []
    evalrun.run(_spec(write_spec, tmp_path, a.base_url), judge=f"{MODEL}@{b.base_url}", max_cost=100.0,
                out=tmp_path / "reports", retries=0, figures=False, warn=warnings.append)
    assert warnings == [f"evalrun: warning: judge '{MODEL}@{b.base_url}': litellm knows no price for {MODEL}, so "
                        "--max-cost cannot stop its requests"]
