"""Comparing runs: two runs of one spec on a scripted loopback server, where the second run changes the
answers to known items, so the changed items and the difference in accuracy are known in advance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from evalrun.api import run
from evalrun.errors import EvalrunError
from evalrun.reporting.compare import compare_runs
from evalrun.stats.bootstrap import bootstrap_ratio_difference

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter

ITEMS = [f"i{n:02d}" for n in range(1, 21)]
GOLD = {item: "female" if n % 2 else "male" for n, item in enumerate(ITEMS, start=1)}
# the baseline answers the direct question wrongly on i01-i06 and i11; the second run fixes i01-i06
FIXED = set(ITEMS[:6])
WRONG = FIXED | {"i11"}
OTHER = {"female": "male", "male": "female"}


def _reply(answers: dict[str, str]) -> object:
    def reply(body: dict) -> str:
        text = "\n".join(m["content"] for m in body["messages"])
        kind, item = re.search(r"(DIRECT|STORY) <(\w+)>", text).groups()  # type: ignore[union-attr]
        label = answers[item]
        return f"The author is {label}." if kind == "DIRECT" else f"A {GOLD[item]} character walked home."
    return reply


class Runs:
    """Run folders made once for the module (each run takes a second or two)."""

    def __init__(self, root: Path, write_spec: SpecWriter) -> None:
        self.root = root
        self.write_spec = write_spec

    def make(self, answers: dict[str, str], name: str = "cmp", labels: tuple[str, ...] = ("female", "male"),
             items: list[str] = ITEMS, model: str = "scripted") -> Path:
        folder = self.root / f"spec-{len(list(self.root.glob('spec-*')))}"
        with LoopbackServer(default_reply=_reply(answers)) as server:  # type: ignore[arg-type]
            pick = {"type": "choice", "choices": {"female": [], "male": []}}
            path = self.write_spec(
                folder, name=name, labels=labels, dataset={"gold": "gender"},
                items=[{"id": i, "text": f"text {i}", "gender": GOLD.get(i, "female")} for i in items],
                variants={"direct": "DIRECT <{{ id }}> {{ text }}", "story": "STORY <{{ id }}> {{ text }}"},
                extract=pick, models=[self.write_spec.model(server.base_url, name=model, model=f"openai/{model}")],
                params={"temperature": 0})
            # fresh: the second run must ask again, not read the first run's answers from the store
            return run(path, out=self.root / "reports", fresh=True, retries=0, warn=lambda _: None).dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, write_spec: SpecWriter, api_key: ApiKey) -> Iterator[Runs]:
    # module-scoped, so the per-test EVALRUN_HOME of conftest is not set up yet: set our own
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALRUN_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        mp.setenv(api_key.env, api_key.secret)
        yield Runs(tmp_path_factory.mktemp("runs"), write_spec)


BEFORE = {i: OTHER[GOLD[i]] if i in WRONG else GOLD[i] for i in ITEMS}
AFTER = {i: OTHER[GOLD[i]] if i in WRONG - FIXED else GOLD[i] for i in ITEMS}


@pytest.fixture(scope="module")
def pair(runs: Runs) -> tuple[Path, Path]:
    return runs.make(BEFORE), runs.make(AFTER)


def test_changed_items_and_accuracy_difference(pair: tuple[Path, Path], tmp_path: Path) -> None:
    report = compare_runs(list(pair), tmp_path / "out")
    assert report == tmp_path / "out" / "compare.md"
    text = report.read_text(encoding="utf-8")
    # the direct variant's item-level labels changed on exactly the fixed items, none else
    changed = re.findall(r"^\| (i\d\d) \| (\w+) \| (\w+) \| (\w+) \|$", text, flags=re.MULTILINE)
    assert changed == [(i, GOLD[i], OTHER[GOLD[i]], GOLD[i]) for i in sorted(FIXED)]
    assert "**scripted · direct**: 6 of 20 items changed label:" in text
    # accuracy 13/20 -> 19/20; the interval is the paired bootstrap over the same 20 items, in item order
    before = np.array([BEFORE[i] == GOLD[i] for i in ITEMS], dtype=float)
    after = np.array([AFTER[i] == GOLD[i] for i in ITEMS], dtype=float)
    ones = np.ones(len(ITEMS))
    diff = bootstrap_ratio_difference(after, ones, before, ones)
    assert diff["estimate"] == pytest.approx(0.3)
    assert diff["ci_low"] > 0  # six items all changed one way: the interval excludes no change
    line = (f"| accuracy | 65.0% (13/20) | 95.0% (19/20) | +30.0 [{100 * diff['ci_low']:+.1f}, "
            f"{100 * diff['ci_high']:+.1f}] |")
    assert line in text
    # the story variant did not change: a zero difference, and no changed item listed for it
    assert "| accuracy | 100.0% (20/20) | 100.0% (20/20) | +0.0 [no interval: every resample gave +0.0] |" in text
    assert "scripted · story**" not in text


def test_kappa_difference_and_figures(pair: tuple[Path, Path], tmp_path: Path) -> None:
    text = compare_runs(list(pair), tmp_path).read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| scripted · direct vs story |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "20"
    # direct agrees with story (which answers the gold) exactly where direct is right
    assert cells[5] == "65.0% (13/20)" and cells[6] == "95.0% (19/20)"
    assert cells[4].startswith("+") and "[" in cells[4]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["figures/compare-1-accuracy.png", "figures/compare-1-kappa.png"]
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(b"\x89PNG")


def test_one_model_each_is_compared_across_names(runs: Runs, pair: tuple[Path, Path], tmp_path: Path) -> None:
    tuned = runs.make(AFTER, model="tuned")
    text = compare_runs([pair[0], tuned], tmp_path).read_text(encoding="utf-8")
    assert "### scripted → tuned · direct" in text
    assert "**scripted → tuned · direct**: 6 of 20 items changed label:" in text


def test_errors(runs: Runs, pair: tuple[Path, Path], tmp_path: Path) -> None:
    elsewhere = [f"x{n:02d}" for n in range(1, 4)]
    cases = [
        ([pair[0], runs.make(BEFORE, name="other")], "runs of different specs: .* ran 'cmp', .* ran 'other'"),
        ([pair[0], runs.make({i: "female" for i in ITEMS}, labels=("female", "male", "other"))],
         "runs with different labels"),
        ([pair[0], runs.make({i: "female" for i in elsewhere}, items=elsewhere)], "share no items"),
        ([pair[0]], "at least two run folders"),
        ([pair[0], tmp_path], "not a run folder"),
    ]
    for dirs, message in cases:
        with pytest.raises(EvalrunError, match=message) as caught:
            compare_runs(dirs, tmp_path / "out")
        assert "\n" not in str(caught.value)  # the CLI prints it as one line
    assert not (tmp_path / "out" / "compare.md").exists()
