"""The report as a reader sees it: the example run re-rendered with its figures, converted to HTML by a
markdown library, every image link resolving to a PNG; and, where Chromium is installed, the page
loaded in headless Chromium (conftest's `chromium`) with every image decoded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun.reporting import rerender
from evalrun.reporting.compare import compare_runs
from evalrun.reporting.figures import DPI, SECTIONS, WIDTH, draw, figure_lines

if TYPE_CHECKING:
    from conftest import Watched
    from playwright.sync_api import Browser, Page

markdown = pytest.importorskip("markdown", reason="the `markdown` package (test extra) converts reports to HTML")

ROOT = Path(__file__).resolve().parent.parent
# each image's source, whether it finished loading, and its decoded width (0 for a broken image)
IMAGES = "Array.from(document.images, img => [img.getAttribute('src'), img.complete, img.naturalWidth])"


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            found = dict(attrs)
            self.sources.append((found.get("src") or "", found.get("alt") or ""))


def _report_with_figures(folder: Path) -> Path:
    """report.md of the example run, re-rendered, with a link to every figure drawn from its summary
    (appended under the figures' sections where the report does not link them itself yet)."""
    shutil.copytree(ROOT / "reports" / "example", folder)
    report = rerender(folder)
    figures = draw(json.loads((folder / "summary.json").read_text(encoding="utf-8")), folder)
    text = report.read_text(encoding="utf-8")
    missing = [f for f in figures if f.path.as_posix() not in text]
    for section in SECTIONS:
        lines = figure_lines(missing, section)
        if lines:
            text += f"\n\n## Figures: {section}\n\n" + "\n".join(lines)
    report.write_text(text, encoding="utf-8")
    return report


def _html(page: Path) -> tuple[Path, list[tuple[str, str]]]:
    body = markdown.markdown(page.read_text(encoding="utf-8"), extensions=["tables"])
    parser = _Images()
    parser.feed(body)
    html = page.with_suffix(".html")
    html.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{page.name}</title></head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return html, parser.sources


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("browser")
    report = _report_with_figures(root / "run")
    shutil.copytree(root / "run", root / "again")
    return [report, compare_runs([root / "run", root / "again"], root / "compare")]


def test_every_image_link_resolves_to_a_png_and_every_png_is_linked(pages: list[Path]) -> None:
    for page in pages:
        _, images = _html(page)
        assert images, page
        for src, alt in images:
            assert not src.startswith(("/", "http:", "https:", "file:")), src  # relative, as GitHub needs
            target = page.parent / src
            assert target.is_file(), src
            assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), src
            assert alt, src
        linked = {(page.parent / src).resolve() for src, _ in images}
        assert linked == {p.resolve() for p in (page.parent / "figures").glob("*.png")}


def test_images_load_in_headless_chromium(pages: list[Path], chromium: Browser,
                                         watch: Callable[[Page], Watched]) -> None:
    for page in pages:
        html, images = _html(page)
        watched = watch(chromium.new_page())
        watched.page.goto(html.as_uri())  # returns once the page's load event has fired: every image done
        loaded = watched.page.evaluate(IMAGES)
        assert [src for src, _, _ in loaded] == [src for src, _ in images]
        for src, complete, width in loaded:
            assert complete and width == round(WIDTH * DPI), f"{src} did not load in Chromium"
        assert watched.errors == []
        # the page and its images, all beside it: nothing from elsewhere
        assert watched.requests[0] == html.as_uri()
        assert set(watched.requests[1:]) == {(html.parent / src).resolve().as_uri() for src, _ in images}
