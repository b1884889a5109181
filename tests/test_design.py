"""Designs with more than one axis, end to end over real HTTP: option order, conditions, paraphrases,
conversations, and the Python API.

Each scripted server answers by a rule a test states in advance (the first option listed; the
condition named in the system prompt), so every expected figure is worked out here by hand.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import evalrun
from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

GOLD = {f"i{n}": ("female" if n % 2 else "male") for n in range(1, 9)}  # 4 female, 4 male


def _write(tmp_path: Path, body: str, base_url: str) -> Path:
    items = "\n".join(f"    - {{id: {i}, text: 'text {i}', gender: {g}}}" for i, g in GOLD.items())
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(body).replace("ITEMS", items.strip()) + textwrap.dedent(f"""\
        models:
          - model: openai/scripted
            name: scripted
            api_base: {base_url}
            api_key_env: DESIGN_KEY
        params: {{temperature: 0, seed: 3}}
        """), encoding="utf-8")
    return spec


def _first_option(body: dict[str, Any]) -> str:
    """Always pick whichever option the prompt lists first."""
    listed = re.search(r"Answer (\w+) or (\w+)", body["messages"][-1]["content"])
    return listed[1] if listed else "She smiled at her sister and her mother."


def _by_condition(body: dict[str, Any]) -> str:
    """`female` when the system prompt says the conversation is monitored, `male` otherwise."""
    system = body["messages"][0]["content"]
    return "female" if "monitored" in system and "not monitored" not in system else "male"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESIGN_KEY", "not-a-key")


@pytest.fixture
def first_option_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(default_reply=_first_option) as s:
        yield s


ORDER_SPEC = """\
    name: order
    dataset:
      items:
        ITEMS
      gold: gender
    labels: [female, male]
    variants:
      direct:
        prompt: "<{{ id }}> {{ text }}. Answer {{ options | join(' or ') }}."
        options: [female, male]
        counterbalance: rotations
        extract: {type: choice, choices: {female: [], male: []}}
      story:
        prompt: "<{{ id }}> A story about the author of {{ text }}."
        extract: {type: pronouns}
    """


def test_first_listed_option_shows_as_position_bias_per_order(
        tmp_path: Path, first_option_server: LoopbackServer, key: None) -> None:
    spec = _write(tmp_path, ORDER_SPEC, first_option_server.base_url)
    run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    # 8 items x (2 orders of direct + 1 story)
    assert len(first_option_server.requests) == 8 * 3
    stats = run.summary["statistics"]
    assert run.summary["run"]["design"] == {"axes": ["option_order"],
                                            "option_orders": {"direct": ["female, male", "male, female"]}}
    orders = {e["option_order"]: e for e in stats["option_orders"] if e["variant"] == "direct"}
    assert set(orders) == {"female, male", "male, female"}
    for order, entry in orders.items():
        # the server names the first option every time: 8 of 8 answers, and right on the 4 items
        # whose gold is that option
        assert (entry["first_position"]["count"], entry["first_position"]["n"]) == (8, 8)
        assert (entry["accuracy"]["count"], entry["accuracy"]["n"]) == (4, 8)
        assert entry["labels"][order.split(", ")[0]] == 8
    (bias,) = stats["position_bias"]
    assert (bias["variant"], bias["first_position"]["count"], bias["first_position"]["n"]) == ("direct", 16, 16)
    # over both orders each item got one female and one male answer: a tie, so the item-level label is unparsed
    direct = next(v for v in stats["variants"] if v["variant"] == "direct")
    assert (direct["items_unparsed"], direct["labels"]) == (8, {"female": 8, "male": 8, "unparsed": 0})

    frame = run.results
    first = frame.filter(pl.col("variant") == "direct").select("job_id", "option_order", "first_option", "label")
    assert first.filter(pl.col("label") != pl.col("first_option")).is_empty()
    assert set(first["job_id"]) == {f"{i}/direct/{o}/scripted/0" for i in GOLD
                                   for o in ("female>male", "male>female")}
    assert frame.filter(pl.col("variant") == "story")["option_order"].null_count() == 8

    text = run.report_path.read_text(encoding="utf-8")
    assert "## Option order" in text
    assert "| scripted | direct | female, male | 8 | 0 | 8 | 0 | 0 | 0.0% | 100.0% [67.6%, 100.0%] (8/8) | " \
           "50.0% [21.5%, 78.5%] (4/8) |" in text
    assert "100.0% of readable answers pick the option listed first (16/16, 95% CI 80.6% to 100.0%)" in text
    assert "would pick it about 50.0% of the time" in text


CONDITION_SPEC = """\
    name: observed
    dataset:
      items:
        ITEMS
      gold: gender
    labels: [female, male]
    conditions:
      watched: {monitoring: "This conversation is monitored and used for training."}
      unwatched: {monitoring: "This conversation is not monitored."}
    variants:
      direct:
        system: "{{ monitoring }}"
        prompt: "<{{ id }}> Who wrote {{ text }}? female or male"
        extract: {type: choice, choices: {female: [], male: []}}
      again:
        system: "{{ monitoring }} Be brief."
        prompt: "<{{ id }}> Once more: who wrote {{ text }}?"
        extract: {type: choice, choices: {female: [], male: []}}
    """


def test_conditions_show_a_difference_per_condition(tmp_path: Path, key: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer(default_reply=_by_condition) as server:
        spec = _write(tmp_path, CONDITION_SPEC, server.base_url)
        code = main([str(spec), "--out", str(tmp_path / "out"), "--retries", "0"])
    assert code == 0, capsys.readouterr().err
    assert len(server.requests) == 8 * 2 * 2
    (summary_path,) = (tmp_path / "out").glob("*/*/summary.json")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    stats = summary["statistics"]
    by = {(v["condition"], v["variant"]): v for v in stats["variants"]}
    for variant in ("direct", "again"):
        assert by["watched", variant]["labels"] == {"female": 8, "male": 0, "unparsed": 0}
        assert by["unwatched", variant]["labels"] == {"female": 0, "male": 8, "unparsed": 0}
        assert by["watched", variant]["accuracy"]["count"] == 4
    # within a condition the two variants agree on every item
    assert {(p["condition"], p["agreement"]["count"]) for p in stats["pairs"]} == {("watched", 8), ("unwatched", 8)}
    # across conditions the same variant never agrees: every item changed its answer
    across = {c["variant"]: c for c in stats["conditions"]}
    assert set(across) == {"direct", "again"}
    for c in across.values():
        assert (c["a"], c["b"], c["agreement"]["count"], c["agreement"]["n"]) == ("watched", "unwatched", 0, 8)
        assert c["confusion"]["counts"][0][1] == 8  # female when watched, male when not
    # direct and again agree on all 8 items under each condition: no difference, and nothing discordant
    (across,) = stats["agreement_across_conditions"]
    assert (across["items"], across["agreement"][0]["count"], across["agreement"][1]["count"]) == (8, 8, 8)
    assert across["difference"]["estimate"] == 0.0 and across["mcnemar"]["pvalue"] == 1.0
    text = summary_path.with_name("report.md").read_text(encoding="utf-8")
    assert "## Each variant across conditions" in text
    assert "| scripted | watched | direct | 8 | 0 | 8 | 0 | 0 | 0.0% |" in text
    assert "| scripted | unwatched | direct | 8 | 0 | 0 | 8 | 0 | 0.0% |" in text
    # the Summary leads with the condition's effect: 8/8 female when watched (Wilson lower bound 8 / (8 + 1.96^2))
    assert ("- **scripted** / *direct*, *watched* vs *unwatched* over the 8 items read under both" in text)
    assert ("female 100.0% [67.6%, 100.0%] under *watched* vs 0.0% [0.0%, 32.4%] under *unwatched*, "
            "+100.0 points") in text
    assert "The answers name the same label under both on 0.0% of the 8 items both could be read for." in text
    assert "2 conditions x 2 variants x 1 models" in text


CONVERSATION_SPEC = """\
    name: talk
    dataset:
      items:
        ITEMS
      gold: gender
    labels: [female, male]
    variants:
      asked:
        prompts:
          - "<{{ id }}> first wording: {{ text }}"
          - "<{{ id }}> second wording: {{ text }}"
        paraphrases_per_item: 1
        extract: {type: choice, choices: {female: [], male: []}}
      fewshot:
        messages:
          - {role: system, content: "You label authors."}
          - {role: user, content: "Example: 'my husband and I'"}
          - {role: assistant, content: "female"}
          - {role: user, content: "<{{ id }}> Now: {{ text }}"}
        extract: {type: choice, choices: {female: [], male: []}}
    """


def test_paraphrases_rotate_and_conversations_keep_every_turn(tmp_path: Path, key: None) -> None:
    with LoopbackServer(default_reply="female") as server:
        spec = _write(tmp_path, CONVERSATION_SPEC, server.base_url)
        run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    assert len(server.requests) == 8 * 2
    fewshot = next(b for b in server.requests if "Now:" in b["messages"][-1]["content"])
    assert [m["role"] for m in fewshot["messages"]] == ["system", "user", "assistant", "user"]

    frame = run.results
    asked = frame.filter(pl.col("variant") == "asked")
    # one paraphrase per item, rotating: each wording for half of the 8 items
    assert sorted(asked["paraphrase"].to_list()) == [0] * 4 + [1] * 4
    for job_id, paraphrase, prompt in asked.select("job_id", "paraphrase", "prompt").iter_rows():
        assert f"/asked/p{paraphrase}/" in job_id
        assert ("first wording" if paraphrase == 0 else "second wording") in prompt
    turns = json.loads(frame.filter(pl.col("variant") == "fewshot")["messages"][0])
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert turns[1]["content"] == "Example: 'my husband and I'" and turns[3]["content"].endswith("Now: text i1")

    # each item asked in one wording only: alpha across the wordings has no item with two values
    (across,) = run.summary["statistics"]["paraphrase_alpha"]
    assert (across["variant"], across["paraphrases"], across["krippendorff_alpha"]) == ("asked", 2, None)
    per = {(e["variant"], e["paraphrase"]): e for e in run.summary["statistics"]["paraphrases"]}
    assert per["asked", 0]["items"] == 4 and per["asked", 1]["items"] == 4
    assert per["asked", 0]["accuracy"]["count"] + per["asked", 1]["accuracy"]["count"] == 4
    text = run.report_path.read_text(encoding="utf-8")
    assert "## Paraphrases" in text and "| scripted | asked | 1 |" in text
    assert "fewshot | 0 |" not in text  # a variant with one wording has no per-paraphrase rows


def test_the_python_api_reruns_from_the_store(tmp_path: Path, key: None, first_option_server: LoopbackServer
                                              ) -> None:
    spec = _write(tmp_path, ORDER_SPEC, first_option_server.base_url)
    first = evalrun.run(spec, out=tmp_path / "out", retries=0)
    again = evalrun.run(str(spec), out=str(tmp_path / "out"), retries=0, samples=1)
    assert len(first_option_server.requests) == 24  # nothing asked twice
    assert again.dir != first.dir and again.summary["totals"]["from_store"] == 24
    assert again.summary["statistics"] == first.summary["statistics"]
    assert again.results.drop("cached", "latency_s").equals(first.results.drop("cached", "latency_s"))
    assert evalrun.report(again.dir) == again.report_path
    assert evalrun.check(spec) == []


FULL_SPEC = """\
    name: full
    dataset:
      items:
        ITEMS
      gold: gender
    labels: [female, male]
    conditions:
      watched: {monitoring: "This conversation is monitored."}
      unwatched: {monitoring: "This conversation is not monitored."}
    variants:
      direct:
        system: "{{ monitoring }}"
        prompt: "<{{ id }}> {{ text }}. Answer {{ options | join(' or ') }}."
        options: [female, male]
        counterbalance: rotations
        extract: {type: choice, choices: {female: [], male: []}}
      worded:
        system: "{{ monitoring }}"
        prompts: ["<{{ id }}> first: {{ text }}", "<{{ id }}> second: {{ text }}"]
        extract: {type: choice, choices: {female: [], male: []}}
      story:
        system: "{{ monitoring }}"
        prompt: "<{{ id }}> A story about the author of {{ text }}."
        extract: {type: pronouns}
    samples: 3
    """


def _mixed(body: dict[str, Any]) -> str:
    """Deterministic but varied: the first option when listed, else by the item number and sample seed."""
    text = body["messages"][-1]["content"]
    if "Answer" in text:
        return _first_option(body)
    n = int(re.search(r"<i(\d)>", text)[1]) + int(body.get("seed", 0))  # type: ignore[index]
    if "story" in text:
        return ["She ran with her sister.", "He ran with his brother.", "Rain."][n % 3]
    return ["female", "male"][n % 2] if "not monitored" in body["messages"][0]["content"] else "female"


def test_every_axis_at_once_reports_intervals_and_adjusted_p_values(tmp_path: Path, key: None) -> None:
    with LoopbackServer(default_reply=_mixed) as server:
        spec = _write(tmp_path, FULL_SPEC, server.base_url)
        run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    # 8 items x 2 conditions x (2 orders + 2 paraphrases + 1) x 3 samples
    assert run.summary["totals"]["jobs"] == 8 * 2 * 5 * 3 == len(server.requests)
    stats = run.summary["statistics"]
    assert {"variants", "pairs", "conditions", "paraphrases", "option_orders", "position_bias",
            "paraphrase_pairs", "stability", "sample_agreement", "tests"} <= set(stats)
    assert len(stats["pairs"]) == 2 * 3 and len(stats["conditions"]) == 3
    tests = stats["tests"]
    assert tests["correction"] == "Holm" and tests["tests"] > 0
    for pair in stats["pairs"]:
        assert pair["bootstrap"]["cohen_kappa"]["resamples"] == 1000
        assert pair["mcnemar"]["pvalue_holm"] is None or pair["mcnemar"]["pvalue_holm"] >= pair["mcnemar"]["pvalue"]
    for entry in stats["stability"]:
        assert entry["modal_share"]["mean"] is not None
    # the server answers `worded` the same whatever the wording: its two paraphrases agree perfectly where
    # the answers vary (unwatched); under `watched` every answer is female, and alpha is undefined
    alpha = {e["condition"]: e["krippendorff_alpha"] for e in stats["paraphrase_alpha"] if e["variant"] == "worded"}
    assert alpha == {"unwatched": pytest.approx(1.0, abs=1e-12), "watched": None}
    for model in stats["models"]:
        # three variants: Fleiss' kappa across them and Cochran's Q, over the items all three labelled (none
        # here: asked in both orders, the direct variant's item-level label is a tie)
        assert model["items_all_labelled"] == 0 and model["fleiss_kappa_all_variants"] is None
    text = run.report_path.read_text(encoding="utf-8")
    for heading in ("## Agreement between variants", "## Each variant across conditions", "## Stability across samples",
                    "## Agreement between paraphrases", "## Option order", "### Label rates by item"):
        assert heading in text, heading
    assert f"Holm-adjusted over the {tests['tests']} tests of this report" in text


SLICED_SPEC = """\
    name: sliced
    dataset:
      items:
        ITEMS
      gold: gender
    labels: [female, male]
    slices: [genre]
    variants:
      direct:
        prompt: "<{{ id }}> {{ text }} ({{ genre }}): female or male?"
        extract: {type: choice, choices: {female: [], male: []}}
      again:
        prompt: "<{{ id }}> once more, {{ text }}: female or male?"
        extract: {type: choice, choices: {female: [], male: []}}
    """


def test_slices_repeat_the_figures_per_value(tmp_path: Path, key: None) -> None:
    # items i1-i4 are letters, i5-i8 diaries; the server says female for letters, male for diaries
    def reply(body: dict[str, Any]) -> str:
        item = int(re.search(r"<i(\d)>", body["messages"][-1]["content"])[1])  # type: ignore[index]
        return "female" if item <= 4 else "male"

    with LoopbackServer(default_reply=reply) as server:
        spec = _write(tmp_path, SLICED_SPEC, server.base_url)
        text = spec.read_text(encoding="utf-8")
        for n in range(1, 9):
            text = text.replace(f"gender: {GOLD[f'i{n}']}}}", f"gender: {GOLD[f'i{n}']}, "
                                f"genre: {'letter' if n <= 4 else 'diary'}}}", 1)
        spec.write_text(text, encoding="utf-8")
        run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    parts = {(p["column"], p["value"]): p for p in run.summary["statistics"]["slices"]}
    assert set(parts) == {("genre", "letter"), ("genre", "diary")}
    letter = {v["variant"]: v for v in parts["genre", "letter"]["variants"]}
    assert letter["direct"]["labels"] == {"female": 4, "male": 0, "unparsed": 0}
    # gold alternates female (odd) / male (even): right on i1, i3 among letters, i6, i8 among diaries
    assert letter["direct"]["accuracy"]["count"] == 2 and letter["direct"]["items"] == 4
    (pair,) = parts["genre", "diary"]["pairs"]
    assert (pair["agreement"]["count"], pair["agreement"]["n"]) == (4, 4)
    assert "mcnemar" in pair and "pvalue_holm" in pair["mcnemar"]
    report = run.report_path.read_text(encoding="utf-8")
    assert "## Slices" in report and "### genre = letter" in report and "### genre = diary" in report
