"""Agreement between variants corrected for the readers' errors (stats/misclassification.py, the matrix method
of Barron 1977), checked against hand-computed tables; its bootstrap interval checked by simulation, against a
plain bootstrap written here and against exact multinomial probabilities (scipy); and its lines in the report's
"Readers against a person"."""

from __future__ import annotations

import re
import shutil
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy.stats import multinomial

from evalrun.record import RunRecord
from evalrun.reporting import write_report
from evalrun.stats.misclassification import (
    MAX_CONDITION,
    MIN_PER_LABEL,
    TOO_FEW,
    UNCERTAIN,
    UNSTABLE,
    corrected_agreement,
    corrected_interval,
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


# A true joint over three labels and two readers' error matrices for the coverage check (trace 0.76), chosen so
# that the readers' errors matter: with the readers' rates taken as known (only the items resampled) the 95%
# interval covered the true agreement in 86% of 1000 such datasets, too few for the check below.
P_TRUE3 = np.array([[0.25, 0.05, 0.03], [0.05, 0.27, 0.04], [0.03, 0.04, 0.24]])
M_A3 = np.array([[0.9, 0.07, 0.03], [0.08, 0.85, 0.07], [0.05, 0.1, 0.85]])
M_B3 = np.array([[0.85, 0.1, 0.05], [0.05, 0.9, 0.05], [0.04, 0.06, 0.9]])


def _read(rng: np.random.Generator, m: np.ndarray, true: np.ndarray) -> np.ndarray:
    """A reader's label of each answer of true label `true`, drawn from the row of m for it."""
    u = rng.random(len(true))
    return np.minimum((u[:, None] > np.cumsum(m[true], axis=1)).sum(axis=1), len(m) - 1)


def _table(a: np.ndarray, b: np.ndarray, k: int = 3) -> np.ndarray:
    return np.bincount(a * k + b, minlength=k * k).reshape(k, k)


def test_the_interval_covers_the_true_agreement_as_often_as_it_says() -> None:
    """200 datasets simulated from a known truth: 400 items whose true label pairs are drawn from P_TRUE3 and read
    by two readers with errors M_A3 and M_B3, and 100 hand-labelled answers per reader (true label uniform, read
    with the reader's errors). The 95% interval should hold trace(P_TRUE3) in about 95% of them. Tolerance 90% to
    99%: with 200 datasets the share covered has a standard error of 1.5 points at 95%, so the band is about three
    of them each way (and the percentile bootstrap of a clipped, inverted estimate is not exact at these sizes);
    a share below 90% means the interval leaves out a source of uncertainty (the items alone covered 86%), above
    99% that it is far too wide. 2000 datasets gave 95.4%."""
    rng = np.random.default_rng(20260101)
    truth = np.trace(P_TRUE3)
    covered = 0
    for _ in range(200):
        cell = rng.choice(9, size=400, p=P_TRUE3.ravel())
        observed = _table(_read(rng, M_A3, cell // 3), _read(rng, M_B3, cell % 3))
        hand_a, hand_b = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
        c = corrected_agreement(observed, _table(hand_a, _read(rng, M_A3, hand_a)),
                                _table(hand_b, _read(rng, M_B3, hand_b)))
        assert c.interval is not None and c.interval["refused"] is None, c
        assert c.interval["estimate"] == c.corrected and c.interval["resamples"] == 1000
        covered += c.interval["ci_low"] <= truth <= c.interval["ci_high"]
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_perfect_readers_give_the_plain_bootstrap_of_the_observed_agreement() -> None:
    """Readers that never err leave only the items' uncertainty: the interval is the percentile bootstrap of the
    observed agreement over the items, computed here with numpy from the draws stats/bootstrap.py documents
    (default_rng(seed).integers over the items; the table's cells laid out as items row by row)."""
    observed = np.array([[30, 8, 2], [5, 27, 3], [1, 4, 20]])
    perfect = np.diag([12, 15, 11])
    got = corrected_interval(observed, perfect, perfect)
    agree = np.repeat(np.eye(3).ravel(), observed.ravel())  # 1 for an item on the diagonal
    draws = agree[np.random.default_rng(0).integers(0, len(agree), size=(1000, len(agree)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    assert (got["dropped"], got["refused"], got["degenerate"]) == (0, None, False)
    assert got["estimate"] == pytest.approx(77 / 100, abs=1e-12)
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    # every item agreeing: every resample gives 1, an interval of width zero marked degenerate
    same = corrected_interval(np.diag([5, 6, 7]), perfect, perfect)
    assert (same["ci_low"], same["ci_high"], same["degenerate"]) == (1.0, 1.0, True)
    with pytest.raises(ValueError, match="whole numbers"):
        corrected_interval(observed / 2, perfect, perfect)


def _ill_conditioned(counts: np.ndarray) -> float:
    """The exact probability that a resample of a 2 x 2 reader's answers (multinomial over its cells with its
    total, by scipy) gives a matrix with an empty row or a condition number at least MAX_CONDITION."""
    n = int(counts.sum())
    p = 0.0
    for a, b, c in product(range(n + 1), repeat=3):
        if a + b + c <= n:
            t = np.array([[a, b], [c, n - a - b - c]])
            if t.sum(axis=1).min() == 0 or np.linalg.cond(t / t.sum(axis=1, keepdims=True)) >= MAX_CONDITION:
                p += multinomial.pmf(t.ravel(), n, counts.ravel() / n)
    return p


@pytest.mark.parametrize(("reader", "refused"), [(np.array([[8, 2], [3, 7]]), False),
                                                 (np.array([[6, 4], [3, 7]]), True)])
def test_resamples_with_ill_conditioned_rates_are_dropped_and_too_many_give_no_interval(
        reader: np.ndarray, refused: bool) -> None:
    """Both readers shown (condition numbers 2.0 and 3.4), but resamples of 20 answers often are not: the share
    dropped is the probability of that, within four standard errors of 1000 resamples; past 5% no interval.
    The other reader never errs (an empty row of its 24 answers has probability 1e-7)."""
    observed = np.array([[4, 8], [3, 4]])
    got = corrected_interval(observed, reader, np.diag([12, 12]))
    p = _ill_conditioned(reader)
    assert abs(got["dropped"] - 1000 * p) < 4 * np.sqrt(1000 * p * (1 - p)), (got["dropped"], p)
    assert got["used"] + got["dropped"] == 1000
    assert p > 0.05 if refused else p < 0.05  # the cases are what they are named, by the exact probability
    assert got["refused"] == (UNSTABLE if refused else None)
    assert (got["ci_low"] is None) == refused
    assert got["estimate"] == corrected_agreement(observed, reader, np.diag([12, 12])).corrected


def _label_by_hand(folder: Path, direct: list[tuple[str, int, int]]) -> str:
    """Label the example's answers by hand and render its report: direct's reader, for each (label it read,
    how many the person calls female, how many male); story's reader right on 12 of each label."""
    rows = pl.read_parquet(folder / "results.parquet").filter(pl.col("error_class").is_null())
    given: list[tuple[dict[str, Any], str]] = []
    answers = rows.filter(pl.col("variant") == "direct")
    for read, female, male in direct:
        given += zip(answers.filter(pl.col("label") == read).head(female + male).iter_rows(named=True),
                     ["female"] * female + ["male"] * male, strict=True)
    story = rows.filter(pl.col("variant") == "story")
    for label in ("female", "male"):
        given += [(r, label) for r in story.filter(pl.col("label") == label).head(12).iter_rows(named=True)]
    store = Store()
    for r, human in given:
        store.put_label(HumanLabel(answer_key(r["key"], r["response"]), human, "ann", "2026-01-01T00:00:00Z"))
    store.close()
    write_report(folder, RunRecord.load(folder / "summary.json"), figures=False)
    return (folder / "report.md").read_text(encoding="utf-8")


def test_report_shows_the_corrected_agreement(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("figures"))
    # direct's reader: of the 12 the person calls female it reads 10 female, of the 12 male 10 male
    report = _label_by_hand(folder, [("female", 10, 2), ("male", 2, 10)])
    assert "Agreement between variants corrected for the readers' errors (matrix method, Barron 1977" in report
    assert "with more than 5% of them dropped there is no interval" in report
    # direct vs story observed (summary.json): [[4, 8], [3, 4]] over 19 items; M_direct = [[5/6, 1/6], [1/6, 5/6]],
    # M_story = I, so P_true = (M_direct^T)^-1 P_obs = [[4.25, 9], [2.75, 3]] / 19 by hand: trace 7.25 / 19
    line = re.search(r"^- direct vs story \(evalrun/smollm2\): observed 42\.1%, corrected 38\.2% \[(\d+\.\d)%, "
                     r"(\d+\.\d)%\] \(bootstrap over the items and the hand labels, 1000 resamples; (\d+) dropped\)$",
                     report, re.MULTILINE)
    assert line, report
    low, high, dropped = float(line[1]), float(line[2]), int(line[3])
    assert low < 38.2 < high and dropped <= 50
    assert "- story vs story.followup (evalrun/smollm2): not shown: a variant's answers have no hand labels" in report


def test_report_says_why_the_corrected_agreement_has_no_interval(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("figures"))
    # direct's reader as the refused case above: person female read 6 female 4 male, person male 3 and 7
    report = _label_by_hand(folder, [("female", 6, 3), ("male", 4, 7)])
    line = next(x for x in report.splitlines() if x.startswith("- direct vs story (evalrun/smollm2): "))
    assert re.fullmatch(r".*, corrected \d+\.\d% \[no interval: more than 5% of the resamples gave a reader's rates "
                        r"singular or ill-conditioned \(condition number at least 10\)\] \(bootstrap over the items "
                        r"and the hand labels, 1000 resamples; \d+ dropped\)", line), line
