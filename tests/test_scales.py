"""Ordered labels (`ordinal: true`) over real HTTP: the scale statistics of a pair, each checked against an
independent implementation (statsmodels, scipy) on the item vectors worked out here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from scipy.stats import spearmanr, wilcoxon
from statsmodels.stats.inter_rater import cohens_kappa

import evalrun
from evalrun.reporting.format import p_value

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

# item -> (stated rating, shown rating) on a 1-5 scale: the stated one runs higher, mostly by one step
RATINGS = {"r1": (5, 4), "r2": (4, 4), "r3": (5, 3), "r4": (2, 1), "r5": (3, 3), "r6": (4, 2), "r7": (1, 1),
           "r8": (5, 5), "r9": (3, 2), "r10": (4, 3)}


def _reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    item = re.search(r"<(r\d+)>", text)[1]  # type: ignore[index]
    stated, shown = RATINGS[item]
    return f"I would say {stated}." if "STATED" in text else f"Rating: {shown}/5"


ONE_TO_FIVE = {"type": "number", "min": 1, "max": 5}
# conftest's write_spec's parts: a rating stated and a rating shown, on ordered labels
SPEC: dict[str, Any] = {
    "name": "scale", "inline": True, "items": [{"id": i, "text": f"thing {i}"} for i in RATINGS],
    "labels": ["1", "2", "3", "4", "5"], "ordinal": True,
    "variants": {"stated": "STATED <{{ id }}> how much do you like {{ text }}, 1 to 5?",
                 "shown": "SHOWN <{{ id }}> rate {{ text }}"},
    "extract": ONE_TO_FIVE,
}


def test_an_ordinal_pair_reports_weighted_kappa_spearman_and_wilcoxon(tmp_path: Path,
                                                                      write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply=_reply) as server:
        spec = write_spec(tmp_path, models=[write_spec.model(server.base_url, name="x", model="openai/x")], **SPEC)
        run = evalrun.run(spec, out=tmp_path / "out", retries=0)
    (pair,) = run.summary["statistics"]["pairs"]
    scale = pair["ordinal"]
    stated = [s for s, _ in RATINGS.values()]
    shown = [s for _, s in RATINGS.values()]
    table = np.zeros((5, 5), dtype=int)
    for a, b in zip(stated, shown, strict=True):
        table[a - 1, b - 1] += 1
    assert scale["weighted_kappa"]["kappa"] == pytest.approx(cohens_kappa(table, wt="quadratic").kappa, abs=1e-12)
    assert scale["spearman"]["rho"] == pytest.approx(spearmanr(stated, shown).statistic, abs=1e-12)
    expected = wilcoxon(stated, shown, zero_method="wilcox")
    assert scale["wilcoxon"]["pvalue"] == pytest.approx(expected.pvalue, abs=1e-12)
    assert scale["wilcoxon"]["n_nonzero"] == 6 and "pvalue_holm" in scale["wilcoxon"]
    text = run.report_path.read_text(encoding="utf-8")
    assert "### As a scale" in text and "| x | stated vs shown |" in text
    # Spearman's p is in the report's Holm family, so the table gives it adjusted too
    rho = scale["spearman"]
    assert rho["pvalue_holm"] >= rho["pvalue"]
    assert f"({p_value(rho['pvalue'])}, {p_value(rho['pvalue_holm'], 'Holm', ' ')})" in text
