"""A strict, scripted Slack Web API on loopback, for wire cases the sandbox does not make.

Each scripted reply answers the next call, in order, and only if the call is
for the method it was scripted for; anything else is recorded as unexpected
(and answered with a 500). :meth:`ScriptedSlack.assert_done` fails on an
unexpected call or an unused reply, as ``responses`` did with an ordered
registry. Replies can also break the wire: answer late (a read timeout), cut
the body short, or reset the connection.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body`` as dict/list is sent as JSON, str/bytes as they are."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = JSON
    delay: float = 0.0
    truncate: bool = False
    reset: bool = False

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Seen:
    """A call as the server received it."""

    method: str
    headers: Mapping[str, str]
    json: Any
    form: Mapping[str, str]


class ScriptedSlack:
    def __init__(self, port: int = 0) -> None:
        self._script: deque[tuple[str, Reply]] = deque()
        self._lock = threading.Lock()
        self.calls: list[Seen] = []
        self.unexpected: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def expect(self, method: str, reply: Reply | None = None, **kwargs: Any) -> None:
        """Answer the next call, which must be ``method``, with ``reply`` or ``Reply(**kwargs)``."""
        with self._lock:
            self._script.append((method, reply or Reply(**kwargs)))

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call.method == method)

    def assert_done(self) -> None:
        assert self.unexpected == [], f"unexpected calls: {self.unexpected}"
        assert not self._script, f"replies never asked for: {[m for m, _ in self._script]}"

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.calls.append(seen)
            if self._script and self._script[0][0] == seen.method:
                return self._script.popleft()[1]
            self.unexpected.append(seen.method)
        return Reply(500, {"ok": False, "error": "unexpected_request"})

    def start(self) -> ScriptedSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(owner: ScriptedSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            kind = self.headers.get_content_type()
            parsed = json.loads(raw) if kind == "application/json" and raw else None
            form = dict(urllib.parse.parse_qsl(raw.decode())) if kind.endswith("urlencoded") else {}
            method = urllib.parse.urlsplit(self.path).path.removeprefix("/api/")
            reply = owner._next(Seen(method, dict(self.headers.items()), parsed, form))
            # The client may have given up first (a read timeout): nobody to answer.
            with suppress(OSError):
                self._answer(reply)

        def _answer(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.reset:
                # SO_LINGER 0: close with a TCP reset instead of an orderly FIN.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            payload = reply.payload()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.truncate:
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@contextmanager
def scripted() -> Iterator[ScriptedSlack]:
    server = ScriptedSlack().start()
    try:
        yield server
    finally:
        server.stop()


def refused_url() -> str:
    """An API URL on a loopback port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/api/"


class HungPort:
    """A loopback port whose accept queue is full: connecting to it times out."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()
