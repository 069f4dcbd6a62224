"""Run a WSGI sandbox on a loopback port in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LOOPBACK = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """No per-request access log: the sandboxes keep their own request records."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        del code, size

    def send_response(self, code: int, message: str | None = None) -> None:
        # Without the host's Date: a sandbox dates its answers by its own clock (the
        # Jira sandbox's dataset clock is the server time a client's cursor relies on).
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (port 0 = any free port).

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, app: WSGIApp, *, port: int = 0, threaded: bool = True) -> None:
        self._server: BaseWSGIServer = make_server(
            LOOPBACK, port, app, threaded=threaded, request_handler=_QuietHandler
        )
        # A short poll interval lets stop() return in ~50 ms instead of 0.5 s,
        # which adds up over a test suite that starts a sandbox per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
