"""`predicts:`: self- and cross-prediction (Binder et al. 2024's control for introspection) on cases worked out by
hand: two models on a loopback server, each asked to predict its own answers; each model's predictions scored
against its own answers and the other's, the most-common-answer baseline, McNemar's test of self against cross
(checked against statsmodels), Holm within a target, and the spec's located errors through the CLI."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from jsonschema import Draft202012Validator
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from evalrun.api import run
from evalrun.cli import main
from evalrun.design.axes import used
from evalrun.reporting import rerender
from evalrun.stats.prediction import modal_baseline, prediction, predictions, versus

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = Draft202012Validator(json.loads((ROOT / "schemas" / "summary.schema.json").read_text(encoding="utf-8")))
WORD = {"y": "yes", "n": "no", "x": "dunno"}  # x: an answer no reader can read

# per model, item i00..i11: its answer to the object-level question (OBJ) and its prediction of it (HYP)
OBJ = {"a": "yyyyyyyynnnn", "b": "ynynynynynyn"}
HYP = {"a": "yyyyyyyyyynx", "b": "nnnnyyyyynnn"}
# Worked out item by item:
# target a (yes on 8 of 12: the baseline always guesses yes, 8/12)
#   self (HYP a): right on i00-i07 and i10, wrong on i08 and i09, i11 unparsed: 9/11
#   cross (HYP b): right on i04-i07 and i09-i11, wrong on i00-i03 and i08: 7/12
#   self vs cross on i00-i10: only self right on i00-i03 (4), only cross right on i09 (1)
# target b (yes and no 6 each: a tie, the baseline guesses yes or no, 6/12)
#   self (HYP b): right on i01, i03, i04, i06, i08, i09, i11: 7/12
#   cross (HYP a): right on i00, i02, i04, i06, i08; i11 unparsed: 5/11
#   self vs cross on i00-i10: only self right on i01, i03, i09 (3), only cross right on i00, i02 (2)


def _reply(body: dict[str, Any]) -> str:
    kind, item = body["messages"][-1]["content"].split()
    return WORD[(OBJ if kind == "OBJ" else HYP)[body["model"]][int(item[1:])]]


def _spec(folder: Path, write_spec: SpecWriter, base: str, **variants: dict[str, Any]) -> Path:
    reader = {"type": "choice", "choices": {"yes": [], "no": []}}
    return write_spec(folder, labels=["yes", "no"], items=[f"i{i:02d}" for i in range(12)],
                      variants=variants or {"hyp": {"prompt": "HYP {{ id }}", "extract": reader, "predicts": "obj"},
                                            "obj": {"prompt": "OBJ {{ id }}", "extract": reader}},
                      models=[write_spec.model(base, name="A", model="openai/a"),
                              write_spec.model(base, name="B", model="openai/b")])


def _wilson(count: int, n: int) -> tuple[float, float]:
    low, high = proportion_confint(count, n, method="wilson")
    return float(low), float(high)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(count: int, n: int) -> str:
    low, high = _wilson(count, n)
    return f"{_pct(count / n)} [{_pct(low)}, {_pct(high)}] ({count}/{n})"


@pytest.fixture
def ran(tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer]) -> Any:
    server = loopback(default_reply=_reply)
    return run(_spec(tmp_path, write_spec, server.base_url), out=tmp_path / "out", retries=0, warn=lambda _: None)


def test_two_models_predict_themselves_and_each_other(ran: Any) -> None:
    summary = ran.summary
    assert list(VALIDATOR.iter_errors(summary)) == []
    assert summary["run"]["predicts"] == {"hyp": "obj"}
    first, second = summary["statistics"]["prediction"]
    assert (first["predictor"], first["target"], first["model"], second["model"]) == ("hyp", "obj", "A", "B")
    expected = {"A": {"A": (9, 11, 1, 0), "B": (7, 12, 0, 0)}, "B": {"B": (7, 12, 0, 0), "A": (5, 11, 1, 0)}}
    for entry in (first, second):
        got = {p["predictor_model"]: p for p in entry["predictions"]}
        assert list(got) == list(expected[entry["model"]])  # self-prediction first
        for model, (count, n, unparsed, target_unparsed) in expected[entry["model"]].items():
            p = got[model]
            assert p["self"] == (model == entry["model"]) and p["items"] == 12
            assert (p["accuracy"]["count"], p["accuracy"]["n"]) == (count, n)
            assert (p["unparsed_prediction"], p["unparsed_target"]) == (unparsed, target_unparsed)
            assert (p["accuracy"]["ci_low"], p["accuracy"]["ci_high"]) == pytest.approx(_wilson(count, n))
    assert (first["baseline"]["label"], first["baseline"]["tied"]) == ("yes", ["yes"])
    assert (second["baseline"]["label"], second["baseline"]["tied"]) == ("yes", ["yes", "no"])
    for entry, (count, n) in ((first, (8, 12)), (second, (6, 12))):
        b = entry["baseline"]
        assert (b["count"], b["n"]) == (count, n)
        assert (b["ci_low"], b["ci_high"]) == pytest.approx(_wilson(count, n))
        # with 12 items every interval overlaps the baseline's: none is called above or below it
        assert {p["baseline"] for p in entry["predictions"]} == {"overlaps"}


def test_self_against_cross_is_mcnemars_exact_test(ran: Any) -> None:
    first, second = ran.summary["statistics"]["prediction"]
    # rows: self right / wrong; columns: cross right / wrong, on the 11 items all three were read for
    tables = {"A": [[5, 4], [1, 1]], "B": [[3, 3], [2, 3]]}
    for entry in (first, second):
        (t,) = entry["self_vs_cross"]
        table = tables[entry["model"]]
        assert t["predictor_model"] == ("B" if entry["model"] == "A" else "A")
        assert (t["items"], t["b"], t["c"]) == (11, table[0][1], table[1][0])
        assert t["pvalue"] == pytest.approx(mcnemar(np.array(table), exact=True).pvalue)
        assert t["pvalue_holm"] == t["pvalue"]  # one comparison per target: a family of one
        right = (t["self_accuracy"]["count"], t["cross_accuracy"]["count"])
        assert right == (sum(table[0]), table[0][0] + table[1][0])
    assert first["self_vs_cross"][0]["pvalue"] == pytest.approx(12 / 32)  # 1 of 5 discordant: 2 * 6/32
    assert first["self_vs_cross"][0]["difference"] == pytest.approx(9 / 11 - 6 / 11)
    # the report's own family is untouched: the variants' label rates per model and the models' per variant
    assert ran.summary["statistics"]["tests"]["tests"] == 4


def test_the_report_has_a_prediction_section_and_a_summary_line_per_target(ran: Any) -> None:
    text = ran.report_path.read_text(encoding="utf-8")
    summary = text.split("## Summary")[1].split("\n\n")[1].splitlines()
    line = next(x for x in summary if x.startswith("- **A** / *hyp* predicts *obj*"))
    assert line == (f"- **A** / *hyp* predicts *obj*: self-prediction {_ci(9, 11)}; cross-prediction by **B** "
                    f"{_ci(7, 12)}; self - cross by **B** +27.3 points on the 11 items all three were read for "
                    "(81.8% vs 54.5%), McNemar exact p = 0.375, Holm 0.375: "
                    f"no significant difference. The most-common-answer baseline (always 'yes': {_ci(8, 12)}): "
                    "self-prediction not distinguishable from it (the intervals overlap).")
    assert any(x.startswith("- **B** / *hyp* predicts *obj*: self-prediction ") for x in summary)
    section = text.split("## Prediction")[1].split("\n## ")[0]
    assert "### *hyp* predicts *obj*" in section
    assert "| target \\ predictor | A | B | baseline |" in section
    assert f"| **A** | {_ci(9, 11)} | {_ci(7, 12)} | always 'yes': {_ci(8, 12)} |" in section
    assert f"| **B** | {_ci(5, 11)} | {_ci(7, 12)} | always 'yes' or 'no': {_ci(6, 12)} |" in section
    assert "only self right: 4, only cross right: 1" in section
    assert "Left out: the target unparsed on 0 of 12 items, A's prediction unparsed on 1." in section
    # `evalrun report RUN_DIR` reads `predicts` back from the record and renders the same report
    assert rerender(ran.dir).read_text(encoding="utf-8") == text


def test_a_condition_gives_each_of_its_levels_apart() -> None:
    # one model; under `calm` its predictions match its answers on all 4 items, under `rushed` on 1 of 4
    rows = [{"model": "m", "variant": variant, "item_id": f"i{i}", "sample": 0, "condition": condition,
             "label": "yes" if variant == "obj" or condition == "calm" or i == 0 else "no", "gold": None,
             "error_class": None}
            for condition in ("calm", "rushed") for variant in ("hyp", "obj") for i in range(4)]
    calm, rushed = prediction(pl.DataFrame(rows).lazy(), {"hyp": "obj"}, ["yes", "no"], ["m"], used(["condition"]))
    assert (calm["condition"], rushed["condition"]) == ("calm", "rushed")
    assert [e["predictions"][0]["accuracy"]["count"] for e in (calm, rushed)] == [4, 1]
    assert calm["self_vs_cross"] == [] and calm["predictions"][0]["self"]


def test_each_target_is_scored_in_its_own_labels_grouped_by_label_set() -> None:
    # three predicting variants in spec order: two targets read yes/no, one its own a/b/c; the entries come
    # grouped by label set (first seen), the spec's order within a set, each target's baseline over its labels
    rows = [{"model": "m", "variant": variant, "item_id": f"i{i}", "sample": 0, "label": label, "gold": None,
             "error_class": None}
            for i in range(3)
            for variant, label in (("p1", "yes"), ("t1", "yes"), ("p2", "a"), ("t2", "c"), ("p3", "no"),
                                   ("t3", "no"))]
    found = prediction(pl.DataFrame(rows).lazy(), {"p1": "t1", "p2": "t2", "p3": "t3"}, ["yes", "no"], ["m"],
                       sets={"p2": ["a", "b", "c"], "t2": ["a", "b", "c"]})
    assert [(e["predictor"], e["target"]) for e in found] == [("p1", "t1"), ("p3", "t3"), ("p2", "t2")]
    assert [e["baseline"]["tied"] for e in found] == [["yes"], ["no"], ["c"]]
    assert [e["predictions"][0]["accuracy"]["count"] for e in found] == [3, 3, 0]


def test_holm_is_within_a_target_and_the_baseline_is_read_by_intervals() -> None:
    # three models, 20 items; model m's object answer is yes on every item, so its baseline is 20/20; the
    # other two targets answer yes on the first half. Predictions: m always yes; p right on items 0-14; q on 0-9
    rows = []
    for model in ("m", "p", "q"):
        for i in range(20):
            rows.append({"model": model, "variant": "obj", "item_id": f"i{i:02d}",
                         "label": "yes" if model == "m" or i < 10 else "no", "gold": None})
            rows.append({"model": model, "variant": "hyp", "item_id": f"i{i:02d}",
                         "label": {"m": "yes", "p": "yes" if i < 15 else "no", "q": "yes" if i < 10 else "no"}[model],
                         "gold": None})
    found = predictions(pl.DataFrame(rows), {"hyp": "obj"}, ["yes", "no"], ["m", "p", "q"])
    target = found[0]
    assert target["model"] == "m" and [p["accuracy"]["count"] for p in target["predictions"]] == [20, 15, 10]
    raw = [t["pvalue"] for t in target["self_vs_cross"]]
    # self right everywhere: only self right on the items p and q miss (5 and 10), none the other way
    assert [(t["b"], t["c"]) for t in target["self_vs_cross"]] == [(5, 0), (10, 0)]
    assert raw == pytest.approx([mcnemar([[15, 5], [0, 0]], exact=True).pvalue,
                                 mcnemar([[10, 10], [0, 0]], exact=True).pvalue])
    assert [t["pvalue_holm"] for t in target["self_vs_cross"]] == pytest.approx(
        list(multipletests(raw, method="holm")[1]))
    # baseline 20/20: no prediction can be above it; q's 10/20 is below it (Wilson [29.9%, 70.1%] vs [83.9%, 100%])
    assert [p["baseline"] for p in target["predictions"]] == ["overlaps", "overlaps", "below"]
    assert _wilson(10, 20)[1] < _wilson(20, 20)[0]


def test_the_baseline_and_its_reading() -> None:
    assert modal_baseline(["no", "no", None, "yes"], ["yes", "no"]) | {} == {
        "label": "no", "tied": ["no"], "count": 2, "n": 3, "estimate": 2 / 3,
        "ci_low": pytest.approx(_wilson(2, 3)[0]), "ci_high": pytest.approx(_wilson(2, 3)[1])}
    assert modal_baseline([None, None], ["yes", "no"])["label"] is None
    high, base = _wilson(19, 20), _wilson(10, 20)
    assert high[0] > base[1]  # 19/20 [76.4%, 99.1%] is clear of 10/20 [29.9%, 70.1%]
    assert versus({"ci_low": high[0], "ci_high": high[1]}, {"ci_low": base[0], "ci_high": base[1]}) == "above"
    assert versus({"ci_low": None, "ci_high": None}, {"ci_low": base[0], "ci_high": base[1]}) is None


def _value(write_spec: SpecWriter, spec: Path, key: str, value: str) -> str:
    """`line:col` of a value written `key: value` in a spec, where its problem is located."""
    line, col = write_spec.where(spec, f"{key}: {value}").split(":")
    return f"{line}:{int(col) + len(key) + 2}"


def _validate(capsys: pytest.CaptureFixture[str], spec: Path) -> tuple[int, str]:
    code = main(["validate", spec.name])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("predicts", "message"), [
    ("objt", "variants.hyp.predicts: no variant named 'objt' (did you mean 'obj'?)"),
    ("hyp", "variants.hyp.predicts: a variant cannot predict itself (name the variant whose answers this one "
            "predicts)"),
])
def test_a_wrong_predicts_is_a_located_error(predicts: str, message: str, tmp_path: Path, write_spec: SpecWriter,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    reader = {"type": "choice", "choices": {"yes": [], "no": []}}
    spec = _spec(tmp_path, write_spec, "http://127.0.0.1:9/v1",
                 hyp={"prompt": "HYP {{ id }}", "extract": reader, "predicts": predicts},
                 obj={"prompt": "OBJ {{ id }}", "extract": reader})
    monkeypatch.chdir(tmp_path)
    code, err = _validate(capsys, spec)
    assert code == 2
    assert err.splitlines()[0] == f"spec.yaml:{_value(write_spec, spec, 'predicts', predicts)}: error: {message}"


def test_predicting_a_variant_with_other_labels_is_a_located_error(tmp_path: Path, write_spec: SpecWriter,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    reader = {"type": "choice", "choices": {"yes": [], "no": []}}
    other = {"type": "choice", "choices": {"even": [], "odd": []}}
    spec = _spec(tmp_path, write_spec, "http://127.0.0.1:9/v1",
                 hyp={"prompt": "HYP {{ id }}", "extract": reader, "predicts": "obj"},
                 obj={"prompt": "OBJ {{ id }}", "labels": ["even", "odd"], "extract": other})
    monkeypatch.chdir(tmp_path)
    code, err = _validate(capsys, spec)
    assert code == 2
    assert (f"spec.yaml:{_value(write_spec, spec, 'predicts', 'obj')}: error: variants.hyp.predicts: 'hyp' reads the "
            "labels yes, no and 'obj' reads even, odd") in err


def test_an_unreachable_target_gets_no_prediction_line(tmp_path: Path, write_spec: SpecWriter,
                                                       loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply=_reply)
    with socket.socket() as s:  # a port nothing listens on: B's every connection is refused
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    spec = _spec(tmp_path, write_spec, server.base_url)
    spec.write_text(spec.read_text(encoding="utf-8").replace(server.base_url, closed, 2).replace(
        closed, server.base_url, 1), encoding="utf-8")  # A stays at the server, B goes to the closed port
    result = run(spec, out=tmp_path / "out", retries=0, warn=lambda _: None)
    summary = result.report_path.read_text(encoding="utf-8").split("## Summary")[1].split("\n\n")[1].splitlines()
    assert any(x.startswith("- **B** was unreachable at ") for x in summary)
    assert not any(x.startswith("- **B** / *hyp* predicts") for x in summary)
    assert any(x.startswith("- **A** / *hyp* predicts *obj*: self-prediction ") for x in summary)
