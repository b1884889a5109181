"""The local server of `evalrun view`: the page at /, the run's data at /data.json, and a person's labels at
/labels (GET: theirs so far; POST: one more), on 127.0.0.1 only.

The standard library's http.server, not a web framework: a few fixed responses and one small POST for one
person's browser need no routing, templates or dependency, and ThreadingHTTPServer answers the page and its
data at once. Port 0 lets the system pick a free port, so two views (or a test) never collide.

Why the POST is guarded although the server listens on 127.0.0.1 only: every web page the person visits
while the view runs can send requests to 127.0.0.1 too (a form's POST needs no permission), and a page on
a domain whose DNS answer is later switched to 127.0.0.1 ("DNS rebinding") can even read the answers. So
every request must name this server in its Host header (a rebound domain's would name that domain); a POST
must come from this page's own origin (Origin header), be JSON (which a cross-site form cannot send without
a CORS preflight, which this server never grants) and carry the random token written into the page when
the server started, which no other page can read. Any of them failing: 403, and nothing is stored.
"""

from __future__ import annotations

import hmac
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .labels import Labelling

TOKEN_HEADER = "X-Evalrun-Token"
MAX_BODY = 4096  # bytes: a label is an answer key and a label's name


class ViewServer(ThreadingHTTPServer):
    """Serves fixed responses, path -> (content type, body), and with `labelling` a person's labels at
    /labels; `url` is the page's address."""

    daemon_threads = True  # a browser's kept-alive connection must not hold the process open at Ctrl-C

    def __init__(self, responses: dict[str, tuple[str, bytes]], port: int = 0,
                 labelling: Labelling | None = None) -> None:
        self.responses = responses
        self.labelling = labelling
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def host(self) -> str:
        """The Host header every request to this server carries, `127.0.0.1:PORT`."""
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}/"

    def server_close(self) -> None:
        super().server_close()
        if self.labelling is not None:
            self.labelling.close()


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer

    def do_GET(self) -> None:
        if not self._ours():
            return
        path = urlsplit(self.path).path
        if path == "/labels" and self.server.labelling is not None:
            self._send(HTTPStatus.OK, "application/json", _json(self.server.labelling.given()))
            return
        found = self.server.responses.get("/" if path in ("", "/index.html") else path)
        if found is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self._send(HTTPStatus.OK, *found)

    def do_POST(self) -> None:
        labelling = self.server.labelling
        if not self._ours():
            return
        if urlsplit(self.path).path != "/labels" or labelling is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        if (self.headers.get("Origin") != f"http://{self.server.host}"
                or self.headers.get_content_type() != "application/json"
                or not hmac.compare_digest(self.headers.get(TOKEN_HEADER, "").encode(), labelling.token.encode())):
            self.send_error(HTTPStatus.FORBIDDEN, "not from this server's page")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(HTTPStatus.LENGTH_REQUIRED)
            return
        if not 0 < length <= MAX_BODY:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > MAX_BODY else HTTPStatus.BAD_REQUEST)
            return
        try:
            body = json.loads(self.rfile.read(length))
            stored = labelling.put(body)
        except ValueError as exc:  # not JSON, or not a label of this run's answers (json's error is one)
            self.send_error(HTTPStatus.BAD_REQUEST, str(exc)[:200])
            return
        self._send(HTTPStatus.OK, "application/json", _json(
            {"answer_key": stored.answer_key, "label": stored.label, "who": stored.who, "at": stored.at}))

    def _ours(self) -> bool:
        """Whether the request names this server as its host; else 403 (see the module's docstring)."""
        if self.headers.get("Host") == self.server.host:
            return True
        self.send_error(HTTPStatus.FORBIDDEN, "not this server's address")
        return False

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a rerun's view must not show the last run's data
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows the address and nothing per request."""


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
