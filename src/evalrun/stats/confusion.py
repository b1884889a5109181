"""The confusion matrix of two aligned label vectors, the table kappa, the marginal tests and the
report's confusion section all read.

A label vector holds one entry per item, None where no label could be read (unparsed). Unparsed is
a category of its own, the last row and column, so that the table accounts for every item; the
statistics that are defined over labelled items only take the table without it (`labelled`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Label = str | None


def pair_cells(a: Sequence[Label], b: Sequence[Label], categories: Sequence[str]) -> np.ndarray:
    """Per item, the cell of `confusion`'s table its pair of labels falls in (row * size + column,
    size = len(categories) + 1), so that tables of resampled items are one bincount away."""
    if len(a) != len(b):
        raise ValueError(f"label vectors of different lengths: {len(a)} and {len(b)}")
    position: dict[Label, int] = {c: i for i, c in enumerate(categories)}
    position[None] = len(categories)
    size = len(categories) + 1
    try:
        return np.array([position[x] * size + position[y] for x, y in zip(a, b, strict=True)], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"label {e.args[0]!r} is not one of {list(categories)}") from None


def table_of(cells: np.ndarray, n_categories: int) -> np.ndarray:
    """The confusion table of some items' cells (from `pair_cells`, repeats counted)."""
    size = n_categories + 1
    return np.bincount(cells, minlength=size * size).reshape(size, size)


def confusion(a: Sequence[Label], b: Sequence[Label], categories: Sequence[str]) -> np.ndarray:
    """Counts of (a, b) label pairs: rows follow `a`, columns `b`, in the order of `categories`.

    Edge rules: None (unparsed) has one more row and column, the last; a label outside
    `categories` is an error (ValueError), not a silent drop; empty vectors give a table of zeros.
    """
    return table_of(pair_cells(a, b, categories), len(categories))


def labelled(table: np.ndarray) -> np.ndarray:
    """A `confusion` table without its unparsed row and column: the items both vectors labelled."""
    return table[:-1, :-1]
