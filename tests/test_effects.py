"""Effect sizes first, on cases worked out by hand: a condition's effect label by label (rates, the paired
difference, McNemar's test, Holm), a comparison true by construction left out of the tests, stability within
one prompt, Spearman's p in the Holm family and the slices' tests in a family of their own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from jsonschema import Draft202012Validator
from scipy.stats import binomtest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evalrun.api import run
from evalrun.design.axes import used
from evalrun.reporting.sections.agreement import agreement
from evalrun.reporting.sections.common import Context
from evalrun.reporting.sections.slices import slices
from evalrun.reporting.sections.summary import summary
from evalrun.stats.grouping import Grouping
from evalrun.stats.inference import adjust, ordinal
from evalrun.stats.summary import summarize

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

VALIDATOR = Draft202012Validator(json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "summary.schema.json").read_text(encoding="utf-8")))

SCHEMA = {"model": pl.String, "variant": pl.String, "item_id": pl.String, "sample": pl.Int64, "label": pl.String,
          "gold": pl.String, "error_class": pl.String, "condition": pl.String, "key": pl.String}

# 16 items of `asked` under free and paid: (under free, under paid) -> items. Free complies on 10 + 1 = 11 (68.75%),
# paid on 10 + 4 = 14 (87.5%); discordant: 1 complies under free only, 4 under paid only
TABLE = {("comply", "comply"): 10, ("comply", "refuse"): 1, ("refuse", "comply"): 4, ("refuse", "refuse"): 1}
LABELS = ["comply", "refuse"]


def _rows() -> list[tuple[str, str]]:
    return [pair for pair, n in TABLE.items() for _ in range(n)]


def _frame() -> pl.DataFrame:
    """`asked` uses the condition (its requests differ by condition); `plain` does not: the same request, by key,
    under both conditions, and so the same answer (here refuse on even items, comply on odd ones)."""
    rows = []
    for i, (free, paid) in enumerate(_rows()):
        item = f"i{i:02d}"
        for condition, label in (("free", free), ("paid", paid)):
            rows.append({"model": "m", "variant": "asked", "item_id": item, "sample": 0, "label": label, "gold": None,
                         "error_class": None, "condition": condition, "key": f"asked-{condition}-{item}"})
            rows.append({"model": "m", "variant": "plain", "item_id": item, "sample": 0,
                         "label": LABELS[i % 2 == 0], "gold": None, "error_class": None, "condition": condition,
                         "key": f"plain-{item}"})
    return pl.DataFrame(rows, schema=SCHEMA)


@pytest.fixture(scope="module")
def stats() -> dict[str, Any]:
    return summarize(_frame(), LABELS, [("asked", "plain")], ["asked", "plain"], has_gold=False,
                     axes=used(["condition"]))


def test_a_conditions_effect_label_by_label(stats: dict[str, Any]) -> None:
    (c,) = stats["conditions"]
    assert (c["variant"], c["a"], c["b"]) == ("asked", "free", "paid")
    comply, refuse = c["effects"]
    assert (comply["label"], comply["items"]) == ("comply", 16)
    assert (comply["a"]["count"], comply["b"]["count"]) == (11, 14)
    assert (refuse["a"]["count"], refuse["b"]["count"]) == (5, 2)
    for effect, (x, y) in ((comply, (11, 14)), (refuse, (5, 2))):
        for rate, count in ((effect["a"], x), (effect["b"], y)):
            low, high = proportion_confint(count, 16, method="wilson")
            assert (rate["ci_low"], rate["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert comply["difference"]["estimate"] == pytest.approx(11 / 16 - 14 / 16)  # -18.75 points
    assert refuse["difference"]["estimate"] == pytest.approx(5 / 16 - 2 / 16)
    # paired by item: one draw of items per resample gives both rates (numpy's generator, seed 0, as documented)
    free = np.array([f == "comply" for f, _ in _rows()], dtype=float)
    paid = np.array([p == "comply" for _, p in _rows()], dtype=float)
    draws = np.random.default_rng(0).integers(0, 16, size=(1000, 16))
    diffs = free[draws].mean(axis=1) - paid[draws].mean(axis=1)
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert (comply["difference"]["ci_low"], comply["difference"]["ci_high"]) == (pytest.approx(low),
                                                                                 pytest.approx(high))
    # two labels: one test serves both, McNemar's exact test of 1 against 4 discordant items
    assert "mcnemar" not in comply and "mcnemar" not in refuse
    test = c["label_rates_differ"]
    assert (test["b"], test["c"]) == (1, 4)
    assert test["pvalue"] == pytest.approx(binomtest(1, 5, 0.5).pvalue) == pytest.approx(12 / 32)


def test_a_comparison_true_by_construction_is_said_so_and_not_tested(stats: dict[str, Any]) -> None:
    assert [c["variant"] for c in stats["conditions"]] == ["asked"]
    assert stats["conditions_by_construction"] == [{"model": "m", "variant": "plain", "a": "free", "b": "paid",
                                                    "items": 16}]
    # the family: asked vs plain under each condition (labels), asked across conditions (labels), and the pair's
    # agreement under free against paid; plain across conditions (p = 1 by construction) is not among them
    found = [stats["pairs"][0]["label_rates_differ"], stats["pairs"][1]["label_rates_differ"],
             stats["conditions"][0]["label_rates_differ"], stats["agreement_across_conditions"][0]["mcnemar"]]
    assert stats["tests"]["tests"] == 4
    expected = multipletests([t["pvalue"] for t in found], method="holm")[1]
    assert [t["pvalue_holm"] for t in found] == pytest.approx(list(expected))


def test_the_summary_leads_with_the_effect(stats: dict[str, Any]) -> None:
    ctx = Context(stats, LABELS, False, (), Grouping.of(used(["condition"])))
    lines = summary(ctx, {})
    test = stats["conditions"][0]["label_rates_differ"]
    holm = f"{test['pvalue_holm']:.3f}"
    first = lines[0]
    assert first.startswith("- **m** / *asked*, *free* vs *paid* over the 16 items read under both (rates with Wilson")
    low, high = proportion_confint(11, 16, method="wilson")
    assert f"comply 68.8% [{100 * low:.1f}%, {100 * high:.1f}%] under *free* vs 87.5% " in first
    assert "-18.8 points [" in first and "refuse 31.2% " in first and "+18.8 points [" in first
    assert f"; McNemar exact p = 0.375, Holm {holm} (" in first
    assert first.endswith("). The answers name the same label under both on 68.8% of the 16 items both could be "
                          "read for.")
    assert lines[1].startswith("- **m** / *plain*: under *free* and *paid* the same requests were sent")
    assert "not tested and is left out of the Holm family" in lines[1]
    assert lines[2].startswith("- **m** under *free*: the *asked* and *plain* answers")


def test_three_labels_test_each_label_and_join_holm() -> None:
    labels = ["low", "mid", "high"]
    # under c1 / c2 per item: low rises to mid on 3 items; high stays high on 2 items; mid stays mid on 1
    pairs = [("low", "mid")] * 3 + [("high", "high")] * 2 + [("mid", "mid")]
    rows = [{"model": "m", "variant": "v", "item_id": f"i{i}", "sample": 0, "label": x, "gold": None,
             "error_class": None, "condition": c, "key": f"{c}-{i}"}
            for i, pair in enumerate(pairs) for c, x in zip(("c1", "c2"), pair, strict=True)]
    stats = summarize(pl.DataFrame(rows, schema=SCHEMA), labels, [], ["v"], has_gold=False,
                      axes=used(["condition"]))
    (c,) = stats["conditions"]
    low, mid, high = c["effects"]
    assert (low["a"]["count"], low["b"]["count"], mid["a"]["count"], mid["b"]["count"]) == (3, 0, 1, 4)
    assert (low["mcnemar"]["b"], low["mcnemar"]["c"]) == (3, 0)
    assert low["mcnemar"]["pvalue"] == pytest.approx(2 / 8)  # two-sided exact: 2 * (1/2)^3
    assert high["mcnemar"]["pvalue"] == 1.0 and high["difference"]["estimate"] == 0.0
    # Stuart-Maxwell on the labels and a McNemar per label: four tests
    assert stats["tests"]["tests"] == 4 and low["mcnemar"]["pvalue_holm"] is not None


def test_stability_is_within_one_prompt() -> None:
    # item -> paraphrase -> the labels of its two samples
    given = {"i1": {"0": "xx", "1": "yy"}, "i2": {"0": "xy", "1": "xx"}, "i3": {"0": "yy", "1": "yy"}}
    rows = [{"model": "m", "variant": "v", "item_id": item, "sample": s, "label": label, "gold": None,
             "error_class": None, "paraphrase": paraphrase}
            for item, by in given.items() for paraphrase, labels in by.items() for s, label in enumerate(labels)]
    frame = pl.DataFrame(rows, schema={**{k: SCHEMA[k] for k in SCHEMA if k not in ("condition", "key")},
                                       "paraphrase": pl.String})
    stats = summarize(frame, ["x", "y"], [], ["v"], has_gold=False, axes=used(["paraphrase"]))
    (entry,) = stats["stability"]
    # within a prompt: modal shares 1, 1 | 1/2, 1 | 1, 1 -> 5.5 / 6; pooled over wordings they would be
    # 2/4, 3/4, 4/4 -> 0.75
    assert entry["modal_share"]["mean"] == pytest.approx(5.5 / 6)
    assert (entry["prompts"], entry["within"], entry["modal_share"]["clusters"]) == (6, ["paraphrase"], 3)
    table = np.array([[2, 0], [0, 2], [1, 1], [2, 0], [0, 2], [0, 2]])
    assert entry["fleiss_kappa"] == pytest.approx(sm_fleiss_kappa(table))
    assert entry["fleiss_items"] == 6


def test_spearman_joins_holm_and_slices_are_a_family_of_their_own() -> None:
    rho = ordinal(["a", "b", "c", "a"], ["a", "c", "b", "b"], ["a", "b", "c"])["spearman"]
    assert rho["test"].startswith("Spearman")
    statistics: dict[str, Any] = {
        "pairs": [{"ordinal": {"spearman": {"test": "Spearman's rho", "pvalue": 0.01}},
                   "label_rates_differ": {"test": "McNemar", "pvalue": 0.04}}],
        "slices": [{"pairs": [{"x": {"test": "McNemar", "pvalue": 0.02}}, {"x": {"test": "McNemar", "pvalue": 0.03}}]}],
    }
    family = adjust(statistics)
    # planned: 0.01 * 2 = 0.02, then max(0.02, 0.04 * 1); slices: 0.02 * 2 = 0.04, then max(0.04, 0.03 * 1)
    assert family["tests"] == 2 and family["exploratory"] == {"of": "slices", "correction": "Holm", "tests": 2}
    pair = statistics["pairs"][0]
    assert pair["ordinal"]["spearman"]["pvalue_holm"] == pytest.approx(0.02)
    assert pair["label_rates_differ"]["pvalue_holm"] == pytest.approx(0.04)
    assert [p["x"]["pvalue_holm"] for p in statistics["slices"][0]["pairs"]] == pytest.approx([0.04, 0.04])


def test_a_run_whose_variant_ignores_the_condition(tmp_path: Path, write_spec: SpecWriter, api_key: ApiKey,
                                                   loopback: Callable[..., LoopbackServer]) -> None:
    """End to end: `plain` does not use the condition's `tier`, so the store answers its second condition with the
    first one's requests (one request per item), and the report says the comparison is equal by construction."""
    def reply(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        return "comply" if "paid" in text or text.endswith(("1", "3")) else "refuse"

    server = loopback(default_reply=reply)
    spec = write_spec(tmp_path, labels=["comply", "refuse"], items=["i1", "i2", "i3", "i4"],
                      variants={"asked": "ASK {{ tier }} {{ id }}", "plain": "PLAIN {{ id }}"},
                      extract={"type": "choice", "choices": {"comply": [], "refuse": []}},
                      models=[write_spec.model(server.base_url)],
                      conditions={"free": {"tier": "free"}, "paid": {"tier": "paid"}})
    result = run(spec, out=tmp_path / "out", retries=0, warn=lambda _: None)
    assert sum("PLAIN" in r["messages"][-1]["content"] for r in server.requests) == 4  # asked once per item
    stats = result.summary["statistics"]
    assert [c["variant"] for c in stats["conditions"]] == ["asked"]
    assert stats["conditions_by_construction"] == [{"model": "loop", "variant": "plain", "a": "free", "b": "paid",
                                                    "items": 4}]
    (asked,) = stats["conditions"]
    # asked complies under free on i1 and i3 (2/4) and under paid on all four
    assert [(e["label"], e["a"]["count"], e["b"]["count"]) for e in asked["effects"]] == [("comply", 2, 4),
                                                                                          ("refuse", 2, 0)]
    assert list(VALIDATOR.iter_errors(result.summary)) == []
    text = result.report_path.read_text(encoding="utf-8")
    summary_lines = text.split("## Summary")[1].split("\n\n")[1].splitlines()
    assert summary_lines[0].startswith("- **loop** / *asked*, *free* vs *paid* over the 4 items read under both")
    assert "comply 50.0% " in summary_lines[0] and "-50.0 points" in summary_lines[0]
    assert summary_lines[1].startswith("- **loop** / *plain*: under *free* and *paid* the same requests were sent")


def test_a_runs_slices_are_a_holm_family_of_their_own() -> None:
    # items i0-i7, topic x for i0-i3 and y for i4-i7; a says f throughout, b says m on i0, i1, i4 (3 discordant)
    rows = [{"model": "m", "variant": v, "item_id": f"i{i}", "sample": 0, "gold": None, "error_class": None,
             "label": "m" if v == "b" and i in (0, 1, 4) else "f", "slices": json.dumps({"topic": "xy"[i // 4]})}
            for i in range(8) for v in ("a", "b")]
    stats = summarize(pl.DataFrame(rows), ["f", "m"], [("a", "b")], ["a", "b"], has_gold=False, slices=["topic"])
    assert stats["tests"]["tests"] == 1 and stats["tests"]["exploratory"] == {"of": "slices", "correction": "Holm",
                                                                                "tests": 2}
    (pair,) = stats["pairs"]
    assert pair["label_rates_differ"]["pvalue"] == pytest.approx(2 / 8)  # 3 of 3 discordant one way: 2 * (1/2)^3
    assert pair["label_rates_differ"]["pvalue_holm"] == pytest.approx(2 / 8)  # a family of one
    # topic x: 2 discordant, p = 2 * (1/2)^2 = 0.5; topic y: 1 discordant, p = 1; Holm: 0.5 * 2 = 1, then 1
    x, y = (part["pairs"][0]["label_rates_differ"] for part in stats["slices"])
    assert (x["pvalue"], y["pvalue"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert (x["pvalue_holm"], y["pvalue_holm"]) == (pytest.approx(1.0), pytest.approx(1.0))
    ctx = Context(stats, ["f", "m"], False, (), Grouping())
    assert "Holm-adjusted over the 1 tests of this report (the 2 tests of the slices are corrected apart)" in "\n".join(
        agreement(ctx))
    assert "their tests are Holm-adjusted within a family of their own (2 tests)" in "\n".join(slices(ctx))
