"""Agreement between variants corrected for the readers' errors (stats/misclassification.py, the matrix method
of Barron 1977), checked against hand-computed tables, and its lines in the report's "Readers against a person"."""

from __future__ import annotations

import shutil
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from evalrun.record import RunRecord
from evalrun.reporting import write_report
from evalrun.stats.misclassification import (
    MAX_CONDITION,
    MIN_PER_LABEL,
    TOO_FEW,
    UNCERTAIN,
    corrected_agreement,
    true_joint,
)
from evalrun.store import HumanLabel, Store, answer_key

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"

M_A = np.array([[0.9, 0.1], [0.2, 0.8]])  # P(read j | true i)
M_B = np.array([[0.85, 0.15], [0.1, 0.9]])
P_TRUE = np.array([[0.4, 0.1], [0.15, 0.35]])


def _observed() -> np.ndarray:
    """P_obs from its definition, cell by cell: P(a reads j, b reads l) = sum over true (i, k) of
    P_true[i, k] M_a[i, j] M_b[k, l], the readers' errors independent given the true labels."""
    p = np.zeros((2, 2))
    for i, k, j, m in product(range(2), repeat=4):
        p[j, m] += P_TRUE[i, k] * M_A[i, j] * M_B[k, m]
    return p


def test_recovers_the_true_joint_distribution() -> None:
    observed = _observed()
    assert np.allclose(observed.sum(), 1.0) and not np.allclose(observed, P_TRUE)
    assert np.abs(true_joint(observed, M_A, M_B) - P_TRUE).max() < 1e-12
    # from counts: readers whose counts give M_A and M_B exactly, 2000 items observed (whole counts)
    c = corrected_agreement(2000 * observed, np.array([[90, 10], [20, 80]]), np.array([[85, 15], [10, 90]]))
    assert c.refused is None
    assert c.observed == pytest.approx(np.trace(observed), abs=1e-12)
    assert c.corrected == pytest.approx(0.75, abs=1e-12)  # trace(P_TRUE) = 0.4 + 0.35


def test_negative_cells_are_clipped_and_the_table_renormalised() -> None:
    m = np.array([[0.9, 0.1], [0.1, 0.9]])
    # by hand: M^-1 = [[1.125, -0.125], [-0.125, 1.125]]; (M^T)^-1 diag(0.6, 0.4) M^-1 =
    # [[0.765625, -0.140625], [-0.140625, 0.515625]]; clipped, it sums to 1.28125
    got = true_joint(np.array([[0.6, 0.0], [0.0, 0.4]]), m, m)
    assert np.abs(got - np.array([[0.765625, 0.0], [0.0, 0.515625]]) / 1.28125).max() < 1e-12


def test_refuses_with_too_few_labels_of_a_label() -> None:
    enough = np.array([[MIN_PER_LABEL, 0], [0, MIN_PER_LABEL]])
    short = np.array([[MIN_PER_LABEL, 0], [1, MIN_PER_LABEL - 2]])  # true label 2: one short
    observed = np.array([[5, 1], [2, 4]])
    assert corrected_agreement(observed, enough, enough).corrected == pytest.approx(9 / 12)  # readers without error
    c = corrected_agreement(observed, enough, short)
    assert (c.observed, c.corrected, c.refused) == (pytest.approx(9 / 12), None, TOO_FEW)


def test_refuses_an_ill_conditioned_reader() -> None:
    counts = np.array([[55, 45], [50, 50]])  # reads barely better than chance
    m = counts / counts.sum(axis=1, keepdims=True)
    assert np.linalg.cond(m) >= MAX_CONDITION  # the precondition, by numpy
    good = np.array([[90, 10], [10, 90]])
    c = corrected_agreement(np.array([[5, 1], [2, 4]]), good, counts)
    assert c.corrected is None and c.refused == UNCERTAIN
    assert corrected_agreement(np.zeros((2, 2)), good, good).observed is None


def test_report_shows_the_corrected_agreement(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("figures"))
    rows = pl.read_parquet(folder / "results.parquet").filter(pl.col("error_class").is_null())
    given: list[tuple[dict[str, Any], str]] = []
    # direct's reader: of the 12 the person calls female it reads 10 female, of the 12 male 10 male
    direct = rows.filter(pl.col("variant") == "direct")
    female = direct.filter(pl.col("label") == "female").head(12)
    male = direct.filter(pl.col("label") == "male").head(12)
    given += zip(female.iter_rows(named=True), ["female"] * 10 + ["male"] * 2, strict=True)
    given += zip(male.iter_rows(named=True), ["male"] * 10 + ["female"] * 2, strict=True)
    # story's reader: right on 12 of each label
    story = rows.filter(pl.col("variant") == "story")
    for label in ("female", "male"):
        given += [(r, label) for r in story.filter(pl.col("label") == label).head(12).iter_rows(named=True)]
    store = Store()
    for r, human in given:
        store.put_label(HumanLabel(answer_key(r["key"], r["response"]), human, "ann", "2026-01-01T00:00:00Z"))
    store.close()
    write_report(folder, RunRecord.load(folder / "summary.json"), figures=False)
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "Agreement between variants corrected for the readers' errors (matrix method, Barron 1977" in report
    # direct vs story observed (summary.json): [[4, 8], [3, 4]] over 19 items; M_direct = [[5/6, 1/6], [1/6, 5/6]],
    # M_story = I, so P_true = (M_direct^T)^-1 P_obs = [[4.25, 9], [2.75, 3]] / 19 by hand: trace 7.25 / 19
    assert "- direct vs story (evalrun/smollm2): observed 42.1%, corrected 38.2%" in report
    assert "- story vs story.followup (evalrun/smollm2): not shown: a variant's answers have no hand labels" in report
