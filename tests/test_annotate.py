"""Human labels: `evalrun annotate`'s sample and labelling loop, their place in the store, and the report's
"Readers against a person" section, whose figures are checked against statsmodels and hand counts."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from evalrun.annotate import Answer, annotate, answers, label, sample
from evalrun.cli import main
from evalrun.extract import UNPARSED
from evalrun.record import RunRecord
from evalrun.reporting import write_report
from evalrun.store import MIGRATIONS, UNCLEAR, HumanLabel, Store, answer_key, home, read_labels

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
    from tests.two_label_sets import ASKED, TASK, two_label_sets
except ImportError:
    from loopback_server import LoopbackServer
    from two_label_sets import ASKED, TASK, two_label_sets

if TYPE_CHECKING:
    from conftest import SpecWriter

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"
SECTION = "## Readers against a person"


def _pool() -> list[Answer]:
    """Variant a: 10 answers (3 doubtful), b: 10 (none doubtful), c: 2."""
    def one(variant: str, n: int, doubtful: bool) -> Answer:
        return Answer(f"{variant}{n}", variant, f"i{n}", f"prompt {variant}{n}", f"text {variant}{n}", doubtful)

    return ([one("a", n, n < 3) for n in range(10)] + [one("b", n, False) for n in range(10)]
            + [one("c", n, False) for n in range(2)])


def test_sample_is_stratified_doubtful_first_and_reproducible() -> None:
    pool = _pool()
    chosen = sample(pool, 9, seed=7)
    # equal shares, c's shortfall going to the others in turn: a b c, a b c, a b, a
    assert Counter(a.variant for a in chosen) == {"a": 4, "b": 3, "c": 2}
    assert {a.key for a in chosen if a.variant == "a"} >= {"a0", "a1", "a2"}  # the doubtful ones first
    assert len({a.key for a in chosen}) == 9
    assert sample(pool, 9, seed=7) == chosen
    assert sample(pool, 9, seed=8) != chosen
    assert len(sample(pool, 100, seed=1)) == len(pool)


def _two(variant: str) -> list[str]:
    return ["female", "male"]


def _script(lines: list[str]) -> Callable[[str], str | None]:
    replies: Iterator[str] = iter(lines)
    return lambda prompt: next(replies, None)


def test_loop_stores_each_label_with_who_and_when_and_resumes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    chosen = _pool()[:4]
    shown: list[str] = []
    before = datetime.now().astimezone()
    tally = label(chosen, _two, store, "ann", _script(["1", "zz", "u", "q"]), shown.append)
    assert (tally.labelled, tally.skipped, tally.earlier, tally.left) == (2, 0, 0, 2)
    got = store.labels([a.key for a in chosen], "ann")
    assert [(h.answer_key, h.label, h.who) for h in got] == [("a0", "female", "ann"), ("a1", UNCLEAR, "ann")]
    assert all(datetime.fromisoformat(h.at) >= before.replace(microsecond=0) for h in got)
    assert any("'zz' is not one of" in s for s in shown)

    # the same sample again: only what ann has not labelled; another person starts from the beginning
    shown.clear()
    tally = label(chosen, _two, store, "ann", _script(["s", "2"]), shown.append)
    assert (tally.labelled, tally.skipped, tally.earlier, tally.left) == (1, 1, 2, 0)
    assert "prompt a2" in shown[0] and "[1/2]" in shown[0]
    assert store.labels(["a3"], "ann")[0].label == "male"
    tally = label(chosen, _two, store, "bob", _script([]), shown.append)  # input ended: quits
    assert (tally.labelled, tally.earlier, tally.left) == (0, 0, 4)
    store.close()


def test_label_is_keyed_by_the_answer_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    key = answer_key("request-1", "She smiled.")
    store.put_label(HumanLabel(key, "female", "ann", "2026-01-01T00:00:00+00:00"))
    store.put_label(HumanLabel(key, "male", "ann", "2026-01-02T00:00:00+00:00"))  # a change of mind replaces
    store.close()
    again = Store(path)
    assert again.labels([key]) == [HumanLabel(key, "male", "ann", "2026-01-02T00:00:00+00:00")]
    # the same request answered differently (after --fresh) is another answer: the label does not follow it
    assert again.labels([answer_key("request-1", "He smiled.")]) == []
    again.close()
    assert read_labels(path) == [HumanLabel(key, "male", "ann", "2026-01-02T00:00:00+00:00")]


def test_read_labels_leaves_a_missing_or_older_store_alone(tmp_path: Path) -> None:
    assert read_labels(tmp_path / "none.sqlite") == [] and not (tmp_path / "none.sqlite").exists()
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    for number, (_, sql) in enumerate(MIGRATIONS[:4], start=1):
        db.executescript(sql)
        db.execute(f"PRAGMA user_version = {number}")
    db.commit()
    db.close()
    assert read_labels(old) == []
    assert sqlite3.connect(old).execute("PRAGMA user_version").fetchone()[0] == 4  # not migrated by reading


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("figures"))
    return folder


def _report(folder: Path) -> str:
    write_report(folder, RunRecord.load(folder / "summary.json"), figures=False)
    return (folder / "report.md").read_text(encoding="utf-8")


def test_report_without_labels_for_its_answers_has_no_section(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    plain = _report(folder)  # no store at all
    assert SECTION not in plain
    store = Store()
    store.put_label(HumanLabel(answer_key("another run's request", "text"), "male", "ann", "2026-01-01T00:00:00Z"))
    store.close()
    assert _report(folder) == plain


def test_report_measures_each_reader_against_hand_set_labels(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    rows = pl.read_parquet(folder / "results.parquet").filter(pl.col("variant") == "direct")
    female = rows.filter(pl.col("label") == "female").head(4)
    male = rows.filter(pl.col("label") == "male").head(4)
    # the person against the reader: female row: 3 female, 1 male; male row: 1 female, 3 male
    given = list(zip(female.iter_rows(named=True), ["female", "female", "female", "male"], strict=True))
    given += list(zip(male.iter_rows(named=True), ["female", "male", "male", "male"], strict=True))
    spare = rows.filter(pl.col("label").is_not_null()).tail(2).iter_rows(named=True)
    store = Store()
    for r, human in given:
        store.put_label(HumanLabel(answer_key(r["key"], r["response"]), human, "ann", "2026-01-01T00:00:00Z"))
    unclear, differ = next(spare), next(spare)
    store.put_label(HumanLabel(answer_key(unclear["key"], unclear["response"]), UNCLEAR, "ann", "2026-01-01"))
    store.put_label(HumanLabel(answer_key(differ["key"], differ["response"]), "female", "ann", "2026-01-01"))
    store.put_label(HumanLabel(answer_key(differ["key"], differ["response"]), "male", "bob", "2026-01-01"))
    store.close()

    report = _report(folder)
    section = report[report.index(SECTION):]
    section = section[:section.index("\n## ", 1)]
    assert "10 answers labelled by hand (ann, bob, with `evalrun annotate` or `evalrun view`), of which 1 marked " \
           "unclear and 1 on which the people differ are left out" in section
    low, high = proportion_confint(6, 8, alpha=0.05, method="wilson")
    table = [[3, 1], [1, 3]]
    sm = cohens_kappa(table)
    assert sm.kappa == pytest.approx(0.5)  # (0.75 - 0.5) / (1 - 0.5), by hand
    expected = (f"| direct | extract | 8 | 75.0% [{100 * low:.1f}%, {100 * high:.1f}%] (6/8) | "
                f"0.50 [{sm.kappa_low:.2f}, {min(sm.kappa_upp, 1.0):.2f}] | 0 |")  # kappa's interval stops at 1
    assert expected in section.splitlines()
    assert "| **female** | 3 | 1 | 0 |" in section and "| **male** | 1 | 3 | 0 |" in section
    assert "extract (direct) got 2 wrong:" in section
    wrong = [r for (r, human), read in zip(given, ["female"] * 4 + ["male"] * 4, strict=True) if human != read]
    for r in wrong:
        human = "male" if r["label"] == "female" else "female"
        assert f"- item {r['item_id']}: human {human}, extract {r['label']}: \"" in section
    assert "| story |" not in section  # no story answer was labelled


def test_annotate_from_a_pipe_then_a_rerun_finds_the_labels(tmp_path: Path, loopback: Callable[..., LoopbackServer],
                                                           capsys: pytest.CaptureFixture[str],
                                                           write_spec: SpecWriter,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def reply(body: dict[str, Any]) -> str:
        return "alpha" if "ONE" in body["messages"][-1]["content"] else "beta"

    server = loopback(default_reply=reply)
    spec = write_spec(tmp_path, items=[f"i{n}" for n in range(6)],
                      models=[write_spec.model(server.base_url, timeout=5)])
    out = str(tmp_path / "out")
    assert main([str(spec), "--out", out]) == 0
    first = Path(capsys.readouterr().out.strip().splitlines()[-1]).parent

    monkeypatch.setattr("sys.stdin", io.StringIO("1\n1\n2\n1\n"))
    assert main(["annotate", str(first), "--sample", "4", "--seed", "5", "--who", "ann"]) == 0
    assert "4 labelled by ann now, 0 before" in capsys.readouterr().out
    assert len(read_labels(home() / "store.sqlite")) == 4

    assert main([str(spec), "--out", out]) == 0  # every answer from the store, in a new run folder
    second = Path(capsys.readouterr().out.strip().splitlines()[-1]).parent
    assert second != first and len(server.requests) == 12
    report = (second / "report.md").read_text(encoding="utf-8")
    assert SECTION in report and "4 answers labelled by hand (ann" in report

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # the same sample again: nothing left to ask
    assert main(["annotate", str(second), "--sample", "4", "--seed", "5", "--who", "ann"]) == 0
    assert "0 labelled by ann now, 4 before" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["annotate", "nowhere"], "nowhere: not a run folder (no results.parquet)"),
    (["annotate", str(EXAMPLE), "--sample", "0"], "--sample must be at least 1, not 0"),
])
def test_annotate_errors_are_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert capsys.readouterr().err == f"evalrun: error: {message}\n"


def test_answers_of_the_example_flag_disagreements_and_unparsed() -> None:
    pool = answers(EXAMPLE)
    results = pl.read_parquet(EXAMPLE / "results.parquet").filter(pl.col("error_class").is_null())
    assert len(pool) == results.height  # every answer is distinct in the example
    unparsed = results.filter(pl.col("label").is_null()).height
    doubtful = sum(a.doubtful for a in pool)
    assert doubtful >= unparsed
    # a story answer both readers read alike is not doubtful; one they read differently is
    readings = pl.read_parquet(EXAMPLE / "readings.parquet").pivot("reader", index="job_id", values="label")
    alike = readings.filter(pl.col("extract").eq_missing(pl.col("judge")) & pl.col("extract").is_not_null())
    differ = readings.filter(pl.col("extract").ne_missing(pl.col("judge")))
    by_job = dict(zip(results["job_id"], (a.doubtful for a in pool), strict=True))
    assert all(not by_job[j] for j in alike["job_id"]) and all(by_job[j] for j in differ["job_id"])
    assert differ.height > 0


# the person's labels of the two-label-set run (tests/two_label_sets.py), by (item, variant): the reader's but for
# i4 under asked (yes, read no), i4 under task (comply, read refuse) and i1 under the follow-up (no, read yes)
PERSON = {**{(i, "asked"): v for i, v in ASKED.items()}, ("i4", "asked"): "yes",
          **{(i, "task"): v for i, v in TASK.items()}, ("i4", "task"): "comply",
          **{(i, "asked.followup"): "yes" for i in ASKED}, ("i1", "asked.followup"): "no"}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # statsmodels' z of a kappa of 0/0.25
def test_annotate_offers_each_answer_its_variant_s_labels_and_the_report_measures_each_in_them(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    folder = two_label_sets(tmp_path, loopback, write_spec)
    shown: list[str] = []
    menus: dict[tuple[str, str], str] = {}

    def ask(prompt: str) -> str:
        """The person: reads the item and variant the last text shown names, answers by the menu offered."""
        item, variant = re.search(r"item (\w+), variant ([\w.]+)\n", shown[-1]).groups()  # type: ignore[union-attr]
        menus[item, variant] = prompt
        offered = dict(re.findall(r"(\d) (\w+)", prompt))
        return next(key for key, name in offered.items() if name == PERSON[item, variant])

    tally = annotate(folder, 12, seed=3, who="ann", ask=ask, say=shown.append)
    assert (tally.labelled, tally.left) == (12, 0)
    for (_, variant), menu in menus.items():
        listed = "1 comply, 2 refuse" if variant == "task" else "1 yes, 2 no"
        assert menu == f"label ({listed}, u unclear, s skip, q quit)? "
    results = pl.read_parquet(folder / "results.parquet")
    keys = {answer_key(r["key"], r["response"]): (r["item_id"], r["variant"]) for r in results.iter_rows(named=True)}
    assert {keys[h.answer_key]: h.label for h in read_labels()} == PERSON

    # a label stored for an asked answer from the run's labels (as the view and annotate offered before): left out
    store = Store()
    other = next(k for k, at in keys.items() if at == ("i1", "asked"))
    store.put_label(HumanLabel(other, "comply", "ann", "2026-01-02T00:00:00Z"))  # ann changes her mind
    store.close()
    section = _report(folder)
    section = section[section.index(SECTION):]
    section = section[:section.index("\n## ", 1)]
    assert ("12 answers labelled by hand (ann, with `evalrun annotate` or `evalrun view`), of which 0 marked "
            "unclear, 0 on which the people differ and 1 given a label their variant does not read are left out"
            ) in section
    # by hand: asked (i1 out) human yes yes yes / no against read yes yes no / no; task human comply refuse
    # comply comply against read comply refuse comply refuse; the follow-up human no yes yes yes, read yes x4
    tables = {"asked": ("yes", "no", [[1, 1], [0, 1]]), "task": ("comply", "refuse", [[2, 1], [0, 1]]),
              "asked.followup": ("yes", "no", [[3, 0], [1, 0]])}
    for variant, (first, second, table) in tables.items():
        confusion = section[section.index(f"### Confusion: {variant}, human (rows) x extract (columns)"):]
        assert confusion.splitlines()[2:6] == [
            f"| human \\ extract | {first} | {second} | {UNPARSED} |", "|---|---|---|---|",
            f"| **{first}** | {table[0][0]} | {table[0][1]} | 0 |",
            f"| **{second}** | {table[1][0]} | {table[1][1]} | 0 |"]
        right, n = table[0][0] + table[1][1], sum(map(sum, table))
        low, high = proportion_confint(right, n, alpha=0.05, method="wilson")
        line = next(x for x in section.splitlines() if x.startswith(f"| {variant} | extract |"))
        assert line.startswith(f"| {variant} | extract | {n} | {100 * right / n:.1f}% [{100 * low:.1f}%, "
                               f"{100 * high:.1f}%] ({right}/{n}) | "), line
        kappa = cohens_kappa(table).kappa
        assert line.split(" | ")[4].startswith(f"{kappa:.2f}"), line


def test_the_corrected_agreement_reads_each_reader_in_the_pair_s_order_of_labels(tmp_path: Path) -> None:
    """Two compared variants may list the same labels in different orders: story's reader, measured in its own
    order (male, female), is turned to the pair's (direct's: female, male) before correcting."""
    folder = _copy(tmp_path)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary["run"]["variant_labels"] = {"direct": ["female", "male"], "story": ["male", "female"],
                                        "story.followup": ["male", "female"]}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    rows = pl.read_parquet(folder / "results.parquet").filter(pl.col("error_class").is_null())
    given: list[tuple[dict[str, Any], str]] = []
    direct, story = (rows.filter(pl.col("variant") == v) for v in ("direct", "story"))
    for name in ("female", "male"):  # direct's reader right on 12 of each label
        given += [(r, name) for r in direct.filter(pl.col("label") == name).head(12).iter_rows(named=True)]
    # story's reader: of the 12 the person calls female it reads 10 female (2 male); of 12 male, 12 male
    given += zip(story.filter(pl.col("label") == "male").head(14).iter_rows(named=True), ["male"] * 12 + ["female"] * 2,
                 strict=True)
    given += [(r, "female") for r in story.filter(pl.col("label") == "female").head(10).iter_rows(named=True)]
    store = Store()
    for r, human in given:
        store.put_label(HumanLabel(answer_key(r["key"], r["response"]), human, "ann", "2026-01-01T00:00:00Z"))
    store.close()
    report = _report(folder)
    # direct vs story observed [[4, 8], [3, 4]] over 19 items (female, male); M_direct = I, M_story (female, male)
    # = [[5/6, 1/6], [0, 1]], so P_true = P_obs M_story^-1 = [[4.8, 7.2], [3.6, 3.4]] / 19 by hand: trace 8.2 / 19
    line = re.search(r"^- direct vs story \(evalrun/smollm2\): observed 42\.1%, corrected 43\.2% \[(\d+\.\d)%, "
                     r"(\d+\.\d)%\] \(bootstrap over the items and the hand labels, 1000 resamples; \d+ dropped\)$",
                     report, re.MULTILINE)
    assert line and float(line[1]) < 43.2 < float(line[2]), report
