"""`evalrun view`: a run's answers in the browser, items as rows and variants side by side, with filters.

    data.py    the run folder (results.parquet, readings.parquet, summary.json) as JSON-ready data
    page.py    the one page (page.html, page.js), with the data embedded or fetched
    server.py  the local server on 127.0.0.1
    labels.py  a person's labels, given in the served page, to and from the store
"""

from __future__ import annotations

import getpass
import webbrowser
from pathlib import Path
from typing import Any

from ..errors import EvalrunError
from ..store import Store
from .data import load
from .labels import Labelling
from .page import data_json, render
from .server import ViewServer

__all__ = ["ViewServer", "open_view", "serve", "write_static"]


def write_static(run_dir: Path | str, out: Path | str) -> Path:
    """One self-contained HTML file of the run's view (data, style and script inside; nothing fetched)."""
    out = Path(out)
    page = render(load(Path(run_dir)), embed=True)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise EvalrunError(f"{out}: cannot write it: {exc.strerror or exc}") from None
    return out


def serve(run_dir: Path | str, port: int = 0, who: str | None = None) -> ViewServer:
    """A server of the run's view on 127.0.0.1, not yet serving: call `serve_forever` (and `server_close`).
    Its page labels answers as `who` (default: the user logged in), into the store (store.py)."""
    data = load(Path(run_dir))
    labelling = Labelling(Store(), who or getpass.getuser(), _labels_by_answer(data))
    page = render(data, embed=False, labelling=labelling)
    try:
        return ViewServer({"/": ("text/html; charset=utf-8", page.encode("utf-8")),
                           "/data.json": ("application/json", data_json(data).encode("utf-8"))}, port, labelling)
    except BaseException:  # the port taken, say: the store opened for the server is closed with it
        labelling.close()
        raise


def _labels_by_answer(data: dict[str, Any]) -> dict[str, list[str]]:
    """Each answer's key -> the labels it may be given: its variant's (an answer two variants got, from the same
    request, has one stored label, so either variant's labels)."""
    key, variant = data["fields"].index("answer"), data["fields"].index("variant")
    found: dict[str, list[str]] = {}
    for a in data["answers"]:
        if a[key] is not None:
            found[a[key]] = list(dict.fromkeys([*found.get(a[key], []), *data["run"]["variant_labels"][a[variant]]]))
    return found


def open_view(run_dir: Path | str, static: Path | str | None = None, browser: bool = True,
              who: str | None = None) -> int:
    """`evalrun view`: write `static`, or serve the view until Ctrl-C and open it in the browser."""
    if static is not None:
        print(write_static(run_dir, static))
        return 0
    server = serve(run_dir, who=who)
    print(f"{server.url}  (Ctrl-C stops the server)", flush=True)
    if browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # the way to stop it: not an interrupted command
    finally:
        server.server_close()
    return 0
