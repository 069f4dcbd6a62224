"""A WSGI server whose threads and connections are bounded, so slow clients cannot starve it.

Werkzeug's threaded server starts one thread per connection and keeps it while the
client says nothing: 800 stalled connections held 803 threads, and enough of them
would stop ``/healthz`` answering. Here one thread (the caller of
:meth:`BoundedWSGIServer.serve_forever`) accepts connections and reads each *whole
request* (request line, headers and body) without blocking; only a request that has
completely arrived goes to one of a fixed number of worker threads, which reads it from
memory. So a stalled, slow-loris or body-dripping client costs a file descriptor and
its bytes so far, never a thread. ``GET``/``HEAD`` of ``/healthz``, ``/readyz`` and
``/readyz/<plan>`` go to workers of their own: clients that ask for a large page and never
read it hold general workers until their deadline, but not the probes (nor Kubernetes).

The accepting stage bounds each of those costs. A connection must send its head within
``header_timeout`` and its whole request within ``request_timeout`` of being accepted,
or it is closed. A body is read up to ``max_body`` bytes (the webhook's own limit):
a declared ``Content-Length`` over it goes to a worker with its head only (the
application refuses it, 413, without reading), and a chunked body growing over it is
answered 413 here. All bodies being read share ``buffer_budget`` bytes of memory, and
so do the whole requests waiting for a worker (counted until a worker takes them): a
request that would take them over it is answered 503. Past the budget for bodies being
read, and past ``pending`` waiting connections, the oldest waiting connection is dropped
(a flood's oldest connections are the likeliest to be stalled). A worker writes its
response with a per-operation ``read_timeout`` and gives up after ``request_deadline``
(a client that does not read its answer), so no worker is held forever either.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer

from okr_sync.sync.service.framing import (
    CONTINUE,
    HEAD_END,
    MAX_HEAD_BYTES,
    RECV_BYTES,
    ChunkScan,
    PrereadConnection,
    WholeRequest,
    head_end,
    header_fields,
    is_probe,
)

log = logging.getLogger("okr_sync.service")

#: Workers of their own for the liveness and readiness probes (their answers are small).
PROBE_WORKERS = 2
#: Probe requests waiting for a probe worker (a probe client that does not wait is dropped).
PROBE_PENDING = 64
#: Digits a Content-Length may have (far beyond any body limit) before it is refused.
MAX_LENGTH_DIGITS = 18

_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of :class:`BoundedWSGIServer` (defaults: those of ``okr-sync serve``)."""

    #: Threads handling requests (the service's endpoints answer in milliseconds).
    workers: int = 16
    #: Connections accepted and not yet handled (waiting for their request or a worker).
    pending: int = 512
    #: Seconds from accept for the whole request head to arrive.
    header_timeout: float = 10.0
    #: Seconds from accept for the whole request, body included, to arrive.
    request_timeout: float = 20.0
    #: Largest request body read (a larger one is refused with 413).
    max_body: int = 1024 * 1024
    #: Bytes all connections still sending their request may hold in memory together.
    buffer_budget: int = 64 * 1024 * 1024
    #: Seconds any one socket operation of a handled request (writing its answer) may block.
    read_timeout: float = 10.0
    #: Seconds a handled request may take in all (the client reading its answer included).
    request_deadline: float = 60.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.pending < 1:
            raise ValueError("the server needs at least one worker and one pending slot")
        if min(self.header_timeout, self.request_timeout, self.read_timeout,
               self.request_deadline) <= 0:
            raise ValueError("the server's timeouts must be positive")
        if self.max_body < 0 or self.buffer_budget < MAX_HEAD_BYTES + self.max_body:
            raise ValueError("the buffer budget must hold at least one whole request")


@dataclass
class _Incoming:
    """A connection whose request is still arriving (or, once refused, being drained)."""

    conn: socket.socket
    address: Any
    accepted_at: float
    data: bytearray = field(default_factory=bytearray)
    head_end: int | None = None
    head_scanned: int = 0  # bytes already searched for the head's end
    body_end: int | None = None  # with Content-Length: where the request ends
    chunks: ChunkScan | None = None  # with Transfer-Encoding: chunked
    continue_sent: bool = False
    draining: bool = False  # answered 413 here: read and discard until the client closes


class BoundedWSGIServer(BaseWSGIServer):
    """Werkzeug's WSGI server with the bounded threading described in the module docstring."""

    multithread = True

    def __init__(self, *args: Any, limits: ConnectionLimits | None = None,
                 on_cut_short: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        # Wakes the accepting thread's select() when shutdown() is called. Werkzeug's
        # __init__ calls server_close() (for its own socket): that must not close these.
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._initialised = False
        super().__init__(*args, **kwargs)
        self._initialised = True
        self.limits = limits or ConnectionLimits()
        #: Called with the path of a request whose body never wholly arrived.
        self.on_cut_short = on_cut_short or (lambda path: None)
        self.socket.setblocking(False)
        self._ready: queue.Queue[WholeRequest | None] = queue.Queue(maxsize=self.limits.pending)
        self._probes: queue.Queue[WholeRequest | None] = queue.Queue(maxsize=PROBE_PENDING)
        # Bytes of whole requests queued for a worker: added by the accepting thread,
        # subtracted by the worker that takes one, so both sides hold the lock.
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._waiting: dict[int, _Incoming] = {}
        self._buffered = 0
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
                        self._receive_guarded(selector, key.data)
                self._expire(selector)
        finally:
            for incoming in list(self._waiting.values()):
                self._drop(selector, incoming)
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

    @property
    def buffered_bytes(self) -> int:
        """Bytes of requests still arriving, held in memory (at most ``buffer_budget``)."""
        return self._buffered

    @property
    def queued_bytes(self) -> int:
        """Bytes of whole requests waiting for a worker (they share ``buffer_budget``)."""
        with self._queued_lock:
            return self._queued

    def _timeout(self, poll_interval: float) -> float:
        if not self._waiting and not self._active:
            return poll_interval
        return min(poll_interval, 0.1)

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
                log.debug("http server: dropping the oldest waiting connection (limit reached)",
                          extra={"pending": self.limits.pending})
                self._drop(selector, self._oldest(self._waiting.values()))
            incoming = _Incoming(conn, address, time.monotonic())
            self._waiting[conn.fileno()] = incoming
            selector.register(conn, selectors.EVENT_READ, incoming)

    @staticmethod
    def _oldest(candidates: Any) -> _Incoming:
        oldest: _Incoming = min(candidates, key=lambda w: w.accepted_at)
        return oldest

    def _receive_guarded(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        """Handle one connection's bytes; a fault there costs that connection, never the
        accepting thread (else one odd request would stop every later one, /healthz too)."""
        try:
            self._receive(selector, incoming)
        except Exception as error:  # the loop must survive any one connection
            # The error's type only: its text may quote request bytes (headers, secrets).
            log.error("http server: dropped a connection after an error handling it",
                      extra={"error": type(error).__name__})
            with contextlib.suppress(Exception):
                self._drop(selector, incoming)

    def _receive(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        try:
            data = incoming.conn.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._cut_short(incoming, "reset")
            self._drop(selector, incoming)
            return
        if not data:  # the client closed (or finished reading a refusal)
            self._cut_short(incoming, "closed")
            self._drop(selector, incoming)
            return
        if incoming.draining:
            return
        incoming.data += data
        self._buffered += len(data)
        if self._buffered > self.limits.buffer_budget:
            self._shed_buffers(selector, incoming)
            if incoming.conn.fileno() not in self._waiting:
                return
        self._progress(selector, incoming)

    def _shed_buffers(self, selector: selectors.BaseSelector, current: _Incoming) -> None:
        """Drop the oldest connections holding bytes until the budget holds again."""
        while self._buffered > self.limits.buffer_budget:
            holders = [w for w in self._waiting.values() if w.data]
            if not holders:
                return
            log.info("http server: dropping the oldest request still arriving (memory budget)",
                     extra={"budget_bytes": self.limits.buffer_budget})
            self._drop(selector, self._oldest(holders))

    def _progress(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        """Look at what has arrived: hand a whole request to a worker, refuse, or wait."""
        data = incoming.data
        if incoming.head_end is None:
            incoming.head_end = head_end(data, incoming.head_scanned)
            if incoming.head_end is None:
                incoming.head_scanned = len(data)
                return
            if not self._plan_body(incoming):
                self._dispatch(selector, incoming, len(data))
                return
        if incoming.chunks is not None:
            end = incoming.chunks.advance(data)
            if end is not None:
                self._dispatch(selector, incoming, end)
            elif incoming.chunks.body_bytes > self.limits.max_body:
                self._refuse_too_large(selector, incoming)
            else:
                self._send_continue(incoming)
            return
        assert incoming.body_end is not None
        if len(data) >= incoming.body_end:
            self._dispatch(selector, incoming, incoming.body_end)
        else:
            self._send_continue(incoming)

    def _plan_body(self, incoming: _Incoming) -> bool:
        """Whether a body must still be read; sets where it ends (or how to find it)."""
        assert incoming.head_end is not None
        head = bytes(incoming.data[:incoming.head_end])
        if incoming.head_end >= MAX_HEAD_BYTES and not HEAD_END.search(head):
            return False  # the worker refuses an endless head
        fields = header_fields(head)
        encodings = {token.strip().lower() for value in fields.get("transfer-encoding", [])
                     for token in value.split(",")}
        if "chunked" in encodings:  # as Werkzeug decides it (and over Content-Length)
            incoming.chunks = ChunkScan(incoming.head_end)
            return True
        lengths = set(fields.get("content-length", []))
        if len(lengths) != 1:
            return False  # no body, or an ambiguous one that the worker refuses
        declared = lengths.pop()
        # Header values are latin-1: "²" is a digit to str.isdigit() but not to int(); and a
        # longer string than any sane length only costs time to convert.
        if not (declared.isascii() and declared.isdigit()) or len(declared) > MAX_LENGTH_DIGITS:
            return False  # the worker refuses a malformed length
        if int(declared) == 0 or int(declared) > self.limits.max_body:
            # A declared length over the limit is refused by length, without reading.
            return False
        incoming.body_end = incoming.head_end + int(declared)
        return True

    def _send_continue(self, incoming: _Incoming) -> None:
        """Answer ``Expect: 100-continue`` here: the body is read before any worker runs."""
        if incoming.continue_sent or incoming.head_end is None:
            return
        head = bytes(incoming.data[:incoming.head_end])
        if any(v.lower() == "100-continue" for v in header_fields(head).get("expect", [])):
            incoming.continue_sent = True
            with contextlib.suppress(OSError):
                incoming.conn.send(CONTINUE)

    def _dispatch(self, selector: selectors.BaseSelector, incoming: _Incoming, end: int) -> None:
        request = bytes(incoming.data[:end])
        self._forget(selector, incoming)
        probe = is_probe(request)
        with self._queued_lock:
            # The probes' requests are a line and a few headers: never refused for memory.
            over_budget = (not probe and self._queued + self._buffered + len(request)
                           > self.limits.buffer_budget)
            if not over_budget:
                self._queued += len(request)
        if over_budget:
            log.warning("http server: queued requests fill the memory budget; refused 503")
            self._refuse_busy(incoming.conn, logged=True)
            return
        try:
            (self._probes if probe else self._ready).put_nowait(
                WholeRequest(incoming.conn, incoming.address, request, incoming.continue_sent))
        except queue.Full:
            with self._queued_lock:
                self._queued -= len(request)
            self._refuse_busy(incoming.conn)

    def _refuse_too_large(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        """413 for a chunked body over ``max_body``; then read and discard what the client
        still sends (bounded by ``request_timeout``), so it sees the answer, not a reset."""
        log.info("http server: refused a request body over the limit (413)",
                 extra={"max_body": self.limits.max_body})
        body = f'{{"error": "body over {self.limits.max_body} bytes"}}'.encode()
        answer = (b"HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self._buffered -= len(incoming.data)
        incoming.data = bytearray()
        incoming.draining = True
        try:
            incoming.conn.send(answer)
            incoming.conn.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(selector, incoming)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for incoming in list(self._waiting.values()):
            age = now - incoming.accepted_at
            if incoming.head_end is None and age > self.limits.header_timeout:
                log.debug("http server: dropping a connection that sent no request head in time",
                          extra={"timeout_s": self.limits.header_timeout})
                self._drop(selector, incoming)
            elif age > self.limits.request_timeout:
                self._cut_short(incoming, "timed out")
                self._drop(selector, incoming)
        with self._active_lock:
            overdue = [conn for conn, deadline in self._active.items() if deadline < now]
        for conn in overdue:
            log.info("http server: dropping a request over its deadline",
                     extra={"deadline_s": self.limits.request_deadline})
            # The worker's blocked write returns, and it frees itself.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _cut_short(self, incoming: _Incoming, reason: str) -> None:
        """One line (no traceback) for a request whose head came but not its whole body."""
        if incoming.head_end is None or incoming.draining:
            return
        target = bytes(incoming.data[:incoming.head_end]).split(b"\n", 1)[0].split(b" ")
        path = target[1].decode("latin-1").split("?", 1)[0][:200] if len(target) > 1 else ""
        log.info("http client disconnected before sending its whole request body",
                 extra={"path": path, "reason": reason,
                        "timeout_s": self.limits.request_timeout})
        self.on_cut_short(path)

    def _forget(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        if self._waiting.pop(incoming.conn.fileno(), None) is not None:
            self._buffered -= len(incoming.data)
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(incoming.conn)
        incoming.data = bytearray()

    def _drop(self, selector: selectors.BaseSelector, incoming: _Incoming) -> None:
        self._forget(selector, incoming)
        incoming.conn.close()

    def _refuse_busy(self, conn: socket.socket, *, logged: bool = False) -> None:
        if not logged:
            log.warning("http server: every worker is busy and the queue is full; refused 503")
        with contextlib.suppress(OSError):
            conn.send(_BUSY)
        conn.close()

    # -- the workers ----------------------------------------------------------------------

    def _start_workers(self) -> None:
        self._workers = [
            threading.Thread(target=self._work, args=(self._ready,), name=f"okr-sync-http-{n}",
                             daemon=True)
            for n in range(self.limits.workers)
        ] + [
            threading.Thread(target=self._work, args=(self._probes,),
                             name=f"okr-sync-http-probe-{n}", daemon=True)
            for n in range(PROBE_WORKERS)
        ]
        for worker in self._workers:
            worker.start()

    def _stop_workers(self) -> None:
        for waiting in (self._ready, self._probes):
            while True:  # connections still queued are closed unanswered, as on any stop
                try:
                    item = waiting.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._take(item)
                    item.conn.close()
        for _ in range(self.limits.workers):
            self._ready.put(None)
        for _ in range(PROBE_WORKERS):
            self._probes.put(None)
        for worker in self._workers:
            worker.join(timeout=1)

    def _take(self, item: WholeRequest) -> None:
        """A queued request leaves the queue: its bytes no longer count as queued."""
        with self._queued_lock:
            self._queued -= len(item.request)

    def _work(self, waiting: queue.Queue[WholeRequest | None]) -> None:
        while True:
            item = waiting.get()
            if item is None:
                return
            self._take(item)
            conn, address, request, continue_sent = (item.conn, item.address, item.request,
                                                     item.continue_sent)
            conn.setblocking(True)
            conn.settimeout(self.limits.read_timeout)
            with self._active_lock:
                self._active[conn] = time.monotonic() + self.limits.request_deadline
            try:
                self.finish_request(PrereadConnection(conn, request, continue_sent),  # type: ignore[arg-type]
                                    address)
            except Exception:  # one request's failure must not end the worker
                self.handle_error(conn, address)
            finally:
                with self._active_lock:
                    self._active.pop(conn, None)
                self.shutdown_request(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("http server: a request failed outside the application")
