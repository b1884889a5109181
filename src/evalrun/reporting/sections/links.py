"""Links from report.md's sections to the run's answers in `evalrun view`, filtered to what a section is about.

The view keeps its filters in the address's fragment (view/page.js: `view.html#variants=disagree`), so a link
names a filtered view. report.md links only to a view.html written beside it (`evalrun view RUN_DIR --static
RUN_DIR/view.html`): the served view's address changes at every start (the system picks a free port), and
report.md without a view.html beside it is as it was, so a run folder's report does not change with this.
Writing view.html with every report would be cheap in time (0.02 s for the example's 288 answers) but copies
every answer into one more file per run folder (about 0.7 KB an answer), and the report sits below the view
in the import layers (pyproject.toml), so the report leaves writing it to `evalrun view`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

VIEW_FILE = "view.html"


def view_file(run_dir: Path) -> str | None:
    """The static view's name beside report.md, relative as report.md links it, when one has been written."""
    return VIEW_FILE if (run_dir / VIEW_FILE).is_file() else None


def view_link(view: str | None, text: str, **filters: str) -> list[str]:
    """A paragraph linking to `view` filtered by `filters` (the view's fragment names), or nothing without one."""
    if view is None:
        return []
    return ["", f"[{text}]({view}#{urlencode(filters)})"]
