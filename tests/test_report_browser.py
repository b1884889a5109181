"""The report as a reader sees it: the example run re-rendered with its figures, converted to HTML by a
markdown library, every image link resolving to a PNG; and, where Chromium is installed, the page
loaded in headless Chromium with every image decoded."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evalrun.reporting import rerender
from evalrun.reporting.compare import compare_runs
from evalrun.reporting.figures import DPI, SECTIONS, WIDTH, draw, figure_lines

markdown = pytest.importorskip("markdown", reason="the `markdown` package (test extra) converts reports to HTML")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# reported by the page itself once everything has loaded: each image's source, whether it finished
# loading, and its decoded width (0 for a broken image)
PROBE = """<pre id="probe"></pre><script>
window.addEventListener("load", () => {
  document.getElementById("probe").textContent = "PROBE" + JSON.stringify(
    Array.from(document.images, img => [img.getAttribute("src"), img.complete, img.naturalWidth])) + "END";
});
</script>"""


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
                    f"<body>{body}{PROBE}</body></html>", encoding="utf-8")
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


@pytest.mark.skipif(CHROMIUM is None, reason="headless browser check needs Chromium (Debian package `chromium`)")
def test_images_load_in_headless_chromium(pages: list[Path], tmp_path: Path) -> None:
    for page in pages:
        html, images = _html(page)
        result = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", html.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        dom = result.stdout
        assert "PROBE" in dom, dom[-2000:]
        loaded = json.loads(dom[dom.index("PROBE") + len("PROBE"): dom.index("END", dom.index("PROBE"))])
        assert [src for src, _, _ in loaded] == [src for src, _ in images]
        for src, complete, width in loaded:
            assert complete and width == round(WIDTH * DPI), f"{src} did not load in Chromium"
