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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# With fewer than 10 answers of a true label, one answer moves that row of M by 10 points or more, as much
# as the readers' errors being corrected for.
MIN_PER_LABEL = 10
# Beyond this, a relative error in P_obs or M can grow tenfold in the estimate of P_true.
MAX_CONDITION = 10.0

TOO_FEW = f"fewer than {MIN_PER_LABEL} hand-labelled answers of each label for a reader"
UNCERTAIN = "the readers' errors are too uncertain to correct for"


@dataclass(frozen=True)
class Corrected:
    """Observed and corrected agreement of two variants; corrected is None with the reason it is refused."""

    observed: float | None
    corrected: float | None
    refused: str | None


def misclassification(counts: np.ndarray) -> np.ndarray:
    """A reader's matrix P(read j | true i) from its counts (rows true labels, columns read labels), each
    row divided by its total."""
    counts = np.asarray(counts, dtype=float)
    return counts / counts.sum(axis=1, keepdims=True)


def true_joint(observed: np.ndarray, m_a: np.ndarray, m_b: np.ndarray) -> np.ndarray:
    """P_true = (M_a^T)^-1 P_obs M_b^-1 from the observed joint distribution (or counts: it is normalised
    first), negative cells clipped to 0 and the table renormalised to sum to 1."""
    p_obs = np.asarray(observed, dtype=float)
    p_obs = p_obs / p_obs.sum()
    # solve rather than invert: (M_a^T) X = P_obs, then P_true M_b = X, i.e. M_b^T P_true^T = X^T
    x = np.linalg.solve(m_a.T, p_obs)
    p_true = np.linalg.solve(m_b.T, x.T).T
    p_true = np.clip(p_true, 0.0, None)
    return p_true / p_true.sum()


def corrected_agreement(observed: np.ndarray, reader_a: np.ndarray, reader_b: np.ndarray) -> Corrected:
    """Agreement of two variants before and after correcting for their readers' errors.

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
    return Corrected(agree, float(np.trace(true_joint(observed, m_a, m_b))), None)
