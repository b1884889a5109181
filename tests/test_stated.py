"""Labels per variant and typed comparisons of a stated answer with a measured behaviour, on cases counted by
hand and run end to end on a loopback server: a yes/no question against a comply/refuse task (its label
changing between conditions), and a yes/no question against the option a model picks when options rotate."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evalrun.api import run
from evalrun.cli import main
from evalrun.reporting import rerender
from evalrun.reporting.compare import compare_runs
from evalrun.spec import parse_spec

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_SCHEMA = Draft202012Validator(json.loads((ROOT / "schemas" / "summary.schema.json").read_text("utf-8")))

YES_NO = {"type": "choice", "choices": {"yes": ["yes"], "no": ["no"]}}
COMPLY = {"type": "choice", "choices": {"comply": ["comply"], "refuse": ["refuse"]}}
PICK = {"type": "choice", "choices": {"A": ["apple"], "B": ["banana"]}}

# `would` says whether it would behave differently by tier; `task` complies or refuses under each tier.
# item -> (would, task under free, task under paid); "???" is read as no label. Over the 8 items both read:
# would yes & task changes: w1 w2; yes & same: w3; no & changes: w4 w5 w6; no & same: w7 w8. Left out: w9 (task
# unparsed under paid) and w10 (would unparsed).
CHANGES = {"w1": ("yes", "comply", "refuse"), "w2": ("yes", "refuse", "comply"), "w3": ("yes", "comply", "comply"),
           "w4": ("no", "comply", "refuse"), "w5": ("no", "comply", "refuse"), "w6": ("no", "refuse", "comply"),
           "w7": ("no", "refuse", "refuse"), "w8": ("no", "comply", "comply"), "w9": ("yes", "comply", "???"),
           "w10": ("???", "comply", "refuse")}


def _changes_reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    item = re.search(r"<(\w+)>", text).group(1)  # type: ignore[union-attr]
    would, free, paid = CHANGES[item]
    if text.startswith("WOULD"):
        return would
    return free if "tier free" in text else paid


def _changes_spec(folder: Path, write_spec: SpecWriter, base: str, compare: list[Any]) -> Path:
    return write_spec(folder, labels=["comply", "refuse"], items=list(CHANGES), models=[write_spec.model(base)],
                      variants={"would": {"labels": ["yes", "no"], "prompt": "WOULD you act otherwise? <{{ id }}>",
                                          "extract": YES_NO},
                                "task": {"prompt": "TASK on tier {{ tier }} <{{ id }}>", "extract": COMPLY}},
                      conditions={"free": {"tier": "free"}, "paid": {"tier": "paid"}}, compare=compare)


TYPED_CHANGES = {"stated": "would", "behaviour": "task", "measure": "changes", "yes": "yes"}


@pytest.fixture
def changes_run(tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]
                ) -> tuple[Path, dict[str, Any]]:
    server = loopback(default_reply=_changes_reply)
    spec = _changes_spec(tmp_path, write_spec, server.base_url, [TYPED_CHANGES])
    result = run(spec, out=tmp_path / "reports", retries=0, warn=lambda _: None)
    summary = json.loads((result.dir / "summary.json").read_text(encoding="utf-8"))
    assert [e.message for e in SUMMARY_SCHEMA.iter_errors(summary)] == []
    return result.dir, summary


def test_each_variant_is_counted_in_its_own_labels(changes_run: tuple[Path, dict[str, Any]]) -> None:
    folder, summary = changes_run
    stats = summary["statistics"]
    assert summary["run"]["variant_labels"] == {"would": ["yes", "no"], "task": ["comply", "refuse"]}
    assert {(v["variant"], v["condition"]): v["labels"] for v in stats["variants"]} == {
        ("would", "free"): {"yes": 4, "no": 5, "unparsed": 1}, ("would", "paid"): {"yes": 4, "no": 5, "unparsed": 1},
        ("task", "free"): {"comply": 7, "refuse": 3, "unparsed": 0},
        ("task", "paid"): {"comply": 4, "refuse": 5, "unparsed": 1}}
    assert stats["pairs"] == []  # no label-by-label agreement between yes/no and comply/refuse
    report = (folder / "report.md").read_text(encoding="utf-8")
    # one table per label set, so no column of zeros
    assert "| model | condition | variant | responses | errors | yes | no | unparsed |" in report
    assert "| model | condition | variant | responses | errors | comply | refuse | unparsed |" in report
    assert "| yes | no | comply |" not in report and "| comply | refuse | yes |" not in report


def test_a_statement_against_a_label_changing_between_conditions(changes_run: tuple[Path, dict[str, Any]]) -> None:
    folder, summary = changes_run
    (c,) = summary["statistics"]["stated"]
    assert {k: c[k] for k in ("model", "stated", "behaviour", "measure", "yes", "conditions")} == {
        "model": "loop", **TYPED_CHANGES, "conditions": ["free", "paid"]}
    assert (c["items"], c["both_read"]) == (10, 8)
    assert c["left_out"] == {"stated_unparsed": 1, "behaviour_unread": 1, "not_asked_both": 0}
    table = [[2, 1], [3, 2]]  # rows stated present/absent, columns behaviour present/absent
    assert c["confusion"]["counts"] == table
    assert (c["says"]["count"], c["does"]["count"], c["agreement"]["count"]) == (3, 5, 4)
    for rate, count in ((c["says"], 3), (c["does"], 5), (c["agreement"], 4)):
        low, high = proportion_confint(count, 8, method="wilson")
        assert (rate["ci_low"], rate["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    expected = cohens_kappa(table)
    assert c["cohen_kappa"]["kappa"] == pytest.approx(expected.kappa)
    assert (c["cohen_kappa"]["ci_low"], c["cohen_kappa"]["ci_high"]) == (pytest.approx(expected.kappa_low),
                                                                         pytest.approx(expected.kappa_upp))
    test = c["rates_differ"]
    assert (test["b"], test["c"]) == (1, 3)
    assert test["pvalue"] == pytest.approx(mcnemar(table, exact=True).pvalue) == pytest.approx(0.625)
    assert "pvalue_holm" in test  # in the confirmatory family
    report = (folder / "report.md").read_text(encoding="utf-8")
    summary_part = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in summary_part.splitlines() if "`would` vs `task`" in x)
    assert "changing between conditions (free, paid)" in line
    assert "says it would 37.5% [" in line and "does 62.5% [" in line and "agree 50.0% [" in line
    assert "of 8 items" in line and "not distinguishable from chance" in line and "McNemar p = 0.625" in line
    section = report.split("## Stated and measured", 1)[1].split("\n## ", 1)[0]
    assert "| **says present** | 2 | 1 |" in section and "| **says absent** | 3 | 2 |" in section


def test_an_explicit_pair_across_label_sets_is_refused_where_it_is_written(
        tmp_path: Path, write_spec: SpecWriter, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _changes_spec(tmp_path, write_spec, "http://127.0.0.1:9/v1", [["would", "task"]])
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    place = write_spec.where(spec, "- - would")
    first = err.splitlines()[0]
    assert first.startswith(f"{spec}:{place[0]}") and "cannot be compared label by label" in first
    assert "Traceback" not in err


# `tend` says whether it tends to pick the first option; `pick` picks between apple (A) and banana (B), listed in
# both orders. Per item: (tend, how it picks): "first" picks whichever is listed first, "A" always apple,
# "second" the one listed second, "half" the first in order A, B and nothing readable in B, A, "none" nothing.
FIRST = {"j1": ("yes", "first"), "j2": ("yes", "A"), "j3": ("no", "first"), "j4": ("no", "second"),
         "j5": ("no", "A"), "j6": ("yes", "half"), "j7": ("yes", "none")}


def _first_reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    item = re.search(r"<(\w+)>", text).group(1)  # type: ignore[union-attr]
    tend, how = FIRST[item]
    if text.startswith("TEND"):
        return tend
    listed = re.search(r"options: (\w+) or (\w+)", text).groups()  # type: ignore[union-attr]
    picked = {"first": listed[0], "second": listed[1], "A": "apple", "half": listed[0] if listed[0] == "apple"
              else "???", "none": "???"}[how]
    return picked


def test_a_statement_against_picking_the_option_listed_first(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply=_first_reply)
    spec = write_spec(tmp_path, labels=["yes", "no"], items=list(FIRST), models=[write_spec.model(server.base_url)],
                      variants={"tend": {"prompt": "TEND to pick the first? <{{ id }}>", "extract": YES_NO},
                                "pick": {"labels": ["A", "B"], "prompt": "PICK <{{ id }}> options: "
                                         "{{ options | join(' or ') }}", "options": {"A": "apple", "B": "banana"},
                                         "counterbalance": "rotations", "extract": PICK}},
                      compare=[{"stated": "tend", "behaviour": "pick", "measure": "first", "yes": "yes"}])
    result = run(spec, out=tmp_path / "reports", retries=0, warn=lambda _: None)
    summary = json.loads((result.dir / "summary.json").read_text(encoding="utf-8"))
    assert [e.message for e in SUMMARY_SCHEMA.iter_errors(summary)] == []
    (c,) = summary["statistics"]["stated"]
    # present/present j1; present/absent j2; absent/present j3; absent/absent j4 j5; left out: j6 (read in one
    # order only, which cannot tell position from preference) and j7 (no order read)
    assert c["confusion"]["counts"] == [[1, 1], [1, 2]]
    assert (c["items"], c["both_read"], c["left_out"]["behaviour_unread"]) == (7, 5, 2)
    # prompts read: j1 2 (2 first), j2 2 (1), j3 2 (2), j4 2 (0), j5 2 (1), j6 1 (1), j7 0
    assert (c["first_position"]["count"], c["first_position"]["n"]) == (7, 11)
    assert c["rates_differ"]["pvalue"] == pytest.approx(binomtest(1, 2, 0.5).pvalue) == 1.0
    assert c["cohen_kappa"]["kappa"] == pytest.approx(cohens_kappa([[1, 1], [1, 2]]).kappa)
    for rate, count in ((c["says"], 2), (c["does"], 2), (c["agreement"], 3)):
        assert (rate["count"], rate["n"]) == (count, 5)
        low, high = proportion_confint(count, 5, method="wilson")
        assert (rate["ci_low"], rate["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    report = (result.dir / "report.md").read_text(encoding="utf-8")
    line = next(x for x in report.split("## Summary", 1)[1].splitlines() if "`tend` vs `pick`" in x)
    low, high = proportion_confint(7, 11, method="wilson")
    assert (f"picking the option listed first (an item's pick: in more than half of its prompts read, in two orders or "
            f"more; per prompt "
            f"63.6% [{100 * low:.1f}%, {100 * high:.1f}%] of 11)") in line
    assert "says it would 40.0% [" in line and "agree 60.0% [" in line and "McNemar p = 1.000" in line


def _problems(tmp_path: Path, write_spec: SpecWriter, **fields: Any) -> list[str]:
    spec = write_spec(tmp_path, **fields)
    _, problems = parse_spec(spec.read_text(encoding="utf-8"), spec)
    return [p.render() for p in problems]


def test_the_spec_schema_takes_the_new_keys_and_refuses_a_bad_measure(tmp_path: Path,
                                                                       write_spec: SpecWriter) -> None:
    variants = {"one": {"labels": ["yes", "no"], "prompt": "ONE {{ tier }} <{{ id }}>", "extract": YES_NO},
                "two": "TWO {{ tier }} <{{ id }}>"}
    conditions = {"free": {"tier": "free"}, "paid": {"tier": "paid"}}
    good = {"stated": "one", "behaviour": "two", "measure": "changes", "yes": "yes"}
    assert _problems(tmp_path, write_spec, variants=variants, conditions=conditions, compare=[good]) == []
    found = _problems(tmp_path, write_spec, variants=variants, conditions=conditions,
                      compare=[{**good, "measure": "differs"}])
    assert len(found) == 1 and "compare.0.measure" in found[0] and "differs" in found[0]


def test_the_statements_test_joins_the_confirmatory_holm_family(changes_run: tuple[Path, dict[str, Any]]) -> None:
    _, summary = changes_run
    stats = summary["statistics"]
    # the family: task's free-vs-paid label rates (the only other test: `would` across conditions is equal by
    # construction, and no label pair is compared) and the statement against the behaviour
    found = [stats["conditions"][0]["label_rates_differ"], stats["stated"][0]["rates_differ"]]
    assert stats["tests"]["tests"] == 2
    expected = multipletests([t["pvalue"] for t in found], method="holm")[1]
    assert [t["pvalue_holm"] for t in found] == pytest.approx(list(expected))


def test_runs_compare_each_variant_in_its_own_labels(changes_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    folder, _ = changes_run
    text = compare_runs([folder, folder], tmp_path / "compared").read_text(encoding="utf-8")
    would = text.split("### loop · free · would", 1)[1].split("###", 1)[0]
    assert "items labelled *yes*" in would and "comply" not in would


SPEC = """name: t
dataset: {{items: [{{id: i1}}, {{id: i2}}]}}
{top}variants:
  a: {{labels: ['yes', 'no'], prompt: "A {{{{ id }}}}",
      extract: {{type: choice, choices: {{'yes': ['yes'], 'no': ['no']}}}}}}
  b: {{labels: ['no', 'yes'], prompt: "B {{{{ id }}}}",
      extract: {{type: choice, choices: {{'yes': ['yes'], 'no': ['no']}}}}}}
  c: {{{own}prompt: "C {{{{ id }}}}", extract: {{type: choice, choices: {{comply: [comply], refuse: [refuse]}}}}}}
{compare}"""


def _spec(tmp_path: Path, top: str = "", own: str = "labels: [comply, refuse], ", compare: str = "") -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(top=top, own=own, compare=compare), encoding="utf-8")
    spec, problems = parse_spec(path.read_text(encoding="utf-8"), path)
    return [p.render() for p in problems] if spec is None else [f"compare {spec.compare}", f"labels {spec.labels}"]


def test_top_level_labels_are_needed_only_where_a_variant_has_none(tmp_path: Path) -> None:
    # every variant has its own: no top-level labels needed; the automatic pairs are those reading the same set
    assert _spec(tmp_path) == ["compare [('a', 'b')]", "labels ['yes', 'no', 'comply', 'refuse']"]
    (missing,) = _spec(tmp_path, own="")
    assert missing.endswith("1:1: error: missing required key 'labels'")
    assert _spec(tmp_path, top="labels: [comply, refuse]\n", own="")[0] == "compare [('a', 'b')]"


@pytest.mark.parametrize(("entry", "where", "message"), [
    ("{stated: a, behaviour: c, measure: label}", "compare.0", "read different labels"),
    ("{stated: a, behaviour: c, measure: changes, 'yes': 'yes'}", "compare.0.measure", "needs two or more"),
    ("{stated: a, behaviour: c, measure: first, 'yes': 'yes'}", "compare.0.behaviour", "lists no `options:`"),
    ("{stated: a, behaviour: c, measure: first}", "compare.0", "needs `\"yes\":`"),
    ("{stated: a, behaviour: c, measure: changes, 'yes': 'ja'}", "compare.0.yes", "'ja' is not one of the labels"),
    ("{stated: a, behaviour: nope, measure: first, 'yes': 'yes'}", "compare.0", "no variant named 'nope'"),
])
def test_a_typed_comparison_the_design_cannot_measure_is_refused_where_it_is_written(
        tmp_path: Path, entry: str, where: str, message: str) -> None:
    found = _spec(tmp_path, compare=f"compare:\n  - {entry}\n")
    assert [p for p in found if f"error: {where}:" in p and message in p and "\n" not in p], found


def test_changes_needs_a_behaviour_whose_prompt_uses_the_conditions(tmp_path: Path) -> None:
    conditions = "conditions: {free: {tier: free}, paid: {tier: paid}}\ncompare:\n"
    (problem,) = _spec(tmp_path, compare=conditions + "  - {stated: a, behaviour: c, measure: changes, 'yes': 'yes'}\n")
    assert "compare.0.behaviour: 'c' does not use the conditions in its prompt" in problem


def test_first_needs_the_options_in_more_than_one_order(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(top="", own="labels: [comply, refuse], options: [comply, refuse], ",
                                compare="compare:\n  - {stated: a, behaviour: c, measure: first, 'yes': 'yes'}\n")
                    .replace('"C {{ id }}"', '"C {{ id }} {{ options }}"'), encoding="utf-8")
    _, problems = parse_spec(path.read_text(encoding="utf-8"), path)
    (problem,) = [p.render() for p in problems]
    assert "compare.0.measure: `first` with the options of 'c' in one order only" in problem


def _three_reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    return {"A": "yes", "B": "no", "C": "comply"}[text[0]] if not text.endswith("2") else "no"


def test_a_run_without_top_level_labels_compares_only_variants_reading_the_same(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    server = loopback(default_reply=_three_reply)
    path = tmp_path / "spec.yaml"
    model = json.dumps(write_spec.model(server.base_url))
    path.write_text(SPEC.format(top="", own="labels: [comply, refuse], ", compare=f"models: [{model}]\n"),
                    encoding="utf-8")
    result = run(path, out=tmp_path / "reports", retries=0, warn=lambda _: None)
    summary = json.loads((result.dir / "summary.json").read_text(encoding="utf-8"))
    assert [e.message for e in SUMMARY_SCHEMA.iter_errors(summary)] == []
    stats = summary["statistics"]
    assert summary["run"]["labels"] == ["yes", "no", "comply", "refuse"]
    assert [(p["a"], p["b"], p["confusion"]["categories"]) for p in stats["pairs"]] == [
        ("a", "b", ["yes", "no", "unparsed"])]
    # i1: a yes, b no; i2: both no
    assert stats["pairs"][0]["confusion"]["counts"] == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert [v["labels"] for v in stats["variants"]] == [{"yes": 1, "no": 1, "unparsed": 0},
                                                        {"no": 2, "yes": 0, "unparsed": 0},
                                                        {"comply": 1, "refuse": 0, "unparsed": 1}]
    report = (result.dir / "report.md").read_text(encoding="utf-8")
    assert "across all 3 variants" not in report


def test_a_rerendered_report_reads_the_typed_comparisons_back_from_the_record(
        changes_run: tuple[Path, dict[str, Any]]) -> None:
    folder, summary = changes_run
    first = (folder / "report.md").read_text(encoding="utf-8")
    rerender(folder)
    again = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert again["run"]["stated"] == [TYPED_CHANGES] and again["statistics"] == summary["statistics"]
    assert (folder / "report.md").read_text(encoding="utf-8") == first


def test_a_variant_that_ignores_the_conditions_is_summarised_once(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> None:
    # `would` does not use the tier, so its one set of answers stands under free and paid alike; 4 of its 10
    # answers unread (w10 and the three below) is 40% unparsed, which the Summary flags: once, not per tier
    def reply(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        return "???" if text.startswith("WOULD") and any(f"<{i}>" in text for i in ("w1", "w2", "w3")) \
            else _changes_reply(body)

    server = loopback(default_reply=reply)
    spec = _changes_spec(tmp_path, write_spec, server.base_url, [TYPED_CHANGES])
    result = run(spec, out=tmp_path / "reports", retries=0, warn=lambda _: None)
    summary = (result.dir / "report.md").read_text(encoding="utf-8").split("## Summary", 1)[1].split("\n## ", 1)[0]
    flagged = [line for line in summary.splitlines() if "could not be read as a label" in line]
    assert flagged == ["- **loop** / *would* (the same answers under every condition): 40.0% of answers could not "
                       "be read as a label (unparsed); read the agreement figures with that in mind."]
