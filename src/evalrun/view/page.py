"""The view's one page: page.html with its script (page.js) inline, and the run's data embedded or fetched.

Nothing of the run is written into the page as HTML but the labels' and the axes' values of the filter
controls, escaped; everything else (answers, prompts, reasons: model output) goes in as JSON and reaches
the page through the script's textContent. The JSON sits in a <script type="application/json"> element,
which ends at the first `</script` whatever JSON's quoting says, so every <, > and & in it is written as
a \\u escape. The Content-Security-Policy allows only the page's own script (by its hash), no inline
handler, no image and no other address: even markup that slipped in could neither run nor call out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .labels import Labelling

_FILES = resources.files(__package__)
_PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")
_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def data_json(data: dict[str, Any]) -> str:
    """The data as JSON that is safe inside a <script> element (and still the same JSON)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_ESCAPES)


def render(data: dict[str, Any], embed: bool, labelling: Labelling | None = None) -> str:
    """The page; with `embed` the data is in it (one file to share), else its script fetches data.json.
    With `labelling` (the served page) the person can label answers; without it (the static file, which no
    server stands behind to store them) the label mode is shown disabled, saying why."""
    script = (_FILES / "page.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           f"connect-src 'self'; base-uri 'none'; form-action 'none'")
    labels = "".join(f'<option value="{escape(label)}">{escape(label)}</option>' for label in data["run"]["labels"])
    axes = "\n".join(
        f'<label>{escape(a["column"])} <select name="{escape(a["column"])}"><option value="">any</option>'
        + "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in a["values"])
        + "</select></label>" for a in data["axes"])
    parts = {
        "CSP": csp, "LABELS": labels, "AXES": axes, "SCRIPT": script, "LABELMODE": _label_mode(data, labelling),
        "DATA": f'<script type="application/json" id="data">{data_json(data)}</script>' if embed else "",
    }
    # one pass over the template, so no placeholder is looked for inside text already put in
    return _PLACEHOLDER.sub(lambda m: parts[m[1]], (_FILES / "page.html").read_text(encoding="utf-8"))


def _label_mode(data: dict[str, Any], labelling: Labelling | None) -> str:
    """The label mode's control and its keys; served, with the token the page's POSTs carry (server.py)."""
    if labelling is None:
        return ('<label><input type="checkbox" name="mode" value="label" disabled> label answers</label> '
                '<span id="labelnote">labelling needs the server behind the page, which this file does not '
                'have: open the run with <code>evalrun view RUN_DIR</code></span>')
    sets = _by_labels(data["run"]["variant_labels"])
    if len(sets) <= 1:  # every variant reads the same labels (a run with none: the spec's)
        keys = _keys(next(iter(sets), tuple(data["run"]["labels"]))) + ", u unclear"
    else:  # the keys 1..k of each label set, named by its variants
        keys = "; ".join(f"{escape(', '.join(variants))}: {_keys(labels)}" for labels, variants in sets.items())
        keys += "; u unclear"
    return (f'<label><input type="checkbox" name="mode" value="label" data-token="{escape(labelling.token)}"> '
            'label answers</label> '
            f'<span id="labelnote">as {escape(labelling.who)}; keys: {keys}, n or &rarr; next '
            '(the readers\' labels show once you have labelled an answer)</span>')


def _by_labels(variant_labels: dict[str, list[str]]) -> dict[tuple[str, ...], list[str]]:
    """The variants grouped by the labels a person gives their answers (the keys 1..k differ between groups)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for variant, labels in variant_labels.items():
        groups.setdefault(tuple(labels), []).append(variant)
    return groups


def _keys(labels: tuple[str, ...]) -> str:
    return ", ".join(f"{i} {escape(label)}" for i, label in enumerate(labels, start=1))
