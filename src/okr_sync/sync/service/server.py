"""A WSGI server whose threads and connections are bounded, so slow clients cannot starve it.

Werkzeug's threaded server starts one thread per connection and keeps it while the
client says nothing: 800 stalled connections held 803 threads, and enough of them
would stop ``/healthz`` answering. Here one thread (the caller of
:meth:`BoundedWSGIServer.serve_forever`) accepts connections and watches them without
reading: a connection goes to one of a fixed number of worker threads only once its
whole request head (request line and headers) has arrived, peeked at without being
consumed. So a stalled or slow-loris client costs a file descriptor, not a thread, and
is closed when it has not sent its head within ``header_timeout`` of being accepted.
At most ``pending`` connections wait; past that the oldest waiting one is dropped (a
flood's oldest connections are the likeliest to be stalled). A worker reads and writes
with a per-operation ``read_timeout`` and drops a request still running after
``request_deadline`` (a client dripping a body), so no worker is held forever either.
Werkzeug's handler closes every connection after its response (no keep-alive), so a
worker is free again as soon as its one request is answered.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer

log = logging.getLogger("okr_sync.service")

#: A request head longer than this goes to a worker, which refuses it (431/414).
MAX_HEAD_BYTES = 64 * 1024
#: How often a connection with part of its head is looked at again (level-triggered
#: polling would otherwise wake for it continuously).
RECHECK_S = 0.1
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of :class:`BoundedWSGIServer` (defaults: those of ``okr-sync serve``)."""

    #: Threads handling requests (the service's endpoints answer in milliseconds).
    workers: int = 16
    #: Connections accepted and not yet handled (waiting for their head or a worker).
    pending: int = 512
    #: Seconds from accept for the whole request head to arrive.
    header_timeout: float = 10.0
    #: Seconds any one read or write of a handled request may block.
    read_timeout: float = 10.0
    #: Seconds a handled request may take in all (reading its body included).
    request_deadline: float = 60.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.pending < 1:
            raise ValueError("the server needs at least one worker and one pending slot")
        if min(self.header_timeout, self.read_timeout, self.request_deadline) <= 0:
            raise ValueError("the server's timeouts must be positive")


@dataclass
class _Waiting:
    conn: socket.socket
    address: Any
    accepted_at: float
    recheck_at: float | None = None  # set while parked (part of the head has arrived)


def head_complete(data: bytes) -> bool:
    """Whether ``data`` (the start of a request) holds its whole head, or enough to refuse it."""
    return b"\r\n\r\n" in data or b"\n\n" in data or len(data) >= MAX_HEAD_BYTES


class BoundedWSGIServer(BaseWSGIServer):
    """Werkzeug's WSGI server with the bounded threading described in the module docstring."""

    multithread = True

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        # Wakes the accepting thread's select() when shutdown() is called. Werkzeug's
        # __init__ calls server_close() (for its own socket): that must not close these.
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._initialised = False
        super().__init__(*args, **kwargs)
        self._initialised = True
        self.limits = limits or ConnectionLimits()
        self.socket.setblocking(False)
        self._ready: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(
            maxsize=self.limits.pending)
        self._waiting: dict[int, _Waiting] = {}
        self._active: dict[socket.socket, float] = {}
        self._active_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    # -- the accepting thread -------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown` (a server serves once: it cannot be restarted)."""
        if self._stop.is_set():
            return
        self._stopped.clear()
        self._start_workers()
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ, "listener")
        selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(self._timeout(poll_interval)):
                    if key.data == "listener":
                        self._accept(selector)
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._examine(selector, key.data)
                self._expire(selector)
        finally:
            for waiting in list(self._waiting.values()):
                self._drop(selector, waiting)
            selector.close()
            self._stopped.set()

    def shutdown(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._stopped.wait(timeout=10)
        self._stop_workers()

    def server_close(self) -> None:
        super().server_close()
        if self._initialised:
            self._wake_read.close()
            self._wake_write.close()

    @property
    def waiting_connections(self) -> int:
        return len(self._waiting)

    def _timeout(self, poll_interval: float) -> float:
        if not self._waiting and not self._active:
            return poll_interval
        return min(poll_interval, RECHECK_S)

    def _drain_wake(self) -> None:
        try:
            while self._wake_read.recv(64):
                pass
        except OSError:
            pass

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(64):  # bounded per wake-up, so expiry keeps running under a flood
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. EMFILE: say so, and let the backlog wait
                log.warning("http server: cannot accept a connection",
                            extra={"error": type(error).__name__})
                return
            conn.setblocking(False)
            if len(self._waiting) >= self.limits.pending:
                oldest = min(self._waiting.values(), key=lambda w: w.accepted_at)
                log.debug("http server: dropping the oldest waiting connection (limit reached)",
                          extra={"pending": self.limits.pending})
                self._drop(selector, oldest)
            waiting = _Waiting(conn, address, time.monotonic())
            self._waiting[conn.fileno()] = waiting
            selector.register(conn, selectors.EVENT_READ, waiting)

    def _examine(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        try:
            data = waiting.conn.recv(MAX_HEAD_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(selector, waiting)
            return
        if not data:  # the client closed before sending a request
            self._drop(selector, waiting)
            return
        selector.unregister(waiting.conn)
        if not head_complete(data):
            waiting.recheck_at = time.monotonic() + RECHECK_S
            return
        del self._waiting[waiting.conn.fileno()]
        try:
            self._ready.put_nowait((waiting.conn, waiting.address))
        except queue.Full:
            self._refuse_busy(waiting.conn)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for waiting in list(self._waiting.values()):
            if now - waiting.accepted_at > self.limits.header_timeout:
                log.debug("http server: dropping a connection that sent no request in time",
                          extra={"timeout_s": self.limits.header_timeout})
                self._drop(selector, waiting)
            elif waiting.recheck_at is not None and waiting.recheck_at <= now:
                waiting.recheck_at = None
                selector.register(waiting.conn, selectors.EVENT_READ, waiting)
        with self._active_lock:
            overdue = [conn for conn, deadline in self._active.items() if deadline < now]
        for conn in overdue:
            log.info("http server: dropping a request over its deadline",
                     extra={"deadline_s": self.limits.request_deadline})
            # The worker's blocked read or write returns, and it frees itself.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _drop(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        self._waiting.pop(waiting.conn.fileno(), None)
        if waiting.recheck_at is None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(waiting.conn)
        waiting.conn.close()

    def _refuse_busy(self, conn: socket.socket) -> None:
        log.warning("http server: every worker is busy and the queue is full; refused 503")
        with contextlib.suppress(OSError):
            conn.send(_BUSY)
        conn.close()

    # -- the workers ----------------------------------------------------------------------

    def _start_workers(self) -> None:
        self._workers = [
            threading.Thread(target=self._work, name=f"okr-sync-http-{n}", daemon=True)
            for n in range(self.limits.workers)
        ]
        for worker in self._workers:
            worker.start()

    def _stop_workers(self) -> None:
        while True:  # connections still queued are closed unanswered, as on any stop
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].close()
        for _ in self._workers:
            self._ready.put(None)
        for worker in self._workers:
            worker.join(timeout=1)

    def _work(self) -> None:
        while True:
            item = self._ready.get()
            if item is None:
                return
            conn, address = item
            conn.setblocking(True)
            conn.settimeout(self.limits.read_timeout)
            with self._active_lock:
                self._active[conn] = time.monotonic() + self.limits.request_deadline
            try:
                self.finish_request(conn, address)
            except Exception:  # one request's failure must not end the worker
                self.handle_error(conn, address)
            finally:
                with self._active_lock:
                    self._active.pop(conn, None)
                self.shutdown_request(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("http server: a request failed outside the application")
