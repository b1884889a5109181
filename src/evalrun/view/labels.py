"""Labelling in the served view: one person's labels of the run's answers, read from and written to the store.

The same labels as `evalrun annotate` gives (store.py's human_labels: keyed by the answer, with who and
when), so the report's "Readers against a person" counts both alike. Only an answer of this run and one of
the labels its variant reads (run.variant_labels) or "unclear" is stored: the page is trusted no further than
the server's checks go.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..store import UNCLEAR, HumanLabel, Store


class Labelling:
    """`who`'s labels of the answers `answers` (answer key -> the labels it may be given), in `store`; `token` is
    what the page's POSTs must carry."""

    def __init__(self, store: Store, who: str, answers: Mapping[str, Iterable[str]]) -> None:
        self.store = store
        self.who = who
        self.answers = {key: (*labels, UNCLEAR) for key, labels in answers.items()}
        self.token = secrets.token_urlsafe(32)
        # the server answers on several threads; one SQLite connection is used by one of them at a time
        self._lock = threading.Lock()

    def given(self) -> dict[str, Any]:
        """This person's labels of the run's answers so far: {"who", "labels": {answer key: label}}."""
        with self._lock:
            found = self.store.labels(self.answers, self.who)
        return {"who": self.who, "labels": {h.answer_key: h.label for h in found}}

    def put(self, body: object) -> HumanLabel:
        """Store the label the page sent ({"answer_key", "label"}); ValueError when it is not one of this run's
        answers and one of the labels its variant reads."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object {answer_key, label}")
        key, label = body.get("answer_key"), body.get("label")
        if not isinstance(key, str) or key not in self.answers:
            raise ValueError("answer_key is not one of this run's answers")
        if label not in self.answers[key]:
            raise ValueError(f"label must be one of {', '.join(self.answers[key])}")
        given = HumanLabel(key, label, self.who, datetime.now(UTC).isoformat(timespec="seconds"))
        with self._lock:
            self.store.put_label(given)
        return given

    def close(self) -> None:
        with self._lock:
            self.store.close()
