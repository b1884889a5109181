"""report.md and compare.md print "items labelled X" alike: one denominator (the items with a label read) and one
rounding. A run with an unparsed item is where compare.md used to differ (it divided by every item)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import evalrun
from evalrun.reporting.compare import compare_runs
from evalrun.reporting.format import share

if TYPE_CHECKING:
    from conftest import SpecWriter

ITEMS = ["i1", "i2", "i3", "i4"]
# the baseline: alpha on i1, i2, beta on i3, nothing readable on i4; the later run reads i4 as alpha
BEFORE = {"i1": "alpha", "i2": "alpha", "i3": "beta", "i4": "no idea"}
AFTER = {**BEFORE, "i4": "alpha"}


def test_share_rounds_as_pct_and_reads_na_over_nothing() -> None:
    assert (share(2, 3), share(1, 8), share(0, 0)) == ("66.7%", "12.5%", "n/a")


def _run(tmp_path: Path, write_spec: SpecWriter, loopback: Any, answers: dict[str, str]) -> Path:
    def reply(body: dict[str, Any]) -> str:
        return answers[re.search(r"<(i\d)>", body["messages"][-1]["content"])[1]]  # type: ignore[index]

    server = loopback(default_reply=reply)
    spec = write_spec(tmp_path / "spec", items=ITEMS,  # variants one and two, asked alike
                      models=[write_spec.model(server.base_url)])
    return evalrun.run(spec, out=tmp_path / "out", fresh=True, retries=0).dir


def test_report_and_compare_share_one_denominator(tmp_path: Path, write_spec: SpecWriter, loopback: Any) -> None:
    before = _run(tmp_path, write_spec, loopback, BEFORE)
    after = _run(tmp_path, write_spec, loopback, AFTER)
    # report.md: of the 3 items read, 2 alpha (66.7%) and 1 beta (33.3%); i4 is unparsed, no item labelled anything
    report = (before / "report.md").read_text(encoding="utf-8")
    (variant_row,) = [line for line in report.splitlines() if line.startswith("| loop | one | 66.7% [")]
    assert "| 33.3% [" in variant_row
    text = compare_runs([before, after], tmp_path / "cmp").read_text(encoding="utf-8")
    # compare.md, the same 66.7% (2/3) for the baseline (it printed 50.0% (2/4)); the later run read all 4:
    # alpha 3/4. The unparsed row stays a share of every item
    assert "| items labelled *a* | 66.7% (2/3) | 75.0% (3/4) | +8.3 " in text
    assert "| items labelled *b* | 33.3% (1/3) | 25.0% (1/4) | -8.3 " in text
    assert "| items unparsed | 25.0% (1/4) | 0.0% (0/4) | -25.0 " in text
    assert '"Items labelled X" is a share of the items with a label read (as in report.md)' in text

