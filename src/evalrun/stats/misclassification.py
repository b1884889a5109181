"""Agreement between two variants corrected for the errors of the readers that labelled them: the matrix
method for misclassification (Barron, B. A. 1977, "The effects of misclassification on the estimation of
relative risk", Biometrics 33:414-418; see also Kuha, J. and Skinner, C. 1997, "Categorical data analysis
and misclassification", in Lyberg et al., Survey Measurement and Process Quality, Wiley, 633-670).

A reader's misclassification matrix M holds P(read label j | true label i), row i a true label, estimated
from the answers a person labelled by hand (the person's label taken as the truth). Two variants' item labels,
read by readers with matrices M_a and M_b whose errors are independent given the true labels, have the
observed joint distribution P_obs = M_a^T P_true M_b, so P_true = (M_a^T)^-1 P_obs M_b^-1, and the corrected
agreement is trace(P_true). Sampling noise can leave cells of the estimate below 0; they are clipped to 0 and
the table renormalised to sum to 1.

Unparsed readings are excluded, not a read category of their own: P_obs is over the items both variants'
readers labelled, and M over the hand-labelled answers the reader labelled, so M is square and invertible.
This assumes a reader fails to read an answer independently of its true label.

The correction is refused, rather than shown uncertain, when a reader has fewer than MIN_PER_LABEL
hand-labelled answers of some true label, or when either matrix is ill-conditioned (condition number at least
MAX_CONDITION): inverting a matrix near singular multiplies the noise in P_obs and in M itself.

The corrected agreement's interval is a percentile bootstrap over both sources of its uncertainty: the items
both variants labelled (P_obs, resampled as items, as stats/bootstrap.py resamples them) and, independently,
each reader's hand-labelled answers (its table against the person, resampled as answers: multinomial over the
table's cells with its total). A resample in which a reader's rates are singular (a true label drawn no
answer) or ill-conditioned (the MAX_CONDITION rule) has no corrected agreement and is dropped; with more than
MAX_DROPPED of the resamples dropped the estimate is too unstable for its percentiles to mean anything, and
there is no interval. Resampling the readers independently of the items treats the hand-labelled answers as
a sample apart from the compared items, though some may be the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# With fewer than 10 answers of a true label, one answer moves that row of M by 10 points or more, as much
# as the readers' errors being corrected for.
MIN_PER_LABEL = 10
# Beyond this, a relative error in P_obs or M can grow tenfold in the estimate of P_true.
MAX_CONDITION = 10.0

# A share of dropped resamples past which the ones left are no longer the estimate's sampling distribution but
# its distribution given that the readers' rates came out well-conditioned: the interval would be too narrow.
MAX_DROPPED = 0.05

TOO_FEW = f"fewer than {MIN_PER_LABEL} hand-labelled answers of each label for a reader"
UNCERTAIN = "the readers' errors are too uncertain to correct for"
UNSTABLE = (f"more than {MAX_DROPPED:.0%} of the resamples gave a reader's rates singular or ill-conditioned "
            f"(condition number at least {MAX_CONDITION:g})")


@dataclass(frozen=True)
class Corrected:
    """Observed and corrected agreement of two variants; corrected is None with the reason it is refused.
    `interval`: the corrected agreement's bootstrap (`corrected_interval`), None where corrected is."""

    observed: float | None
    corrected: float | None
    refused: str | None
    interval: dict[str, Any] | None = None


def misclassification(counts: np.ndarray) -> np.ndarray:
    """A reader's matrix P(read j | true i) from its counts (rows true labels, columns read labels), each
    row divided by its total; a stack of tables (leading axes) gives a stack of matrices."""
    counts = np.asarray(counts, dtype=float)
    return counts / counts.sum(axis=-1, keepdims=True)


def true_joint(observed: np.ndarray, m_a: np.ndarray, m_b: np.ndarray) -> np.ndarray:
    """P_true = (M_a^T)^-1 P_obs M_b^-1 from the observed joint distribution (or counts: it is normalised
    first), negative cells clipped to 0 and the table renormalised to sum to 1. Stacks (leading axes) of
    tables and matrices give a stack of P_true."""
    p_obs = np.asarray(observed, dtype=float)
    p_obs = p_obs / p_obs.sum(axis=(-2, -1), keepdims=True)
    # solve rather than invert: (M_a^T) X = P_obs, then P_true M_b = X, i.e. M_b^T P_true^T = X^T
    x = np.linalg.solve(np.swapaxes(m_a, -2, -1), p_obs)
    p_true = np.swapaxes(np.linalg.solve(np.swapaxes(m_b, -2, -1), np.swapaxes(x, -2, -1)), -2, -1)
    # no renormalising by 0: before clipping the cells sum to 1 (M's rows sum to 1, so do M^-1's)
    p_true = np.clip(p_true, 0.0, None)
    return p_true / p_true.sum(axis=(-2, -1), keepdims=True)


def _resampled_readers(counts: np.ndarray, resamples: int, seed: np.random.SeedSequence) -> np.ndarray:
    """`resamples` tables of a reader's hand-labelled answers drawn with replacement (multinomial over the
    cells with the table's total), as a stack of its matrices; NaN rows where a true label drew no answer."""
    counts = np.rint(counts).astype(np.int64)
    drawn = np.random.default_rng(seed).multinomial(counts.sum(), counts.ravel() / counts.sum(), size=resamples)
    drawn = drawn.reshape(resamples, *counts.shape).astype(float)
    with np.errstate(invalid="ignore"):
        return misclassification(drawn)


def _usable(m: np.ndarray) -> np.ndarray:
    """Which matrices of a stack can be inverted by the MAX_CONDITION rule (no NaN row, condition below it)."""
    ok = ~np.isnan(m).any(axis=(-2, -1))
    ok[ok] = np.linalg.cond(m[ok]) < MAX_CONDITION
    return ok


def corrected_interval(observed: np.ndarray, reader_a: np.ndarray, reader_b: np.ndarray,
                       resamples: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Percentile bootstrap interval of the corrected agreement (see the module's docstring), in
    stats/bootstrap.py's form: estimate, ci_low, ci_high, level, method, resamples, used, dropped, seed,
    degenerate; and `refused`, why there is no interval (None where there is one). `resamples` and `seed`
    default to stats/bootstrap.py's. The items are drawn as stats/bootstrap.py draws them (`resampled_items`),
    the cells of `observed` laid out as items row by row; the readers from streams of their own, so that
    with readers without error each resample's agreement is that of the same resampled items as there.

    Arguments as `corrected_agreement`'s, which must have shown a corrected agreement for them.
    """
    # here, not at the top: stats/bootstrap.py imports scipy and statsmodels, which a report without human
    # labels does not load
    from .bootstrap import LEVEL, RESAMPLES, SEED, percentile_result, resampled_items

    resamples = RESAMPLES if resamples is None else resamples
    seed = SEED if seed is None else seed
    if not all(np.allclose(t, np.rint(t)) for t in (observed, reader_a, reader_b)):
        raise ValueError("the bootstrap resamples items and answers: the tables must be counts, whole numbers")
    observed = np.rint(observed).astype(np.int64)
    k = observed.shape[0]
    cells = np.repeat(np.arange(k * k), observed.ravel())
    tables = []
    for block in resampled_items(len(cells), resamples, seed):
        # each resample's cells offset by its row so that one bincount counts every resample's table
        at = cells[block] + (k * k) * np.arange(len(block))[:, None]
        tables.append(np.bincount(at.ravel(), minlength=len(block) * k * k).reshape(len(block), k, k))
    stack = np.concatenate(tables)
    stream_a, stream_b = np.random.SeedSequence(seed).spawn(2)
    m_a, m_b = _resampled_readers(reader_a, resamples, stream_a), _resampled_readers(reader_b, resamples, stream_b)
    ok = _usable(m_a) & _usable(m_b)
    draws = np.full(resamples, np.nan)
    # rounded: solving and renormalising leave 1e-16 between resamples that give the same agreement, which
    # would hide a degenerate interval (every resample the same: perfect readers that always agree)
    draws[ok] = np.round(np.trace(true_joint(stack[ok], m_a[ok], m_b[ok]), axis1=-2, axis2=-1), 12)
    estimate = np.trace(true_joint(observed, misclassification(reader_a), misclassification(reader_b)))
    out = percentile_result(float(estimate), draws, resamples, seed, LEVEL) | {"refused": None}
    if out["dropped"] > MAX_DROPPED * resamples:
        out.update(ci_low=None, ci_high=None, degenerate=False, refused=UNSTABLE)
    return out


def corrected_agreement(observed: np.ndarray, reader_a: np.ndarray, reader_b: np.ndarray,
                        resamples: int | None = None, seed: int | None = None) -> Corrected:
    """Agreement of two variants before and after correcting for their readers' errors, the corrected one with
    its bootstrap interval (`corrected_interval`, with `resamples` and `seed`).

    `observed`: counts of the items both variants labelled, rows variant a's label, columns b's (the labelled
    part of stats/confusion.py's table); `reader_a`, `reader_b`: each reader's counts against the person, rows
    the person's label, columns the reader's, unparsed readings left out. All square over the same labels.
    """
    observed = np.asarray(observed, dtype=float)
    total = observed.sum()
    agree = float(np.trace(observed) / total) if total else None
    if agree is None:
        return Corrected(None, None, "no items both variants labelled")
    if min(np.asarray(reader_a).sum(axis=1).min(), np.asarray(reader_b).sum(axis=1).min()) < MIN_PER_LABEL:
        return Corrected(agree, None, TOO_FEW)
    m_a, m_b = misclassification(reader_a), misclassification(reader_b)
    if max(np.linalg.cond(m_a), np.linalg.cond(m_b)) >= MAX_CONDITION:
        return Corrected(agree, None, UNCERTAIN)
    interval = corrected_interval(observed, reader_a, reader_b, resamples, seed)
    return Corrected(agree, interval["estimate"], None, interval)
