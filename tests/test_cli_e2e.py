"""End to end: `evalrun` in-process, through litellm over real HTTP to a scripted loopback server.

The server's rules make the confusion table of the two variants, and the gold labels make
McNemar's table, known in advance; every expected statistic below is worked out by hand.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from evalrun.cli import main
from evalrun.results import columns

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

MISSING_ENV = "EVALRUN_E2E_MISSING_KEY"

FEMALE_STORY = "She opened her door and smiled at her sister."  # she, her, her, sister: female 4, male 0
MALE_STORY = "He packed his bag and thanked his father."  # he, his, his, father: male 4, female 0
NEUTRAL_STORY = "The rain fell on the quiet town all night."  # no gendered word: unparsed

# item -> (direct answer, story answer, gold); the story's label is read by the pronoun extractor
DESIGN: dict[str, tuple[str, str | None, str]] = {
    "i01": ("female", "female", "female"),
    "i02": ("female", "female", "female"),
    "i03": ("female", "female", "female"),
    "i04": ("female", "female", "female"),
    "i05": ("female", "male", "female"),
    "i06": ("male", "female", "male"),
    "i07": ("male", "male", "male"),
    "i08": ("male", "male", "male"),
    "i09": ("male", "male", "male"),
    "i10": ("male", "male", "female"),
    "i11": ("female", None, "female"),  # the story names nobody: unparsed
}
STORY_TEXT = {"female": FEMALE_STORY, "male": MALE_STORY, None: NEUTRAL_STORY}
DIRECT_TEXT = {"female": "Female.", "male": "I think the author is a man."}

RESULT_COLUMNS = [
    "job_id", "key", "item_id", "item_text", "variant", "model", "model_string", "sample", "seed", "system",
    "prompt", "response", "finish_reason", "label", "extraction", "gold", "error_class", "error_message",
    "attempts", "latency_s", "prompt_tokens", "completion_tokens", "cost", "cached",
    "condition", "paraphrase", "option_order", "first_option", "messages", "probabilities", "captured", "slices",
]


def _rules() -> list[Rule]:
    rules = []
    for item, (direct, story, _) in DESIGN.items():
        rules.append(Rule(contains=f"DIRECT <{item}>", reply=DIRECT_TEXT[direct]))
        rules.append(Rule(contains=f"STORY <{item}>", reply=STORY_TEXT[story]))
    return rules


def _model_entry(write_spec: SpecWriter, base_url: str, name: str = "scripted", **fields: str) -> dict[str, Any]:
    return write_spec.model(base_url, name=name, model="openai/scripted", concurrency=4, timeout=10, **fields)


# conftest's write_spec's parts for this file's spec: direct vs story over DESIGN's items, with gold labels
CASE: dict[str, Any] = {
    "name": "e2e",
    "description": "Direct vs story, scripted.",
    "items": [{"id": item, "text": f"text number {n}", "gender": gold}
              for n, (item, (_, _, gold)) in enumerate(DESIGN.items(), start=1)],
    "dataset": {"id": "id", "gold": "gender"},
    "labels": ["female", "male"],
    "variants": {
        "direct": {"prompt": "DIRECT <{{ id }}> Who wrote this: {{ text }}",
                   "extract": {"type": "choice", "choices": {"female": ["woman"], "male": ["man"]}}},
        "story": {"system": "You write very short stories.",
                  "prompt": "STORY <{{ id }}> A story about the author of: {{ text }}",
                  "extract": {"type": "pronouns"}},
    },
    "params": {"temperature": 0, "max_tokens": 30, "seed": 11},
}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def path(self) -> Path:
        return Path(self.out.strip().splitlines()[-1])


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@pytest.fixture
def server(loopback: Callable[..., LoopbackServer]) -> LoopbackServer:
    return loopback(_rules(), default_reply="no rule matched")


def _assert_no_secret(secret: str, run_dir: Path, home: Path, *texts: str) -> None:
    needle = secret.encode()
    files = [f for f in (*run_dir.rglob("*"), *home.iterdir()) if f.is_file()]
    assert any(f.name.startswith("store.sqlite") for f in files)
    for file in files:
        assert needle not in file.read_bytes(), file
    # results.parquet is compressed: search its decoded cells too
    frame = pl.read_parquet(run_dir / "results.parquet")
    for column in frame.columns:
        assert not any(secret in str(v) for v in frame[column].to_list()), column
    for text in texts:
        assert secret not in text


def test_run_report_rerun_and_rerender(tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, evalrun_home: Path, write_spec: SpecWriter,
                                       api_key: ApiKey) -> None:
    spec = write_spec(tmp_path, models=[_model_entry(write_spec, server.base_url)], **CASE)
    out = tmp_path / "reports"

    first = _run(capsys, str(spec), "--out", str(out))
    assert first.code == 0, first.err
    report = first.path
    assert report.name == "report.md" and report.is_file()
    run_dir = report.parent
    assert run_dir.parent == out / "e2e"

    # every job asked exactly once, with the spec's parameters and the story's system message
    assert len(server.requests) == 22
    for item in DESIGN:
        assert server.count(f"DIRECT <{item}>") == 1 and server.count(f"STORY <{item}>") == 1
    story_body = next(b for b in server.requests if "STORY <i03>" in b["messages"][-1]["content"])
    assert story_body["messages"][0] == {"role": "system", "content": "You write very short stories."}
    assert story_body["seed"] == 11 and story_body["temperature"] == 0 and story_body["max_tokens"] == 30
    direct_body = next(b for b in server.requests if "DIRECT <i03>" in b["messages"][-1]["content"])
    assert [m["role"] for m in direct_body["messages"]] == ["user"]

    text = report.read_text(encoding="utf-8")
    for heading in ("## Summary", "## Variants", "## Agreement between variants",
                    "### Confusion: scripted, direct (rows) x story (columns)", "## Disagreements", "## Run"):
        assert heading in text, heading
    assert "## Failed jobs" not in text
    assert "scripted, direct vs story: 2 items disagree" in text
    # each disagreement: the item, then each variant's label, the reader's reason and the answer
    assert "**i05** (gold: female): text number 5" in text
    assert "- *direct*: **female** (keyword 'female' of 'female'): Female." in text
    assert f"- *story*: **male** (male 4, female 0): {MALE_STORY}" in text
    # the one story that names nobody is shown with the pronoun reader's reason
    assert "| **scripted / story: 1 unparsed** | | |" in text
    assert "| i11/story/scripted/0 | The rain fell on the quiet town all night. | no clear majority" in text
    assert "22 jobs: 22 asked, 0 from the store, 0 failed" in text

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    (pair,) = summary["statistics"]["pairs"]
    assert (pair["a"], pair["b"], pair["items"], pair["both_labelled"]) == ("direct", "story", 11, 10)
    # over the 10 items both labelled: 4 F/F + 4 M/M agree -> po = 8/10;
    # direct says female on 5 of 10, story on 5 of 10 -> pe = 0.5*0.5 + 0.5*0.5 = 0.5;
    # kappa = (0.8 - 0.5) / (1 - 0.5) = 0.6
    po, pe = 8 / 10, (5 * 5 + 5 * 5) / 10**2
    assert (pair["agreement"]["count"], pair["agreement"]["n"]) == (8, 10)
    assert pair["cohen_kappa"]["kappa"] == pytest.approx((po - pe) / (1 - pe), abs=1e-12)
    assert pair["cohen_kappa"]["kappa"] == pytest.approx(0.6, abs=1e-12)
    # alpha: i11 has one value only; 20 pairable values, 10 female and 10 male, 2 disagreeing units:
    # 1 - (20 - 1) * 2 / (10 * 10) = 0.62
    assert pair["krippendorff_alpha"] == pytest.approx(0.62, abs=1e-12)
    assert pair["confusion"]["categories"] == ["female", "male", "unparsed"]
    assert pair["confusion"]["counts"] == [[4, 1, 1], [1, 4, 0], [0, 0, 0]]
    # paired correctness against gold: both right i01-i04, i07-i09 (7); direct only i05, i06, i11 (3);
    # story only none; neither i10. Exact two-sided p = 2 * (1/2)^3 = 0.25
    mc = pair["mcnemar"]
    assert mc["table"] == [[7, 3], [0, 1]]
    assert (mc["a_only_correct"], mc["b_only_correct"]) == (3, 0)
    assert mc["pvalue"] == pytest.approx(0.25, abs=1e-12)
    variants = {v["variant"]: v for v in summary["statistics"]["variants"]}
    # accuracy: direct wrong only on i10 -> 10/11; story wrong on i05, i06, i10, i11 (unparsed) -> 7/11
    assert (variants["direct"]["accuracy"]["count"], variants["direct"]["accuracy"]["n"]) == (10, 11)
    assert (variants["story"]["accuracy"]["count"], variants["story"]["accuracy"]["n"]) == (7, 11)
    assert variants["direct"]["labels"] == {"female": 6, "male": 5, "unparsed": 0}
    assert variants["story"]["labels"] == {"female": 5, "male": 5, "unparsed": 1}
    totals = summary["totals"]
    assert (totals["jobs"], totals["answered"], totals["failed"], totals["asked"], totals["from_store"]) == (
        22, 22, 0, 22, 0)
    assert totals["completion_tokens"] > 0
    assert summary["run"]["has_gold"] is True and summary["run"]["seed"] == 11

    frame = pl.read_parquet(run_dir / "results.parquet")
    assert frame.columns == RESULT_COLUMNS
    assert frame.height == 22 and frame["job_id"].n_unique() == 22
    assert not frame["cached"].any()
    for row in frame.iter_rows(named=True):
        direct, story, gold = DESIGN[row["item_id"]]
        assert row["label"] == (direct if row["variant"] == "direct" else story), row
        assert row["gold"] == gold
        assert row["error_class"] is None and row["seed"] == 11

    # a second run asks nothing new and says so
    first_report = text
    second = _run(capsys, str(spec), "--out", str(out))
    assert second.code == 0, second.err
    assert len(server.requests) == 22
    second_text = second.path.read_text(encoding="utf-8")
    assert "22 jobs: 0 asked, 22 from the store, 0 failed" in second_text
    second_frame = pl.read_parquet(second.path.parent / "results.parquet")
    assert second_frame["cached"].all()
    assert second_frame["label"].to_list() == frame["label"].to_list()

    # `evalrun report RUN_DIR` re-renders without any network access
    run_dir2 = second.path.parent
    before = second.path.read_text(encoding="utf-8")
    second.path.unlink()

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("evalrun report tried to use the network")

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", no_network)
        m.setattr(socket, "create_connection", no_network)
        rerendered = _run(capsys, "report", str(run_dir2))
    assert rerendered.code == 0, rerendered.err
    assert rerendered.path == run_dir2 / "report.md"
    assert rerendered.path.read_text(encoding="utf-8") == before
    assert len(server.requests) == 22

    _assert_no_secret(api_key.secret, run_dir, evalrun_home, first.out, first.err, second.out, second.err, first_report)
    _assert_no_secret(api_key.secret, run_dir2, evalrun_home)


def test_two_runs_in_one_second_keep_both_reports(tmp_path: Path, server: LoopbackServer,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, write_spec: SpecWriter) -> None:
    # The run id is a timestamp to the second: a rerun within that second must not overwrite the first report
    real_strftime = time.strftime

    def frozen(fmt: str, *args: Any) -> str:
        return "20240101-000000" if fmt == "%Y%m%d-%H%M%S" else real_strftime(fmt, *args)

    monkeypatch.setattr(time, "strftime", frozen)
    spec = write_spec(tmp_path, models=[_model_entry(write_spec, server.base_url)], **CASE)
    first = _run(capsys, str(spec), "--out", str(tmp_path / "reports"))
    second = _run(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert first.code == second.code == 0
    assert first.path != second.path
    assert "22 asked, 0 from the store" in first.path.read_text(encoding="utf-8")
    assert "0 asked, 22 from the store" in second.path.read_text(encoding="utf-8")


def test_missing_key_env_fails_that_models_jobs(tmp_path: Path, server: LoopbackServer,
                                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               evalrun_home: Path, write_spec: SpecWriter) -> None:
    monkeypatch.delenv(MISSING_ENV, raising=False)
    spec = write_spec(tmp_path, models=[_model_entry(write_spec, server.base_url, api_key_env=MISSING_ENV)], **CASE)

    run = _run(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert run.code == 1
    assert f"{MISSING_ENV} is not set" in run.err
    assert server.requests == []  # nothing is sent without the key

    frame = pl.read_parquet(run.path.parent / "results.parquet")
    assert frame.height == 22
    assert set(frame["error_class"].to_list()) == {"ConfigError"}
    assert frame["label"].null_count() == 22
    assert run.path.read_text(encoding="utf-8").count("| ConfigError |") == 22
    assert "## Failed jobs (22)" in run.path.read_text(encoding="utf-8")
    summary = json.loads((run.path.parent / "summary.json").read_text(encoding="utf-8"))
    assert (summary["totals"]["failed"], summary["totals"]["answered"]) == (22, 0)


def test_two_models_one_without_key(tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, evalrun_home: Path, write_spec: SpecWriter,
                                    api_key: ApiKey) -> None:
    # Each model's jobs must run on that model's own stream, with its own key: the keyed model answers
    # its 22 jobs, the keyless one records 22 failures, and no job runs twice.
    monkeypatch.delenv(MISSING_ENV, raising=False)
    models = [_model_entry(write_spec, server.base_url),
              _model_entry(write_spec, server.base_url, name="nokey", api_key_env=MISSING_ENV)]
    spec = write_spec(tmp_path, models=models, **CASE)

    run = _run(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert run.code == 1  # 22 of 44 jobs failed, more than the default --max-errors 0.1
    assert MISSING_ENV in run.err  # the warning names the variable
    assert len(server.requests) == 22  # the model without a key asked nothing

    frame = pl.read_parquet(run.path.parent / "results.parquet")
    assert frame.height == 44 and frame["job_id"].n_unique() == 44
    failed = frame.filter(pl.col("model") == "nokey")
    assert failed.height == 22
    assert set(failed["error_class"].to_list()) == {"ConfigError"}
    assert all(MISSING_ENV in m for m in failed["error_message"].to_list())
    assert failed["label"].null_count() == 22
    ok = frame.filter(pl.col("model") == "scripted")
    assert ok["error_class"].null_count() == 22

    report = run.path.read_text(encoding="utf-8")
    assert "## Failed jobs (22)" in report
    summary = json.loads((run.path.parent / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["failed"] == 22
    nokey = [v for v in summary["statistics"]["variants"] if v["model"] == "nokey"]
    assert {v["errors"] for v in nokey} == {11}
    # errors are not answers: no label counts, not even unparsed
    assert all(sum(v["labels"].values()) == 0 for v in nokey)
    _assert_no_secret(api_key.secret, run.path.parent, evalrun_home, run.out, run.err, report)


# ---- report from stored results ------------------------------------------------------------------


def _hand_run(run_dir: Path, variants: list[str]) -> None:
    """A run folder made by hand: results for two models, and the run metadata `evalrun report` reads."""
    # m1: v1 = x x y y, v2 = x y x y -> table [[1, 1], [1, 1]]: po = 1/2, pe = 1/2, kappa = 0 exactly.
    # m2: every variant = x x y y -> kappa 1. Any third variant copies v1.
    answers = {("m1", "v1"): "xxyy", ("m1", "v2"): "xyxy", ("m2", "v1"): "xxyy", ("m2", "v2"): "xxyy"}
    rows = []
    for model in ("m1", "m2"):
        for item in range(4):
            for variant in variants:
                label = answers.get((model, variant), answers[model, "v1"])[item]
                rows.append({
                    "job_id": f"i{item}/{variant}/{model}/0", "key": f"k{item}{variant}{model}", "item_id": f"i{item}",
                    "item_text": f"item {item}", "variant": variant, "model": model, "model_string": f"openai/{model}",
                    "sample": 0, "seed": 0, "system": None, "prompt": "p", "response": f"answer {label}",
                    "finish_reason": "stop", "label": label, "extraction": "hand", "gold": None, "error_class": None,
                    "error_message": None, "attempts": 1, "latency_s": 0.1, "prompt_tokens": 3,
                    "completion_tokens": 2, "cost": None, "cached": False})
    run_dir.mkdir(parents=True)
    pl.DataFrame(rows, schema=columns()).write_parquet(run_dir / "results.parquet")
    meta = {"name": "hand", "description": "", "run_id": "r1", "spec_path": "hand.yaml", "spec_sha256": "0" * 64,
            "dataset_source": "inline", "dataset_sha256": "1" * 64, "items": 4, "labels": ["x", "y"],
            "variants": variants, "compare": [[a, b] for i, a in enumerate(variants) for b in variants[i + 1:]],
            "has_gold": False, "models": [{"name": m, "model": f"openai/{m}", "api_base": None} for m in ("m1", "m2")],
            "samples": 1, "params": {}, "seed": 0, "started": "2024-01-01T00:00:00", "duration_s": 1.0,
            "versions": {"python": "3"}}
    (run_dir / "summary.json").write_text(json.dumps({"run": meta}), encoding="utf-8")


def test_report_renders_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _hand_run(tmp_path / "run", ["v1", "v2"])
    run = _run(capsys, "report", str(tmp_path / "run"))
    assert run.code == 0, run.err
    text = run.path.read_text(encoding="utf-8")
    # Landis & Koch (1977)'s bands only where the interval excludes 0: m1's kappa of 0 on 4 items has an
    # interval around 0, so it is not distinguishable from chance; 1 is perfect
    assert "**m1**: the *v1* and *v2* answers name the same label on 50.0% of the 4 items" in text
    assert "Cohen's kappa 0.00 (not distinguishable from chance)" in text
    assert "Cohen's kappa 1.00 (perfect agreement)" in text
    # two variants: the all-variants alpha would only repeat the pair's, on however many models
    assert "across all variants" not in text
    # two models: ranked on the pair's kappa (m2 agrees perfectly, m1 not beyond chance), then compared paired
    assert "## Models ranked" in text and "## Models compared" in text
    ranked = [line for line in text.splitlines() if line.startswith("| v1 vs v2 | ")]
    assert [line.split(" | ")[1:3] for line in ranked] == [["1", "m2"], ["2", "m1"]]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["cost_unknown_responses"] == 16
    # no response had a known price: the total is unknown, not $0
    assert summary["totals"]["cost_usd"] is None
    assert "cost unknown (no price known for these models)" in text


def test_report_shows_all_variants_alpha_for_three_variants(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _hand_run(tmp_path / "run", ["v1", "v2", "v3"])
    run = _run(capsys, "report", str(tmp_path / "run"))
    assert run.code == 0, run.err
    models = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["statistics"]["models"]
    m1, m2 = models
    # m1, ratings per item (x, y) over the 3 variants: (3, 0), (2, 1), (1, 2), (0, 3). Fleiss (1971):
    # P_i = 1, 1/3, 1/3, 1 -> mean 2/3; p_x = p_y = 1/2 -> P_e = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert m1["fleiss_kappa_all_variants"] == pytest.approx(1 / 3, abs=1e-12)
    # Cochran's Q on "x": column totals 2, 2, 2 (equal rates), so Q = 0 and p = 1
    assert m1["cochran_q"]["statistic"] == pytest.approx(0.0, abs=1e-12) and m1["cochran_q"]["pvalue"] == 1.0
    assert m2["fleiss_kappa_all_variants"] == pytest.approx(1.0, abs=1e-12)  # every variant agrees on every item
    text = run.path.read_text(encoding="utf-8")
    assert "Over the 4 items every variant labelled: Fleiss' kappa 0.33; do the variants give the labels at " \
        "different rates? Cochran's Q p = 1.000, Holm 1.000." in text
    assert "Krippendorff's alpha across all 3 variants of m1 (every variant, including pairs `compare:` leaves out)" \
        in text
    assert "Krippendorff's alpha across all 3 variants of m2 (every variant, including pairs `compare:` leaves " \
        "out): 1.00" in text


# ---- validate -------------------------------------------------------------------------------------


def _line_col(text: str, needle: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in text")


def test_validate_unknown_key_points_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=["openai/whatever"], **CASE)
    text = spec.read_text(encoding="utf-8").replace("\nparams:\n", "\nparamz:\n")
    text = text.replace("    system: You", "    sytem: You")
    spec.write_text(text, encoding="utf-8")
    run = _run(capsys, "validate", str(spec))
    assert run.code == 2
    line, col = _line_col(text, "paramz:")
    assert f"{spec}:{line}:{col}: error: unknown key 'paramz' in (top level) (did you mean 'params'?)" in run.err
    line, col = _line_col(text, "sytem:")
    assert f"{spec}:{line}:{col}: error: unknown key 'sytem' in variants.story (did you mean 'system'?)" in run.err
    assert "1 invalid" in run.err


def test_validate_template_variable_without_column(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=["openai/whatever"], **CASE)
    text = spec.read_text(encoding="utf-8").replace("Who wrote this: {{ text }}", "Who wrote this: {{ txt }}")
    spec.write_text(text, encoding="utf-8")
    run = _run(capsys, "validate", str(spec))
    assert run.code == 2
    line, col = _line_col(text, "'DIRECT <")  # the prompt's opening quote
    lines = [entry for entry in run.err.splitlines() if "error:" in entry]
    assert lines == [f"{spec}:{line}:{col}: error: variants.direct.prompt uses 'txt', which no dataset column "
                     "provides (did you mean 'text'?)"]


def test_validate_accepts_the_good_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=["openai/whatever"], **CASE)
    run = _run(capsys, "validate", str(spec))
    assert run.code == 0, run.err
    assert "1 valid, 0 invalid" in run.err


def test_run_refuses_a_broken_spec_before_asking(tmp_path: Path, server: LoopbackServer,
                                                capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=[_model_entry(write_spec, server.base_url)], **CASE)
    text = spec.read_text(encoding="utf-8").replace("Who wrote this: {{ text }}", "Who wrote this: {{ txt }}")
    assert "{{ txt }}" in text
    spec.write_text(text, encoding="utf-8")
    run = _run(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert run.code == 2
    assert "uses 'txt'" in run.err
    assert server.requests == []
    assert not (tmp_path / "reports").exists()


# ---- startup cost ---------------------------------------------------------------------------------

_NO_LITELLM = """
import sys
from evalrun.cli import main
from evalrun.results import columns
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("CODE", code)
print("LITELLM", "litellm" in sys.modules)
"""


def test_help_does_not_import_litellm() -> None:
    done = subprocess.run([sys.executable, "-c", _NO_LITELLM, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert "usage: evalrun" in done.stdout
    assert "CODE 0" in done.stdout
    assert "LITELLM False" in done.stdout
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "evalrun", "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
    assert timed.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if "|" in line}
    assert "evalrun.cli" in imported  # the import log is really there
    assert not any(name == "litellm" or name.startswith("litellm.") for name in imported)


def test_validate_does_not_import_litellm(tmp_path: Path, write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, models=["openai/whatever"], **CASE)
    done = subprocess.run([sys.executable, "-c", _NO_LITELLM, "validate", str(spec)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert "CODE 0" in done.stdout, done.stderr
    assert "LITELLM False" in done.stdout


def test_a_long_answer_is_folded_and_escaped() -> None:
    from evalrun.reporting.markdown import FOLD_CHARS, _quoted

    long = "<b>" + "word " * 100
    line = _quoted("story", "male", long, "male 4, female 0")
    assert line.startswith("- *story*: **male** (male 4, female 0): <details><summary>&lt;b&gt;word")
    assert line.endswith("</details>") and "<b>" not in line
    assert len(line.split("<summary>")[1].split("</summary>")[0]) < FOLD_CHARS + 10
    assert _quoted("direct", "female", "Female.", "why") == "- *direct*: **female** (why): Female."
