"""Real local HTTP servers on 127.0.0.1 for tests: serve documents, receive webhooks.

def test_feed(http_server):
    http_server.route("/feed.xml", body=RSS, headers={"Content-Type": "application/rss+xml"})
    url = http_server.url("/feed.xml")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

__all__ = ["LocalServer", "Recorded", "Reply", "http_server"]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Responder = Callable[[Recorded], Reply]


class LocalServer:
    """A threaded HTTP server on a free loopback port with scripted routes and a log of requests."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[str, Responder] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(recorded)
                    responder = server._routes.get(self.path.split("?")[0])
                reply = responder(recorded) if responder else Reply(404, b"not found")
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        responder: Responder | None = None,
    ) -> None:
        """Answer ``path`` with a fixed reply, or with ``responder(request)``."""
        data = body.encode() if isinstance(body, str) else body
        fixed = Reply(status, data, headers or {})
        with self._lock:
            self._routes[path] = responder or (lambda _request: fixed)

    def received(self, path: str) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.path.split("?")[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60.0) -> list[Recorded]:
        """Block until ``count`` requests reached ``path`` (bounded: fails the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} request(s) to {path} within {timeout}s, got {len(self.received(path))}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()
