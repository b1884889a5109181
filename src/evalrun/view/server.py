"""The local server of `evalrun view`: the page at / and the run's data at /data.json, on 127.0.0.1 only.

The standard library's http.server, not a web framework: two fixed responses for one person's browser
need no routing, templates or dependency, and ThreadingHTTPServer answers the page and its data at once.
Port 0 lets the system pick a free port, so two views (or a test) never collide.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class ViewServer(ThreadingHTTPServer):
    """Serves fixed responses, path -> (content type, body); `url` is the page's address."""

    daemon_threads = True  # a browser's kept-alive connection must not hold the process open at Ctrl-C

    def __init__(self, responses: dict[str, tuple[str, bytes]], port: int = 0) -> None:
        self.responses = responses
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        found = self.server.responses.get("/" if path in ("", "/index.html") else path)
        if found is None:
            self.send_error(404)
            return
        kind, body = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a rerun's view must not show the last run's data
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows the address and nothing per request."""
