"""Figures: PNGs drawn from a summary alone, saved under the report's folder and linked relatively.

They need nothing but summary.json, so `evalrun report` and `evalrun compare` redraw them without
reading a response. matplotlib is imported inside the drawing functions, never at module import:
`evalrun --help` and runs without a report stay free of its import cost. Each figure gets its own
Agg canvas (no pyplot): nothing is registered in pyplot's global figure list, so nothing has to be
closed, the backend a user chose for their own plots is untouched, and memory is freed with the object.

Every figure is titled, has labelled axes, uses the Okabe-Ito palette (safe for the common
colour-vision deficiencies; unparsed is grey and hatched, so it never relies on hue), is 6.4 in wide
at 120 dpi (768 px: readable at 100% zoom on GitHub), and is byte-identical when redrawn from the
same summary (no timestamp or software name in the PNG).

This module is the house style and the kinds of chart (intervals, label shares, a confusion heatmap);
which figures each section of report.md has is sections/drawing.py.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .format import pct

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

FIGURES_DIR = "figures"
SECTIONS = ("agreement", "labels", "accuracy", "conditions", "orders")
WIDTH = 6.4  # inches
HEIGHT = 4.0
DPI = 120
ROW_HEIGHT = 0.42  # inches per row of a bar or interval chart, so many rows stay legible
MAX_ROWS = 24  # beyond this a chart is split into one figure per model
# Okabe & Ito (2008), "Color Universal Design"; black is left out, it is the text colour
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
HATCHES = ("", "//", "..", "xx")  # told apart by pattern where the palette repeats (more than 7 labels)
UNPARSED_COLOUR = "#999999"
INK = "#222222"
MUTED = "#666666"
UNPARSED = "unparsed"
SEP = " · "


@dataclass(frozen=True)
class Figure:
    """One saved PNG: its path relative to the report folder, its title and alt text, and the report
    section it belongs to (one of SECTIONS)."""

    path: Path
    title: str
    alt: str
    section: str

    def markdown(self) -> str:
        """The image link for report.md: relative and with forward slashes, so it renders on GitHub."""
        alt = self.alt.replace("[", "(").replace("]", ")")
        return f"![{alt}]({self.path.as_posix()})"


def figure_lines(figures: Iterable[Figure], section: str) -> list[str]:
    """Markdown lines embedding the figures of one section, each followed by a blank line."""
    out: list[str] = []
    for fig in figures:
        if fig.section == section:
            out += [fig.markdown(), ""]
    return out


@dataclass(frozen=True)
class Row:
    """One row of an interval chart: a point estimate with its interval (either may be None) and the
    text printed at the right; `reference` marks a value the estimate is read against (e.g. chance)."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    note: str
    colour: str = PALETTE[0]
    reference: float | None = None


def slug(*parts: object) -> str:
    text = "-".join(str(p) for p in parts if p is not None and p != "")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "figure"


def short(text: str, limit: int = 42) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def who(entry: dict[str, Any], *keys: str) -> str:
    """`model · condition · ...`: an entry's levels of the given axes, those it has."""
    return SEP.join(short(str(entry[k])) for k in keys if entry.get(k) is not None)


def _ink_on(colour: str) -> str:
    """Black or white text, whichever reads on `colour` (relative luminance, WCAG)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if luminance > 0.4 else "white"


class Painter:
    """Makes figures of the house style and saves them under `folder`/figures with unique names."""

    def __init__(self, folder: Path) -> None:
        import matplotlib

        self.folder = folder
        self.figures: list[Figure] = []
        # labels and model names are data: a `$` in them must print, not start mathtext
        self._style = matplotlib.rc_context({"text.parse_math": False, "font.size": 9, "axes.titlesize": 10,
                                             "figure.titlesize": 11, "axes.edgecolor": MUTED})

    def __enter__(self) -> Painter:
        self._style.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._style.__exit__(None, None, None)

    def new(self, rows: int = 0, height: float = HEIGHT) -> tuple[MplFigure, Axes]:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MplFigure

        fig = MplFigure(figsize=(WIDTH, max(height, 1.6 + ROW_HEIGHT * rows)), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    def save(self, fig: MplFigure, stem: str, title: str, alt: str, section: str) -> Figure:
        fig.suptitle("\n".join(textwrap.wrap(title, 80)), color=INK)
        name = stem
        taken = {f.path.name for f in self.figures}
        n = 1
        while f"{name}.png" in taken:
            n += 1
            name = f"{stem}-{n}"
        path = Path(FIGURES_DIR) / f"{name}.png"
        (self.folder / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
        # no Software/date chunks: the same summary gives the same bytes
        fig.savefig(self.folder / path, dpi=DPI, metadata={"Software": None})
        figure = Figure(path, title, alt, section)
        self.figures.append(figure)
        return figure


def interval_chart(painter: Painter, rows: Sequence[Row], *, title: str, alt: str, section: str, stem: str,
                   xlabel: str, ylabel: str, xlim: tuple[float, float], zero: float | None = None,
                   percent: bool = False) -> Figure:
    """Points with horizontal intervals, one row per entry, top to bottom, values printed at the right.
    A row without an estimate says 'undefined'; one without an interval shows its point alone."""
    fig, ax = painter.new(len(rows))
    ys = list(range(len(rows)))[::-1]
    if zero is not None:
        ax.axvline(zero, color=MUTED, linestyle="--", linewidth=0.8)
    references = False
    for y, row in zip(ys, rows, strict=True):
        if row.reference is not None:
            references = True
            ax.plot([row.reference], [y], marker="|", markersize=14, color=MUTED, linestyle="none")
        if row.estimate is None:
            ax.text(sum(xlim) / 2, y, "undefined", ha="center", va="center", style="italic", color=MUTED)
            continue
        if row.low is not None and row.high is not None:
            ax.hlines(y, row.low, row.high, color=row.colour, linewidth=2)
        ax.plot([row.estimate], [y], marker="o", color=row.colour, markersize=6, linestyle="none")
    for y, row in zip(ys, rows, strict=True):
        ax.annotate(row.note, xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8, color=INK)
    ax.set_yticks(ys, [row.label for row in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlim(*xlim)
    if percent:
        ax.xaxis.set_major_formatter(lambda x, _: pct(x, 0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if references:
        ax.plot([], [], marker="|", markersize=10, color=MUTED, linestyle="none", label="no position bias")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    return painter.save(fig, stem, title, alt, section)


def _colours(categories: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, hatch) per category; unparsed is grey and hatched whatever the palette does."""
    out = []
    for i, c in enumerate(categories):
        if c == UNPARSED:
            out.append((UNPARSED_COLOUR, "//"))
        else:
            out.append((PALETTE[i % len(PALETTE)], HATCHES[i // len(PALETTE) % len(HATCHES)]))
    return out


def shares_chart(painter: Painter, entries: Sequence[dict[str, Any]], keys: Sequence[str], labels: Sequence[str],
                  *, title: str, section: str, stem: str) -> Figure:
    """Stacked horizontal bars: each entry's answers split by label, unparsed included, as shares."""
    from matplotlib.patches import Patch

    # the labels the entries were read as: a variant reading labels of its own has no share of the others
    categories = [*(label for label in labels if any(label in e["labels"] for e in entries)), UNPARSED]
    styles = _colours(categories)
    fig, ax = painter.new(len(entries))
    ys = list(range(len(entries)))[::-1]
    for y, entry in zip(ys, entries, strict=True):
        counts = [entry["labels"].get(c, 0) for c in categories]
        total = sum(counts)
        if not total:
            ax.text(0.5, y, "no answers", ha="center", va="center", style="italic", color=MUTED)
            continue
        left = 0.0
        for count, (colour, hatch) in zip(counts, styles, strict=True):
            share = count / total
            if share:
                ax.barh(y, share, left=left, height=0.6, color=colour, hatch=hatch, edgecolor="white",
                        linewidth=0.5)
                if share >= 0.08:  # narrower segments have no room for a legible number
                    ax.text(left + share / 2, y, pct(share, 0), ha="center", va="center", fontsize=8,
                            color=_ink_on(colour))
            left += share
        ax.annotate(f"n={total}", xy=(1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.set_yticks(ys, [who(e, *keys) for e in entries])
    ax.set_ylim(-0.7, len(entries) - 0.3)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda x, _: pct(x, 0))
    ax.set_xlabel("share of answers (failed requests left out)")
    ax.set_ylabel(SEP.join(keys))
    fig.legend(handles=[Patch(facecolor=colour, hatch=hatch, edgecolor="white", label=c)
                        for c, (colour, hatch) in zip(categories, styles, strict=True)],
               loc="outside lower center", ncol=min(len(categories), 5), frameon=False)
    shares = "; ".join(
        # each entry's own labels: a variant that reads labels of its own has no count of the others
        f"{who(e, *keys)}: " + ", ".join(f"{c} {e['labels'][c]}" for c in categories if c in e["labels"])
        for e in entries[:6])
    alt = (f"Stacked bars of label shares ({', '.join(categories)}) for {len(entries)} rows. "
           f"Counts: {shares}" + ("; ..." if len(entries) > 6 else ""))
    return painter.save(fig, stem, title, alt, section)


def confusion_heatmap(painter: Painter, pair: dict[str, Any], place: str, *, section: str,
                      stem: str) -> Figure:
    """Item counts by the labels of level a (rows) and b (columns), unparsed included, counts in the cells."""
    import numpy as np

    c = pair["confusion"]
    counts = np.array(c["counts"], dtype=int)
    categories = c["categories"]
    n = len(categories)
    fig, ax = painter.new(height=max(HEIGHT, 1.8 + 0.45 * n))
    image = ax.imshow(counts, cmap="cividis", vmin=0, vmax=max(int(counts.max()), 1), aspect="auto")
    size = 10 if n <= 5 else 8 if n <= 9 else 6
    threshold = counts.max() * 0.6
    for i in range(n):
        for j in range(n):
            # cividis runs from dark blue to light yellow: light text on the dark low end
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=size,
                    color="black" if counts[i, j] > threshold else "white", weight="bold" if i == j else "normal")
    ax.set_xticks(range(n), [short(x, 16) for x in categories], rotation=30 if n > 4 else 0,
                  ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), [short(x, 16) for x in categories])
    ax.set_xlabel(f"{c['cols']}: item-level label")
    ax.set_ylabel(f"{c['rows']}: item-level label")
    fig.colorbar(image, ax=ax, label="items", shrink=0.85)
    agree = int(np.trace(counts[: n - 1, : n - 1]))
    title = f"Confusion, {place}: {pair['a']} (rows) vs {pair['b']} (columns)"
    alt = (f"Heatmap of {int(counts.sum())} items by {pair['a']} label (rows) and {pair['b']} label (columns), "
           f"categories {', '.join(categories)}; {agree} of the {pair['both_labelled']} items both labelled "
           f"agree (the diagonal). Row by row: "
           + "; ".join(f"{name}: {', '.join(map(str, row))}" for name, row in zip(categories, counts.tolist(),
                                                                              strict=True)))
    return painter.save(fig, stem, title, alt, section)


def draw(summary: dict[str, Any], folder: Path) -> list[Figure]:
    """Draw every figure the summary supports into `folder`/figures; return them in report order
    (per section: agreement, labels, accuracy, conditions, orders)."""
    # imported here: the sections' drawing is built on this module's house style, so it imports this module
    from .sections.drawing import draw_sections

    with Painter(folder) as painter:
        draw_sections(painter, summary)
    return painter.figures
