"""Figures from a fixed, hand-written summary: every PNG valid, titled, of a readable size, in its
section, identical when redrawn; and matplotlib stays out of `evalrun --help`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evalrun.reporting.figures import DPI, SECTIONS, WIDTH, Figure, draw, figure_lines

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["female", "male"]


def _share(count: int, n: int) -> dict[str, Any]:
    # the figures read only the numbers; the interval need not be Wilson's to be drawn
    if not n:
        return {"count": count, "n": n, "estimate": None, "ci_low": None, "ci_high": None}
    p = count / n
    return {"count": count, "n": n, "estimate": p, "ci_low": max(0.0, p - 0.2), "ci_high": min(1.0, p + 0.2)}


def _variant(model: str, condition: str, variant: str, female: int, male: int, unparsed: int,
             **extra: Any) -> dict[str, Any]:
    n = female + male + unparsed
    return {"model": model, "condition": condition, "variant": variant, "responses": n, "errors": 0,
            "labels": {"female": female, "male": male, "unparsed": unparsed}, "unparsed_rate": _share(unparsed, n),
            "items": n, "items_unparsed": unparsed, "accuracy": _share(female, n), **extra}


def _comparison(a: str, b: str, counts: list[list[int]], kappa: float | None, low: float | None,
                high: float | None, **where: str) -> dict[str, Any]:
    both = sum(sum(row[:2]) for row in counts[:2])
    return {**where, "a": a, "b": b, "items": sum(map(sum, counts)), "both_labelled": both,
            "agreement": _share(counts[0][0] + counts[1][1], both),
            "cohen_kappa": {"kappa": kappa, "ci_low": low, "ci_high": high, "se": None},
            "krippendorff_alpha": kappa,
            "confusion": {"rows": a, "cols": b, "categories": [*LABELS, "unparsed"], "counts": counts}}


def summary() -> dict[str, Any]:
    """Two models (one with a `$` in its name: data, not mathtext) x two conditions x two variants, with
    option orders and paraphrases; kappa with an interval, without one, and undefined."""
    variants, pairs, conditions, orders, paraphrases = [], [], [], [], []
    for m, model in enumerate(["org/model-a", "cost$5 model"]):
        for c, condition in enumerate(["plain", "warm"]):
            variants += [_variant(model, condition, "direct", 10 + m, 6 - c, 2),
                         _variant(model, condition, "story", 7, 7 + c, 4 - m)]
            kappa = [(0.41, 0.12, 0.7), (0.0, None, None), (None, None, None), (-0.2, -0.6, 0.2)][2 * m + c]
            pairs.append(_comparison("direct", "story", [[6, 3, 1], [1, 4, 1], [0, 1, 1 + c]], *kappa,
                                     model=model, condition=condition))
            for o, order in enumerate(["female, male", "male, female"]):
                orders.append(_variant(model, condition, "direct", 5 + o, 3, 1, option_order=order,
                                       first_position=_share(5 + o - 3 * o, 8)))
            paraphrases += [_variant(model, condition, "direct", 5, 3, 1, paraphrase=p) for p in (0, 1)]
        conditions += [_comparison("plain", "warm", [[7, 1, 0], [2, 5, 0], [0, 1, 2]], 0.55, 0.2, 0.9,
                                   model=model, variant=v) for v in ("direct", "story")]
    # the 15 items labelled under both: female 8 plain vs 9 warm, a gap of -1/15; male mirrors it (not drawn)
    gap = {"estimate": -1 / 15, "ci_low": -0.2, "ci_high": 1 / 15, "degenerate": False}
    for c in conditions:
        c["effects"] = [{"label": "female", "items": 15, "a": _share(8, 15), "b": _share(9, 15), "difference": gap},
                        {"label": "male", "items": 15, "a": _share(7, 15), "b": _share(6, 15),
                         "difference": {**gap, "estimate": 1 / 15, "ci_low": -1 / 15, "ci_high": 0.2}}]
    return {
        "summary_version": 1,
        "run": {"name": "fixed", "labels": LABELS, "variants": ["direct", "story"], "has_gold": True,
                "compare": [["direct", "story"]],
                # figures are drawn for the axes the run records it used, as a run's summary.json has them
                "design": {"axes": ["condition", "paraphrase", "option_order"]}},
        "totals": {},
        "statistics": {"variants": variants, "pairs": pairs, "models": [], "conditions": conditions,
                       "paraphrases": paraphrases, "option_orders": orders,
                       "position_bias": [{"model": v["model"], "condition": v["condition"], "variant": "direct",
                                          "first_position": _share(9, 16)} for v in variants[::2]]},
    }


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Figure]]:
    folder = tmp_path_factory.mktemp("report")
    return folder, draw(summary(), folder)


def test_every_figure_is_a_titled_png_of_readable_size(drawn: tuple[Path, list[Figure]]) -> None:
    folder, figures = drawn
    assert len({f.path for f in figures}) == len(figures)
    for fig in figures:
        assert not fig.path.is_absolute() and fig.path.parts[0] == "figures" and fig.path.suffix == ".png"
        assert fig.title and fig.alt and fig.section in SECTIONS
        with Image.open(folder / fig.path) as image:
            image.verify()
        with Image.open(folder / fig.path) as image:
            width, height = image.size
            assert image.format == "PNG"
        # the width asked for, so text is as large at 100% zoom in every figure; height grows with rows
        assert width == round(WIDTH * DPI)
        assert 300 <= height <= 2000
    # nothing in the folder that draw() did not return
    assert sorted(p.relative_to(folder) for p in (folder / "figures").iterdir()) == sorted(f.path for f in figures)


def test_figures_cover_every_section(drawn: tuple[Path, list[Figure]]) -> None:
    _, figures = drawn
    stats = summary()["statistics"]
    sections = [f.section for f in figures]
    # in report order, section by section
    assert sorted(set(sections), key=SECTIONS.index) == list(SECTIONS)
    assert sections == sorted(sections, key=SECTIONS.index)
    heatmaps = [f for f in figures if f.path.name.startswith("confusion")]
    assert len(heatmaps) == len(stats["pairs"]) + len(stats["conditions"])
    names = {f.path.name for f in figures}
    assert {"kappa.png", "labels.png", "labels-paraphrases.png", "accuracy.png", "kappa-conditions.png",
            "labels-orders.png", "position-bias.png"} <= names
    # counts of every cell are in the heatmap's alt text, for readers who cannot see it
    first = next(f for f in heatmaps if f.section == "agreement")
    assert "female: 6, 3, 1; male: 1, 4, 1; unparsed: 0, 1, 1" in first.alt
    kappa = next(f for f in figures if f.path.name == "kappa.png")
    assert "0.41 [0.12, 0.70]" in kappa.alt and "(no interval)" in kappa.alt and "undefined" in kappa.alt
    # the gap per condition, in points, one row per comparison (with two labels the second mirrors the first)
    (gap,) = [f for f in figures if f.path.name == "gap-conditions.png"]
    assert gap.section == "conditions" and gap.alt.count("female: plain - warm: -6.7 [-20.0, +6.7] points, n=15") == 4
    assert "· male: plain" not in gap.alt


def test_redrawing_gives_the_same_bytes(drawn: tuple[Path, list[Figure]], tmp_path: Path) -> None:
    folder, figures = drawn
    again = draw(summary(), tmp_path)
    assert again == figures
    for fig in figures:
        assert (tmp_path / fig.path).read_bytes() == (folder / fig.path).read_bytes(), fig.path


def test_without_gold_or_optional_axes(tmp_path: Path) -> None:
    # the statistics release 0.1 wrote for its gender spec: no condition, paraphrase or option order
    legacy = json.loads((ROOT / "tests" / "fixtures" / "legacy-0.1" / "statistics.json").read_text(encoding="utf-8"))
    example = {"run": {"labels": ["female", "male"], "has_gold": True}, "statistics": legacy}
    figures = draw(example, tmp_path / "example")
    assert [f.path.name for f in figures] == ["confusion-scripted-direct-story.png", "kappa.png",
                                              "labels.png", "accuracy.png"]
    plain = copy.deepcopy(example)
    plain["run"]["has_gold"] = False
    for entry in plain["statistics"]["variants"]:
        del entry["accuracy"]
    assert "accuracy" not in {f.section for f in draw(plain, tmp_path / "plain")}


def test_many_rows_split_per_model(tmp_path: Path) -> None:
    s = summary()
    stats = s["statistics"]
    stats["variants"] = [_variant(f"model-{m}", "plain", f"v{v}", 3, 3, 1) for m in range(2) for v in range(13)]
    labels = [f for f in draw(s, tmp_path) if f.path.name.startswith("labels-model")]
    assert [f.path.name for f in labels] == ["labels-model-0.png", "labels-model-1.png"]
    assert labels[0].title == "Labels per variant, model-0"


def test_figure_lines_pick_one_section_and_escape_alt_text() -> None:
    figures = [Figure(Path("figures/a.png"), "A", "alt [1]", "accuracy"),
               Figure(Path("figures/b.png"), "B", "b", "agreement")]
    assert figure_lines(figures, "accuracy") == ["![alt (1)](figures/a.png)", ""]
    assert figure_lines(figures, "orders") == []


def test_help_does_not_import_matplotlib() -> None:
    code = ("import sys\nfrom evalrun.cli import main\nimport evalrun.reporting.figures, evalrun.reporting.compare\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED' if 'matplotlib' in sys.modules else 'CLEAN')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().endswith("CLEAN")
