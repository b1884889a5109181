"""Issue 23's three evals (evals/sycophancy.yaml, tier_compliance.yaml, position_bias.yaml), each run end to end
against a loopback server whose answers are scripted per item, so that the effect the researcher asked for
and the agreement of the stated answer with the measured behaviour are known before the run: the numbers
below are counted by hand from the script, and the intervals and tests computed by statsmodels and scipy,
then looked for in report.md's Summary.

Each test runs the shipped spec on its first ten items (`limit=10`), from a copy of evals/ whose spec names
the loopback server as its model.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from scipy.stats import binomtest
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

import evalrun

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

EVALS = Path(__file__).parent.parent / "evals"
ITEMS = 10  # the first ten items of each dataset: few enough to count by hand

Reply = Callable[[dict[str, Any]], str]


def _summary(report: Path) -> str:
    text = report.read_text(encoding="utf-8")
    return text.split("## Summary", 1)[1].split("\n## ", 1)[0]


def _asked(body: dict[str, Any]) -> str:
    """Every message of the request, one per line (the prompt the scripts look for their item in)."""
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def _wilson(count: int, n: int) -> str:
    low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
    return f"[{100 * low:.1f}%, {100 * high:.1f}%]"


def _stated(says: int, does: int, agree: int, table: list[list[int]]) -> str:
    """The typed comparison's figures as the Summary gives them: the shares of items where the model says it
    has the behaviour and where it shows it, the agreement (each with its Wilson interval) and Cohen's kappa
    (statsmodels) of the 2x2 table [[says and does, says and does not], [does not say and does, neither]]."""
    n = sum(map(sum, table))
    kappa = cohens_kappa(table).kappa
    return (f"says it would {100 * says / n:.1f}% {_wilson(says, n)}, does {100 * does / n:.1f}% {_wilson(does, n)}; "
            f"agree {100 * agree / n:.1f}% {_wilson(agree, n)} of {n} items, kappa {kappa:.2f}")


def _shift(outcome: str, first: str, count_first: int, second: str, count_second: int) -> str:
    """The effect as the Summary gives it: the share of the ITEMS items with `outcome` under each of two variants
    (each with its Wilson interval) and their difference in points."""
    a, b = 100 * count_first / ITEMS, 100 * count_second / ITEMS
    return (f"{outcome} {a:.1f}% {_wilson(count_first, ITEMS)} under *{first}* vs {b:.1f}% "
            f"{_wilson(count_second, ITEMS)} under *{second}*, {a - b:+.1f} points")


def _mcnemar(discordant: int) -> str:
    """McNemar's exact test over `discordant` items, all changed one way: a two-sided binomial test of 0 of them."""
    return f"McNemar exact p = {binomtest(0, discordant, 0.5).pvalue:.3f}"


def _run(name: str, tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter,
         reply: Reply) -> str:
    """The Summary of evals/<name>.yaml run on its first ITEMS items against a server answering `reply`."""
    root = tmp_path / "evals"
    shutil.copytree(EVALS, root)
    server = loopback(default_reply=reply)
    spec = root / f"{name}.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["models"] = [write_spec.model(server.base_url, name="loopback", model="openai/loopback")]
    spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    run = evalrun.run(spec, limit=ITEMS, out=tmp_path / "reports", retries=0, figures=False,
                      warn=lambda message: pytest.fail(f"unexpected warning: {message}"))
    assert run.summary["totals"]["failed"] == 0
    return _summary(run.report_path)


def _rows(name: str) -> list[dict[str, str]]:
    path = EVALS / "data" / name
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))[:ITEMS]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:ITEMS]]


def _item(rows: list[dict[str, str]], asked: str, column: str) -> int:
    """The 1-based number of the item whose `column` the request quotes."""
    found = [n for n, row in enumerate(rows, 1) if row[column] in asked]
    assert len(found) == 1, asked
    return found[0]


def test_sycophancy_summary_gives_the_pushback_effect_and_the_stated_agreement(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    """Items 1-8 answered correctly without pushback and 1-4 with it: 80% vs 40% correct, +40 points; items 5-8
    changed. The model says it would change on items 1 and 5-7: it is right on 5, 6, 7 (changed) and 2, 3, 4, 9, 10
    (unchanged), 8 of 10."""
    rows = _rows("sycophancy_questions.jsonl")

    def reply(body: dict[str, Any]) -> str:
        asked = _asked(body)
        n = _item(rows, asked, "question")
        if "would you change your answer" in asked:
            return "yes" if n in {1, 5, 6, 7} else "no"
        pushed = "I'm sure the answer to this is" in asked
        right = n <= 4 if pushed else n <= 8
        return rows[n - 1]["correct" if right else "wrong"]

    summary = _run("sycophancy", tmp_path, loopback, write_spec, reply)
    assert _shift("correct", "neutral", 8, "pushback", 4) in summary
    assert _mcnemar(4) in summary  # items 5-8
    # says yes on 1, 5, 6, 7; changed on 5, 6, 7, 8
    assert _stated(says=4, does=4, agree=8, table=[[3, 1], [1, 5]]) in summary


def test_tier_compliance_summary_gives_the_compliance_gap_and_the_stated_agreement(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    """Items 1-9 complied with on the free tier and 1-6 on the paid tier: 90% vs 60%, +30 points; items 7-9
    changed. The model says it would respond differently on items 1, 2, 7, 8: right on 7, 8 (changed) and 3, 4, 5,
    6, 10 (unchanged), 7 of 10."""
    rows = _rows("tier_requests.jsonl")

    def reply(body: dict[str, Any]) -> str:
        asked = _asked(body)
        n = _item(rows, asked, "request")
        if "if the user were on the paid tier" in asked:
            return "yes" if n in {1, 2, 7, 8} else "no"
        complies = n <= 6 if "on the paid tier." in asked else n <= 9
        return f"Here you are: {rows[n - 1]['subject']}, as asked." if complies else "I'm sorry, I can't help."

    summary = _run("tier_compliance", tmp_path, loopback, write_spec, reply)
    assert _shift("comply", "free", 9, "paid", 6) in summary
    assert _mcnemar(3) in summary  # items 7-9
    # says yes on 1, 2, 7, 8; changed on 7, 8, 9
    assert _stated(says=4, does=3, agree=7, table=[[2, 2], [1, 5]]) in summary


def test_position_bias_summary_gives_the_first_option_share_and_the_stated_agreement(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    """Items 1-6 answered with the option listed first in both orders, items 7-10 always with option a (first in
    one order only): 16 of 20 answers pick the first-listed option. The model says it tends to pick the first on
    items 1-3 and 7: right on 1-3 (picked first) and 8-10 (did not), 6 of 10."""
    rows = _rows("position_pairs.csv")

    def reply(body: dict[str, Any]) -> str:
        asked = _asked(body)
        n = _pair(rows, asked)
        row = rows[n - 1]
        if "do you tend to pick the one listed first" in asked:
            return "yes" if n in {1, 2, 3, 7} else "no"
        a_first = asked.index(row["option_a"]) < asked.index(row["option_b"])
        first = row["word_a"] if a_first else row["word_b"]
        return first if n <= 6 else row["word_a"]

    summary = _run("position_bias", tmp_path, loopback, write_spec, reply)
    low, high = proportion_confint(16, 20, alpha=0.05, method="wilson")
    assert (f"80.0% of readable answers pick the option listed first (16/20, 95% CI {100 * low:.1f}% to "
            f"{100 * high:.1f}%)") in summary
    # says yes on 1, 2, 3, 7; picked the first-listed option in both orders on 1-6
    assert _stated(says=4, does=6, agree=6, table=[[3, 1], [3, 3]]) in summary


def _pair(rows: list[dict[str, str]], asked: str) -> int:
    """The 1-based number of the pair whose two options the request names (questions repeat across pairs)."""
    found = [n for n, row in enumerate(rows, 1) if row["option_a"] in asked and row["option_b"] in asked]
    assert len(found) == 1, asked
    return found[0]
