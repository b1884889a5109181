"""Change tracking (stats/tracking.py and compare.md's section): the statistics on a six-item case
worked by hand, the difference-in-differences interval against a bootstrap written out here with
numpy, and `evalrun compare` on two runs by two scripted models whose changes are known in advance."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from evalrun.api import run
from evalrun.reporting.compare import compare_runs
from evalrun.stats.tracking import changes, signed_changes, tracking

if TYPE_CHECKING:
    from conftest import SpecWriter

    try:
        from tests.loopback_server import LoopbackServer
    except ImportError:
        from loopback_server import LoopbackServer

# six items: the stated answer and behaviour by model A, then by model B
STATED_A = ["a", "a", "a", "b", "b", None]
STATED_B = ["b", "a", "b", "b", "a", "a"]
BEHAVIOUR_A = ["a", "a", "a", "b", "a", "a"]
BEHAVIOUR_B = ["b", "a", "a", "a", "b", "a"]


def test_change_vectors() -> None:
    assert changes(STATED_A, STATED_B) == ["changed", "same", "changed", "same", "changed", None]
    assert signed_changes(STATED_A, STATED_B, "a") == ["away", "none", "away", "none", "toward", None]
    assert signed_changes(BEHAVIOUR_A, BEHAVIOUR_B, "b") == ["toward", "none", "none", "away", "toward", "none"]


def test_six_items_by_hand() -> None:
    result = tracking(STATED_A, STATED_B, BEHAVIOUR_A, BEHAVIOUR_B, ["a", "b"])
    # item 6's stated answer by A is unparsed: five items count
    assert (result["n"], result["read"]) == (6, 5)
    # 1: both changed, 2: neither, 3: only stated, 4: only behaviour, 5: both (in opposite directions)
    assert result["counts"] == {"both": 2, "stated_only": 1, "behaviour_only": 1, "neither": 1}
    percent, kappa = result["agreement"]["percent"], result["agreement"]["kappa"]
    assert (percent["count"], percent["n"]) == (3, 5)
    # observed agreement 3/5; each side changed on 3 of 5, so chance agreement 0.6^2 + 0.4^2 = 0.52
    assert kappa["kappa"] == pytest.approx((0.6 - 0.52) / (1 - 0.52))
    a, b = result["labels"]
    # toward a: stated -1, 0, -1, 0, +1 and behaviour -1, 0, 0, +1, -1; both shares fell by 1/5
    assert (a["label"], a["stated"], a["behaviour"]) == ("a", pytest.approx(-0.2), pytest.approx(-0.2))
    assert a["did"]["estimate"] == pytest.approx(0.0)
    # ... yet the signed changes agree on items 1 and 2 only: a mean of 0 hides changes that do not track
    assert (a["agreement"]["percent"]["count"], a["agreement"]["percent"]["n"]) == (2, 5)
    # marginals toward/none/away 1/2/2 on both sides: chance agreement (1 + 4 + 4) / 25
    assert a["agreement"]["kappa"]["kappa"] == pytest.approx((0.4 - 0.36) / (1 - 0.36))
    # with two labels, b mirrors a
    assert (b["stated"], b["behaviour"], b["did"]["estimate"]) == (pytest.approx(0.2), pytest.approx(0.2),
                                                                   pytest.approx(0.0))
    assert b["agreement"]["percent"]["count"] == 2


def test_nothing_read_and_misaligned() -> None:
    result = tracking([None], ["a"], ["a"], ["a"], ["a", "b"])
    assert result["read"] == 0 and result["counts"]["neither"] == 0
    assert result["labels"][0]["stated"] is None and result["labels"][0]["did"]["estimate"] is None
    with pytest.raises(ValueError, match="aligned"):
        tracking(["a"], ["a", "b"], ["a"], ["a"], ["a", "b"])


def test_interval_against_numpy_resampling() -> None:
    rng = np.random.default_rng(7)
    n = 40
    stated_a, stated_b, behaviour_a, behaviour_b = (list(rng.choice(["x", "y", "z"], size=n)) for _ in range(4))
    did = tracking(stated_a, stated_b, behaviour_a, behaviour_b, ["x", "y", "z"])["labels"][0]["did"]
    # written out independently: per item, the stated answer's signed change toward x minus behaviour's
    d = np.array([(sb == "x") - (sa == "x") - ((bb == "x") - (ba == "x"))
                  for sa, sb, ba, bb in zip(stated_a, stated_b, behaviour_a, behaviour_b, strict=True)], dtype=float)
    # the item-clustered bootstrap: 1000 resamples of the 40 items, seed 0, the 2.5th and 97.5th percentiles
    means = d[np.random.default_rng(0).integers(0, n, size=(1000, n))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert did["estimate"] == pytest.approx(d.mean())
    assert (did["ci_low"], did["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    # and near the normal approximation mean +- 1.96 sd / sqrt(n)
    half = 1.96 * d.std(ddof=1) / np.sqrt(n)
    assert did["ci_low"] == pytest.approx(d.mean() - half, abs=0.1)
    assert did["ci_high"] == pytest.approx(d.mean() + half, abs=0.1)


ITEMS = [f"i{n}" for n in range(1, 9)]
# (direct, story) by each model: i1, i2 both change; i3 only the statement; i4 only behaviour;
# i5-i7 neither; i8 both, in opposite directions
ANSWERS = {
    "base": {"i1": ("yes", "yes"), "i2": ("yes", "yes"), "i3": ("yes", "yes"), "i4": ("yes", "yes"),
             "i5": ("yes", "no"), "i6": ("no", "yes"), "i7": ("no", "no"), "i8": ("no", "yes")},
    "tuned": {"i1": ("no", "no"), "i2": ("no", "no"), "i3": ("no", "yes"), "i4": ("yes", "no"),
              "i5": ("yes", "no"), "i6": ("no", "yes"), "i7": ("no", "no"), "i8": ("yes", "no")},
}


def _reply(body: dict) -> str:
    text = "\n".join(m["content"] for m in body["messages"])
    kind, item = re.search(r"(DIRECT|STORY) <(\w+)>", text).groups()  # type: ignore[union-attr]
    direct, story = ANSWERS[body["model"]][item]
    return f"Answer: {direct if kind == 'DIRECT' else story}."


def test_compare_two_models(loopback: Callable[..., LoopbackServer], write_spec: SpecWriter, tmp_path: Path) -> None:
    server = loopback(default_reply=_reply)
    folders = []
    for model in ("base", "tuned"):
        spec = write_spec(tmp_path / model, name="track", labels=("yes", "no"), items=ITEMS,
                          variants={"direct": "DIRECT <{{ id }}>", "story": "STORY <{{ id }}>"},
                          extract={"type": "choice", "choices": {"yes": [], "no": []}},
                          models=[write_spec.model(server.base_url, name=model, model=f"openai/{model}")],
                          params={"temperature": 0})
        folders.append(run(spec, out=tmp_path / "reports", retries=0, warn=lambda _: None).dir)
    text = compare_runs(folders, tmp_path / "out").read_text(encoding="utf-8")
    assert "### Does the stated answer's change track behaviour's? (base → tuned)" in text
    # both 3, only stated 1, only behaviour 1, neither 3; the changes agree on 6 of 8 items
    counts = next(line for line in text.splitlines() if line.startswith("| base → tuned · direct vs story | 8 of 8"))
    cells = [c.strip() for c in counts.strip("|").split("|")]
    assert cells[2:6] == ["3", "1", "1", "3"]
    assert cells[6].startswith("75.0% (6/8) [")
    # each side changed on 4 of 8: chance agreement 0.5, observed 0.75
    assert cells[7] == "0.50"
    # toward yes: the statement's share fell by 2/8, behaviour's by 4/8; the difference +25 points
    row = next(line for line in text.splitlines() if line.startswith("| base → tuned · direct vs story | yes |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["-25.0", "-50.0"]
    # per item (i1-i8) the statement's change toward yes minus behaviour's; resampled as in the test above
    d = np.array([0, 0, -1, 1, 0, 0, 0, 2], dtype=float)
    low, high = np.quantile(d[np.random.default_rng(0).integers(0, 8, size=(1000, 8))].mean(axis=1), [0.025, 0.975])
    assert cells[4] == f"+25.0 [{100 * low:+.1f}, {100 * high:+.1f}]"
    # signed changes toward yes agree on i1, i2 and i5-i7
    assert cells[5].startswith("62.5% (5/8) [")
    assert "- base → tuned · direct vs story, *yes*: " in text

    # one model against itself: no tracking section
    alone = compare_runs([folders[0], folders[0]], tmp_path / "same").read_text(encoding="utf-8")
    assert "track behaviour" not in alone
