"""A loopback HTTP server that answers from a script, for error-table tests.

Each request gets the next :class:`Reply` of the script (the last one repeats),
so a test can produce over real HTTP what a sandbox cannot be asked for: a 429
without any header, a reply slower than the client's timeout, a body cut short
of its ``Content-Length``. :func:`closed_port_url` gives a URL nothing listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    truncate: bool = False  # promise the whole body, send half, close


@dataclass(frozen=True)
class Received:
    method: str
    path: str


class ScriptedServer:
    """``with ScriptedServer([Reply(503), Reply(200)]) as server: ... server.url``."""

    def __init__(self, script: Sequence[Reply]) -> None:
        if not script:
            raise ValueError("a script needs at least one reply")
        self._script = list(script)
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def tls_url(self) -> str:
        """The same port as ``https://``: the server speaks plain HTTP, so TLS fails."""
        return self.url.replace("http://", "https://", 1)

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            self.received.append(Received(method, path))
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                reply = server._next(self.command, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2] if reply.truncate else data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout row)
                if reply.truncate:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>`` of a port that was just free: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
